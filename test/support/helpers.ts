/**
 * What the tests share: a fresh database per test on the server that
 * `test/run.ts` started, a way to run the CLI as a user would, and users files.
 *
 * @module
 */

import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { postgres } from "../../deps.ts";

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

/** A backend the suite runs against. */
export interface Backend {
  name: string;
  create(): Promise<TestDatabase>;
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
      query: async (text) => [...await sql.unsafe(text)],
      close: () => sql.end(),
    };
  },
};

/** The backends every behaviour is tested on. */
export const backends: Backend[] = [postgresBackend];

/** What a run of the CLI left: its exit status and what it printed. */
export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node sync.ts ...args` with a clean environment plus `env`. */
export function runSync(args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SYNC, ...args], {
      env: { PATH: process.env.PATH ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
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
