/**
 * The test command: starts one real PostgreSQL server for the whole run,
 * runs every `test/*.test.ts` with Node's test runner against it, stops it.
 * Each test creates its own database on that server, so files run in parallel.
 *
 * @module
 */

import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startPostgres } from "./support/postgres.ts";

const testDir = fileURLToPath(new URL(".", import.meta.url));
const files = readdirSync(testDir).filter((f) => f.endsWith(".test.ts")).sort().map((f) => testDir + f);
const only = process.argv.slice(2);

// Statements are logged so that tests can count what the tool sends.
const statementLog = join(mkdtempSync(join(tmpdir(), "user-sync-pglog-")), "statements.log");
const server = await startPostgres({ statementLog });
let code = 1;
try {
  code = await new Promise<number>((resolve, reject) => {
    const child = spawn(process.execPath, ["--test", ...(only.length > 0 ? only : files)], {
      stdio: "inherit",
      env: { ...process.env, TEST_POSTGRES_URL: server.adminUrl, TEST_POSTGRES_LOG: statementLog },
    });
    child.once("error", reject);
    child.once("exit", (status, signal) => resolve(status ?? (signal ? 1 : 0)));
  });
} finally {
  await server.stop();
}
process.exitCode = code;
