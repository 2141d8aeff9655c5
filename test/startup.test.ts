/**
 * Start-up (issue 17): the bundle, run as the image runs it, loads only what a
 * run uses. What Node.js loaded is read from the child's own
 * `process.moduleLoadList`, written at its exit by a preloaded module.
 */

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { usersFile } from "./support/helpers.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

/** The Node.js flags of the Dockerfile's ENTRYPOINT, as bench.ts reads them. */
const imageFlags: string[] = JSON.parse(
  /^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(join(root, "Dockerfile"), "utf8"))![1],
).slice(1, -1);

describe("start-up of the bundle", () => {
  let out: string;
  before(() => {
    out = mkdtempSync(join(tmpdir(), "user-sync-startup-"));
    execFileSync(process.execPath, [join(root, "build.mjs"), "--outdir", out], { encoding: "utf8" });
  });

  /**
   * Runs the bundle as the image does; its exit status, the built-in modules Node.js loaded and, with `piped`
   * (as a pod's log is), what it printed.
   */
  function loadedBy(args: string[], piped = false): { code: number | null; modules: string[]; printed: string } {
    const list = join(out, `modules-${Math.random().toString(36).slice(2)}.txt`);
    const preload = join(out, "module-list.mjs");
    writeFileSync(
      preload,
      // Not an ES module import of node:fs, which would load what its lazy exports load (its streams, its promises).
      `const { writeFileSync } = process.getBuiltinModule("node:fs");
process.on("exit", () => writeFileSync(${JSON.stringify(list)}, process.moduleLoadList.join("\\n")));\n`,
    );
    // Else output to a file: the preload's own writes would not tell a pipe apart.
    const output = piped ? "pipe" : openSync(join(out, "output.txt"), "w");
    const result = spawnSync(process.execPath, [...imageFlags, "--import", preload, join(out, "sync.mjs"), ...args], {
      env: { PATH: process.env.PATH ?? "" },
      stdio: ["ignore", output, output],
      encoding: "utf8",
    });
    if (typeof output === "number") closeSync(output);
    const printed = piped ? `${result.stdout}${result.stderr}` : readFileSync(join(out, "output.txt"), "utf8");
    return { code: result.status, modules: readFileSync(list, "utf8").split("\n"), printed };
  }

  test("--validate loads neither the PostgreSQL driver's node:net and node:tls nor node:crypto", () => {
    const { code, modules } = loadedBy(["--validate", "--file", usersFile([{ username: "a", password: "a-pass" }])]);
    assert.equal(code, 0);
    for (const name of ["net", "tls", "crypto"]) {
      assert.ok(!modules.includes(`NativeModule ${name}`), `${name} was loaded: ${modules.join(", ")}`);
    }
  });

  test("--validate printing to a pipe loads no stream, node:net, node:fs/promises nor perf_hooks", () => {
    const users = usersFile([{ username: "a", password: "a-pass" }]);
    const { code, modules, printed } = loadedBy(["--validate", "--file", users], true);
    assert.equal(code, 0);
    assert.match(printed, /: 1 user, valid\n$/);
    // A stream for standard output (a socket, for a pipe) would load these; so would the promises API of node:fs.
    for (const name of ["stream", "net", "fs/promises", "perf_hooks", "internal/readline/interface"]) {
      assert.ok(!modules.includes(`NativeModule ${name}`), `${name} was loaded: ${modules.join(", ")}`);
    }
  });

  test("a sync into SQLite loads node:crypto, and not the PostgreSQL driver's node:net and node:tls", () => {
    const dir = mkdtempSync(join(tmpdir(), "user-sync-startup-db-"));
    const users = usersFile([{ username: "a", password_hash: HASH }]);
    const { code, modules } = loadedBy(["--file", users, "--database-url", `sqlite://${dir}/b.db?mode=rwc`]);
    assert.equal(code, 0);
    assert.ok(modules.includes("NativeModule crypto"));
    for (const name of ["net", "tls"]) {
      assert.ok(!modules.includes(`NativeModule ${name}`), `${name} was loaded: ${modules.join(", ")}`);
    }
  });
});

/** An Argon2id hash (of "x", Barycenter's parameters): a sync that stores it hashes nothing. */
const HASH = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0n9O8Df5/wJ5jQmRVQ8M3gFrwFyy4mdSu7Ap0Zp2V6I";
