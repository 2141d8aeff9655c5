/**
 * The README's promises, checked by running the CLI against a real database
 * and reading the rows back. Every test runs on every backend.
 */

import assert from "node:assert/strict";
import { describe, test, type TestContext } from "node:test";
import { argon2Verify as independentVerify } from "hash-wasm";
import { argon2Verify } from "../deps.ts";
import {
  backends,
  BARYCENTER_TABLES,
  connectionCounter,
  propertiesOf,
  runSync,
  type TestDatabase,
  testDatabase,
  usersFile,
  usersRows,
} from "./support/helpers.ts";

const PHC = /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/;

const alice = { username: "alice", password: "alice-first-passphrase", email: "alice@example.com" };
const bob = { username: "bob", password: "bob-first-passphrase" };

for (const backend of backends) {
  describe(`sync on ${backend.name}`, () => {
    const database = (t: TestContext) => testDatabase(t, backend);

    async function sync(db: TestDatabase, users: unknown, ...args: string[]) {
      return await runSync(["--file", usersFile(users), "--database-url", db.url, ...args]);
    }

    async function syncOk(db: TestDatabase, users: unknown, ...args: string[]) {
      const run = await sync(db, users, ...args);
      assert.equal(run.code, 0, `sync failed: ${run.stderr}`);
      return run;
    }

    test("creates each user with Barycenter's columns, an Argon2id hash and JSON-encoded properties", async (t) => {
      const db = await database(t);
      const before = Math.floor(Date.now() / 1000);
      const run = await syncOk(db, [
        { ...alice, email_verified: true, properties: { name: "Alice", age: 30, groups: ["a", "b"] } },
        { ...bob, enabled: false },
      ]);
      const after = Math.floor(Date.now() / 1000);
      assert.match(
        run.stdout,
        /^created alice: password, email, email_verified, properties\.name, properties\.age, properties\.groups$/m,
      );
      assert.match(run.stdout, /^created bob: password, enabled$/m);
      assert.match(run.stdout, /^users: 2 created, 0 updated, 0 unchanged$/m);

      const [a, b] = await usersRows(db);
      assert.equal(a.username, "alice");
      assert.match(String(a.subject), /^[A-Za-z0-9_-]{32}$/);
      assert.notEqual(a.subject, b.subject);
      assert.match(String(a.password_hash), PHC);
      assert.equal(await argon2Verify(String(a.password_hash), alice.password), true);
      assert.equal(a.email, "alice@example.com");
      assert.equal(a.email_verified, 1);
      assert.equal(a.enabled, 1);
      assert.ok(Number(a.created_at) >= before && Number(a.created_at) <= after);
      assert.equal(b.email, null);
      assert.equal(b.email_verified, 0);
      assert.equal(b.enabled, 0);
      assert.deepEqual(await propertiesOf(db, "alice"), { age: "30", groups: '["a","b"]', name: '"Alice"' });
      const [prop] = await db.query("SELECT owner, updated_at FROM properties WHERE key = 'name'");
      assert.equal(prop.owner, a.subject);
      assert.ok(Number(prop.updated_at) >= before);
    });

    test("a second run with the same file writes nothing: rows stay byte for byte the same", async (t) => {
      const db = await database(t);
      const users = [
        { ...alice, enabled: true, properties: { name: "Alice", address: { city: "Bern", zip: "3000" } } },
        bob,
      ];
      await syncOk(db, users);
      const rowsBefore = await usersRows(db);
      const propsBefore = await db.query("SELECT * FROM properties ORDER BY owner, key");
      const run = await syncOk(db, users);
      assert.equal(run.stdout, "users: 0 created, 0 updated, 2 unchanged\n");
      assert.deepEqual(await usersRows(db), rowsBefore);
      assert.deepEqual(await db.query("SELECT * FROM properties ORDER BY owner, key"), propsBefore);
    });

    test("a changed password gets a new hash and nothing else of the user changes", async (t) => {
      const db = await database(t);
      await syncOk(db, [alice, bob]);
      const [aliceBefore, bobBefore] = await usersRows(db);
      const run = await syncOk(db, [{ ...alice, password: "alice-second-passphrase" }, bob]);
      assert.match(run.stdout, /^updated alice: password$/m);
      assert.match(run.stdout, /^users: 0 created, 1 updated, 1 unchanged$/m);
      const [aliceAfter, bobAfter] = await usersRows(db);
      assert.notEqual(aliceAfter.password_hash, aliceBefore.password_hash);
      assert.equal(await argon2Verify(String(aliceAfter.password_hash), "alice-second-passphrase"), true);
      assert.equal(await argon2Verify(String(aliceAfter.password_hash), alice.password), false);
      assert.deepEqual({ ...aliceAfter, password_hash: null }, { ...aliceBefore, password_hash: null });
      assert.deepEqual(bobAfter, bobBefore);
    });

    test("an email is changed, and null clears it", async (t) => {
      const db = await database(t);
      await syncOk(db, [alice]);
      const changed = await syncOk(db, [{ ...alice, email: "alice@example.org" }]);
      assert.match(changed.stdout, /^updated alice: email$/m);
      assert.equal((await usersRows(db))[0].email, "alice@example.org");
      const cleared = await syncOk(db, [{ ...alice, email: null }]);
      assert.match(cleared.stdout, /^updated alice: email$/m);
      assert.equal((await usersRows(db))[0].email, null);
    });

    test("enabled and email_verified are updated when the file changes them", async (t) => {
      const db = await database(t);
      await syncOk(db, [alice]);
      const run = await syncOk(db, [{ ...alice, enabled: false, email_verified: true }]);
      assert.match(run.stdout, /^updated alice: enabled, email_verified$/m);
      const [row] = await usersRows(db);
      assert.equal(row.enabled, 0);
      assert.equal(row.email_verified, 1);
    });

    test("fields and properties the file omits keep what the database holds", async (t) => {
      const db = await database(t);
      await syncOk(db, [{ ...alice, properties: { name: "Alice", locale: "de-CH" } }]);
      await db.query("UPDATE users SET enabled = 0, email_verified = 1");
      const rowBefore = (await usersRows(db))[0];
      const run = await syncOk(db, [{ username: "alice", password: alice.password, properties: { name: "Alice" } }]);
      assert.match(run.stdout, /^users: 0 created, 0 updated, 1 unchanged$/m);
      assert.deepEqual((await usersRows(db))[0], rowBefore);
      assert.deepEqual(await propertiesOf(db, "alice"), { locale: '"de-CH"', name: '"Alice"' });
    });

    test("a changed property is rewritten alone; an equal one in another key order is not", async (t) => {
      const db = await database(t);
      await syncOk(db, [{ ...alice, properties: { name: "Alice", address: { city: "Bern", zip: "3000" } } }]);
      await db.query(
        `UPDATE properties SET updated_at = 1, value = '{"zip": "3000", "city": "Bern"}' WHERE key = 'address'`,
      );
      await db.query("UPDATE properties SET updated_at = 1 WHERE key = 'name'");
      const run = await syncOk(db, [{
        ...alice,
        properties: { name: "Alice B.", address: { city: "Bern", zip: "3000" } },
      }]);
      assert.match(run.stdout, /^updated alice: properties\.name$/m);
      const rows = await db.query("SELECT key, value, updated_at FROM properties ORDER BY key");
      assert.deepEqual(rows[0], { key: "address", value: '{"zip": "3000", "city": "Bern"}', updated_at: 1 });
      assert.equal(rows[1].value, '"Alice B."');
      assert.notEqual(rows[1].updated_at, 1);
    });

    test("users absent from the file are never touched", async (t) => {
      const db = await database(t);
      await syncOk(db, [alice, bob]);
      await db.query(
        "INSERT INTO users (subject, username, password_hash, email, email_verified, created_at, enabled) " +
          "VALUES ('manual-subject', 'carol', 'not-a-hash', 'carol@example.com', 1, 42, 1)",
      );
      await db.query(
        "INSERT INTO properties (owner, key, value, updated_at) VALUES ('manual-subject', 'name', '\"Carol\"', 42)",
      );
      const carolBefore = (await usersRows(db))[2];
      const run = await syncOk(db, [{ ...alice, password: "alice-second-passphrase" }]);
      assert.match(run.stdout, /^users: 0 created, 1 updated, 0 unchanged$/m);
      const rows = await usersRows(db);
      assert.equal(rows.length, 3);
      assert.deepEqual(rows[2], carolBefore);
      assert.deepEqual(await propertiesOf(db, "carol"), { name: '"Carol"' });
    });

    test('a bare array and an object {"users": [...]} sync the same users', async (t) => {
      const db = await database(t);
      await syncOk(db, { users: [alice] });
      const run = await syncOk(db, [alice, bob]);
      assert.match(run.stdout, /^users: 1 created, 0 updated, 1 unchanged$/m);
      assert.deepEqual((await usersRows(db)).map((r) => r.username), ["alice", "bob"]);
    });

    test("a stored value that is not an Argon2 hash is replaced by one", async (t) => {
      const db = await database(t);
      await syncOk(db, [alice]);
      await db.query("UPDATE users SET password_hash = 'plain-text-from-elsewhere'");
      const run = await syncOk(db, [alice]);
      assert.match(run.stdout, /^updated alice: password$/m);
      assert.match(String((await usersRows(db))[0].password_hash), PHC);
    });

    test("a stored hash is accepted by our Argon2 and by an independent implementation", async (t) => {
      const db = await database(t);
      await syncOk(db, [alice]);
      const hash = String((await usersRows(db))[0].password_hash);
      assert.equal(await argon2Verify(hash, alice.password), true);
      assert.equal(await independentVerify({ password: alice.password, hash }), true);
      assert.equal(await independentVerify({ password: "wrong", hash }), false);
    });

    test("--dry-run prints what would change and writes nothing", async (t) => {
      const db = await database(t);
      await syncOk(db, [alice]);
      const before = await usersRows(db);
      const run = await syncOk(db, [{ ...alice, email: null }, bob], "--dry-run");
      assert.match(run.stdout, /^would update alice: email$/m);
      assert.match(run.stdout, /^would create bob: password$/m);
      assert.match(run.stdout, /^users: 1 to create, 1 to update, 0 unchanged \(dry run: nothing written\)$/m);
      assert.deepEqual(await usersRows(db), before);
    });

    test("--dry-run on an empty database creates no tables", async (t) => {
      const db = await database(t);
      const run = await syncOk(db, [alice], "--dry-run");
      assert.match(run.stdout, /^would create alice: password, email$/m);
      await assert.rejects(db.query("SELECT * FROM users"));
    });

    test("a failing statement in the middle of the batch leaves nothing of the run behind", async (t) => {
      const db = await database(t);
      await syncOk(db, [alice]);
      const before = await usersRows(db);
      const propsBefore = await db.query("SELECT * FROM properties");
      await db.query(backend.refuseWriteTrigger("users", "username", "mallory"));
      const run = await sync(db, [
        { ...alice, password: "alice-second-passphrase", properties: { name: "Alice" } },
        { username: "mallory", password: "mallory-passphrase" },
        { ...bob, properties: { name: "Bob" } },
      ]);
      assert.equal(run.code, 3, run.stderr);
      assert.match(run.stderr, /rolled back/);
      assert.deepEqual(await usersRows(db), before);
      assert.deepEqual(await db.query("SELECT * FROM properties"), propsBefore);
    });

    test("a failing properties statement rolls back the users written before it", async (t) => {
      const db = await database(t);
      await syncOk(db, [alice]);
      const before = await usersRows(db);
      await db.query(backend.refuseWriteTrigger("properties", "key", "poison"));
      const run = await sync(db, [
        { ...alice, email: null },
        { ...bob, properties: { poison: true } },
      ]);
      assert.equal(run.code, 3, run.stderr);
      assert.deepEqual(await usersRows(db), before);
    });

    test("creates missing tables as Barycenter's first migration does, and its later migration still applies", async (t) => {
      const db = await database(t);
      await syncOk(db, [alice]);
      assert.deepEqual(await backend.describeTable(db, "users"), BARYCENTER_TABLES.users);
      assert.deepEqual(await backend.describeTable(db, "properties"), BARYCENTER_TABLES.properties);
      assert.equal(await backend.tableExists(db, "seaql_migrations"), false);
      // m20250107_000002_extend_sessions_users, as Barycenter runs it at its next start.
      await db.query(`ALTER TABLE "users" ADD COLUMN "requires_2fa" bigint NOT NULL DEFAULT 0`);
      await db.query(`ALTER TABLE "users" ADD COLUMN "passkey_enrolled_at" bigint NULL`);
      const run = await syncOk(db, [{ ...alice, password: "alice-second-passphrase" }, bob]);
      assert.match(run.stdout, /^users: 1 created, 1 updated, 0 unchanged$/m);
      const rows = await db.query("SELECT username, requires_2fa, passkey_enrolled_at FROM users ORDER BY username");
      assert.deepEqual(rows, [
        { username: "alice", requires_2fa: 0, passkey_enrolled_at: null },
        { username: "bob", requires_2fa: 0, passkey_enrolled_at: null },
      ]);
    });

    test("several syncs of the same file started at once into an empty database all succeed, one row per user", async (t) => {
      const db = await database(t);
      const file = usersFile([alice, bob]);
      const runs = await Promise.all([1, 2, 3].map(() => runSync(["--file", file, "--database-url", db.url])));
      for (const run of runs) assert.equal(run.code, 0, run.stderr);
      assert.equal(runs.filter((r) => /^users: 2 created/m.test(r.stdout)).length, 1);
      assert.deepEqual((await usersRows(db)).map((r) => r.username), ["alice", "bob"]);
    });

    test("an unreachable database exits 3 and names host and port, never the password", async () => {
      const run = await runSync([
        "--file",
        usersFile([alice]),
        "--database-url",
        backend.unreachableUrl,
        "--wait",
        "0",
      ]);
      assert.equal(run.code, 3);
      assert.match(run.stderr, backend.unreachableTarget);
      assert.doesNotMatch(run.stdout + run.stderr, /url-password-do-not-print/);
    });

    test("--log-format json writes one JSON object a line, with a summary line", async (t) => {
      const db = await database(t);
      await syncOk(db, [alice]);
      const run = await syncOk(db, [{ ...alice, email: null }, bob], "--log-format", "json");
      const lines = run.stdout.trim().split("\n").map((line) => JSON.parse(line));
      assert.equal(lines.length, 3);
      assert.deepEqual(
        lines.slice(0, 2).map(({ level, user, action, changes }) => ({ level, user, action, changes })),
        [
          { level: "info", user: "alice", action: "update", changes: ["email"] },
          { level: "info", user: "bob", action: "create", changes: ["password"] },
        ],
      );
      assert.equal(lines[2].created, 1);
      assert.equal(lines[2].updated, 1);
      assert.equal(lines[2].unchanged, 0);
      assert.equal(typeof lines[2].duration_ms, "number");
    });

    test("no output, error or row ever holds a password or a password hash", async (t) => {
      const db = await database(t);
      const secret = "Sekr1t-passphrase-\u2603-must-not-leak";
      const secret2 = "Sekr1t-second-\u2603-must-not-leak";
      const runs = [
        await syncOk(db, [{ username: "alice", password: secret, properties: { name: "A" } }]),
        await syncOk(db, [{ username: "alice", password: secret }]),
        await syncOk(db, [{ username: "alice", password: secret2 }], "--dry-run"),
        await syncOk(db, [{ username: "alice", password: secret2 }], "--log-format", "json"),
        await sync(db, [{ username: "alice", pasword: secret }]),
        await sync(db, [{ username: "alice", password: secret, email: secret }]),
        await sync(db, [{ username: "alice", password: secret.repeat(100) }]),
        await sync(db, `[{"username": "alice", "password": "${secret}" "email": null}]`),
        await sync(db, `[{"username": "alice", "password": ${secret}}]`),
        await sync(db, `[{"username": "alice", "password": "${secret}`),
      ];
      await db.query(backend.refuseWriteTrigger("users", "username", "mallory"));
      runs.push(await sync(db, [{ username: "alice", password: secret }, { username: "mallory", password: secret }]));
      runs.push(await sync(db, [{ username: "alice", password: secret }], "--log-format", "json"));
      const hashes = (await usersRows(db)).map((r) => String(r.password_hash));
      for (const run of runs) {
        const printed = run.stdout + run.stderr;
        for (const s of [secret, secret2, ...hashes, "Sekr1t"]) {
          assert.ok(!printed.includes(s), `printed a secret: ${printed}`);
        }
      }
      assert.equal(runs.filter((r) => r.code !== 0).length, 7);
      const dump = JSON.stringify([await usersRows(db), await db.query("SELECT * FROM properties")]);
      assert.ok(!dump.includes("Sekr1t"), "the database holds a plaintext password");
    });
  });
}

describe("bad input, on any backend", () => {
  async function rejected(t: TestContext, content: unknown): Promise<string> {
    const counter = await connectionCounter(t);
    const run = await runSync(["--file", usersFile(content), "--database-url", counter.url]);
    assert.equal(run.code, 2, `expected exit 2: ${run.stdout}${run.stderr}`);
    assert.equal(counter.count(), 0, "a database connection was opened");
    assert.equal(run.stdout, "");
    return run.stderr;
  }

  test("every validation problem is reported at once, with its place, and exits 2 without connecting", async (t) => {
    const stderr = await rejected(t, [
      { username: "alice", password: "x", email: "not-an-address" },
      { username: " bob", password: "" },
      { username: "carol", pasword: "typo" },
      { username: "dave", password: "x", enabled: "yes", email_verified: 1, properties: [] },
      { username: "a\tb", password: "x".repeat(1025) },
      { username: "x".repeat(256), password: 42 },
      { password: "x" },
      "not an object",
    ]);
    for (
      const line of [
        "users[0].email: invalid email address",
        "users[1].username: must not start or end with whitespace",
        "users[1].password: must not be empty",
        "users[2].pasword: unknown field",
        "users[2].password: is required",
        "users[3].enabled: must be true or false",
        "users[3].email_verified: must be true or false",
        "users[3].properties: must be an object of JSON values",
        "users[4].username: must not contain control characters",
        "users[4].password: must be at most 1024 characters",
        "users[5].username: must be at most 255 characters",
        "users[5].password: must be a string",
        "users[6].username: is required",
        "users[7]: must be an object",
      ]
    ) assert.ok(stderr.includes(line), `missing "${line}" in:\n${stderr}`);
    assert.match(stderr, /invalid \(\d+ problems\); nothing was changed/);
  });

  test("every unknown field of every user is reported, with the top-level ones, in one run", async (t) => {
    const stderr = await rejected(t, {
      users: [{ username: " x", password: "p", pasword: "S", emial: "z", enabeld: true }],
      extra: 1,
    });
    for (
      const line of [
        "extra: unknown top-level field",
        "users[0].username: must not start",
        "users[0].pasword: unknown field",
        "users[0].emial: unknown field",
        "users[0].enabeld: unknown field",
      ]
    ) {
      assert.ok(stderr.includes(line), `missing "${line}" in:\n${stderr}`);
    }
  });

  test("text that databases store differently is refused: lone surrogates, control characters in property names", async (t) => {
    const stderr = await rejected(t, [
      { username: "a\ud800b", password: "p" },
      { username: "c", password: "p\udc00" },
      { username: "d", password: "p", properties: { "k\u0000": 1, "x\ny": 2, "": 3, constructor: 4 } },
    ]);
    assert.match(stderr, /users\[0\]\.username: must be valid Unicode text/);
    assert.match(stderr, /users\[1\]\.password: must be valid Unicode text/);
    assert.match(
      stderr,
      /users\[2\]\.properties\["k\\u0000"\]: property names must be text without control characters/,
    );
    assert.match(stderr, /users\[2\]\.properties\["x\\ny"\]: property names must be text without control characters/);
    assert.match(stderr, /users\[2\]\.properties\[""\]: property names must be 1 to 255 characters/);
    assert.match(
      stderr,
      /users\[2\]\.properties\.constructor: the property names __proto__, prototype, constructor are not supported/,
    );
  });

  test("a property value nested deeper than 32 levels is refused with exit 2, however deep", async (t) => {
    const deep = (n: number) => "[".repeat(n) + "]".repeat(n);
    const stderr = await rejected(
      t,
      `[{"username": "a", "password": "p", "properties": {"ok": ${deep(32)}, "bad": ${deep(200000)}}}]`,
    );
    assert.match(stderr, /users\[0\]\.properties\.bad: nested more than 32 levels deep/);
    assert.doesNotMatch(stderr, /properties\.ok/);
  });

  test("addresses people use are accepted as emails, broken ones are not", async (t) => {
    const good = [
      "o'neil@example.com",
      "x@xn--bcher-kva.example",
      "user@localhost",
      "jos\u00e9@b\u00fccher.de",
      "a+tag@sub.example.org",
    ];
    const run = await runSync([
      "--validate",
      "--file",
      usersFile(good.map((email, i) => ({ username: `u${i}`, password: "p", email }))),
    ]);
    assert.equal(run.code, 0, run.stderr);
    const bad = [
      "bad@",
      "@example.com",
      "a b@example.com",
      "a..b@example.com",
      "a@-example.com",
      "a@example..com",
      "a@b@c",
    ];
    const stderr = await rejected(t, bad.map((email, i) => ({ username: `u${i}`, password: "p", email })));
    for (let i = 0; i < bad.length; i++) assert.ok(stderr.includes(`users[${i}].email: invalid email address`), stderr);
  });

  test("a PostgreSQL URL without // is refused with exit 2, and no URL password is ever printed", async () => {
    const file = usersFile([alice]);
    const noSlashes = await runSync(["--file", file, "-d", "postgres:user:hunter2-secret@127.0.0.1:1/db"]);
    assert.equal(noSlashes.code, 2);
    assert.match(noSlashes.stderr, /must start with postgres:\/\//);
    const malformed = await runSync(["--file", file, "-d", "postgres://user:hunter2/secret-part@127.0.0.1:1/db"]);
    assert.equal(malformed.code, 2);
    assert.match(malformed.stderr, /database URL is ambiguous: .* percent-encode them/);
    for (const run of [noSlashes, malformed]) assert.doesNotMatch(run.stdout + run.stderr, /hunter2|secret-part/);
  });

  test("a database URL typed without -d is refused without printing it", async () => {
    const run = await runSync(["--file", usersFile([alice]), "postgres://u:TopSecretPW@db:5432/x"]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /unexpected argument \(a path or URL\?/);
    assert.doesNotMatch(run.stderr, /TopSecretPW/);
  });

  test("bad usage with --log-format json is reported as JSON", async () => {
    const run = await runSync(["--log-format", "json", "--bogus"]);
    assert.equal(run.code, 2);
    assert.equal(JSON.parse(run.stderr.trim()).level, "error");
  });

  test("usernames of 255 characters and passwords of 1024 are accepted", async () => {
    const run = await runSync([
      "--validate",
      "--file",
      usersFile([{ username: "u".repeat(255), password: "p".repeat(1024) }]),
    ]);
    assert.equal(run.code, 0, run.stderr);
  });

  test("duplicate usernames are an error naming both places", async (t) => {
    const stderr = await rejected(t, [alice, bob, { ...alice, password: "other" }]);
    assert.match(stderr, /users\[2\]\.username: duplicate of users\[0\]/);
  });

  test("a JSON syntax error reports line and column", async (t) => {
    const stderr = await rejected(t, '[\n  {"username": "alice",\n   "password": "x" "email": null}\n]');
    assert.match(stderr, /not valid JSON: .* at line 3, column 20/);
  });

  test('a file that is neither an array nor {"users": [...]} is rejected', async (t) => {
    assert.match(await rejected(t, { user: [] }), /\(root\): expected an array of users/);
    assert.match(await rejected(t, { users: [], extra: true }), /extra: unknown top-level field/);
  });

  test("a missing file exits 2 and says how to give the path", async (t) => {
    const counter = await connectionCounter(t);
    const run = await runSync(["--file", "/nonexistent/users.json", "--database-url", counter.url]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /cannot read users file \/nonexistent\/users\.json: file not found/);
    assert.equal(counter.count(), 0);
  });

  test("--validate checks the file and opens no database connection", async (t) => {
    const counter = await connectionCounter(t);
    const run = await runSync(["--validate", "--file", usersFile([alice, bob])], { DATABASE_URL: counter.url });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /2 users, valid/);
    assert.equal(counter.count(), 0);
  });

  test("the file comes from $USERS_FILE and the database from $DATABASE_URL when no option says", async (t) => {
    const counter = await connectionCounter(t);
    const run = await runSync([], { USERS_FILE: usersFile([{ username: 3 }]), DATABASE_URL: counter.url });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /users\[0\]\.username: must be a string/);
  });

  test("bad usage exits 2", async () => {
    for (const args of [["--no-such-option"], ["--log-format", "xml"], ["--dry-run", "--validate"], ["extra"]]) {
      const run = await runSync(args);
      assert.equal(run.code, 2, `${args.join(" ")}: ${run.stderr}`);
      assert.match(run.stderr, /^error: .*see --help$/m);
    }
  });

  test("--help and --version print and exit 0", async () => {
    const help = await runSync(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--database-url/);
    const version = await runSync(["-V"]);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^barycenter-user-sync \d+\.\d+\.\d+$/m);
  });
});
