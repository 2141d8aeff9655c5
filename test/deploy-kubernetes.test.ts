/**
 * The plain manifests in deploy/kubernetes, validated against the Kubernetes API
 * schema with no cluster (see kubernetesSchemaProblems), and their user-sync
 * containers' arguments run against the tool with --validate. Every file there is
 * covered, including one added later.
 *
 * @module
 */

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  type ClusterSecrets,
  HASHED_EXAMPLE,
  type K8sObject,
  k8sObjects,
  kubernetesSchemaProblems,
  runContainer,
} from "./support/deploy.ts";
import { runSync } from "./support/helpers.ts";

const manifests = fileURLToPath(new URL("../deploy/kubernetes/", import.meta.url));
const files = readdirSync(manifests).filter((f) => /\.ya?ml$/.test(f)).sort();

test("every manifest in deploy/kubernetes is valid against the Kubernetes API schema", async () => {
  assert.ok(files.length > 0, "deploy/kubernetes has no manifests");
  const objects = files.flatMap((file) =>
    k8sObjects(readFileSync(join(manifests, file), "utf8")).map((object: K8sObject) => ({ source: file, object }))
  );
  assert.deepEqual(await kubernetesSchemaProblems(objects), []);
});

test("the schema check rejects a wrong type, a missing required field and an unknown field, saying where", async () => {
  const deployment = (container: K8sObject) => ({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: "x" },
    spec: {
      selector: { matchLabels: { app: "x" } },
      template: { metadata: { labels: { app: "x" } }, spec: { containers: [container] } },
    },
  });
  const problems = await kubernetesSchemaProblems([
    { source: "type.yaml", object: deployment({ name: "c", image: "i", args: "--file /x" }) },
    { source: "required.yaml", object: deployment({ image: "i" }) },
    { source: "unknown.yaml", object: deployment({ name: "c", image: "i", securityContxt: {} }) },
  ]);
  const about = (source: string) => problems.filter((p) => p.startsWith(`${source}: Deployment x: `)).join("\n");
  assert.match(about("type.yaml"), /containers\/0\/args must be array/);
  assert.match(about("required.yaml"), /containers\/0 must have required property name/);
  assert.match(about("unknown.yaml"), /'"securityContxt"' does not exist in type 'IContainer'/);
});

test("every user-sync container in deploy/kubernetes, run with its mounts and --validate, succeeds", async (t) => {
  const help = (await runSync(["--help"])).stdout;
  // The Secrets a manifest's header tells the operator to create, whatever their names: every key a
  // mounted Secret has holds the example users file, every key an env variable takes a database URL
  // (--validate connects to nothing).
  const secretsFor = (pod: K8sObject): ClusterSecrets => {
    const secrets: ClusterSecrets = {};
    for (const { secret } of pod.volumes ?? []) {
      if (!secret) continue;
      const keys = secret.items?.map((item: { key: string }) => item.key) ?? ["users.json"];
      secrets[secret.secretName] = Object.fromEntries(
        keys.map((key: string) => [key, readFileSync(HASHED_EXAMPLE, "utf8")]),
      );
    }
    for (const container of [...(pod.initContainers ?? []), ...pod.containers]) {
      for (const { valueFrom } of container.env ?? []) {
        const ref = valueFrom?.secretKeyRef;
        if (ref) (secrets[ref.name] ??= {})[ref.key] = "postgres://barycenter:secret@127.0.0.1:1/barycenter";
      }
    }
    return secrets;
  };
  let ran = 0;
  for (const file of files) {
    const objects = k8sObjects(readFileSync(join(manifests, file), "utf8"));
    for (const deployment of objects.filter((o) => o.kind === "Deployment")) {
      const pod = deployment.spec.template.spec;
      for (const container of [...(pod.initContainers ?? []), ...pod.containers]) {
        if (!/barycenter-user-sync/.test(container.image)) continue;
        if (container.args.includes("--watch") && !help.includes("--watch")) {
          t.diagnostic(`${file} ${container.name}: not run, sync.ts has no --watch yet (issue 12, branch h14b)`);
          continue;
        }
        const run = await runContainer(objects, pod, container.name, {
          secrets: secretsFor(pod),
          extraArgs: ["--validate"],
        });
        assert.equal(run.code, 0, `${file} ${container.name}: ${run.argv.join(" ")}\n${run.stdout}${run.stderr}`);
        ran++;
      }
    }
  }
  assert.ok(ran > 0, "no user-sync container found");
});
