/**
 * Issue 13, part B: disabling a user ends its access, `"state": "absent"`
 * removes an account with every row keyed by its subject, and `--prune`
 * removes only what the tool created. Each on both backends, against a
 * database with Barycenter's full schema (rows for the user and for another
 * user, to see what is deleted, revoked or left alone) and against a freshly
 * bootstrapped one.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test, type TestContext } from "node:test";
import { Ajv2020 } from "ajv/dist/2020.js";
import { planChanges, planPrune, type StoredUser } from "../sync.ts";
import {
  backends,
  barycenterFullSchema,
  propertiesOf,
  runSync,
  type TestDatabase,
  usersFile,
} from "./support/helpers.ts";

const alice = { username: "alice", password: "alice-first-passphrase" };
const bob = { username: "bob", password: "bob-first-passphrase", properties: { name: "Bob", team: "x" } };

/** Rows for the user with `subject` in every table of the full schema; `tag` keeps keys unique. */
function rowsFor(subject: string, tag: string, deviceTable = "device_codes"): string[] {
  return [
    `INSERT INTO sessions (session_id, subject, auth_time, created_at, expires_at) VALUES
      ('${tag}-s1', '${subject}', 1, 1, 9999999999), ('${tag}-s2', '${subject}', 1, 1, 9999999999)`,
    `INSERT INTO auth_codes (code, client_id, subject, created_at, expires_at, consumed) VALUES
      ('${tag}-c1', 'app', '${subject}', 1, 9999999999, 0), ('${tag}-c2', 'app', '${subject}', 1, 9999999999, 1)`,
    `INSERT INTO access_tokens (token, client_id, subject, created_at, expires_at, revoked) VALUES
      ('${tag}-a1', 'app', '${subject}', 1, 9999999999, 0), ('${tag}-a2', 'app', '${subject}', 1, 9999999999, 0)`,
    `INSERT INTO refresh_tokens (token, client_id, subject, created_at, expires_at, revoked) VALUES
      ('${tag}-r1', 'app', '${subject}', 1, 9999999999, 0), ('${tag}-r2', 'app', '${subject}', 1, 9999999999, 1)`,
    `INSERT INTO passkeys (credential_id, subject) VALUES ('${tag}-p1', '${subject}')`,
    `INSERT INTO webauthn_challenges (challenge, subject) VALUES ('${tag}-w1', '${subject}')`,
    `INSERT INTO consent (client_id, subject) VALUES ('app', '${subject}')`,
    `INSERT INTO ${deviceTable} (device_code, subject) VALUES ('${tag}-d1', '${subject}')`,
    `INSERT INTO federated_identities (id, local_user_id, peer) VALUES ('${tag}-f1', '${subject}', 'peer')`,
  ];
}

/** The tables holding a subject, and their subject column. */
const SUBJECT_COLUMNS: [string, string][] = [
  ["properties", "owner"],
  ["sessions", "subject"],
  ["auth_codes", "subject"],
  ["access_tokens", "subject"],
  ["refresh_tokens", "subject"],
  ["passkeys", "subject"],
  ["webauthn_challenges", "subject"],
  ["consent", "subject"],
  ["device_codes", "subject"],
  ["federated_identities", "local_user_id"],
];

for (const backend of backends) {
  describe(`account life (disable, absent, prune) on ${backend.name}`, () => {
    async function database(t: TestContext, schema?: string[]): Promise<TestDatabase> {
      const db = await backend.create();
      t.after(() => db.close());
      for (const statement of schema ?? []) await db.query(statement);
      return db;
    }

    async function sync(db: TestDatabase, users: unknown, ...args: string[]) {
      return await runSync(["--file", usersFile(users), "--database-url", db.url, ...args]);
    }

    async function syncOk(db: TestDatabase, users: unknown, ...args: string[]) {
      const run = await sync(db, users, ...args);
      assert.equal(run.code, 0, `sync failed: ${run.stdout}${run.stderr}`);
      return run;
    }

    async function subjectOf(db: TestDatabase, username: string): Promise<string> {
      const [row] = await db.query(`SELECT subject FROM users WHERE username = '${username}'`);
      return String(row.subject);
    }

    /** How many rows each subject table holds for `subject`. */
    async function rowCounts(db: TestDatabase, subject: string, tables = SUBJECT_COLUMNS) {
      const counts: Record<string, number> = {};
      for (const [table, column] of tables) {
        const [row] = await db.query(`SELECT count(*) AS n FROM ${table} WHERE ${column} = '${subject}'`);
        counts[table] = Number(row.n);
      }
      return counts;
    }

    async function flags(db: TestDatabase, table: string, column: string, subject: string) {
      const rows = await db.query(`SELECT ${column} AS flag FROM ${table} WHERE subject = '${subject}' ORDER BY 1`);
      return rows.map((row) => Number(row.flag));
    }

    test("disabling ends the user's sessions, tokens and codes, and nobody else's; a disabled user costs nothing", async (t) => {
      const db = await database(t, barycenterFullSchema(backend));
      await syncOk(db, [alice, bob]);
      const [a, b] = [await subjectOf(db, "alice"), await subjectOf(db, "bob")];
      for (const statement of [...rowsFor(a, "a"), ...rowsFor(b, "b")]) await db.query(statement);

      const plan = await sync(db, [alice, { ...bob, enabled: false }], "--check");
      assert.equal(plan.code, 4);
      assert.match(plan.stdout, /^would update bob: enabled$/m);
      assert.equal((await rowCounts(db, b)).sessions, 2, "a plan ends nothing");

      const run = await syncOk(db, [alice, { ...bob, enabled: false }]);
      assert.match(run.stdout, /^updated bob: enabled \(ended 2 sessions, revoked 3 tokens, consumed 1 auth code\)$/m);
      assert.match(run.stdout, /^users: 0 created, 1 updated, 1 unchanged$/m);
      assert.equal((await rowCounts(db, b)).sessions, 0);
      assert.deepEqual(await flags(db, "access_tokens", "revoked", b), [1, 1]);
      assert.deepEqual(await flags(db, "refresh_tokens", "revoked", b), [1, 1]);
      assert.deepEqual(await flags(db, "auth_codes", "consumed", b), [1, 1]);
      // Nothing else of bob's is touched, and nothing of alice's.
      const bobs = await rowCounts(db, b);
      assert.deepEqual([bobs.passkeys, bobs.consent, bobs.properties], [1, 1, 2]);
      assert.equal((await rowCounts(db, a)).sessions, 2);
      assert.deepEqual(await flags(db, "access_tokens", "revoked", a), [0, 0]);
      assert.deepEqual(await flags(db, "refresh_tokens", "revoked", a), [0, 1]);
      assert.deepEqual(await flags(db, "auth_codes", "consumed", a), [0, 1]);

      // Already disabled: a session made since (by an admin, say) is left alone.
      await db.query(`INSERT INTO sessions (session_id, subject, auth_time, created_at, expires_at)
        VALUES ('b-s3', '${b}', 1, 1, 9999999999)`);
      const again = await syncOk(db, [alice, { ...bob, enabled: false }]);
      assert.equal(again.stdout.trim(), "users: 0 created, 0 updated, 2 unchanged");
      assert.equal((await rowCounts(db, b)).sessions, 1);
    });

    test("disabling on a freshly bootstrapped database skips the tables that do not exist yet", async (t) => {
      const db = await database(t);
      await syncOk(db, [alice, bob]);
      const run = await syncOk(db, [alice, { ...bob, enabled: false }], "--log-format", "json");
      const line = run.stdout.trim().split("\n").map((l) => JSON.parse(l)).find((l) => l.user === "bob");
      assert.equal(line.msg, "updated bob: enabled");
      assert.equal(line.rows, undefined);
      const [row] = await db.query("SELECT enabled FROM users WHERE username = 'bob'");
      assert.equal(Number(row.enabled), 0);
    });

    test('"state": "absent" deletes the user and every row keyed by its subject, nobody else\'s', async (t) => {
      const db = await database(t, barycenterFullSchema(backend));
      await syncOk(db, [alice, bob]);
      const [a, b] = [await subjectOf(db, "alice"), await subjectOf(db, "bob")];
      for (const statement of [...rowsFor(a, "a"), ...rowsFor(b, "b")]) await db.query(statement);
      const file = [alice, { username: "bob", state: "absent" }];

      const dry = await sync(db, file, "--dry-run");
      assert.equal(dry.code, 0);
      assert.match(dry.stdout, /^would delete bob$/m);
      assert.match(dry.stdout, /users: 0 to create, 0 to update, 1 unchanged, 1 to delete, 0 already absent/);
      const check = await sync(db, file, "--check");
      assert.equal(check.code, 4, "a present absent-user is drift");
      assert.equal((await db.query("SELECT username FROM users")).length, 2, "a plan deletes nothing");

      const run = await syncOk(db, file);
      assert.match(
        run.stdout,
        /^deleted bob \(2 properties, 1 passkey, 2 sessions, 4 tokens, 2 auth codes, 1 passkey challenge, 1 consent, 1 device code, 1 federated identity\)$/m,
      );
      assert.match(run.stdout, /^users: 0 created, 0 updated, 1 unchanged, 1 deleted, 0 already absent$/m);
      assert.deepEqual((await db.query("SELECT username FROM users")).map((r) => r.username), ["alice"]);
      assert.deepEqual(
        Object.values(await rowCounts(db, b)).every((n) => n === 0),
        true,
        JSON.stringify(await rowCounts(db, b)),
      );
      assert.deepEqual(await rowCounts(db, a), {
        properties: 0,
        sessions: 2,
        auth_codes: 2,
        access_tokens: 2,
        refresh_tokens: 2,
        passkeys: 1,
        webauthn_challenges: 1,
        consent: 1,
        device_codes: 1,
        federated_identities: 1,
      });

      // Gone now: "already absent", nothing to do, no drift.
      const after = await sync(db, file, "--check");
      assert.equal(after.code, 0, after.stdout);
      assert.match(after.stdout, /^already absent bob$/m);
      const quiet = await syncOk(db, file);
      assert.equal(quiet.stdout.trim(), "users: 0 created, 0 updated, 1 unchanged, 0 deleted, 1 already absent");
    });

    test("absent finds the device-code table by its name before Barycenter's rename migration", async (t) => {
      const db = await database(t, barycenterFullSchema(backend, "device_code"));
      await syncOk(db, [bob]);
      const b = await subjectOf(db, "bob");
      for (const statement of rowsFor(b, "b", "device_code")) await db.query(statement);
      const run = await syncOk(db, [{ username: "bob", state: "absent" }]);
      assert.match(run.stdout, /^deleted bob \(.*1 device code, 1 federated identity\)$/m);
      const [row] = await db.query(`SELECT count(*) AS n FROM device_code WHERE subject = '${b}'`);
      assert.equal(Number(row.n), 0);
    });

    test("absent on a freshly bootstrapped database: properties go with the user; a missing user costs nothing", async (t) => {
      const db = await database(t);
      await syncOk(db, [alice, bob]);
      const b = await subjectOf(db, "bob");
      const run = await syncOk(db, [alice, { username: "bob", state: "absent" }, { username: "zed", state: "absent" }]);
      assert.match(run.stdout, /^deleted bob \(2 properties\)$/m);
      assert.doesNotMatch(run.stdout, /zed/, "an already absent user is not printed by a sync");
      assert.match(run.stdout, /^users: 0 created, 0 updated, 1 unchanged, 1 deleted, 1 already absent$/m);
      assert.deepEqual(await propertiesOf(db, "bob"), {});
      const [left] = await db.query(`SELECT count(*) AS n FROM properties WHERE owner = '${b}'`);
      assert.equal(Number(left.n), 0);
      const [created] = await db.query(`SELECT count(*) AS n FROM user_sync_created WHERE subject = '${b}'`);
      assert.equal(Number(created.n), 0, "the tool's record of bob goes with him");
    });

    test("admin cannot be made absent, and an absent user may carry no other field: exit 2, nothing written", async (t) => {
      const db = await database(t);
      await syncOk(db, [{ username: "admin", password: "a-real-admin-passphrase" }]);
      const run = await sync(db, [{ username: "admin", state: "absent" }, { ...alice, state: "absent" }]);
      assert.equal(run.code, 2);
      assert.match(
        run.stderr,
        /users\[0\]\.state \(user "admin"\): admin cannot be made absent: Barycenter re-creates "admin" with the password password123 whenever it is missing at start; list admin with a real password, or with "enabled": false, instead/,
      );
      assert.match(
        run.stderr,
        /users\[1\]\.password: an absent user \("state": "absent"\) may have only username and state/,
      );
      assert.doesNotMatch(run.stderr, /alice-first-passphrase/);
      assert.equal((await db.query("SELECT username FROM users")).length, 1);
    });

    test("--prune deletes only users the tool created that the file no longer lists", async (t) => {
      const db = await database(t, barycenterFullSchema(backend));
      await syncOk(db, [alice, bob, { username: "carol", password: "carol-passphrase" }]);
      // Users the tool did not create: Barycenter's admin, a self-registered one.
      await db.query(`INSERT INTO users (subject, username, password_hash, created_at) VALUES
        ('admin-subject', 'admin', '', 1), ('self-subject', 'selfreg', '', 1)`);
      const b = await subjectOf(db, "bob");
      for (const statement of rowsFor(b, "b")) await db.query(statement);

      const plain = await syncOk(db, [alice]);
      assert.equal(plain.stdout.trim(), "users: 0 created, 0 updated, 1 unchanged", "without --prune nothing goes");

      const check = await sync(db, [alice], "--prune", "--check");
      assert.equal(check.code, 4);
      assert.match(check.stdout, /^would delete bob \(pruned: created by this tool, no longer in the file\)$/m);
      assert.match(check.stdout, /^would delete carol \(pruned: created by this tool, no longer in the file\)$/m);
      assert.doesNotMatch(check.stdout, /admin|selfreg/);

      const run = await syncOk(db, [alice], "--prune");
      assert.match(
        run.stdout,
        /^deleted bob \(pruned: created by this tool, no longer in the file; 2 properties, 1 passkey, 2 sessions, 4 tokens, 2 auth codes, 1 passkey challenge, 1 consent, 1 device code, 1 federated identity\)$/m,
      );
      assert.match(run.stdout, /^deleted carol \(pruned: created by this tool, no longer in the file\)$/m);
      assert.deepEqual(
        (await db.query("SELECT username FROM users ORDER BY username")).map((r) => r.username),
        ["admin", "alice", "selfreg"],
      );
      const again = await syncOk(db, [alice], "--prune", "--check");
      assert.match(again.stdout, /check: the database matches the file/);
    });

    test("--prune guardrails: more than --max-prune changes nothing (exit 2); an empty file prunes nothing", async (t) => {
      const db = await database(t);
      const many = Array.from({ length: 7 }, (_, i) => ({ username: `u${i}`, password: `pass-${i}` }));
      await syncOk(db, many);

      const refused = await sync(db, [many[0]], "--prune");
      assert.equal(refused.code, 2);
      assert.match(
        refused.stderr,
        /--prune would delete 6 users the file no longer lists, more than --max-prune 5; nothing was changed\. If that is intended, run again with --max-prune 6/,
      );
      assert.equal((await db.query("SELECT username FROM users")).length, 7);

      const empty = await syncOk(db, [], "--prune");
      assert.match(empty.stderr, /--prune: the file lists no users, so nothing is pruned/);
      const onlyAbsent = await syncOk(db, [{ username: "nobody", state: "absent" }], "--prune");
      assert.match(onlyAbsent.stderr, /nothing is pruned/);
      assert.equal((await db.query("SELECT username FROM users")).length, 7);

      const allowed = await syncOk(db, [many[0]], "--prune", "--max-prune", "6");
      assert.match(allowed.stdout, /^users: 0 created, 0 updated, 1 unchanged, 6 deleted, 0 already absent$/m);
      assert.equal((await db.query("SELECT username FROM users")).length, 1);
    });

    test("users created before the tool recorded them are never pruned; the record's table comes with the next sync", async (t) => {
      const db = await database(t);
      await syncOk(db, [alice, bob]);
      // As an older version left the database: no record of what it created.
      await db.query("DROP TABLE user_sync_created");
      const run = await syncOk(db, [alice, { username: "carol", password: "carol-passphrase" }], "--prune");
      assert.match(run.stdout, /^created carol: password$/m);
      assert.doesNotMatch(run.stdout, /bob/);
      assert.equal(await backend.tableExists(db, "user_sync_created"), true);
      assert.deepEqual((await db.query("SELECT username FROM user_sync_created")).map((r) => r.username), ["carol"]);
      const later = await syncOk(db, [alice], "--prune");
      assert.match(later.stdout, /^deleted carol /m);
      assert.deepEqual(
        (await db.query("SELECT username FROM users ORDER BY username")).map((r) => r.username),
        ["alice", "bob"],
      );
    });

    test("JSON logs carry the action, the reason and the row counts of a deletion", async (t) => {
      const db = await database(t);
      await syncOk(db, [alice, bob, { username: "carol", password: "carol-passphrase" }]);
      const run = await syncOk(db, [alice, { username: "bob", state: "absent" }], "--prune", "--log-format", "json");
      const lines = run.stdout.trim().split("\n").map((l) => JSON.parse(l));
      const [b, c] = ["bob", "carol"].map((name) => lines.find((l) => l.user === name));
      assert.deepEqual([b.action, b.reason, b.rows, b.msg], [
        "delete",
        undefined,
        { properties: 2 },
        "deleted bob (2 properties)",
      ]);
      assert.deepEqual([c.action, c.reason, c.rows], ["delete", "prune", undefined]);
      const summary = lines.at(-1);
      assert.deepEqual([summary.deleted, summary.already_absent, summary.unchanged], [2, 0, 1]);
    });

    test("--max-prune takes a whole number of users", async () => {
      const run = await runSync(["--max-prune", "1.5", "--file", usersFile([alice])]);
      assert.equal(run.code, 2);
      assert.match(run.stderr, /--max-prune must be a whole number of users/);
    });

    test("a freshly bootstrapped database records every created user (subject, username, time)", async (t) => {
      const db = await database(t);
      const before = Math.floor(Date.now() / 1000);
      await syncOk(db, [alice, bob]);
      const rows = await db.query(
        "SELECT c.subject, c.username, c.created_at, u.created_at AS user_created FROM user_sync_created c " +
          "JOIN users u ON u.subject = c.subject ORDER BY c.username",
      );
      assert.deepEqual(rows.map((r) => r.username), ["alice", "bob"]);
      for (const row of rows) {
        assert.equal(Number(row.created_at), Number(row.user_created));
        assert.ok(Number(row.created_at) >= before);
      }
    });
  });
}

describe("absent users and pruning in the plan, the schema and the examples", () => {
  const stored = (username: string, subject: string): StoredUser => ({
    subject,
    username,
    password_hash: "",
    email: null,
    email_verified: 0,
    created_at: 1,
    enabled: 1,
    properties: {},
  });

  test("planChanges: an existing absent user is deleted, a missing one is already absent; disabling is noted", () => {
    const plan = planChanges(
      [
        { username: "bob", state: "absent" },
        { username: "zed", state: "absent" },
        { username: "alice", password: "pw", enabled: false },
      ],
      new Map([["bob", stored("bob", "B")], ["alice", stored("alice", "A")]]),
      new Map([["alice", true]]),
      1000,
    );
    assert.deepEqual(plan.changes, [
      { username: "bob", action: "delete", changes: [] },
      { username: "zed", action: "absent", changes: [] },
      { username: "alice", action: "update", changes: ["enabled"] },
    ]);
    assert.deepEqual(plan.removals, [{ username: "bob", subject: "B" }]);
    assert.deepEqual(plan.disabled, [{ username: "alice", subject: "A" }]);
  });

  test("planPrune: unlisted users the tool created, never admin, never with no present user, never above the limit", () => {
    const plan = planChanges([{ username: "alice", password: "pw" }], new Map(), new Map(), 1000, () => "S");
    const created = [{ username: "carol", subject: "C" }, { username: "admin", subject: "AD" }, {
      username: "alice",
      subject: "S",
    }];
    const pruned = planPrune(plan, [{ username: "alice", password: "pw" }], created, 5);
    assert.deepEqual(pruned.removals, [{ username: "carol", subject: "C" }]);
    assert.deepEqual(pruned.changes.at(-1), { username: "carol", action: "delete", changes: [], reason: "prune" });
    assert.equal(planPrune(plan, [{ username: "x", state: "absent" }], created, 5).removals.length, 0);
    assert.throws(() => planPrune(plan, [{ username: "alice", password: "pw" }], created, 0), /--max-prune 0/);
  });

  test("the JSON Schema accepts the examples and refuses what the tool refuses about absent users", () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    const validate = ajv.compile(JSON.parse(readFileSync(new URL("../users.schema.json", import.meta.url), "utf8")));
    for (const name of ["users.disable.json", "users.absent.json", "users.prune.json"]) {
      const example = JSON.parse(readFileSync(new URL(`../examples/${name}`, import.meta.url), "utf8"));
      assert.ok(validate(example), `${name}: ${ajv.errorsText(validate.errors)}`);
    }
    assert.ok(validate([{ username: "bob", state: "absent" }]));
    assert.ok(validate([{ username: "bob", state: "present", password: "p" }]));
    for (
      const bad of [
        [{ username: "admin", state: "absent" }],
        [{ username: "bob", state: "absent", password: "p" }],
        [{ username: "bob", state: "absent", email: null }],
        [{ username: "bob", state: "gone" }],
        [{ username: "bob", state: "present" }],
      ]
    ) assert.equal(validate(bad), false, JSON.stringify(bad));
  });
});
