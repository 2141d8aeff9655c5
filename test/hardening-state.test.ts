/**
 * The fast path's state cannot be forged (issue 12, point 15): someone who
 * can write the database but does not know the file's passwords can make a
 * sync slower, never make it trust a stored hash that does not verify the
 * file's password. A no-change run still costs one Argon2 computation, and a
 * state row of the tool's first version only means one slower run.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, test, type TestContext } from "node:test";
import { argon2Verify } from "../deps.ts";
// A namespace import, so that this file also loads with the first version of sync.ts (which lacks the
// state's new functions) and its central test can be shown to fail there.
import * as sync from "../sync.ts";
import { backends, runSync, type TestDatabase, testDatabase, usersFile, usersRows } from "./support/helpers.ts";

const alice = { username: "alice", password: "alice-file-passphrase", email: "alice@example.com" };
const bob = { username: "bob", password: "bob-file-passphrase" };
const carol = { username: "carol", password_hash: await sync.hashPassword("carol-passphrase") };

/** What the tool's first version stored as `hashes_digest`, recomputed as it did: anyone can. */
function plainDigest(rows: Record<string, unknown>[]): string {
  const pairs = rows.map((r) => [String(r.username), String(r.password_hash)])
    .sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
  return createHash("sha256").update(JSON.stringify(pairs)).digest("hex");
}

/**
 * A `NODE_OPTIONS` that makes a child count its Argon2 computations: a module
 * hook hands `@node-rs/argon2` to `deps.ts` through a wrapper that counts
 * every `hash`, `hashRaw` and `verify` call and writes the total to
 * `countFile` at exit.
 */
function countingArgon2(countFile: string): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), "user-sync-argon2-count-"));
  const real = import.meta.resolve("@node-rs/argon2");
  const wrapper = pathToFileURL(join(dir, "counting-argon2.mjs")).href;
  writeFileSync(
    join(dir, "counting-argon2.mjs"),
    `import { writeFileSync } from "node:fs";
import argon2 from ${JSON.stringify(real)};
let count = 0;
const counted = (fn) => (...args) => (count++, fn(...args));
export const hash = counted(argon2.hash), hashRaw = counted(argon2.hashRaw), verify = counted(argon2.verify);
process.on("exit", () => writeFileSync(${JSON.stringify(countFile)}, String(count)));
`,
  );
  writeFileSync(
    join(dir, "hooks.mjs"),
    `export async function resolve(specifier, context, next) {
  if (specifier === "@node-rs/argon2" && context.parentURL !== ${JSON.stringify(wrapper)}) {
    return { url: ${JSON.stringify(wrapper)}, shortCircuit: true };
  }
  return next(specifier, context);
}
`,
  );
  writeFileSync(
    join(dir, "register.mjs"),
    `import { register } from "node:module";\nregister(${
      JSON.stringify(pathToFileURL(join(dir, "hooks.mjs")).href)
    });\n`,
  );
  return { NODE_OPTIONS: `--import ${pathToFileURL(join(dir, "register.mjs")).href}` };
}

/** The columns of a `user_sync_state` row that a forger edits. */
type StateRow = { file_key: string; pairs_hash: string; hashes_digest: string };

for (const backend of backends) {
  describe(`the fast path's state on ${backend.name}`, () => {
    const database = (t: TestContext) => testDatabase(t, backend);

    /** Runs the CLI with `--log-format json`; returns its status, user lines and summary. */
    async function run(db: TestDatabase, users: unknown, args: string[] = [], env: Record<string, string> = {}) {
      const result = await runSync(
        ["--file", usersFile(users), "--database-url", db.url, "--log-format", "json", ...args],
        env,
      );
      const lines = result.stdout.trim().split("\n").filter(Boolean).map((line) => JSON.parse(line));
      return {
        code: result.code,
        stderr: result.stderr,
        users: lines.filter((l) => l.user && l.action !== "unchanged").map((l) => [l.user, l.changes]),
        summary: lines.find((l) => l.summary),
      };
    }

    async function syncOk(db: TestDatabase, users: unknown) {
      const result = await run(db, users);
      assert.equal(result.code, 0, result.stderr);
      return result;
    }

    async function hashOf(db: TestDatabase, username: string): Promise<string> {
      const [row] = await db.query(`SELECT password_hash FROM users WHERE username = '${username}'`);
      return String(row.password_hash);
    }

    async function stateRow(db: TestDatabase): Promise<StateRow> {
      const rows = await db.query("SELECT file_key, pairs_hash, hashes_digest FROM user_sync_state");
      assert.equal(rows.length, 1);
      const [{ file_key, pairs_hash, hashes_digest }] = rows;
      return { file_key: String(file_key), pairs_hash: String(pairs_hash), hashes_digest: String(hashes_digest) };
    }

    async function setState(db: TestDatabase, state: StateRow) {
      const text = (value: string) => `'${value.replaceAll("'", "''")}'`;
      await db.query(
        `UPDATE user_sync_state SET pairs_hash = ${text(state.pairs_hash)}, hashes_digest = ${
          text(state.hashes_digest)
        } WHERE file_key = ${text(state.file_key)}`,
      );
    }

    /**
     * After a forgery: `--check` must see the drift, and the next sync must
     * miss the fast path and restore `alice`'s file password.
     */
    async function assertCaughtAndRestored(db: TestDatabase, users: unknown[], password = alice.password) {
      const bobBefore = await hashOf(db, "bob");
      const check = await run(db, users, ["--check"]);
      assert.equal(check.code, 4, `--check trusted a forged state:\n${JSON.stringify(check.summary)}`);
      assert.equal(check.summary.fast_path, false);
      const restore = await syncOk(db, users);
      assert.equal(restore.summary.fast_path, false, "the sync took the fast path over a forged state");
      assert.deepEqual(restore.users, [["alice", ["password"]]]);
      assert.equal(
        await argon2Verify(await hashOf(db, "alice"), password),
        true,
        "the file's password was not restored",
      );
      assert.equal(await hashOf(db, "bob"), bobBefore, "a user whose hash was right was rewritten");
      // The state written by the restoring run proves the restored hashes.
      const after = await run(db, users, ["--check"]);
      assert.equal(after.code, 0, after.stderr);
      assert.equal(after.summary.fast_path, true);
    }

    test("a hash replaced in the database, with hashes_digest recomputed as the first version stored it, is restored", async (t) => {
      const db = await database(t);
      await syncOk(db, [alice, bob]);
      assert.equal((await syncOk(db, [alice, bob])).summary.fast_path, true);
      // The attacker: write access to the database, not the file's passwords.
      await db.query(
        `UPDATE users SET password_hash = '${await sync.hashPassword("mallory")}' WHERE username = 'alice'`,
      );
      const state = await stateRow(db);
      await setState(db, { ...state, hashes_digest: plainDigest(await usersRows(db)) });
      await assertCaughtAndRestored(db, [alice, bob]);
    });

    test("no state a database writer can compute without the file's passwords proves a replaced hash", async (t) => {
      const db = await database(t);
      const users = [alice, bob, carol];
      await syncOk(db, users);
      const guessed = sync.validateUsers([{ ...alice, password: "mallory" }, { ...bob, password: "guess" }, carol]);
      const forgeries: Record<string, (state: StateRow, digest: string) => Promise<unknown>> = {
        "the plain digest": (state, digest) => setState(db, { ...state, hashes_digest: digest }),
        "an HMAC under a key from guessed passwords and the stored salt": async (state, digest) => {
          const salt = Buffer.from(
            String(state.pairs_hash).slice(sync.STATE_KEY_PREFIX.length).split("$")[0],
            "base64",
          );
          const forged = sync.sealState(state.file_key, await sync.pairsKey(guessed, salt), digest, 0);
          await setState(db, { ...state, hashes_digest: forged.hashes_digest });
        },
        "a whole row made for guessed passwords": async (state, digest) =>
          await setState(db, sync.sealState(state.file_key, await sync.pairsKey(guessed), digest, 0)),
        "the old format: an Argon2id hash of guessed pairs and the plain digest": async (state, digest) =>
          await setState(db, {
            ...state,
            pairs_hash: await sync.hashPassword(sync.canonicalPairs(guessed)),
            hashes_digest: digest,
          }),
      };
      for (const [name, forge] of Object.entries(forgeries)) {
        await t.test(name, async () => {
          assert.equal((await syncOk(db, users)).summary.fast_path, true);
          await db.query(
            `UPDATE users SET password_hash = '${await sync.hashPassword("mallory")}' WHERE username = 'alice'`,
          );
          await forge(await stateRow(db), plainDigest(await usersRows(db)));
          await assertCaughtAndRestored(db, users);
        });
      }
      // And the attacker's most complete forgery: running the tool itself with a file of passwords they chose.
      await t.test("a sync of the same usernames with passwords the attacker chose", async () => {
        const attacker = [{ ...alice, password: "mallory" }, { ...bob, password: "guess" }, carol];
        await syncOk(db, attacker);
        const restore = await syncOk(db, users);
        assert.equal(restore.summary.fast_path, false);
        assert.deepEqual(restore.users, [["alice", ["password"]], ["bob", ["password"]]]);
        assert.equal(await argon2Verify(await hashOf(db, "alice"), alice.password), true);
        assert.equal(await argon2Verify(await hashOf(db, "bob"), bob.password), true);
      });
    });

    test("an old state row replayed with the hashes it was made for proves only hashes that verify the file", async (t) => {
      const db = await database(t);
      const first = [alice, bob];
      const second = [{ ...alice, password: "alice-second-passphrase" }, bob];
      await syncOk(db, first);
      const [oldHash, oldState] = [await hashOf(db, "alice"), await stateRow(db)];
      await syncOk(db, second);
      // Replayed after the file changed: the old row opens only with the old passwords, so it proves nothing.
      await db.query(`UPDATE users SET password_hash = '${oldHash}' WHERE username = 'alice'`);
      await setState(db, oldState);
      await assertCaughtAndRestored(db, second, "alice-second-passphrase");
      // Replayed while the file is the one it was made for: it may prove them, and rightly, for they verify it.
      await syncOk(db, first);
      await db.query(`UPDATE users SET password_hash = '${oldHash}' WHERE username = 'alice'`);
      await setState(db, oldState);
      const replayed = await syncOk(db, first);
      assert.equal(replayed.summary.fast_path, true);
      for (const user of first) assert.equal(await argon2Verify(await hashOf(db, user.username), user.password), true);
    });

    test("a state row of the first version, or any row edited into the table, is one slower run, never an error", async (t) => {
      const db = await database(t);
      const users = [alice, bob, carol];
      await syncOk(db, users);
      // The table exactly as the first version created it, with a row it wrote.
      await db.query("DROP TABLE user_sync_state");
      await db.query(`CREATE TABLE IF NOT EXISTS "user_sync_state" (
  "file_key" varchar NOT NULL PRIMARY KEY,
  "pairs_hash" varchar NOT NULL,
  "hashes_digest" varchar NOT NULL,
  "updated_at" bigint NOT NULL
)`);
      const specs = sync.validateUsers(users);
      const fileKey = createHash("sha256").update(JSON.stringify(users.map((u) => u.username).sort())).digest("hex");
      const firstVersionRow = {
        file_key: fileKey,
        pairs_hash: await sync.hashPassword(sync.canonicalPairs(specs)),
        hashes_digest: plainDigest(await usersRows(db)),
      };
      await db.query(
        `INSERT INTO user_sync_state VALUES ('${fileKey}', '${firstVersionRow.pairs_hash}', '${firstVersionRow.hashes_digest}', 1)`,
      );
      const edited = {
        "a row of the first version": firstVersionRow,
        "an empty row": { file_key: fileKey, pairs_hash: "", hashes_digest: "" },
        "a row naming a costlier Argon2": {
          file_key: fileKey,
          pairs_hash: "$user-sync-key$argon2id$v=19$m=9999999,t=9999,p=255$AAAAAAAAAAAAAAAAAAAAAA$" + "A".repeat(43),
          hashes_digest: `hmac-sha256:${"0".repeat(64)}`,
        },
      };
      for (const [name, row] of Object.entries(edited)) {
        await t.test(name, async () => {
          await setState(db, row);
          const slower = await syncOk(db, users);
          assert.equal(slower.summary.fast_path, false);
          assert.deepEqual(slower.users, []);
          assert.equal(slower.summary.unchanged, 3);
          assert.notEqual((await stateRow(db)).pairs_hash, row.pairs_hash, "the state was not rewritten");
          assert.equal((await syncOk(db, users)).summary.fast_path, true);
        });
      }
    });

    test("a no-change run, --check included, costs exactly one Argon2 computation", async (t) => {
      const db = await database(t);
      const users = [alice, bob, carol];
      const countFile = join(mkdtempSync(join(tmpdir(), "user-sync-count-")), "count");
      const counted = async (args: string[] = []) => {
        const result = await run(db, users, args, countingArgon2(countFile));
        assert.equal(result.code, 0, result.stderr);
        return { fastPath: result.summary.fast_path, argon2: Number(readFileSync(countFile, "utf8")) };
      };
      // Creating: two passwords hashed, and the state's key.
      assert.deepEqual(await counted(), { fastPath: false, argon2: 3 });
      assert.deepEqual(await counted(), { fastPath: true, argon2: 1 });
      assert.deepEqual(await counted(["--check"]), { fastPath: true, argon2: 1 });
      assert.deepEqual(await counted(["--dry-run"]), { fastPath: true, argon2: 1 });
    });
  });
}
