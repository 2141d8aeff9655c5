/**
 * The test command's exit status is the verdict of the run: a gate that
 * cannot fail guards nothing. Each test runs `npm test` on a fixture file
 * (not part of the normal run), in a temporary directory of its own.
 *
 * @module
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`fixtures/${name}`, import.meta.url));

/** Runs `npm test -- ...args` in the project, with `dir` as its temporary directory. */
function testCommand(dir: string, ...args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("npm", ["test", "--", ...args], {
      cwd: ROOT,
      // npm keeps a compile cache of its own in the temporary directory; it is not the run's litter.
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? dir,
        TMPDIR: dir,
        NODE_DISABLE_COMPILE_CACHE: "1",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.setEncoding("utf8").on("data", (d) => (output += d));
    child.stderr.setEncoding("utf8").on("data", (d) => (output += d));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, output }));
  });
}

/** A new, empty temporary directory that the server's system user can reach, as /tmp is. */
function reachableTempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "user-sync-testcmd-"));
  chmodSync(dir, 0o755);
  return dir;
}

describe("the test command", () => {
  test("exits non-zero when a test fails", async () => {
    const run = await testCommand(reachableTempDir(), fixture("failing.fixture.ts"));
    assert.notEqual(run.code, 0, run.output);
    assert.match(run.output, /fails on purpose/);
  });

  test("exits 0 when every test passes, and leaves nothing in the temporary directory", async () => {
    const dir = reachableTempDir();
    const run = await testCommand(dir, fixture("passing.fixture.ts"));
    assert.equal(run.code, 0, run.output);
    assert.match(run.output, /pass 1/);
    assert.deepEqual(readdirSync(dir), []);
  });

  test("exits non-zero when the PostgreSQL server cannot start", {
    skip: process.getuid?.() !== 0 && "needs root: the server's own system user is kept out of its folder",
  }, async () => {
    // As root, the server runs as the `postgres` system user, which cannot enter a 0700 folder of root's.
    const dir = mkdtempSync(join(tmpdir(), "user-sync-testcmd-"));
    const run = await testCommand(dir, fixture("passing.fixture.ts"));
    assert.notEqual(run.code, 0, run.output);
    assert.match(run.output, /the PostgreSQL server did not start/);
    assert.deepEqual(readdirSync(dir), []);
  });
});
