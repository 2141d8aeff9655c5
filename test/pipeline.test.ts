/**
 * The pure steps of the pipeline, without a database: options, JSON parsing,
 * validation and planning.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import * as valibot from "valibot";
import { v } from "../deps.ts";
import {
  DEFAULT_USERS_FILE,
  InputError,
  locateJsonError,
  parseOptions,
  parseUsersJson,
  planChanges,
  sameJson,
  type StoredUser,
  validateUsers,
  VERSION,
} from "../sync.ts";

describe("options", () => {
  test("--file and --database-url win over the environment", () => {
    const options = parseOptions(["-f", "a.json", "-d", "postgres://x/y"], {
      USERS_FILE: "b.json",
      DATABASE_URL: "postgres://env/db",
    });
    assert.deepEqual(options.files, ["a.json"]);
    assert.equal(options.databaseUrl, "postgres://x/y");
  });

  test("$DATABASE_URL wins over $BARYCENTER__DATABASE__URL; the file defaults to /etc/barycenter/users.json", () => {
    const options = parseOptions([], { DATABASE_URL: "postgres://a/b", BARYCENTER__DATABASE__URL: "postgres://c/d" });
    assert.equal(options.databaseUrl, "postgres://a/b");
    assert.deepEqual(options.files, [DEFAULT_USERS_FILE]);
    assert.equal(parseOptions([], { BARYCENTER__DATABASE__URL: "postgres://c/d" }).databaseUrl, "postgres://c/d");
  });

  test("the version matches package.json", () => {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
    assert.equal(VERSION, pkg.version);
  });
});

describe("JSON syntax errors", () => {
  const cases: [string, string, number, number][] = [
    ['[{"a": x}]', "unexpected character where a value should be", 1, 8],
    ["[1,2", "unexpected end of input", 1, 5],
    ['{"a":1,}', "trailing comma", 1, 8],
    ['[\n "ab\u0001c"]', "control character", 2, 5],
    ["[1] [2]", "unexpected data after the end", 1, 5],
    ['{"a" 1}', "expected ':'", 1, 6],
    ['["abc', "unterminated string", 1, 2],
    ["[01]", "expected ',' or ']'", 1, 3],
  ];
  for (const [text, reason, line, column] of cases) {
    test(`${JSON.stringify(text)} is reported as ${reason} at ${line}:${column}`, () => {
      assert.throws(() => JSON.parse(text));
      const error = (() => {
        try {
          parseUsersJson(text);
        } catch (e) {
          return e as InputError;
        }
        assert.fail("parsed invalid JSON");
      })();
      assert.ok(error instanceof InputError);
      assert.ok(error.message.includes(reason), error.message);
      assert.ok(error.message.includes(`line ${line}, column ${column}`), error.message);
    });
  }

  test("valid JSON is found to have no error", () => {
    const text = '{"users": [{"a": [1, -2.5e3, true, false, null, "\\u00e9\\n"]}]}';
    assert.deepEqual(locateJsonError(text), { offset: text.length, reason: "no error found" });
  });

  test("a byte order mark is ignored", () => {
    assert.deepEqual(parseUsersJson("\ufeff[]"), []);
  });

  test("deep nesting does not overflow the scanner", () => {
    const text = "[".repeat(200_000) + "x";
    assert.equal(locateJsonError(text).offset, 200_000);
  });
});

describe("keys given twice", () => {
  /** The problems parseUsersJson reports for `text`, or none. */
  const problems = (text: string): string[] => {
    try {
      parseUsersJson(text);
      return [];
    } catch (error) {
      assert.ok(error instanceof InputError, String(error));
      return error.problems;
    }
  };

  test("colons in keys, names, passwords and values are no key given twice", () => {
    const text = '{"users": [{"username": "a:b", "password": "p:q:r", "properties": {"url:x": "https://e/:"}}]}';
    assert.deepEqual(problems(text), []);
  });

  test("a key given twice inside a property value is reported, with the keys and colons of the value dropped", () => {
    const text = '[{"username": "a", "password": "p",\n "properties": {"k": {"a": "x:y"}, "k": "z"}}]';
    assert.deepEqual(problems(text), [
      'line 2, column 36: key "k" appears twice in one object; JSON would keep only the last, so remove one',
    ]);
  });

  test("a key given twice is reported where an escaped colon (\\u003a) would make the colons add up", () => {
    // The dropped "a" takes one key and one colon; the escape gives the parsed text one colon the text does not show.
    const text = '[{"username": "u", "a": "1", "a": "2", "password": "p\\u003a"}]';
    assert.deepEqual(problems(text), [
      'line 1, column 30: key "a" appears twice in one object; JSON would keep only the last, so remove one',
    ]);
  });

  test("a key given twice is reported in a file that also holds numbers", () => {
    const text = '[{"username": "u", "password": "p", "properties": {"n": 1.5, "n": 2}}]';
    assert.equal(problems(text).length, 1);
    assert.match(problems(text)[0], /key "n" appears twice/);
  });
});

describe("the schema's pipe (valibot's, run with an index loop)", () => {
  // The same schema made with each pipe: nested pipes, metadata, a schema after an action, and every kind of item.
  const schemaWith = (pipe: typeof valibot.pipe) =>
    valibot.strictObject({
      a: pipe(
        valibot.string("not a string"),
        valibot.minLength(2, "too short"),
        valibot.description("a"),
        valibot.regex(/^x/, "no x"),
        valibot.check((s: string) => s !== "xbad", "bad"),
      ),
      b: valibot.optional(
        pipe(pipe(valibot.string("b not a string"), valibot.maxLength(3, "too long")), valibot.metadata({ m: 1 })),
      ),
      c: valibot.optional(
        pipe(
          valibot.custom<Record<string, unknown>>((x) => typeof x === "object" && x !== null, "not an object"),
          valibot.record(pipe(valibot.string(), valibot.minLength(1, "empty key")), valibot.unknown()),
          valibot.check((r: Record<string, unknown>) => !("no" in r), "has no"),
        ),
      ),
      // A schema after an action: once the action has an issue, the schema is not run and the output is untyped.
      d: valibot.optional(
        pipe(
          valibot.string("d not a string"),
          valibot.minLength(3, "d too short"),
          valibot.string("d not a string again"),
          valibot.check((s: string) => s !== "zz", "zz"),
        ),
      ),
    });
  const ours = schemaWith(v.pipe);
  const theirs = schemaWith(valibot.pipe);
  const inputs = [
    { a: "xy" },
    { a: "x" },
    { a: "y" },
    { a: "xbad", b: "abcd" },
    { a: 1, b: 2, c: 3 },
    { a: "xy", b: "ab", c: { k: 1 } },
    { a: "xy", c: { "": 1, no: 2 } },
    { a: "y", b: "abcdef", c: { no: 1 }, e: 1 },
    { a: "xy", d: "zz" },
    { a: "xy", d: "zzz" },
  ];
  const seen = (result: valibot.SafeParseResult<typeof ours>) => ({
    success: result.success,
    typed: result.typed,
    output: result.output,
    issues: result.issues?.map((issue) => [issue.message, valibot.getDotPath(issue)]),
  });

  for (const config of [{}, { abortEarly: true }, { abortPipeEarly: true }]) {
    test(`checks, outputs and reports as valibot's own pipe does (${JSON.stringify(config)})`, () => {
      for (const input of inputs) {
        const expected = seen(valibot.safeParse(theirs, input, config));
        assert.deepEqual(seen(valibot.safeParse(ours, input, config)), expected, JSON.stringify(input));
      }
    });
  }
});

describe("validation", () => {
  test("optional fields may be omitted, and email may be null", () => {
    const users = validateUsers({ users: [{ username: "a", password: "p", email: null }] });
    assert.deepEqual(users, [{ username: "a", password: "p", email: null }]);
  });

  test("problems are reported without the values that caused them", () => {
    try {
      validateUsers([{ username: "a", password: 123456789, pasword: "hunter2-typo", email: "hunter3@" }]);
      assert.fail("validated");
    } catch (error) {
      const text = (error as InputError).problems.join("\n");
      assert.doesNotMatch(text, /123456789|hunter2|hunter3/);
      assert.equal((error as InputError).problems.length, 3);
    }
  });

  test("property names that JavaScript objects treat specially are refused, not dropped", () => {
    assert.throws(
      () => validateUsers(JSON.parse('[{"username": "a", "password": "p", "properties": {"constructor": 1}}]')),
      (error: InputError) => /users\[0\]\.properties\.constructor: .*not supported/.test(error.problems.join("\n")),
    );
  });
});

describe("planning", () => {
  const stored = (over: Partial<StoredUser> = {}): StoredUser => ({
    subject: "S".repeat(32),
    username: "alice",
    password_hash: "$argon2id$stored",
    email: "a@example.com",
    email_verified: 0,
    enabled: 1,
    created_at: 100,
    properties: { name: '"Alice"' },
    ...over,
  });

  test("an unknown username is planned as a create with defaults", () => {
    const plan = planChanges([{ username: "bob", password: "pw" }], new Map(), new Map(), 1000, () => "new-subject");
    assert.deepEqual(plan.changes, [{ username: "bob", action: "create", changes: ["password"] }]);
    assert.deepEqual(plan.users, [{
      row: {
        subject: "new-subject",
        username: "bob",
        password_hash: null,
        email: null,
        email_verified: 0,
        created_at: 1000,
        enabled: 1,
        requires_2fa: 0,
      },
      password: "pw",
    }]);
  });

  test("a matching user is unchanged and nothing is planned for it", () => {
    const plan = planChanges(
      [{ username: "alice", password: "pw", email: "a@example.com", properties: { name: "Alice" } }],
      new Map([["alice", stored()]]),
      new Map([["alice", true]]),
      1000,
    );
    assert.deepEqual(plan.changes, [{ username: "alice", action: "unchanged", changes: [] }]);
    assert.deepEqual(plan.users, []);
    assert.deepEqual(plan.properties, []);
  });

  test("a property-only change writes the property and not the user row", () => {
    const plan = planChanges(
      [{ username: "alice", password: "pw", properties: { name: "Alicia" } }],
      new Map([["alice", stored()]]),
      new Map([["alice", true]]),
      1000,
    );
    assert.deepEqual(plan.changes[0].changes, ["properties.name"]);
    assert.deepEqual(plan.users, []);
    assert.deepEqual(plan.properties, [{ username: "alice", key: "name", value: '"Alicia"', updated_at: 1000 }]);
  });

  test("a password mismatch plans a new hash and keeps subject, created_at and the other columns", () => {
    const plan = planChanges(
      [{ username: "alice", password: "new" }],
      new Map([["alice", stored()]]),
      new Map([["alice", false]]),
      1000,
    );
    assert.deepEqual(plan.users, [{
      row: {
        subject: "S".repeat(32),
        username: "alice",
        password_hash: null,
        email: "a@example.com",
        email_verified: 0,
        created_at: 100,
        enabled: 1,
      },
      password: "new",
    }]);
  });

  test("JSON values compare by meaning, not by spelling", () => {
    assert.equal(sameJson('{"b": 1, "a": [1, 2]}', { a: [1, 2], b: 1 }), true);
    assert.equal(sameJson('{"a": [2, 1]}', { a: [1, 2] }), false);
    assert.equal(sameJson("not json", "not json"), false);
  });
});
