/**
 * Start-up (issue 17): the bundle, run as the image runs it, loads only what a
 * run uses. What Node.js loaded is read from the child's own
 * `process.moduleLoadList`, written at its exit by a preloaded module.
 */

import assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, writeFileSync, writeSync } from "node:fs";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { lineWriter } from "../sync.ts";
import { SYNC, usersFile } from "./support/helpers.ts";

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
    const command = [process.execPath, ...imageFlags, "--import", preload, join(out, "sync.mjs"), ...args];
    if (piped) {
      // A pipe as a shell (or a container runtime's FIFO) makes one, not Node.js's "pipe", which is a socket.
      const result = spawnSync("/bin/sh", ["-c", '"$@" 2>&1 | cat', "sh", ...command], {
        env: { PATH: process.env.PATH ?? "" },
        stdio: ["ignore", "pipe", "inherit"],
        encoding: "utf8",
      });
      return { code: result.status, modules: readFileSync(list, "utf8").split("\n"), printed: result.stdout };
    }
    const output = openSync(join(out, "output.txt"), "w");
    const result = spawnSync(command[0], command.slice(1), {
      env: { PATH: process.env.PATH ?? "" },
      stdio: ["ignore", output, output],
      encoding: "utf8",
    });
    closeSync(output);
    const printed = readFileSync(join(out, "output.txt"), "utf8");
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

describe("lines written with writeSync, not through process.stdout", () => {
  test("on a non-blocking pipe that fills, the rest of the line and every later one go to the stream, in order", async () => {
    const fifo = join(mkdtempSync(join(tmpdir(), "user-sync-pipe-")), "log");
    execFileSync("mkfifo", [fifo]);
    // A log pipe opened non-blocking, as a parent may share it, filled by a slow reader to all but one of its 16
    // pages (Linux's 64 KiB): the first line, longer than that, is written in part, then the pipe is full.
    const fd = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    let filler = 0;
    for (let page = 0; page < 15; page++) filler += writeSync(fd, Buffer.alloc(4096, "."));
    const readEnd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const reader = new Socket({ fd: readEnd, readable: true });
    reader.pause();
    const lines = ["L".repeat(20_000), ...Array.from({ length: 50 }, (_, i) => `line ${i}`)];
    const expected = ".".repeat(filler) + lines.map((line) => `${line}\n`).join("");
    let received = "";
    const all = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`${received.length} of ${expected.length} bytes arrived`)),
        10_000,
      );
      reader.setEncoding("utf8").on("data", (data: string) => {
        received += data;
        if (received.length >= expected.length) resolve(clearTimeout(timer));
      });
    });
    // What process.stdout is for a pipe: a stream on the same descriptor, which waits until the pipe has room.
    const stream = new Socket({ fd, readable: false });
    const write = lineWriter(fd, () => stream);
    write(lines[0]);
    // The reader takes 16 KiB: there is room again, but the rest of the first line still waits in the stream.
    const early = Buffer.alloc(16_384);
    received = early.subarray(0, readSync(readEnd, early)).toString();
    for (const line of lines.slice(1)) write(line);
    reader.resume();
    await all.finally(() => {
      stream.destroy();
      reader.destroy();
    });
    assert.equal(received.length, expected.length);
    assert.ok(received === expected, "the lines arrived changed or out of order");
  });
});

describe("a log reader that stops reading", () => {
  test("does not keep SIGTERM from ending the run at once", async () => {
    const dir = mkdtempSync(join(tmpdir(), "user-sync-stalled-"));
    const fifo = join(dir, "log");
    execFileSync("mkfifo", [fifo]);
    // Standard output: a pipe whose reader has stopped, full before the run writes its first line.
    const log = openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK);
    try {
      for (;;) writeSync(log, Buffer.alloc(4096, "."));
    } catch (error) {
      assert.equal((error as { code?: string }).code, "EAGAIN");
    }
    // requires_2fa before Barycenter added its column: a warning (standard error) after the user lines (output).
    const users = Array.from({ length: 300 }, (_, i) => ({ username: `user${i}`, password_hash: HASH }));
    const file = usersFile([{ ...users[0], requires_2fa: true }, ...users.slice(1)]);
    const child = spawn(process.execPath, [SYNC, "--file", file, "--database-url", `sqlite://${dir}/u.db?mode=rwc`], {
      env: { PATH: process.env.PATH ?? "" },
      stdio: ["ignore", log, "pipe"],
    });
    closeSync(log);
    let stderr = "";
    const ended = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      child.once("close", (code, signal) => resolve({ code, signal }))
    );
    const warned = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no warning within 30 s; standard error:\n${stderr}`)), 30_000);
      child.stderr!.setEncoding("utf8").on("data", (data: string) => {
        stderr += data;
        if (/requires_2fa not applied/.test(stderr)) resolve(clearTimeout(timer));
      });
    });
    try {
      await warned;
      const sent = performance.now();
      child.kill("SIGTERM");
      let timer: ReturnType<typeof setTimeout> | undefined;
      const overdue = new Promise<"overdue">((resolve) => (timer = setTimeout(resolve, 5000, "overdue")));
      const outcome = await Promise.race([ended, overdue]);
      clearTimeout(timer);
      assert.notEqual(outcome, "overdue", "still running 5 s after SIGTERM");
      const ms = performance.now() - sent;
      assert.ok(ms < 2000, `ended ${Math.round(ms)} ms after SIGTERM`);
    } finally {
      child.kill("SIGKILL");
    }
  });
});

/** An Argon2id hash (of "x", Barycenter's parameters): a sync that stores it hashes nothing. */
const HASH = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0n9O8Df5/wJ5jQmRVQ8M3gFrwFyy4mdSu7Ap0Zp2V6I";
