/**
 * Issue 12, part A: database URLs that leaked a password or hung, signals
 * that had to wait (for a SQLite lock, for Argon2), "rolling back" printed
 * after a commit, and a password_file that never ends. Each test fails on the
 * code before the fix; each waits for the event it needs, never a fixed time.
 */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import {
  type Backend,
  postgresBackend,
  type RunningSync,
  type RunResult,
  runSync,
  sqliteBackend,
  startSync,
  type TestDatabase,
  usersFile,
  usersRows,
} from "./support/helpers.ts";

const alice = { username: "alice", password: "alice-first-passphrase", email: "alice@example.com" };

async function database(t: TestContext, backend: Backend): Promise<TestDatabase> {
  const db = await backend.create();
  t.after(() => db.close());
  return db;
}

/** The rows of the tables a sync writes, or none where a table does not exist yet. */
async function snapshot(db: TestDatabase): Promise<unknown[]> {
  const rows = (sql: string) => db.query(sql).catch(() => []);
  return [
    await usersRows(db).catch(() => []),
    await rows("SELECT owner, key, value, updated_at FROM properties ORDER BY owner, key"),
    await rows("SELECT file_key, pairs_hash, hashes_digest FROM user_sync_state ORDER BY file_key"),
  ];
}

/** A run that must end by itself within `limit` ms; one that does not is killed and the test fails. */
async function endsWithin(running: RunningSync, limit: number): Promise<RunResult> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const overdue = new Promise<"overdue">((resolve) => (timer = setTimeout(resolve, limit, "overdue")));
  const run = await Promise.race([running.result, overdue]);
  clearTimeout(timer);
  if (run === "overdue") {
    running.child.kill("SIGKILL");
    const killed = await running.result;
    assert.fail(`still running after ${limit} ms:\n${killed.stdout}${killed.stderr}`);
  }
  return run;
}

/** A TCP listener that counts connections: proof that the tool opened none. */
async function connectionCounter(t: TestContext): Promise<{ port: number; count: () => number }> {
  let count = 0;
  const server = createServer((socket) => {
    count++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => server.close());
  return { port: (server.address() as { port: number }).port, count: () => count };
}

describe("database URLs", () => {
  test("an unencoded @, /, ? or # in the password is refused as ambiguous (exit 2), and no piece of it is printed", async (t) => {
    const counter = await connectionCounter(t);
    const file = usersFile([alice]);
    const at = `127.0.0.1:${counter.port}`;
    const cases = [
      // The URL: the driver read "efgh" and "ijklmnop8" as hosts and printed them.
      [`postgres://u:abcd@efgh,ijklmnop8@${at}/db`, ["abcd", "efgh", "ijklmnop8"]],
      [`postgres://u:Wxyz@Qrst@${at}/db`, ["Wxyz", "Qrst"]],
      [`postgresql://u@corp:Hjkl@${at}/db`, ["Hjkl"]],
      [`postgres://u:1234/Vbnm@${at}/db`, ["1234", "Vbnm"]],
      [`postgres://u:5678?Zxcv@${at}/db`, ["5678", "Zxcv"]],
      [`postgres://u:9012#Tyui@${at}/db`, ["9012", "Tyui"]],
    ] as const;
    for (const [url, pieces] of cases) {
      const run = await endsWithin(startSync(["--file", file, "--database-url", url, "--wait", "1"]), 15_000);
      assert.equal(run.code, 2, `${url}: ${run.stderr}`);
      assert.match(run.stderr, /database URL is ambiguous: .* percent-encode them \(@ as %40/);
      for (const piece of pieces) assert.ok(!(run.stdout + run.stderr).includes(piece), `${url} printed ${piece}`);
    }
    assert.equal(counter.count(), 0, "a connection was opened");
  });

  test("percent-encoded, a password with @ , / ? # : works", async (t) => {
    const db = await database(t, postgresBackend);
    const password = "p@ss,w/rd?x#y:z%";
    const role = `sync_${Math.random().toString(36).slice(2, 10)}`;
    await db.query(`CREATE ROLE ${role} LOGIN PASSWORD '${password}'`);
    t.after(() => db.query(`DROP OWNED BY ${role}`).then(() => db.query(`DROP ROLE ${role}`)).catch(() => {}));
    await db.query(`GRANT ALL ON SCHEMA public TO ${role}`);
    const url = new URL(db.url);
    url.username = role;
    url.password = encodeURIComponent(password);
    const run = await runSync(["--file", usersFile([alice]), "--database-url", url.href]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual((await usersRows(db)).map((r) => r.username), ["alice"]);
  });

  test("several hosts are refused with exit 2 at once, whatever --wait, and nothing is connected to", async (t) => {
    const counter = await connectionCounter(t);
    const file = usersFile([alice]);
    for (
      const [url, wait] of [
        [`postgres://u:p@127.0.0.1:${counter.port},127.0.0.1:2/db`, "3"],
        ["postgres://u:p@nosuchhost-a,nosuchhost-b/db", "0"],
        // The driver decodes the host part: an encoded comma is a host list too.
        [`postgres://u:p@127.0.0.1%2C127.0.0.1:${counter.port}/db`, "1"],
      ]
    ) {
      const run = await endsWithin(startSync(["--file", file, "--database-url", url, "--wait", wait]), 10_000);
      assert.equal(run.code, 2, `${url}: ${run.stderr}`);
      assert.match(run.stderr, /the database URL names 2 hosts; Barycenter connects to a single host/);
    }
    assert.equal(counter.count(), 0, "a connection was opened");
  });
});

describe("a password_file that is not a regular file", () => {
  test("a FIFO, a device or a directory is refused at once (exit 2), saying what it is; a symlink to a file works", async (t) => {
    const db = await database(t, sqliteBackend);
    const dir = mkdtempSync(join(tmpdir(), "user-sync-pwfile-"));
    execFileSync("mkfifo", [join(dir, "fifo")]);
    writeFileSync(join(dir, "real"), "carol-passphrase\n");
    // A Kubernetes Secret volume: each key is a symlink into a ..data directory.
    symlinkSync("real", join(dir, "carol"));
    const file = join(dir, "users.json");
    writeFileSync(
      file,
      JSON.stringify([
        { username: "alice", password_file: "fifo" },
        { username: "bob", password_file: "/dev/zero" },
        { username: "carol", password_file: "carol" },
      ]),
    );
    const run = await endsWithin(startSync(["--file", file, "--database-url", db.url]), 10_000);
    assert.equal(run.code, 2, run.stderr);
    assert.match(
      run.stderr,
      /users\[0\]\.password_file \(user "alice"\): cannot read fifo \(it is a named pipe, not a regular file\)/,
    );
    assert.match(
      run.stderr,
      /users\[1\]\.password_file \(user "bob"\): cannot read \/dev\/zero \(it is a character device, not a regular file\)/,
    );
    assert.doesNotMatch(run.stderr, /carol/);
    assert.deepEqual(await snapshot(db), [[], [], []]);
    writeFileSync(file, JSON.stringify([{ username: "carol", password_file: "carol" }]));
    const ok = await runSync(["--file", file, "--database-url", db.url]);
    assert.equal(ok.code, 0, ok.stderr);
  });
});
