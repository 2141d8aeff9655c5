/**
 * Issue 12, part A: database URLs that leaked a password or hung, signals
 * that had to wait (for a SQLite lock, for Argon2), "rolling back" printed
 * after a commit, and a password_file that never ends. Each test fails on the
 * code before the fix; each waits for the event it needs, never a fixed time.
 */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import {
  closeSync,
  constants,
  mkdtempSync,
  openSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, test } from "node:test";
import postgres from "postgres";
import { argon2Hash } from "../deps.ts";
import { ARGON2_OPTIONS } from "../sync.ts";
import {
  backends,
  connectionCounter,
  postgresBackend,
  type RunningSync,
  type RunResult,
  runSync,
  sqliteBackend,
  startSync,
  type TestDatabase,
  testDatabase,
  usersFile,
  usersRows,
} from "./support/helpers.ts";

const alice = { username: "alice", password: "alice-first-passphrase", email: "alice@example.com" };
const bob = { username: "bob", password: "bob-first-passphrase" };
const SIGNALS = [["SIGTERM", 143], ["SIGINT", 130]] as const;

const database = testDatabase;

/** The rows of the tables a sync writes, or none where a table does not exist yet. */
async function snapshot(db: TestDatabase): Promise<unknown[]> {
  const rows = (sql: string) => db.query(sql).catch(() => []);
  return [
    await usersRows(db).catch(() => []),
    await rows("SELECT owner, key, value, updated_at FROM properties ORDER BY owner, key"),
    await rows("SELECT file_key, pairs_hash, hashes_digest FROM user_sync_state ORDER BY file_key"),
  ];
}

/** The SQLite file of a test database, as the kernel names it. */
function sqlitePath(db: TestDatabase): string {
  return realpathSync(db.url.replace(/^sqlite:\/\//, "").replace(/\?.*$/, ""));
}

/** Polls `condition` every 20 ms until it holds (at most 30 s): the moment a test needs, however slow the machine. */
async function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`never happened: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Whether process `pid` has the file `path` open. */
function hasOpen(pid: number, path: string): boolean {
  try {
    return readdirSync(`/proc/${pid}/fd`).some((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`) === path;
      } catch {
        return false;
      }
    });
  } catch {
    return false;
  }
}

/** Whether the sync has a statement on the server that matches `where` (SQL over pg_stat_activity). */
async function syncSession(db: TestDatabase, where: string): Promise<boolean> {
  const rows = await db.query(
    `SELECT pid FROM pg_stat_activity WHERE application_name = 'barycenter-user-sync' AND ${where}`,
  );
  return rows.length > 0;
}

/**
 * Sends `signal` and waits for the process to end. It must end within
 * `limit` ms; one that is still running a few seconds later is killed, and
 * the test fails.
 */
async function stopWith(running: RunningSync, signal: NodeJS.Signals, limit = 2000): Promise<RunResult> {
  const sent = performance.now();
  running.child.kill(signal);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const overdue = new Promise<"overdue">((resolve) => (timer = setTimeout(resolve, limit + 3000, "overdue")));
  const run = await Promise.race([running.result, overdue]);
  clearTimeout(timer);
  if (run === "overdue") {
    running.child.kill("SIGKILL");
    const killed = await running.result;
    assert.fail(`still running ${limit + 3000} ms after ${signal}:\n${killed.stdout}${killed.stderr}`);
  }
  const ms = Math.round(performance.now() - sent);
  assert.ok(ms < limit, `ended ${ms} ms after ${signal}, more than ${limit} ms:\n${run.stderr}`);
  assert.doesNotMatch(run.stderr, /\n\s+at /, "printed a stack trace");
  return run;
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
      /users\[0\]\.password_file \(user "alice"\): cannot read password_file \/\S+\/fifo: it is a named pipe, not a regular file/,
    );
    assert.match(
      run.stderr,
      /users\[1\]\.password_file \(user "bob"\): cannot read password_file \/dev\/zero: it is a character device, not a regular file/,
    );
    assert.doesNotMatch(run.stderr, /carol/);
    assert.deepEqual(await snapshot(db), [[], [], []]);
    writeFileSync(file, JSON.stringify([{ username: "carol", password_file: "carol" }]));
    const ok = await runSync(["--file", file, "--database-url", db.url]);
    assert.equal(ok.code, 0, ok.stderr);
  });
});

describe("signals end the run within 2 s in every state, and say truly what became of it", () => {
  test("reading a users file that is a FIFO: exit 143, nothing changed", async (t) => {
    const db = await database(t, sqliteBackend);
    const dir = mkdtempSync(join(tmpdir(), "user-sync-fifo-"));
    const fifo = join(dir, "users.json");
    execFileSync("mkfifo", [fifo]);
    const running = startSync(["--file", fifo, "--database-url", db.url]);
    // Opening the FIFO's other end without blocking succeeds once the sync has it open for reading.
    let writer = -1;
    await until(() => {
      try {
        writer = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
        return true;
      } catch {
        return false;
      }
    }, "the sync opened the users file");
    t.after(() => closeSync(writer));
    const run = await stopWith(running, "SIGTERM");
    assert.equal(run.code, 143, run.stderr);
    assert.match(run.stderr, /received SIGTERM: stopping; nothing was changed/);
  });

  for (const [signal, code] of SIGNALS) {
    test(`SQLite locked by another writer: ${signal} ends the wait, exit ${code}, nothing changed`, async (t) => {
      const db = await database(t, sqliteBackend);
      assert.equal((await runSync(["--file", usersFile([alice]), "--database-url", db.url])).code, 0);
      const before = await snapshot(db);
      const holder = new DatabaseSync(sqlitePath(db));
      holder.exec("BEGIN IMMEDIATE");
      t.after(() => holder.close());
      const running = startSync(["--file", usersFile([alice, bob]), "--database-url", db.url, "--wait", "20"]);
      // Once the file is open the sync waits for the lock: it has nothing else to do before BEGIN.
      await until(() => hasOpen(running.child.pid!, sqlitePath(db)), "the sync opened the database");
      const run = await stopWith(running, signal);
      holder.exec("ROLLBACK");
      assert.equal(run.code, code, run.stderr);
      assert.match(
        run.stderr,
        /is locked by another writer \(Barycenter or another sync\); waiting up to 20 s \(--wait\)/,
      );
      assert.match(run.stderr, new RegExp(`received ${signal}: stopping; nothing was changed`));
      assert.deepEqual(await snapshot(db), before);
    });
  }

  test("SQLite commit waiting for a reader: SIGTERM rolls back; once the reader is done the commit goes through", async (t) => {
    const db = await database(t, sqliteBackend);
    assert.equal((await runSync(["--file", usersFile([alice]), "--database-url", db.url])).code, 0);
    const before = await snapshot(db);
    const reader = new DatabaseSync(sqlitePath(db));
    t.after(() => reader.close());
    const file = usersFile([alice, bob]);
    for (const ending of ["signal", "reader done"]) {
      // A read transaction holds SQLite's shared lock until it ends: a commit (outside WAL mode) must wait for it.
      reader.exec("BEGIN");
      reader.prepare("SELECT count(*) FROM users").get();
      const running = startSync(["--file", file, "--database-url", db.url, "--wait", "20"]);
      await running.waitFor(/the commit waits for the readers, up to 20 s/);
      if (ending === "signal") {
        const run = await stopWith(running, "SIGTERM");
        reader.exec("ROLLBACK");
        assert.equal(run.code, 143, run.stderr);
        assert.match(run.stderr, /received SIGTERM: rolling back; nothing was changed/);
        assert.deepEqual(await snapshot(db), before);
      } else {
        reader.exec("ROLLBACK");
        const run = await running.result;
        assert.equal(run.code, 0, run.stderr);
        assert.match(run.stdout, /^users: 1 created, 0 updated, 1 unchanged$/m);
      }
    }
  });

  test("SQLite dry run meeting an exclusive writer waits for it, and SIGTERM ends the wait", async (t) => {
    const db = await database(t, sqliteBackend);
    assert.equal((await runSync(["--file", usersFile([alice]), "--database-url", db.url])).code, 0);
    const holder = new DatabaseSync(sqlitePath(db));
    holder.exec("BEGIN EXCLUSIVE");
    t.after(() => holder.close());
    const running = startSync(["--file", usersFile([alice, bob]), "--database-url", db.url, "--dry-run"]);
    await running.waitFor(/is locked by another writer/);
    const run = await stopWith(running, "SIGTERM");
    holder.exec("ROLLBACK");
    assert.equal(run.code, 143, run.stderr);
    assert.match(run.stderr, /received SIGTERM: stopping; nothing was changed/);
  });

  test("PostgreSQL not reachable yet: SIGTERM between attempts says nothing of rolling back", async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const { port } = probe.address() as { port: number };
    await new Promise((resolve) => probe.close(resolve));
    const running = startSync([
      "--file",
      usersFile([alice]),
      "--database-url",
      `postgres://u:pw-do-not-print@127.0.0.1:${port}/db`,
      "--wait",
      "30",
    ]);
    await running.waitFor(/not reachable yet \(attempt 1:/);
    const run = await stopWith(running, "SIGTERM");
    assert.equal(run.code, 143, run.stderr);
    assert.match(run.stderr, /received SIGTERM: stopping; nothing was changed/);
    assert.doesNotMatch(run.stderr, /rolling back|pw-do-not-print/);
  });

  test("PostgreSQL: SIGTERM while waiting for another sync's lock, and while writing, rolls back", async (t) => {
    const db = await database(t, postgresBackend);
    assert.equal((await runSync(["--file", usersFile([alice]), "--database-url", db.url])).code, 0);
    const before = await snapshot(db);
    const holder = postgres(db.url, { max: 1, onnotice: () => {} });
    t.after(() => holder.end());
    const session = await holder.reserve();
    await session`BEGIN`;
    await session`SELECT pg_advisory_xact_lock(5356544628862928228)`;
    const waiting = startSync(["--file", usersFile([alice, bob]), "--database-url", db.url]);
    await until(() => syncSession(db, "wait_event_type = 'Lock'"), "the sync waits for the advisory lock");
    const first = await stopWith(waiting, "SIGTERM");
    await session`ROLLBACK`;
    session.release();
    assert.equal(first.code, 143, first.stderr);
    assert.match(first.stderr, /received SIGTERM: rolling back; nothing was changed/);

    // The server notices the sync's connection is gone even while the statement sleeps, and rolls back at once.
    await db.query(`ALTER DATABASE ${new URL(db.url).pathname.slice(1)} SET client_connection_check_interval = 200`);
    await db.query(`
      CREATE FUNCTION slow_user() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(30); RETURN NEW; END $$;
      CREATE TRIGGER slow_user BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION slow_user();`);
    const writing = startSync(["--file", usersFile([alice, bob]), "--database-url", db.url]);
    await until(() => syncSession(db, "state = 'active' AND query LIKE '%INSERT INTO users%'"), "the sync writes");
    const second = await stopWith(writing, "SIGTERM");
    assert.equal(second.code, 143, second.stderr);
    assert.match(second.stderr, /received SIGTERM: rolling back; nothing was changed/);
    await until(async () => !(await syncSession(db, "true")), "the server ended the sync's session");
    assert.deepEqual(await snapshot(db), before);
  });

  test("PostgreSQL: SIGTERM during COMMIT waits for the server's answer and says what it was, never 'rolling back' after a commit", async (t) => {
    const db = await database(t, postgresBackend);
    assert.equal((await runSync(["--file", usersFile([alice]), "--database-url", db.url])).code, 0);
    // A deferred trigger runs at COMMIT: each new row makes the commit take `seconds`.
    const slowCommit = (seconds: number) =>
      db.query(`
        CREATE OR REPLACE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_sleep(${seconds}); RETURN NULL; END $$;
        DROP TRIGGER IF EXISTS slow_commit ON users;
        CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON users DEFERRABLE INITIALLY DEFERRED
          FOR EACH ROW EXECUTE FUNCTION slow_commit();`);
    const committing = () => syncSession(db, "state = 'active' AND query = 'COMMIT'");

    await slowCommit(0.6);
    const quick = startSync(["--file", usersFile([alice, bob]), "--database-url", db.url]);
    await until(committing, "the sync commits");
    const answered = await stopWith(quick, "SIGTERM");
    assert.equal(answered.code, 143, answered.stderr);
    assert.match(answered.stderr, /received SIGTERM: stopping; the sync had already committed its changes/);
    assert.doesNotMatch(answered.stderr, /rolling back/);
    assert.deepEqual((await usersRows(db)).map((r) => r.username), ["alice", "bob"]);

    await db.query("DELETE FROM users WHERE username = 'bob'");
    const before = await snapshot(db);
    await slowCommit(4);
    const slow = startSync(["--file", usersFile([alice, bob]), "--database-url", db.url]);
    await until(committing, "the sync commits");
    const unanswered = await stopWith(slow, "SIGTERM");
    assert.equal(unanswered.code, 143, unanswered.stderr);
    assert.match(unanswered.stderr, /received SIGTERM: stopping during the commit, which PostgreSQL did not confirm/);
    assert.doesNotMatch(unanswered.stderr, /rolling back/);
    await until(async () => !(await syncSession(db, "true")), "the server finished the sync's session");
    const usernames = (await usersRows(db)).map((r) => r.username);
    if (usernames.length === 1) assert.deepEqual(await snapshot(db), before);
    else assert.deepEqual(usernames, ["alice", "bob"]);
  });

  for (const backend of backends) {
    for (const [signal, code] of SIGNALS) {
      test(`${backend.name}: ${signal} during a costly Argon2 verification exits ${code} at once, rolled back`, async (t) => {
        const db = await database(t, backend);
        assert.equal((await runSync(["--file", usersFile([alice]), "--database-url", db.url])).code, 0);
        // 260 users whose stored hashes verify in no time, and one whose stored hash takes a minute:
        // what a file's password_hash with huge costs leaves behind for the next sync to verify.
        const cheap = await argon2Hash("filler-password", { ...ARGON2_OPTIONS, memoryCost: 8, timeCost: 1 });
        const costly =
          "$argon2id$v=19$m=19456,t=3000,p=1$YqKhrx7QNc3wQCM8woz2gQ$8ENm6EsmWVby4YylueEkOtQYwNB3Hvz8ov8Hpy0bkz4";
        const row = (name: string, hash: string) => `('subject-${name}', '${name}', '${hash}', NULL, 0, 0, 1)`;
        const fillers = Array.from({ length: 260 }, (_, i) => `filler${i}`);
        await db.query(`
          INSERT INTO users (subject, username, password_hash, email, email_verified, created_at, enabled) VALUES
          ${[row("victim", costly), ...fillers.map((name) => row(name, cheap))].join(",\n")}`);
        const before = await snapshot(db);
        const users = [
          { username: "victim", password: "victim-passphrase" },
          ...fillers.map((username) => ({ username, password: "filler-password" })),
        ];
        const running = startSync(["--file", usersFile(users), "--database-url", db.url]);
        // The costly verification is the first one started.
        await running.waitFor(/verifying passwords: 0\/261/);
        const run = await stopWith(running, signal);
        assert.equal(run.code, code, run.stderr);
        assert.match(run.stderr, new RegExp(`received ${signal}: rolling back; nothing was changed`));
        assert.deepEqual(await snapshot(db), before);
      });
    }
  }
});
