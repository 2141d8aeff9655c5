/**
 * The drop-in for Barycenter's own chart (deploy/kustomize), applied by the real
 * kubectl kustomize and by Helm 4's post-renderer plugin to a Deployment exactly as
 * Barycenter's chart renders it (test/fixtures/deploy/barycenter-chart), and the
 * resulting user-sync container run against the tool for a real sync.
 *
 * @module
 */

import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  exampleUsernames,
  HASHED_EXAMPLE,
  imageEntrypoint,
  type K8sObject,
  k8sObjects,
  kubernetesSchemaProblems,
  podSpec,
  runContainer,
  usernamesIn,
} from "./support/deploy.ts";
import {
  k8sEnv,
  type K8sTools,
  k8sTools,
  k8sToolsSkip,
  readmeShellBlocks,
  runTool,
  withoutCluster,
} from "./support/k8s-tools.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const barycenterChart = join(root, "test", "fixtures", "deploy", "barycenter-chart");
const kustomize = join(root, "deploy", "kustomize");
/** The Secret `userSync.existingSecret` names, as the cluster holds it. */
const clusterSecrets = { "barycenter-users": { "users.json": readFileSync(HASHED_EXAMPLE, "utf8") } };
/** Barycenter's chart's arguments to its own binary (its command without `barycenter`). */
const barycenterArgs = ["-c", "/app/config/config.toml", "sync-users", "--file", "/secrets/users.json"];

describe("the patch for Barycenter's chart, applied by kubectl kustomize and helm", {
  skip: k8sToolsSkip,
  concurrency: true,
}, () => {
  let tools: K8sTools;
  let env: Record<string, string>;
  let chartOutput: string;
  let patched: K8sObject[];
  before(async () => {
    tools = await k8sTools();
    env = k8sEnv(tools);
    chartOutput = await runTool(tools.helm, ["template", "barycenter", barycenterChart], env);
    const dir = mkdtempSync(join(tmpdir(), "user-sync-kustomize-"));
    for (const file of ["kustomization.yaml", "user-sync-patch.yaml"]) cpSync(join(kustomize, file), join(dir, file));
    writeFileSync(join(dir, "barycenter.yaml"), chartOutput);
    patched = k8sObjects(await runTool(tools.kubectl, ["kustomize", dir], env));
  });

  test("the patch is a whole object: apiVersion, kind and metadata of the chart's Deployment", () => {
    const [patch] = k8sObjects(readFileSync(join(kustomize, "user-sync-patch.yaml"), "utf8"));
    assert.deepEqual([patch.apiVersion, patch.kind, patch.metadata.name], ["apps/v1", "Deployment", "barycenter"]);
  });

  test("the result runs this image's entrypoint with Barycenter's arguments, as uid 1000, with the chart's mounts", () => {
    const original = podSpec(k8sObjects(chartOutput), "barycenter").initContainers[0];
    assert.deepEqual(original.command, ["barycenter", ...barycenterArgs], "the fixture is the chart's container");
    const [init] = podSpec(patched, "barycenter").initContainers;
    assert.equal(init.name, "user-sync");
    assert.match(init.image, /barycenter-user-sync:/);
    assert.equal(init.command, undefined, "no command: the image's entrypoint runs");
    assert.match(imageEntrypoint().at(-1)!, /sync\.mjs$/);
    assert.deepEqual(init.args, barycenterArgs);
    assert.equal(init.securityContext.runAsUser, 1000);
    assert.equal(init.securityContext.runAsNonRoot, true);
    assert.equal(init.securityContext.readOnlyRootFilesystem, true);
    assert.deepEqual(init.volumeMounts, original.volumeMounts);
    assert.deepEqual(init.resources, original.resources);
    assert.deepEqual(init.env, original.env);
  });

  test("the patched objects are valid against the Kubernetes API schema", async () => {
    const objects = patched.map((object) => ({ source: "kubectl kustomize", object }));
    assert.deepEqual(await kubernetesSchemaProblems(objects), []);
  });

  test("everything but the user-sync container stays as the chart rendered it", () => {
    const strip = (objects: K8sObject[]) =>
      objects.map((o) => {
        if (o.kind !== "Deployment") return o;
        const copy = structuredClone(o);
        delete copy.spec.template.spec.initContainers;
        return copy;
      }).sort((a, b) => `${a.kind}/${a.metadata.name}`.localeCompare(`${b.kind}/${b.metadata.name}`));
    assert.deepEqual(strip(patched), strip(k8sObjects(chartOutput)));
  });

  test("the patched init container's command line, with --validate, succeeds", async () => {
    const run = await runContainer(patched, podSpec(patched, "barycenter"), "user-sync", {
      secrets: clusterSecrets,
      extraArgs: ["--validate"],
    });
    assert.equal(run.code, 0, `${run.argv.join(" ")}\n${run.stdout}${run.stderr}`);
  });

  test("the patched init container syncs the Secret's users into the chart's SQLite database on /app/data", async () => {
    const run = await runContainer(patched, podSpec(patched, "barycenter"), "user-sync", { secrets: clusterSecrets });
    assert.equal(run.code, 0, `${run.argv.join(" ")}\n${run.stdout}${run.stderr}`);
    assert.deepEqual(usernamesIn(join(run.mounts["/app/data"], "barycenter.db")), exampleUsernames);
  });

  test("as a Helm 4 post-renderer plugin, the patch gives the same objects as kubectl kustomize", async () => {
    const helm = { ...env, ...k8sEnv(tools) }; // a Helm data folder of its own for the plugin
    await runTool(tools.helm, ["plugin", "install", kustomize], helm);
    const out = await runTool(tools.helm, [
      "template",
      "barycenter",
      barycenterChart,
      "--post-renderer",
      "barycenter-user-sync",
    ], helm);
    assert.deepEqual(k8sObjects(out), patched);
  });

  test("the README's kustomize and post-renderer commands, run as pasted, give a user-sync container that syncs", async () => {
    const blocks = readmeShellBlocks("## In Barycenter's Helm chart");
    assert.equal(blocks.length, 2);
    // The README's layout: this checkout, and Barycenter's beside it as ../barycenter.
    const workspace = mkdtempSync(join(tmpdir(), "user-sync-workspace-"));
    const checkout = join(workspace, "barycenter-user-sync");
    for (const part of ["deploy", "examples"]) cpSync(join(root, part), join(checkout, part), { recursive: true });
    cpSync(barycenterChart, join(workspace, "barycenter", "deploy", "helm", "barycenter"), { recursive: true });
    for (const [i, block] of blocks.entries()) {
      const cluster = withoutCluster(tools, k8sEnv(tools));
      await runTool("sh", ["-euc", block], cluster.env, checkout);
      const objects = k8sObjects(readFileSync(cluster.sent, "utf8"));
      const pod = podSpec(objects, "barycenter");
      assert.deepEqual(pod.initContainers[0].args, barycenterArgs, `block ${i + 1}`);
      const run = await runContainer(objects, pod, "user-sync", { secrets: clusterSecrets });
      assert.equal(run.code, 0, `block ${i + 1}: ${run.stdout}${run.stderr}`);
      assert.deepEqual(usernamesIn(join(run.mounts["/app/data"], "barycenter.db")), exampleUsernames);
    }
  });
});
