/**
 * Where the database comes from, as Barycenter reads it, and SQLite URLs by
 * sqlx's rules: the drop-in promises for Barycenter's chart.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, test } from "node:test";
import { parseSqliteUrl, UsageError } from "../sync.ts";
import { runSync, usersFile } from "./support/helpers.ts";

const users = [{ username: "alice", password: "alice-passphrase", email: "alice@example.com" }];

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "user-sync-url-"));
}

function usernamesIn(path: string): string[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return db.prepare("SELECT username FROM users ORDER BY username").all().map((r) => String(r.username));
  } finally {
    db.close();
  }
}

describe("SQLite URLs, by sqlx's rules", () => {
  test("relative, absolute and in-memory forms are read as sqlx reads them", () => {
    assert.deepEqual(parseSqliteUrl("sqlite://barycenter.db?mode=rwc"), { path: "barycenter.db", mode: "rwc" });
    assert.deepEqual(parseSqliteUrl("sqlite:///app/data/barycenter.db?mode=rwc"), {
      path: "/app/data/barycenter.db",
      mode: "rwc",
    });
    assert.deepEqual(parseSqliteUrl("sqlite:data.db"), { path: "data.db", mode: "rw" });
    assert.deepEqual(parseSqliteUrl("sqlite://data.db"), { path: "data.db", mode: "rw" });
    assert.deepEqual(parseSqliteUrl("sqlite:///a%20b/c.db?mode=rw"), { path: "/a b/c.db", mode: "rw" });
    assert.deepEqual(parseSqliteUrl("sqlite::memory:"), { path: ":memory:", mode: "memory" });
    assert.deepEqual(parseSqliteUrl("sqlite://x.db?mode=memory"), { path: ":memory:", mode: "memory" });
    assert.throws(() => parseSqliteUrl("sqlite://x.db?mode=ro"), UsageError);
    assert.throws(() => parseSqliteUrl("sqlite://x.db?mode=rwx"), UsageError);
  });

  test("with no database given at all, Barycenter's default barycenter.db is created in the working directory", async () => {
    const cwd = tempDir();
    const run = await runSync(["--file", usersFile(users)], {}, cwd);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^users: 1 created, 0 updated, 0 unchanged$/m);
    assert.deepEqual(usernamesIn(join(cwd, "barycenter.db")), ["alice"]);
    const again = await runSync(["--file", usersFile(users)], {}, cwd);
    assert.match(again.stdout, /^users: 0 created, 0 updated, 1 unchanged$/m);
  });

  test("a relative sqlite: path is resolved against the working directory", async () => {
    const cwd = tempDir();
    mkdirSync(join(cwd, "data"));
    const run = await runSync(["--file", usersFile(users), "-d", "sqlite:data/app.db?mode=rwc"], {}, cwd);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(usernamesIn(join(cwd, "data", "app.db")), ["alice"]);
  });

  test("mode=ro is refused with exit 2 and nothing is opened", async () => {
    const cwd = tempDir();
    const run = await runSync(["--file", usersFile(users), "-d", "sqlite://ro.db?mode=ro"], {}, cwd);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /mode=ro, but a sync must write/);
    assert.equal(existsSync(join(cwd, "ro.db")), false);
  });

  test("a missing file with mode=rw (or no mode) is an error, not a new empty database", async () => {
    const cwd = tempDir();
    for (const url of ["sqlite://missing.db?mode=rw", "sqlite://missing.db"]) {
      const run = await runSync(["--file", usersFile(users), "-d", url], {}, cwd);
      assert.equal(run.code, 3, run.stderr);
      assert.match(run.stderr, /missing\.db does not exist/);
      assert.equal(existsSync(join(cwd, "missing.db")), false);
    }
  });

  test("a writer holding the database makes the sync wait, not fail", async () => {
    const path = join(tempDir(), "busy.db");
    const first = await runSync(["--file", usersFile(users), "-d", `sqlite://${path}?mode=rwc`]);
    assert.equal(first.code, 0, first.stderr);
    const holder = new DatabaseSync(path);
    holder.exec("BEGIN IMMEDIATE");
    const started = Date.now();
    const release = setTimeout(() => holder.exec("COMMIT"), 1500);
    const run = await runSync([
      "--file",
      usersFile([...users, { username: "bob", password: "bob-passphrase" }]),
      "-d",
      `sqlite://${path}?mode=rwc`,
    ]);
    clearTimeout(release);
    holder.close();
    assert.equal(run.code, 0, run.stderr);
    assert.ok(Date.now() - started >= 1400, "the sync did not wait for the lock");
    assert.deepEqual(usernamesIn(path), ["alice", "bob"]);
  });
});

describe("the database URL, in Barycenter's order", () => {
  function config(url: string): string {
    const path = join(tempDir(), "config.toml");
    writeFileSync(path, `[server]\nport = 8080\n\n[database]\nurl = "${url}"\n`);
    return path;
  }

  test("Barycenter's chart arguments work unchanged: -c CONFIG sync-users --file PATH", async () => {
    const dir = tempDir();
    const db = join(dir, "barycenter.db");
    const run = await runSync(["-c", config(`sqlite://${db}?mode=rwc`), "sync-users", "--file", usersFile(users)]);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(usernamesIn(db), ["alice"]);
  });

  test("--database-url, then $DATABASE_URL, then $BARYCENTER__DATABASE__URL, then the config file", async () => {
    const dir = tempDir();
    const url = (name: string) => `sqlite://${join(dir, name)}.db?mode=rwc`;
    const file = usersFile(users);
    const cases: [string[], Record<string, string>, string][] = [
      [["-d", url("option")], { DATABASE_URL: url("env"), BARYCENTER__DATABASE__URL: url("bary") }, "option"],
      [[], { DATABASE_URL: url("env"), BARYCENTER__DATABASE__URL: url("bary") }, "env"],
      [[], { BARYCENTER__DATABASE__URL: url("bary") }, "bary"],
      [[], {}, "config"],
    ];
    for (const [args, env, expected] of cases) {
      const run = await runSync(["-c", config(url("config")), "--file", file, ...args], env);
      assert.equal(run.code, 0, run.stderr);
      assert.ok(existsSync(join(dir, `${expected}.db`)), `${expected}.db was not written`);
    }
    assert.equal(existsSync(join(dir, "env.db")), true);
  });

  test("a config file without [database] url falls back to Barycenter's default", async () => {
    const cwd = tempDir();
    const path = join(cwd, "config.toml");
    writeFileSync(path, "[server]\nport = 8080\n");
    const run = await runSync(["-c", path, "sync-users", "--file", usersFile(users)], {}, cwd);
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(usernamesIn(join(cwd, "barycenter.db")), ["alice"]);
  });

  test("an unreadable or invalid config file exits 2 and says where", async () => {
    const missing = await runSync(["-c", "/nonexistent/config.toml", "--file", usersFile(users)]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /cannot read config file \/nonexistent\/config\.toml/);
    const path = join(tempDir(), "config.toml");
    writeFileSync(path, "[database\nurl = 1\n");
    const invalid = await runSync(["-c", path, "--file", usersFile(users)]);
    assert.equal(invalid.code, 2);
    assert.match(invalid.stderr, /is not valid TOML at line 1/);
  });

  test("a config file that is not UTF-8 exits 2 and says so", async () => {
    const path = join(tempDir(), "config.toml");
    writeFileSync(path, Buffer.from([0xff, 0xfe, 0x5b, 0x64, 0x5d, 0x0a]));
    const run = await runSync(["-c", path, "--file", usersFile(users)]);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /cannot read config file .*config\.toml: not UTF-8 text/);
  });

  test("a config file larger than the limit is refused, not read in part", async () => {
    const cwd = tempDir();
    const path = join(cwd, "config.toml");
    // Cut at 16 MiB, it would be one comment: valid TOML without [database] url, so Barycenter's default database.
    writeFileSync(path, `#${"x".repeat(16 * 1024 * 1024)}\n[database]\nurl = "sqlite://${cwd}/chosen.db?mode=rwc"\n`);
    const run = await runSync(["-c", path, "--file", usersFile(users)], {}, cwd);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /config file .*config\.toml is larger than 16 MiB/);
    assert.equal(existsSync(join(cwd, "barycenter.db")), false);
    assert.equal(existsSync(join(cwd, "chosen.db")), false);
  });

  test("command words other than sync-users are refused", async () => {
    const run = await runSync(["migrate", "--file", usersFile(users)]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /unexpected argument "migrate"/);
  });
});
