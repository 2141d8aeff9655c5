/**
 * The no-change fast path, and the constant number of statements: a re-sync
 * that changes nothing costs one Argon2 verification, never skips a real
 * change, and sends the same statements for 10 users as for 1,000.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { argon2Verify } from "../deps.ts";
import {
  hashPassword,
  openStore,
  pairsKey,
  passwordHashesDigest,
  sealState,
  STATE_KEY_PREFIX,
  stateKey,
  type Store,
  type StoreTransaction,
  syncUsers,
  type UserSpec,
  validateUsers,
} from "../sync.ts";
import { backends, runSync, type TestDatabase, testDatabase, usersFile, usersRows } from "./support/helpers.ts";

const alice = { username: "alice", password: "alice-passphrase", email: "alice@example.com" };
const bob = { username: "bob", password: "bob-passphrase", email: "bob@example.com" };

function manyUsers(count: number): UserSpec[] {
  return Array.from({ length: count }, (_, i) => ({
    username: `user${String(i).padStart(5, "0")}`,
    password: `password-${i}`,
    email: `user${i}@example.com`,
    properties: { name: `User ${i}` },
  }));
}

for (const backend of backends) {
  describe(`fast path on ${backend.name}`, () => {
    const database = (t: TestContext) => testDatabase(t, backend);

    /** Syncs and returns the printed user lines and the JSON summary. */
    async function sync(db: TestDatabase, users: unknown) {
      const run = await runSync(["--file", usersFile(users), "--database-url", db.url, "--log-format", "json"]);
      assert.equal(run.code, 0, run.stderr);
      const lines = run.stdout.trim().split("\n").map((line) => JSON.parse(line));
      return { users: lines.filter((l) => l.user), summary: lines.find((l) => l.summary) };
    }

    test("a re-sync with nothing changed proves every password from the stored state", async (t) => {
      const db = await database(t);
      assert.equal((await sync(db, [alice, bob])).summary.fast_path, false);
      const again = await sync(db, [alice, bob]);
      assert.equal(again.summary.fast_path, true);
      assert.equal(again.summary.unchanged, 2);
    });

    test("a password changed in the file is corrected on the next run", async (t) => {
      const db = await database(t);
      await sync(db, [alice, bob]);
      await sync(db, [alice, bob]);
      const changed = await sync(db, [{ ...alice, password: "alice-new-passphrase" }, bob]);
      assert.equal(changed.summary.fast_path, false);
      assert.deepEqual(changed.users.map((u) => [u.user, u.changes]), [["alice", ["password"]]]);
      const [row] = await usersRows(db);
      assert.equal(await argon2Verify(String(row.password_hash), "alice-new-passphrase"), true);
      const after = await sync(db, [{ ...alice, password: "alice-new-passphrase" }, bob]);
      assert.equal(after.summary.fast_path, true);
      assert.equal(after.summary.unchanged, 2);
    });

    test("a password changed directly in the database is corrected on the next run", async (t) => {
      const db = await database(t);
      await sync(db, [alice, bob]);
      await sync(db, [alice, bob]);
      // As if an administrator had changed it in Barycenter: a valid hash of another password.
      const other = await hashPassword("set-in-barycenter");
      await db.query(`UPDATE users SET password_hash = '${other}' WHERE username = 'alice'`);
      const run = await sync(db, [alice, bob]);
      assert.equal(run.summary.fast_path, false);
      assert.deepEqual(run.users.map((u) => [u.user, u.changes]), [["alice", ["password"]]]);
      const [row] = await usersRows(db);
      assert.equal(await argon2Verify(String(row.password_hash), alice.password), true);
    });

    test("an email changed directly in the database is corrected on the next run, still on the fast path", async (t) => {
      const db = await database(t);
      await sync(db, [alice, bob]);
      await sync(db, [alice, bob]);
      await db.query("UPDATE users SET email = 'mallory@example.com' WHERE username = 'alice'");
      const run = await sync(db, [alice, bob]);
      assert.equal(run.summary.fast_path, true);
      assert.deepEqual(run.users.map((u) => [u.user, u.changes]), [["alice", ["email"]]]);
      assert.equal((await usersRows(db))[0].email, alice.email);
    });

    test("a user deleted from the database, or added to the file, is created", async (t) => {
      const db = await database(t);
      await sync(db, [alice, bob]);
      await db.query("DELETE FROM users WHERE username = 'bob'");
      const recreated = await sync(db, [alice, bob]);
      assert.deepEqual(recreated.users.map((u) => [u.user, u.action]), [["bob", "create"]]);
      const added = await sync(db, [alice, bob, { username: "carol", password: "carol-passphrase" }]);
      assert.deepEqual(added.users.map((u) => [u.user, u.action]), [["carol", "create"]]);
    });

    test("the state holds a salt, a verifier and an HMAC of the stored hashes under a key from every password", async (t) => {
      const db = await database(t);
      await sync(db, [alice, bob]);
      const [state] = await db.query("SELECT * FROM user_sync_state");
      const pairsHash = String(state.pairs_hash);
      assert.ok(pairsHash.startsWith(STATE_KEY_PREFIX), pairsHash);
      const salt = Buffer.from(pairsHash.slice(STATE_KEY_PREFIX.length).split("$")[0], "base64");
      const rows = (await usersRows(db)).map((r) => ({
        username: String(r.username),
        password_hash: String(r.password_hash),
      }));
      const digest = passwordHashesDigest(rows);
      // Not the digest itself, which anyone who can write the hashes could recompute.
      assert.notEqual(state.hashes_digest, digest);
      const key = await pairsKey(validateUsers([alice, bob]), salt);
      const sealed = sealState(String(state.file_key), key, digest, Number(state.updated_at));
      // After the file's own HMAC come its buckets' (issue 18), made under the same key.
      const [fileMac] = String(state.hashes_digest).split(";buckets:");
      assert.deepEqual({ ...state, hashes_digest: fileMac }, { ...sealed });
      // One password alone does not make it.
      const oneWrong = await pairsKey(validateUsers([alice, { ...bob, password: alice.password }]), salt);
      assert.notEqual(sealState(String(state.file_key), oneWrong, digest, 0).pairs_hash, state.pairs_hash);
      assert.ok(!JSON.stringify(state).includes("passphrase"));
    });

    test("a state over one password keeps Barycenter's m=19456,t=2: a guess at it is no cheaper than at the user's hash", async (t) => {
      const db = await database(t);
      await sync(db, [alice]);
      const [state] = await db.query("SELECT pairs_hash FROM user_sync_state");
      assert.ok(String(state.pairs_hash).startsWith("$user-sync-key$argon2id$v=19$m=19456,t=2,p=1$"));
      const again = await sync(db, [alice]);
      assert.equal(again.summary.fast_path, true);
    });

    test("the state's key is Argon2id at m=7168,t=5 (7 MiB); a row an earlier version sealed at m=19456,t=2 still proves, until a password changes", async (t) => {
      const db = await database(t);
      await sync(db, [alice, bob]);
      const [state] = await db.query("SELECT * FROM user_sync_state");
      assert.ok(
        String(state.pairs_hash).startsWith("$user-sync-key$argon2id$v=19$m=7168,t=5,p=1$"),
        String(state.pairs_hash),
      );

      // The row as the version before this one sealed it: the same, with a key derived with Barycenter's parameters.
      const rows = (await usersRows(db)).map((r) => ({
        username: String(r.username),
        password_hash: String(r.password_hash),
      }));
      const barycenters = { memoryCost: 19456, timeCost: 2, parallelism: 1 };
      const legacyKey = await pairsKey(validateUsers([alice, bob]), Buffer.alloc(16, 7), barycenters);
      const legacy = sealState(String(state.file_key), legacyKey, passwordHashesDigest(rows), 1);
      assert.ok(legacy.pairs_hash.startsWith("$user-sync-key$argon2id$v=19$m=19456,t=2,p=1$"));
      await db.query(
        `UPDATE user_sync_state SET pairs_hash = '${legacy.pairs_hash}', hashes_digest = '${legacy.hashes_digest}'`,
      );
      const upgraded = await sync(db, [alice, bob]);
      assert.equal(upgraded.summary.fast_path, true, "an upgrade keeps the fast path");
      assert.equal(upgraded.summary.proofs, 1);
      assert.equal(upgraded.summary.verified, 0);
      const [kept] = await db.query("SELECT pairs_hash FROM user_sync_state");
      assert.equal(kept.pairs_hash, legacy.pairs_hash, "a proven row is left as it is");

      const changed = await sync(db, [alice, { ...bob, password: "bob-new-passphrase" }]);
      assert.deepEqual(changed.users.map((u) => [u.user, u.changes]), [["bob", ["password"]]]);
      const [resealed] = await db.query("SELECT pairs_hash FROM user_sync_state");
      assert.ok(String(resealed.pairs_hash).startsWith(STATE_KEY_PREFIX), String(resealed.pairs_hash));
      assert.equal(STATE_KEY_PREFIX, "$user-sync-key$argon2id$v=19$m=7168,t=5,p=1$");
    });
  });
}

describe("state rows sealed by earlier versions", () => {
  // Names and hashes that JSON escapes, or writes as more than one byte, and enough of them to fill many of the
  // pieces the digests are hashed in.
  const users = Array.from({ length: 3000 }, (_, i) => ({
    username: [`user${i}`, `quote"${i}`, `back\\slash${i}`, `ünï${i}`, `lone\ud800${i}`, `tab\t${i}`][i % 6],
    password_hash: `$argon2id$v=19$m=19456,t=2,p=1$${"c2FsdA".repeat(i % 5 + 1)}$${"aGFzaA".repeat(7)}${i}`,
  })).reverse();
  const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
  const byName = (a: { username: string }, b: { username: string }) =>
    a.username < b.username ? -1 : a.username > b.username ? 1 : 0;

  test("the digest of the password hashes is SHA-256 of the JSON of the (username, hash) pairs, sorted", () => {
    const pairs = [...users].sort(byName).map((u) => [u.username, u.password_hash]);
    assert.equal(passwordHashesDigest(users), sha256(JSON.stringify(pairs)));
    assert.equal(passwordHashesDigest([]), sha256("[]"));
  });

  test("a state row is keyed by SHA-256 of the JSON of the file's usernames, sorted", () => {
    const specs = users.map((u) => ({ username: u.username }) as UserSpec);
    assert.equal(stateKey(specs), sha256(JSON.stringify(users.map((u) => u.username).sort())));
  });
});

describe("progress", () => {
  test("hashing a few hundred passwords off a terminal logs a start line and periodic lines", async () => {
    const dir = mkdtempSync(join(tmpdir(), "user-sync-progress-"));
    const run = await runSync(["--file", usersFile(manyUsers(300)), "--database-url", `sqlite://${dir}/p.db?mode=rwc`]);
    assert.equal(run.code, 0, run.stderr);
    const progress = run.stdout.split("\n").filter((line) => /^hashing passwords: \d+\/300$/.test(line));
    assert.equal(progress[0], "hashing passwords: 0/300");
    assert.ok(progress.length >= 2 && progress.length <= 11, progress.join("\n"));
    assert.equal(progress.at(-1), "hashing passwords: 300/300");
  });
});

describe("statements per run do not grow with the number of users", () => {
  test("PostgreSQL: the statement log shows the same statements for 10 and for 1,000 users", async (t) => {
    const postgres = backends.find((b) => b.name === "postgres")!;
    const log = process.env.TEST_POSTGRES_LOG;
    assert.ok(log, "TEST_POSTGRES_LOG is not set: run the tests with `npm test`");
    /** Statements the tool sent to this database so far, as logged by the server. */
    const statements = (db: TestDatabase) => {
      const name = new URL(db.url).pathname.slice(1);
      return readFileSync(log, "utf8").split("\n")
        .filter((line) => line.startsWith(`${name}|barycenter-user-sync|`) && /LOG: {2}(statement|execute)/.test(line));
    };
    /** Returns once the server has logged everything sent before this call: a marker statement is logged after it. */
    const logFlushed = async (db: TestDatabase) => {
      const marker = `log-flushed-${Math.random().toString(36).slice(2)}`;
      await db.query(`SELECT '${marker}'`);
      const deadline = Date.now() + 30_000;
      while (!readFileSync(log, "utf8").includes(marker)) {
        assert.ok(Date.now() < deadline, "the server never logged the marker statement");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    };
    const counts: Record<string, number[]> = {};
    for (const size of [10, 1000]) {
      const db = await postgres.create();
      t.after(() => db.close());
      const file = usersFile(manyUsers(size));
      const perRun: number[] = [];
      for (const _ of ["create", "no change"]) {
        const before = statements(db).length;
        const run = await runSync(["--file", file, "--database-url", db.url]);
        assert.equal(run.code, 0, run.stderr);
        await logFlushed(db);
        perRun.push(statements(db).length - before);
      }
      counts[size] = perRun;
    }
    t.diagnostic(`statements (create, no change): 10 users ${counts[10]}, 1000 users ${counts[1000]}`);
    assert.deepEqual(counts[1000], counts[10]);
    // Since issue 13: which later users columns exist (requires_2fa) and Barycenter's default admin, on every run;
    // and on a first run the tool's table of created users and the record of them. Since issue 18, on a first
    // run: the table of bucket proofs, and its rows.
    assert.ok(counts[10][0] <= 19 && counts[10][1] <= 9, `too many statements: ${counts[10]}`);
  });

  test("SQLite: the backend interface is called the same number of times for 10 and for 1,000 users", async (t) => {
    const sqlite = backends.find((b) => b.name === "sqlite")!;
    const counts: Record<string, number[]> = {};
    for (const size of [10, 1000]) {
      const db = await sqlite.create();
      t.after(() => db.close());
      const specs = manyUsers(size);
      const perRun: number[] = [];
      for (const _ of ["create", "no change"]) {
        const { store, calls } = countingStore(await openStore(db.url));
        await syncUsers(store, specs, { dryRun: false });
        await store.close();
        perRun.push(calls());
      }
      counts[size] = perRun;
    }
    t.diagnostic(`interface calls (create, no change): 10 users ${counts[10]}, 1000 users ${counts[1000]}`);
    assert.deepEqual(counts[1000], counts[10]);
  });
});

/** Wraps a store so that every call of a transaction's operation is counted. */
function countingStore(inner: Store): { store: Store; calls: () => number } {
  let calls = 0;
  const store: Store = {
    transaction: (work, mode) =>
      inner.transaction((tx) =>
        work(
          new Proxy(tx, {
            get(target, key) {
              const value = Reflect.get(target, key);
              if (typeof value !== "function") return value;
              return (...args: unknown[]) => {
                calls++;
                return (value as (...a: unknown[]) => unknown).apply(target, args);
              };
            },
          }) as StoreTransaction,
        ), mode),
    abort: () => inner.abort(),
    close: () => inner.close(),
  };
  return { store, calls: () => calls };
}
