/**
 * Issue 14, part 2: `--watch`, a sidecar that keeps the database in step with
 * its files. The users file sits in a directory laid out as the kubelet mounts
 * a Secret and is updated as the kubelet updates it; the database goes away
 * for real (a TCP proxy closed, an exclusive SQLite lock). Every test waits
 * for the line or row it needs, never a fixed time.
 */

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, test, type TestContext } from "node:test";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";
import { hashPassword } from "../sync.ts";
import {
  type Backend,
  backends,
  type RunningSync,
  runSync,
  startSync,
  type TestDatabase,
  testDatabase,
} from "./support/helpers.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const PW_VERIFY = join(root, "..", "shared", "tools", "barycenter-pw-verify");

/**
 * A directory as the kubelet mounts a Secret: the file in a timestamped
 * directory, `..data` linking to it, and `users.json -> ..data/users.json`.
 * `update` writes a new timestamped directory and renames a `..data_tmp` link
 * over `..data`, as the kubelet's atomic writer does.
 */
function secretVolume(users: unknown): { file: string; update(users: unknown): void } {
  const dir = mkdtempSync(join(tmpdir(), "user-sync-secret-"));
  let generation = 0;
  let current = "";
  const write = (content: unknown) => {
    const previous = current;
    current = `..2026_11_27_12_00_00.${String(generation++).padStart(9, "0")}`;
    mkdirSync(join(dir, current));
    writeFileSync(join(dir, current, "users.json"), typeof content === "string" ? content : JSON.stringify(content));
    symlinkSync(current, join(dir, "..data_tmp"));
    renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
    if (previous !== "") rmSync(join(dir, previous), { recursive: true });
  };
  write(users);
  symlinkSync("..data/users.json", join(dir, "users.json"));
  return { file: join(dir, "users.json"), update: write };
}

/**
 * A module to preload (`NODE_OPTIONS=--import`) that makes `fs.watch` fail as
 * it does when the inotify watches are used up: the only way to take file
 * events away from a process on this machine without being root.
 */
function withoutFileEvents(): string {
  const path = join(mkdtempSync(join(tmpdir(), "user-sync-preload-")), "no-file-events.mjs");
  writeFileSync(
    path,
    `import fs from "node:fs";
import { syncBuiltinESMExports } from "node:module";
fs.watch = () => { throw Object.assign(new Error("no inotify watches left"), { code: "ENOSPC" }); };
syncBuiltinESMExports();
`,
  );
  return path;
}

/** `--watch` on `file`, killed when the test ends if it is still running. */
function startWatch(
  t: TestContext,
  file: string,
  url: string,
  more: string[] = [],
  env: Record<string, string> = {},
): RunningSync {
  const running = startSync(["--watch", "--file", file, "--database-url", url, ...more], env);
  t.after(() => {
    if (running.child.exitCode === null) running.child.kill("SIGKILL");
  });
  return running;
}

/** Sends `signal` and returns how the run ended and how long it took to. */
async function stop(running: RunningSync, signal: NodeJS.Signals) {
  const sent = performance.now();
  running.child.kill(signal);
  const run = await running.result;
  return { ...run, ms: performance.now() - sent };
}

const usernames = async (db: TestDatabase) =>
  (await db.query("SELECT username FROM users ORDER BY username")).map((row) => row.username);

const alice = { username: "alice", password: "alice-password-1" };
const bob = { username: "bob", password: "bob-password-12" };

/**
 * The database going away for real, and coming back: PostgreSQL behind a TCP
 * proxy that is closed (connections cut, the port refusing) and reopened on
 * the same port; SQLite held under an exclusive lock by another connection.
 */
async function outage(t: TestContext, backend: Backend, db: TestDatabase) {
  if (backend.name === "sqlite") {
    return { url: db.url, down: () => db.query("BEGIN EXCLUSIVE"), up: () => db.query("COMMIT") };
  }
  const target = new URL(db.url);
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let port = 0;
  const up = () =>
    new Promise<void>((resolve) => {
      server = createServer((client) => {
        const upstream = connect(Number(target.port), target.hostname);
        for (const [a, b] of [[client, upstream], [upstream, client]]) {
          sockets.add(a);
          a.pipe(b);
          a.on("error", () => b.destroy());
          a.on("close", () => (sockets.delete(a), b.destroy()));
        }
      });
      server.listen(port, "127.0.0.1", () => {
        port = (server!.address() as { port: number }).port;
        resolve();
      });
    });
  const down = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server!.close(() => resolve());
    });
  await up();
  t.after(() => server?.listening && down());
  const proxied = new URL(db.url);
  proxied.port = String(port);
  return { url: proxied.href, down, up };
}

for (const backend of backends) {
  describe(`--watch (${backend.name})`, () => {
    for (const target of ["file", "directory"] as const) {
      test(`given the Secret's ${target}, picks up a new user within 3 s of the kubelet's ..data swap`, async (t) => {
        const db = await testDatabase(t, backend);
        const secret = secretVolume([alice]);
        const running = startWatch(t, target === "file" ? secret.file : dirname(secret.file), db.url);
        await running.waitFor(/users: 1 created/);
        const swapped = performance.now();
        secret.update([alice, bob]);
        await running.waitFor(/created bob/, 3000);
        const ms = performance.now() - swapped;
        assert.ok(ms < 3000, `bob created ${ms.toFixed(0)} ms after the swap`);
        assert.deepEqual(await usernames(db), ["alice", "bob"]);
        const run = await stop(running, "SIGTERM");
        assert.equal(run.code, 0, run.stderr);
      });
    }

    test("without file events it says so in one line, compares modification times, and still picks up the swap", async (t) => {
      const db = await testDatabase(t, backend);
      const secret = secretVolume([alice]);
      const running = startWatch(t, secret.file, db.url, [], { NODE_OPTIONS: `--import ${withoutFileEvents()}` });
      await running.waitFor(/users: 1 created/);
      secret.update([alice, bob]);
      await running.waitFor(/created bob/, 10_000);
      assert.deepEqual(await usernames(db), ["alice", "bob"]);
      const run = await stop(running, "SIGTERM");
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(run.stderr.split("\n").filter((line) => line !== "" && !line.startsWith("database: ")), [
        "warning: file events are not available (no inotify watches left (ENOSPC)); comparing modification times " +
        "every 1 s instead",
      ]);
    });

    test("survives an invalid file: the old users stay, one error line, and it recovers when the file is fixed", async (t) => {
      const db = await testDatabase(t, backend);
      const secret = secretVolume([alice]);
      const running = startWatch(t, secret.file, db.url);
      await running.waitFor(/users: 1 created/);
      const before = await db.query("SELECT * FROM users");
      secret.update('[{"username": "alice", "password": ');
      await running.waitFor(/error: re-sync failed, still watching: .*users\.json/);
      assert.deepEqual(await db.query("SELECT * FROM users"), before);
      secret.update([alice, bob]);
      await running.waitFor(/created bob/, 10_000);
      assert.deepEqual(await usernames(db), ["alice", "bob"]);
      const run = await stop(running, "SIGTERM");
      assert.equal(run.code, 0, run.stderr);
      assert.equal(run.stderr.split("\n").filter((line) => line.startsWith("error:")).length, 1, run.stderr);
      assert.doesNotMatch(run.stdout + run.stderr, /alice-password-1|\$argon2/);
    });

    test("survives the database going away and coming back, and then applies what changed meanwhile", async (t) => {
      const db = await testDatabase(t, backend);
      const database = await outage(t, backend, db);
      const secret = secretVolume([alice]);
      const running = startWatch(t, secret.file, database.url, ["--wait", "0", "--resync-interval", "0.5"]);
      await running.waitFor(/users: 1 created/);
      await database.down();
      secret.update([alice, bob]);
      await running.waitFor(/error: re-sync failed, still watching: /);
      assert.deepEqual(await usernames(db), ["alice"]);
      await database.up();
      await running.waitFor(/created bob/);
      assert.deepEqual(await usernames(db), ["alice", "bob"]);
    });

    test("puts back a password changed by hand in the database at the next interval", async (t) => {
      const db = await testDatabase(t, backend);
      const secret = secretVolume([alice]);
      const running = startWatch(t, secret.file, db.url, ["--resync-interval", "1"]);
      await running.waitFor(/users: 1 created/);
      const byHand = await hashPassword("changed-by-hand-1");
      await db.query(`UPDATE users SET password_hash = '${byHand}' WHERE username = 'alice'`);
      await running.waitFor(/updated alice: password/);
      const [{ password_hash: hash }] = await db.query("SELECT password_hash FROM users WHERE username = 'alice'");
      assert.notEqual(hash, byHand);
      if (!existsSync(PW_VERIFY)) {
        t.skip("../shared/tools/barycenter-pw-verify is absent: Barycenter's own verification not checked");
      } else {
        const input = `a\t${Buffer.from(alice.password).toString("hex")}\t${hash}\n`;
        const verdict = spawnSync(PW_VERIFY, { input, encoding: "utf8" }).stdout.split("\t");
        assert.deepEqual(verdict.slice(1, 3), ["OK", "OK"]);
      }
    });

    test("no-change re-syncs print nothing until the status period, then one status line", async (t) => {
      const db = await testDatabase(t, backend);
      const secret = secretVolume([alice, bob]);
      const running = startWatch(t, secret.file, db.url, ["--resync-interval", "0.2", "--log-format", "json"], {
        USER_SYNC_STATUS_SECONDS: "1.5",
      });
      await running.waitFor(/in step/);
      // With a re-sync every 0.2 s, the signal may meet one running (143): only the lines before it are compared.
      const run = await stop(running, "SIGTERM");
      const lines = run.stdout.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line));
      assert.deepEqual(lines.slice(0, 5).map((line) => line.msg.replace(/\d\d:\d\d$/, "HH:MM")), [
        `watching ${secret.file} for changes; re-sync every 0.2 s in any case`,
        "created alice: password",
        "created bob: password",
        "users: 2 created, 0 updated, 0 unchanged",
        "watching 1 file; 2 users in step; last change HH:MM",
      ]);
      assert.ok(lines.length <= 6, run.stdout);
      // Several re-syncs ran silently between the summary and the status line.
      assert.ok(lines[4].resyncs >= 3, `status after ${lines[4].resyncs} re-syncs`);
      assert.equal(lines[4].users, 2);
      // The database line once for the watcher, not once per re-sync.
      const stderr = run.stderr.split("\n").filter((line) => line !== "" && !/received SIGTERM/.test(line));
      assert.deepEqual(stderr.map((line) => JSON.parse(line).msg.replace(/ .*/, "")), ["database:"]);
    });

    test("SIGTERM while idle exits 0 at once", async (t) => {
      const db = await testDatabase(t, backend);
      const running = startWatch(t, secretVolume([alice]).file, db.url);
      await running.waitFor(/users: 1 created/);
      const run = await stop(running, "SIGTERM");
      assert.equal(run.code, 0, run.stderr);
      assert.ok(run.ms < 2000, `exited ${run.ms.toFixed(0)} ms after SIGTERM`);
      assert.match(run.stdout, /received SIGTERM: stopping; no sync was running/);
    });

    test("SIGTERM during a re-sync exits 143 with nothing committed", async (t) => {
      const db = await testDatabase(t, backend);
      const secret = secretVolume([alice]);
      const running = startWatch(t, secret.file, db.url);
      await running.waitFor(/users: 1 created/);
      const many = Array.from({ length: 300 }, (_, i) => ({ username: `user${i}`, password: `password-of-${i}` }));
      secret.update([alice, ...many]);
      await running.waitFor(/hashing passwords: \d+\/300/);
      const run = await stop(running, "SIGTERM");
      assert.equal(run.code, 143, run.stderr);
      assert.match(run.stderr, /received SIGTERM: stopping; nothing was changed|rolling back; nothing was changed/);
      assert.deepEqual(await usernames(db), ["alice"]);
    });
  });
}

describe("--watch options", () => {
  test("--watch with --validate validates once and exits 0, with no database", async () => {
    const run = await runSync(["--watch", "--validate", "--file", secretVolume([alice]).file], {
      DATABASE_URL: "postgres://u:p@127.0.0.1:1/db",
    });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /users\.json: 1 user, valid/);
  });

  for (const mode of ["--dry-run", "--check"]) {
    test(`--watch with ${mode} is refused with exit 2`, async () => {
      const run = await runSync(["--watch", mode, "--file", secretVolume([alice]).file]);
      assert.equal(run.code, 2);
      assert.match(run.stderr, new RegExp(`--watch and ${mode} exclude each other`));
    });
  }

  test("--resync-interval below 0.1 s, or without --watch, is refused with exit 2", async () => {
    const file = secretVolume([alice]).file;
    const tooShort = await runSync(["--watch", "--resync-interval", "0.05", "--file", file]);
    assert.equal(tooShort.code, 2);
    assert.match(tooShort.stderr, /--resync-interval must be a number of at least 0\.1/);
    const alone = await runSync(["--resync-interval", "5", "--validate", "--file", file]);
    assert.equal(alone.code, 2);
    assert.match(alone.stderr, /--resync-interval applies only with --watch/);
  });
});

describe("the sidecar example", () => {
  const manifest = readFileSync(join(root, "deploy", "kubernetes", "barycenter-with-user-sync-sidecar.yaml"), "utf8");
  const pod = parseAllDocuments(manifest).map((d) => d.toJS()).find((d) => d.kind === "Deployment").spec.template.spec;
  const hashedExample = join(root, "examples", "users.hashed.json");

  test("has the one-shot init container first, then the watcher as a native sidecar, the Secret mounted whole", () => {
    const [once, watcher] = pod.initContainers;
    assert.equal(once.restartPolicy, undefined);
    assert.ok(!once.args.includes("--watch"));
    assert.equal(watcher.restartPolicy, "Always");
    assert.ok(watcher.args.includes("--watch"));
    for (const container of [once, watcher]) {
      for (const mount of container.volumeMounts) assert.equal(mount.subPath, undefined, "subPath never sees updates");
    }
  });

  for (const index of [0, 1]) {
    test(`init container ${index + 1}'s arguments, run against the example file with --validate, succeed`, async () => {
      const args: string[] = pod.initContainers[index].args;
      const file = args.indexOf("--file");
      const run = await runSync([...args.map((arg, i) => (i === file + 1 ? hashedExample : arg)), "--validate"]);
      assert.equal(run.code, 0, run.stderr);
    });
  }
});
