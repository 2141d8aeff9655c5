/**
 * Real clusters: a database that is not up yet, parallel pods, kills, and
 * hostile input. Each behaviour runs on every backend where it applies.
 */

import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { createConnection, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { isDeepStrictEqual } from "node:util";
import postgres from "postgres";
import { InputError, parseUsersJson, validateUsers } from "../sync.ts";
import {
  backends,
  postgresBackend,
  type RunningSync,
  type RunResult,
  runSync,
  startSync,
  SYNC,
  type TestDatabase,
  testDatabase,
  usersFile,
  usersRows,
} from "./support/helpers.ts";

const alice = { username: "alice", password: "alice-first-passphrase", email: "alice@example.com" };
const bob = { username: "bob", password: "bob-first-passphrase" };

function manyUsers(count: number) {
  return Array.from({ length: count }, (_, i) => ({ username: `user${i}`, password: `password-${i}` }));
}

const database = testDatabase;

/** Rows of `users`, or none when the table does not exist (a rolled-back first run). */
async function usersOrNone(db: TestDatabase) {
  return await usersRows(db).catch(() => []);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Waits until the sync has a statement whose text matches `like` running on
 * the server (polling `pg_stat_activity`, for at most 30 s) and returns the
 * backend's pid: the moment a test needs, however slow the machine is.
 */
async function runningStatement(db: TestDatabase, like: string): Promise<number> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const [row] = await db.query(`
      SELECT pid FROM pg_stat_activity
      WHERE application_name = 'barycenter-user-sync' AND query LIKE '${like}' AND state = 'active'`);
    if (row) return Number(row.pid);
    await sleep(50);
  }
  throw new Error(`the sync never ran a statement like ${like}`);
}

/**
 * SQL for a PostgreSQL trigger that makes each write of a `users` row take
 * `seconds` (only for `username`, when given): a statement slow on purpose.
 */
function slowUsersTrigger(
  seconds: number,
  { on = "INSERT", username }: { on?: string; username?: string } = {},
): string {
  const sleep = username
    ? `IF NEW.username = '${username}' THEN PERFORM pg_sleep(${seconds}); END IF;`
    : `PERFORM pg_sleep(${seconds});`;
  return `
    CREATE FUNCTION slow_user() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN ${sleep} RETURN NEW; END $$;
    CREATE TRIGGER slow_user BEFORE ${on} ON users FOR EACH ROW EXECUTE FUNCTION slow_user();`;
}

for (const backend of backends) {
  describe(`kills and faults on ${backend.name}`, () => {
    for (const [signal, code] of [["SIGTERM", 143], ["SIGINT", 130]] as const) {
      test(`${signal} in the middle of hashing rolls back, exits ${code}; the next run completes`, async (t) => {
        const db = await database(t, backend);
        const file = usersFile(manyUsers(400));
        const running = startSync(["--file", file, "--database-url", db.url]);
        await running.waitFor(/hashing passwords: 0\/400/);
        running.child.kill(signal);
        const run = await running.result;
        assert.equal(run.code, code, run.stderr);
        assert.match(run.stderr, new RegExp(`received ${signal}: rolling back; nothing was changed`));
        assert.deepEqual(await usersOrNone(db), []);
        const again = await runSync(["--file", file, "--database-url", db.url]);
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stdout, /^users: 400 created, 0 updated, 0 unchanged$/m);
      });
    }
  });
}

describe("kills and faults on postgres", () => {
  test("the connection killed in the middle of the write phase leaves the database as before; the next run completes", async (t) => {
    const db = await database(t, postgresBackend);
    assert.equal((await runSync(["--file", usersFile([alice]), "--database-url", db.url])).code, 0);
    const before = await usersRows(db);
    // Holds the write phase open long enough to be killed from a second session.
    await db.query(slowUsersTrigger(5, { username: "slow" }));
    const file = usersFile([
      { ...alice, password: "alice-second-passphrase" },
      { username: "slow", password: "x" },
      bob,
    ]);
    const running = startSync(["--file", file, "--database-url", db.url]);
    const pid = await runningStatement(db, "%INSERT INTO users%");
    const [killed] = await db.query(`SELECT pg_terminate_backend(${pid}) AS done`);
    assert.equal(killed.done, true);
    const run = await running.result;
    assert.equal(run.code, 3, run.stderr);
    assert.deepEqual(await usersRows(db), before);
    await db.query("DROP TRIGGER slow_user ON users");
    const again = await runSync(["--file", file, "--database-url", db.url]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^users: 2 created, 1 updated, 0 unchanged$/m);
  });

  test("a statement longer than --statement-timeout is cancelled: exit 3, nothing changed", async (t) => {
    const db = await database(t, postgresBackend);
    assert.equal((await runSync(["--file", usersFile([alice]), "--database-url", db.url])).code, 0);
    const before = await usersRows(db);
    await db.query(slowUsersTrigger(5));
    const started = Date.now();
    const run = await runSync([
      "--file",
      usersFile([alice, bob]),
      "--database-url",
      db.url,
      "--statement-timeout",
      "1",
    ]);
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /statement timeout/);
    assert.ok(Date.now() - started < 4500, "the statement was not cut short");
    assert.deepEqual(await usersRows(db), before);
  });
});

describe("a half-open connection", () => {
  test("a database that stops answering mid-statement is given up after the statement timeout and a grace period", async (t) => {
    const db = await database(t, postgresBackend);
    assert.equal((await runSync(["--file", usersFile([alice]), "--database-url", db.url])).code, 0);
    const before = await usersRows(db);
    await db.query(slowUsersTrigger(2));
    // A proxy that, once told, forwards nothing more in either direction and closes nothing:
    // what a dead node or a dropped NAT entry looks like from the client.
    // It goes dark right after forwarding the write of the users rows, so the statement is on the
    // server and its answer never comes back, however slowly this machine got there.
    const target = new URL(db.url);
    let blackholedAt = 0;
    const sockets: { destroy(): void }[] = [];
    const server = createServer((client) => {
      const upstream = createConnection(Number(target.port), target.hostname);
      sockets.push(client, upstream);
      let recent = "";
      client.on("data", (d: Buffer) => {
        if (blackholedAt) return;
        upstream.write(d);
        recent = (recent + d.toString("latin1")).slice(-4096);
        if (recent.includes("INSERT INTO users")) blackholedAt = Date.now();
      });
      upstream.on("data", (d) => blackholedAt || client.write(d));
      client.on("error", () => {});
      upstream.on("error", () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    t.after(() => {
      for (const socket of sockets) socket.destroy();
      server.close();
    });
    const via = new URL(db.url);
    via.port = String((server.address() as { port: number }).port);
    const run = await runSync([
      "--file",
      usersFile([alice, bob]),
      "--database-url",
      via.href,
      "--statement-timeout",
      "1",
    ]);
    const elapsed = Date.now() - blackholedAt;
    assert.ok(blackholedAt > 0, "the sync never sent its write of the users rows");
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /no answer within 11 s; connection dropped/);
    assert.ok(elapsed >= 10_000 && elapsed < 16_000, `gave up ${elapsed} ms after the connection went dark`);
    assert.deepEqual(await usersRows(db), before);
  });
});

describe("waiting for the database", () => {
  /** A free local port with nothing listening on it yet. */
  async function freePort(): Promise<number> {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    const { port } = probe.address() as { port: number };
    await new Promise((resolve) => probe.close(resolve));
    return port;
  }

  /** Forwards a local port to the test server, as a database that has just come up. */
  function proxy(t: TestContext, port: number, target: URL): Server {
    const server = createServer((client) => {
      const upstream = createConnection(Number(target.port), target.hostname);
      client.pipe(upstream).pipe(client);
      client.on("error", () => upstream.destroy());
      upstream.on("error", () => client.destroy());
    });
    server.listen(port, "127.0.0.1");
    t.after(() => server.close());
    return server;
  }

  test("a database that comes up after the sync starts is waited for, each attempt logged in one line", async (t) => {
    const db = await database(t, postgresBackend);
    const port = await freePort();
    const url = new URL(db.url);
    const late = new URL(db.url);
    late.port = String(port);
    const running = startSync(["--file", usersFile([alice]), "--database-url", late.href, "--wait", "20"]);
    await running.waitFor(/not reachable yet \(attempt 2:/);
    proxy(t, port, url);
    const run = await running.result;
    assert.equal(run.code, 0, run.stderr);
    const attempts = run.stderr.split("\n").filter((line) =>
      /not reachable yet \(attempt \d+: .*ECONNREFUSED/.test(line)
    );
    assert.ok(attempts.length >= 2, run.stderr);
    assert.match(run.stdout, /^users: 1 created/m);
    assert.doesNotMatch(run.stderr, /test-only-not-a-secret/);
  });

  test("--wait runs out: exit 3 naming host and port and the last error, never the password", async () => {
    const port = await freePort();
    const started = Date.now();
    const run = await runSync([
      "--file",
      usersFile([alice]),
      "--database-url",
      `postgres://sync:url-password-do-not-print@127.0.0.1:${port}/barycenter`,
      "--wait",
      "2",
    ]);
    assert.equal(run.code, 3);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 1500, "gave up before --wait ran out");
    assert.ok(elapsed < 4500, `waited ${elapsed} ms, far past --wait 2`);
    assert.match(
      run.stderr,
      new RegExp(
        `cannot connect to PostgreSQL at 127\\.0\\.0\\.1:${port}/barycenter after \\d+ attempts.*ECONNREFUSED`,
      ),
    );
    assert.doesNotMatch(run.stdout + run.stderr, /url-password-do-not-print/);
  });

  test("a name that does not resolve is retried like a refused connection", async () => {
    const run = await runSync([
      "--file",
      usersFile([alice]),
      "--database-url",
      "postgres://sync:pw-do-not-print@db.nonexistent.invalid:5432/barycenter",
      "--wait",
      "1",
    ]);
    assert.equal(run.code, 3);
    assert.match(run.stderr, /not reachable yet \(attempt 1: .*(ENOTFOUND|EAI_AGAIN)/);
    assert.doesNotMatch(run.stdout + run.stderr, /pw-do-not-print/);
  });

  test("a TLS failure is not retried: exit 3 at once", async (t) => {
    const db = await database(t, postgresBackend);
    // The test server speaks no TLS: sslmode=require fails in the handshake.
    const started = Date.now();
    const run = await runSync([
      "--file",
      usersFile([alice]),
      "--database-url",
      `${db.url}?sslmode=require`,
      "--wait",
      "30",
    ]);
    assert.equal(run.code, 3, run.stderr);
    assert.ok(Date.now() - started < 5000, "it waited for a failure that waiting cannot cure");
    assert.doesNotMatch(run.stderr, /not reachable yet/);
  });

  test("a wrong password or an unknown database is not retried: exit 3 at once with the reason", async (t) => {
    const db = await database(t, postgresBackend);
    const wrongPassword = new URL(db.url);
    wrongPassword.password = "wrong-password-do-not-print";
    const unknownDatabase = new URL(db.url);
    unknownDatabase.pathname = "/no_such_database";
    for (
      const [url, reason] of [[wrongPassword, /password authentication failed/], [
        unknownDatabase,
        /does not exist/,
      ]] as const
    ) {
      const started = Date.now();
      const run = await runSync(["--file", usersFile([alice]), "--database-url", url.href, "--wait", "30"]);
      assert.equal(run.code, 3, run.stderr);
      assert.ok(Date.now() - started < 5000, "it waited for a failure that waiting cannot cure");
      assert.match(run.stderr, reason);
      assert.doesNotMatch(run.stderr, /not reachable yet/);
      assert.doesNotMatch(run.stdout + run.stderr, /wrong-password-do-not-print/);
    }
  });
});

describe("concurrency on sqlite", () => {
  test("a second writer waits for the busy timeout (--wait), then fails clearly with exit 3", async (t) => {
    const sqlite = backends.find((b) => b.name === "sqlite")!;
    const db = await database(t, sqlite);
    assert.equal((await runSync(["--file", usersFile([alice]), "--database-url", db.url])).code, 0);
    const path = db.url.replace(/^sqlite:\/\//, "").replace(/\?.*$/, "");
    const { DatabaseSync } = await import("node:sqlite");
    const holder = new DatabaseSync(path);
    holder.exec("BEGIN IMMEDIATE");
    t.after(() => holder.close());
    const started = Date.now();
    const run = await runSync(["--file", usersFile([alice, bob]), "--database-url", db.url, "--wait", "1"]);
    holder.exec("ROLLBACK");
    assert.equal(run.code, 3, run.stderr);
    assert.ok(Date.now() - started >= 1000, "it did not wait");
    assert.match(run.stderr, /stayed locked by another writer .* for 1 s \(--wait\)/);
    assert.deepEqual((await usersRows(db)).map((r) => r.username), ["alice"]);
  });
});

describe("hostile and broken input", () => {
  async function rejected(content: string | Uint8Array, ...args: string[]): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), "user-sync-hostile-"));
    const file = join(dir, "users.json");
    writeFileSync(file, content);
    const run = await runSync(["--validate", "--file", file, ...args]);
    assert.equal(run.code, 2, `expected exit 2: ${run.stdout}${run.stderr}`);
    assert.doesNotMatch(run.stderr, /\n\s+at /, "printed a stack trace");
    return run.stderr;
  }

  test("a file over --max-file-size (default 16 MiB) is refused before it is parsed", async () => {
    const big = JSON.stringify([{ username: "a", password: "p", properties: { pad: "x".repeat(17 * 1024 * 1024) } }]);
    assert.match(await rejected(big), /larger than 16\.0 MiB; .*--max-file-size/);
    assert.match(
      await rejected(JSON.stringify([alice]) + " ".repeat(2 * 1024 * 1024), "--max-file-size", "1"),
      /larger than 1\.0 MiB/,
    );
  });

  test("more than 50,000 users are refused", async () => {
    const users = Array.from({ length: 50_001 }, (_, i) => ({ username: `u${i}`, password: "p" }));
    assert.match(await rejected(JSON.stringify(users)), /50001 users, more than the 50000 one file may hold/);
  });

  test("a directory without *.json files, an empty file and a file that is not UTF-8 each get their own message", async () => {
    const dir = mkdtempSync(join(tmpdir(), "user-sync-dir-"));
    const asDir = await runSync(["--validate", "--file", dir]);
    assert.equal(asDir.code, 2);
    assert.match(asDir.stderr, /users directory .* holds no \*\.json file/);
    assert.match(await rejected(""), /is empty; it must hold a JSON array of users/);
    assert.match(await rejected("  \n"), /is empty/);
    assert.match(await rejected(new Uint8Array([0x5b, 0xff, 0xfe, 0x5d])), /is not UTF-8 text; save it as UTF-8/);
  });

  test("an unreadable file exits 2 with permission denied", async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "user-sync-perm-"));
    chmodSync(dir, 0o755);
    const file = join(dir, "users.json");
    writeFileSync(file, JSON.stringify([alice]));
    chmodSync(file, 0o000);
    const { spawnSync } = await import("node:child_process");
    // Root reads anything; run the tool as an unprivileged user, as the chart's pod does.
    const asRoot = process.getuid?.() === 0;
    if (asRoot) {
      mkdirSync(join(dir, "home"));
    }
    const result = spawnSync(process.execPath, [SYNC, "--validate", "--file", file], {
      encoding: "utf8",
      env: { PATH: process.env.PATH ?? "" },
      ...(asRoot ? { uid: 65534, gid: 65534, cwd: dir } : {}),
    });
    if (result.error || /EACCES.*sync\.ts|Cannot find module/.test(result.stderr)) {
      t.skip("this checkout is not readable by an unprivileged user");
      return;
    }
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /permission denied; make the file readable by this user/);
  });

  test("a byte order mark is ignored", async () => {
    const dir = mkdtempSync(join(tmpdir(), "user-sync-bom-"));
    const file = join(dir, "users.json");
    writeFileSync(file, "\ufeff" + JSON.stringify([alice]));
    const run = await runSync(["--validate", "--file", file]);
    assert.equal(run.code, 0, run.stderr);
  });

  test("__proto__ keys are refused wherever they stand", async () => {
    const stderr = await rejected(
      '{"__proto__": {"x": 1}, "users": [{"username": "a", "password": "p", "__proto__": {"enabled": false}, ' +
        '"properties": {"__proto__": {"polluted": true}}}]}',
    );
    assert.match(stderr, /__proto__: unknown top-level field/);
    assert.match(stderr, /users\[0\]\.__proto__: unknown field/);
    assert.match(
      stderr,
      /users\[0\]\.properties\.__proto__: the property names __proto__, prototype, constructor are not supported/,
    );
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test("a key given twice in one object is refused with its line and column", async () => {
    const stderr = await rejected('[\n  {"username": "a", "password": "first",\n   "password": "second"}\n]');
    assert.match(stderr, /line 3, column 4: key "password" appears twice in one object/);
    assert.doesNotMatch(stderr, /first|second/);
  });

  test("usernames that differ only in case or Unicode normalisation are refused as look-alikes", async () => {
    const stderr = await rejected(JSON.stringify([
      { username: "Alice", password: "p" },
      { username: "alice", password: "p" },
      { username: "Jos\u00e9", password: "p" },
      { username: "Jose\u0301", password: "p" },
    ]));
    assert.match(
      stderr,
      /users\[1\]\.username: differs from users\[0\]\.username only in letter case or Unicode normalisation/,
    );
    assert.match(
      stderr,
      /users\[3\]\.username: differs from users\[2\]\.username only in letter case or Unicode normalisation/,
    );
  });
});

describe("fuzzing the input", () => {
  const secret = "Fuzz-Secret-\u2603-42";
  const valid = JSON.stringify(
    {
      users: [
        {
          username: "alice",
          password: secret,
          email: "alice@example.com",
          enabled: true,
          properties: { name: "A", n: [1, { x: null }] },
        },
        { username: "bob", password: secret, email_verified: false },
      ],
    },
    null,
    2,
  );

  /** A small deterministic generator, so a failure can be replayed. */
  function random(seed: number) {
    let state = seed >>> 0;
    return (n: number) => {
      state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
      return state % n;
    };
  }

  const pieces = [
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    '"',
    "\\",
    "null",
    "true",
    "1e999",
    "-0",
    "\u0000",
    "\ud800",
    '"__proto__"',
    "\n",
    " ",
  ];

  function mutate(text: string, rand: (n: number) => number): string {
    let out = text;
    for (let k = 0, edits = 1 + rand(4); k < edits; k++) {
      const at = rand(out.length + 1);
      switch (rand(4)) {
        case 0:
          out = out.slice(0, at) + out.slice(at + 1 + rand(8));
          break;
        case 1:
          out = out.slice(0, at) + pieces[rand(pieces.length)] + out.slice(at);
          break;
        case 2:
          out = out.slice(0, at) + String.fromCharCode(rand(0x250)) + out.slice(at + 1);
          break;
        default: {
          const from = rand(out.length);
          out = out.slice(0, at) + out.slice(from, from + rand(40)) + out.slice(at);
        }
      }
    }
    return out;
  }

  /** Files each broken on purpose in one known way: they must all be refused. */
  function brokenOnPurpose(rand: (n: number) => number): unknown {
    const users: Record<string, unknown>[] = JSON.parse(valid).users;
    const user = users[rand(users.length)];
    const breakers: (() => void)[] = [
      () => (user.password = [null, 5, "", {}, [], true][rand(6)]),
      () => (user.username = [null, 5, "", " x", "a\u0001", "x".repeat(256), "\udc00"][rand(7)]),
      () => (user.email = ["no-at", 5, "a@", "@b", {}][rand(5)]),
      () => (user[["pasword", "emial", "role", "id"][rand(4)]] = secret),
      () => (user.enabled = ["yes", 1, null][rand(3)]),
      () => (user.properties = [[], "x", 5, null][rand(4)]),
      () => delete user[["username", "password"][rand(2)]],
      () => users.push({ ...users[0] }),
    ];
    breakers[rand(breakers.length)]();
    return rand(2) === 0 ? users : { users };
  }

  test("500 mutated files: the pipeline either accepts or refuses with InputError, never crashes or leaks", () => {
    const rand = random(20261127);
    for (let i = 0; i < 500; i++) {
      const text = mutate(valid, rand);
      try {
        validateUsers(parseUsersJson(text));
      } catch (error) {
        assert.ok(error instanceof InputError, `case ${i}: ${(error as Error)?.stack}`);
        const printed = error.message + error.problems.join("\n");
        assert.ok(!printed.includes(secret) && !printed.includes("Fuzz-Secret"), `case ${i} printed the password`);
      }
    }
  });

  test("300 files broken on purpose are all refused, without the password in any message", () => {
    const rand = random(7);
    for (let i = 0; i < 300; i++) {
      const data = brokenOnPurpose(rand);
      assert.throws(() => validateUsers(data), (error: InputError) => {
        assert.ok(error instanceof InputError, String(error));
        assert.ok(
          !(error.message + error.problems.join("\n")).includes("Fuzz-Secret"),
          `case ${i} printed the password`,
        );
        return true;
      }, `case ${i} was accepted: ${JSON.stringify(data).replaceAll(secret, "…")}`);
    }
  });

  test("the CLI on 40 mutated files: exit 0 or 2, exit 2 whenever JSON.parse fails, no stack trace, no password", async () => {
    const rand = random(42);
    const dir = mkdtempSync(join(tmpdir(), "user-sync-fuzz-"));
    for (let i = 0; i < 40; i++) {
      const text = mutate(valid, rand);
      const file = join(dir, `case-${i}.json`);
      writeFileSync(file, text);
      const run = await runSync(["--validate", "--file", file]);
      let parses = true;
      try {
        JSON.parse(text.replace(/^\ufeff/, ""));
      } catch {
        parses = false;
      }
      assert.ok(run.code === 0 || run.code === 2, `case ${i}: exit ${run.code}\n${run.stderr}`);
      if (!parses) assert.equal(run.code, 2, `case ${i}: invalid JSON accepted`);
      assert.doesNotMatch(run.stderr, /\n\s+at /, `case ${i}: stack trace`);
      assert.ok(!(run.stdout + run.stderr).includes("Fuzz-Secret"), `case ${i} printed the password`);
    }
  });

  /** The run's result, or a failure (and the process killed) if it is still running after `ms`. */
  async function endsWithin(running: RunningSync, ms: number, what: string): Promise<RunResult> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const overdue = new Promise<"overdue">((resolve) => (timer = setTimeout(resolve, ms, "overdue")));
    const run = await Promise.race([running.result, overdue]);
    clearTimeout(timer);
    if (run !== "overdue") return run;
    running.child.kill("SIGKILL");
    const killed = await running.result;
    assert.fail(`${what}: still running after ${ms} ms\n${killed.stdout}${killed.stderr}`);
  }

  test("the CLI on 32 mutated database URLs: exit 2 or 3 at once, no stack trace, no piece of the password", async () => {
    const rand = random(2026);
    const password = "Qv7ZrXk9WpJm4TsB";
    // Any four characters of the password in a row, printed anywhere, are a leak.
    const pieces = Array.from({ length: password.length - 3 }, (_, i) => password.slice(i, i + 4));
    const hosts = ["127.0.0.1:1/barycenter", "127.0.0.1:1/barycenter?sslmode=require", "nosuchhost.invalid/barycenter"];
    const specials = [
      "@",
      ",",
      "/",
      "?",
      "#",
      ":",
      "%",
      "%40",
      "%2C",
      "%zz",
      "[",
      "]",
      " ",
      "\\",
      "&",
      "=",
      "//",
      ",h2",
      ",127.0.0.1:2",
      "@h3",
      "?host=a,b",
    ];
    const insert = (text: string, piece: string) => {
      const at = rand(text.length + 1);
      return text.slice(0, at) + piece + text.slice(at);
    };
    const file = usersFile([{ username: "alice", password: "alice-passphrase" }]);
    const urls = Array.from({ length: 32 }, () => {
      // Mutations insert, replace or delete; none copies the password elsewhere, so what is printed can only leak.
      let [prefix, secret, suffix] = [`postgres${rand(2) ? "ql" : ""}://sync:`, password, `@${hosts[rand(3)]}`];
      for (let k = 0, edits = 1 + rand(3); k < edits; k++) {
        const piece = specials[rand(specials.length)];
        const at = rand(secret.length);
        switch (rand(5)) {
          case 0:
            prefix = insert(prefix, piece);
            break;
          case 1:
            suffix = insert(suffix, piece);
            break;
          case 2:
            secret = secret.slice(0, at) + piece + secret.slice(at + 1);
            break;
          case 3:
            secret = secret.slice(0, at) + secret.slice(at + 1);
            break;
          default:
            secret = insert(secret, piece);
        }
      }
      return prefix + secret + suffix;
    });
    // Four at a time: each run is a process of its own.
    for (let i = 0; i < urls.length; i += 4) {
      await Promise.all(
        urls.slice(i, i + 4).map(async (url, j) => {
          const what = `case ${i + j} (${url.replace(/Qv7ZrXk9WpJm4TsB/, "<password>")})`;
          const run = await endsWithin(
            startSync(["--file", file, "--database-url", url, "--wait", String(rand(2))]),
            15_000,
            what,
          );
          assert.ok(run.code === 2 || run.code === 3, `${what}: exit ${run.code}\n${run.stderr}`);
          assert.doesNotMatch(run.stderr, /\n\s+at /, `${what}: stack trace`);
          const printed = run.stdout + run.stderr;
          for (const piece of pieces) assert.ok(!printed.includes(piece), `${what} printed ${piece}:\n${printed}`);
        }),
      );
    }
  });

  test("SIGTERM at 8 random moments of a sync on each backend: exit 143 within 2 s, the database wholly before or after, 'rolling back' only when true", async (t) => {
    const rand = random(143);
    const generation = (g: number) =>
      Array.from({ length: 16 }, (_, i) => ({
        username: `user${i}`,
        password: `${secret}-${g}-${i}`,
        email: `user${i}.g${g}@example.com`,
        properties: { generation: g },
      }));
    const snapshot = async (db: TestDatabase) => [
      await usersRows(db),
      await db.query("SELECT owner, key, value, updated_at FROM properties ORDER BY owner, key"),
      await db.query("SELECT file_key, pairs_hash, hashes_digest FROM user_sync_state ORDER BY file_key"),
    ];
    for (const backend of backends) {
      const db = await database(t, backend);
      // A connection the signal dropped is rolled back by the server when it notices: wait for that.
      const settled = async () => {
        while (
          backend === postgresBackend &&
          (await db.query(
              "SELECT 1 FROM pg_stat_activity WHERE application_name = 'barycenter-user-sync' AND datname = current_database()",
            )).length > 0
        ) await sleep(20);
      };
      const files = [usersFile(generation(0)), usersFile(generation(1))];
      const args = (f: number) => ["--file", files[f], "--database-url", db.url];
      const started = Date.now();
      const first = await runSync(args(0));
      assert.equal(first.code, 0, first.stderr);
      // How long a whole sync takes on this machine: the signals are spread over that time.
      const span = Date.now() - started;
      let current = 0;
      for (let i = 0; i < 8; i++) {
        const what = `${backend.name} case ${i}`;
        const target = 1 - current;
        const before = await snapshot(db);
        const launched = Date.now();
        const running = startSync(args(target));
        // A random moment is what this test is about: not an event to wait for.
        await sleep(rand(Math.round(span * 1.2)));
        const sent = Date.now();
        running.child.kill("SIGTERM");
        const run = await endsWithin(running, 5000, what);
        const took = Date.now() - sent;
        // Before the tool has installed its handler, Node's default action ends it: a shell sees 143 too.
        const status = run.code ?? (running.child.signalCode === "SIGTERM" ? 143 : null);
        const printed = run.stdout + run.stderr;
        await settled();
        const unchanged = isDeepStrictEqual(await snapshot(db), before);
        const matches = !unchanged && (await runSync(["--check", ...args(target)])).code === 0;
        t.diagnostic(`${what}: signal ${sent - launched} ms in, exit ${status}, ${unchanged ? "before" : "after"}`);
        assert.ok(unchanged || matches, `${what}: the database is partly changed\n${printed}`);
        assert.ok(status === 143 || (status === 0 && matches), `${what}: exit ${status}\n${printed}`);
        if (status === 143) assert.ok(took < 2000, `${what}: ended ${took} ms after SIGTERM`);
        if (/rolling back|nothing was changed/.test(printed)) assert.ok(unchanged, `${what}: said so, but changed`);
        if (/already committed/.test(printed)) assert.ok(matches, `${what}: said committed, but is not`);
        assert.doesNotMatch(run.stderr, /\n\s+at /, `${what}: stack trace`);
        assert.ok(!printed.includes("Fuzz-Secret"), `${what} printed the password`);
        if (matches) current = target;
      }
    }
  });
});

describe("secrets on every failure path", () => {
  test("a distinctive password appears in no output of any failure, and nowhere in the database as plaintext", async (t) => {
    const secret = "Distinctive-\u2603-Passw0rd-7781";
    const db = await database(t, postgresBackend);
    const admin = postgres(db.url, { max: 1, onnotice: () => {} });
    t.after(() => admin.end());
    const file = (content: unknown) => usersFile(content);
    const runs = [
      await runSync(["--file", file([{ username: "a", password: secret }]), "--database-url", db.url]),
      await runSync(["--file", file([{ username: "a", password: secret }]), "--database-url", db.url, "--dry-run"]),
      await runSync([
        "--file",
        file(`[{"username": "a", "password": "${secret}", "password": "${secret}"}]`),
        "--validate",
      ]),
      await runSync(["--file", file(`[{"username": "a", "password": "${secret}"`), "--validate"]),
      await runSync(["--file", file(`[{"username": "a", "password": ${secret}}]`), "--validate"]),
      await runSync(["--file", file([{ username: "a", password: secret, pass: secret }]), "--validate"]),
      await runSync(["--file", file([{ username: secret, password: 5 }]), "--validate", "--log-format", "json"]),
      await runSync([
        "--file",
        file([{ username: "a", password: secret }]),
        "--validate",
        "--max-file-size",
        "0.00001",
      ]),
      await runSync([
        "--file",
        file([{ username: "a", password: secret }]),
        "--database-url",
        `postgres://u:${encodeURIComponent(secret)}@127.0.0.1:1/db`,
        "--wait",
        "1",
      ]),
      await runSync([
        "--file",
        file([{ username: "a", password: secret }]),
        "--database-url",
        db.url.replace(/:[^:@/]+@/, `:${encodeURIComponent(secret)}@`),
      ]),
    ];
    await admin.unsafe(slowUsersTrigger(3, { on: "UPDATE" })).simple();
    runs.push(
      await runSync([
        "--file",
        file([{ username: "a", password: `${secret}-2` }]),
        "--database-url",
        db.url,
        "--statement-timeout",
        "1",
      ]),
    );
    const killed = startSync(["--file", file([{ username: "a", password: `${secret}-3` }]), "--database-url", db.url]);
    await runningStatement(db, "%INSERT INTO users%");
    killed.child.kill("SIGTERM");
    runs.push(await killed.result);

    assert.equal(runs[0].code, 0, runs[0].stderr);
    assert.ok(runs.slice(2).every((r) => r.code !== 0), "a failure path exited 0");
    const hashes = (await admin`SELECT password_hash FROM users`).map((r) => String(r.password_hash));
    for (const [i, run] of runs.entries()) {
      const printed = run.stdout + run.stderr;
      for (const needle of ["Distinctive", encodeURIComponent(secret), ...hashes]) {
        assert.ok(!printed.includes(needle), `run ${i} printed a secret:\n${printed}`);
      }
    }
    const dump = JSON.stringify([
      ...await admin`SELECT * FROM users`,
      ...await admin`SELECT * FROM properties`,
      ...await admin`SELECT * FROM user_sync_state`,
    ]);
    assert.ok(!dump.includes("Distinctive"), "the database holds a plaintext password");
  });
});
