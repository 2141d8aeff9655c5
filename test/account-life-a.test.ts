/**
 * Issue 13, part A: initial passwords, requiring a second factor, Barycenter's
 * default admin, and claims that never reach a token. Each on both backends,
 * against a database the tool bootstraps itself and one with Barycenter's
 * migrated `users` table (`requires_2fa`, `passkey_enrolled_at`).
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { describe, test, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { hashPassword } from "../sync.ts";
import {
  type Backend,
  backends,
  barycenterFullSchema,
  runSync,
  type TestDatabase,
  usersFile,
  usersRows,
} from "./support/helpers.ts";

const PW_VERIFY = fileURLToPath(new URL("../../shared/tools/barycenter-pw-verify", import.meta.url));

/** Whether Barycenter's own verifier accepts `password` for `hash`; skips the test when the tool is absent. */
function barycenterAccepts(t: TestContext, password: string, hash: string): boolean | undefined {
  if (!existsSync(PW_VERIFY)) {
    t.skip("../shared/tools/barycenter-pw-verify is absent: Barycenter's own verification not checked");
    return undefined;
  }
  const input = `x\t${Buffer.from(password).toString("hex")}\t${hash}\n`;
  const run = spawnSync(PW_VERIFY, { input, encoding: "utf8" });
  return run.stdout.split("\t")[2] === "OK";
}

/** Barycenter's tables after all its migrations: the later users columns, and every table keyed by a subject. */
function migrated(backend: Backend): (db: TestDatabase) => Promise<void> {
  return async (db) => {
    for (const statement of barycenterFullSchema(backend)) await db.query(statement);
  };
}

const SCHEMAS = [
  { name: "fresh database", prepare: (_: Backend) => async (_db: TestDatabase) => {} },
  { name: "Barycenter's full schema", prepare: migrated },
];

/** JSON log lines of a run's two streams. */
function jsonLines(text: string): Record<string, unknown>[] {
  return text.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line));
}

const count = (text: string, pattern: RegExp) => text.split("\n").filter((line) => pattern.test(line)).length;

async function withDb(
  backend: Backend,
  prepare: (db: TestDatabase) => Promise<void>,
  fn: (db: TestDatabase) => Promise<void>,
) {
  const db = await backend.create();
  try {
    await prepare(db);
    await fn(db);
  } finally {
    await db.close();
  }
}

for (const backend of backends) {
  for (const schema of SCHEMAS) {
    describe(`${backend.name}, ${schema.name}`, () => {
      test("an initial password is set at creation, then kept, and costs no Argon2 on a re-sync", async (t) => {
        await withDb(backend, schema.prepare(backend), async (db) => {
          const first = usersFile([
            { username: "alice", password: "first-password", password_mode: "initial" },
            { username: "bob", password: "bob-password" },
          ]);
          const created = await runSync(["-f", first, "-d", db.url]);
          assert.equal(created.code, 0, created.stderr);
          assert.match(created.stdout, /^created alice: password$/m);
          const [alice] = (await usersRows(db)).filter((row) => row.username === "alice");
          const accepted = barycenterAccepts(t, "first-password", String(alice.password_hash));
          if (accepted !== undefined) assert.equal(accepted, true);

          // The user changed it in Barycenter: the file's (new) password is neither verified nor written.
          const later = usersFile([
            { username: "alice", password: "another-password", password_mode: "initial" },
            { username: "bob", password: "bob-password" },
          ]);
          const plan = await runSync(["-f", later, "-d", db.url, "--check"]);
          assert.equal(plan.code, 0, plan.stdout + plan.stderr);
          assert.match(plan.stdout, /^unchanged alice \(password: initial, kept\)$/m);
          const resync = await runSync(["-f", later, "-d", db.url, "--log-format", "json"]);
          assert.equal(resync.code, 0, resync.stderr);
          const lines = jsonLines(resync.stdout);
          const summary = lines.find((line) => line.summary === true)!;
          assert.equal(summary.unchanged, 2);
          // bob's pair alone makes the state: alice's new password does not cost the fast path.
          assert.equal(summary.fast_path, true);
          const [after] = (await usersRows(db)).filter((row) => row.username === "alice");
          assert.equal(after.password_hash, alice.password_hash);
          const dry = jsonLines(
            (await runSync(["-f", later, "-d", db.url, "--dry-run", "--log-format", "json"])).stdout,
          );
          const line = dry.find((l) => l.user === "alice")!;
          assert.equal(line.msg, "unchanged alice (password: initial, kept)");
          assert.equal(line.password_mode, "initial");
          assert.equal(line.password, "kept");

          // A stored hash that is not a usable Argon2 string is replaced with the file's password.
          await db.query("UPDATE users SET password_hash = 'not-a-hash' WHERE username = 'alice'");
          const repaired = await runSync(["-f", later, "-d", db.url]);
          assert.equal(repaired.code, 0, repaired.stderr);
          assert.match(repaired.stdout, /^updated alice: password$/m);
          const [fixed] = (await usersRows(db)).filter((row) => row.username === "alice");
          const ok = barycenterAccepts(t, "another-password", String(fixed.password_hash));
          if (ok !== undefined) assert.equal(ok, true);
        });
      });

      test("--password-mode initial is the default of users that give none; enforce still resets", async () => {
        await withDb(backend, schema.prepare(backend), async (db) => {
          assert.equal(
            (await runSync(["-f", usersFile([{ username: "carol", password: "one-password" }]), "-d", db.url])).code,
            0,
          );
          const changed = usersFile([{ username: "carol", password: "two-password" }]);
          const initial = await runSync(["-f", changed, "-d", db.url, "--password-mode", "initial", "--check"]);
          assert.equal(initial.code, 0, initial.stdout);
          assert.match(initial.stdout, /^unchanged carol \(password: initial, kept\)$/m);
          const enforce = await runSync(["-f", changed, "-d", db.url, "--check"]);
          assert.equal(enforce.code, 4);
          assert.match(enforce.stdout, /^would update carol: password$/m);
          const explicit = usersFile([{ username: "carol", password: "two-password", password_mode: "enforce" }]);
          const overrides = await runSync(["-f", explicit, "-d", db.url, "--password-mode", "initial", "--check"]);
          assert.equal(overrides.code, 4);
          const bad = await runSync(["-f", changed, "-d", db.url, "--password-mode", "sometimes"]);
          assert.equal(bad.code, 2);
          assert.match(bad.stderr, /--password-mode must be "enforce" or "initial"/);
        });
      });

      test("requires_2fa is stored in Barycenter's column, or waits for it with one warning and drift", async () => {
        await withDb(backend, schema.prepare(backend), async (db) => {
          const file = usersFile([{ username: "dave", password: "dave-password", requires_2fa: true }]);
          const run = await runSync(["-f", file, "-d", db.url]);
          assert.equal(run.code, 0, run.stderr);
          if (schema.prepare === migrated) {
            assert.doesNotMatch(run.stderr, /requires_2fa/);
            assert.match(run.stdout, /^created dave: password, requires_2fa$/m);
          } else {
            assert.equal(count(run.stderr, /requires_2fa not applied to dave/), 1);
            assert.match(run.stdout, /^created dave: password \(requires_2fa: pending Barycenter's first start\)$/m);
            const columns = await db.query("SELECT * FROM users WHERE username = 'dave'");
            assert.equal("requires_2fa" in columns[0], false, "the tool must never create Barycenter's column");
            const check = await runSync(["-f", file, "-d", db.url, "--check", "--log-format", "json"]);
            assert.equal(check.code, 4);
            const warning = jsonLines(check.stderr).find((l) => l.code === "requires_2fa_pending")!;
            assert.equal(warning.level, "warn");
            assert.deepEqual(warning.users, ["dave"]);
            // Barycenter starts, its migration adds the column; the next sync applies it.
            await db.query("ALTER TABLE users ADD COLUMN requires_2fa bigint NOT NULL DEFAULT 0");
            await db.query("ALTER TABLE users ADD COLUMN passkey_enrolled_at bigint NULL");
            const applied = await runSync(["-f", file, "-d", db.url]);
            assert.equal(applied.code, 0, applied.stderr);
            assert.match(applied.stdout, /^updated dave: requires_2fa$/m);
            assert.doesNotMatch(applied.stderr, /requires_2fa/);
          }
          const [row] = await db.query("SELECT requires_2fa FROM users WHERE username = 'dave'");
          assert.equal(Number(row.requires_2fa), 1);
          assert.equal((await runSync(["-f", file, "-d", db.url, "--check"])).code, 0);
          const off = usersFile([{ username: "dave", password: "dave-password", requires_2fa: false }]);
          assert.match((await runSync(["-f", off, "-d", db.url])).stdout, /^updated dave: requires_2fa$/m);
          const [after] = await db.query("SELECT requires_2fa FROM users WHERE username = 'dave'");
          assert.equal(Number(after.requires_2fa), 0);
          // Omitted: left as it is.
          await db.query("UPDATE users SET requires_2fa = 1 WHERE username = 'dave'");
          const omitted = usersFile([{ username: "dave", password: "dave-password" }]);
          assert.equal((await runSync(["-f", omitted, "-d", db.url, "--check"])).code, 0);
        });
      });

      test("Barycenter's default admin with password123 is warned about, and --check exits 4", async () => {
        await withDb(backend, schema.prepare(backend), async (db) => {
          const file = usersFile([{ username: "erin", password: "erin-password" }]);
          assert.equal((await runSync(["-f", file, "-d", db.url])).code, 0);
          const hash = await hashPassword("password123");
          await db.query(
            `INSERT INTO users (subject, username, password_hash, email, created_at) ` +
              `VALUES ('admin-subject', 'admin', '${hash}', 'admin@example.com', 0)`,
          );
          const run = await runSync(["-f", file, "-d", db.url, "--log-format", "json"]);
          assert.equal(run.code, 0);
          const warnings = jsonLines(run.stderr).filter((l) => l.code === "default_admin_password");
          assert.equal(warnings.length, 1);
          assert.equal(warnings[0].level, "warn");
          assert.match(String(warnings[0].msg), /list admin in the users file with a real password/);
          assert.doesNotMatch(run.stdout + run.stderr, /password123/);
          const check = await runSync(["-f", file, "-d", db.url, "--check"]);
          assert.equal(check.code, 4);
          assert.match(
            check.stdout,
            /\(check: the database matches the file, but Barycenter's default admin password is live\)$/m,
          );
          // Disabled, it cannot log in: no warning, no drift.
          await db.query("UPDATE users SET enabled = 0 WHERE username = 'admin'");
          const disabled = await runSync(["-f", file, "-d", db.url, "--check"]);
          assert.equal(disabled.code, 0, disabled.stdout + disabled.stderr);
          assert.doesNotMatch(disabled.stderr, /default admin/);
          // Listed with an initial password, admin keeps the default one: still warned about.
          await db.query("UPDATE users SET enabled = 1 WHERE username = 'admin'");
          const initial = usersFile([
            { username: "erin", password: "erin-password" },
            { username: "admin", password: "a-real-admin-password", password_mode: "initial" },
          ]);
          const kept = await runSync(["-f", initial, "-d", db.url, "--check"]);
          assert.equal(kept.code, 4);
          assert.match(kept.stdout, /^unchanged admin \(password: initial, kept\)$/m);
          assert.equal(count(kept.stderr, /^warning: Barycenter's default admin is live/), 1);
          // Enabled again but listed in the file with a real password: the sync replaces it.
          await db.query("UPDATE users SET enabled = 1 WHERE username = 'admin'");
          const listed = usersFile([
            { username: "erin", password: "erin-password" },
            { username: "admin", password: "a-real-admin-password" },
          ]);
          const fixed = await runSync(["-f", listed, "-d", db.url]);
          assert.equal(fixed.code, 0);
          assert.match(fixed.stdout, /^updated admin: password$/m);
          assert.doesNotMatch(fixed.stderr, /default admin/);
          assert.equal((await runSync(["-f", file, "-d", db.url, "--check"])).code, 0);
        });
      });
    });
  }
}

describe("claims that never reach a token", () => {
  const file = usersFile([
    {
      username: "frank",
      password: "frank-password",
      email: "frank@example.com",
      email_verified: true,
      properties: { name: "Frank", department: "ops", email: "other@example.com", email_verified: true },
    },
    {
      username: "gina",
      password: "gina-password",
      email_verified: false,
      properties: { email_verified: true, team: 1 },
    },
  ]);

  test("--validate warns once per run and exits 0", async () => {
    const run = await runSync(["-f", file, "--validate"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(
      count(
        run.stderr,
        /^warning: Barycenter never puts these properties into a token or userinfo .*: department, team$/,
      ),
      1,
    );
    assert.equal(count(run.stderr, /^warning: properties\.email differs from email for frank: the property wins/), 1);
    assert.equal(count(run.stderr, /^warning: properties\.email_verified differs from email_verified for gina:/), 1);
    assert.doesNotMatch(run.stderr, /other@example\.com/);
  });

  for (const backend of backends) {
    test(`${backend.name}: a sync warns the same, in JSON too, and still stores every property`, async () => {
      await withDb(backend, async () => {}, async (db) => {
        const run = await runSync(["-f", file, "-d", db.url, "--log-format", "json"]);
        assert.equal(run.code, 0, run.stderr);
        const warnings = jsonLines(run.stderr);
        const unemitted = warnings.filter((l) => l.code === "unemitted_claims");
        assert.equal(unemitted.length, 1);
        assert.deepEqual(unemitted[0].properties, ["department", "team"]);
        assert.equal(warnings.filter((l) => l.code === "claim_overrides_column").length, 2);
        const [row] = await db.query(
          "SELECT p.value FROM properties p JOIN users u ON u.subject = p.owner " +
            "WHERE u.username = 'frank' AND p.key = 'department'",
        );
        assert.equal(row.value, '"ops"');
      });
    });
  }
});
