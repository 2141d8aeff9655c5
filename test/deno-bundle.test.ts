/**
 * The bundle where a clone has no business: `dist/` alone, in an empty
 * folder, run by Deno with the narrowest permissions the README documents,
 * and by the machine's own Node.js 20 where it can (PostgreSQL, --validate,
 * hash-password) and where it cannot (SQLite: exit 2, one sentence). A missing
 * Deno permission is named with its flag, exit 2, no stack trace.
 */

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import {
  backends,
  postgresBackend,
  sqliteBackend,
  type TestDatabase,
  testDatabase,
  usersRows,
} from "./support/helpers.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const deno = join(root, "node_modules", ".bin", "deno");
const users = [
  { username: "alice", password: "alice-passphrase", email: "alice@example.com" },
  { username: "bob", password: "bob-passphrase", enabled: false },
];

/** Runs a command to completion in `cwd` with a bare environment; its exit status and what it printed. */
function run(command: string, args: string[], cwd: string, input?: string) {
  const result = spawnSync(command, args, {
    cwd,
    env: { PATH: "/usr/bin:/bin", NO_COLOR: "1" },
    encoding: "utf8",
    input,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** The machine's own Node.js, when it is older than 22 (the case this file is about); else undefined. */
function oldNode(): string | undefined {
  for (const candidate of ["/usr/bin/node", "/usr/local/bin/node"]) {
    if (!existsSync(candidate)) continue;
    const version = execFileSync(candidate, ["--version"], { encoding: "utf8" }).trim();
    if (Number(/^v(\d+)/.exec(version)?.[1]) < 22) return candidate;
  }
  return undefined;
}

/** The README's permissions for the bundle in `dir`: dist/ and the users file to read, the addon to load. */
function permissions(db: TestDatabase): string[] {
  const base = ["--allow-read=dist,users.json", "--allow-ffi=dist"];
  if (db.url.startsWith("sqlite:")) {
    const path = db.url.replace(/^sqlite:\/\//, "").replace(/\?.*$/, "");
    return [
      `--allow-read=dist,users.json,${path},${path}-journal`,
      "--allow-ffi=dist",
      `--allow-write=${path},${path}-journal`,
    ];
  }
  const { host } = new URL(db.url);
  // The PostgreSQL driver reads the PG* variables for defaults.
  return [...base, `--allow-net=${host}`, "--allow-env"];
}

describe("dist/ alone", () => {
  let built: string;
  let buildOutput: string;
  before(() => {
    built = mkdtempSync(join(tmpdir(), "user-sync-deno-dist-"));
    buildOutput = execFileSync(process.execPath, [join(root, "build.mjs"), "--outdir", join(built, "dist")], {
      encoding: "utf8",
    });
  });

  /** An empty folder holding only a copy of dist/ and the users file. */
  function alone(): string {
    const dir = mkdtempSync(join(tmpdir(), "user-sync-deno-alone-"));
    cpSync(join(built, "dist"), join(dir, "dist"), { recursive: true });
    writeFileSync(join(dir, "users.json"), JSON.stringify(users));
    return dir;
  }

  test("build.mjs --outdir X reports X and leaves users.schema.json alone", () => {
    assert.match(buildOutput, new RegExp(`^total of ${join(built, "dist")}/\\s+[\\d.]+ kB$`, "m"));
    assert.doesNotMatch(buildOutput, /users\.schema\.json|total of dist\//);
  });

  test("the README's build sizes are what the build prints, file for file, within 10 %", () => {
    const readme = readFileSync(join(root, "README.md"), "utf8");
    const block = /`npm run build` printed here[^`]*```text\n([^`]*)```/.exec(readme)?.[1];
    assert.ok(block, "the README's build output block is missing");
    const sizes = (text: string) =>
      new Map([...text.matchAll(/^(\S+)\s+([\d.]+) kB$/gm)].map((m) => [m[1], Number(m[2])]));
    const documented = sizes(block);
    const printed = sizes(buildOutput);
    assert.deepEqual(
      [...printed.keys()].sort(),
      [...documented.keys()].filter((f) => !f.endsWith(".json") || f === "package.json").sort(),
    );
    for (const [file, size] of printed) {
      const ratio = size === 0 ? 1 : documented.get(file)! / size;
      assert.ok(
        ratio > 0.9 && ratio < 1.1,
        `${file}: README says ${documented.get(file)} kB, the build printed ${size} kB`,
      );
    }
  });

  for (const backend of backends) {
    test(`deno run dist/sync.mjs syncs into ${backend.name} with the README's narrowest permissions`, async (t) => {
      const db = await testDatabase(t, backend);
      const dir = alone();
      const args = ["run", ...permissions(db), "dist/sync.mjs", "--file", "users.json", "--database-url", db.url];
      const first = run(deno, args, dir);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /^users: 2 created, 0 updated, 0 unchanged$/m);
      assert.deepEqual((await usersRows(db)).map((r) => [r.username, r.enabled]), [["alice", 1], ["bob", 0]]);
      const second = run(deno, args, dir);
      assert.match(second.stdout, /^users: 0 created, 0 updated, 2 unchanged$/m);
    });
  }

  // Deno's node:sqlite ends an iterate() at a row it cannot read as if every row had been read: bob, after such a
  // row, would be taken for a user the database does not hold, and "state": "absent" would delete no one.
  test("a stored row SQLite cannot read fails the run with exit 3 and changes nothing, under Deno and Node.js", async (t) => {
    const db = await testDatabase(t, sqliteBackend);
    const dir = alone();
    const sync = (runtime: "deno" | "node") =>
      runtime === "deno"
        ? run(deno, ["run", ...permissions(db), "dist/sync.mjs", "-f", "users.json", "-d", db.url], dir)
        : run(process.execPath, ["dist/sync.mjs", "-f", "users.json", "-d", db.url], dir);
    assert.equal(sync("node").code, 0);
    // A property stored as a BLOB: SQLite refuses to put it in the JSON object of the user's properties.
    await db.query(
      "INSERT INTO properties (owner, key, value, updated_at) SELECT subject, 'photo', x'00ff', 0 FROM users " +
        "WHERE username = 'bob'",
    );
    writeFileSync(join(dir, "users.json"), JSON.stringify([users[0], { username: "bob", state: "absent" }]));
    for (const runtime of ["deno", "node"] as const) {
      const result = sync(runtime);
      assert.equal(result.code, 3, `${runtime}: ${result.stdout}${result.stderr}`);
      assert.match(result.stderr, /^error: SQLite .*JSON cannot hold BLOB values/m, runtime);
      assert.deepEqual((await usersRows(db)).map((r) => r.username), ["alice", "bob"], runtime);
    }
  });

  test("without --allow-ffi the bundle names the permission and its flag, exit 2, no stack trace", async (t) => {
    const db = await testDatabase(t, postgresBackend);
    const dir = alone();
    const args = permissions(db).filter((p) => !p.startsWith("--allow-ffi"));
    const result = run(deno, ["run", ...args, "dist/sync.mjs", "--file", "users.json", "-d", db.url], dir);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /^error: Deno did not grant ffi access to .*: run again with --allow-ffi/m);
    assert.doesNotMatch(result.stderr, /rebuild|\n\s+at /);
    assert.equal(await postgresBackend.tableExists(db, "users"), false, "the run went on to the database");
  });

  test("deno run sync.ts with no permissions names the missing permission and its flag, exit 2, no stack trace", () => {
    const result = run(deno, ["run", "sync.ts", "--file", "examples/users.json", "--dry-run"], root);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /^error: Deno did not grant (\w+) access .*: run again with --allow-\1\b/m);
    assert.doesNotMatch(result.stderr, /NotCapable|\n\s+at /);
  });

  test("--validate under Deno needs only read access to dist/ and the file", () => {
    const result = run(
      deno,
      ["run", "--allow-read=dist,users.json", "dist/sync.mjs", "-f", "users.json", "--validate"],
      alone(),
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "users.json: 2 users, valid\n");
  });

  const node20 = oldNode();
  test("Node.js 20 runs the bundle for PostgreSQL, --validate and hash-password", { skip: !node20 }, async (t) => {
    const db = await testDatabase(t, postgresBackend);
    const dir = alone();
    const synced = run(node20!, ["dist/sync.mjs", "-f", "users.json", "-d", db.url], dir);
    assert.equal(synced.code, 0, synced.stderr);
    assert.equal((await usersRows(db)).length, 2);
    assert.equal(run(node20!, ["dist/sync.mjs", "-f", "users.json", "--validate"], dir).code, 0);
    const hashed = run(node20!, ["dist/sync.mjs", "hash-password"], dir, "a-passphrase\n");
    assert.equal(hashed.code, 0, hashed.stderr);
    assert.match(hashed.stdout, /^\$argon2id\$/);
  });

  test(
    "Node.js 20 with a SQLite URL: exit 2 and one sentence naming the runtime SQLite needs",
    { skip: !node20 },
    () => {
      const dir = alone();
      const result = run(node20!, ["dist/sync.mjs", "-f", "users.json", "-d", "sqlite://x.db?mode=rwc"], dir);
      assert.equal(result.code, 2, result.stderr);
      assert.match(
        result.stderr,
        /^error: SQLite needs the runtime's node:sqlite, which Node\.js 20\.\d+\.\d+ does not have: run with Node\.js 22\.13\+ or Deno 2\.2\+/m,
      );
      assert.equal(existsSync(join(dir, "x.db")), false);
      assert.ok(readFileSync(join(dir, "users.json"), "utf8").includes("alice"));
    },
  );
});
