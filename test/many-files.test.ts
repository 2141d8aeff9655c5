/**
 * Several users files and directories (issue 14, part 1): merged into one
 * list before anything else happens, every file read and validated before a
 * database connection is opened, a Secret mounted as a directory read through
 * its `..data` link, and relative paths read from where the user typed the
 * command (`$INIT_CWD`, issue 16).
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { fileLabels, mergeUsersFiles, parseOptions } from "../sync.ts";
import {
  backends,
  connectionCounter,
  runSync,
  SYNC,
  type TestDatabase,
  testDatabase,
  usersRows,
} from "./support/helpers.ts";

const PW_VERIFY = fileURLToPath(new URL("../../shared/tools/barycenter-pw-verify", import.meta.url));

const alice = { username: "alice", password: "alice-passphrase" };
const bob = { username: "bob", password: "bob-passphrase" };
const carol = { username: "carol", password: "carol-passphrase" };
const dave = { username: "dave", password: "dave-passphrase" };

/**
 * A new directory holding `files`: each path (slashes make subdirectories)
 * maps to JSON content, a string written as it is, or `{ link }` for a
 * symbolic link. Returns the directory.
 */
function tree(files: Record<string, unknown>): string {
  const root = mkdtempSync(join(tmpdir(), "user-sync-many-"));
  for (const [path, content] of Object.entries(files)) {
    const full = join(root, path);
    mkdirSync(dirname(full), { recursive: true });
    if (isLink(content)) symlinkSync(content.link, full);
    else writeFileSync(full, typeof content === "string" ? content : JSON.stringify(content));
  }
  return root;
}

function isLink(content: unknown): content is { link: string } {
  return typeof content === "object" && content !== null && "link" in content;
}

/**
 * Writes a Secret's keys as the kubelet does: a new timestamped directory,
 * a `..data_tmp` link to it renamed over `..data` (the atomic swap), a
 * `key -> ..data/key` link per key, then the old directory removed.
 */
function kubeletWrites(volume: string, stamp: string, keys: Record<string, unknown>): void {
  const previous = existsSync(join(volume, "..data")) ? join(volume, "..data") : undefined;
  const old = previous ? spawnSync("readlink", [previous], { encoding: "utf8" }).stdout.trim() : undefined;
  const dir = `..${stamp}`;
  mkdirSync(join(volume, dir));
  for (const [key, content] of Object.entries(keys)) writeFileSync(join(volume, dir, key), JSON.stringify(content));
  symlinkSync(dir, join(volume, "..data_tmp"));
  renameSync(join(volume, "..data_tmp"), join(volume, "..data"));
  for (const key of Object.keys(keys)) {
    if (!existsSync(join(volume, key))) symlinkSync(join("..data", key), join(volume, key));
  }
  if (old) rmSync(join(volume, old), { recursive: true });
}

async function usernames(db: TestDatabase): Promise<string[]> {
  return (await usersRows(db)).map((row) => String(row.username));
}

/** Whether Barycenter's own verifier accepts `password` for `hash`; skips the test when the tool is absent. */
function barycenterAccepts(t: TestContext, password: string, hash: string): boolean | undefined {
  if (!existsSync(PW_VERIFY)) {
    t.skip("../shared/tools/barycenter-pw-verify is absent: Barycenter's own verification not checked");
    return undefined;
  }
  const input = `x\t${Buffer.from(password).toString("hex")}\t${hash}\n`;
  return spawnSync(PW_VERIFY, { input, encoding: "utf8" }).stdout.split("\t")[2] === "OK";
}

describe("options: several files", () => {
  test("--file may be repeated; the paths are kept in the order given and win over $USERS_FILE", () => {
    const options = parseOptions(["-f", "b.json", "--file", "a", "-f", "c.json"], { USERS_FILE: "x.json" });
    assert.deepEqual(options.files, ["b.json", "a", "c.json"]);
  });

  test("$USERS_FILE holds several paths separated by ':'", () => {
    assert.deepEqual(parseOptions([], { USERS_FILE: "/a/users.json:teams::/b" }).files, [
      "/a/users.json",
      "teams",
      "/b",
    ]);
  });

  test("relative paths are read from $INIT_CWD when npm sets it, else from the working directory", () => {
    assert.equal(parseOptions([], { INIT_CWD: "/home/me/examples" }).workingDir, "/home/me/examples");
    assert.equal(parseOptions([], {}).workingDir, process.cwd());
  });
});

describe("merging files (pure)", () => {
  const file = (label: string, data: unknown) => ({ label, dir: "/d", data });

  test("users of several files merge in file order, each with its file's place", () => {
    const { users, problems } = mergeUsersFiles([file("a.json", [alice]), file("b.json", { users: [bob, carol] })]);
    assert.deepEqual(problems, []);
    assert.deepEqual(users.map((u) => [u.username, u.origin?.file, u.origin?.index]), [
      ["alice", "a.json", 0],
      ["bob", "b.json", 0],
      ["carol", "b.json", 1],
    ]);
  });

  test("a username in two files is refused, naming both places", () => {
    const { users, problems } = mergeUsersFiles([file("team-a.json", [alice, bob]), file("team-b.json", [bob])]);
    assert.deepEqual(users, []);
    assert.deepEqual(problems, [
      'team-b.json: users[0].username: "bob" is also listed in team-a.json (users[1]); a username may be listed ' +
      "in one file only, remove one",
    ]);
  });

  test("a look-alike across files (letter case, Unicode normalisation) is refused", () => {
    const composed = { username: "Jos\u00e9", password: "jose-passphrase" };
    const decomposed = { username: "Jose\u0301", password: "jose-passphrase" };
    const { problems } = mergeUsersFiles([
      file("a.json", [composed, { ...bob, username: "Bob" }]),
      file("b.json", [decomposed, bob]),
    ]);
    assert.equal(problems.length, 2);
    assert.match(problems[0], /^b\.json: users\[0\]\.username: differs from users\[0\]\.username in a\.json only/);
    assert.match(problems[1], /^b\.json: users\[1\]\.username: differs from users\[1\]\.username in a\.json only/);
  });

  test("every file's own problems are reported under its name", () => {
    const { problems } = mergeUsersFiles([
      file("a.json", [{ ...alice, email: "not-an-address" }]),
      file("b.json", [bob, { username: "eve" }]),
    ]);
    assert.deepEqual(problems, [
      "a.json: users[0].email: invalid email address",
      "b.json: users[1].password: is required (or password_hash, password_file, password_env)",
    ]);
  });

  test("files are named by their names, or by the path as given when two share a name", () => {
    assert.deepEqual(fileLabels(["/s/team-a.json", "b/team-b.json"]), ["team-a.json", "team-b.json"]);
    assert.deepEqual(fileLabels(["a/users.json", "/b/users.json", "c.json"]), [
      "a/users.json",
      "/b/users.json",
      "c.json",
    ]);
  });
});

describe("reading several files (no database)", () => {
  test("every file is read and validated before a database connection is opened", async (t) => {
    const counter = await connectionCounter(t);
    const dir = tree({ "good.json": [alice], "bad.json": [{ ...bob, email: "nope" }] });
    const run = await runSync(["-f", join(dir, "good.json"), "-f", join(dir, "bad.json"), "-d", counter.url]);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /^ {2}bad\.json: users\[0\]\.email: invalid email address$/m);
    assert.equal(counter.count(), 0);
  });

  test("a directory without a *.json file is an error, not an empty list", async () => {
    const dir = tree({ "README.txt": "not users", ".old.json": [alice], "sub.json/users.json": [bob] });
    const run = await runSync(["--validate", "-f", dir]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, new RegExp(`^error: users directory ${dir} holds no \\*\\.json file`, "m"));
    const empty = await runSync(["--validate", "-f", tree({})]);
    assert.equal(empty.code, 2);
    assert.match(empty.stderr, /holds no \*\.json file/);
  });

  test("names beginning with '.' are skipped; the files are read in name order", async () => {
    const dir = tree({
      "b.json": [bob],
      ".hidden.json": "not JSON at all",
      "A.json": [carol],
      "a.json": [alice],
      "notes.txt": "x",
    });
    const run = await runSync(["--validate", "-f", dir]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(
      run.stdout,
      "A.json: 1 user, valid\na.json: 1 user, valid\nb.json: 1 user, valid\n3 users in 3 files, valid\n",
    );
  });

  test("one bad file among several: every problem is reported with its file", async () => {
    const dir = tree({
      "team-a.json": [alice, bob, carol, { ...dave, email: "dave-at-example" }],
      "team-b.json": '[{"username": "eve", ]',
      "team-c.json": [{ username: "Alice", password: "x" }],
      "team-d.json": [{ username: "frank", password: "frank-passphrase" }],
    });
    const run = await runSync(["--validate", "-f", dir, "-f", join(dir, "missing.json")]);
    assert.equal(run.code, 2);
    const lines = run.stderr.trimEnd().split("\n");
    assert.equal(lines[0], "error: users files are invalid (4 problems); nothing was changed");
    assert.deepEqual(lines.slice(1).sort(), [
      `  cannot read users file ${join(dir, "missing.json")}: file not found; give the path with --file or $USERS_FILE`,
      "  team-a.json: users[3].email: invalid email address",
      "  team-b.json is not valid JSON: trailing comma at line 1, column 22",
      "  team-c.json: users[0].username: differs from users[0].username in team-a.json only in letter case or " +
      "Unicode normalisation; such look-alike accounts are refused, rename one",
    ]);
    assert.doesNotMatch(run.stderr, /passphrase/);
  });

  test("a missing file is reported with the absolute path the tool looked at", async () => {
    const cwd = tree({});
    const run = await runSync(["--validate", "-f", "users.json"], {}, cwd);
    assert.equal(run.code, 2);
    assert.equal(
      run.stderr,
      `error: cannot read users file ${join(cwd, "users.json")}: file not found; give the path with --file or ` +
        "$USERS_FILE\n",
    );
  });

  test("the same file reached twice (given twice, or also through its directory) is read once", async () => {
    const dir = tree({ "users.json": [alice] });
    const run = await runSync(["--validate", "-f", dir, "-f", join(dir, "users.json")]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${join(dir, "users.json")}: 1 user, valid\n`);
  });

  test("relative paths are read from $INIT_CWD (npm run from another directory)", async () => {
    const examples = tree({ "users.json": [alice, bob] });
    const repo = dirname(SYNC);
    const run = await runSync(["--validate", "-f", "users.json"], { INIT_CWD: examples }, repo);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, "users.json: 2 users, valid\n");
    const missing = await runSync(["--validate", "-f", "nope.json"], { INIT_CWD: examples }, repo);
    assert.match(missing.stderr, new RegExp(`cannot read users file ${join(examples, "nope.json")}: file not found`));
  });
});

for (const backend of backends) {
  describe(`several files on ${backend.name}`, () => {
    const database = (t: TestContext) => testDatabase(t, backend);

    test("two files and a directory are merged into one sync", async (t) => {
      const db = await database(t);
      const a = tree({ "a.json": [alice] });
      const b = tree({ "b.json": { users: [bob] } });
      const teams = tree({ "c.json": [carol], "d.json": [dave] });
      const run = await runSync(["-f", join(a, "a.json"), "-f", join(b, "b.json"), "-f", teams, "-d", db.url]);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(
        run.stdout.split("\n").filter((line) => line.startsWith("created")),
        ["created alice: password", "created bob: password", "created carol: password", "created dave: password"],
      );
      assert.deepEqual(await usernames(db), ["alice", "bob", "carol", "dave"]);
    });

    test("a Secret mounted as a directory is read through ..data, and a kubelet update is picked up", async (t) => {
      const db = await database(t);
      const volume = tree({});
      kubeletWrites(volume, "2026_11_27_10_00_00.123456", { "users.json": [alice], "team-b.json": [bob] });
      const first = await runSync(["-f", volume, "-d", db.url]);
      assert.equal(first.code, 0, first.stderr);
      assert.deepEqual(await usernames(db), ["alice", "bob"]);

      kubeletWrites(volume, "2026_11_27_10_05_00.654321", {
        "users.json": [alice, carol],
        "team-b.json": [{ ...bob, email: "bob@example.com" }],
      });
      const next = await runSync(["-f", volume, "-d", db.url]);
      assert.equal(next.code, 0, next.stderr);
      assert.match(next.stdout, /^created carol: password$/m);
      assert.match(next.stdout, /^users: 1 created, 1 updated, 1 unchanged$/m);
      const rows = await usersRows(db);
      assert.deepEqual(rows.map((r) => [r.username, r.email]), [
        ["alice", null],
        ["bob", "bob@example.com"],
        ["carol", null],
      ]);
    });

    test("a username in two files: exit 2, both places named, nothing written", async (t) => {
      const db = await database(t);
      const dir = tree({ "one.json": [alice], "two.json": [carol, bob], "three.json": [dave, bob] });
      const first = await runSync(["-f", join(dir, "one.json"), "-d", db.url]);
      assert.equal(first.code, 0, first.stderr);
      const run = await runSync(["-f", join(dir, "two.json"), "-f", join(dir, "three.json"), "-d", db.url]);
      assert.equal(run.code, 2);
      assert.match(
        run.stderr,
        /^ {2}three\.json: users\[1\]\.username: "bob" is also listed in two\.json \(users\[1\]\); a username may be listed in one file only, remove one$/m,
      );
      assert.deepEqual(await usernames(db), ["alice"]);
    });

    test("one bad file among several changes nothing", async (t) => {
      const db = await database(t);
      const dir = tree({ "a.json": [alice], "b.json": [bob], "c.json": [{ ...carol, enabled: "yes" }] });
      await runSync(["-f", join(dir, "a.json"), "-d", db.url]);
      const before = await usersRows(db);
      const run = await runSync(["-f", dir, "-d", db.url]);
      assert.equal(run.code, 2);
      assert.match(run.stderr, /^ {2}c\.json: users\[0\]\.enabled: must be true or false$/m);
      assert.deepEqual(await usersRows(db), before);
    });

    test("password_file is read relative to the file that names it", async (t) => {
      const db = await database(t);
      const one = tree({ "users.json": [{ username: "alice", password_file: "alice.pw" }], "alice.pw": "alice-pw\n" });
      const two = tree({
        "team.json": [{ username: "bob", password_file: "secrets/bob.pw" }],
        "secrets/bob.pw": "bob-pw",
      });
      // Run from a third directory: neither password file is relative to it.
      const run = await runSync(["-f", join(one, "users.json"), "-f", join(two, "team.json"), "-d", db.url]);
      assert.equal(run.code, 0, run.stderr);
      const hashes = Object.fromEntries((await usersRows(db)).map((r) => [r.username, String(r.password_hash)]));
      assert.equal(barycenterAccepts(t, "alice-pw", hashes.alice), true);
      assert.equal(barycenterAccepts(t, "bob-pw", hashes.bob), true);
    });

    test("a password_file missing in one of several files is reported under that file", async (t) => {
      const db = await database(t);
      const one = tree({ "a.json": [alice] });
      const two = tree({ "b.json": [bob, { username: "carol", password_file: "carol.pw" }] });
      const run = await runSync(["-f", join(one, "a.json"), "-f", join(two, "b.json"), "-d", db.url]);
      assert.equal(run.code, 2);
      assert.match(run.stderr, /^error: users files are invalid \(1 problem\); nothing was changed$/m);
      assert.match(run.stderr, /^ {2}b\.json: users\[1\]\.password_file \(user "carol"\): cannot read /m);
      assert.equal(await backend.tableExists(db, "users"), false, "no table was even created");
    });

    test("--check, the fast path and --prune cover the users of all files together", async (t) => {
      const db = await database(t);
      const dir = tree({ "a.json": [alice], "b.json": [bob, carol] });
      const both = ["-f", join(dir, "a.json"), "-f", join(dir, "b.json"), "-d", db.url];
      assert.equal((await runSync(both)).code, 0);

      const check = await runSync([...both, "--check"]);
      assert.equal(check.code, 0, check.stdout + check.stderr);
      assert.match(check.stdout, /check: the database matches the file/);
      const again = await runSync([...both, "--log-format", "json"]);
      const summary = again.stdout.trim().split("\n").map((line) => JSON.parse(line)).find((l) => l.summary);
      assert.equal(summary.fast_path, true);
      assert.equal(summary.unchanged, 3);

      const kept = await runSync([...both, "--prune"]);
      assert.equal(kept.code, 0, kept.stderr);
      assert.doesNotMatch(kept.stdout, /deleted/);
      assert.deepEqual(await usernames(db), ["alice", "bob", "carol"]);

      const onlyA = ["-f", join(dir, "a.json"), "-d", db.url, "--prune"];
      assert.equal((await runSync([...onlyA, "--check"])).code, 4);
      const pruned = await runSync(onlyA);
      assert.equal(pruned.code, 0, pruned.stderr);
      assert.match(pruned.stdout, /^deleted bob \(pruned: created by this tool, no longer in the file\)$/m);
      assert.deepEqual(await usernames(db), ["alice"]);
      assert.equal((await runSync([...both, "--check"])).code, 4, "the merged list wants bob and carol back");
    });

    test("$USERS_FILE with several paths separated by ':', relative ones read from the working directory", async (t) => {
      const db = await database(t);
      const cwd = tree({ "a.json": [alice], "teams/b.json": [bob] });
      const other = tree({ "c.json": [carol] });
      const run = await runSync([], { USERS_FILE: `a.json:teams:${join(other, "c.json")}`, DATABASE_URL: db.url }, cwd);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(await usernames(db), ["alice", "bob", "carol"]);
    });
  });
}
