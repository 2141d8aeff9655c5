/**
 * What the tests share: a fresh database per test on the server that
 * `test/run.ts` started, a way to run the CLI as a user would, and users files.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import type { TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import postgres from "postgres";

/** The CLI under test. */
export const SYNC = fileURLToPath(new URL("../../sync.ts", import.meta.url));

/** A database for one test, reached directly, not through the tool. */
export interface TestDatabase {
  /** The URL to give the tool. */
  url: string;
  /** Runs SQL (one statement) and returns its rows, integer columns as numbers. */
  query(sql: string): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

/** A column as a test expects it: name, type, nullability and default. */
export type ColumnShape = [name: string, type: string, nullable: boolean, defaultValue: string | null];

/** A table's shape: its columns, then its key constraints (`PRIMARY KEY(a,b)`, `UNIQUE(c)`). */
export interface TableShape {
  columns: ColumnShape[];
  keys: string[];
}

/** A backend the suite runs against, with the little SQL that differs between backends. */
export interface Backend {
  name: string;
  create(): Promise<TestDatabase>;
  /** SQL for a trigger that makes inserting or updating a row of `table` with `column = value` fail. */
  refuseWriteTrigger(table: string, column: string, value: string): string;
  describeTable(db: TestDatabase, table: string): Promise<TableShape>;
  tableExists(db: TestDatabase, table: string): Promise<boolean>;
  /** A URL nothing listens on, with a password in it that must never be printed. */
  unreachableUrl: string;
  /** What the error for `unreachableUrl` names. */
  unreachableTarget: RegExp;
}

/** PostgreSQL: a new database on the suite's server for each test. */
export const postgresBackend: Backend = {
  name: "postgres",
  async create() {
    const adminUrl = process.env.TEST_POSTGRES_URL;
    if (!adminUrl) throw new Error("TEST_POSTGRES_URL is not set: run the tests with `npm test`");
    const name = `t_${randomBytes(6).toString("hex")}`;
    const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
    await admin.unsafe(`CREATE DATABASE ${name}`);
    await admin.end();
    const url = adminUrl.replace(/\/postgres$/, `/${name}`);
    const sql = postgres(url, {
      max: 1,
      onnotice: () => {},
      types: { bigint: { to: 20, from: [20], parse: Number, serialize: String } },
    });
    return {
      url,
      query: async (text) => [...await sql.unsafe(text).simple()],
      close: () => sql.end(),
    };
  },
  refuseWriteTrigger: (table, column, value) => `
    CREATE FUNCTION refuse_${table}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.${column} = '${value}' THEN RAISE EXCEPTION 'test trigger refuses this row'; END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER refuse_${table} BEFORE INSERT OR UPDATE ON ${table} FOR EACH ROW EXECUTE FUNCTION refuse_${table}();`,
  async describeTable(db, table) {
    const columns = await db.query(`
      SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns
      WHERE table_schema = current_schema() AND table_name = '${table}' ORDER BY ordinal_position`);
    const keys = await db.query(`
      SELECT tc.constraint_type || '(' || string_agg(k.column_name, ',' ORDER BY k.ordinal_position) || ')' AS key
      FROM information_schema.table_constraints tc
      JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name)
      WHERE tc.table_schema = current_schema() AND tc.table_name = '${table}'
      GROUP BY tc.constraint_type, tc.constraint_name ORDER BY 1`);
    return {
      columns: columns.map((c) => [
        String(c.column_name),
        String(c.data_type),
        c.is_nullable === "YES",
        c.column_default === null ? null : String(c.column_default),
      ]),
      keys: keys.map((k) => String(k.key)),
    };
  },
  async tableExists(db, table) {
    const [row] = await db.query(`SELECT to_regclass('${table}') IS NOT NULL AS present`);
    return row.present === true;
  },
  unreachableUrl: "postgres://sync:url-password-do-not-print@127.0.0.1:1/barycenter",
  unreachableTarget: /127\.0\.0\.1:1/,
};

/** SQLite: a new file in a temporary directory for each test, through `node:sqlite`. */
export const sqliteBackend: Backend = {
  name: "sqlite",
  create() {
    const path = join(mkdtempSync(join(tmpdir(), "user-sync-sqlite-")), "barycenter.db");
    const db = new DatabaseSync(path);
    return Promise.resolve({
      url: `sqlite://${path}?mode=rwc`,
      // Errors reject, as PostgreSQL's do, rather than throw.
      query: (text) =>
        Promise.resolve().then(() => {
          if (!/^\s*(SELECT|PRAGMA)/i.test(text)) {
            db.exec(text);
            return [];
          }
          return db.prepare(text).all().map((row) => ({ ...row }));
        }),
      close: () => Promise.resolve(db.close()),
    });
  },
  refuseWriteTrigger: (table, column, value) => `
    CREATE TRIGGER refuse_${table}_insert BEFORE INSERT ON ${table} WHEN NEW.${column} = '${value}'
    BEGIN SELECT RAISE(ABORT, 'test trigger refuses this row'); END;
    CREATE TRIGGER refuse_${table}_update BEFORE UPDATE ON ${table} WHEN NEW.${column} = '${value}'
    BEGIN SELECT RAISE(ABORT, 'test trigger refuses this row'); END;`,
  async describeTable(db, table) {
    const columns = await db.query(`PRAGMA table_info("${table}")`);
    const pk = columns.filter((c) => Number(c.pk) > 0).sort((a, b) => Number(a.pk) - Number(b.pk));
    const keys = [`PRIMARY KEY(${pk.map((c) => c.name).join(",")})`];
    for (const index of await db.query(`PRAGMA index_list("${table}")`)) {
      if (index.origin !== "u") continue;
      const cols = await db.query(`PRAGMA index_info("${index.name}")`);
      keys.push(`UNIQUE(${cols.map((c) => c.name).join(",")})`);
    }
    return {
      columns: columns.map((c) => [
        String(c.name),
        String(c.type).toLowerCase() === "varchar" ? "character varying" : String(c.type).toLowerCase(),
        Number(c.notnull) === 0,
        c.dflt_value === null ? null : String(c.dflt_value),
      ]),
      keys: keys.sort(),
    };
  },
  async tableExists(db, table) {
    return (await db.query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name = '${table}'`)).length > 0;
  },
  unreachableUrl: "sqlite:///nonexistent-volume/barycenter.db?mode=rw",
  unreachableTarget: /\/nonexistent-volume\/barycenter\.db does not exist/,
};

/**
 * What Barycenter's first migration creates, as `describeTable` reports it
 * (SQLite's `varchar` is reported under PostgreSQL's name, `character varying`).
 */
export const BARYCENTER_TABLES: Record<"users" | "properties", TableShape> = {
  users: {
    columns: [
      ["subject", "character varying", false, null],
      ["username", "character varying", false, null],
      ["password_hash", "character varying", false, null],
      ["email", "character varying", true, null],
      ["email_verified", "bigint", false, "0"],
      ["created_at", "bigint", false, null],
      ["enabled", "bigint", false, "1"],
    ],
    keys: ["PRIMARY KEY(subject)", "UNIQUE(username)"],
  },
  properties: {
    columns: [
      ["owner", "character varying", false, null],
      ["key", "character varying", false, null],
      ["value", "character varying", false, null],
      ["updated_at", "bigint", false, null],
    ],
    keys: ["PRIMARY KEY(owner,key)"],
  },
};

/** The backends every behaviour is tested on: one suite, so the two can never drift apart. */
export const backends: Backend[] = [postgresBackend, sqliteBackend];

/** What a run of the CLI left: its exit status and what it printed. */
export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A run of the CLI in progress: signal it, wait for what it prints, or await its result. */
export interface RunningSync {
  child: ReturnType<typeof spawn>;
  result: Promise<RunResult>;
  /**
   * Resolves once standard output or error matches `pattern`; rejects if the
   * process ends first, or, with `withinMs`, when that long passes first (an
   * upper bound, so that a missed event fails the test instead of hanging it).
   * Tests wait for the event they need, never a fixed time.
   */
  waitFor(pattern: RegExp, withinMs?: number): Promise<void>;
}

/** Runs `node sync.ts ...args` with a clean environment plus `env`, in `cwd` (default: a new empty directory). */
export function runSync(args: string[], env: Record<string, string> = {}, cwd?: string): Promise<RunResult> {
  return startSync(args, env, cwd).result;
}

/** Starts `node sync.ts ...args` like {@linkcode runSync}, without waiting for it. */
export function startSync(args: string[], env: Record<string, string> = {}, cwd?: string): RunningSync {
  const child = spawn(process.execPath, [SYNC, ...args], {
    cwd: cwd ?? mkdtempSync(join(tmpdir(), "user-sync-cwd-")),
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  const waiters = new Set<() => void>();
  const printed = () => {
    for (const check of waiters) check();
  };
  child.stdout.setEncoding("utf8").on("data", (d) => {
    stdout += d;
    printed();
  });
  child.stderr.setEncoding("utf8").on("data", (d) => {
    stderr += d;
    printed();
  });
  const result = new Promise<RunResult>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
  const waitFor = (pattern: RegExp, withinMs?: number) =>
    new Promise<void>((resolve, reject) => {
      const timer = withinMs === undefined ? undefined : setTimeout(() => {
        if (!waiters.delete(check)) return;
        reject(new Error(`did not print ${pattern} within ${withinMs} ms:\n${stdout}${stderr}`));
      }, withinMs);
      const check = () => {
        if (!pattern.test(stdout) && !pattern.test(stderr)) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      waiters.add(check);
      check();
      result.then((run) => {
        if (!waiters.delete(check)) return;
        reject(new Error(`exited ${run.code} before printing ${pattern}:\n${run.stdout}${run.stderr}`));
      }, reject);
    });
  return { child, result, waitFor };
}

/** Writes `content` (JSON-encoded unless a string) to a new temporary file and returns its path. */
export function usersFile(content: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), "user-sync-test-"));
  const path = join(dir, "users.json");
  writeFileSync(path, typeof content === "string" ? content : JSON.stringify(content, null, 2));
  return path;
}

/** All rows of `users`, ordered by username. */
export function usersRows(db: TestDatabase): Promise<Record<string, unknown>[]> {
  return db.query(
    "SELECT subject, username, password_hash, email, email_verified, created_at, enabled FROM users ORDER BY username",
  );
}

/** Properties of one user as key → stored value. */
export async function propertiesOf(db: TestDatabase, username: string): Promise<Record<string, unknown>> {
  const rows = await db.query(
    `SELECT p.key, p.value FROM properties p JOIN users u ON u.subject = p.owner WHERE u.username = '${username}' ORDER BY p.key`,
  );
  return Object.fromEntries(rows.map((r) => [r.key, r.value]));
}

/**
 * Barycenter's tables after all its migrations (`../shared/spec/barycenter-database.md`), besides `properties`:
 * the columns that matter here, with their keys, defaults and the passkeys' foreign key. `users` is created with
 * the columns its later migration adds, so the tool leaves it as it is.
 */
export function barycenterFullSchema(backend: Backend, deviceTable = "device_codes"): string[] {
  const autoincrement = backend.name === "postgres"
    ? `"id" serial PRIMARY KEY`
    : `"id" integer PRIMARY KEY AUTOINCREMENT`;
  return [
    `CREATE TABLE users (subject varchar NOT NULL PRIMARY KEY, username varchar NOT NULL UNIQUE,
      password_hash varchar NOT NULL, email varchar NULL, email_verified bigint NOT NULL DEFAULT 0,
      created_at bigint NOT NULL, enabled bigint NOT NULL DEFAULT 1, requires_2fa bigint NOT NULL DEFAULT 0,
      passkey_enrolled_at bigint NULL)`,
    `CREATE TABLE properties (owner varchar NOT NULL, key varchar NOT NULL, value varchar NOT NULL,
      updated_at bigint NOT NULL, PRIMARY KEY (owner, key))`,
    `CREATE TABLE sessions (session_id varchar PRIMARY KEY, subject varchar NOT NULL, auth_time bigint NOT NULL,
      created_at bigint NOT NULL, expires_at bigint NOT NULL, amr varchar NULL, acr varchar NULL,
      mfa_verified bigint NOT NULL DEFAULT 0)`,
    `CREATE TABLE auth_codes (code varchar PRIMARY KEY, client_id varchar NOT NULL, subject varchar NOT NULL,
      created_at bigint NOT NULL, expires_at bigint NOT NULL, consumed bigint NOT NULL DEFAULT 0)`,
    `CREATE TABLE access_tokens (token varchar PRIMARY KEY, client_id varchar NOT NULL, subject varchar NOT NULL,
      created_at bigint NOT NULL, expires_at bigint NOT NULL, revoked bigint NOT NULL DEFAULT 0)`,
    `CREATE TABLE refresh_tokens (token varchar PRIMARY KEY, client_id varchar NOT NULL, subject varchar NOT NULL,
      created_at bigint NOT NULL, expires_at bigint NOT NULL, revoked bigint NOT NULL DEFAULT 0,
      parent_token varchar NULL)`,
    `CREATE TABLE passkeys (credential_id varchar PRIMARY KEY, subject varchar NOT NULL,
      FOREIGN KEY (subject) REFERENCES users(subject) ON DELETE CASCADE)`,
    `CREATE TABLE webauthn_challenges (challenge varchar NOT NULL, subject varchar NULL)`,
    `CREATE TABLE consent (${autoincrement}, client_id varchar NOT NULL, subject varchar NOT NULL,
      revoked integer NOT NULL DEFAULT 0, expires_at bigint NULL)`,
    `CREATE TABLE ${deviceTable} (device_code varchar PRIMARY KEY, subject varchar NULL)`,
    `CREATE TABLE federated_identities (id text PRIMARY KEY, local_user_id text NOT NULL, peer text NOT NULL)`,
  ];
}

/** A fresh database of `backend` for one test, closed when the test ends. */
export async function testDatabase(t: TestContext, backend: Backend): Promise<TestDatabase> {
  const db = await backend.create();
  t.after(() => db.close());
  return db;
}

/**
 * A TCP listener that counts connections and closes each at once: proof that
 * the tool opened none. `url` is a PostgreSQL URL pointing at it.
 */
export async function connectionCounter(t: TestContext): Promise<{ port: number; url: string; count: () => number }> {
  let count = 0;
  const server = createServer((socket) => {
    count++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => server.close());
  const { port } = server.address() as { port: number };
  return { port, url: `postgres://u:p@127.0.0.1:${port}/db`, count: () => count };
}

/** Barycenter's own password check (see its `.md`), absent in a checkout outside CI. */
const PW_VERIFY = fileURLToPath(new URL("../../../shared/tools/barycenter-pw-verify", import.meta.url));

/**
 * The users of `file` with a password whose stored hash Barycenter's own
 * verifier does not accept for it (all in one call); skips the test without the verifier.
 */
export async function notVerifying(
  t: TestContext,
  db: TestDatabase,
  file: { username: string; password?: string }[],
): Promise<string[] | undefined> {
  if (!existsSync(PW_VERIFY)) {
    t.skip("../shared/tools/barycenter-pw-verify is absent: Barycenter's own verification not checked");
    return undefined;
  }
  const hashes = new Map(
    (await db.query("SELECT username, password_hash FROM users")).map((r) => [r.username, String(r.password_hash)]),
  );
  const listed = file.filter((u) => u.password !== undefined);
  const input = listed.map((u) =>
    `${u.username}\t${Buffer.from(u.password!).toString("hex")}\thex:${
      Buffer.from(hashes.get(u.username) ?? "").toString("hex")
    }\n`
  ).join("");
  const run = spawnSync(PW_VERIFY, { input, encoding: "utf8" });
  if (run.status !== 0) throw new Error(`barycenter-pw-verify exited ${run.status}: ${run.stderr}`);
  return run.stdout.trim().split("\n").map((line) => line.split("\t"))
    .filter(([, parse, verify]) => parse !== "OK" || verify !== "OK").map(([name]) => name);
}
