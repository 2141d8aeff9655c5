/**
 * Runs a container of a rendered pod as the kubelet would, minus the container:
 * this image's entrypoint (read from the Dockerfile) with the container's `args`,
 * its env resolved from the rendered ConfigMaps and Secrets, and every volume
 * mount mapped onto a folder of its own under a temporary root.
 *
 * @module
 */

import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { DatabaseSync } from "node:sqlite";
import { parseAllDocuments } from "yaml";
import { SYNC } from "./helpers.ts";

/** The example users file the deploy tests sync (hashed: no plaintext). */
export const HASHED_EXAMPLE = fileURLToPath(new URL("../../examples/users.hashed.json", import.meta.url));

/** The usernames in {@linkcode HASHED_EXAMPLE}, sorted. */
export const exampleUsernames: string[] = JSON.parse(readFileSync(HASHED_EXAMPLE, "utf8")).users
  .map((u: { username: string }) => u.username).sort();

/** Usernames in the SQLite database at `file`. */
export function usernamesIn(file: string): string[] {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return db.prepare("SELECT username FROM users ORDER BY username").all().map((row) => String(row.username));
  } finally {
    db.close();
  }
}

/** A Kubernetes object as the tests read it: plain data, loosely typed. */
// deno-lint-ignore no-explicit-any -- rendered manifests are checked field by field, not typed.
export type K8sObject = Record<string, any>;

/** The objects of a multi-document YAML stream (empty documents dropped). */
export function k8sObjects(yaml: string): K8sObject[] {
  return parseAllDocuments(yaml).map((d) => d.toJS()).filter((o) => o);
}

/** The pod spec of the Deployment named `name` among `objects`. */
export function podSpec(objects: K8sObject[], name: string): K8sObject {
  const deployment = objects.find((o) => o.kind === "Deployment" && o.metadata.name === name);
  if (!deployment) throw new Error(`no Deployment ${name} among ${objects.map((o) => o.kind).join(", ")}`);
  return deployment.spec.template.spec;
}

/** The image's entrypoint, from the Dockerfile's `ENTRYPOINT [...]` (exec form). */
export function imageEntrypoint(): string[] {
  const dockerfile = readFileSync(new URL("../../Dockerfile", import.meta.url), "utf8");
  const line = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile);
  if (!line) throw new Error("the Dockerfile has no ENTRYPOINT in exec form");
  return JSON.parse(line[1]);
}

/** What a container run left: exit status, output, and the host folders its mounts were mapped onto. */
export interface ContainerRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Container mount path → host folder. */
  mounts: Record<string, string>;
  /** The command line that ran, with host paths. */
  argv: string[];
}

/** Secrets that exist in the cluster but not in the rendered output (`existingSecret`): name → key → value. */
export type ClusterSecrets = Record<string, Record<string, string>>;

/**
 * Runs the init container `container` of `pod` against the tool. The image's entrypoint
 * becomes `node … sync.ts` (its Node flags kept); `/app/config`, `/app/data`, `/secrets`…
 * become folders under a new temporary root, filled from the ConfigMaps and Secrets among
 * `objects` or in `secrets`, with every container path in the arguments, in env values and
 * in the mounted files rewritten to match. `extraArgs` (e.g. `--validate`) are appended.
 */
export async function runContainer(
  objects: K8sObject[],
  pod: K8sObject,
  container: string,
  { secrets = {}, extraArgs = [] }: { secrets?: ClusterSecrets; extraArgs?: string[] } = {},
): Promise<ContainerRun> {
  const spec = [...(pod.initContainers ?? []), ...pod.containers].find((c) => c.name === container);
  if (!spec) throw new Error(`the pod has no container ${container}`);
  if (spec.command) {
    throw new Error(`container ${container} has a command (${spec.command}): the entrypoint would not run`);
  }
  const root = mkdtempSync(join(tmpdir(), "user-sync-pod-"));
  const mounts: Record<string, string> = {};
  for (const mount of spec.volumeMounts ?? []) mounts[mount.mountPath] = join(root, mount.mountPath);
  // Longest first, so that a mount inside another maps onto its own folder.
  const paths = Object.keys(mounts).sort((a, b) => b.length - a.length);
  const mapPaths = (text: string) => paths.reduce((t, path) => t.replaceAll(path, mounts[path]), text);

  const secretData = (name: string): Record<string, string> => {
    const rendered = objects.find((o) => o.kind === "Secret" && o.metadata.name === name);
    if (rendered) {
      const decoded = Object.entries(rendered.data ?? {}).map(([k, v]) => [k, Buffer.from(String(v), "base64")]);
      return { ...Object.fromEntries(decoded.map(([k, v]) => [k, v.toString()])), ...rendered.stringData };
    }
    if (secrets[name]) return secrets[name];
    throw new Error(`Secret ${name} is neither rendered nor given`);
  };
  const configMapData = (name: string): Record<string, string> => {
    const map = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name === name);
    if (!map) throw new Error(`ConfigMap ${name} is not rendered`);
    return map.data;
  };

  for (const mount of spec.volumeMounts ?? []) {
    const volume = pod.volumes.find((v: K8sObject) => v.name === mount.name);
    if (!volume) throw new Error(`mount ${mount.name} has no volume`);
    const dir = mounts[mount.mountPath];
    mkdirSync(dir, { recursive: true });
    let files: Record<string, string> = {};
    if (volume.configMap) files = configMapData(volume.configMap.name);
    else if (volume.secret) files = secretData(volume.secret.secretName);
    else if (!volume.persistentVolumeClaim && !volume.emptyDir) throw new Error(`volume ${volume.name}: unknown kind`);
    const items: { key: string; path: string }[] | undefined = (volume.configMap ?? volume.secret)?.items;
    for (const { key, path } of items ?? Object.keys(files).map((key) => ({ key, path: key }))) {
      writeFileSync(join(dir, path), mapPaths(files[key]));
    }
  }

  const env: Record<string, string> = { PATH: process.env.PATH ?? "" };
  for (const variable of spec.env ?? []) {
    const ref = variable.valueFrom?.secretKeyRef;
    env[variable.name] = mapPaths(ref ? secretData(ref.name)[ref.key] : String(variable.value ?? ""));
  }

  const [, ...nodeFlags] = imageEntrypoint().filter((part) => !part.endsWith("/sync.mjs"));
  const argv = [process.execPath, ...nodeFlags, SYNC, ...(spec.args ?? []).map(mapPaths), ...extraArgs];
  const result = await new Promise<Omit<ContainerRun, "mounts" | "argv">>((resolve) => {
    execFile(argv[0], argv.slice(1), { env, cwd: root }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === "number" ? error.code : null) : 0, stdout, stderr });
    });
  });
  return { ...result, mounts, argv };
}

/** The kubernetes-models module path of an object's apiVersion: `apps/v1` → `apps/v1`, core `v1` → `v1`. */
function modelPath(object: K8sObject): string {
  return `kubernetes-models/${object.apiVersion}/${object.kind}`;
}

/**
 * Validates objects against the Kubernetes API schema, with no cluster, in two passes that
 * each catch what the other cannot. The validators of `kubernetes-models` (generated from
 * Kubernetes' OpenAPI definitions) check types, required fields, enumerations and formats, but
 * let unknown fields pass; so each object is also type-checked (deno check) as an object
 * literal of the same package's type, whose excess-property check rejects a misspelt or
 * misplaced field (`securityContxt`, `runAsUser` on a pod's container list) the way
 * `kubectl --validate=strict` would. Returns the problems, each naming where; none: valid.
 */
export async function kubernetesSchemaProblems(objects: { source: string; object: K8sObject }[]): Promise<string[]> {
  const problems: string[] = [];
  const lines: string[] = [];
  for (const [i, { source, object }] of objects.entries()) {
    let model;
    try {
      model = (await import(modelPath(object)))[object.kind];
    } catch {
      problems.push(`${source}: no schema for ${object.apiVersion} ${object.kind}`);
      continue;
    }
    try {
      new model(object).validate();
    } catch (error) {
      problems.push(`${source}: ${object.kind} ${object.metadata?.name}: ${(error as Error).message}`);
    }
    // One line an object, so that deno check's line numbers say which object.
    lines.push(`export const o${i}: import("${modelPath(object)}").I${object.kind} = ${JSON.stringify(object)};`);
  }
  const dir = fileURLToPath(new URL("../../.cache/", import.meta.url));
  mkdirSync(dir, { recursive: true });
  const file = join(mkdtempSync(join(dir, "schema-check-")), "objects.ts");
  writeFileSync(file, lines.join("\n") + "\n");
  const deno = fileURLToPath(new URL("../../node_modules/.bin/deno", import.meta.url));
  const checked = await new Promise<string>((resolve) => {
    execFile(
      deno,
      ["check", "--quiet", file],
      { env: { PATH: process.env.PATH ?? "", NO_COLOR: "1" } },
      (error, _, stderr) => {
        resolve(error ? stderr : "");
      },
    );
  });
  rmSync(join(file, ".."), { recursive: true, force: true });
  for (const match of checked.matchAll(/TS\d+ \[ERROR\]: (.*)\n\s+at .*:(\d+):\d+/g)) {
    const { source, object } = objects[Number(/^export const o(\d+)/.exec(lines[Number(match[2]) - 1])?.[1])];
    problems.push(`${source}: ${object.kind} ${object.metadata?.name}: ${match[1]}`);
  }
  if (checked && problems.length === 0) problems.push(`deno check failed:\n${checked}`);
  return problems;
}
