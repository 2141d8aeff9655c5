#!/usr/bin/env node
/**
 * barycenter-user-sync: makes Barycenter's `users` and `properties` tables
 * match a JSON file of users, in one transaction, before Barycenter starts.
 *
 * The file reads top to bottom as the pipeline it runs:
 * options → read → validate → plan (compare with the database) →
 * apply (one transaction) → report.
 *
 * Runs as `node sync.ts` (Node.js 22.18 or newer strips the types) and as
 * `deno run sync.ts`; it therefore uses only erasable TypeScript and the
 * runtime's `node:` modules.
 *
 * @module
 */

import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { existsSync, realpathSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { argon2Hash, argon2Verify, type BaseIssue, parseToml, postgres, v } from "./deps.ts";

/** The tool's version, printed by `--version`. */
export const VERSION = "0.1.0";

/** Exit statuses, as documented in the README. */
export const EXIT = {
  ok: 0,
  unexpected: 1,
  badInput: 2,
  database: 3,
} as const;

/** Where the users file is read from when neither `--file` nor `$USERS_FILE` says. */
export const DEFAULT_USERS_FILE = "/etc/barycenter/users.json";

/** Barycenter's own default database: `barycenter.db` in the working directory. */
export const DEFAULT_DATABASE_URL = "sqlite://barycenter.db?mode=rwc";

/** How long a SQLite writer waits for a lock held by Barycenter or another sync. */
export const SQLITE_BUSY_TIMEOUT_MS = 30_000;

/**
 * Barycenter verifies with the Rust `argon2` crate's `Argon2::default()`:
 * Argon2id, version 0x13, m=19456 KiB, t=2, p=1, 32-byte output. The numbers
 * for `algorithm` and `version` are the binding's const enums (`Argon2id` = 2,
 * `V0x13` = 1), which have no runtime value to import.
 */
export const ARGON2_OPTIONS = {
  algorithm: 2,
  version: 1,
  memoryCost: 19456,
  timeCost: 2,
  parallelism: 1,
  outputLen: 32,
} as const;

// ---------------------------------------------------------------------------
// Errors: each kind maps to one exit status.

/** Bad command line: exit 2, nothing read from or written to a database. */
export class UsageError extends Error {
  name = "UsageError";
}

/** Bad users file: exit 2, every problem listed, nothing written. */
export class InputError extends Error {
  name = "InputError";
  /** One line per problem, each naming its place, e.g. `users[3].email: invalid email address`. */
  problems: string[];
  constructor(message: string, problems: string[] = []) {
    super(message);
    this.problems = problems;
  }
}

/** The database could not be reached or the transaction failed: exit 3, rolled back. */
export class DatabaseError extends Error {
  name = "DatabaseError";
  /** Whether a transaction had begun (and so was rolled back). */
  inTransaction: boolean;
  constructor(message: string, inTransaction = true) {
    super(message);
    this.inTransaction = inTransaction;
  }
}

// ---------------------------------------------------------------------------
// Options

/** What the command line and the environment ask for. */
export interface Options {
  file: string;
  /** From `--database-url` or the environment; otherwise the config file or the default decides. */
  databaseUrl: string | undefined;
  /** Barycenter's `config.toml`, whose `[database] url` is used when nothing above gives one. */
  config: string | undefined;
  dryRun: boolean;
  validateOnly: boolean;
  logFormat: "text" | "json";
  help: boolean;
  version: boolean;
}

/** The environment variables the tool reads. */
export type Env = Record<string, string | undefined>;

/** Text printed by `--help`. */
export const HELP = `Usage: node sync.ts [-c CONFIG] [sync-users] [options]

Makes Barycenter's users match a JSON file, in one transaction.

Options:
  -f, --file PATH          users JSON; default $USERS_FILE, else ${DEFAULT_USERS_FILE}
  -d, --database-url URL   sqlite://PATH?mode=rwc or postgres://user:pass@host:5432/db;
                           default $DATABASE_URL, else $BARYCENTER__DATABASE__URL,
                           else [database] url of --config, else ${DEFAULT_DATABASE_URL}
  -c, --config PATH        Barycenter's config.toml, read for [database] url
      --dry-run            read, validate, compare with the database and print what
                           would change; write nothing
      --validate           read and validate the file only; no database connection
      --log-format FORMAT  text (default) or json: one JSON object a line
  -h, --help               show this help
  -V, --version            show the version

Exit status: 0 success; 2 bad usage or bad input (nothing written);
3 database unreachable or transaction failed (rolled back); 1 unexpected error.
`;

/** Reads the command line and the environment; throws {@linkcode UsageError}. */
export function parseOptions(args: string[], env: Env): Options {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      // `sync-users` is accepted so that Barycenter's own init container arguments work unchanged.
      allowPositionals: true,
      options: {
        file: { type: "string", short: "f" },
        "database-url": { type: "string", short: "d" },
        config: { type: "string", short: "c" },
        "dry-run": { type: "boolean" },
        validate: { type: "boolean" },
        "log-format": { type: "string" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "V" },
      },
    });
  } catch (error) {
    // parseArgs names the offending option, never a value; still, keep only its first line.
    throw new UsageError(String((error as Error).message).split("\n")[0]);
  }
  const values = parsed.values;
  const unexpected = parsed.positionals.filter((word) => word !== "sync-users");
  if (unexpected.length > 0) {
    throw new UsageError(`unexpected argument "${unexpected[0]}"; the only command word is sync-users`);
  }
  const logFormat = values["log-format"] ?? "text";
  if (logFormat !== "text" && logFormat !== "json") {
    throw new UsageError(`--log-format must be "text" or "json"`);
  }
  if (values["dry-run"] && values.validate) {
    throw new UsageError("--dry-run and --validate exclude each other");
  }
  return {
    file: nonEmpty(values.file) ?? nonEmpty(env.USERS_FILE) ?? DEFAULT_USERS_FILE,
    databaseUrl: nonEmpty(values["database-url"]) ?? nonEmpty(env.DATABASE_URL) ??
      nonEmpty(env.BARYCENTER__DATABASE__URL),
    config: nonEmpty(values.config),
    dryRun: values["dry-run"] ?? false,
    validateOnly: values.validate ?? false,
    logFormat,
    help: values.help ?? false,
    version: values.version ?? false,
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === "" ? undefined : value;
}

/**
 * The database URL in Barycenter's own order: option or environment, then
 * `[database] url` of the config file, then Barycenter's default.
 */
export async function resolveDatabaseUrl(options: Options): Promise<string> {
  if (options.databaseUrl !== undefined) return options.databaseUrl;
  if (options.config === undefined) return DEFAULT_DATABASE_URL;
  let text: string;
  try {
    text = await readFile(options.config, "utf8");
  } catch (error) {
    throw new UsageError(`cannot read config file ${options.config} (${(error as { code?: string }).code ?? "error"})`);
  }
  let config: Record<string, unknown>;
  try {
    config = parseToml(text);
  } catch (error) {
    const { line, column } = error as { line?: number; column?: number };
    throw new UsageError(`config file ${options.config} is not valid TOML at line ${line}, column ${column}`);
  }
  const database = config.database;
  const url = isPlainObject(database) ? database.url : undefined;
  if (url === undefined) return DEFAULT_DATABASE_URL;
  if (typeof url !== "string" || url === "") {
    throw new UsageError(`config file ${options.config}: [database] url must be a non-empty string`);
  }
  return url;
}

// ---------------------------------------------------------------------------
// Read

/** Reads the users file as UTF-8 text; throws {@linkcode InputError} saying what to do. */
export async function readUsersFile(path: string): Promise<string> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const code = (error as { code?: string }).code;
    const reason = code === "ENOENT"
      ? "file not found; give the path with --file or $USERS_FILE"
      : code === "EISDIR"
      ? "it is a directory, not a file; give the path of the JSON file itself"
      : code === "EACCES" || code === "EPERM"
      ? "permission denied; make the file readable by this user"
      : `cannot read it (${code ?? "unknown error"})`;
    throw new InputError(`cannot read users file ${path}: ${reason}`);
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new InputError(`users file ${path} is not UTF-8 text; save it as UTF-8`);
  }
}

/**
 * Parses JSON text. On a syntax error it reports line and column from its own
 * scan, because the runtime's messages quote the input, which may hold passwords.
 */
export function parseUsersJson(text: string, source = "users file"): unknown {
  // A byte order mark is not JSON, but editors on some systems write one.
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  try {
    return JSON.parse(body);
  } catch {
    const { offset, reason } = locateJsonError(body);
    const { line, column } = lineAndColumn(body, offset);
    throw new InputError(
      `${source} is not valid JSON: ${reason} at line ${line}, column ${column}; nothing was changed`,
    );
  }
}

/** Where a JSON text first goes wrong, and why, in words that never quote it. */
export function locateJsonError(text: string): { offset: number; reason: string } {
  let i = 0;
  const fail = (reason: string, at = i) => ({ offset: at, reason });
  const skipSpace = () => {
    while (i < text.length && " \t\n\r".includes(text[i])) i++;
  };
  // An explicit stack instead of recursion: deeply nested input cannot overflow it.
  const stack: ("array" | "object")[] = [];
  type State = "value" | "afterValue" | "key";
  let state: State = "value";
  while (true) {
    skipSpace();
    if (i >= text.length) {
      return stack.length === 0 && state === "afterValue"
        ? fail("no error found", text.length)
        : fail("unexpected end of input");
    }
    const c = text[i];
    if (state === "key") {
      if (c !== '"') return fail("expected a property name in double quotes");
      const end = scanString(text, i);
      if (typeof end !== "number") return end;
      i = end;
      skipSpace();
      if (i >= text.length) return fail("unexpected end of input");
      if (text[i] !== ":") return fail("expected ':' after a property name");
      i++;
      state = "value";
      continue;
    }
    if (state === "value") {
      if (c === "{" || c === "[") {
        stack.push(c === "{" ? "object" : "array");
        i++;
        skipSpace();
        if (text[i] === (c === "{" ? "}" : "]")) {
          stack.pop();
          i++;
          state = "afterValue";
        } else {
          state = c === "{" ? "key" : "value";
        }
        continue;
      }
      if (c === '"') {
        const end = scanString(text, i);
        if (typeof end !== "number") return end;
        i = end;
      } else if (c === "-" || (c >= "0" && c <= "9")) {
        const match = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
        if (!match) return fail("invalid number");
        i += match[0].length;
      } else if (text.startsWith("true", i)) i += 4;
      else if (text.startsWith("false", i)) i += 5;
      else if (text.startsWith("null", i)) i += 4;
      else return fail("unexpected character where a value should be");
      state = "afterValue";
      continue;
    }
    // state === "afterValue"
    const top = stack.at(-1);
    if (top === undefined) return fail("unexpected data after the end of the JSON value");
    if (c === ",") {
      i++;
      state = top === "object" ? "key" : "value";
      skipSpace();
      if (text[i] === "]" || text[i] === "}") return fail("trailing comma");
    } else if ((top === "array" && c === "]") || (top === "object" && c === "}")) {
      stack.pop();
      i++;
    } else {
      return fail(top === "array" ? "expected ',' or ']'" : "expected ',' or '}'");
    }
  }
}

function scanString(text: string, start: number): number | { offset: number; reason: string } {
  let i = start + 1;
  while (i < text.length) {
    const c = text.charCodeAt(i);
    if (c === 0x22) return i + 1;
    if (c < 0x20) return { offset: i, reason: "control character (such as a raw line break) inside a string" };
    if (c === 0x5c) {
      const e = text[i + 1];
      if (e === "u") {
        if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) {
          return { offset: i, reason: "invalid \\u escape in a string" };
        }
        i += 6;
        continue;
      }
      if (e === undefined || !'"\\/bfnrt'.includes(e)) return { offset: i, reason: "invalid escape in a string" };
      i += 2;
      continue;
    }
    i++;
  }
  return { offset: start, reason: "unterminated string" };
}

/** 1-based line and column of a UTF-16 offset. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === "\n") {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

// ---------------------------------------------------------------------------
// Validate

/** One user as the file gives it, after validation. Omitted fields are left as the database holds them. */
export interface UserSpec {
  username: string;
  password: string;
  email?: string | null;
  enabled?: boolean;
  email_verified?: boolean;
  properties?: Record<string, unknown>;
}

const USER_FIELDS = ["username", "password", "email", "enabled", "email_verified", "properties"];

const codePoints = (s: string) => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

// Every message is ours: valibot's defaults quote the received value, which may be a password.
const UsernameSchema = v.pipe(
  v.string("must be a string"),
  v.check((s) => s.length > 0, "must not be empty"),
  v.check((s) => codePoints(s) <= 255, "must be at most 255 characters"),
  v.check((s) => s.trim() === s, "must not start or end with whitespace"),
  v.check((s) => !/\p{Cc}/u.test(s), "must not contain control characters"),
);

const PasswordSchema = v.pipe(
  v.string("must be a string"),
  v.check((s) => s.length > 0, "must not be empty"),
  v.check((s) => codePoints(s) <= 1024, "must be at most 1024 characters"),
);

const EmailSchema = v.nullable(
  v.pipe(
    v.string("must be a string, or null to clear it"),
    v.check((s) => s.length <= 254, "must be at most 254 characters"),
    v.email("invalid email address"),
  ),
);

const FlagSchema = v.boolean("must be true or false");

const PropertyKeySchema = v.pipe(
  v.string(),
  v.check((s) => s.length > 0 && codePoints(s) <= 255, "property names must be 1 to 255 characters"),
);

// valibot's record skips these keys silently; a claim must never vanish without a word.
const RESERVED_KEYS = ["__proto__", "prototype", "constructor"];

const PropertiesSchema = v.pipe(
  v.custom<Record<string, unknown>>(isPlainObject, "must be an object of JSON values"),
  v.check(
    (props) => !RESERVED_KEYS.some((key) => Object.hasOwn(props, key)),
    `property names ${RESERVED_KEYS.join(", ")} are not supported`,
  ),
  v.record(PropertyKeySchema, v.unknown()),
);

/** The valibot schema of one user object. */
export const UserSchema = v.strictObject(
  {
    username: UsernameSchema,
    password: PasswordSchema,
    email: v.optional(EmailSchema),
    enabled: v.optional(FlagSchema),
    email_verified: v.optional(FlagSchema),
    properties: v.optional(PropertiesSchema),
  },
  "must be an object with at least username and password",
);

const UsersSchema = v.array(UserSchema, "must be an array of user objects");

/**
 * Checks parsed JSON (a bare array of users, or `{"users": [...]}`) and returns
 * the users; throws {@linkcode InputError} listing every problem with its place.
 */
export function validateUsers(data: unknown): UserSpec[] {
  let list: unknown;
  if (Array.isArray(data)) {
    list = data;
  } else if (isPlainObject(data) && "users" in data) {
    const extra = Object.keys(data).filter((key) => key !== "users");
    if (extra.length > 0) {
      throw invalid(extra.map((key) => `${formatKey(key)}: unknown top-level field; only "users" is allowed`));
    }
    list = data.users;
  } else {
    throw invalid([`(root): expected an array of users, or an object {"users": [...]}`]);
  }
  const result = v.safeParse(UsersSchema, list);
  const problems = result.success ? [] : result.issues.map(describeIssue);
  problems.push(...findDuplicateUsernames(list));
  if (problems.length > 0 || !result.success) throw invalid(problems);
  return result.output as UserSpec[];
}

function invalid(problems: string[]): InputError {
  const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
  return new InputError(`users file is invalid (${count}); nothing was changed`, problems);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

type Issue = BaseIssue<unknown>;

function describeIssue(issue: Issue): string {
  const place = "users" + (issue.path ?? []).map((item) => formatPathKey(item.key)).join("");
  const lastKey = issue.path?.at(-1)?.key;
  if (issue.type === "strict_object" && issue.expected === "never") {
    return `${place}: unknown field; a user may have only ${USER_FIELDS.join(", ")}`;
  }
  if (issue.type === "strict_object" && issue.input === undefined && typeof lastKey === "string") {
    return `${place}: is required`;
  }
  return `${place}: ${issue.message}`;
}

function formatPathKey(key: unknown): string {
  return typeof key === "number" ? `[${key}]` : formatKey(String(key), ".");
}

function formatKey(key: string, dot = ""): string {
  const shown = key.length > 64 ? key.slice(0, 64) + "…" : key;
  return /^[A-Za-z_$][\w$]*$/.test(shown) ? dot + shown : `[${JSON.stringify(shown)}]`;
}

function findDuplicateUsernames(list: unknown): string[] {
  if (!Array.isArray(list)) return [];
  const firstIndex = new Map<string, number>();
  const problems: string[] = [];
  list.forEach((user, index) => {
    const username = isPlainObject(user) ? user.username : undefined;
    if (typeof username !== "string") return;
    const first = firstIndex.get(username);
    if (first === undefined) firstIndex.set(username, index);
    else problems.push(`users[${index}].username: duplicate of users[${first}]; usernames must be unique`);
  });
  return problems;
}

// ---------------------------------------------------------------------------
// Plan: compare the file with what the database holds

/** A user as the database holds it, with the properties the sync may manage. */
export interface StoredUser {
  subject: string;
  username: string;
  password_hash: string;
  email: string | null;
  email_verified: number;
  enabled: number;
  created_at: number;
  /** Property key → stored (JSON-encoded) value. */
  properties: Map<string, string>;
}

/** A `users` row to insert or update. `password_hash` is null until hashed. */
export interface UserRow {
  subject: string;
  username: string;
  password_hash: string;
  email: string | null;
  email_verified: number;
  created_at: number;
  enabled: number;
}

/** A `properties` row to upsert, owned by the user with this username. */
export interface PropertyRow {
  username: string;
  key: string;
  value: string;
  updated_at: number;
}

/** What the sync does to one user. */
export interface UserChange {
  username: string;
  action: "create" | "update" | "unchanged";
  /** Field names that change (`password`, `email`, `properties.name`, …); never values. */
  changes: string[];
}

/** A user row to write; `password` is set when the row needs a new hash. */
export interface PlannedUser {
  row: Omit<UserRow, "password_hash"> & { password_hash: string | null };
  password: string | null;
}

/** Everything one run would do. */
export interface Plan {
  changes: UserChange[];
  users: PlannedUser[];
  properties: PropertyRow[];
}

/**
 * Decides, without I/O, what to write. `passwordMatches` says, per existing
 * username, whether the file's password verifies against the stored hash.
 */
export function planChanges(
  specs: UserSpec[],
  stored: Map<string, StoredUser>,
  passwordMatches: Map<string, boolean>,
  now: number,
  newSubject: () => string = randomSubject,
): Plan {
  const plan: Plan = { changes: [], users: [], properties: [] };
  for (const spec of specs) {
    const current = stored.get(spec.username);
    const properties = Object.entries(spec.properties ?? {});
    if (current === undefined) {
      plan.users.push({
        row: {
          subject: newSubject(),
          username: spec.username,
          password_hash: null,
          email: spec.email ?? null,
          email_verified: spec.email_verified ? 1 : 0,
          created_at: now,
          enabled: spec.enabled === false ? 0 : 1,
        },
        password: spec.password,
      });
      for (const [key, value] of properties) {
        plan.properties.push({ username: spec.username, key, value: JSON.stringify(value), updated_at: now });
      }
      plan.changes.push({ username: spec.username, action: "create", changes: presentFields(spec) });
      continue;
    }

    const changes: string[] = [];
    const passwordChanged = passwordMatches.get(spec.username) !== true;
    if (passwordChanged) changes.push("password");
    const email = spec.email === undefined ? current.email : spec.email;
    if (email !== current.email) changes.push("email");
    const enabled = spec.enabled === undefined ? current.enabled : Number(spec.enabled);
    if (enabled !== current.enabled) changes.push("enabled");
    const emailVerified = spec.email_verified === undefined ? current.email_verified : Number(spec.email_verified);
    if (emailVerified !== current.email_verified) changes.push("email_verified");
    const userRowChanges = changes.length;
    for (const [key, value] of properties) {
      const storedValue = current.properties.get(key);
      if (storedValue !== undefined && sameJson(storedValue, value)) continue;
      plan.properties.push({ username: spec.username, key, value: JSON.stringify(value), updated_at: now });
      changes.push(`properties.${key}`);
    }
    if (userRowChanges > 0) {
      plan.users.push({
        row: {
          subject: current.subject,
          username: current.username,
          password_hash: passwordChanged ? null : current.password_hash,
          email,
          email_verified: emailVerified,
          created_at: current.created_at,
          enabled,
        },
        password: passwordChanged ? spec.password : null,
      });
    }
    plan.changes.push({ username: spec.username, action: changes.length > 0 ? "update" : "unchanged", changes });
  }
  return plan;
}

function presentFields(spec: UserSpec): string[] {
  const fields = ["password"];
  if (spec.email !== undefined) fields.push("email");
  if (spec.enabled !== undefined) fields.push("enabled");
  if (spec.email_verified !== undefined) fields.push("email_verified");
  for (const key of Object.keys(spec.properties ?? {})) fields.push(`properties.${key}`);
  return fields;
}

/** Barycenter's subject: 24 random bytes, base64url without padding (32 characters). */
export function randomSubject(): string {
  return randomBytes(24).toString("base64url");
}

/** Whether a stored JSON text means the same value as `value` (key order and spacing aside). */
export function sameJson(stored: string, value: unknown): boolean {
  let parsed: unknown;
  try {
    parsed = JSON.parse(stored);
  } catch {
    return false;
  }
  return canonicalJson(parsed) === canonicalJson(value);
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (isPlainObject(value)) {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

/** Argon2id hash with Barycenter's parameters, on the binding's thread pool. */
export function hashPassword(password: string): Promise<string> {
  return argon2Hash(password, ARGON2_OPTIONS);
}

/**
 * Verifies each file password against its stored hash, all at once so the
 * native thread pool runs them in parallel. A stored value that is not a
 * valid PHC string counts as a mismatch, so the password is re-hashed.
 */
export async function verifyPasswords(
  specs: UserSpec[],
  stored: Map<string, StoredUser>,
): Promise<Map<string, boolean>> {
  const checks = specs.flatMap((spec) => {
    const current = stored.get(spec.username);
    if (current === undefined) return [];
    return [
      argon2Verify(current.password_hash, spec.password).then(
        (ok) => [spec.username, ok] as const,
        () => [spec.username, false] as const,
      ),
    ];
  });
  return new Map(await Promise.all(checks));
}

/** Hashes the passwords the plan needs, in parallel, and returns complete rows. */
export async function hashPlannedUsers(users: PlannedUser[]): Promise<UserRow[]> {
  return await Promise.all(users.map(async ({ row, password }) => ({
    ...row,
    password_hash: password === null ? row.password_hash as string : await hashPassword(password),
  })));
}

// ---------------------------------------------------------------------------
// Stores: one small interface, one implementation per backend

/** The tables the sync writes to. */
export type TableName = "users" | "properties";

/** The operations a sync needs, inside one transaction. */
export interface StoreTransaction {
  /** Which of `users` and `properties` do not exist yet. */
  missingTables(): Promise<TableName[]>;
  /** Creates the tables exactly as Barycenter's first migration does. */
  createTables(tables: TableName[]): Promise<void>;
  /**
   * The listed users that exist, by username, with their properties, in one
   * query. `withProperties` is false only when a dry run finds no `properties` table.
   */
  readUsers(usernames: string[], withProperties: boolean): Promise<Map<string, StoredUser>>;
  /** Inserts new users and updates existing ones, in one statement. */
  writeUsers(rows: UserRow[]): Promise<void>;
  /** Inserts or replaces properties, in one statement. */
  writeProperties(rows: PropertyRow[]): Promise<void>;
}

/** A database the sync can run against. */
export interface Store {
  /** Runs `work` in one transaction: committed if it resolves, rolled back if it throws. */
  transaction<T>(work: (tx: StoreTransaction) => Promise<T>, mode: { readOnly: boolean }): Promise<T>;
  close(): Promise<void>;
}

/**
 * The DDL of Barycenter's first migration for the two tables the sync
 * touches: initial columns only, so that Barycenter's later migrations
 * (which `ALTER TABLE ... ADD COLUMN`) still apply cleanly.
 */
export const CREATE_TABLE: Record<TableName, string> = {
  users: `CREATE TABLE IF NOT EXISTS "users" (
  "subject" varchar NOT NULL PRIMARY KEY,
  "username" varchar NOT NULL UNIQUE,
  "password_hash" varchar NOT NULL,
  "email" varchar NULL,
  "email_verified" bigint NOT NULL DEFAULT 0,
  "created_at" bigint NOT NULL,
  "enabled" bigint NOT NULL DEFAULT 1
)`,
  properties: `CREATE TABLE IF NOT EXISTS "properties" (
  "owner" varchar NOT NULL,
  "key" varchar NOT NULL,
  "value" varchar NOT NULL,
  "updated_at" bigint NOT NULL,
  PRIMARY KEY ("owner", "key")
)`,
};

/** Opens the store a database URL names; throws {@linkcode UsageError} for a URL it cannot use. */
export function openStore(url: string): Store {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === "sqlite") return new SqliteStore(parseSqliteUrl(url));
  if (scheme === "postgres" || scheme === "postgresql") return new PostgresStore(url);
  throw new UsageError(
    scheme === undefined
      ? "the database URL has no scheme; expected sqlite://PATH?mode=rwc or postgres://user:password@host:5432/database"
      : `unsupported database URL scheme "${scheme}:"; expected sqlite:, postgres: or postgresql:`,
  );
}

/** A SQLite database as a sqlx URL names it. */
export interface SqliteLocation {
  /** File path (relative to the working directory, as sqlx resolves it), or `:memory:`. */
  path: string;
  /** `rwc` creates a missing file; `rw` requires it (sqlx's default when no mode is given). */
  mode: "rwc" | "rw" | "memory";
}

/**
 * Reads a SQLite URL by sqlx's rules: `sqlite://data.db` and `sqlite:data.db`
 * are relative, `sqlite:///abs/data.db` absolute, `sqlite::memory:` in memory;
 * `?mode=rwc|rw|ro|memory`. `ro` is refused: a sync must write.
 */
export function parseSqliteUrl(url: string): SqliteLocation {
  const rest = url.slice("sqlite:".length);
  const [rawPath, query = ""] = rest.split("?", 2);
  const params = new URLSearchParams(query);
  const mode = params.get("mode") ?? "rw";
  if (mode === "ro") {
    throw new UsageError("the SQLite URL has mode=ro, but a sync must write; use mode=rw or mode=rwc");
  }
  if (mode !== "rwc" && mode !== "rw" && mode !== "memory") {
    throw new UsageError(`unknown SQLite mode "${mode}"; expected rwc, rw, ro or memory`);
  }
  let path: string;
  try {
    path = decodeURIComponent(rawPath.startsWith("//") ? rawPath.slice(2) : rawPath);
  } catch {
    throw new UsageError("the SQLite URL's path is not valid percent-encoding");
  }
  if (mode === "memory" || path === ":memory:") return { path: ":memory:", mode: "memory" };
  if (path === "") throw new UsageError("the SQLite URL names no file; expected sqlite://PATH?mode=rwc");
  return { path, mode };
}

type SqliteDatabase = import("node:sqlite").DatabaseSync;

/**
 * SQLite through the runtime's built-in `node:sqlite`: one connection,
 * `BEGIN IMMEDIATE`, a busy timeout, and `json_each` batches (SQLite has no
 * arrays to bind, so each batch is one JSON parameter).
 */
export class SqliteStore implements Store {
  #location: SqliteLocation;
  #db: SqliteDatabase | undefined;
  /** The file path: safe to print. */
  readonly target: string;

  constructor(location: SqliteLocation) {
    this.#location = location;
    this.target = location.path;
  }

  async transaction<T>(work: (tx: StoreTransaction) => Promise<T>, mode: { readOnly: boolean }): Promise<T> {
    const db = await this.#open(mode.readOnly);
    try {
      // IMMEDIATE takes the write lock now, so a concurrent writer waits here, not halfway through.
      db.exec(mode.readOnly ? "BEGIN" : "BEGIN IMMEDIATE");
    } catch (error) {
      throw new DatabaseError(`cannot start a transaction on SQLite ${this.target}: ${describeDriverError(error)}`, false);
    }
    let result: T;
    try {
      result = await work(new SqliteTransaction(db, this.target));
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
    try {
      db.exec(mode.readOnly ? "ROLLBACK" : "COMMIT");
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw new DatabaseError(`SQLite ${this.target}: ${describeDriverError(error)}`);
    }
    return result;
  }

  async #open(readOnly: boolean): Promise<SqliteDatabase> {
    if (this.#db !== undefined) return this.#db;
    const { path, mode } = this.#location;
    const missing = path !== ":memory:" && !existsSync(path);
    if (missing && mode === "rw") {
      throw new DatabaseError(
        `SQLite database file ${path} does not exist and the URL's mode is rw (sqlx's default); ` +
          "check the path and the volume, or add ?mode=rwc to let the sync create it",
        false,
      );
    }
    const { DatabaseSync } = await import("node:sqlite");
    try {
      // A dry run must not create the file: an empty in-memory database stands in for a missing one.
      const db = readOnly
        ? new DatabaseSync(missing ? ":memory:" : path, { readOnly: !missing })
        : new DatabaseSync(path);
      db.exec(`PRAGMA busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`);
      this.#db = db;
      return db;
    } catch (error) {
      throw new DatabaseError(`cannot open SQLite ${path}: ${describeDriverError(error)}`, false);
    }
  }

  close(): Promise<void> {
    this.#db?.close();
    this.#db = undefined;
    return Promise.resolve();
  }
}

class SqliteTransaction implements StoreTransaction {
  #db: SqliteDatabase;
  #target: string;
  constructor(db: SqliteDatabase, target: string) {
    this.#db = db;
    this.#target = target;
  }

  /** Runs one statement, turning any failure into a {@linkcode DatabaseError}. */
  #run<T>(statement: () => T): Promise<T> {
    try {
      return Promise.resolve(statement());
    } catch (error) {
      return Promise.reject(new DatabaseError(`SQLite ${this.#target}: ${describeDriverError(error)}`));
    }
  }

  async missingTables(): Promise<TableName[]> {
    const rows = await this.#run(() =>
      this.#db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ('users', 'properties')").all()
    );
    const present = new Set(rows.map((r) => r.name));
    return (["users", "properties"] as const).filter((table) => !present.has(table));
  }

  async createTables(tables: TableName[]): Promise<void> {
    for (const table of tables) await this.#run(() => this.#db.exec(CREATE_TABLE[table]));
  }

  async readUsers(usernames: string[], withProperties: boolean): Promise<Map<string, StoredUser>> {
    const properties = withProperties
      ? "(SELECT json_group_object(p.key, p.value) FROM properties p WHERE p.owner = u.subject)"
      : "'{}'";
    const rows = await this.#run(() =>
      this.#db.prepare(`
        SELECT subject, username, password_hash, email, email_verified, enabled, created_at,
               ${properties} AS properties
        FROM users u WHERE username IN (SELECT value FROM json_each(?))`).all(JSON.stringify(usernames))
    );
    return storedUsers(rows.map((row) => ({ ...row, properties: JSON.parse(String(row.properties)) })));
  }

  async writeUsers(rows: UserRow[]): Promise<void> {
    if (rows.length === 0) return;
    // `WHERE true` tells SQLite's parser that ON CONFLICT belongs to the INSERT, not to a join.
    await this.#run(() =>
      this.#db.prepare(`
        INSERT INTO users (subject, username, password_hash, email, email_verified, created_at, enabled)
        SELECT value ->> 'subject', value ->> 'username', value ->> 'password_hash', value ->> 'email',
               value ->> 'email_verified', value ->> 'created_at', value ->> 'enabled'
        FROM json_each(?) WHERE true
        ON CONFLICT (username) DO UPDATE SET
          password_hash = excluded.password_hash, email = excluded.email,
          email_verified = excluded.email_verified, enabled = excluded.enabled`).run(JSON.stringify(rows))
    );
  }

  async writeProperties(rows: PropertyRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.#run(() =>
      this.#db.prepare(`
        INSERT INTO properties (owner, key, value, updated_at)
        SELECT u.subject, p.value ->> 'key', p.value ->> 'value', p.value ->> 'updated_at'
        FROM json_each(?) AS p JOIN users u ON u.username = p.value ->> 'username' WHERE true
        ON CONFLICT (owner, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`)
        .run(JSON.stringify(rows))
    );
  }
}

/**
 * Builds the stored-user map from read rows, whatever the backend's row types
 * (bigint as string, integers as numbers); `properties` is an object of key → stored value.
 */
function storedUsers(rows: Iterable<Record<string, unknown>>): Map<string, StoredUser> {
  const result = new Map<string, StoredUser>();
  for (const u of rows) {
    result.set(String(u.username), {
      subject: String(u.subject),
      username: String(u.username),
      password_hash: String(u.password_hash),
      email: u.email === null ? null : String(u.email),
      email_verified: Number(u.email_verified),
      enabled: Number(u.enabled),
      created_at: Number(u.created_at),
      properties: new Map(Object.entries(u.properties as Record<string, string>)),
    });
  }
  return result;
}

/** PostgreSQL through the `postgres` package, one connection, `unnest` batches. */
export class PostgresStore implements Store {
  #sql: ReturnType<typeof postgres>;
  /** `host:port/database`, never the password: safe to print. */
  readonly target: string;

  constructor(url: string) {
    try {
      this.#sql = postgres(url, {
        max: 1,
        onnotice: () => {},
        connect_timeout: 10,
        connection: { application_name: "barycenter-user-sync" },
      });
    } catch {
      throw new UsageError("the database URL cannot be parsed; expected postgres://user:password@host:5432/database");
    }
    const { host, port, database } = this.#sql.options;
    this.target = `${host.map((h, i) => `${h}:${port[i] ?? port[0]}`).join(",")}/${database}`;
  }

  async transaction<T>(work: (tx: StoreTransaction) => Promise<T>, mode: { readOnly: boolean }): Promise<T> {
    let started = false;
    let workFailed = false;
    try {
      return await this.#sql.begin(mode.readOnly ? "read only" : "read write", async (sql) => {
        started = true;
        try {
          return await work(new PostgresTransaction(sql, this.target));
        } catch (error) {
          workFailed = true;
          throw error;
        }
      }) as T;
    } catch (error) {
      // Errors from the work are already classified; any other came from connecting, BEGIN or COMMIT.
      if (workFailed) throw error;
      throw started
        ? new DatabaseError(`PostgreSQL at ${this.target}: ${describeDriverError(error)}`)
        : new DatabaseError(`cannot connect to PostgreSQL at ${this.target}: ${describeDriverError(error)}`, false);
    }
  }

  async close(): Promise<void> {
    await this.#sql.end({ timeout: 5 });
  }
}

class PostgresTransaction implements StoreTransaction {
  #sql: postgres.TransactionSql;
  #target: string;
  constructor(sql: postgres.TransactionSql, target: string) {
    this.#sql = sql;
    this.#target = target;
  }

  /** Awaits a query, turning any failure into a {@linkcode DatabaseError}. */
  async #run<T>(query: PromiseLike<T>): Promise<T> {
    try {
      return await query;
    } catch (error) {
      throw new DatabaseError(`PostgreSQL at ${this.#target}: ${describeDriverError(error)}`);
    }
  }

  async missingTables(): Promise<TableName[]> {
    const [row] = await this.#run(this.#sql`
      SELECT to_regclass('users') IS NULL AS users, to_regclass('properties') IS NULL AS properties`);
    return (["users", "properties"] as const).filter((table) => row[table]);
  }

  async createTables(tables: TableName[]): Promise<void> {
    for (const table of tables) await this.#run(this.#sql.unsafe(CREATE_TABLE[table]));
  }

  async readUsers(usernames: string[], withProperties: boolean): Promise<Map<string, StoredUser>> {
    const sql = this.#sql;
    const properties = withProperties
      ? sql`(SELECT coalesce(json_object_agg(p.key, p.value), '{}') FROM properties p WHERE p.owner = u.subject)`
      : sql`'{}'::json`;
    return storedUsers(
      await this.#run(sql`
        SELECT subject, username, password_hash, email, email_verified, enabled, created_at,
               ${properties} AS properties
        FROM users u WHERE username = ANY(${sql.array(usernames, 25)}::varchar[])`),
    );
  }

  async writeUsers(rows: UserRow[]): Promise<void> {
    if (rows.length === 0) return;
    const sql = this.#sql;
    const column = <K extends keyof UserRow>(key: K, type: number) => sql.array(rows.map((r) => r[key]) as never, type);
    // On a username that exists, only the managed columns are set; subject and created_at stay.
    await this.#run(sql`
      INSERT INTO users (subject, username, password_hash, email, email_verified, created_at, enabled)
      SELECT * FROM unnest(
        ${column("subject", 25)}::varchar[], ${column("username", 25)}::varchar[],
        ${column("password_hash", 25)}::varchar[], ${column("email", 25)}::varchar[],
        ${column("email_verified", 20)}::bigint[], ${column("created_at", 20)}::bigint[],
        ${column("enabled", 20)}::bigint[])
      ON CONFLICT (username) DO UPDATE SET
        password_hash = excluded.password_hash, email = excluded.email,
        email_verified = excluded.email_verified, enabled = excluded.enabled`);
  }

  async writeProperties(rows: PropertyRow[]): Promise<void> {
    if (rows.length === 0) return;
    const sql = this.#sql;
    const column = <K extends keyof PropertyRow>(key: K, type: number) =>
      sql.array(rows.map((r) => r[key]) as never, type);
    // The owner is looked up by username in the same statement, so a user created above is found.
    await this.#run(sql`
      INSERT INTO properties (owner, key, value, updated_at)
      SELECT u.subject, p.key, p.value, p.updated_at
      FROM unnest(${column("username", 25)}::varchar[], ${column("key", 25)}::varchar[],
                  ${column("value", 25)}::varchar[], ${column("updated_at", 20)}::bigint[])
        AS p(username, key, value, updated_at)
      JOIN users u ON u.username = p.username
      ON CONFLICT (owner, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`);
  }
}

/** A driver's error in one line: its message and code, which name no parameter values. */
function describeDriverError(error: unknown): string {
  if (error instanceof postgres.PostgresError) return `${error.message} (SQLSTATE ${error.code})`;
  const { code, message } = error as { code?: string; message?: string };
  return [message, code && !String(message).includes(code) ? `(${code})` : ""].filter(Boolean).join(" ");
}

// ---------------------------------------------------------------------------
// Apply: the whole file in one transaction

/** The outcome of a sync: what happened to each user. */
export interface SyncResult {
  changes: UserChange[];
  dryRun: boolean;
}

/**
 * Makes the store match `specs`, in one transaction: reads the listed users,
 * verifies passwords, plans, hashes what changed and writes it in batches.
 * With `dryRun`, plans only and writes nothing (the transaction is read only).
 */
export async function syncUsers(
  store: Store,
  specs: UserSpec[],
  options: { dryRun: boolean; now?: () => number },
): Promise<SyncResult> {
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  return await store.transaction(async (tx) => {
    const missing = await tx.missingTables();
    if (!options.dryRun && missing.length > 0) await tx.createTables(missing);
    // Only a dry run can get here with tables missing: it creates nothing, so it reads what exists.
    const stored = options.dryRun && missing.includes("users")
      ? new Map<string, StoredUser>()
      : await tx.readUsers(specs.map((s) => s.username), !(options.dryRun && missing.includes("properties")));
    const plan = planChanges(specs, stored, await verifyPasswords(specs, stored), now());
    if (!options.dryRun) {
      await tx.writeUsers(await hashPlannedUsers(plan.users));
      await tx.writeProperties(plan.properties);
    }
    return { changes: plan.changes, dryRun: options.dryRun };
  }, { readOnly: options.dryRun });
}

// ---------------------------------------------------------------------------
// Report

/** Where the tool writes: one line per call. */
export interface Output {
  stdout(line: string): void;
  stderr(line: string): void;
}

/** Writes events as text lines or as JSON objects, one a line. Never given secrets. */
export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** A logger writing `format` to `output`: info to stdout, errors to stderr. */
export function createLogger(format: "text" | "json", output: Output): Logger {
  if (format === "json") {
    const line = (level: string, msg: string, fields?: Record<string, unknown>) =>
      JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields });
    return {
      info: (msg, fields) => output.stdout(line("info", msg, fields)),
      error: (msg, fields) => output.stderr(line("error", msg, fields)),
    };
  }
  return {
    info: (msg) => output.stdout(msg),
    error: (msg, fields) => {
      output.stderr(`error: ${msg}`);
      for (const problem of (fields?.problems as string[] | undefined) ?? []) output.stderr(`  ${problem}`);
    },
  };
}

/** Logs one line per created or updated user, then the summary. */
export function reportResult(result: SyncResult, log: Logger, durationMs: number): void {
  const verb = result.dryRun ? { create: "would create", update: "would update" } : { create: "created", update: "updated" };
  const counts = { create: 0, update: 0, unchanged: 0 };
  for (const { username, action, changes } of result.changes) {
    counts[action]++;
    if (action === "unchanged") continue;
    const what = action === "update" ? `: ${changes.join(", ")}` : "";
    log.info(`${verb[action]} ${username}${what}`, { user: username, action, changes });
  }
  const summary = result.dryRun
    ? `users: ${counts.create} to create, ${counts.update} to update, ${counts.unchanged} unchanged (dry run: nothing written)`
    : `users: ${counts.create} created, ${counts.update} updated, ${counts.unchanged} unchanged`;
  log.info(summary, {
    summary: true,
    dry_run: result.dryRun,
    created: counts.create,
    updated: counts.update,
    unchanged: counts.unchanged,
    duration_ms: durationMs,
  });
}

// ---------------------------------------------------------------------------
// Main

/** Runs the tool with `args` and returns its exit status. */
export async function main(args: string[], env: Env, output: Output = processOutput): Promise<number> {
  const started = performance.now();
  let options: Options;
  try {
    options = parseOptions(args, env);
  } catch (error) {
    output.stderr(`error: ${(error as Error).message}; see --help`);
    return EXIT.badInput;
  }
  if (options.help) {
    output.stdout(HELP.trimEnd());
    return EXIT.ok;
  }
  if (options.version) {
    output.stdout(`barycenter-user-sync ${VERSION}`);
    return EXIT.ok;
  }
  const log = createLogger(options.logFormat, output);
  try {
    const users = validateUsers(parseUsersJson(await readUsersFile(options.file), options.file));
    if (options.validateOnly) {
      log.info(`${options.file}: ${users.length} users, valid`, { file: options.file, users: users.length });
      return EXIT.ok;
    }
    const store = openStore(await resolveDatabaseUrl(options));
    let result: SyncResult;
    try {
      result = await syncUsers(store, users, { dryRun: options.dryRun });
    } finally {
      await store.close().catch(() => {});
    }
    reportResult(result, log, Math.round(performance.now() - started));
    return EXIT.ok;
  } catch (error) {
    return reportFailure(error, log);
  }
}

function reportFailure(error: unknown, log: Logger): number {
  if (error instanceof UsageError) {
    log.error(`${error.message}; see --help`);
    return EXIT.badInput;
  }
  if (error instanceof InputError) {
    log.error(error.message, error.problems.length > 0 ? { problems: error.problems } : undefined);
    return EXIT.badInput;
  }
  if (error instanceof DatabaseError) {
    const outcome = error.inTransaction ? "the transaction was rolled back, nothing was changed" : "nothing was changed";
    log.error(`${error.message}; ${outcome}`);
    return EXIT.database;
  }
  // A bug of ours: the stack helps a report, and holds code locations, not data.
  log.error(`unexpected ${(error as Error)?.stack ?? String(error)}`);
  return EXIT.unexpected;
}

const processOutput: Output = {
  stdout: (line) => process.stdout.write(line + "\n"),
  stderr: (line) => process.stderr.write(line + "\n"),
};

function isMainModule(): boolean {
  const meta = import.meta as ImportMeta & { main?: boolean };
  if (typeof meta.main === "boolean") return meta.main;
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isMainModule()) {
  process.exitCode = await main(process.argv.slice(2), process.env);
}
