/**
 * Issue 18, with a margin: a user added to a bucket does not cost a
 * verification of each of the bucket's other users. The bucket's row, sealed
 * before the user was added, proves the users it was made for (one Argon2);
 * only what that row cannot prove is verified. Read from the run's JSON
 * summary (`proofs`, `verified`, `hashed`), and checked with Barycenter's own
 * verifier.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test } from "node:test";
import { backends, notVerifying, runSync, type TestDatabase, testDatabase, usersFile } from "./support/helpers.ts";

type FileUser = { username: string; password: string };

const N = 64;
/** The tool's bucket count for 64 users: the power of two nearest √64. */
const BUCKETS = 8;

function users(count: number, passwordOf = (i: number) => `password-${i}`): FileUser[] {
  return Array.from({ length: count }, (_, i) => ({ username: `user${i}`, password: passwordOf(i) }));
}

/** The bucket the tool puts a username in, among `BUCKETS`. */
function bucketOf(username: string): number {
  return createHash("sha256").update(`user_sync_bucket\0${username}`).digest().readUInt32BE(0) % BUCKETS;
}

/** Syncs (exit 0 asserted) and returns the JSON summary line. */
async function sync(db: TestDatabase, file: FileUser[]): Promise<Record<string, number | boolean>> {
  const run = await runSync(["--file", usersFile(file), "--database-url", db.url, "--log-format", "json"]);
  assert.equal(run.code, 0, run.stderr);
  return run.stdout.trim().split("\n").map((line) => JSON.parse(line)).find((line) => line.summary);
}

for (const backend of backends) {
  describe(`a user added to a bucket on ${backend.name}`, () => {
    test("one user added to 64 verifies no one: each bucket's proof, the new hash, two new keys", async (t) => {
      const db = await testDatabase(t, backend);
      await sync(db, users(N));
      const added = users(N + 1);
      const run = await sync(db, added);
      assert.equal(run.created, 1);
      assert.equal(run.hashed, 1);
      assert.equal(run.verified, 0, JSON.stringify(run));
      // The file's proof is not tried (a listed user does not exist yet); a new key for the bucket and the file.
      assert.equal(run.proofs, BUCKETS + 2, JSON.stringify(run));
      assert.deepEqual(await notVerifying(t, db, added) ?? [], []);
      assert.equal((await sync(db, added)).proofs, 1, "the next run takes the one-proof fast path");
    });

    test("a password changed in the bucket a user is added to is still found, verified and rehashed", async (t) => {
      const db = await testDatabase(t, backend);
      await sync(db, users(N));
      const neighbour = users(N).findIndex((u) => bucketOf(u.username) === bucketOf(`user${N}`));
      const changed = users(N + 1, (i) => (i === neighbour ? "a-new-password" : `password-${i}`));
      const run = await sync(db, changed);
      assert.equal(run.created, 1);
      assert.equal(run.updated, 1);
      assert.equal(run.hashed, 2);
      assert.ok(Number(run.verified) > 0, JSON.stringify(run));
      assert.deepEqual(await notVerifying(t, db, changed) ?? [], []);
    });
  });
}
