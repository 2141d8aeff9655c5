/**
 * The bundle, the image and Deno: `dist/` alone syncs from an empty directory
 * with a bare `node`; the Dockerfile copies only what a build makes; Deno runs
 * sync.ts from a checkout with the permissions the README documents.
 */

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { VERSION } from "../sync.ts";
import { backends, type TestDatabase, testDatabase, usersFile, usersRows } from "./support/helpers.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const users = [
  { username: "alice", password: "alice-passphrase", email: "alice@example.com", properties: { name: "Alice" } },
  { username: "bob", password: "bob-passphrase", enabled: false },
];

/** Runs a command to completion; its exit status and what it printed. */
function run(command: string, args: string[], options: { cwd?: string; env?: Record<string, string> } = {}) {
  const result = spawnSync(command, args, {
    cwd: options.cwd,
    env: { PATH: "/usr/bin:/bin", ...options.env },
    encoding: "utf8",
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const database = testDatabase;

describe("the bundle", () => {
  let out: string;
  let buildOutput: string;
  before(() => {
    out = mkdtempSync(join(tmpdir(), "user-sync-dist-"));
    buildOutput = execFileSync(process.execPath, [join(root, "build.mjs"), "--outdir", out], { encoding: "utf8" });
  });

  test("build.mjs writes sync.mjs under 150 KB with a node shebang, its source map and the Argon2 addon, and prints every size", () => {
    const files = readdirSync(out).sort();
    assert.ok(files.includes("sync.mjs") && files.includes("sync.mjs.map"), files.join(", "));
    assert.ok(files.includes(`argon2.linux-${process.arch}-gnu.node`), files.join(", "));
    assert.ok(statSync(join(out, "sync.mjs")).size < 150_000);
    assert.ok(readFileSync(join(out, "sync.mjs"), "utf8").startsWith("#!/usr/bin/env node\n"));
    for (const file of files) {
      assert.match(buildOutput, new RegExp(`^${file.replace(/\./g, "\\.")}\\s+[\\d.]+ kB$`, "m"));
    }
  });

  for (const backend of backends) {
    test(`dist/ copied into an empty directory syncs into ${backend.name} with a bare node`, async (t) => {
      const db = await database(t, backend);
      const alone = mkdtempSync(join(tmpdir(), "user-sync-alone-"));
      cpSync(out, alone, { recursive: true });
      // No node_modules anywhere up the tree from here, no NODE_PATH, no network needed.
      assert.equal(existsSync(join(alone, "node_modules")), false);
      const args = [join(alone, "sync.mjs"), "--file", usersFile(users), "--database-url", db.url];
      const first = run(process.execPath, args, { cwd: alone });
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /^users: 2 created, 0 updated, 0 unchanged$/m);
      const rows = await usersRows(db);
      assert.deepEqual(rows.map((r) => [r.username, r.enabled]), [["alice", 1], ["bob", 0]]);
      const second = run(process.execPath, args, { cwd: alone });
      assert.match(second.stdout, /^users: 0 created, 0 updated, 2 unchanged$/m);
      assert.deepEqual(await usersRows(db), rows);
    });
  }

  test("the bundle reports its version and validates without a database", () => {
    const version = run(process.execPath, [join(out, "sync.mjs"), "--version"]);
    assert.equal(version.stdout.trim(), `barycenter-user-sync ${VERSION}`);
    const validate = run(process.execPath, [join(out, "sync.mjs"), "--validate", "--file", usersFile(users)]);
    assert.equal(validate.code, 0, validate.stderr);
  });
});

describe("the Dockerfile", () => {
  const dockerfile = readFileSync(join(root, "Dockerfile"), "utf8");
  // Instructions, with line continuations joined and comments dropped.
  const instructions = dockerfile.replace(/\\\n/g, " ").split("\n").map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  const stages: string[][] = [];
  for (const line of instructions) {
    if (/^FROM\s/i.test(line)) stages.push([]);
    stages.at(-1)?.push(line);
  }
  const [buildStage, finalStage] = stages;
  const ignored = readFileSync(join(root, ".dockerignore"), "utf8").split("\n").map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));

  test("has a build stage and a distroless Node.js 24+ nonroot final stage", () => {
    assert.equal(stages.length, 2);
    assert.match(buildStage[0], /^FROM --platform=\$BUILDPLATFORM node:2[4-9][\w.-]* AS build$/);
    assert.match(finalStage[0], /^FROM gcr\.io\/distroless\/nodejs(2[4-9]|[3-9]\d)-debian1[2-9]:nonroot$/);
  });

  test("every COPY source of the build stage is in the repository and in the build context", () => {
    const allowed = ignored.filter((l) => l.startsWith("!")).map((l) => l.slice(1));
    assert.equal(ignored[0], "*");
    const sources = buildStage.filter((l) => /^COPY\s/i.test(l)).flatMap((l) => l.split(/\s+/).slice(1, -1));
    assert.ok(sources.length > 0);
    for (const source of sources) {
      assert.ok(existsSync(join(root, source)), `${source} does not exist`);
      assert.ok(allowed.includes(source), `${source} is excluded by .dockerignore`);
    }
  });

  test("the build stage builds for the target architecture, not the build machine's", () => {
    assert.ok(buildStage.includes("ARG TARGETARCH"));
    assert.ok(buildStage.some((l) => /node build\.mjs --target "linux-\$\{TARGETARCH\}"/.test(l)));
    // build.mjs accepts Docker's names for both architectures.
    for (const arch of ["amd64", "arm64"]) {
      const out = mkdtempSync(join(tmpdir(), "user-sync-arch-"));
      execFileSync(process.execPath, [join(root, "build.mjs"), "--target", `linux-${arch}`, "--outdir", out]);
      const addon = arch === "amd64" ? "x64" : "arm64";
      assert.ok(existsSync(join(out, `argon2.linux-${addon}-gnu.node`)), `no ${addon} addon for ${arch}`);
    }
  });

  test("the final stage copies nothing but dist/, runs no shell, and its entrypoint file is in dist/", () => {
    const copies = finalStage.filter((l) => /^(COPY|ADD)\s/i.test(l));
    assert.deepEqual(copies, ["COPY --from=build /src/dist/ /app/"]);
    assert.equal(finalStage.filter((l) => /^RUN\s/i.test(l)).length, 0);
    const entrypoint = finalStage.find((l) => l.startsWith("ENTRYPOINT"));
    const [node, ...rest] = JSON.parse(entrypoint!.replace(/^ENTRYPOINT /, "")) as string[];
    assert.equal(node, "/nodejs/bin/node");
    assert.equal(rest.at(-1), "/app/sync.mjs");
    assert.ok(rest.slice(0, -1).every((flag) => flag.startsWith("--")), "only Node.js flags before the script");
    const out = mkdtempSync(join(tmpdir(), "user-sync-entry-"));
    execFileSync(process.execPath, [join(root, "build.mjs"), "--outdir", out]);
    assert.ok(existsSync(join(out, "sync.mjs")));
    assert.ok(finalStage.includes("USER nonroot"));
  });

  test("labels the image with its source, version and licence", () => {
    for (const label of ["source", "version", "licenses"]) {
      assert.match(dockerfile, new RegExp(`org\\.opencontainers\\.image\\.${label}=`));
    }
    assert.match(dockerfile, new RegExp(`^ARG VERSION=${VERSION.replace(/\./g, "\\.")}$`, "m"));
  });
});

describe("Deno", () => {
  const deno = join(root, "node_modules", ".bin", "deno");
  const env = [
    "USERS_FILE",
    "DATABASE_URL",
    "BARYCENTER__DATABASE__URL",
    "NAPI_RS_WASI_FLAVOR",
    "NAPI_RS_FORCE_WASI",
    "NAPI_RS_NATIVE_LIBRARY_PATH",
    "NAPI_RS_ENFORCE_VERSION_CHECK",
  ].join(",");

  /** The permissions the README documents for each backend. */
  function permissions(backend: string, db: TestDatabase): string[] {
    if (backend === "sqlite") {
      const path = db.url.replace(/^sqlite:\/\//, "").replace(/\?.*$/, "");
      return ["--allow-read", `--allow-write=${path},${path}-journal`, `--allow-env=${env}`, "--allow-ffi"];
    }
    const { host } = new URL(db.url);
    return ["--allow-read", "--allow-env", `--allow-net=${host}`, "--allow-ffi"];
  }

  for (const backend of backends) {
    test(`deno run sync.ts syncs into ${backend.name} with the documented permissions`, async (t) => {
      const db = await database(t, backend);
      const args = [
        "run",
        ...permissions(backend.name, db),
        "sync.ts",
        "--file",
        usersFile(users),
        "--database-url",
        db.url,
      ];
      const first = run(deno, args, { cwd: root, env: { PATH: process.env.PATH ?? "", NO_COLOR: "1" } });
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /^users: 2 created, 0 updated, 0 unchanged$/m);
      const second = run(deno, args, { cwd: root, env: { PATH: process.env.PATH ?? "", NO_COLOR: "1" } });
      assert.match(second.stdout, /^users: 0 created, 0 updated, 2 unchanged$/m);
      assert.deepEqual((await usersRows(db)).map((r) => r.username), ["alice", "bob"]);
    });
  }
});
