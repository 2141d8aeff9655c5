/**
 * Issue 16, "the first hour": what a new user meets first. How to run the
 * tool, which database a run used, and the messages for the usual first
 * mistakes (a typo in an option, a YAML file, a relative path under npm, TLS
 * the server does not speak, a database that is not there).
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { VERSION } from "../sync.ts";
import { backends, postgresBackend, runSync, testDatabase, usersFile, usersRows } from "./support/helpers.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const alice = { username: "alice", password: "first-hour-pw-do-not-print", email: "alice@example.com" };

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "user-sync-first-hour-"));
}

describe("how to run it", () => {
  test("npx --no-install barycenter-user-sync runs the tool from any folder of a clone, even with Node 20 first on PATH", () => {
    const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
    assert.equal(manifest.bin["barycenter-user-sync"], "sync.ts");
    const run = spawnSync("npx", ["--no-install", "barycenter-user-sync", "--validate", "--file", "users.json"], {
      cwd: join(root, "examples"),
      // The machine's own Node.js first: npx puts node_modules/.bin (Node.js 24) ahead of it.
      env: { PATH: `/usr/bin:/bin:${process.env.PATH}`, HOME: process.env.HOME ?? tmpdir() },
      encoding: "utf8",
    });
    assert.equal(run.status, 0, run.stderr);
    // Nothing but the tool's own line on standard output: no npm banner to strip.
    assert.equal(run.stdout, "users.json: 3 users, valid\n");
  });

  test("npm run -s sync puts nothing but the tool's output on standard output", () => {
    const run = spawnSync("npm", ["run", "-s", "sync", "--", "--version"], {
      cwd: join(root, "examples"),
      env: { PATH: `/usr/bin:/bin:${process.env.PATH}`, HOME: process.env.HOME ?? tmpdir() },
      encoding: "utf8",
    });
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, `barycenter-user-sync ${VERSION}\n`);
  });

  test("--help's usage names the command the README uses", async () => {
    const run = await runSync(["--help"]);
    assert.match(run.stdout, /^Usage: barycenter-user-sync \[-c CONFIG\] \[sync-users\] \[options\]$/m);
    assert.match(run.stdout, /npx --no-install barycenter-user-sync/);
    assert.doesNotMatch(run.stdout, /node sync\.ts/);
  });

  test("--help lists every exit status", async () => {
    const { stdout } = await runSync(["--help"]);
    const statuses = stdout.slice(stdout.indexOf("Exit status:"));
    for (const status of ["0", "2", "3", "4", "1", "130", "143"]) {
      assert.match(statuses, new RegExp(`^  ${status}\\b|\\b${status} stopped by`, "m"), `exit status ${status}`);
    }
  });

  test("--help lists every environment variable the tool reads", async () => {
    const { stdout } = await runSync(["--help"]);
    const environment = stdout.slice(stdout.indexOf("Environment:"), stdout.indexOf("Exit status:"));
    // Every variable sync.ts names: in the OPTIONS table ("USERS_FILE"), as env.NAME or as process.env.NAME.
    const source = readFileSync(join(root, "sync.ts"), "utf8");
    const named = new Set(
      [...source.matchAll(/\benv(?:\.|\[")([A-Z][A-Z0-9_]+)|env: \[([^\]]+)\]/g)]
        .flatMap((m) => m[1] ? [m[1]] : [...m[2].matchAll(/"([A-Z0-9_]+)"/g)].map((n) => n[1])),
    );
    assert.ok(named.size >= 5, [...named].join(", "));
    for (const variable of [...named, "INIT_CWD"]) {
      assert.match(environment, new RegExp(`\\b${variable}\\b`), `${variable} is missing from --help`);
    }
    assert.match(environment, /password_env/);
  });
});

describe("unknown options", () => {
  test("a misspelt option is named with the nearest known one, exit 2", async () => {
    const run = await runSync(["--flie", "users.json"]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^error: unknown option --flie; did you mean --file\?/m);
    assert.doesNotMatch(run.stderr, /'|positional|--"/);
    assert.match(
      (await runSync(["--databse-url=x"])).stderr,
      /unknown option --databse-url; did you mean --database-url\?/,
    );
    assert.match((await runSync(["--dryrun"])).stderr, /unknown option --dryrun; did you mean --dry-run\?/);
  });

  test("an option nothing is close to gets no suggestion", async () => {
    const run = await runSync(["--banana"]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^error: unknown option --banana; see --help$/m);
  });

  test("a missing value and a value given to a switch are said in the tool's words", async () => {
    const missing = await runSync(["--file"]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /^error: --file needs a value \(--file PATH\); see --help$/m);
    const switched = await runSync(["--dry-run=yes"]);
    assert.equal(switched.code, 2);
    assert.match(switched.stderr, /^error: --dry-run is a switch and takes no value; see --help$/m);
  });
});

describe("cannot read: the absolute path and the same words for every file", () => {
  test("a missing config file: its absolute path and 'file not found', exit 2", async () => {
    const cwd = tempDir();
    const run = await runSync(["-c", "nope.toml", "--file", usersFile([alice])], {}, cwd);
    assert.equal(run.code, 2);
    assert.match(run.stderr, new RegExp(`^error: cannot read config file ${cwd}/nope\\.toml: file not found`, "m"));
  });

  test("a config file that is a directory says so", async () => {
    const cwd = tempDir();
    mkdirSync(join(cwd, "config.toml"));
    const run = await runSync(["-c", "config.toml", "--file", usersFile([alice])], {}, cwd);
    assert.equal(run.code, 2);
    assert.match(run.stderr, new RegExp(`cannot read config file ${cwd}/config\\.toml: it is a directory`));
  });

  test("a missing password_file: its absolute path, resolved from the users file's folder", async () => {
    const file = usersFile([{ username: "alice", password_file: "secrets/alice" }]);
    const run = await runSync(["--file", file, "--database-url", "sqlite::memory:"]);
    assert.equal(run.code, 2);
    const expected = join(file, "..", "secrets", "alice");
    assert.match(
      run.stderr,
      new RegExp(
        `users\\[0\\]\\.password_file \\(user "alice"\\): cannot read password_file ${expected}: file not found`,
      ),
    );
  });

  test("under npm, a relative --config is read from the folder the user ran the command in ($INIT_CWD)", async (t) => {
    const db = await testDatabase(t, backends[1]);
    const userDir = tempDir();
    writeFileSync(join(userDir, "config.toml"), `[database]\nurl = "${db.url}"\n`);
    // npm runs the script in the package root (here: another folder) and passes the user's folder as INIT_CWD.
    const run = await runSync(["-c", "config.toml", "--file", usersFile([alice])], { INIT_CWD: userDir }, tempDir());
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual((await usersRows(db)).map((r) => r.username), ["alice"]);
  });
});

describe("relative paths under npm ($INIT_CWD)", () => {
  test("a relative users file and a relative SQLite URL are the user's folder's, not the package root's", async () => {
    const userDir = tempDir();
    const packageRoot = tempDir();
    writeFileSync(join(userDir, "users.json"), JSON.stringify([alice]));
    const run = await runSync(["-f", "users.json", "-d", "sqlite://x.db?mode=rwc"], { INIT_CWD: userDir }, packageRoot);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, new RegExp(`^database: sqlite ${userDir}/x\\.db \\(from --database-url\\)$`, "m"));
    assert.ok(existsSync(join(userDir, "x.db")));
    assert.equal(existsSync(join(packageRoot, "x.db")), false);
  });

  test("an $INIT_CWD that does not exist is said, exit 2", async () => {
    const run = await runSync(["-f", "users.json", "--validate"], { INIT_CWD: "/nonexistent-folder" });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /^error: cannot work in \$INIT_CWD, \/nonexistent-folder .*: not found/m);
  });
});

describe("which database", () => {
  test("a SQLite target from a config file is printed with its absolute path and the config it came from", async () => {
    const cwd = tempDir();
    mkdirSync(join(cwd, "chart"));
    writeFileSync(join(cwd, "chart", "config.toml"), `[database]\nurl = "sqlite://x.db?mode=rwc"\n`);
    const run = await runSync(["-c", "chart/config.toml", "--file", usersFile([alice])], {}, cwd);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, new RegExp(`^database: sqlite ${cwd}/x\\.db \\(from config chart/config\\.toml\\)$`, "m"));
    // Standard output stays the results.
    assert.doesNotMatch(run.stdout, /database:/);
  });

  test("a PostgreSQL target from $DATABASE_URL is printed as host:port/database, never with its password", async (t) => {
    const db = await testDatabase(t, postgresBackend);
    const run = await runSync(["--file", usersFile([alice])], { DATABASE_URL: db.url });
    assert.equal(run.code, 0, run.stderr);
    const { hostname, port, pathname, password } = new URL(db.url);
    const target = `${hostname}:${port}${pathname}`;
    assert.match(run.stderr, new RegExp(`^database: postgres ${target} \\(from \\$DATABASE_URL\\)$`, "m"));
    assert.ok(!(run.stdout + run.stderr).includes(password));
  });

  for (const backend of backends) {
    test(`the JSON log carries the target too (${backend.name})`, async (t) => {
      const db = await testDatabase(t, backend);
      const run = await runSync(["--file", usersFile([alice]), "-d", db.url, "--log-format", "json"]);
      assert.equal(run.code, 0, run.stderr);
      const line = run.stderr.trim().split("\n").map((l) => JSON.parse(l)).find((l) => l.database !== undefined);
      assert.ok(line, run.stderr);
      assert.equal(line.level, "info");
      assert.equal(line.database, backend.name);
      assert.equal(line.source, "--database-url");
      assert.match(line.msg, new RegExp(`^database: ${backend.name} \\S+ \\(from --database-url\\)$`));
      if (backend.name === "postgres") assert.ok(!run.stderr.includes(new URL(db.url).password));
    });
  }

  test("a config file without [database] url gets a warning naming the default it falls back to", async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, "config.toml"), `[server]\nport = 8080\n`);
    const run = await runSync(["-c", "config.toml", "--file", usersFile([alice]), "--dry-run"], {}, cwd);
    assert.equal(run.code, 0, run.stderr);
    assert.match(
      run.stderr,
      new RegExp(
        `^warning: config file ${cwd}/config\\.toml has no \\[database\\] url; using Barycenter's default`,
        "m",
      ),
    );
    assert.match(
      run.stderr,
      new RegExp(`^database: sqlite ${cwd}/barycenter\\.db \\(from Barycenter's default\\)$`, "m"),
    );
  });

  test("a run that opens no database prints no database line", async () => {
    const run = await runSync(["--file", usersFile([alice]), "--validate"]);
    assert.equal(run.code, 0, run.stderr);
    assert.doesNotMatch(run.stdout + run.stderr, /database:/);
  });
});

describe("files that are not JSON", () => {
  test("a YAML users file is called YAML, with the format expected, exit 2", async () => {
    const file = usersFile(`# users\n- username: alice\n  password: ${alice.password}\n`);
    const run = await runSync(["--file", file, "--validate"]);
    assert.equal(run.code, 2);
    assert.match(
      run.stderr,
      /it looks like YAML, but a users file must be JSON: an array of users, or \{"users": \[\.\.\.\]\}/,
    );
    assert.doesNotMatch(run.stderr, new RegExp(alice.password));
  });

  test("a YAML mapping ({users: ...}) is called YAML too; broken JSON is not", async () => {
    const yaml = await runSync(["--file", usersFile("users:\n  - username: alice\n"), "--validate"]);
    assert.match(yaml.stderr, /looks like YAML/);
    const json = await runSync(["--file", usersFile('[{"username": "alice",}]'), "--validate"]);
    assert.equal(json.code, 2);
    assert.doesNotMatch(json.stderr, /YAML/);
  });

  test("a UTF-16 file (byte order mark FF FE) is called UTF-16, with the encoding expected", async () => {
    const dir = tempDir();
    const file = join(dir, "users.json");
    writeFileSync(file, Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('[{"username":"alice"}]', "utf16le")]));
    const run = await runSync(["--file", file, "--validate"]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /is UTF-16 text \(it starts with a UTF-16 byte order mark\); save it as UTF-8 JSON/);
  });
});

describe("connection failures say what to do", () => {
  test("sslmode=require against a server without TLS: the server did not accept TLS, and what sslmode asked", async (t) => {
    const db = await testDatabase(t, postgresBackend);
    const run = await runSync(["--file", usersFile([alice]), "-d", `${db.url}?sslmode=require`, "--wait", "5"]);
    assert.equal(run.code, 3, run.stderr);
    assert.match(run.stderr, /the server did not accept TLS, which the URL's sslmode=require asks for/);
    // Not a transient failure: said at once, not after --wait.
    assert.doesNotMatch(run.stderr, /not reachable yet/);
    assert.ok(!run.stderr.includes(new URL(db.url).password));
  });

  test("an unreachable database names the likely causes: host (Service), port, NetworkPolicy", async () => {
    const run = await runSync(["--file", usersFile([alice]), "-d", postgresBackend.unreachableUrl, "--wait", "0"]);
    assert.equal(run.code, 3);
    assert.match(
      run.stderr,
      /^error: cannot connect to PostgreSQL at .*; check the host \(in Kubernetes, the Service's name and namespace\), the port, and any NetworkPolicy between this pod and the database; nothing was changed$/m,
    );
  });
});
