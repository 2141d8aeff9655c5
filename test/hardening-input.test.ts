/**
 * Hardening, round two (issue 12, points 6 to 14): input that used to slip
 * through, and what the tool does with it now. Each point is tested as a user
 * meets it (the CLI's exit status, its message and the rows in the database,
 * on both backends where the database is involved), and hashes are judged by
 * Barycenter's own verifier, `../shared/tools/barycenter-pw-verify`, where it
 * is at hand.
 *
 * `sync.ts` is imported as a namespace, so that this file also runs against
 * an older `sync.ts` that lacks some of these exports: only the tests that
 * call them fail there, and the CLI tests say what the older code does.
 */

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Ajv2020 } from "ajv/dist/2020.js";
import { argon2Hash, argon2Verify } from "../deps.ts";
import * as sync from "../sync.ts";
import {
  type Backend,
  backends,
  runSync,
  SYNC,
  type TestDatabase,
  testDatabase,
  usersFile,
  usersRows,
} from "./support/helpers.ts";

const root = fileURLToPath(new URL("..", import.meta.url));

const database = testDatabase;

/** Rows of `users`, or none when the table was never created (a refused file opens no connection). */
async function rowsOf(backend: Backend, db: TestDatabase) {
  return await backend.tableExists(db, "users") ? await usersRows(db) : [];
}

/** A run of the CLI on `users` against `db`. */
const syncFile = (db: TestDatabase, users: unknown, ...args: string[]) =>
  runSync(["--file", usersFile(users), "--database-url", db.url, ...args]);

/** Whether the tool's validation accepts the file, in process. */
function toolAccepts(users: unknown): boolean {
  try {
    sync.validateUsers(users);
    return true;
  } catch (error) {
    if (error instanceof sync.InputError) return false;
    throw error;
  }
}

/** A small deterministic generator, so that a failure can be replayed. */
function random(seed: number): (n: number) => number {
  let state = seed >>> 0;
  return (n) => {
    state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return state % n;
  };
}

// ---------------------------------------------------------------------------
// Barycenter's own verifier

const VERIFIER = fileURLToPath(new URL("../../shared/tools/barycenter-pw-verify", import.meta.url));
const noVerifier = existsSync(VERIFIER)
  ? false
  : "../shared/tools/barycenter-pw-verify is absent: Barycenter's own verifier cannot judge these hashes here";

interface Verdict {
  parse: string;
  verify: string;
  detail: string;
}

/** Runs Barycenter's own password check on each (password, PHC string). */
function barycenter(records: { password: string; hash: string }[]): Verdict[] {
  const input = records.map(({ password, hash }, i) => `${i}\t${Buffer.from(password).toString("hex")}\t${hash}\n`);
  const run = spawnSync(VERIFIER, [], { input: input.join(""), encoding: "utf8", maxBuffer: 1 << 24 });
  assert.equal(run.status, 0, run.stderr);
  const verdicts: Verdict[] = [];
  for (const line of run.stdout.trim().split("\n")) {
    const [id, parse, verify, detail = ""] = line.split("\t");
    verdicts[Number(id)] = { parse, verify, detail };
  }
  assert.equal(verdicts.filter(Boolean).length, records.length, run.stdout);
  return verdicts;
}

/**
 * Whether Barycenter can log in with a hash: the string parses and the
 * verification runs to an answer (a wrong password is an answer; invalid
 * base64 or parameters are not).
 */
const loginWorks = (verdict: Verdict) =>
  verdict.parse === "OK" && (verdict.verify === "OK" || / err=invalid password$/.test(verdict.detail));

// ---------------------------------------------------------------------------
// 6. Non-canonical base64 in password_hash

const HASH = "dbRsz2lxXfKo/L+UIjwhMv0UF9xtKMAI/rfG85m2B1A";
const SALT = "rwdZGSnzI076qxaSogfRsg";
const phc = (params: string, salt = SALT, hash = HASH) => `$argon2id$v=19$${params}$${salt}$${hash}`;

/** Strings Barycenter's base64ct refuses: unused bits set, or a length of 4n+1 characters. */
const NON_CANONICAL = [
  // The issue's own example: the salt's last character has bits set that base64 leaves unused.
  "$argon2id$v=19$m=64,t=1,p=1$rwdZGSnzI076qxaSogfRsh$dbRsz2lxXfKo/L+UIjwhMv0UF9xtKMAI/rfG85m2B1A",
  phc("m=64,t=1,p=1", "rwdZGSnzI076q"), // 13 characters
  phc("m=64,t=1,p=1", "rwdZGSnzI076qxaSo"), // 17
  phc("m=64,t=1,p=1", "rwdZGSnzI076qxaSogfRs"), // 21
  phc("m=64,t=1,p=1", SALT, HASH.slice(0, -1) + "B"), // the hash's last character has bits set
  phc("m=64,t=1,p=1", SALT, HASH.slice(0, 41)), // a hash of 41 characters
];

/** Their canonical neighbours, which Barycenter reads. */
const CANONICAL = [
  phc("m=64,t=1,p=1"),
  phc("m=64,t=1,p=1", "rwdZGSnzI076"), // 12 characters
  phc("m=64,t=1,p=1", "rwdZGSnzI076qxaS"), // 16
  phc("m=64,t=1,p=1", "rwdZGSnzI076qxaSogfR"), // 20
  phc("m=64,t=1,p=1", "rwdZGSnzI0A"), // 11: 8 bytes, Argon2's shortest salt
  phc("m=64,t=1,p=1", SALT, HASH.slice(0, 40)), // 40
];

/** A PHC string with a random salt and hash within the tool's lengths, canonical or not by chance. */
function randomPhc(rand: (n: number) => number): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const text = (length: number) => Array.from({ length }, () => alphabet[rand(64)]).join("");
  const b64 = (min: number, max: number) => {
    const length = min + rand(max - min + 1);
    // Half left to chance (about one in four or sixteen is canonical), half canonical on purpose: random bytes
    // encoded, as many as fit in `length` characters.
    if (rand(2) === 0) return text(length);
    const bytes = Array.from({ length: Math.floor((length * 3) / 4) }, () => rand(256));
    return Buffer.from(bytes).toString("base64").replace(/=+$/, "");
  };
  const p = 1 + rand(4);
  return phc(`m=${8 * p + rand(64)},t=${1 + rand(2)},p=${p}`, b64(11, 64), b64(16, 86));
}

for (const backend of backends) {
  describe(`6. non-canonical base64 in password_hash, on ${backend.name}`, () => {
    test("is refused with its place, without printing the hash, and nothing is stored; canonical ones are stored as given", async (t) => {
      const db = await database(t, backend);
      const refused = await syncFile(
        db,
        NON_CANONICAL.map((hash, i) => ({ username: `user${i}`, password_hash: hash })),
      );
      assert.equal(refused.code, 2, refused.stdout + refused.stderr);
      for (let i = 0; i < NON_CANONICAL.length; i++) {
        assert.match(
          refused.stderr,
          new RegExp(`users\\[${i}\\]\\.password_hash: must have its salt and hash in canonical base64`),
        );
      }
      for (const hash of NON_CANONICAL) assert.ok(!refused.stderr.includes(hash.split("$").at(-1)!));
      assert.deepEqual(await rowsOf(backend, db), []);

      const users = CANONICAL.map((hash, i) => ({ username: `user${i}`, password_hash: hash }));
      const stored = await syncFile(db, users);
      assert.equal(stored.code, 0, stored.stderr);
      assert.deepEqual((await usersRows(db)).map((r) => r.password_hash), CANONICAL);
    });
  });
}

describe("6. canonical base64, judged by Barycenter's own verifier", () => {
  test("isCanonicalBase64 decodes and encodes again", () => {
    for (const text of ["", "AA", "AAA", "AAAA", "rwdZGSnzI076qxaSogfRsg", "+/+/"]) {
      assert.equal(sync.isCanonicalBase64(text), true, text);
    }
    for (const text of ["A", "AB", "AAB", "rwdZGSnzI076qxaSogfRsh", "rwdZGSnzI076q", "AA==", "A-_A", "AA AA"]) {
      assert.equal(sync.isCanonicalBase64(text), false, text);
    }
  });

  test(
    "what the tool refuses Barycenter cannot log in with; what it accepts, Barycenter can",
    { skip: noVerifier },
    () => {
      const records = [...NON_CANONICAL, ...CANONICAL].map((hash) => ({ password: "x", hash }));
      const verdicts = barycenter(records);
      NON_CANONICAL.forEach((hash, i) => {
        assert.equal(toolAccepts([{ username: "u", password_hash: hash }]), false, hash);
        assert.equal(loginWorks(verdicts[i]), false, `${hash}: ${JSON.stringify(verdicts[i])}`);
      });
      CANONICAL.forEach((hash, i) => {
        assert.equal(toolAccepts([{ username: "u", password_hash: hash }]), true, hash);
        assert.equal(loginWorks(verdicts[NON_CANONICAL.length + i]), true, hash);
      });
    },
  );

  test(
    "400 random salts and hashes: the tool accepts exactly those Barycenter can verify",
    { skip: noVerifier },
    () => {
      const rand = random(6);
      const hashes = Array.from({ length: 400 }, () => randomPhc(rand));
      const verdicts = barycenter(hashes.map((hash) => ({ password: "x", hash })));
      let accepted = 0;
      hashes.forEach((hash, i) => {
        const tool = toolAccepts([{ username: "u", password_hash: hash }]);
        if (tool) accepted++;
        assert.equal(tool, loginWorks(verdicts[i]), `${hash}: ${JSON.stringify(verdicts[i])}`);
      });
      // Both answers must be well represented, or the comparison proves little.
      assert.ok(accepted > 100 && accepted < 300, `${accepted} of 400 accepted`);
    },
  );

  test("a hash from hash-password verifies in Barycenter with its password", { skip: noVerifier }, async () => {
    const password = "pässwörd🔐 from the tool";
    const hash = await sync.hashPassword(password);
    assert.equal(toolAccepts([{ username: "u", password_hash: hash }]), true);
    const [right, wrong] = barycenter([{ password, hash }, { password: "other", hash }]);
    assert.deepEqual([right.parse, right.verify, wrong.verify], ["OK", "OK", "FAIL"]);
  });
});

// ---------------------------------------------------------------------------
// 7. Costs without a ceiling

const TOO_COSTLY = [
  "m=9999999,t=9999,p=255", // the issue's: 9.5 GiB, days to verify
  "m=262145,t=1,p=1", // 1 KiB over 256 MiB
  "m=19456,t=129,p=1", // Barycenter's memory, one pass more than 64 times its work
  "m=8,t=311297,p=1", // little memory, but more work than 64 times Barycenter's
];
const AFFORDABLE = ["m=262144,t=1,p=1", "m=19456,t=128,p=1", "m=8,t=311296,p=1", "m=2040,t=1,p=255"];

for (const backend of backends) {
  describe(`7. a ceiling on what a password_hash costs to verify, on ${backend.name}`, () => {
    test("a hash beyond 256 MiB or 64 times Barycenter's work is refused, naming the user, the limits and Barycenter's own", async (t) => {
      const db = await database(t, backend);
      const users = TOO_COSTLY.map((params, i) => ({ username: `heavy-${i}`, password_hash: phc(params) }));
      const run = await syncFile(db, users);
      assert.equal(run.code, 2, run.stdout + run.stderr);
      TOO_COSTLY.forEach((_, i) => {
        const line = run.stderr.split("\n").find((l) => l.includes(`users[${i}].password_hash`)) ?? "";
        assert.match(
          line,
          new RegExp(`users\\[${i}\\]\\.password_hash \\(user "heavy-${i}"\\): verifying it would take`),
        );
        assert.match(line, /the limits are 256 MiB \(m at most 262144\) and 64 times \(m × t at most 2490368\)/);
        assert.match(line, /Barycenter's own being m=19456,t=2,p=1/);
      });
      assert.match(run.stderr, /heavy-0"\): verifying it would take 9\.5 GiB of memory/);
      assert.ok(!run.stderr.includes(HASH) && !run.stderr.includes(SALT));
      assert.deepEqual(await rowsOf(backend, db), []);

      const ok = await syncFile(
        db,
        AFFORDABLE.map((params, i) => ({ username: `ok-${i}`, password_hash: phc(params) })),
      );
      assert.equal(ok.code, 0, ok.stderr);
      assert.deepEqual((await usersRows(db)).map((r) => r.password_hash), AFFORDABLE.map((params) => phc(params)));
    });

    test("a stored hash beyond the limits is replaced without being verified, even when it holds the file's password", async (t) => {
      const db = await database(t, backend);
      const users = [{ username: "alice", password: "alice-Costly-pw" }];
      assert.equal((await syncFile(db, users)).code, 0);
      // Barycenter's admin API stores any Argon2 string: here one that needs 256 MiB and 8 KiB.
      await db.query(`UPDATE users SET password_hash = '${await costlyHashOfAlice()}' WHERE username = 'alice'`);
      const run = await syncFile(db, users);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /^updated alice: password$/m);
      const [row] = await usersRows(db);
      assert.match(String(row.password_hash), /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
      assert.equal(await argon2Verify(String(row.password_hash), "alice-Costly-pw"), true);
    });
  });
}

let costlyHash: Promise<string> | undefined;
/** alice-Costly-pw hashed with m one block past 256 MiB: cheap to make once (one pass), and over the limit. */
function costlyHashOfAlice(): Promise<string> {
  costlyHash ??= argon2Hash("alice-Costly-pw", { ...sync.ARGON2_OPTIONS, memoryCost: 256 * 1024 + 8, timeCost: 1 });
  return costlyHash;
}

describe("7. the ceiling, judged by Barycenter's own verifier", () => {
  test("argon2CostProblem: within the limits nothing, beyond them the reason", () => {
    for (const params of AFFORDABLE) assert.equal(sync.argon2CostProblem(phc(params)), undefined, params);
    for (const params of TOO_COSTLY) assert.match(sync.argon2CostProblem(phc(params)) ?? "", /verifying it would/);
    // Any Argon2 variant: stored hashes are checked with it too.
    assert.match(sync.argon2CostProblem("$argon2i$v=19$m=300000,t=1,p=1$x$y") ?? "", /293 MiB of memory/);
    assert.deepEqual(sync.ARGON2_HASH_LIMITS, { memoryKiB: 262144, work: 64 * 19456 * 2, lanes: 255 });
  });

  test("every hash at the limits is one Barycenter reads", { skip: noVerifier }, () => {
    const verdicts = barycenter(AFFORDABLE.map((params) => ({ password: "x", hash: phc(params) })));
    AFFORDABLE.forEach((params, i) => assert.equal(loginWorks(verdicts[i]), true, `${params}: ${verdicts[i].detail}`));
  });
});

// ---------------------------------------------------------------------------
// 8. users.schema.json is as strict as it can be

describe("8. users.schema.json and the tool agree", () => {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  const schema = JSON.parse(readFileSync(join(root, "users.schema.json"), "utf8"));
  const validate = ajv.compile(schema);
  const user = schema.$defs.User.properties;

  /** The tool's verdict and the schema's on one user, `{username: "u", password: "p"}` with `fields` over it. */
  function verdicts(fields: Record<string, unknown>): { tool: boolean; schema: boolean } {
    // Through JSON, as a file would be: an undefined password is left out.
    const users = JSON.parse(JSON.stringify([{ username: "u", password: "p", ...fields }]));
    return { tool: toolAccepts(users), schema: validate(users) as boolean };
  }

  test("the issue's examples: p=256 is refused by the schema; m=15,p=2 is refused by the tool and named in the description", () => {
    const p256 = phc("m=2048,t=1,p=256");
    assert.deepEqual(verdicts({ password: undefined, password_hash: p256 }), { tool: false, schema: false });
    const m15p2 = phc("m=15,t=1,p=2");
    assert.deepEqual(verdicts({ password: undefined, password_hash: m15p2 }), { tool: false, schema: true });
    assert.match(user.password_hash.description, /m ≥ 8 × p and m × t ≤ 2490368/);
  });

  test("every value of every field: the schema refuses what the tool refuses, but for rules its descriptions name", () => {
    const rand = random(8);
    const hashes = [
      ...NON_CANONICAL,
      ...CANONICAL,
      ...TOO_COSTLY.map((params) => phc(params)),
      ...AFFORDABLE.map((params) => phc(params)),
      phc("m=15,t=1,p=2"),
      phc("m=2048,t=1,p=256"),
      phc("m=7,t=1,p=1"),
      phc("m=064,t=1,p=1"),
      phc("m=64,t=0,p=1"),
      phc("m=64,t=1,p=1", "rwdZGSnzI0"), // 10 characters: 7 bytes, too short a salt
      phc("m=64,t=1,p=1", "A".repeat(64)),
      phc("m=64,t=1,p=1", "A".repeat(66)),
      phc("m=64,t=1,p=1", SALT, "A".repeat(86)),
      phc("m=64,t=1,p=1", SALT, "A".repeat(87)),
      phc("m=64,t=1,p=1", SALT, "A".repeat(14)),
      phc("m=64,t=1,p=1", SALT, "A".repeat(16)),
      "$argon2i$v=19$m=64,t=1,p=1$" + SALT + "$" + HASH,
      "$argon2id$v=16$m=64,t=1,p=1$" + SALT + "$" + HASH,
      ...Array.from({ length: 300 }, () => randomPhc(rand)),
    ];
    const cases: Record<string, unknown>[] = [
      ...[
        "alice",
        "",
        " a",
        "a ",
        "a\u00a0",
        "a\tb",
        "a\u0000",
        "a\u0085b",
        "\ud800",
        "a\udc00b",
        "\u202eevil",
        "a\u2028b",
        "a\u2029",
        "zero\u200bwidth",
        "\ufeffbom",
        "Jos\u00e9",
        "😀".repeat(255),
        "😀".repeat(256),
        "x".repeat(255),
        "x".repeat(256),
      ].map((username) => ({ username })),
      ...[
        "p",
        "",
        "line1\nline2",
        "trailing\r",
        "tab\there",
        "del\u007f",
        "nel\u0085",
        "\u202ertl",
        "\ud800",
        "😀".repeat(1024),
        "😀".repeat(1025),
        "x".repeat(1025),
      ].map((password) => ({ password })),
      ...hashes.map((password_hash) => ({ password: undefined, password_hash })),
      ...["/run/secrets/a", "", "a\nb", "x".repeat(4096), "x".repeat(4097), "😀".repeat(4096)].map((password_file) => ({
        password: undefined,
        password_file,
      })),
      ...["ALICE_PW", "1X", "A-B", "_"].map((password_env) => ({ password: undefined, password_env })),
      ...[
        null,
        "a@example.com",
        "a\u0000b@example.com",
        "\ud800x@example.com",
        "a\u202e@example.com",
        "a\u2028@example.com",
        "jos\u00e9@b\u00fccher.de",
        "x@xn--bcher-kva.example",
        "a..b@example.com",
        "a b@example.com",
        "@example.com",
        "a@",
        `${"x".repeat(64)}@${"d".repeat(63)}.${"e".repeat(63)}.${"f".repeat(61)}`,
        `${"x".repeat(64)}@${"d".repeat(63)}.${"e".repeat(63)}.${"f".repeat(62)}`,
        `${"😀".repeat(64)}@${"d".repeat(63)}.${"e".repeat(63)}.${"f".repeat(61)}`,
        5,
      ].map((email) => ({ email })),
      ...["a", "", "k\u0000", "\ud800", "x".repeat(255), "x".repeat(256), "\u202eok"].map((key) => ({
        properties: { [key]: 1 },
      })),
      ...["__proto__", "constructor", "prototype"].map((key) => ({ properties: JSON.parse(`{"${key}": 1}`) })),
    ];
    let refusedByBoth = 0;
    for (const fields of cases) {
      const { tool, schema } = verdicts(fields);
      if (!tool && !schema) refusedByBoth++;
      if (tool === schema) continue;
      // Only the rules a pattern cannot compute may part them, and only the tool's way: the descriptions say them.
      const hash = typeof fields.password_hash === "string"
        ? /m=(\d+),t=(\d+),p=(\d+)/.exec(fields.password_hash)
        : null;
      const [m, t, p] = (hash ?? []).slice(1).map(Number);
      assert.ok(
        schema && !tool && hash !== null && (m < 8 * p || m * t > 2490368),
        `tool ${tool ? "accepts" : "refuses"}, schema ${schema ? "accepts" : "refuses"}: ${JSON.stringify(fields)}`,
      );
    }
    assert.ok(refusedByBoth > 100, `${refusedByBoth} cases refused by both`);
  });

  test("what no schema can check is in its descriptions", () => {
    assert.match(schema.description, /a key given twice in one object/);
    assert.match(schema.description, /larger than 16 MiB/);
    assert.match(user.username.description, /unique ignoring letter case and Unicode normalisation/);
    assert.match(user.properties.description, /nested more than 32 levels deep/);
    assert.match(user.properties.description, /numbers that would not be stored as written/);
    assert.equal(schema.anyOf[0].maxItems, 50000);
  });

  test("integerRangePattern matches exactly the numbers of its range", () => {
    for (const [min, max] of [[1, 255], [8, 262144], [1, 311296], [37, 4021]]) {
      const pattern = new RegExp(`^${sync.integerRangePattern(min, max)}$`);
      for (let n = 0; n <= max + 1000; n++) {
        if (pattern.test(String(n)) !== (n >= min && n <= max)) assert.fail(`${min}..${max}: ${n}`);
      }
      for (const text of ["01", "0" + String(max), "", "-1", "1e3", " 8"]) {
        assert.equal(pattern.test(text), false, text);
      }
    }
  });
});

// ---------------------------------------------------------------------------
// 9. hash-password on a terminal, with characters split across reads

/** What to type once the output shows `after`: chunks written one by one, so the program reads them apart. */
interface ChunkedKeystrokes {
  after: string;
  chunks: Uint8Array[];
}

/**
 * Runs a command on a pseudo-terminal (util-linux `script`), typing each
 * step's chunks once its prompt is on the screen. Between chunks it pauses:
 * nothing on the screen shows that the program has read a chunk (the password
 * is not echoed), and without a pause the terminal would hand over the chunks
 * as one read, which is the case that always worked.
 */
function onTerminal(command: string, steps: ChunkedKeystrokes[]) {
  return new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    const child = spawn("script", ["-q", "-e", "-c", command, "/dev/null"], {
      env: { PATH: process.env.PATH ?? "", TERM: "xterm" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let output = "";
    let seen = 0;
    let typing = false;
    const pending = [...steps];
    const type = async () => {
      typing = true;
      while (pending.length > 0) {
        const at = output.indexOf(pending[0].after, seen);
        if (at < 0) break;
        seen = at + pending[0].after.length;
        for (const chunk of pending.shift()!.chunks) {
          child.stdin.write(chunk);
          await new Promise((done) => setTimeout(done, 150));
        }
      }
      typing = false;
    };
    child.stdout.setEncoding("utf8").on("data", (d) => {
      output += d;
      if (!typing) type();
    });
    child.once("error", reject);
    child.once("close", (code) => {
      child.stdin.end();
      resolve({ code, output });
    });
  });
}

/** `text` as UTF-8, cut into pieces at the given byte offsets (each inside a character of several bytes). */
function cutBytes(text: string, ...offsets: number[]): Uint8Array[] {
  const bytes = Buffer.from(text);
  return [0, ...offsets].map((start, i) => bytes.subarray(start, offsets[i] ?? bytes.length));
}

describe("9. hash-password on a terminal decodes characters split across reads", () => {
  const hashPassword = `${process.execPath} ${SYNC} hash-password`;

  test("pässwörd🔐 typed in pieces that split ä, ö and 🔐 hashes pässwörd🔐", async () => {
    const password = "pässwörd🔐";
    // p ä(2 bytes) s s w ö(2) r d 🔐(4): cut inside ä, inside ö, and twice inside 🔐, then Enter.
    const typed = cutBytes(`${password}\r`, 2, 7, 11, 13);
    assert.ok(typed.every((chunk) => chunk.length > 0) && typed.length === 5);
    const run = await onTerminal(hashPassword, [{ after: "Password: ", chunks: typed }, {
      after: "Repeat:",
      chunks: typed,
    }]);
    assert.equal(run.code, 0, run.output);
    const hash = /\$argon2id\$\S+/.exec(run.output)?.[0] ?? "";
    assert.equal(await argon2Verify(hash, password), true, "the printed hash is not that of the typed password");
    assert.ok(!run.output.includes("ässw"), "the password was echoed");
  });

  test("bytes that are not UTF-8 are refused, not hashed as U+FFFD", async () => {
    const typed = [Uint8Array.from([0x61, 0xff, 0x62, 0x0d])];
    const run = await onTerminal(hashPassword, [{ after: "Password: ", chunks: typed }, {
      after: "Repeat:",
      chunks: typed,
    }]);
    assert.equal(run.code, 2, run.output);
    assert.match(run.output, /standard input is not UTF-8 text/);
    assert.doesNotMatch(run.output, /\$argon2id\$/);
  });
});

// ---------------------------------------------------------------------------
// 10. Passwords no one can type

for (const backend of backends) {
  describe(`10. control characters in passwords, from every source, on ${backend.name}`, () => {
    const rule = "must not contain control characters \\(such as a line break or a tab\\): Barycenter's login form";

    test("in password: refused at validation, naming the user and the rule, never the value", async (t) => {
      const db = await database(t, backend);
      const run = await syncFile(db, [
        { username: "alice", password: "Secret-Line-A\nSecret-Line-B" },
        { username: "bob", password: "Secret-Trailing-CR\r" },
        { username: "carol", password: "Secret\tTab-C" },
        { username: "dave", password: "Secret-DEL\u007f" },
      ]);
      assert.equal(run.code, 2, run.stdout + run.stderr);
      for (const [i, name] of ["alice", "bob", "carol", "dave"].entries()) {
        assert.match(run.stderr, new RegExp(`users\\[${i}\\]\\.password \\(user "${name}"\\): ${rule}`));
      }
      assert.doesNotMatch(run.stdout + run.stderr, /Secret/);
      assert.deepEqual(await rowsOf(backend, db), []);
    });

    test("in password_file (one trailing newline trimmed) and password_env: refused the same way", async (t) => {
      const db = await database(t, backend);
      const dir = mkdtempSync(join(tmpdir(), "user-sync-control-"));
      writeFileSync(join(dir, "two-lines"), "Secret-Line-One\nSecret-Line-Two\n");
      // One trailing newline is trimmed, not two: what stays is a line break.
      writeFileSync(join(dir, "two-newlines"), "Secret-Two-Newlines\n\n");
      writeFileSync(join(dir, "tab"), "Secret\tTabbed\n");
      const file = join(dir, "users.json");
      writeFileSync(
        file,
        JSON.stringify([
          { username: "erin", password_file: "two-lines" },
          { username: "frank", password_file: "two-newlines" },
          { username: "grace", password_file: "tab" },
          { username: "heidi", password_env: "HEIDI_PASSWORD" },
        ]),
      );
      const run = await runSync(["--file", file, "--database-url", db.url], {
        HEIDI_PASSWORD: "Secret-Env\nSecond-Line",
      });
      assert.equal(run.code, 2, run.stdout + run.stderr);
      for (const [i, name] of ["erin", "frank", "grace"].entries()) {
        assert.match(
          run.stderr,
          new RegExp(`users\\[${i}\\]\\.password_file \\(user "${name}"\\): the password it holds ${rule}`),
        );
      }
      assert.match(
        run.stderr,
        new RegExp(`users\\[3\\]\\.password_env \\(user "heidi"\\): the password it holds ${rule}`),
      );
      assert.doesNotMatch(run.stdout + run.stderr, /Secret|Second-Line/);
      assert.deepEqual(await rowsOf(backend, db), []);
    });

    test("what is left after the one trailing newline is trimmed is stored, and C1 characters are no concern", async (t) => {
      const db = await database(t, backend);
      const dir = mkdtempSync(join(tmpdir(), "user-sync-control-ok-"));
      writeFileSync(join(dir, "crlf"), "alice-from-secret\r\n");
      const file = join(dir, "users.json");
      writeFileSync(
        file,
        JSON.stringify([{ username: "alice", password_file: "crlf" }, { username: "bob", password: "b\u0085b" }]),
      );
      const run = await runSync(["--file", file, "--database-url", db.url]);
      assert.equal(run.code, 0, run.stderr);
      const [alice, bob] = await usersRows(db);
      assert.equal(await argon2Verify(String(alice.password_hash), "alice-from-secret"), true);
      assert.equal(await argon2Verify(String(bob.password_hash), "b\u0085b"), true);
    });
  });
}

describe("10. control characters in passwords given to hash-password", () => {
  test("from a pipe: refused after the one trailing newline is trimmed, nothing on standard output", () => {
    for (const input of ["Pipe-Line-1\nPipe-Line-2\n", "Pipe\tSecret\n", "Pipe-Secret\n\n", "Pipe-DEL\u007f"]) {
      const run = spawnSync(process.execPath, [SYNC, "hash-password"], { input, encoding: "utf8", env: { PATH: "" } });
      assert.equal(run.status, 2, JSON.stringify(input));
      assert.equal(run.stdout, "");
      assert.match(run.stderr, /the password must not contain control characters \(such as a line break or a tab\)/);
      assert.doesNotMatch(run.stderr, /Pipe/);
    }
  });

  test("on a terminal: a typed tab is refused", async () => {
    const typed = [Buffer.from("Typed\tSecret\r")];
    const run = await onTerminal(`${process.execPath} ${SYNC} hash-password`, [
      { after: "Password: ", chunks: typed },
      { after: "Repeat:", chunks: typed },
    ]);
    assert.equal(run.code, 2, run.output);
    assert.match(run.output, /the password must not contain control characters/);
    assert.doesNotMatch(run.output, /\$argon2id\$|Secret/);
  });
});

// ---------------------------------------------------------------------------
// 11. The duplicate-key check covers the whole file

for (const backend of backends) {
  describe(`11. a key given twice is found wherever it stands, on ${backend.name}`, () => {
    test("after a number of 401 digits, or of 100,000, the second password is refused, not stored", async (t) => {
      const db = await database(t, backend);
      const exact = (digits: number) => `1.${"0".repeat(digits - 1)}`; // long, yet exactly 1
      for (const digits of [401, 100_000]) {
        const text = `[
  {"username": "alice", "properties": {"n": ${exact(digits)}}, "password": "first-Secret",
   "password": "second-Secret"}
]`;
        const run = await runSync(["--file", usersFile(text), "--database-url", db.url]);
        assert.equal(run.code, 2, `${digits} digits: ${run.stdout}${run.stderr}`);
        assert.match(run.stderr, /line 3, column 4: key "password" appears twice in one object/);
        assert.doesNotMatch(run.stderr, /first-Secret|second-Secret/);
        assert.deepEqual(await rowsOf(backend, db), []);
      }
    });

    test("the number of 401 digits from the issue, whole: both it and the duplicate are reported", async (t) => {
      const db = await database(t, backend);
      const text = `[{"username": "alice", "properties": {"n": ${"9".repeat(401)}}, "password": "a", "password": "b"}]`;
      const run = await runSync(["--file", usersFile(text), "--database-url", db.url]);
      assert.equal(run.code, 2, run.stdout + run.stderr);
      assert.match(run.stderr, /key "password" appears twice in one object/);
      assert.ok(run.stderr.includes(`users[0].properties.n: the number at line 1, column ${text.indexOf("999") + 1}`));
      assert.deepEqual(await rowsOf(backend, db), []);
    });
  });
}

describe("11. the scan reads the whole text, whatever it holds", () => {
  test("long numbers, long strings and deep nesting before a duplicate key", () => {
    const before = [
      `1.${"0".repeat(1_000_000)}`,
      `-0.${"0".repeat(5000)}1e5000`,
      `1e${"0".repeat(5000)}1`,
      JSON.stringify("s".repeat(1_000_000)),
      "[".repeat(100_000) + "]".repeat(100_000),
    ];
    for (const value of before) {
      const text = `{"a": ${value}, "k": 1, "k": 2}`;
      assert.doesNotThrow(() => JSON.parse(text));
      const scan = sync.scanJson(text);
      assert.equal(scan.error, undefined, value.slice(0, 20));
      assert.deepEqual(scan.duplicateKeys.map((d: { key: string }) => d.key), ["k"], value.slice(0, 20));
    }
  });
});

// ---------------------------------------------------------------------------
// 12. Emails held to the same text rules as usernames

for (const backend of backends) {
  describe(`12. emails with a lone surrogate or a NUL, on ${backend.name}`, () => {
    test("are refused at validation with the user's place, and nothing is written", async (t) => {
      const db = await database(t, backend);
      const run = await syncFile(db, [
        { username: "alice", password: "a", email: "\ud800x@example.com" },
        { username: "bob", password: "b", email: "a\u0000b@example.com" },
        { username: "carol", password: "c", email: "c\u202e@example.com" },
      ]);
      assert.equal(run.code, 2, run.stdout + run.stderr);
      assert.match(run.stderr, /users\[0\]\.email: must be valid Unicode text \(it holds a lone surrogate\)/);
      assert.match(run.stderr, /users\[1\]\.email: must not contain control characters/);
      assert.match(run.stderr, /users\[2\]\.email: must not contain invisible Unicode format or separator characters/);
      assert.deepEqual(await rowsOf(backend, db), []);
    });

    test("an existing user's email is not changed to one either", async (t) => {
      const db = await database(t, backend);
      assert.equal((await syncFile(db, [{ username: "alice", password: "a", email: "a@example.com" }])).code, 0);
      const run = await syncFile(db, [{ username: "alice", password: "a", email: "a\u0000@example.com" }]);
      assert.equal(run.code, 2, run.stdout + run.stderr);
      assert.match(run.stderr, /users\[0\]\.email: must not contain control characters/);
      assert.equal((await usersRows(db))[0].email, "a@example.com");
    });
  });
}

// ---------------------------------------------------------------------------
// 13. Log spoofing

describe("13. usernames with format or separator characters", () => {
  test("are refused with their place", async () => {
    const names = ["\u202eevil", "a\u2028b", "fake\u2029", "zero\u200bwidth", "\ufeffbom", "rtl\u200fmark"];
    const run = await runSync([
      "--validate",
      "--file",
      usersFile(names.map((username) => ({ username, password: "p" }))),
    ]);
    assert.equal(run.code, 2, run.stdout + run.stderr);
    names.forEach((_, i) => {
      assert.match(
        run.stderr,
        new RegExp(`users\\[${i}\\]\\.username: must not contain invisible Unicode format or separator characters`),
      );
    });
  });
});

for (const backend of backends) {
  describe(`13. every text log line escapes what does not print, on ${backend.name}`, () => {
    const NOT_PRINTED = /[\p{C}\p{Zl}\p{Zp}]/u;
    // Property names may hold such characters (claims are not typed into a form), and the log names them.
    const users = [{
      username: "alice",
      password: "a",
      properties: { "x\u2028users: 0 created": 1, "\u202eevil": 2, "zero\u200bwidth": 3 },
    }];

    test("text: a property name cannot start a line of its own, reverse the line, or hide", async (t) => {
      const db = await database(t, backend);
      const run = await syncFile(db, users);
      assert.equal(run.code, 0, run.stderr);
      const lines = run.stdout.trimEnd().split("\n");
      assert.equal(lines.length, 2, run.stdout);
      for (const line of lines) assert.doesNotMatch(line, NOT_PRINTED, JSON.stringify(line));
      assert.equal(
        lines[0],
        "created alice: password, properties.x\\u2028users: 0 created, properties.\\u202Eevil, properties.zero\\u200Bwidth",
      );
      assert.equal(lines[1], "users: 1 created, 0 updated, 0 unchanged");
    });

    test("JSON: the same characters are \\u escapes in the line, and parse back to the names", async (t) => {
      const db = await database(t, backend);
      const run = await syncFile(db, users, "--log-format", "json");
      assert.equal(run.code, 0, run.stderr);
      const lines = run.stdout.trimEnd().split("\n");
      for (const line of lines) assert.doesNotMatch(line, NOT_PRINTED, line);
      assert.deepEqual(JSON.parse(lines[0]).changes, [
        "password",
        "properties.x\u2028users: 0 created",
        "properties.\u202eevil",
        "properties.zero\u200bwidth",
      ]);
    });
  });
}

describe("13. error lines escape too", () => {
  test("a users file path with U+202E and a line separator is printed escaped", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "user-sync-spoof-")), "a\u202eb\u2028users: 0 created");
    mkdirSync(dir);
    const run = await runSync(["--validate", "--file", join(dir, "missing.json")]);
    assert.equal(run.code, 2);
    const lines = run.stderr.trimEnd().split("\n");
    assert.equal(lines.length, 1, run.stderr);
    assert.match(
      lines[0],
      /^error: cannot read users file .*a\\u202Eb\\u2028users: 0 created\/missing\.json: file not found/,
    );
  });

  test("printable, and the logger's text lines", () => {
    assert.equal(sync.printable("plain José 😀 ok"), "plain José 😀 ok");
    assert.equal(sync.printable("a\nb\tc\u001b[31m\u007f"), "a\\u000Ab\\u0009c\\u001B[31m\\u007F");
    assert.equal(
      sync.printable(`\u202e\u2028\u2029\u200b${String.fromCharCode(0xd800)}\u{F0000}`),
      "\\u202E\\u2028\\u2029\\u200B\\uD800\\u{F0000}",
    );
    const out: string[] = [];
    const log = sync.createLogger("text", { stdout: (l: string) => out.push(l), stderr: (l: string) => out.push(l) });
    log.info("one\ntwo");
    log.error("bad\u2028thing", { problems: ["p\u202eq"], stack: ["at f (x.ts:1:2)"] });
    assert.deepEqual(out, ["one\\u000Atwo", "error: bad\\u2028thing", "  p\\u202Eq", "    at f (x.ts:1:2)"]);
  });
});

// ---------------------------------------------------------------------------
// 14. Numbers that would change silently

for (const backend of backends) {
  describe(`14. property numbers that would not be stored as written, on ${backend.name}`, () => {
    test("1e999, 12345678901234567890, -0 and friends are refused with their place, and nothing is written", async (t) => {
      const db = await database(t, backend);
      const line3 =
        `    "huge": 1e999, "big": 12345678901234567890, "negzero": -0, "nested": [1, {"tiny": 1e-400}], "ok": 1.5}}`;
      const text = `{"users": [\n  {"username": "alice", "password": "a", "properties": {\n${line3}\n]}`;
      const run = await runSync(["--file", usersFile(text), "--database-url", db.url]);
      assert.equal(run.code, 2, run.stdout + run.stderr);
      const numbers = [["huge", "1e999"], ["big", "12345678901234567890"], ["negzero", "-0"], [
        "nested[1].tiny",
        "1e-400",
      ]];
      for (const [place, number] of numbers) {
        const expected = `users[0].properties.${place}: the number at line 3, column ${line3.indexOf(number) + 1} ` +
          "would be stored as a different number";
        assert.ok(run.stderr.includes(expected), `missing "${expected}" in:\n${run.stderr}`);
      }
      assert.doesNotMatch(run.stderr, /properties\.ok/);
      assert.deepEqual(await rowsOf(backend, db), []);
    });

    test("numbers that only change their spelling are stored by value", async (t) => {
      const db = await database(t, backend);
      const text = `[{"username": "alice", "password": "a", "properties": {
  "one": 1.0, "thousand": 1e3, "tenth": 0.1, "small": -2.5e-3, "safe": 9007199254740991, "tiny": 5e-324, "zero": 0e99}}]`;
      const run = await runSync(["--file", usersFile(text), "--database-url", db.url]);
      assert.equal(run.code, 0, run.stderr);
      const rows = await db.query("SELECT key, value FROM properties ORDER BY key");
      assert.deepEqual(Object.fromEntries(rows.map((r) => [r.key, r.value])), {
        one: "1",
        thousand: "1000",
        tenth: "0.1",
        small: "-0.0025",
        safe: "9007199254740991",
        tiny: "5e-324",
        zero: "0",
      });
      const again = await runSync(["--file", usersFile(text), "--database-url", db.url]);
      assert.match(again.stdout, /^users: 0 created, 0 updated, 1 unchanged$/m);
    });
  });
}

describe("14. the round trip, number by number", () => {
  test("survivesJsonRoundTrip compares exact decimal values", () => {
    for (const text of ["0", "1", "1.0", "1e3", "1E+3", "0.1", "-1.5e-3", "100e-2", "5e-324", "9007199254740992"]) {
      assert.equal(sync.survivesJsonRoundTrip(text), true, text);
    }
    for (
      const text of ["-0", "-0.0", "1e999", "-1e999", "1e-400", "12345678901234567890", "9007199254740993", "0.1e-400"]
    ) assert.equal(sync.survivesJsonRoundTrip(text), false, text);
  });

  test("numbers outside properties are refused by their own rules", async () => {
    const run = await runSync([
      "--validate",
      "--file",
      usersFile('[{"username": "a", "password": "p", "enabled": 1e999}]'),
    ]);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /users\[0\]\.enabled: must be true or false/);
  });
});
