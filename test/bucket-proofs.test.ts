/**
 * Issue 18: the common change costs about √N Argon2 computations, not N. The
 * fast path keeps one proof per bucket of about √N users beside the file's
 * proof; these tests read the run's Argon2 counts (`proofs`, `verified`,
 * `hashed` in the JSON summary), and prove with Barycenter's own verifier that
 * no sequence of changes, state edits and forgeries leaves a stored hash that
 * does not verify the file's password.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, test, type TestContext } from "node:test";
import { hashPassword, pairsKey, passwordHashesDigest, sealState, validateUsers } from "../sync.ts";
import { backends, notVerifying, runSync, type TestDatabase, testDatabase, usersFile } from "./support/helpers.ts";

interface FileUser {
  username: string;
  password?: string;
  state?: "absent";
}

/** A small, seeded pseudo-random generator (mulberry32), so that a failure can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of this run: `BUCKET_PROOFS_SEED` to replay one, else a new one, printed on failure. */
const SEED = Number(process.env.BUCKET_PROOFS_SEED ?? Math.floor(Math.random() * 2 ** 31));

function users(count: number, passwordOf = (i: number) => `password-${i}`): FileUser[] {
  return Array.from({ length: count }, (_, i) => ({ username: `user${i}`, password: passwordOf(i) }));
}

/** Syncs (exit 0 asserted) and returns the JSON summary line. */
async function sync(db: TestDatabase, file: FileUser[], context = ""): Promise<Record<string, number | boolean>> {
  const run = await runSync(["--file", usersFile(file), "--database-url", db.url, "--log-format", "json"]);
  assert.equal(run.code, 0, `${context}${run.stderr}`);
  const lines = run.stdout.trim().split("\n").map((line) => JSON.parse(line));
  return lines.find((line) => line.summary);
}

const sqlText = (value: string) => `'${value.replaceAll("'", "''")}'`;

/** Puts back a row of `user_sync_buckets` as it was read. */
async function insertBucketRow(db: TestDatabase, row: Record<string, unknown>): Promise<void> {
  await db.query(
    `INSERT INTO user_sync_buckets VALUES (${sqlText(String(row.file_key))}, ${sqlText(String(row.pairs_hash))}, ${
      sqlText(String(row.hashes_digest))
    }, ${Number(row.updated_at)})`,
  );
}

/** Argon2 computations a change may take beyond finding it: a new key for its bucket and one for the file. */
const SEALING = 2;

/**
 * "About" 2√N + 1: users are put in buckets by a hash of their names, so a
 * bucket holds N/B users give or take a few; a quarter more is allowed for that.
 */
const about = (n: number) => 1.25 * (2 * Math.sqrt(n) + 1);

for (const backend of backends) {
  describe(`bucket proofs on ${backend.name}`, () => {
    const database = (t: TestContext) => testDatabase(t, backend);
    const N = 64;

    test("one password changed among 64 users costs about 2√N + 1 Argon2 computations, and one hash", async (t) => {
      const db = await database(t);
      const first = await sync(db, users(N));
      assert.equal(first.hashed, N);
      const changed = users(N, (i) => (i === 17 ? "a-new-password" : `password-${i}`));
      const run = await sync(db, changed);
      assert.equal(run.updated, 1);
      assert.equal(run.hashed, 1);
      assert.ok(
        Number(run.proofs) + Number(run.verified) <= about(N) + SEALING,
        `proofs ${run.proofs} + verified ${run.verified} > ${about(N)} + ${SEALING}`,
      );
      assert.deepEqual(await notVerifying(t, db, changed) ?? [], []);
      assert.equal((await sync(db, changed)).proofs, 1, "the next run takes the one-proof fast path");
    });

    test("one user added to 64 costs about 2√N + 1 Argon2 computations, and the new user's hash", async (t) => {
      const db = await database(t);
      await sync(db, users(N));
      const run = await sync(db, users(N + 1));
      assert.equal(run.created, 1);
      assert.equal(run.hashed, 1);
      assert.ok(Number(run.proofs) + Number(run.verified) <= about(N) + SEALING, JSON.stringify(run));
    });

    test("one user removed from 64 costs about 2√N + 1 Argon2 computations and no hash", async (t) => {
      const db = await database(t);
      await sync(db, users(N));
      const run = await sync(db, users(N).filter((u) => u.username !== "user5"));
      assert.equal(run.hashed, 0);
      assert.ok(Number(run.proofs) + Number(run.verified) <= about(N) + SEALING, JSON.stringify(run));
    });

    test("a hash replaced inside Barycenter is found without a bucket proof: one proof, a bucket's verifications", async (t) => {
      const db = await database(t);
      await sync(db, users(N));
      const intruder = await hashPassword("an-intruder-password");
      await db.query(`UPDATE users SET password_hash = ${sqlText(intruder)} WHERE username = 'user40'`);
      const run = await sync(db, users(N));
      assert.equal(run.updated, 1);
      assert.equal(run.hashed, 1);
      // The file's proof, then a new key for the one bucket whose hashes changed.
      assert.equal(run.proofs, 1 + 1);
      assert.ok(Number(run.verified) >= 1 && Number(run.verified) <= 2 * N / Math.sqrt(N), JSON.stringify(run));
      assert.deepEqual(await notVerifying(t, db, users(N)) ?? [], []);
    });

    test("below 16 users there are no buckets: a first run costs the hashes and one proof", async (t) => {
      const db = await database(t);
      const run = await sync(db, users(15));
      assert.deepEqual([run.proofs, run.verified, run.hashed], [1, 0, 15]);
      assert.deepEqual(await db.query("SELECT file_key FROM user_sync_buckets"), []);
      const sixteen = await sync(db, users(16));
      assert.equal(sixteen.hashed, 1);
      assert.equal((await db.query("SELECT file_key FROM user_sync_buckets")).length, 4);
    });

    test("a state from before the buckets still proves a no-change run, and gains its buckets", async (t) => {
      const db = await database(t);
      await sync(db, users(16));
      // The previous version's row: the same, without the buckets' digests.
      await db.query("UPDATE user_sync_state SET hashes_digest = substr(hashes_digest, 1, 76)");
      await db.query("DELETE FROM user_sync_buckets");
      const upgraded = await sync(db, users(16));
      assert.equal(upgraded.fast_path, true);
      assert.equal(upgraded.verified, 0);
      assert.ok(Number((await db.query("SELECT count(*) AS n FROM user_sync_buckets"))[0].n) > 0);
      const changed = users(16, (i) => (i === 3 ? "another-password" : `password-${i}`));
      assert.ok(Number((await sync(db, changed)).verified) < 16);
    });

    describe("an edited or forged bucket proof never skips a user whose hash does not verify", () => {
      const file = users(16);
      // Another user's new password makes the file's proof miss, so that the buckets' rows are consulted.
      const next = users(16, (i) => (i === 9 ? "a-changed-password" : `password-${i}`));

      const victims = ["user3", "user12"];
      const forgeries: Record<
        string,
        (db: TestDatabase, victims: string[], saved: Record<string, unknown>[]) => Promise<void>
      > = {
        "every bucket row's digest HMAC swapped with another's": async (db) => {
          const rows = await db.query("SELECT file_key, hashes_digest FROM user_sync_buckets ORDER BY file_key");
          for (const [i, row] of rows.entries()) {
            const other = rows[(i + 1) % rows.length];
            await db.query(
              `UPDATE user_sync_buckets SET hashes_digest = ${sqlText(String(other.hashes_digest))} ` +
                `WHERE file_key = ${sqlText(String(row.file_key))}`,
            );
          }
        },
        "the file row's bucket HMACs reversed": async (db) => {
          const [row] = await db.query("SELECT hashes_digest FROM user_sync_state");
          const [head, list] = String(row.hashes_digest).split(";buckets:");
          const reversed = list.match(/.{64}/g)!.reverse().join("");
          await db.query(`UPDATE user_sync_state SET hashes_digest = ${sqlText(`${head};buckets:${reversed}`)}`);
        },
        "every bucket row resealed by someone who knows every password but the victims'": async (db, victims) => {
          const rows = await db.query("SELECT username, password_hash FROM users");
          const hashes = new Map(rows.map((r) => [String(r.username), String(r.password_hash)]));
          // The forger reseals each row for the user set it is keyed by: the file's buckets, as the tool forms them.
          const buckets = await db.query("SELECT file_key FROM user_sync_buckets");
          const specs = validateUsers(
            file.map((u) => (victims.includes(u.username) ? { ...u, password: "an-intruder-password" } : u)),
          );
          for (const { file_key } of buckets) {
            for (const members of bucketCandidates(specs)) {
              if (stateKeyOf(members) !== file_key) continue;
              const key = await pairsKey(members);
              const digest = passwordHashesDigest(
                members.map((m) => ({ username: m.username, password_hash: hashes.get(m.username)! })),
              );
              const forged = sealState(String(file_key), key, digest, 0);
              await db.query(
                `UPDATE user_sync_buckets SET pairs_hash = ${sqlText(forged.pairs_hash)}, hashes_digest = ${
                  sqlText(forged.hashes_digest)
                } WHERE file_key = ${sqlText(String(file_key))}`,
              );
            }
          }
        },
        "the bucket table restored as the sync left it, before the hashes were replaced": async (db, _, saved) => {
          await db.query("DELETE FROM user_sync_buckets");
          for (const row of saved) await insertBucketRow(db, row);
        },
      };

      for (const [name, forge] of Object.entries(forgeries)) {
        test(name, async (t) => {
          const db = await database(t);
          await sync(db, file);
          const saved = await db.query("SELECT * FROM user_sync_buckets");
          const intruder = await hashPassword("an-intruder-password");
          for (const victim of victims) {
            await db.query(`UPDATE users SET password_hash = ${sqlText(intruder)} WHERE username = ${sqlText(victim)}`);
          }
          await forge(db, victims, saved);
          const run = await sync(db, name.includes("file row") ? file : next);
          assert.ok(Number(run.verified) >= 2, JSON.stringify(run));
          assert.deepEqual(await notVerifying(t, db, name.includes("file row") ? file : next) ?? [], []);
        });
      }
    });

    test(`random changes, state edits and forgeries never leave a hash that does not verify (seed ${SEED})`, async (t) => {
      const random = seeded(SEED + (backend.name === "sqlite" ? 1 : 0));
      const pick = <T>(items: T[]): T => items[Math.floor(random() * items.length)];
      const db = await database(t);
      const intruder = await hashPassword("an-intruder-password");
      // Around the 16 users from which there are buckets, so that runs with and without them, and the
      // passage between them, are all tried.
      let file: FileUser[] = users(17);
      let version = 0;
      const history: string[] = [];
      const snapshots: Record<string, unknown>[][] = [];
      await sync(db, file);
      const changes: Record<string, () => void | Promise<void>> = {
        "password in the file": () => {
          const user = pick(file.filter((u) => u.password !== undefined));
          user.password = `changed-${version++}`;
          history.push(`password ${user.username}`);
        },
        "hash in the database": async () => {
          const user = pick(file.filter((u) => u.password !== undefined));
          await db.query(`UPDATE users SET password_hash = ${sqlText(intruder)} WHERE username = '${user.username}'`);
          history.push(`hash ${user.username}`);
        },
        "user added": () => {
          const username = `extra${version++}`;
          file.push({ username, password: `password-${username}` });
          history.push(`add ${username}`);
        },
        "user removed": () => {
          const user = pick(file);
          file = random() < 0.5
            ? file.filter((u) => u !== user)
            : file.map((u) => (u === user ? { username: u.username, state: "absent" as const } : u));
          history.push(`remove ${user.username}`);
        },
        "state edited": async () => {
          const table = pick(["user_sync_state", "user_sync_buckets"]);
          const rows = await db.query(`SELECT file_key, hashes_digest FROM ${table}`);
          if (rows.length === 0) return;
          const row = pick(rows);
          const text = String(row.hashes_digest);
          const at = Math.floor(random() * text.length);
          const edited = text.slice(0, at) + (text[at] === "0" ? "1" : "0") + text.slice(at + 1);
          await db.query(
            `UPDATE ${table} SET hashes_digest = ${sqlText(edited)} WHERE file_key = ${sqlText(String(row.file_key))}`,
          );
          history.push(`edit ${table}`);
        },
        "state deleted": async () => {
          const table = pick(["user_sync_state", "user_sync_buckets"]);
          await db.query(random() < 0.5 ? `DELETE FROM ${table}` : `DELETE FROM ${table} WHERE updated_at > 0`);
          history.push(`delete ${table}`);
        },
        "older bucket rows replayed": async () => {
          if (snapshots.length === 0) return;
          for (const row of pick(snapshots)) {
            await db.query(`DELETE FROM user_sync_buckets WHERE file_key = ${sqlText(String(row.file_key))}`);
            await insertBucketRow(db, row);
          }
          history.push("replay");
        },
      };
      for (let round = 0; round < 6; round++) {
        const steps = 1 + Math.floor(random() * 3);
        for (let step = 0; step < steps; step++) await pick(Object.values(changes))();
        const context = `seed ${SEED} (BUCKET_PROOFS_SEED=${SEED} to replay), after: ${history.join(", ")}\n`;
        await sync(db, file, context);
        history.push("sync");
        snapshots.push(await db.query("SELECT * FROM user_sync_buckets"));
        const wrong = await notVerifying(t, db, file);
        if (wrong === undefined) return;
        assert.deepEqual(wrong, [], context);
      }
    });
  });
}

/** SHA-256 of the sorted usernames, as the tool keys a state row (the forger's copy of the tool's rule). */
function stateKeyOf(members: { username: string }[]): string {
  const names = members.map((m) => m.username).sort();
  return createHash("sha256").update(JSON.stringify(names)).digest("hex");
}

/** Every bucket of the file under the bucketings the tool reads (the count for 16 users, half and twice it). */
function bucketCandidates<T extends { username: string }>(specs: T[]): T[][] {
  return [2, 4, 8].flatMap((count) => {
    const buckets = Array.from({ length: count }, (): T[] => []);
    for (const spec of specs) {
      const hash = createHash("sha256").update(`user_sync_bucket\0${spec.username}`).digest();
      buckets[hash.readUInt32BE(0) % count].push(spec);
    }
    return buckets.filter((bucket) => bucket.length > 0);
  });
}
