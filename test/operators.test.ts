/**
 * What operators ask for: secrets without plaintext (password_hash,
 * password_file, password_env, hash-password), plans and drift checks, the
 * editors' JSON Schema, the Kubernetes and Helm examples, and the logs.
 */

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, test, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { Ajv2020 } from "ajv/dist/2020.js";
import { argon2Verify as independentVerify } from "hash-wasm";
import { parse as parseYaml, parseAllDocuments } from "yaml";
import { argon2Verify } from "../deps.ts";
import { hashPassword } from "../sync.ts";
import { backends, runSync, SYNC, type TestDatabase, testDatabase, usersFile, usersRows } from "./support/helpers.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const example = join(root, "examples", "users.json");
const hashedExample = join(root, "examples", "users.hashed.json");

/** The password hash a SQLite database file holds for `username`. */
function storedHash(path: string, username: string): string {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    return String(
      (db.prepare("SELECT password_hash FROM users WHERE username = ?").get(username) as {
        password_hash: string;
      }).password_hash,
    );
  } finally {
    db.close();
  }
}

/** Runs `node sync.ts hash-password` with `input` on a pipe. */
function hashPasswordFrom(input: string) {
  const run = spawnSync(process.execPath, [SYNC, "hash-password"], { input, encoding: "utf8", env: { PATH: "" } });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** What to type on a terminal, once the output has shown `after` (each step looks past the previous one). */
interface Keystrokes {
  after: string;
  type: string;
}

/**
 * Runs a command on a pseudo-terminal (util-linux `script`), typing each step's
 * keys once its prompt is on the screen, as a person would.
 */
function onTerminal(command: string, steps: Keystrokes[] = [], env: Record<string, string> = {}) {
  return new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn("script", ["-q", "-e", "-c", command, "/dev/null"], {
      env: { PATH: process.env.PATH ?? "", TERM: "xterm", ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let output = "";
    let seen = 0;
    const pending = [...steps];
    child.stdout.setEncoding("utf8").on("data", (d) => {
      output += d;
      while (pending.length > 0) {
        const at = output.indexOf(pending[0].after, seen);
        if (at < 0) break;
        seen = at + pending[0].after.length;
        child.stdin.write(pending.shift()!.type);
      }
    });
    child.once("error", reject);
    child.once("close", (code) => {
      child.stdin.end();
      resolve({ code, output });
    });
  });
}

for (const backend of backends) {
  describe(`secrets without plaintext on ${backend.name}`, () => {
    const database = (t: TestContext) => testDatabase(t, backend);
    const sync = (db: TestDatabase, users: unknown, ...args: string[]) =>
      runSync(["--file", usersFile(users), "--database-url", db.url, ...args]);

    test("password_hash is stored as given; a re-sync compares the strings", async (t) => {
      const db = await database(t);
      const hash = await hashPassword("alice-from-git");
      const first = await sync(db, [{ username: "alice", password_hash: hash }]);
      assert.equal(first.code, 0, first.stderr);
      assert.equal((await usersRows(db))[0].password_hash, hash);
      const again = await sync(db, [{ username: "alice", password_hash: hash }]);
      assert.match(again.stdout, /^users: 0 created, 0 updated, 1 unchanged$/m);
      const other = await hashPassword("alice-rotated");
      const rotated = await sync(db, [{ username: "alice", password_hash: other }]);
      assert.match(rotated.stdout, /^updated alice: password$/m);
      assert.equal((await usersRows(db))[0].password_hash, other);
      for (const run of [first, again, rotated]) assert.ok(!(run.stdout + run.stderr).includes(hash.slice(30)));
    });

    test("a file with password_hash for every user syncs, and no plaintext of those hashes is anywhere", async (t) => {
      const db = await database(t);
      const run = await runSync(["--file", hashedExample, "--database-url", db.url]);
      assert.equal(run.code, 0, run.stderr);
      const given = JSON.parse(readFileSync(hashedExample, "utf8")).users;
      assert.deepEqual(
        (await usersRows(db)).map((r) => [r.username, r.password_hash]),
        given.map((u: { username: string; password_hash: string }) => [u.username, u.password_hash]),
      );
      assert.ok(given.every((u: Record<string, unknown>) => !("password" in u)));
      const again = await runSync(["--file", hashedExample, "--database-url", db.url]);
      assert.match(again.stdout, /^users: 0 created, 0 updated, 3 unchanged$/m);
    });

    test("password_file reads the password from its own file, one trailing newline trimmed, relative to the users file", async (t) => {
      const db = await database(t);
      const dir = mkdtempSync(join(tmpdir(), "user-sync-pwfile-"));
      writeFileSync(join(dir, "alice"), "alice-from-secret\n");
      writeFileSync(join(dir, "bob"), "bob-from-secret\r\n");
      const file = join(dir, "users.json");
      writeFileSync(
        file,
        JSON.stringify([
          { username: "alice", password_file: "alice" },
          { username: "bob", password_file: join(dir, "bob") },
        ]),
      );
      const run = await runSync(["--file", file, "--database-url", db.url]);
      assert.equal(run.code, 0, run.stderr);
      const [alice, bob] = await usersRows(db);
      assert.equal(await argon2Verify(String(alice.password_hash), "alice-from-secret"), true);
      assert.equal(await argon2Verify(String(bob.password_hash), "bob-from-secret"), true);
      const again = await runSync(["--file", file, "--database-url", db.url]);
      assert.match(again.stdout, /^users: 0 created, 0 updated, 2 unchanged$/m);
    });

    test("password_env reads the password from a variable", async (t) => {
      const db = await database(t);
      const file = usersFile([{ username: "alice", password_env: "ALICE_PASSWORD" }]);
      const run = await runSync(["--file", file, "--database-url", db.url], { ALICE_PASSWORD: "alice-from-env" });
      assert.equal(run.code, 0, run.stderr);
      assert.equal(await argon2Verify(String((await usersRows(db))[0].password_hash), "alice-from-env"), true);
      const changed = await runSync(["--file", file, "--database-url", db.url], { ALICE_PASSWORD: "alice-rotated" });
      assert.match(changed.stdout, /^updated alice: password$/m);
    });

    test("--check exits 0 when the database matches, 4 when a sync would change something, and writes nothing", async (t) => {
      const db = await database(t);
      const users = [{ username: "alice", password: "alice-pass", email: "alice@example.com" }];
      assert.equal((await sync(db, users)).code, 0);
      const matches = await sync(db, users, "--check");
      assert.equal(matches.code, 0, matches.stderr);
      assert.match(matches.stdout, /^unchanged alice$/m);
      assert.match(matches.stdout, /\(check: the database matches the file\)$/m);
      const before = await usersRows(db);
      const drift = await sync(
        db,
        [{ ...users[0], email: "new@example.com" }, { username: "bob", password: "b" }],
        "--check",
      );
      assert.equal(drift.code, 4, drift.stderr);
      assert.match(drift.stdout, /^would update alice: email$/m);
      assert.match(drift.stdout, /^would create bob: password$/m);
      assert.match(
        drift.stdout,
        /users: 1 to create, 1 to update, 0 unchanged \(check: the database differs from the file\)/,
      );
      assert.deepEqual(await usersRows(db), before);
    });

    test("--dry-run prints the plan user by user: create, update with fields, unchanged", async (t) => {
      const db = await database(t);
      assert.equal(
        (await sync(db, [{ username: "alice", password: "a" }, { username: "bob", password: "b" }])).code,
        0,
      );
      const run = await sync(db, [
        { username: "alice", password: "a" },
        { username: "bob", password: "b2", enabled: false },
        { username: "carol", password: "c" },
      ], "--dry-run");
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(run.stdout.trim().split("\n"), [
        "unchanged alice",
        "would update bob: password, enabled",
        "would create carol: password",
        "users: 1 to create, 1 to update, 1 unchanged (dry run: nothing written)",
      ]);
    });
  });
}

describe("secrets without plaintext: refusals", () => {
  async function refused(users: unknown, env: Record<string, string> = {}): Promise<string> {
    const run = await runSync(["--file", usersFile(users), "--database-url", "sqlite::memory:"], env);
    assert.equal(run.code, 2, `expected exit 2: ${run.stdout}${run.stderr}`);
    return run.stderr;
  }

  test("exactly one of password, password_hash, password_file and password_env", async () => {
    const hash = await hashPassword("x");
    const stderr = await refused([
      { username: "a", password: "secret-one", password_hash: hash },
      { username: "b" },
      { username: "c", password_env: "X", password_file: "/x" },
    ]);
    assert.match(
      stderr,
      /users\[0\]: give exactly one of password, password_hash, password_file, password_env, not password and password_hash/,
    );
    assert.match(stderr, /users\[1\]\.password: is required \(or password_hash, password_file, password_env\)/);
    assert.match(stderr, /users\[2\]: give exactly one of .*not password_file and password_env/);
    assert.ok(!stderr.includes("secret-one") && !stderr.includes(hash));
  });

  test("a password_hash that is not an Argon2id PHC string is refused without being printed", async () => {
    const bcrypt = "$2b$12$abcdefghijklmnopqrstuu5D8CqZ5N0w1fG8y9oV2Q3hAlmost";
    const zeroCost = "$argon2id$v=19$m=0,t=0,p=0$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
    const tooLittleMemory =
      "$argon2id$v=19$m=7,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
    const stderr = await refused([
      { username: "a", password_hash: bcrypt },
      { username: "b", password_hash: "plain-text-oops" },
      { username: "c", password_hash: zeroCost },
      { username: "d", password_hash: tooLittleMemory },
    ]);
    for (let i = 0; i < 4; i++) {
      assert.match(stderr, new RegExp(`users\\[${i}\\]\\.password_hash: must be an Argon2id PHC string`));
    }
    assert.ok(!stderr.includes(bcrypt) && !stderr.includes("plain-text-oops"));
  });

  test("password_file problems name the user and the path, never the content", async () => {
    const dir = mkdtempSync(join(tmpdir(), "user-sync-pwbad-"));
    writeFileSync(join(dir, "empty"), "\n");
    writeFileSync(join(dir, "long"), "L0ngSecret".repeat(200));
    const stderr = await refused([
      { username: "alice", password_file: join(dir, "missing") },
      { username: "bob", password_file: join(dir, "empty") },
      { username: "carol", password_file: join(dir, "long") },
      { username: "dave", password_file: dir },
    ]);
    assert.match(
      stderr,
      new RegExp(
        `users\\[0\\]\\.password_file \\(user "alice"\\): cannot read password_file ${
          join(dir, "missing")
        }: file not found`,
      ),
    );
    assert.match(stderr, /users\[1\]\.password_file \(user "bob"\): the password it holds must not be empty/);
    assert.match(
      stderr,
      /users\[2\]\.password_file \(user "carol"\): the password it holds must be at most 1024 characters/,
    );
    assert.match(stderr, /users\[3\]\.password_file \(user "dave"\): cannot read password_file .*: it is a directory/);
    assert.doesNotMatch(stderr, /L0ngSecret/);
  });

  test("a password_file larger than 64 KiB is refused as too large, and nothing is written", async () => {
    const dir = mkdtempSync(join(tmpdir(), "user-sync-pwhuge-"));
    const url = `sqlite://${dir}/b.db?mode=rwc`;
    const first = await runSync([
      "--file",
      usersFile([{ username: "alice", password: "first-password" }]),
      "--database-url",
      url,
    ]);
    assert.equal(first.code, 0, first.stderr);
    const hashBefore = storedHash(join(dir, "b.db"), "alice");
    // 65,537 bytes: cut at 64 KiB, the last two-byte character would be split in half.
    writeFileSync(join(dir, "huge"), "a" + "\u00e9".repeat(32768));
    const run = await runSync([
      "--file",
      usersFile([{ username: "alice", password_file: join(dir, "huge") }]),
      "--database-url",
      url,
    ]);
    assert.equal(run.code, 2, run.stdout + run.stderr);
    assert.match(
      run.stderr,
      /users\[0\]\.password_file \(user "alice"\): cannot read password_file .*huge: it is larger than 64 KiB/,
    );
    assert.doesNotMatch(run.stderr, /not UTF-8/);
    assert.equal(storedHash(join(dir, "b.db"), "alice"), hashBefore);
  });

  test("an unset password_env variable is refused, naming the user and the variable", async () => {
    const stderr = await refused([{ username: "alice", password_env: "NOT_SET_ANYWHERE" }]);
    assert.match(stderr, /users\[0\]\.password_env \(user "alice"\): the variable NOT_SET_ANYWHERE is not set/);
  });
});

describe("hash-password", () => {
  test("reads a password from standard input and prints an Argon2id hash that Barycenter's parameters verify", async () => {
    const run = hashPasswordFrom("correct-horse-battery-staple\n");
    assert.equal(run.code, 0, run.stderr);
    const hash = run.stdout.trim();
    assert.match(hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
    assert.equal(await argon2Verify(hash, "correct-horse-battery-staple"), true);
    assert.equal(await independentVerify({ password: "correct-horse-battery-staple", hash }), true);
    assert.equal(run.stderr, "");
  });

  test("standard input that never ends is refused once past 64 KiB, with exit 2 and nothing printed", () => {
    const run = spawnSync("sh", ["-c", `yes endless-input | "${process.execPath}" "${SYNC}" hash-password`], {
      encoding: "utf8",
      timeout: 60_000,
    });
    assert.equal(run.status, 2, run.stderr);
    assert.equal(run.stdout, "");
    assert.match(run.stderr, /standard input holds more than 64 KiB, and a password is at most 1024 characters/);
    assert.doesNotMatch(run.stderr, /endless-input/);
  });

  test("an empty password is refused with exit 2 and nothing printed on standard output", () => {
    const run = hashPasswordFrom("\n");
    assert.equal(run.code, 2);
    assert.equal(run.stdout, "");
    assert.match(run.stderr, /the password must not be empty/);
  });

  test("on a terminal it asks twice and never echoes the password", async () => {
    const typed = "Typed-Secret-99";
    const run = await onTerminal(`${process.execPath} ${SYNC} hash-password`, [
      { after: "Password: ", type: `${typed}\r` },
      { after: "Repeat:", type: `${typed}\r` },
    ]);
    assert.equal(run.code, 0, run.output);
    assert.match(run.output, /Password: /);
    assert.match(run.output, /Repeat: /);
    assert.ok(!run.output.includes(typed), `the password was echoed: ${JSON.stringify(run.output)}`);
    const hash = /\$argon2id\$\S+/.exec(run.output)![0];
    assert.equal(await argon2Verify(hash, typed), true);
  });

  test("on a terminal, two different entries are refused", async () => {
    const run = await onTerminal(`${process.execPath} ${SYNC} hash-password`, [
      { after: "Password: ", type: "one-entry\r" },
      { after: "Repeat:", type: "other-entry\r" },
    ]);
    assert.equal(run.code, 2);
    assert.match(run.output, /the two passwords differ/);
  });
});

describe("editors and CI", () => {
  const schemaPath = join(root, "users.schema.json");

  test("users.schema.json is what the build generates from the valibot schema", () => {
    const out = mkdtempSync(join(tmpdir(), "user-sync-schema-"));
    const fresh = join(out, "users.schema.json");
    const build = spawnSync(process.execPath, [
      join(root, "build.mjs"),
      "--outdir",
      join(out, "dist"),
      "--schema",
      fresh,
    ], {
      encoding: "utf8",
    });
    assert.equal(build.status, 0, build.stderr);
    assert.equal(
      readFileSync(schemaPath, "utf8"),
      readFileSync(fresh, "utf8"),
      "users.schema.json is stale: run npm run build",
    );
  });

  test("the schema accepts the examples and refuses what the tool refuses", () => {
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    const validate = ajv.compile(JSON.parse(readFileSync(schemaPath, "utf8")));
    for (const file of [example, hashedExample]) {
      assert.ok(validate(JSON.parse(readFileSync(file, "utf8"))), `${file}: ${ajv.errorsText(validate.errors)}`);
    }
    for (
      const bad of [
        [{ username: "a", pasword: "typo" }],
        [{
          username: "a",
          password: "p",
          password_hash: "$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
        }],
        [{ username: "", password: "p" }],
        [{ username: "a", password_hash: "not-a-hash" }],
        { users: [], extra: 1 },
      ]
    ) assert.equal(validate(bad), false, JSON.stringify(bad));
  });

  test('"$schema" is the one unknown top-level key the validator allows', async () => {
    const ok = await runSync([
      "--validate",
      "--file",
      usersFile({ $schema: "./users.schema.json", users: [{ username: "a", password: "p" }] }),
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    const other = await runSync([
      "--validate",
      "--file",
      usersFile({ $id: "x", users: [{ username: "a", password: "p" }] }),
    ]);
    assert.equal(other.code, 2);
    assert.match(other.stderr, /\$id: unknown top-level field/);
  });

  test("--validate needs no database, and no secrets: password_file and password_env are read only at sync time", async () => {
    const run = await runSync([
      "--validate",
      "--file",
      usersFile([{ username: "a", password_file: "/run/secrets/absent" }]),
    ], {
      DATABASE_URL: "postgres://u:p@127.0.0.1:1/db",
    });
    assert.equal(run.code, 0, run.stderr);
  });
});

describe("Kubernetes and Helm", () => {
  const manifest = readFileSync(join(root, "deploy", "kubernetes", "barycenter-with-user-sync.yaml"), "utf8");
  const values = readFileSync(join(root, "deploy", "helm", "values.yaml"), "utf8");

  /** The users file path in a container's arguments, pointed at an example file instead. */
  function withExample(args: string[], file: string): string[] {
    const i = args.indexOf("--file");
    return args.map((arg, j) => (j === i + 1 ? file : arg));
  }

  test("the manifest parses and its init container is hardened as Barycenter's chart hardens pods", () => {
    const docs = parseAllDocuments(manifest).map((d) => d.toJS());
    const pod = docs.find((d) => d.kind === "Deployment").spec.template.spec;
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.equal(pod.securityContext.seccompProfile.type, "RuntimeDefault");
    const [init] = pod.initContainers;
    assert.equal(init.name, "user-sync");
    assert.match(init.image, /barycenter-user-sync/);
    assert.deepEqual(init.securityContext.capabilities.drop, ["ALL"]);
    assert.equal(init.securityContext.readOnlyRootFilesystem, true);
    assert.equal(init.securityContext.allowPrivilegeEscalation, false);
    assert.equal(init.securityContext.seccompProfile.type, "RuntimeDefault");
    assert.equal(init.env.find((e: { name: string }) => e.name === "DATABASE_URL").valueFrom.secretKeyRef.key, "url");
    const volume = pod.volumes.find((v: { name: string }) => v.name === init.volumeMounts[0].name);
    assert.equal(volume.secret.items[0].key, "users.json");
  });

  test("the manifest's container arguments, run against the example file with --validate, succeed", async () => {
    const pod =
      parseAllDocuments(manifest).map((d) => d.toJS()).find((d) => d.kind === "Deployment").spec.template.spec;
    const run = await runSync([...withExample(pod.initContainers[0].args, hashedExample), "--validate"]);
    assert.equal(run.code, 0, run.stderr);
  });

  test("the Helm values parse, and their inline users are a valid users file", async () => {
    const { userSync } = parseYaml(values);
    assert.equal(userSync.enabled, true);
    assert.equal(typeof userSync.existingSecret, "string");
    const run = await runSync(["--validate", "--file", usersFile(userSync.users)]);
    assert.equal(run.code, 0, run.stderr);
    assert.doesNotMatch(userSync.users, /"password"\s*:/, "plaintext password in values");
  });
  // The chart's templates are rendered by the real helm in deploy-helm.test.ts.
});

describe("logs", () => {
  test("--log-format json: every line has level, msg and duration_ms; user lines user, action, changes; the summary counts", async () => {
    const db = mkdtempSync(join(tmpdir(), "user-sync-logs-"));
    const url = `sqlite://${db}/b.db?mode=rwc`;
    await runSync(["--file", usersFile([{ username: "alice", password: "a" }]), "--database-url", url]);
    const run = await runSync([
      "--file",
      usersFile([{ username: "alice", password: "a", email: "a@example.com" }, { username: "bob", password: "b" }]),
      "--database-url",
      url,
      "--log-format",
      "json",
    ]);
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trim().split("\n").map((l) => JSON.parse(l));
    for (const line of lines) {
      assert.equal(line.level, "info");
      assert.equal(typeof line.msg, "string");
      assert.equal(typeof line.duration_ms, "number");
    }
    assert.deepEqual(lines.slice(0, 2).map(({ user, action, changes }) => ({ user, action, changes })), [
      { user: "alice", action: "update", changes: ["email"] },
      { user: "bob", action: "create", changes: ["password"] },
    ]);
    assert.deepEqual([lines[2].summary, lines[2].created, lines[2].updated, lines[2].unchanged], [true, 1, 1, 0]);
  });

  const ESC = "\u001b";
  test("text logs: one line per event, colour only on a terminal and never with NO_COLOR", async () => {
    const dir = mkdtempSync(join(tmpdir(), "user-sync-colour-"));
    const file = usersFile([{ username: "alice", password: "a" }]);
    const command = (db: string) =>
      `${process.execPath} ${SYNC} --file ${file} --database-url sqlite://${dir}/${db}.db?mode=rwc`;
    const piped = await runSync(["--file", file, "--database-url", `sqlite://${dir}/piped.db?mode=rwc`]);
    assert.ok(!(piped.stdout + piped.stderr).includes(ESC), "no escape codes when piped");
    assert.deepEqual(piped.stdout.trim().split("\n"), [
      "created alice: password",
      "users: 1 created, 0 updated, 0 unchanged",
    ]);
    const terminal = await onTerminal(command("tty"));
    assert.equal(terminal.code, 0, terminal.output);
    assert.ok(terminal.output.includes(`${ESC}[32mcreated alice: password${ESC}[0m`), terminal.output);
    const noColor = await onTerminal(command("nocolor"), [], { NO_COLOR: "1" });
    assert.equal(noColor.code, 0, noColor.output);
    assert.match(noColor.output, /created alice: password/);
    assert.ok(!noColor.output.includes(ESC), "no escape codes with NO_COLOR");
  });
});
