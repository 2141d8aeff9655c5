/**
 * This project's Helm chart (deploy/helm), rendered by the real helm: lint, render with
 * each kind of values, and run every rendered user-sync container's command line
 * against the tool, with `--validate` and as a real sync into SQLite at the mounted paths.
 *
 * @module
 */

import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  type ClusterSecrets,
  exampleUsernames,
  HASHED_EXAMPLE,
  type K8sObject,
  k8sObjects,
  kubernetesSchemaProblems,
  podSpec,
  runContainer,
  usernamesIn,
} from "./support/deploy.ts";
import { runSync } from "./support/helpers.ts";
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
const chart = join(root, "deploy", "helm");
const help = (await runSync(["--help"])).stdout;
const watchSkip = !help.includes("--watch") &&
  "sync.ts has no --watch yet (issue 12, branch h14b): the sidecar's command line runs after that merge";

/** A set of values the chart must render, and the Secrets the cluster would already hold for it. */
interface ValueSet {
  name: string;
  args: string[];
  secrets: ClusterSecrets;
  /** Where, under /app/data, the sync's database lands. */
  database: string;
  /** The users it then holds. */
  usernames: string[];
}

const valueSets: ValueSet[] = [
  {
    name: "inline users",
    args: ["--set-file", `userSync.users=${HASHED_EXAMPLE}`],
    secrets: {},
    database: "barycenter.db",
    usernames: exampleUsernames,
  },
  {
    name: "an existing Secret (under a key of its own)",
    args: ["--set", "userSync.existingSecret=site-users", "--set", "userSync.secretKey=accounts.json"],
    secrets: { "site-users": { "accounts.json": readFileSync(HASHED_EXAMPLE, "utf8") } },
    database: "barycenter.db",
    usernames: exampleUsernames,
  },
  {
    name: "a database URL from a Secret",
    args: ["--set", "userSync.databaseUrl.existingSecret=barycenter-database"],
    secrets: { "barycenter-database": { url: "sqlite:///app/data/from-secret.db?mode=rwc" } },
    database: "from-secret.db",
    usernames: ["admin"], // the default values' example user
  },
  {
    name: "the sidecar",
    args: ["--set", "userSync.sidecar.enabled=true", "--set", "userSync.sidecar.resyncInterval=120"],
    secrets: {},
    database: "barycenter.db",
    usernames: ["admin"],
  },
];

describe("the Helm chart, rendered by helm", { skip: k8sToolsSkip, concurrency: true }, () => {
  let tools: K8sTools;
  let env: Record<string, string>;
  before(async () => {
    tools = await k8sTools();
    env = k8sEnv(tools);
  });
  const render = async (args: string[]) =>
    k8sObjects(await runTool(tools.helm, ["template", "barycenter", chart, ...args], env));

  test("helm lint --strict is clean (no error, warning or note) with the default values and with every value set", async () => {
    for (const args of [[], ...valueSets.map((set) => set.args)]) {
      const out = await runTool(tools.helm, ["lint", "--strict", chart, ...args], env);
      assert.match(out, /1 chart\(s\) linted, 0 chart\(s\) failed/);
      assert.doesNotMatch(out, /\[(INFO|WARNING|ERROR)\]/, out);
    }
  });

  test("everything the chart renders, with every value set, is valid against the Kubernetes API schema", async () => {
    const objects = [];
    for (const set of [{ name: "defaults", args: [] }, ...valueSets]) {
      for (const object of await render(set.args)) objects.push({ source: `helm template (${set.name})`, object });
    }
    assert.deepEqual(await kubernetesSchemaProblems(objects), []);
  });

  test("without users or an existing Secret, rendering fails saying which value to set", async () => {
    await assert.rejects(
      runTool(tools.helm, ["template", "barycenter", chart, "--set", "userSync.users="], env),
      /userSync: set users \(the users file, inline\) or existingSecret/,
    );
  });

  test("the values and defaults are Barycenter's chart's: resources 200m / 256Mi, uid 1000, the chart's mounts", async () => {
    const pod = podSpec(await render([]), "barycenter");
    const [init] = pod.initContainers;
    assert.equal(init.name, "user-sync");
    assert.equal(init.command, undefined, "the image's entrypoint runs");
    assert.deepEqual(init.resources.limits, { cpu: "200m", memory: "256Mi" });
    assert.deepEqual(init.resources.requests, { cpu: "100m", memory: "128Mi" });
    assert.equal(init.securityContext.runAsUser, 1000);
    assert.equal(init.securityContext.runAsNonRoot, true);
    assert.equal(init.securityContext.readOnlyRootFilesystem, true);
    assert.deepEqual(init.securityContext.capabilities.drop, ["ALL"]);
    assert.deepEqual(init.volumeMounts.map((m: K8sObject) => m.mountPath).sort(), [
      "/app/config",
      "/app/data",
      "/secrets",
    ]);
    const barycenter = pod.containers.find((c: K8sObject) => c.name === "barycenter");
    assert.deepEqual(
      barycenter.volumeMounts.map((m: K8sObject) => [m.name, m.mountPath]),
      [["config", "/app/config"], ["data", "/app/data"]],
      "the sync writes the volume Barycenter reads",
    );
  });

  test("userSync.env and userSync.resources reach the user-sync container as given", async () => {
    const [init] = podSpec(
      await render([
        "--set",
        "userSync.env[0].name=NO_COLOR",
        "--set-string",
        "userSync.env[0].value=1",
        "--set",
        "userSync.resources.limits.memory=512Mi",
      ]),
      "barycenter",
    ).initContainers;
    assert.deepEqual(init.env, [{ name: "NO_COLOR", value: "1" }]);
    assert.deepEqual(init.resources.limits, { cpu: "200m", memory: "512Mi" });
  });

  test("userSync.enabled=false renders Barycenter without user-sync and without the users Secret", async () => {
    const objects = await render(["--set", "userSync.enabled=false"]);
    assert.equal(objects.some((o) => o.kind === "Secret"), false);
    assert.equal(podSpec(objects, "barycenter").initContainers, undefined);
  });

  test("the sidecar is a native sidecar after the one-shot sync, with --watch and --resync-interval", async () => {
    const pod = podSpec(await render(valueSets[3].args), "barycenter");
    assert.deepEqual(pod.initContainers.map((c: K8sObject) => c.name), ["user-sync", "user-sync-watch"]);
    const [once, watch] = pod.initContainers;
    assert.equal(once.restartPolicy, undefined);
    assert.equal(watch.restartPolicy, "Always");
    assert.deepEqual(watch.args, [...once.args, "--watch", "--resync-interval", "120"]);
  });

  test("a database URL from a Secret reaches both containers as BARYCENTER__DATABASE__URL", async () => {
    const pod = podSpec(await render(valueSets[2].args), "barycenter");
    for (const container of [pod.initContainers[0], pod.containers[0]]) {
      assert.deepEqual(container.env.find((e: K8sObject) => e.name === "BARYCENTER__DATABASE__URL").valueFrom, {
        secretKeyRef: { name: "barycenter-database", key: "url" },
      });
    }
  });

  for (const set of valueSets) {
    test(`with ${set.name}: every rendered user-sync container's command line, with --validate, succeeds`, async (t) => {
      const objects = await render(set.args);
      const pod = podSpec(objects, "barycenter");
      for (const container of pod.initContainers) {
        if (container.args.includes("--watch") && watchSkip) {
          t.diagnostic(`${container.name} not run: ${watchSkip}`);
          continue;
        }
        const run = await runContainer(objects, pod, container.name, {
          secrets: set.secrets,
          extraArgs: ["--validate"],
        });
        assert.equal(run.code, 0, `${container.name}: ${run.argv.join(" ")}\n${run.stdout}${run.stderr}`);
      }
    });

    test(`with ${set.name}: the init container syncs the users into SQLite on the mounted data volume`, async () => {
      const objects = await render(set.args);
      const pod = podSpec(objects, "barycenter");
      const run = await runContainer(objects, pod, "user-sync", { secrets: set.secrets });
      assert.equal(run.code, 0, `${run.argv.join(" ")}\n${run.stdout}${run.stderr}`);
      assert.deepEqual(usernamesIn(join(run.mounts["/app/data"], set.database)), set.usernames);
      // A URL from the Secret wins over config.toml's: nothing is written where config.toml points.
      assert.equal(existsSync(join(run.mounts["/app/data"], "barycenter.db")), set.database === "barycenter.db");
    });
  }

  test("the README's Helm commands, run as pasted, render a chart whose init container syncs", async () => {
    const blocks = readmeShellBlocks("### This project's Helm chart");
    assert.equal(blocks.length, 2);
    const checkout = mkdtempSync(join(tmpdir(), "user-sync-checkout-"));
    for (const part of ["deploy", "examples"]) cpSync(join(root, part), join(checkout, part), { recursive: true });
    for (const [i, block] of blocks.entries()) {
      const cluster = withoutCluster(tools, env);
      await runTool("sh", ["-euc", block], cluster.env, checkout);
      const objects = k8sObjects(readFileSync(cluster.sent, "utf8"));
      const pod = podSpec(objects, "barycenter");
      for (const container of pod.initContainers) {
        if (container.args.includes("--watch") && watchSkip) continue;
        const run = await runContainer(objects, pod, container.name, { extraArgs: ["--validate"] });
        assert.equal(run.code, 0, `block ${i + 1}, ${container.name}: ${run.stdout}${run.stderr}`);
      }
      if (i === 0) {
        const run = await runContainer(objects, pod, "user-sync");
        assert.equal(run.code, 0, run.stdout + run.stderr);
        assert.deepEqual(usernamesIn(join(run.mounts["/app/data"], "barycenter.db")), exampleUsernames);
      } else {
        assert.deepEqual(objects.filter((o) => o.kind === "Secret").map((o) => o.metadata.name), [
          "barycenter-users",
          "barycenter-database",
        ]);
      }
    }
  });
});
