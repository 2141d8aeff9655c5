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
import { describe, test, type TestContext } from "node:test";
import * as sync from "../sync.ts";
import { type Backend, backends, runSync, type TestDatabase, usersFile, usersRows } from "./support/helpers.ts";

async function database(t: TestContext, backend: Backend): Promise<TestDatabase> {
  const db = await backend.create();
  t.after(() => db.close());
  return db;
}

/** Rows of `users`, or none when the table was never created (a refused file opens no connection). */
async function rowsOf(backend: Backend, db: TestDatabase) {
  return await backend.tableExists(db, "users") ? await usersRows(db) : [];
}

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
