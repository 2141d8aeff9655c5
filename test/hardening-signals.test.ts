/**
 * Issue 12, part A: database URLs that leaked a password or hung, signals
 * that had to wait (for a SQLite lock, for Argon2), "rolling back" printed
 * after a commit, and a password_file that never ends. Each test fails on the
 * code before the fix; each waits for the event it needs, never a fixed time.
 */

import assert from "node:assert/strict";
import { createServer } from "node:net";
import { describe, test, type TestContext } from "node:test";
import {
  type Backend,
  postgresBackend,
  type RunningSync,
  type RunResult,
  runSync,
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
