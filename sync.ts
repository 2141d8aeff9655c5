#!/usr/bin/env node
/**
 * barycenter-user-sync: makes Barycenter's `users` and `properties` tables
 * match a JSON file of users, in one transaction, before Barycenter starts.
 *
 * The file reads top to bottom as the pipeline it runs:
 * options → read → validate → plan (compare with the database) →
 * apply (one transaction) → report. Each section is a foldable region:
 *
 * - Errors: each kind maps to one exit status
 * - Options: one table ({@linkcode OPTIONS}) builds the help, the parser and the defaults
 * - Read: the users files (several, directories too) as text, then JSON
 * - Validate: one valibot schema per user, which `users.schema.json` is generated from
 * - Plan: what to write, compared with the database, without I/O ({@linkcode planChanges})
 * - Passwords: Argon2 hashing and verifying, the no-change fast path's state and its per-bucket proofs
 * - Stores: one interface; the columns and statements written once, each backend a dialect and a runner
 * - Apply: {@linkcode syncUsers}, one transaction in named steps
 * - Report: the text and JSON logs, progress, the summary
 * - Main: the command line, hash-password, --watch (the sidecar's loop), signals, exit statuses
 * - Helpers: leaf functions (the JSON scanner, the hidden prompt, cgroup probing, URL redaction)
 *
 * Runs as `node sync.ts` (Node.js 22.18 or newer strips the types) and as
 * `deno run sync.ts`; it therefore uses only erasable TypeScript and the
 * runtime's `node:` modules.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import {
  close,
  constants,
  existsSync,
  fstat,
  fstatSync,
  type FSWatcher,
  open,
  openSync,
  read,
  readdir,
  readdirSync,
  readFileSync,
  realpath,
  realpathSync,
  stat,
  type Stats,
  statSync,
  watch,
  writeSync,
} from "node:fs";
import { availableParallelism } from "node:os";
import process from "node:process";
import { basename, dirname, join, resolve as resolvePath } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";
import {
  argon2Hash,
  argon2HashRaw,
  argon2Verify,
  type BaseIssue,
  isPostgresError,
  loadArgon2,
  loadPostgres,
  parseToml,
  type postgres,
  v,
} from "./deps.ts";

// Loaded at first use, not at start: node:crypto (with the 20 modules it loads) is 8 % of the bundle's start-up
// CPU, and `--validate`, `--help` and a run whose file fails validation never use it. Same signatures as
// node:crypto's own.
let nodeCrypto: typeof import("node:crypto") | undefined;
const crypto = () => nodeCrypto ??= process.getBuiltinModule("node:crypto");
const createHash = (algorithm: string) => crypto().createHash(algorithm);
const createHmac = (algorithm: string, key: Buffer) => crypto().createHmac(algorithm, key);
const randomBytes = (size: number) => crypto().randomBytes(size);
const timingSafeEqual = (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => crypto().timingSafeEqual(a, b);

/** The tool's version, printed by `--version`. */
export const VERSION = "0.1.0";

/** Exit statuses, as documented in the README. */
const EXIT = {
  ok: 0,
  unexpected: 1,
  badInput: 2,
  database: 3,
  /** `--check` found that a sync would change something. */
  drift: 4,
} as const;

/** Where the users file is read from when neither `--file` nor `$USERS_FILE` says. */
export const DEFAULT_USERS_FILE = "/etc/barycenter/users.json";

/** Barycenter's own default database: `barycenter.db` in the working directory. */
const DEFAULT_DATABASE_URL = "sqlite://barycenter.db?mode=rwc";

/** Limits on input, so that a hostile or broken file fails clearly instead of exhausting the pod. */
const LIMITS = {
  /** Default of `--max-file-size`, in MiB. */
  fileMiB: 16,
  /**
   * Users one file may hold: the most whose first sync stays within the chart's 256Mi (251 MiB measured for
   * 50,000 with two Argon2 threads; 100,000 took 354 MiB) and whose no-change re-sync stays under 200 MiB and 5 s
   * (188 MiB, 2.0 s for 50,000; 298 MiB for 100,000), as the image runs the tool: bench cases 9 and 10.
   */
  users: 50_000,
} as const;

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

// #region Errors: each kind maps to one exit status

/** Bad command line: exit 2, nothing read from or written to a database. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Bad users file: exit 2, every problem listed, nothing written. */
export class InputError extends Error {
  override name = "InputError";
  /** One line per problem, each naming its place, e.g. `users[3].email: invalid email address`. */
  problems: string[];
  constructor(message: string, problems: string[] = []) {
    super(message);
    this.problems = problems;
  }
}

/**
 * The runtime cannot do what the run needs: a Node.js without `node:sqlite`,
 * a Deno permission not granted. Exit 2, nothing read from or written to a
 * database; the message says what to run instead.
 */
class RuntimeError extends Error {
  override name = "RuntimeError";
}

/** The database could not be reached or the transaction failed: exit 3, rolled back. */
class DatabaseError extends Error {
  override name = "DatabaseError";
  /** Whether a transaction had begun (and so was rolled back). */
  inTransaction: boolean;
  constructor(message: string, options: { inTransaction?: boolean; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.inTransaction = options.inTransaction ?? true;
  }
}
// #endregion

// #region Options: one table, the parser, the database URL

/** What a run is: a sync, a plan only, a plan that exits 4 on drift, or the file checked alone. */
export type Mode = "sync" | "dry-run" | "check" | "validate";

/** What the command line and the environment ask for. */
export interface Options {
  /** `sync-users` (the default, also Barycenter's word) or `hash-password`. */
  command: "sync" | "hash-password";
  mode: Mode;
  /**
   * The users files and directories, in the order given: `--file` (repeatable), else `$USERS_FILE` split at
   * `:`, else {@linkcode DEFAULT_USERS_FILE}. Relative paths are relative to {@linkcode Options.workingDir}.
   */
  files: string[];
  /**
   * The directory relative paths are read from: `$INIT_CWD` when set (npm sets it to the directory `npm run`
   * was typed in, while it runs the script in the package's root), else the process's working directory.
   */
  workingDir: string;
  /** From `--database-url` or the environment; otherwise the config file or the default decides. */
  databaseUrl: string | undefined;
  /** Where {@linkcode Options.databaseUrl} came from: `--database-url` or `$VARIABLE`. */
  databaseUrlSource: string | undefined;
  /** Barycenter's `config.toml`, whose `[database] url` is used when nothing above gives one. */
  config: string | undefined;
  logFormat: "text" | "json";
  /** Seconds to keep retrying an unreachable database (and SQLite's busy timeout); 0: no waiting. */
  waitSeconds: number;
  /** Seconds one SQL statement may take, waiting for another sync's lock included. */
  statementTimeoutSeconds: number;
  /** Largest users file accepted, in bytes. */
  maxFileBytes: number;
  /** The `password_mode` of users that do not give one. */
  passwordMode: PasswordMode;
  /** Also delete users the tool created that the file no longer lists. */
  prune: boolean;
  /** Most users one run may prune; a run that would prune more does nothing. */
  maxPrune: number;
  /** Keep running after the first sync, and sync again on file changes and every `resyncIntervalSeconds`. */
  watch: boolean;
  /** With `watch`: seconds between re-syncs when no file changes. */
  resyncIntervalSeconds: number;
  help: boolean;
  version: boolean;
}

/** The environment variables the tool reads. */
export type Env = Record<string, string | undefined>;

/**
 * One command-line option: its flag, the variables that stand in for it, its
 * default and its help, stated once. The help text, the parser and the
 * defaults are all built from {@linkcode OPTIONS}.
 */
interface OptionSpec {
  short?: string;
  /** The value's name in the help (`PATH`); none for a switch. */
  value?: string;
  /** Variables read, in order, when the option is not given. */
  env?: string[];
  /** Numbers: the default and the smallest value accepted. */
  number?: { default: number; min: number };
  /** The option may be given more than once; its values are kept in order. */
  multiple?: boolean;
  /** Help lines, without the flag column. */
  help: string[];
}

const OPTIONS = {
  file: {
    short: "f",
    value: "PATH",
    env: ["USERS_FILE"],
    multiple: true,
    help: [
      "users JSON file, or a directory: its *.json files in name",
      "order, names beginning with . skipped (a Secret mounted as a",
      "volume); repeat for several, merged into one list; default",
      `$USERS_FILE (paths separated by :), else ${DEFAULT_USERS_FILE};`,
      "relative paths are read from $INIT_CWD (set by npm), else here",
    ],
  },
  "database-url": {
    short: "d",
    value: "URL",
    env: ["DATABASE_URL", "BARYCENTER__DATABASE__URL"],
    help: [
      "sqlite://PATH?mode=rwc or postgres://user:pass@host:5432/db;",
      "default $DATABASE_URL, else $BARYCENTER__DATABASE__URL,",
      `else [database] url of --config, else ${DEFAULT_DATABASE_URL}`,
    ],
  },
  config: { short: "c", value: "PATH", help: ["Barycenter's config.toml, read for [database] url"] },
  "dry-run": {
    help: ["read, validate, compare with the database and print what", "would change; write nothing"],
  },
  check: {
    help: [
      "like --dry-run, then exit 0 when the database matches the",
      "file and 4 when a sync would change something: drift",
      "detection for CI and monitoring",
    ],
  },
  validate: {
    help: [
      "read and validate the file only; no database connection, and",
      "no password_file or password_env read (they exist where the",
      "sync runs)",
    ],
  },
  "log-format": { value: "FORMAT", help: ["text (default) or json: one JSON object a line"] },
  wait: {
    value: "SECONDS",
    number: { default: 30, min: 0 },
    help: [
      "keep retrying a database that is not reachable yet, and wait",
      "for a locked SQLite file, this long (default 30; 0: no waiting)",
    ],
  },
  "statement-timeout": {
    value: "SECONDS",
    number: { default: 600, min: 1 },
    help: ["longest one SQL statement may take, waiting for a concurrent", "sync included (default 600)"],
  },
  "max-file-size": {
    value: "MIB",
    number: { default: LIMITS.fileMiB, min: 0.001 },
    help: [`largest users file accepted, each file (default ${LIMITS.fileMiB})`],
  },
  "password-mode": {
    value: "MODE",
    help: [
      "password_mode of users that give none: enforce (default: the",
      "file's password is kept in force) or initial (set when the user",
      "is created, then left to the user)",
    ],
  },
  prune: {
    help: [
      "also delete the users this tool created that the file no",
      "longer lists; never users it did not create, never admin",
    ],
  },
  "max-prune": {
    value: "N",
    number: { default: 5, min: 0 },
    help: ["with --prune, change nothing and exit 2 when more than N", "users would be pruned (default 5)"],
  },
  watch: {
    help: [
      "sync, then keep running (a sidecar): sync again after each",
      "change to the file or its directory (after 1 s of quiet) and",
      "every --resync-interval; a failed sync is logged and retried;",
      "SIGTERM between syncs exits 0. With --validate: validate once",
    ],
  },
  "resync-interval": {
    value: "SECONDS",
    number: { default: 300, min: 0.1 },
    help: [
      "with --watch, sync at least this often, putting back changes",
      "made in the database by hand (default 300)",
    ],
  },
  help: { short: "h", help: ["show this help"] },
  version: { short: "V", help: ["show the version"] },
} satisfies Record<string, OptionSpec>;

type OptionName = keyof typeof OPTIONS;

/** The modes chosen by a switch; without one, a run syncs. */
const MODE_SWITCHES = ["dry-run", "check", "validate"] as const;

/** Text printed by `--help`: the usage, then {@linkcode OPTIONS}, then the exit statuses. */
const HELP = helpText();

function helpText(): string {
  const lines = [
    "Usage: barycenter-user-sync [-c CONFIG] [sync-users] [options]",
    "       barycenter-user-sync hash-password   (reads a password from standard input)",
    "  run as: npx --no-install barycenter-user-sync ...  (in a clone, after npm ci)",
    "          node dist/sync.mjs ...                     (the bundle; the image's entrypoint)",
    "",
    "Makes Barycenter's users match a JSON file, in one transaction. hash-password",
    "prints the Argon2id hash of a password, for a users file's password_hash.",
    "",
    "Options:",
  ];
  for (const [name, spec] of Object.entries(OPTIONS) as [OptionName, OptionSpec][]) {
    const flag = `${spec.short ? `-${spec.short}, ` : "    "}--${name}${spec.value ? ` ${spec.value}` : ""}`;
    const [first, ...rest] = spec.help;
    // A flag too long for its column gets a line of its own.
    if (flag.length > 23) lines.push(`  ${flag}`, ...spec.help.map((line) => " ".repeat(27) + line));
    else lines.push(`  ${flag.padEnd(25)}${first}`, ...rest.map((line) => " ".repeat(27) + line));
  }
  lines.push(
    "",
    "Environment:",
    "  USERS_FILE               --file when not given",
    "  DATABASE_URL, BARYCENTER__DATABASE__URL",
    "                           --database-url when not given, in this order",
    "  INIT_CWD                 set by npm: relative paths are resolved against it",
    "  NO_COLOR                 set: no colours in text lines",
    "  UV_THREADPOOL_SIZE       Argon2 threads (default: the usable CPU cores)",
    "  USER_SYNC_STATUS_SECONDS --watch: most seconds without a line (default 3600)",
    "  the variables a users file names in password_env",
    "",
    "Exit status:",
    "  0    success (--check: the database matches the file)",
    "  2    bad usage or bad input; nothing written",
    "  3    database unreachable, or a statement failed (rolled back)",
    "  4    --check found drift (a sync would change something)",
    "  1    unexpected error (a bug: please report it)",
    "  130  stopped by SIGINT, 143 stopped by SIGTERM (rolled back)",
  );
  return lines.join("\n") + "\n";
}

/** Reads the command line and the environment; throws {@linkcode UsageError}. */
export function parseOptions(args: string[], env: Env): Options {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      // `sync-users` is accepted so that Barycenter's own init container arguments work unchanged.
      allowPositionals: true,
      options: Object.fromEntries(
        (Object.entries(OPTIONS) as [OptionName, OptionSpec][]).map(([name, spec]) => [
          name,
          {
            type: spec.value ? "string" : "boolean",
            ...(spec.short ? { short: spec.short } : {}),
            ...(spec.multiple ? { multiple: true } : {}),
          },
        ]),
      ) as Record<OptionName, { type: "string" | "boolean"; short?: string; multiple?: boolean }>,
    });
  } catch (error) {
    throw new UsageError(argumentProblem(error, args));
  }
  const values = parsed.values as Partial<Record<OptionName, string | boolean | string[]>>;
  const words = parsed.positionals;
  const unexpected = words.filter((word) => word !== "sync-users" && word !== "hash-password");
  if (unexpected.length > 0 || words.length > 1) {
    const word = unexpected[0] ?? words[1];
    // A database URL typed without -d would carry its password into the message.
    const shown = /[:@/]/.test(word)
      ? "(a path or URL? give it with --file or --database-url)"
      : `"${word.slice(0, 40)}"`;
    throw new UsageError(
      `unexpected argument ${shown}; the command words are sync-users (the default) and hash-password`,
    );
  }
  /** The option's value, else the first of its variables that is set and not empty. */
  const text = (name: OptionName): string | undefined => {
    const given = values[name];
    if (typeof given === "string" && given !== "") return given;
    const spec: OptionSpec = OPTIONS[name];
    return spec.env?.map((variable) => env[variable]).find((value) => value !== undefined && value !== "");
  };
  /** Where {@linkcode text} found the option's value: the flag, or the variable. */
  const source = (name: OptionName): string | undefined => {
    if (typeof values[name] === "string" && values[name] !== "") return `--${name}`;
    const spec: OptionSpec = OPTIONS[name];
    const variable = spec.env?.find((variable) => env[variable] !== undefined && env[variable] !== "");
    return variable === undefined ? undefined : `$${variable}`;
  };
  const number = (
    name: "wait" | "statement-timeout" | "max-file-size" | "max-prune" | "resync-interval",
  ): number => {
    const { default: fallback, min } = OPTIONS[name].number;
    const value = text(name);
    if (value === undefined) return fallback;
    const n = Number(value);
    if (value.trim() === "" || !Number.isFinite(n) || n < min) {
      throw new UsageError(`--${name} must be a number of at least ${min}`);
    }
    return n;
  };
  const maxPrune = number("max-prune");
  if (!Number.isInteger(maxPrune)) throw new UsageError("--max-prune must be a whole number of users");
  const logFormat = text("log-format") ?? "text";
  if (logFormat !== "text" && logFormat !== "json") {
    throw new UsageError(`--log-format must be "text" or "json"`);
  }
  const passwordMode = text("password-mode") ?? "enforce";
  if (passwordMode !== "enforce" && passwordMode !== "initial") {
    throw new UsageError(`--password-mode must be "enforce" or "initial"`);
  }
  const modes = MODE_SWITCHES.filter((mode) => values[mode] === true);
  if (modes.length > 1) throw new UsageError(`--${modes[0]} and --${modes[1]} exclude each other`);
  const watch = values.watch === true;
  // A watcher writes: a plan or a drift check that never ends would report nothing anyone reads.
  if (watch && (modes[0] === "dry-run" || modes[0] === "check")) {
    throw new UsageError(`--watch and --${modes[0]} exclude each other (for drift, run --check on a schedule)`);
  }
  if (!watch && values["resync-interval"] !== undefined) {
    throw new UsageError("--resync-interval applies only with --watch");
  }
  const opensDatabase = modes[0] !== "validate" && words[0] !== "hash-password";
  return {
    command: words[0] === "hash-password" ? "hash-password" : "sync",
    mode: modes[0] ?? "sync",
    files: usersFilePaths(values.file as string[] | undefined, env),
    workingDir: resolvePath(variable(env, "INIT_CWD") || process.cwd()),
    // Read only by runs that open a database: under Deno each variable read needs a permission.
    ...(opensDatabase
      ? { databaseUrl: text("database-url"), databaseUrlSource: source("database-url") }
      : { databaseUrl: undefined, databaseUrlSource: undefined }),
    config: text("config"),
    logFormat,
    waitSeconds: number("wait"),
    statementTimeoutSeconds: number("statement-timeout"),
    maxFileBytes: Math.floor(number("max-file-size") * 1024 * 1024),
    passwordMode,
    prune: values.prune === true,
    maxPrune,
    watch,
    resyncIntervalSeconds: number("resync-interval"),
    help: values.help === true,
    version: values.version === true,
  };
}

/** The users files to read: every `--file` in order, else `$USERS_FILE` split at `:`, else the default. */
function usersFilePaths(given: string[] | undefined, env: Env): string[] {
  const options = (given ?? []).filter((path) => path !== "");
  if (options.length > 0) return options;
  const listed = (env.USERS_FILE ?? "").split(":").filter((path) => path !== "");
  return listed.length > 0 ? listed : [DEFAULT_USERS_FILE];
}

/**
 * An environment variable, or undefined when it is unset or the runtime does
 * not let the tool read it (Deno without `--allow-env` for it): a variable
 * that only refines a default must not stop the run.
 */
function variable(env: Env, name: string): string | undefined {
  try {
    return env[name];
  } catch {
    return undefined;
  }
}

/**
 * parseArgs' complaint in our own words: its text quotes the option oddly and
 * gives advice about `--` that does not apply here. Never a value: an option's
 * argument may be a password-bearing URL.
 */
function argumentProblem(error: unknown, args: string[]): string {
  const { code, message } = error as { code?: string; message?: string };
  const named = /'(-[^',\s]*)(?:,\s*(--[^'\s]+))?/.exec(String(message));
  // The option as the user typed it: parseArgs gives "-f, --file" for both spellings.
  const option = named?.[2] && args.some((a) => a === named[2] || a.startsWith(`${named[2]}=`))
    ? named[2]
    : named?.[1] ?? "an option";
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    const suggestion = nearestOption(option);
    return `unknown option ${option.slice(0, 40)}${suggestion ? `; did you mean --${suggestion}?` : ""}`;
  }
  if (/argument missing/.test(String(message))) {
    const name = (named?.[2] ?? named?.[1] ?? "").replace(/^-+/, "") as OptionName;
    const value = (OPTIONS[name] as OptionSpec | undefined)?.value ?? "a value";
    return `${option} needs a value (${option} ${value})`;
  }
  if (/does not take an argument/.test(String(message))) return `${option} is a switch and takes no value`;
  return String(message).split("\n")[0];
}

/** The known long option nearest to `typed` by edit distance, when it is close enough to be a typo. */
function nearestOption(typed: string): string | undefined {
  const word = typed.replace(/^-+/, "").split("=")[0].toLowerCase();
  if (word.length < 2) return undefined;
  let best: { name: string; distance: number } | undefined;
  for (const name of Object.keys(OPTIONS)) {
    const distance = editDistance(word, name);
    if (!best || distance < best.distance) best = { name, distance };
  }
  // A third of the name may be wrong: --flie, --dryrun and --databse-url are typos, --foo is not.
  return best && best.distance <= Math.max(1, Math.floor(best.name.length / 3)) ? best.name : undefined;
}

/** A database URL and where it came from, in words for the `database:` line. */
interface DatabaseUrlChoice {
  url: string;
  /** `--database-url`, `$DATABASE_URL`, `config ../chart/config.toml`, or `Barycenter's default`. */
  source: string;
  /** Set when a config file was read but gave no `[database] url`: worth a warning. */
  configWithoutUrl?: string;
}

/**
 * The database URL in Barycenter's own order: option or environment, then
 * `[database] url` of the config file, then Barycenter's default.
 */
async function resolveDatabaseUrl(options: Options): Promise<DatabaseUrlChoice> {
  if (options.databaseUrl !== undefined) {
    return { url: options.databaseUrl, source: options.databaseUrlSource ?? "--database-url" };
  }
  const fallback = { url: DEFAULT_DATABASE_URL, source: "Barycenter's default" };
  if (options.config === undefined) return fallback;
  const path = resolvePath(options.config);
  let bytes: Uint8Array | undefined;
  try {
    // Whole or refused: a file cut short at the limit could still parse, without its [database] url.
    bytes = await readWhole(path, LIMITS.fileMiB * 1024 * 1024, true);
  } catch (error) {
    const reason = whyUnreadable(error, {
      missing: "file not found; check the path given with -c/--config",
      directory: "it is a directory, not a file; give the path of config.toml itself",
      denied: "permission denied; make the file readable by this user",
    });
    throw new UsageError(`cannot read config file ${path}: ${reason}`);
  }
  if (bytes === undefined) {
    throw new UsageError(`config file ${path} is larger than ${LIMITS.fileMiB} MiB; give Barycenter's config.toml`);
  }
  let text: string;
  try {
    text = strictUtf8.decode(bytes);
  } catch {
    throw new UsageError(`cannot read config file ${path}: not UTF-8 text`);
  }
  let config: Record<string, unknown>;
  try {
    config = await parseToml(text);
  } catch (error) {
    const { line, column } = error as { line?: number; column?: number };
    throw new UsageError(`config file ${path} is not valid TOML at line ${line}, column ${column}`);
  }
  const database = config.database;
  const url = isPlainObject(database) ? database.url : undefined;
  if (url === undefined) return { ...fallback, configWithoutUrl: path };
  if (typeof url !== "string" || url === "") {
    throw new UsageError(`config file ${path}: [database] url must be a non-empty string`);
  }
  return { url, source: `config ${options.config}` };
}
// #endregion

// #region Read: the users files, as text, then JSON

/** One users file to read. */
interface UsersFileRef {
  /** Its absolute path: what the tool opens, and what a "cannot read" message prints. */
  path: string;
  /** The path as given, or for a file found in a directory the directory as given joined with its name. */
  given: string;
}

/**
 * The users files that `paths` name, relative paths read from `workingDir`: a
 * file as it is (whether it exists is for the read to say), a directory as
 * every regular `*.json` file directly in it, sorted by name byte by byte
 * (`LC_ALL=C ls`), names beginning with `.` skipped. Symbolic links are
 * followed: a Secret's volume holds `users.json -> ..data/users.json` and
 * `..data -> ..2026_…`. A link whose target is gone is skipped, as the kubelet
 * leaves one for a moment when a key leaves the Secret. A file reached twice
 * (given twice, or as itself and through its directory) is read once.
 * Returns the files and, for each directory without a `*.json` file or that
 * cannot be listed, a problem.
 */
async function listUsersFiles(
  paths: string[],
  workingDir: string,
): Promise<{ files: UsersFileRef[]; problems: string[] }> {
  const files: UsersFileRef[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  const add = async (file: UsersFileRef) => {
    const real = await fsRealpath(file.path).catch(() => file.path);
    if (seen.has(real)) return;
    seen.add(real);
    files.push(file);
  };
  for (const given of paths) {
    const path = resolvePath(workingDir, given);
    const stats = await fsStat(path).catch(() => undefined);
    // Not there, or not a directory: reading it says what is wrong.
    if (!stats?.isDirectory()) {
      await add({ path, given });
      continue;
    }
    let names: string[];
    try {
      names = await fsReaddir(path);
    } catch (error) {
      const reason = whyUnreadable(error, {
        missing: "directory not found",
        directory: "it is a directory",
        denied: "permission denied; make the directory readable and searchable by this user",
      });
      problems.push(`cannot read users directory ${path}: ${reason}`);
      continue;
    }
    const candidates = names.filter((name) => name.endsWith(".json") && !name.startsWith("."))
      .sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    let found = 0;
    for (const name of candidates) {
      const entry = await fsStat(join(path, name)).catch(() => undefined);
      if (!entry?.isFile()) continue;
      found++;
      await add({ path: join(path, name), given: join(given, name) });
    }
    if (found === 0) {
      problems.push(
        `users directory ${path} holds no *.json file (names beginning with "." are skipped); put the users ` +
          "in a .json file there, or give the right directory",
      );
    }
  }
  return { files, problems };
}

/**
 * How messages name each file: its name when no other file read has the same
 * name (`team-a.json`), else the path as given (`a/users.json`, `b/users.json`).
 */
export function fileLabels(files: string[]): string[] {
  const names = files.map((file) => basename(file));
  return files.map((file, i) => names.indexOf(names[i]) === names.lastIndexOf(names[i]) ? names[i] : file);
}

/**
 * Reads a users file as UTF-8 text, at most `maxBytes` of it (a device or a
 * runaway file must not fill the pod's memory); throws {@linkcode InputError}
 * saying what to do. `label` names the file in messages but for "cannot
 * read", which prints the absolute path the tool looked at.
 */
async function readUsersFile(
  path: string,
  maxBytes: number = LIMITS.fileMiB * 1024 * 1024,
  label = path,
): Promise<string> {
  let bytes: Uint8Array | undefined;
  try {
    bytes = await readWhole(path, maxBytes);
  } catch (error) {
    const reason = whyUnreadable(error, {
      missing: "file not found; give the path with --file or $USERS_FILE",
      directory: "it is a directory, not a file; give the path of the JSON file itself",
      denied: "permission denied; make the file readable by this user",
    });
    throw new InputError(`cannot read users file ${resolvePath(path)}: ${reason}`);
  }
  if (bytes === undefined) {
    throw new InputError(
      `users file ${label} is larger than ${(maxBytes / 1024 / 1024).toFixed(1)} MiB; ` +
        "if it really is that large, raise the limit with --max-file-size",
    );
  }
  try {
    return strictUtf8.decode(bytes);
  } catch {
    const utf16 = (bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff);
    throw new InputError(
      `users file ${label} is ${utf16 ? "UTF-16 text (it starts with a UTF-16 byte order mark)" : "not UTF-8 text"}; ` +
        "save it as UTF-8 JSON",
    );
  }
}

/** Why a file could not be read, in the caller's words for the common cases, else its error code. */
function whyUnreadable(error: unknown, words: { missing: string; directory: string; denied: string }): string {
  const code = (error as { code?: string }).code;
  if (code === "ENOENT") return words.missing;
  if (code === "EISDIR") return words.directory;
  if (code === "EACCES" || code === "EPERM") return words.denied;
  if (code === "ENOTREG") return `it is ${(error as { kind?: string }).kind}, not a regular file`;
  return `cannot read it (${code ?? "unknown error"})`;
}

/** What a path that is not a regular file is, in words. */
function fileKind(stats: Stats): string {
  if (stats.isFIFO()) return "a named pipe";
  if (stats.isCharacterDevice()) return "a character device";
  if (stats.isBlockDevice()) return "a block device";
  if (stats.isSocket()) return "a socket";
  return "not a regular file";
}

/** Decodes UTF-8, refusing invalid bytes instead of replacing them. */
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A password from a file or a pipe: the one newline that files and `echo` end with is not part of it. */
function withoutTrailingNewline(text: string): string {
  return text.replace(/\r?\n$/, "");
}

/**
 * The bytes of a file of at most `maxBytes`, else undefined: one byte more is
 * read, so that a file longer than the limit is refused, never taken for whole
 * when cut short at it. `regularOnly` as for {@linkcode readAtMost}.
 */
async function readWhole(path: string, maxBytes: number, regularOnly = false): Promise<Uint8Array | undefined> {
  const bytes = await readAtMost(path, maxBytes + 1, regularOnly);
  return bytes.length > maxBytes ? undefined : bytes;
}

/**
 * Reads at most `limit` bytes of a file. With `regularOnly`, anything but a
 * regular file is refused (error code `ENOTREG`, or `EISDIR`) before a byte is
 * read: a FIFO or a terminal would make the read wait for a writer, for ever.
 */
async function readAtMost(path: string, limit: number, regularOnly = false): Promise<Uint8Array> {
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer; on a regular file it changes nothing.
  const fd = await fsOpen(path, regularOnly ? constants.O_RDONLY | constants.O_NONBLOCK : "r");
  try {
    const stats = await fsFstat(fd);
    if (regularOnly && stats.isDirectory()) throw Object.assign(new Error("is a directory"), { code: "EISDIR" });
    if (regularOnly && !stats.isFile()) {
      throw Object.assign(new Error("not a regular file"), { code: "ENOTREG", kind: fileKind(stats) });
    }
    // A regular file is read into one buffer of its size, and a byte more to see that it has grown: chunks
    // concatenated would copy every byte once more, into memory the process touches for the first time (a page
    // fault each 4 KiB). A pipe, a file that reports no size (/proc), or one still being written grows the buffer.
    let buffer = new Uint8Array(Math.min(limit, stats.isFile() && stats.size > 0 ? stats.size + 1 : 1 << 16));
    let total = 0;
    while (total < limit) {
      if (total === buffer.length) {
        const larger = new Uint8Array(Math.min(limit, buffer.length * 2));
        larger.set(buffer);
        buffer = larger;
      }
      const bytesRead = await fsRead(fd, buffer, total, buffer.length - total, null);
      if (bytesRead === 0) break;
      total += bytesRead;
    }
    return buffer.subarray(0, total);
  } finally {
    await fsClose(fd);
  }
}

// node:fs's callback API as promises, not node:fs/promises: that module loads Node.js's streams, readline and file
// watchers at every start (6 ms of a 130 ms run), for a file read that needs none of them. Asynchronous all the
// same, so that a signal ends a read that waits on a FIFO.
const fsOpen = promisify(open);
const fsFstat = promisify(fstat);
const fsRead = (fd: number, buffer: Uint8Array, offset: number, length: number, position: null) =>
  new Promise<number>((resolve, reject) =>
    read(fd, buffer, offset, length, position, (error, bytesRead) => error ? reject(error) : resolve(bytesRead))
  );
const fsClose = promisify(close);
const fsStat = promisify(stat);
const fsReaddir = promisify(readdir) as (path: string) => Promise<string[]>;
// The system's realpath, as node:fs/promises' is, so that a file reached twice is recognised as it always was.
const fsRealpath = promisify(realpath.native) as (path: string) => Promise<string>;

/**
 * Parses JSON text. On a syntax error it reports line and column from its own
 * scan, because the runtime's messages quote the input, which may hold passwords.
 */
export function parseUsersJson(text: string, source = "users file"): unknown {
  // A byte order mark is not JSON, but editors on some systems write one.
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  if (body.trim() === "") {
    throw new InputError(`${source} is empty; it must hold a JSON array of users, or {"users": [...]}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(body);
  } catch {
    const { offset, reason } = locateJsonError(body);
    const { line, column } = lineAndColumn(body, offset);
    // A YAML file (Helm values, a kubectl habit) fails at its first character: say what it is and what is expected.
    const yaml = looksLikeYaml(body)
      ? `; it looks like YAML, but a users file must be JSON: an array of users, or {"users": [...]}`
      : "";
    throw new InputError(
      `${source} is not valid JSON: ${reason} at line ${line}, column ${column}${yaml}; nothing was changed`,
    );
  }
  // Most files hold no number and no key twice, and counting proves it in half the scan's time (at 10,000 users,
  // 8 ms against 17 of a no-change run): only the others are scanned.
  const scan = holdsNoDuplicateKeyOrNumber(body, data)
    ? { duplicateKeys: [], inexactNumbers: [] }
    : scanJson(inV8Heap(body));
  if (scan.error !== undefined) {
    // The checks below are only as good as the scan: a scan that stops early must not let the rest of the file pass.
    const { line, column } = lineAndColumn(body, scan.error.offset);
    throw new Error(`the JSON scan stopped at line ${line}, column ${column} although JSON.parse accepts the file`);
  }
  const problems: string[] = [];
  // A hostile file may hold a million of either: each place is found without reading the text again.
  const locate = lineLocator(body);
  // JSON.parse keeps the last of two equal keys without a word: "password" twice must not pass.
  for (const { offset, key } of scan.duplicateKeys) {
    const { line, column } = locate(offset);
    problems.push(
      `line ${line}, column ${column}: key ${quoteKey(key)} appears twice in one object; ` +
        "JSON would keep only the last, so remove one",
    );
  }
  // A property value is stored as JSON.stringify gives it back: 1e999 would become null, -0 become 0, and
  // 12345678901234567890 become 12345678901234567000, without a word. (Numbers elsewhere are refused anyway.)
  for (const { offset, path } of scan.inexactNumbers) {
    // The place as validation names it (users[3].properties.n), whether the file is an array or {"users": [...]}.
    const inList = Array.isArray(data) ? path : path[0] === "users" ? path.slice(1) : [];
    if (typeof inList[0] !== "number" || inList[1] !== "properties" || inList.length < 3) continue;
    const { line, column } = locate(offset);
    problems.push(
      `users${inList.map(formatPathKey).join("")}: the number at line ${line}, column ${column} would be stored as a ` +
        "different number (about 17 significant digits are kept, -0 becomes 0, and a number too large or too small " +
        "becomes null or 0); write it as a string, or with fewer digits",
    );
  }
  if (problems.length > 0) throw invalid(problems);
  return data;
}

/**
 * `text` as a string of V8's own. Above about 1 MB, decoded text is an external
 * string (its characters outside V8's heap), which the JSON scan reads at half
 * the speed; JSON.parse and the colon count read it at full speed, so it is
 * copied (concatenating and slicing makes V8 copy it) only for the scan: at
 * 10,000 users the copy was 5 to 7 ms of every run, and 1.4 MB of memory
 * touched for the first time.
 */
function inV8Heap(text: string): string {
  return `${text} `.slice(0, -1);
}

/**
 * Whether JSON text that `JSON.parse` gave `data` is sure to hold no key
 * twice in one object and no number at all, which {@linkcode scanJson} would
 * otherwise have to find. Proven by counting colons: outside strings, JSON has
 * a colon only after each key, so the text's colons are its keys plus the
 * colons inside its strings. A key given twice is parsed once, its first value
 * dropped, and so are that value's keys and strings: the parsed keys and
 * colons then come to fewer than the text's. Equal counts prove that nothing
 * was dropped, as long as no escape (`\u003a`) makes a colon the text does not
 * show; then, or with any number (its spelling is in the text alone), false.
 */
function holdsNoDuplicateKeyOrNumber(text: string, data: unknown): boolean {
  if (/\\u003a/i.test(text)) return false;
  const parsed = keysAndColons(data, 0);
  return parsed >= 0 && parsed === colonsIn(text);
}

/**
 * The keys of a parsed JSON value, and the colons in its keys and strings; -1
 * when it holds a number, or nests deeper than 64 (the scan, which needs no
 * call stack, then reads it). Recursive over a value nesting no deeper: an
 * explicit stack of every user would be an allocation per value.
 */
function keysAndColons(value: unknown, depth: number): number {
  // `includes` first: most strings and keys hold no colon, and a call of colonsIn each, in code still cold at a
  // few thousand users, was most of this walk's time (at 1,000 users 7.5 ms; 3.5 ms with it).
  if (typeof value === "string") return value.includes(":") ? colonsIn(value) : 0;
  if (typeof value !== "object" || value === null) return typeof value === "number" ? -1 : 0;
  if (depth > 64) return -1;
  let count = 0;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const inner = keysAndColons(value[i], depth + 1);
      if (inner < 0) return -1;
      count += inner;
    }
    return count;
  }
  // for...in: no array of the keys. It would also walk a key added to Object.prototype: such a key proves nothing.
  for (const key in value) {
    if (!Object.hasOwn(value, key)) return -1;
    const inner = keysAndColons((value as Record<string, unknown>)[key], depth + 1);
    if (inner < 0) return -1;
    count += 1 + (key.includes(":") ? colonsIn(key) : 0) + inner;
  }
  return count;
}

/** How many colons `text` holds. */
function colonsIn(text: string): number {
  let count = 0;
  for (let at = text.indexOf(":"); at !== -1; at = text.indexOf(":", at + 1)) count++;
  return count;
}

/**
 * Whether text that is not JSON looks like YAML: its first line that is not
 * blank or a comment is a document marker, a directive, a list item or a
 * `key:` mapping entry. JSON never starts like that.
 */
function looksLikeYaml(text: string): boolean {
  const first = text.split(/\r?\n/).find((line) => line.trim() !== "" && !line.trimStart().startsWith("#"));
  if (first === undefined) return text.trimStart().startsWith("#");
  return /^(---|%YAML|- |-$|[\p{L}_][\p{L}\p{N}_.-]*\s*:(\s|$))/u.test(first.trimStart());
}
// #endregion

// #region Validate: the users, by one valibot schema
//
// One language: each rule of a user is a valibot action in the schema below, and
// `@valibot/to-json-schema` carries it into `users.schema.json`. A `check` stands
// only where valibot's own action means something else (lengths in code points,
// numbers compared inside a PHC string), with its JSON Schema words beside it in
// a `metadata` action. What valibot cannot see in one field (every unknown field,
// exactly one password, property names it skips, nesting, duplicates) is found by
// {@linkcode userProblems}. Problems are `{ index, path, message }`, printed as
// `path: message` at the edge.

/**
 * One user as the file gives it, after validation. Exactly one of the four
 * password fields is set; {@linkcode resolvePasswords} turns `password_file`
 * and `password_env` into `password`. Omitted fields are left as the database
 * holds them.
 */
export interface UserSpec {
  username: string;
  /** The password in plain text: hashed with Argon2id on the way in. */
  password?: string;
  /** An Argon2id PHC string, stored as given: a file that can live in Git. */
  password_hash?: string;
  /** A file whose content (one trailing newline trimmed) is the password: one Secret key each. */
  password_file?: string;
  /** An environment variable that holds the password. */
  password_env?: string;
  email?: string | null;
  enabled?: boolean;
  email_verified?: boolean;
  /** `initial`: the password is set when the user is created (or its hash is unusable), then never changed. */
  password_mode?: PasswordMode;
  /** Barycenter's `requires_2fa` column (added by its migration `m20250107_000002`). */
  requires_2fa?: boolean;
  properties?: Record<string, unknown>;
  /** `absent`: delete the user and every row keyed by its subject; such a user has only a username. */
  state?: "present" | "absent";
  /** Where the user was read; set when the users are read from files, never part of what is stored. */
  origin?: UserOrigin;
}

/** Where a user was read: for messages, and for the `password_file` paths that are relative to its file. */
export interface UserOrigin {
  /** How messages name the file, when several files are read; with one, messages name no file. */
  file?: string;
  /** The user's index in its file's list. */
  index: number;
  /** The absolute directory of the file that lists the user. */
  dir: string;
}

/** The user Barycenter re-creates, with the password `password123`, whenever it is missing at start. */
const DEFAULT_ADMIN = "admin";

/** The fields an absent user may have. */
const ABSENT_FIELDS = ["username", "state"];

/** Whether the file's password stays in force (`enforce`) or is only a first password (`initial`). */
export type PasswordMode = "enforce" | "initial";

const PASSWORD_FIELDS = ["password", "password_hash", "password_file", "password_env"] as const;

/**
 * What one `password_hash` may cost to verify. Barycenter verifies the stored
 * hash with the parameters the string carries at every login attempt for the
 * user, by anyone, and a later sync that gives the user a plain password
 * verifies against it too: a hash beyond these ties up both, for as long as
 * it takes.
 */
export const ARGON2_HASH_LIMITS = {
  /**
   * `m`, the KiB one verification holds: 256 MiB, the memory limit Barycenter's
   * chart gives the user-sync init container, which verifies stored hashes
   * (13 times Barycenter's own 19 MiB).
   */
  memoryKiB: 256 * 1024,
  /**
   * `m × t`, the work of one verification (t passes over m KiB): 64 times
   * Barycenter's own 19,456 × 2, about 0.8 s of a core where its own hashes
   * take 12 ms.
   */
  work: 64 * ARGON2_OPTIONS.memoryCost * ARGON2_OPTIONS.timeCost,
  /** `p`: see {@linkcode PHC_ARGON2ID}. */
  lanes: 255,
} as const;

/**
 * The pattern of an Argon2id PHC string, `$argon2id$v=19$m=…,t=…,p=…$salt$hash`,
 * from the patterns of its parts: `number(min, max)` for each parameter, and
 * `base64(min, max, end)` for the salt and the hash (`end` is what follows). The
 * bounds of each part are written here, once, for {@linkcode PHC_ARGON2ID} and
 * for the JSON Schema's pattern.
 */
function argon2idPhcPattern(
  number: (min: number, max: number) => string,
  base64: (min: number, max: number, end: string) => string,
): string {
  const { memoryKiB, work, lanes } = ARGON2_HASH_LIMITS;
  return `^\\$argon2id\\$v=19\\$m=${number(8, memoryKiB)},t=${number(1, Math.floor(work / 8))},` +
    `p=${number(1, lanes)}\\$${base64(11, 64, "\\$")}\\$${base64(16, 86, "$")}$`;
}

/**
 * An Argon2id hash in PHC form, `$argon2id$v=19$m=…,t=…,p=…$salt$hash`, salt
 * and hash in unpadded base64: its shape. Barycenter reads the parameters from
 * the string; the tool bounds them, each bound for a reason:
 *
 * - `m ≥ 8·p`, `t ≥ 1`, `p ≥ 1`: Argon2's own (RFC 9106); Barycenter's
 *   `argon2` crate refuses less, so such a hash could never log in.
 * - `p ≤ 255`: the tool's choice, not Argon2's (RFC 9106 and the crate allow
 *   2^24−1 lanes): lanes beyond a machine's cores gain nothing, and some
 *   Argon2 libraries hold `p` in one byte (Go's `golang.org/x/crypto/argon2`),
 *   so a hash with more could not move to them.
 * - memory and work: {@linkcode ARGON2_HASH_LIMITS}. The shape takes numbers of
 *   up to 10 digits and the checks compare them, which keeps the numbers exact;
 *   the crate's own type, u32, has 10 digits.
 * - `v=19` (Argon2 1.3): what Barycenter and `hash-password` write; the older
 *   v=16 is weaker and written by nothing current.
 * - salt of 11 to 64 characters: 8 bytes at least, Argon2's shortest salt; 64
 *   characters at most, the longest Barycenter's `password-hash` crate reads.
 * - hash of 16 to 86 characters: 12 to 64 bytes. The crate reads 10 to 64;
 *   outputs shorter than 12 bytes are weaker than any tool writes by default
 *   (Barycenter and `hash-password` write 32).
 * - salt and hash in canonical base64 ({@linkcode isCanonicalBase64}).
 */
const PHC_ARGON2ID = new RegExp(
  argon2idPhcPattern(() => "([1-9]\\d{0,9})", (min, max) => `([A-Za-z0-9+/]{${min},${max}})`),
);

/** The cost parameters of a string of {@linkcode PHC_ARGON2ID}'s shape, else undefined. */
function argon2idParams(hash: string): { m: number; t: number; p: number } | undefined {
  const match = PHC_ARGON2ID.exec(hash);
  if (!match) return undefined;
  const [m, t, p] = match.slice(1, 4).map(Number);
  return { m, t, p };
}

/** A PHC string of the right shape, with parameters Argon2 allows and lanes within the tool's bound. */
function isArgon2idPhc(hash: string): boolean {
  const params = argon2idParams(hash);
  return params !== undefined && params.p <= ARGON2_HASH_LIMITS.lanes && params.m >= 8 * params.p;
}

/**
 * Whether unpadded base64 is canonical: decoding it and encoding the bytes
 * again gives the same text. Barycenter's `base64ct` refuses anything else (a
 * length of 4n+1 characters, or unused low bits of the last character that
 * are not zero), so a PHC string with such a salt or hash could never log in.
 */
export function isCanonicalBase64(text: string): boolean {
  return /^[A-Za-z0-9+/]*$/.test(text) && Buffer.from(text, "base64").toString("base64").replace(/=+$/, "") === text;
}

/** Whether a string of {@linkcode PHC_ARGON2ID}'s shape has a canonical salt and hash; other strings pass here. */
function hasCanonicalBase64(hash: string): boolean {
  const match = PHC_ARGON2ID.exec(hash);
  return match === null || (isCanonicalBase64(match[4]) && isCanonicalBase64(match[5]));
}

/**
 * Why verifying an Argon2 PHC string (any variant: stored hashes are checked
 * too) would cost more than {@linkcode ARGON2_HASH_LIMITS} allow, naming the
 * limits and Barycenter's own parameters; undefined when it would not.
 */
export function argon2CostProblem(hash: string): string | undefined {
  const match = /^\$argon2(?:id|i|d)\$(?:v=\d+\$)?m=(\d+),t=(\d+),p=\d+\$/.exec(hash);
  if (!match) return undefined;
  const [m, t] = [Number(match[1]), Number(match[2])];
  const { memoryKiB, work } = ARGON2_HASH_LIMITS;
  if (m <= memoryKiB && m * t <= work) return undefined;
  const own = ARGON2_OPTIONS.memoryCost * ARGON2_OPTIONS.timeCost;
  const memory = (kib: number) =>
    kib >= 1024 * 1024 ? `${(kib / 1024 / 1024).toFixed(1)} GiB` : `${Math.ceil(kib / 1024)} MiB`;
  return `verifying it would take ${memory(m)} of memory and ${Math.ceil((m * t) / own)} times the work of ` +
    `Barycenter's own hashes, at every login attempt; the limits are ${memory(memoryKiB)} (m at most ` +
    `${memoryKiB}) and ${work / own} times (m × t at most ${work}), Barycenter's own being ` +
    `m=${ARGON2_OPTIONS.memoryCost},t=${ARGON2_OPTIONS.timeCost},p=${ARGON2_OPTIONS.parallelism}; ` +
    "make one with the hash-password command";
}

/** How deep a property value may nest: OIDC claims are shallow, and deeper input is an attack. */
const MAX_PROPERTY_DEPTH = 32;

// valibot's record skips these keys silently; a claim must never vanish without a word.
const RESERVED_KEYS = ["__proto__", "prototype", "constructor"];

const codePoints = (s: string) => {
  let n = 0;
  for (const _ of s) n++;
  return n;
};

/**
 * At most `max` characters, counted in code points as JSON Schema counts them
 * (valibot's `maxLength` counts UTF-16 units, so an emoji would count twice);
 * the metadata carries the limit into `users.schema.json`.
 */
function maxCodePoints(max: number, message = `must be at most ${max} characters`) {
  return [
    // A string has no more code points than UTF-16 units: only a longer one is counted (with an iterator, which
    // in a cold loop over every user's fields is an allocation per character).
    v.check((s: string) => s.length <= max || codePoints(s) <= max, message),
    v.metadata<string, { maxLength: number }>({ maxLength: max }),
  ] as const;
}

/** At least one character: valibot's count and JSON Schema's agree on that. */
const nonEmpty = (message: string) => v.minLength<string, 1, string>(1, message);

/** No control character (`\p{Cc}`: C0, DEL and C1). */
const NO_CONTROL_CHARACTER = /^\P{Cc}*$/u;

/** No lone UTF-16 surrogate: not text, and stored differently by each database. */
const NO_LONE_SURROGATE = /^\P{Cs}*$/u;

const LONE_SURROGATE_MESSAGE = "must be valid Unicode text (it holds a lone surrogate)";

/**
 * What text people type and read must be, usernames and emails alike: no
 * control characters (a NUL also fails PostgreSQL's whole transaction), no lone
 * surrogates (each database stores them differently, so they never compare
 * equal again), no Unicode format characters (bidirectional controls such as
 * U+202E, zero-width ones) or line and paragraph separators (U+2028, U+2029):
 * invisible, they make one text print as another, and no one types them into a
 * login form.
 */
const TEXT_RULES = [
  v.regex(NO_CONTROL_CHARACTER, "must not contain control characters"),
  v.regex(NO_LONE_SURROGATE, LONE_SURROGATE_MESSAGE),
  v.regex(
    /^[^\p{Cf}\p{Zl}\p{Zp}]*$/u,
    "must not contain invisible Unicode format or separator characters (such as U+202E, which reverses text, " +
      "or U+2028, a line separator)",
  ),
] as const;

/**
 * No C0 control character or DEL in a password. Barycenter's login is an HTML
 * form whose password field cannot hold them (a line break or a tab never
 * reaches it), so a user with such a password could never log in.
 */
const PASSWORD_CHARACTERS = v.regex(
  // deno-lint-ignore no-control-regex -- control characters are what it finds.
  /^[^\u0000-\u001f\u007f]*$/,
  "must not contain control characters (such as a line break or a tab): Barycenter's login form cannot take them, " +
    "so the user could never log in",
);

/**
 * An address as people write them: a local part without spaces, quotes or
 * brackets, and a domain of letter-or-digit labels (IDN and punycode
 * included). Deliverability is not this tool's business.
 */
const EMAIL =
  /^(?!\.)(?!.*\.\.)[^\s@"(),:;<>[\\\]]{1,64}(?<!\.)@(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?\.)*[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?$/u;

// Every message is ours: valibot's defaults quote the received value, which may be a password. A field's rules
// that share a message report it once.
const UsernameSchema = v.pipe(
  v.string("must be a string"),
  nonEmpty("must not be empty"),
  ...maxCodePoints(255),
  v.regex(/^(?!\s)[\s\S]*(?<!\s)$/u, "must not start or end with whitespace"),
  ...TEXT_RULES,
);

/** The longest password, in characters (code points). */
const PASSWORD_MAX_CHARACTERS = 1024;

/** The largest `password_file`, or `hash-password`'s standard input, read: far more than the longest password. */
const PASSWORD_FILE_MAX_BYTES = 64 * 1024;

/** Why input past {@linkcode PASSWORD_FILE_MAX_BYTES} is refused, after "larger than" or "more than". */
const BEYOND_ANY_PASSWORD = `${PASSWORD_FILE_MAX_BYTES / 1024} KiB, ` +
  `and a password is at most ${PASSWORD_MAX_CHARACTERS} characters`;

const PASSWORD_RULES = [
  nonEmpty("must not be empty"),
  ...maxCodePoints(PASSWORD_MAX_CHARACTERS),
  v.regex(NO_LONE_SURROGATE, LONE_SURROGATE_MESSAGE),
  PASSWORD_CHARACTERS,
] as const;

/** A password in the file; {@linkcode userProblems} reports its control characters, naming the user. */
const PasswordSchema = v.pipe(v.string("must be a string"), ...PASSWORD_RULES);

/** Checks a password from a file, a variable or `hash-password`, with the same rules (the caller names the user). */
const ResolvedPasswordSchema = v.pipe(v.string(), ...PASSWORD_RULES);

const PasswordHashSchema = v.pipe(
  v.string("must be a string"),
  v.check(
    isArgon2idPhc,
    "must be an Argon2id PHC string ($argon2id$v=19$m=…,t=…,p=…$salt$hash, m at least 8 × p, p at most " +
      `${ARGON2_HASH_LIMITS.lanes}); make one with the hash-password command`,
  ),
  v.check(
    hasCanonicalBase64,
    "must have its salt and hash in canonical base64 (no length of 4n+1 characters, no unused bits set in the last " +
      "character): Barycenter's verifier refuses anything else, so the user could never log in; make one with the " +
      "hash-password command",
  ),
  // The checks and the cost limit in JSON Schema's words, but for what a pattern cannot compute (the description).
  v.metadata({ pattern: argon2idPhcPattern(integerRangePattern, canonicalBase64Pattern) }),
);

const FILE_PATH = "must be a file path";

const PasswordFileSchema = v.pipe(
  v.string("must be a string: the path of a file holding the password"),
  nonEmpty(FILE_PATH),
  ...maxCodePoints(4096, FILE_PATH),
  v.regex(NO_CONTROL_CHARACTER, FILE_PATH),
);

const PasswordEnvSchema = v.pipe(
  v.string("must be a string: the name of an environment variable"),
  v.regex(/^[A-Za-z_][A-Za-z0-9_]{0,254}$/, "must be an environment variable name (letters, digits, _)"),
);

const EmailSchema = v.nullable(
  v.pipe(
    v.string("must be a string, or null to clear it"),
    ...maxCodePoints(254),
    ...TEXT_RULES,
    v.regex(EMAIL, "invalid email address"),
  ),
);

const FlagSchema = v.boolean("must be true or false");

const PROPERTY_NAME_MAX = 255;
const PROPERTY_NAME_LENGTH = `property names must be 1 to ${PROPERTY_NAME_MAX} characters`;
const PROPERTY_NAME_TEXT = "property names must be text without control characters";

const PropertyKeySchema = v.pipe(
  v.string(),
  nonEmpty(PROPERTY_NAME_LENGTH),
  ...maxCodePoints(PROPERTY_NAME_MAX, PROPERTY_NAME_LENGTH),
  v.regex(NO_CONTROL_CHARACTER, PROPERTY_NAME_TEXT),
  v.regex(NO_LONE_SURROGATE, PROPERTY_NAME_TEXT),
  // valibot's record drops these names before this schema sees them ({@linkcode userProblems} reports them).
  v.metadata({ not: { enum: RESERVED_KEYS } }),
);

const PropertiesSchema = v.pipe(
  v.custom<Record<string, unknown>>(isPlainObject, "must be an object of JSON values"),
  v.record(PropertyKeySchema, v.unknown()),
);

/**
 * The valibot schema of one user object. It refuses unknown fields, but names
 * only the first: {@linkcode userProblems} names every one. Each description
 * ends with what the tool checks and `users.schema.json` cannot express.
 */
export const UserSchema = v.pipe(
  v.strictObject(
    {
      username: v.pipe(
        UsernameSchema,
        v.description(
          "Unique username for login. Also unique ignoring letter case and Unicode normalisation (checked by the " +
            "tool; a JSON Schema cannot compare items)",
        ),
      ),
      password: v.optional(
        v.pipe(PasswordSchema, v.description("Plaintext password, hashed with Argon2id on import")),
      ),
      password_hash: v.optional(
        v.pipe(
          PasswordHashSchema,
          v.description(
            "Argon2id PHC string, stored as given (make one with hash-password). The tool also requires m ≥ 8 × p " +
              `and m × t ≤ ${ARGON2_HASH_LIMITS.work} (64 times Barycenter's own m=19456,t=2), which a pattern ` +
              "cannot compute",
          ),
        ),
      ),
      password_file: v.optional(
        v.pipe(
          PasswordFileSchema,
          v.description(
            "File holding the password, one trailing newline trimmed; what it holds follows the password's rules " +
              "(read at sync time, not by this schema)",
          ),
        ),
      ),
      password_env: v.optional(
        v.pipe(
          PasswordEnvSchema,
          v.description("Environment variable holding the password; its value follows the password's rules"),
        ),
      ),
      email: v.optional(v.pipe(EmailSchema, v.description("Email address; null clears it"))),
      enabled: v.optional(
        v.pipe(FlagSchema, v.description("Whether the user may log in; new users default to true")),
      ),
      email_verified: v.optional(
        v.pipe(FlagSchema, v.description("Whether the email is verified; new users default to false")),
      ),
      password_mode: v.optional(
        v.pipe(
          v.union([v.literal("enforce"), v.literal("initial")], 'must be "enforce" or "initial"'),
          v.description(
            "enforce (the default, or --password-mode): the password is kept in force at every sync. initial: it " +
              "is set when the user is created, or when the stored hash is not a usable Argon2id string, and " +
              "otherwise never verified nor changed",
          ),
        ),
      ),
      requires_2fa: v.optional(
        v.pipe(
          FlagSchema,
          v.description(
            "Whether Barycenter requires a second factor at login (its requires_2fa column, which exists once " +
              "Barycenter has started once); omitted: left as it is",
          ),
        ),
      ),
      properties: v.optional(
        v.pipe(
          PropertiesSchema,
          v.description(
            "Attributes and OIDC claims (name, given_name, picture, …), JSON values. The tool also refuses values " +
              `nested more than ${MAX_PROPERTY_DEPTH} levels deep, and numbers that would not be stored as ` +
              "written (1e999, -0, 12345678901234567890), which a JSON Schema cannot see",
          ),
        ),
      ),
      state: v.optional(
        v.pipe(
          v.picklist(["present", "absent"], 'must be "present" or "absent"'),
          v.description(
            '"absent" deletes the user, if it exists, and every row keyed by its subject; such a user has only ' +
              `a username, never "${DEFAULT_ADMIN}" (Barycenter re-creates it with a default password). ` +
              '"present" is the default',
          ),
        ),
      ),
    },
    "must be an object with at least a username and a password",
  ),
  // In JSON Schema's words ({@linkcode userProblems} says it in the tool's): an absent user has only a username
  // (not admin's) and its state; any other has exactly one password field.
  v.metadata({
    if: { properties: { state: { const: "absent" } }, required: ["state"] },
    then: {
      propertyNames: { enum: ABSENT_FIELDS },
      properties: { username: { not: { const: DEFAULT_ADMIN } } },
    },
    else: { oneOf: PASSWORD_FIELDS.map((field) => ({ required: [field] })) },
  }),
);

const USER_FIELDS = Object.keys(UserSchema.entries);

/** What a users list that is not an array is told. */
const USERS_NOT_AN_ARRAY = "must be an array of user objects";

const UsersSchema = v.pipe(
  v.array(UserSchema, USERS_NOT_AN_ARRAY),
  v.maxLength(LIMITS.users, `more than the ${LIMITS.users} users one file may hold; split the file`),
);

/**
 * The whole file, for `users.schema.json` (validation itself reads the root
 * by hand, for clearer messages): a bare array, or `{"$schema"?, "users"}`.
 */
export const UsersFileSchema = v.pipe(
  v.union([UsersSchema, v.strictObject({ $schema: v.optional(v.string()), users: UsersSchema })]),
  v.metadata({
    title: "Barycenter users file",
    description: 'Users for barycenter-user-sync: a JSON array of users, or {"users": [...]}. The tool also ' +
      "refuses what a JSON Schema cannot see: a key given twice in one object (JSON keeps only the last), and " +
      `a file larger than ${LIMITS.fileMiB} MiB (--max-file-size); the fields' descriptions say the rest`,
  }),
);

/**
 * A regular expression source matching the decimal numbers from `min` to
 * `max` (positive, without leading zeros), for JSON Schema patterns, which
 * cannot compare numbers inside a string.
 */
export function integerRangePattern(min: number, max: number): string {
  const alternatives: string[] = [];
  // Split by digit count, then by digit position: [lo, hi] of one length n.
  const sameLength = (lo: string, hi: string): string[] => {
    if (lo === hi) return [lo];
    let k = 0;
    while (lo[k] === hi[k]) k++;
    const prefix = lo.slice(0, k);
    const rest = lo.length - k - 1;
    const [a, b] = [Number(lo[k]), Number(hi[k])];
    const any = (n: number) => n === 0 ? "" : n === 1 ? "\\d" : `\\d{${n}}`;
    const digits = (from: number, to: number) =>
      from === 0 && to === 9 ? "\\d" : from === to ? String(from) : `[${from}-${to}]`;
    if (lo.slice(k + 1) === "0".repeat(rest) && hi.slice(k + 1) === "9".repeat(rest)) {
      return [prefix + (a === 0 && b === 9 ? any(rest + 1) : digits(a, b) + any(rest))];
    }
    const parts = sameLength(lo.slice(k), `${a}${"9".repeat(rest)}`).map((p) => prefix + p);
    if (b - a >= 2) parts.push(prefix + digits(a + 1, b - 1) + any(rest));
    parts.push(...sameLength(`${b}${"0".repeat(rest)}`, hi.slice(k)).map((p) => prefix + p));
    return parts;
  };
  for (let length = String(min).length; length <= String(max).length; length++) {
    const lo = Math.max(min, length === 1 ? 0 : 10 ** (length - 1));
    const hi = Math.min(max, 10 ** length - 1);
    alternatives.push(...sameLength(String(lo), String(hi)));
  }
  return `(?:${alternatives.join("|")})`;
}

/**
 * Canonical unpadded base64 of `min` to `max` characters followed by `end`:
 * whole groups of four, then two characters whose last has its low four bits
 * zero, or three whose last has its low two bits zero.
 */
function canonicalBase64Pattern(min: number, max: number, end: string): string {
  return `(?=[A-Za-z0-9+/]{${min},${max}}${end})(?:[A-Za-z0-9+/]{4})*` +
    "(?:[A-Za-z0-9+/][AQgw]|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048])?";
}

/** One problem of a users file: the user it concerns (none: the file as a whole), where, and what. */
interface Problem {
  index?: number;
  /** The place as printed: `users[3].password`, `(root)`, a top-level key; it may name the user. */
  path: string;
  message: string;
}

/** The error for a list of problems, each user's together in the order found, printed as `path: message`. */
function invalidUsers(problems: Problem[], what?: string): InputError {
  problems.sort((a, b) => (a.index ?? -1) - (b.index ?? -1));
  return invalid(problems.map(({ path, message }) => `${path}: ${message}`), what);
}

/**
 * Checks parsed JSON (a bare array of users, or `{"users": [...]}`) and returns
 * the users, the parsed objects themselves; throws {@linkcode InputError}
 * listing every problem with its place.
 */
export function validateUsers(data: unknown): UserSpec[] {
  const problems: Problem[] = [];
  let list: unknown;
  if (Array.isArray(data)) {
    list = data;
  } else if (isPlainObject(data) && "users" in data) {
    for (const key of Object.keys(data)) {
      // "$schema" lets editors validate the file as it is typed.
      if (key === "$schema" && typeof data[key] === "string") continue;
      if (key !== "users") {
        problems.push({
          path: formatKey(key),
          message: 'unknown top-level field; only "users" (and "$schema") are allowed',
        });
      }
    }
    list = data.users;
  } else {
    throw invalidUsers([{ path: "(root)", message: 'expected an array of users, or an object {"users": [...]}' }]);
  }
  if (Array.isArray(list) && list.length > LIMITS.users) {
    const message = `${list.length} users, more than the ${LIMITS.users} one file may hold; split the file`;
    throw invalidUsers([{ path: "users", message }]);
  }
  if (!Array.isArray(list)) throw invalidUsers([...problems, { path: "users", message: USERS_NOT_AN_ARRAY }]);
  // User by user, and the users returned are the parsed objects themselves: the schema transforms nothing, so its
  // output is a copy, and one kept for the whole list would outlive the young generation and be copied out of it
  // (at 10,000 users, 12 ms of a no-change run's garbage collection).
  // A user the schema refuses fails the file even where its issues are all left to userProblems' words.
  let refused = false;
  for (let index = 0; index < list.length; index++) {
    const result = v.safeParse(UserSchema, list[index]);
    if (!result.success) {
      refused = true;
      problems.push(...schemaProblems(result.issues, index));
    }
  }
  problems.push(...userProblems(list));
  if (problems.length > 0 || refused) throw invalidUsers(problems);
  return list as UserSpec[];
}

/** One users file, parsed: how messages name it, its absolute directory, and its JSON. */
export interface ParsedUsersFile {
  label: string;
  dir: string;
  data: unknown;
}

/**
 * Validates each file and merges their users into one list, in file order,
 * each user with its {@linkcode UserOrigin}. Returns every problem, each
 * prefixed with its file's label (`team-a.json: users[3].email: …`),
 * including a username that two files list, or that differs between two files
 * only in letter case or Unicode normalisation; the users only when there is
 * no problem. With one file (`several` false: the caller may have read more
 * files that failed), places are as {@linkcode validateUsers} gives them.
 */
export function mergeUsersFiles(
  files: ParsedUsersFile[],
  several = files.length > 1,
): { users: UserSpec[]; problems: string[] } {
  const users: UserSpec[] = [];
  const problems: string[] = [];
  for (const { label, dir, data } of files) {
    try {
      // validateUsers returns the caller's own objects: each user is copied once, with its origin.
      const valid = validateUsers(data);
      for (let index = 0; index < valid.length; index++) {
        users.push({ ...valid[index], origin: several ? { file: label, index, dir } : { index, dir } });
      }
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      problems.push(...error.problems.map((problem) => several ? `${label}: ${problem}` : problem));
    }
  }
  // One file has no other to clash with: a name it lists twice is its own problem (userProblems).
  if (files.length > 1) problems.push(...crossFileProblems(files));
  return { users: problems.length > 0 ? [] : users, problems };
}

/**
 * The usernames of later files that an earlier file already lists, exactly or
 * as a look-alike (the rule of {@linkcode userProblems}, across files); each
 * problem names both places.
 */
function crossFileProblems(files: { label: string; data: unknown }[]): string[] {
  const problems: string[] = [];
  const first = new Map<string, { file: number; index: number; username: string }>();
  files.forEach(({ label, data }, file) => {
    usersList(data).forEach((user, index) => {
      if (!isPlainObject(user) || typeof user.username !== "string") return;
      const folded = lookAlikeKey(user.username);
      const earlier = first.get(folded);
      if (earlier === undefined) first.set(folded, { file, index, username: user.username });
      // Twice in one file is that file's own problem (userProblems).
      if (earlier === undefined || earlier.file === file) return;
      const there = files[earlier.file].label;
      problems.push(
        earlier.username === user.username
          ? `${label}: users[${index}].username: ${quoteKey(user.username)} is also listed in ${there} ` +
            `(users[${earlier.index}]); a username may be listed in one file only, remove one`
          : `${label}: users[${index}].username: differs from users[${earlier.index}].username in ${there} only in ` +
            "letter case or Unicode normalisation; such look-alike accounts are refused, rename one",
      );
    });
  });
  return problems;
}

/** The list of users in parsed JSON, a bare array or `{"users": [...]}`; none when it is neither. */
function usersList(data: unknown): unknown[] {
  if (Array.isArray(data)) return data;
  return isPlainObject(data) && Array.isArray(data.users) ? data.users : [];
}

/**
 * The properties Barycenter puts into tokens and userinfo (`gather_claims`):
 * scope `profile`, then scope `email`, where these two override the users columns.
 */
const EMITTED_CLAIMS: readonly string[] = [
  "preferred_username",
  "name",
  "given_name",
  "family_name",
  "nickname",
  "picture",
  "profile",
  "website",
  "gender",
  "birthdate",
  "zoneinfo",
  "locale",
  "updated_at",
  "email",
  "email_verified",
];

/** A warning about a valid file: something it asks that will not work as it may seem. */
export interface FileWarning {
  /** Stable, for log pipelines: `unemitted_claims`, `claim_overrides_column`. */
  code: string;
  message: string;
  fields: Record<string, unknown>;
}

/**
 * What the claims of a valid file will not do in Barycenter: property names it
 * never emits (stored all the same, for other readers of `properties`), and
 * `properties.email` / `properties.email_verified` that differ from the user's
 * own field, since the property wins in tokens. Names users and properties, never values.
 */
function claimWarnings(specs: UserSpec[]): FileWarning[] {
  const warnings: FileWarning[] = [];
  const unemitted = new Set<string>();
  // Index loops over the users: see userProblems.
  for (let i = 0; i < specs.length; i++) {
    const keys = specs[i].properties === undefined ? [] : Object.keys(specs[i].properties!);
    for (let k = 0; k < keys.length; k++) if (!EMITTED_CLAIMS.includes(keys[k])) unemitted.add(keys[k]);
  }
  if (unemitted.size > 0) {
    const names = [...unemitted].sort();
    warnings.push({
      code: "unemitted_claims",
      message: `Barycenter never puts these properties into a token or userinfo (they are stored, for other ` +
        `readers of properties): ${names.join(", ")}`,
      fields: { properties: names },
    });
  }
  for (const field of ["email", "email_verified"] as const) {
    const users = specs.filter((s) =>
      s.properties !== undefined && Object.hasOwn(s.properties, field) && s[field] !== undefined &&
      !sameJson(JSON.stringify(s.properties[field]), s[field])
    ).map((s) => s.username);
    if (users.length === 0) continue;
    warnings.push({
      code: "claim_overrides_column",
      message: `properties.${field} differs from ${field} for ${users.join(", ")}: the property wins in tokens and ` +
        `userinfo; make them equal or drop one`,
      fields: { field, users },
    });
  }
  return warnings;
}

function invalid(problems: string[], what = "users file is"): InputError {
  const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
  return new InputError(`${what} invalid (${count}); nothing was changed`, problems);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

type Issue = BaseIssue<unknown>;

/**
 * valibot's issues with the user at `index` as problems, but for two that {@linkcode userProblems}
 * reports in full: the first unknown field of a user (`strictObject` names no
 * more), and control characters in a password (reported with the user's name).
 * A field's rules that share a message give one problem.
 */
function schemaProblems(issues: Issue[], index: number): Problem[] {
  const seen = new Set<string>();
  const problems: Problem[] = [];
  for (const issue of issues) {
    if (issue.type === "strict_object" && issue.expected === "never") continue;
    if (issue.type === "regex" && issue.requirement === PASSWORD_CHARACTERS.requirement) continue;
    const keys = [index, ...(issue.path ?? []).map((item) => item.key)];
    const identity = JSON.stringify([keys, issue.message]);
    if (seen.has(identity)) continue;
    seen.add(identity);
    const path = "users" + keys.map(formatPathKey).join("");
    const lastKey = keys.at(-1);
    const required = issue.type === "strict_object" && issue.input === undefined && typeof lastKey === "string";
    problems.push({
      index: typeof keys[0] === "number" ? keys[0] : undefined,
      path,
      message: required ? "is required" : issue.message,
    });
  }
  return problems;
}

/**
 * What the schema cannot see in one field, user by user: exactly one password
 * field; every unknown field (a typo such as "pasword" must not pass silently);
 * property names that JavaScript objects treat specially, and property values
 * nested too deeply; the password rules whose messages name the user as well
 * as the place (`users[3].password (user "alice"): …`), a password Barycenter's
 * login form cannot take and a password_hash too costly to verify; and
 * usernames that are not unique, or not unmistakable: two that differ only in
 * letter case or Unicode normalisation ("José" composed or decomposed) would
 * give Barycenter two look-alike accounts, so they are refused too.
 */
function userProblems(list: unknown[]): Problem[] {
  const problems: Problem[] = [];
  const firstIndex = new Map<string, number>();
  // Index loops, and the user's name quoted only for a message: this runs for every user of every run, before
  // V8 has optimised it, where each iterator, closure and string is one more allocation per user.
  let index = 0;
  const at = (path: string, message: string) => problems.push({ index, path: `users[${index}]${path}`, message });
  const who = (user: Record<string, unknown>) =>
    typeof user.username === "string" ? ` (user ${quoteKey(user.username)})` : "";
  for (; index < list.length; index++) {
    const user = list[index];
    if (!isPlainObject(user)) continue;
    let given = 0;
    for (let i = 0; i < PASSWORD_FIELDS.length; i++) if (user[PASSWORD_FIELDS[i]] !== undefined) given++;
    const keys = Object.keys(user);
    if (user.state === "absent") {
      for (let i = 0; i < keys.length; i++) {
        if (USER_FIELDS.includes(keys[i]) && !ABSENT_FIELDS.includes(keys[i])) {
          at(formatKey(keys[i], { dot: true }), 'an absent user ("state": "absent") may have only username and state');
        }
      }
      if (user.username === DEFAULT_ADMIN) {
        at(
          `.state${who(user)}`,
          `${DEFAULT_ADMIN} cannot be made absent: Barycenter re-creates "${DEFAULT_ADMIN}" with the password ` +
            `password123 whenever it is missing at start; list ${DEFAULT_ADMIN} with a real password, or with ` +
            '"enabled": false, instead',
        );
      }
    } else if (given === 0) {
      at(".password", "is required (or password_hash, password_file, password_env)");
    } else if (given > 1) {
      const fields = PASSWORD_FIELDS.filter((field) => user[field] !== undefined);
      at("", `give exactly one of ${PASSWORD_FIELDS.join(", ")}, not ${fields.join(" and ")}`);
    }
    for (let i = 0; i < keys.length; i++) {
      if (!USER_FIELDS.includes(keys[i])) {
        at(formatKey(keys[i], { dot: true }), `unknown field; a user may have only ${USER_FIELDS.join(", ")}`);
      }
    }
    if (isPlainObject(user.properties)) {
      const properties = user.properties;
      const names = Object.keys(properties);
      for (let i = 0; i < names.length; i++) {
        if (RESERVED_KEYS.includes(names[i])) {
          at(propertyPlace(names[i]), `the property names ${RESERVED_KEYS.join(", ")} are not supported`);
        } else if (depthExceeds(properties[names[i]], MAX_PROPERTY_DEPTH)) {
          at(propertyPlace(names[i]), `nested more than ${MAX_PROPERTY_DEPTH} levels deep`);
        }
      }
    }
    if (typeof user.password === "string" && !PASSWORD_CHARACTERS.requirement.test(user.password)) {
      at(`.password${who(user)}`, PASSWORD_CHARACTERS.message);
    }
    const cost = typeof user.password_hash === "string" && isArgon2idPhc(user.password_hash)
      ? argon2CostProblem(user.password_hash)
      : undefined;
    if (cost !== undefined) at(`.password_hash${who(user)}`, cost);
    if (typeof user.username !== "string") continue;
    const folded = lookAlikeKey(user.username);
    const first = firstIndex.get(folded);
    if (first === undefined) {
      firstIndex.set(folded, index);
    } else if ((list[first] as { username: string }).username === user.username) {
      at(".username", `duplicate of users[${first}]; usernames must be unique`);
    } else {
      at(
        ".username",
        `differs from users[${first}].username only in letter case or Unicode normalisation; such look-alike ` +
          "accounts are refused, rename one",
      );
    }
  }
  return problems;
}

/** Where a property of a user is, after `users[N]`: `.properties.name`, `.properties["odd key"]`. */
function propertyPlace(name: string): string {
  return `.properties${formatKey(name, { dot: true })}`;
}

/**
 * What two usernames that differ only in letter case or Unicode normalisation have in common: the name in
 * NFC, in lower case. A name of printable ASCII is its own NFC, so only its case is folded.
 */
function lookAlikeKey(username: string): string {
  return (/^[ -~]*$/.test(username) ? username : username.normalize("NFC")).toLowerCase();
}

/** Whether a JSON value nests deeper than `limit`, found without recursion. */
function depthExceeds(value: unknown, limit: number): boolean {
  if (typeof value !== "object" || value === null) return false; // most values: nothing to walk
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (typeof item !== "object" || item === null) continue;
    if (depth >= limit) return true;
    for (const child of Object.values(item)) stack.push([child, depth + 1]);
  }
  return false;
}

function formatPathKey(key: unknown): string {
  return typeof key === "number" ? `[${key}]` : formatKey(String(key), { dot: true });
}

/** A key, or a name, in double quotes, cut after 64 characters: for a message that names it alone. */
function quoteKey(key: string): string {
  return JSON.stringify(key.length > 64 ? key.slice(0, 64) + "…" : key);
}

/**
 * A key as a path segment: `name` (`.name` with `dot`, after a parent) when it
 * is an identifier, else `["odd key"]`; cut after 64 characters.
 */
function formatKey(key: string, options: { dot?: boolean } = {}): string {
  const shown = key.length > 64 ? key.slice(0, 64) + "…" : key;
  return /^[A-Za-z_$][\w$]*$/.test(shown) ? (options.dot ? "." : "") + shown : `[${JSON.stringify(shown)}]`;
}

/**
 * Turns `password_file` and `password_env` into `password`: reads each file
 * (one trailing newline trimmed, as `kubectl create secret --from-file` and
 * editors leave one) and each variable, then checks the result with the
 * password rules. Relative paths are relative to the users file that lists
 * the user ({@linkcode UserOrigin}; without one, to `baseDir`). Problems name
 * the user and the path or variable, never the content.
 */
async function resolvePasswords(specs: UserSpec[], env: Env, baseDir: string): Promise<UserSpec[]> {
  const problems: Problem[] = [];
  const resolveOne = async (spec: UserSpec, index: number): Promise<UserSpec> => {
    const { password_file, password_env, ...rest } = spec;
    let password: string | undefined;
    let path: string;
    const user = `(user ${JSON.stringify(spec.username)})`;
    const { file, index: inFile = index } = spec.origin ?? {};
    const place = file === undefined ? `users[${inFile}]` : `${file}: users[${inFile}]`;
    if (password_file !== undefined) {
      path = `${place}.password_file ${user}`;
      const absolute = resolvePath(spec.origin?.dir ?? baseDir, password_file);
      try {
        // A file longer is refused, not cut at the limit: its text would be judged by a part of it (a character
        // split there made it "not UTF-8 text").
        const bytes = await readWhole(absolute, PASSWORD_FILE_MAX_BYTES, true);
        if (bytes === undefined) {
          problems.push({
            index,
            path,
            message: `cannot read password_file ${absolute}: it is larger than ${BEYOND_ANY_PASSWORD}; ` +
              "check that it names the file of the password alone",
          });
          return rest;
        }
        password = withoutTrailingNewline(strictUtf8.decode(bytes));
      } catch (error) {
        const reason = error instanceof TypeError ? "not UTF-8 text" : whyUnreadable(error, {
          missing: "file not found",
          directory: "it is a directory; give the file of the Secret's key",
          denied: "permission denied",
        });
        problems.push({
          index,
          path,
          message: `cannot read password_file ${absolute}: ${reason}`,
        });
        return rest;
      }
    } else if (password_env !== undefined) {
      path = `${place}.password_env ${user}`;
      try {
        password = env[password_env];
      } catch {
        problems.push({ index, path, message: `not permitted to read the variable ${password_env}` });
        return rest;
      }
      if (password === undefined) {
        problems.push({ index, path, message: `the variable ${password_env} is not set` });
        return rest;
      }
    } else {
      return spec;
    }
    const check = v.safeParse(ResolvedPasswordSchema, password);
    if (!check.success) {
      problems.push(
        ...check.issues.map((issue) => ({ index, path, message: `the password it holds ${issue.message}` })),
      );
    }
    return { ...rest, password };
  };
  // Only the users with a secret to read wait for anything: the rest are taken as they are.
  const resolved = [...specs];
  const reads: Promise<void>[] = [];
  for (let index = 0; index < specs.length; index++) {
    if (specs[index].password_file === undefined && specs[index].password_env === undefined) continue;
    reads.push(resolveOne(specs[index], index).then((spec) => void (resolved[index] = spec)));
  }
  await Promise.all(reads);
  if (problems.length > 0) {
    const several = specs.some((spec) => spec.origin?.file !== undefined);
    throw invalidUsers(problems, several ? "users files are" : undefined);
  }
  return resolved;
}
// #endregion

// #region Plan: compare the file with what the database holds

/** A column's value in JavaScript: text, or a number for `bigint` (0/1 flags, Unix seconds). */
type ColumnValue<C> =
  | (C extends { type: "bigint" } ? number : string)
  | (C extends { nullable: true } ? null : never);

/** A `users` row to insert or update: one field per column of {@linkcode USER_COLUMNS}. */
export type UserRow =
  & {
    -readonly [K in keyof typeof USER_COLUMNS as Later<K> extends true ? never : K]: ColumnValue<
      (typeof USER_COLUMNS)[K]
    >;
  }
  // A later column (`requires_2fa`) is there only once Barycenter's migration has added it.
  & {
    -readonly [K in keyof typeof USER_COLUMNS as Later<K> extends true ? K : never]?: ColumnValue<
      (typeof USER_COLUMNS)[K]
    >;
  };

type Later<K extends keyof typeof USER_COLUMNS> = (typeof USER_COLUMNS)[K] extends { later: true } ? true : false;

/** A user as the database holds it, with the properties the sync may manage. */
export type StoredUser = UserRow & {
  /**
   * Property key → stored (JSON-encoded) value, as the database's JSON object of them parses: own keys only,
   * so read with {@linkcode storedProperty} (a key such as `constructor` must not find the prototype's).
   */
  properties: Readonly<Record<string, string>>;
};

/** A `properties` row to upsert, owned by the user with this username. */
export interface PropertyRow {
  username: string;
  key: string;
  value: string;
  updated_at: number;
}

/** What the sync does to one user: `delete` removes it, `absent` finds it already gone (and costs nothing). */
export interface UserChange {
  username: string;
  action: "create" | "update" | "unchanged" | "delete" | "absent";
  /** Field names that change (`password`, `email`, `properties.name`, …); never values. */
  changes: string[];
  /** Set for an existing `password_mode: "initial"` user whose stored password is left as it is. */
  passwordKept?: true;
  /** Fields the file gives whose column does not exist yet (`requires_2fa` before Barycenter's first start). */
  pending?: string[];
  /** For `delete`: `prune` when the user is deleted because the file no longer lists it. */
  reason?: "prune";
  /**
   * After a sync, rows of Barycenter's other tables that the deletion removed, or the disabling ended
   * (`sessions`, `tokens`, …, as {@linkcode SUBJECT_TABLES} names them): only counts that are not 0.
   */
  rows?: RowCounts;
}

/** A user named by its subject, which Barycenter's other tables key its rows by. */
export interface UserRef {
  username: string;
  subject: string;
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
  /** Existing users to delete, with every row keyed by their subject. */
  removals: UserRef[];
  /** Users an update disables, whose sessions and tokens are ended. */
  disabled: UserRef[];
}

/**
 * Decides, without I/O, what to write. `passwordMatches` says, per existing
 * username, whether the file's password verifies against the stored hash (or
 * its `password_hash` equals it).
 */
export function planChanges(
  specs: UserSpec[],
  stored: Map<string, StoredUser>,
  passwordMatches: Map<string, boolean>,
  now: number,
  newSubject: () => string = randomSubject,
  absentColumns: readonly string[] = [],
): Plan {
  const plan: Plan = { changes: [], users: [], properties: [], removals: [], disabled: [] };
  // Worked out once, not per user; and index loops over the users and fields, allocating nothing that an
  // unchanged user does not need: a no-change run of 10,000 users spends its time in loops like this one, before
  // V8 has optimised them (see userProblems).
  const columnFields = allColumnFields().filter(([field]) => !absentColumns.includes(field));
  const absentFields = allColumnFields().map(([field]) => field).filter((field) => absentColumns.includes(field));
  for (let i = 0; i < specs.length; i++) {
    const spec = specs[i];
    const pending = absentFields.length === 0 ? [] : absentFields.filter((field) => spec[field] !== undefined);
    const current = stored.get(spec.username);
    if (spec.state === "absent") {
      if (current !== undefined) plan.removals.push({ username: spec.username, subject: current.subject });
      plan.changes.push({ username: spec.username, action: current === undefined ? "absent" : "delete", changes: [] });
      continue;
    }
    const properties = changedProperties(spec, current, now);
    for (let p = 0; p < properties.length; p++) plan.properties.push(properties[p]);
    const propertyChanges = properties.length === 0 ? [] : properties.map(({ key }) => `properties.${key}`);
    if (current === undefined) {
      const row: PlannedUser["row"] = {
        subject: newSubject(),
        username: spec.username,
        password_hash: spec.password_hash ?? null,
        created_at: now,
        ...Object.fromEntries(
          columnFields.map((
            [field, { store, initial }],
          ) => [field, spec[field] === undefined ? initial : store(spec[field])]),
        ) as Pick<UserRow, ColumnField>,
      };
      plan.users.push({ row, password: spec.password ?? null });
      const given = columnFields.map(([field]) => field).filter((field) => spec[field] !== undefined);
      plan.changes.push({
        username: spec.username,
        action: "create",
        changes: ["password", ...given, ...propertyChanges],
        ...(pending.length > 0 ? { pending } : {}),
      });
      continue;
    }
    const passwordChanged = passwordMatches.get(spec.username) !== true;
    const rowChanges = passwordChanged ? ["password"] : [];
    for (let f = 0; f < columnFields.length; f++) {
      const field = columnFields[f][0];
      if (spec[field] !== undefined && columnFields[f][1].store(spec[field]) !== current[field]) rowChanges.push(field);
    }
    // The stored row is copied only for a user whose row changes.
    if (rowChanges.length > 0) {
      const { properties: _, ...columns } = current;
      const row: PlannedUser["row"] = columns;
      if (passwordChanged) row.password_hash = spec.password_hash ?? null;
      for (const [field, { store }] of columnFields) {
        if (rowChanges.includes(field)) (row as Record<ColumnField, unknown>)[field] = store(spec[field]);
      }
      if (rowChanges.includes("enabled") && row.enabled === 0) {
        plan.disabled.push({ username: spec.username, subject: current.subject });
      }
      plan.users.push({ row, password: passwordChanged ? spec.password ?? null : null });
    }
    const changes = propertyChanges.length === 0 ? rowChanges : [...rowChanges, ...propertyChanges];
    const change: UserChange = {
      username: spec.username,
      action: changes.length > 0 ? "update" : "unchanged",
      changes,
    };
    if (spec.password_mode === "initial" && !passwordChanged) change.passwordKept = true;
    if (pending.length > 0) change.pending = pending;
    plan.changes.push(change);
  }
  return plan;
}

/**
 * Adds to a plan the users `--prune` deletes: those the tool created (`created`, with their current
 * usernames) that the file does not list, `admin` never (Barycenter would re-create it with its default
 * password). Nothing when the file lists no present user. Throws {@linkcode InputError} when they are
 * more than `maxPrune`, so that the run changes nothing.
 */
export function planPrune(plan: Plan, specs: UserSpec[], created: UserRef[], maxPrune: number): Plan {
  if (!specs.some((spec) => spec.state !== "absent")) return plan;
  const listed = new Set(specs.map((spec) => spec.username));
  const pruned = created.filter(({ username }) => !listed.has(username) && username !== DEFAULT_ADMIN)
    .sort(byUsername);
  if (pruned.length > maxPrune) {
    throw new InputError(
      `--prune would delete ${pruned.length} users the file no longer lists, more than --max-prune ${maxPrune}; ` +
        `nothing was changed. If that is intended, run again with --max-prune ${pruned.length}`,
    );
  }
  return {
    ...plan,
    changes: [
      ...plan.changes,
      ...pruned.map(({ username }) => ({ username, action: "delete" as const, changes: [], reason: "prune" as const })),
    ],
    removals: [...plan.removals, ...pruned],
  };
}

/**
 * The fields of a user in the file that are `users` columns, besides the
 * password: how a given value is stored, and what a new user gets when the
 * file leaves the field out (the column's default). An existing user keeps
 * what it has for a field the file leaves out.
 */
const COLUMN_FIELDS = {
  email: { store: (value: unknown) => value as string | null, initial: null },
  enabled: { store: Number, initial: 1 },
  email_verified: { store: Number, initial: 0 },
  requires_2fa: { store: Number, initial: 0 },
} as const satisfies { [K in keyof UserSpec & keyof UserRow]?: { store(value: unknown): unknown; initial: unknown } };

type ColumnField = keyof typeof COLUMN_FIELDS;

/** {@linkcode COLUMN_FIELDS} as entries, in order: the order of the changes a log line names. */
function allColumnFields(): [ColumnField, { store(value: unknown): unknown; initial: unknown }][] {
  return Object.entries(COLUMN_FIELDS) as [ColumnField, { store(value: unknown): unknown; initial: unknown }][];
}

/** The properties of `spec` to write: every one for a new user, those whose stored value differs otherwise. */
function changedProperties(spec: UserSpec, current: StoredUser | undefined, now: number): PropertyRow[] {
  const rows: PropertyRow[] = [];
  if (spec.properties === undefined) return rows;
  const keys = Object.keys(spec.properties);
  for (let k = 0; k < keys.length; k++) {
    const key = keys[k];
    const value = JSON.stringify(spec.properties[key]);
    const storedValue = current === undefined ? undefined : storedProperty(current, key);
    // What the tool wrote is stored as written: equal text is the common case, and needs no parsing.
    if (storedValue !== undefined && (storedValue === value || sameJson(storedValue, spec.properties[key]))) continue;
    rows.push({ username: spec.username, key, value, updated_at: now });
  }
  return rows;
}

/** The stored (JSON-encoded) value of a user's property, if it has one. */
function storedProperty(user: StoredUser, key: string): string | undefined {
  return Object.hasOwn(user.properties, key) ? user.properties[key] : undefined;
}

/** Barycenter's subject: 24 random bytes, base64url without padding (32 characters). */
function randomSubject(): string {
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

// #endregion

// #region Passwords: Argon2 hashing and verifying, and the no-change fast path

/** Argon2id hash with Barycenter's parameters, on the binding's thread pool. */
export function hashPassword(password: string): Promise<string> {
  return argon2Hash(password, ARGON2_OPTIONS);
}

/**
 * Verifies each file password against its stored hash, all at once so the
 * native thread pool runs them in parallel. A stored value that is not a
 * valid PHC string counts as a mismatch, so the password is re-hashed; so
 * does one that would cost more than {@linkcode ARGON2_HASH_LIMITS} to verify
 * (Barycenter's admin API stores any Argon2 string), which is never verified.
 */
async function verifyPasswords(
  specs: UserSpec[],
  stored: Map<string, StoredUser>,
  work: CountedWork,
): Promise<Map<string, boolean>> {
  const existing = enforced(specs).filter((spec) => spec.password !== undefined && stored.has(spec.username));
  const tick = work.progress("verifying passwords", existing.length);
  const checks = await mapConcurrently(existing, work.concurrency, async (spec) => {
    const hash = stored.get(spec.username)!.password_hash;
    const affordable = argon2CostProblem(hash) === undefined;
    if (affordable) work.counts.verified++;
    const ok = affordable && await argon2Verify(hash, spec.password!).catch(() => false);
    tick();
    return [spec.username, ok] as const;
  });
  return new Map(checks);
}

/** Hashes the passwords the plan needs, in parallel, and returns complete rows. */
async function hashPlannedUsers(users: PlannedUser[], work: CountedWork): Promise<UserRow[]> {
  const tick = work.progress("hashing passwords", users.filter((u) => u.password !== null).length);
  return await mapConcurrently(users, work.concurrency, async ({ row, password }) => {
    if (password === null) return { ...row, password_hash: row.password_hash as string };
    work.counts.hashed++;
    const password_hash = await hashPassword(password);
    tick();
    return { ...row, password_hash };
  });
}

/** How a batch of Argon2 computations runs: how many at once, and who hears of its progress. */
export interface Argon2Work {
  /** Computations running at once: the size of the thread pool, see {@linkcode sizeThreadPool}. */
  concurrency: number;
  progress: Progress;
}

/**
 * The Argon2 computations one sync made, by why: the fast path's keys (checked
 * or sealed), per-user verifications of stored hashes, and new hashes written.
 */
export interface Argon2Counts {
  proofs: number;
  verified: number;
  hashed: number;
}

/** Argon2 work that also counts what it computes, for the summary. */
interface CountedWork extends Argon2Work {
  counts: Argon2Counts;
}

/**
 * Maps with at most twice `concurrency` calls in flight: enough to keep every
 * thread of the pool busy, few enough that 10,000 users do not mean 10,000
 * pending native tasks, each holding its password and buffers, at once.
 */
async function mapConcurrently<T, R>(items: T[], concurrency: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]);
    }
  };
  const inFlight = Math.min(items.length, 2 * concurrency);
  await Promise.all(Array.from({ length: inFlight }, worker));
  return results;
}

/**
 * Reports progress of a batch of Argon2 work: called once with a label and a
 * total, it returns the function to call as each item finishes.
 */
export type Progress = (label: string, total: number) => () => void;

const noProgress: Progress = () => () => {};

/** Libuv's default thread pool, silent: for callers that size nothing. */
const DEFAULT_ARGON2_WORK: Argon2Work = { concurrency: 4, progress: noProgress };
// The no-change fast path
//
// The sync keeps one row per users file in a table of its own. One Argon2id
// computation ({@linkcode STATE_KEY_OPTIONS}) of the file's (username, password)
// pairs with a random salt gives a key, which is never stored: the row holds
// the salt, a verifier of the key, and an HMAC under the key of a SHA-256
// digest of those users' password_hash values as the last successful sync
// left them. When the verifier and the HMAC of the current hashes match,
// every password is known to match without one verification per user.
//
// The digest is authenticated, not stored plain: anyone who can write the
// database could otherwise replace a hash, recompute the digest, and have
// every later sync trust a hash that does not verify the file's password.
// Without the file's passwords no one can make the HMAC, so an edited or
// forged row costs the fast path, never a wrong result. A replayed old row
// proves nothing wrong either: it opens only with the pairs it was made for,
// and only for the hashes the tool left when they verified those very pairs.
//
// Buckets: the common change misses that proof (one password, one user more
// or less, one hash replaced in Barycenter), and should not cost a
// verification per user. The users with a file password are split into about
// √N buckets by a hash of the username (a power of two, so the split changes
// only when N crosses 2^(2k+1), and adding a user disturbs one bucket). Each
// bucket has a row of its own in `user_sync_buckets`, made exactly like the
// file's row but over the bucket's pairs alone, and keyed by the bucket's
// usernames. The file's row also holds, under the file's key, an HMAC of each
// bucket's digest. So:
// - hashes changed inside Barycenter (the file's verifier matches, its digest
//   does not): the buckets whose HMAC under the file's key no longer matches
//   are found with no Argon2, and only their users are verified;
// - pairs changed (a password, a user added or removed): each bucket's own
//   row is checked (one Argon2 each), and only users of the buckets that fail
//   are verified: about √N + √N computations, plus the hashing of the change.
// A bucket row is the file's row for fewer users, so the argument above holds
// per bucket: it is forged only by someone who knows every file password of
// the bucket, it is no cheaper to attack than Argon2id over the bucket's pairs
// with a random salt, and one that does not open or match makes its users be
// verified, never skipped.

/**
 * The tool's own state for one set of usernames: one row of `user_sync_state`
 * (a users file) or of `user_sync_buckets` (one bucket of a users file). The
 * columns keep the names and types of the tool's first version, so a table it
 * created works unchanged; a row it wrote is read as no state.
 */
export interface SyncState {
  /** SHA-256 of the sorted usernames: one state per users file (or bucket), not per database. */
  file_key: string;
  /** The salt and the verifier of {@linkcode pairsKey}, after the prefix of its parameters ({@linkcode stateKeyPrefix}). */
  pairs_hash: string;
  /**
   * `hmac-sha256:` and, in hex, the HMAC under that key of {@linkcode passwordHashesDigest} after the last sync;
   * in a file's row, then `;buckets:` and the HMAC of each bucket's digest, in hex, in bucket order.
   */
  hashes_digest: string;
  updated_at: number;
}

const byUsername = (a: { username: string }, b: { username: string }) =>
  a.username < b.username ? -1 : a.username > b.username ? 1 : 0;

/** The state's key: SHA-256 of the JSON array of the file's usernames, sorted (as every version has made it). */
export function stateKey(specs: UserSpec[]): string {
  const names = specs.map((s) => s.username).sort();
  return sha256OfJsonArray(names.length, (i) => JSON.stringify(names[i]));
}

/**
 * The file's (username, password) pairs, sorted by username, as one
 * unambiguous string. Users given by `password_hash` are left out: their
 * hashes are compared directly, which costs nothing.
 */
export function canonicalPairs(specs: UserSpec[]): string {
  const plain = enforced(specs).filter((s) => s.password !== undefined);
  return JSON.stringify(plain.sort(byUsername).map((s) => [s.username, s.password]));
}

/**
 * The users whose file password is kept in force: not `password_mode: "initial"`,
 * whose stored hash the sync leaves alone while it is usable, so it proves nothing
 * and costs no Argon2.
 */
function enforced(specs: UserSpec[]): UserSpec[] {
  return specs.filter((s) => s.password_mode !== "initial");
}

/** The users the state's keys are made of: enforced, with a password in the file (not a `password_hash`). */
function withFilePassword(specs: UserSpec[]): UserSpec[] {
  return enforced(specs).filter((s) => s.password !== undefined);
}

/**
 * Whether a stored hash is an Argon2id PHC string Barycenter can verify, at a
 * cost a `password_hash` may have: an `initial` password is kept only then.
 */
function usableArgon2(hash: string): boolean {
  return isArgon2idPhc(hash) && hasCanonicalBase64(hash) && argon2CostProblem(hash) === undefined;
}

/** SHA-256 of the (username, password_hash) pairs, sorted by username. */
export function passwordHashesDigest(hashes: { username: string; password_hash: string }[]): string {
  const sorted = [...hashes].sort(byUsername);
  return sha256OfJsonArray(
    sorted.length,
    (i) => `[${JSON.stringify(sorted[i].username)},${JSON.stringify(sorted[i].password_hash)}]`,
  );
}

/**
 * SHA-256, in hex, of the JSON text of an array whose `count` items' JSON
 * texts `item` gives: what `JSON.stringify` of the whole array would hash, fed
 * to the hash in pieces of about 16 KiB. Of 10,000 users the whole text is a
 * megabyte, built, converted to UTF-8 and dropped, in memory the process
 * touches for the first time (a page fault for each 4 KiB); pieces die young,
 * in memory used again and again.
 */
function sha256OfJsonArray(count: number, item: (index: number) => string): string {
  const hash = createHash("sha256");
  let piece = "[";
  for (let i = 0; i < count; i++) {
    piece += i === 0 ? item(i) : `,${item(i)}`;
    if (piece.length >= 16384) {
      hash.update(piece);
      piece = "";
    }
  }
  return hash.update(`${piece}]`).digest("hex");
}

/**
 * The Argon2id parameters a state's key over two or more passwords is derived
 * with: m=7168 KiB, t=5, p=1, which OWASP's password storage cheat sheet rates
 * as equivalent to Barycenter's own m=19456, t=2, in 7 MiB instead of 19. That
 * one computation is what a no-change run holds at its peak: 12 MiB less of a
 * pod's memory at every start. Per guess it is a little less work (m × t 8 %
 * lower) and, on memory-bound hardware, cheaper still; but a guess at such a
 * row must get every one of its passwords right at once, which puts it far
 * beyond a single stored hash. A key over one password, which a guess could
 * find alone, keeps Barycenter's parameters ({@linkcode SINGLE_PASSWORD_KEY}).
 */
export const STATE_KEY_OPTIONS = { ...ARGON2_OPTIONS, memoryCost: 7168, timeCost: 5 } as const;

/**
 * Barycenter's own parameters, written out (not taken from {@linkcode ARGON2_OPTIONS}, so that rows sealed
 * with them open whatever that becomes): a key over one password, and every row versions before this one sealed.
 */
const SINGLE_PASSWORD_KEY = { memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

/** The parameters of a state's key: {@linkcode STATE_KEY_OPTIONS} or {@linkcode SINGLE_PASSWORD_KEY}. */
type StateKeyOptions = { memoryCost: number; timeCost: number; parallelism: number };

/** What a new key over the file passwords of `specs` is derived with: see {@linkcode STATE_KEY_OPTIONS}. */
function stateKeyOptionsFor(specs: UserSpec[]): StateKeyOptions {
  return withFilePassword(specs).length > 1 ? STATE_KEY_OPTIONS : SINGLE_PASSWORD_KEY;
}

/** How `pairs_hash` begins for a key derived with `options`. */
function stateKeyPrefix(options: StateKeyOptions): string {
  return `$user-sync-key$argon2id$v=19$m=${options.memoryCost},t=${options.timeCost},p=${options.parallelism}$`;
}

/**
 * How `pairs_hash` begins, for a key over two or more passwords: the key's derivation. Not a PHC hash of anything
 * (its last field is a verifier, not Argon2's output), hence its own name.
 */
export const STATE_KEY_PREFIX = stateKeyPrefix(STATE_KEY_OPTIONS);

/**
 * The parameters a row may name: this version's two. Every row versions before
 * it sealed names Barycenter's own, so an upgraded pod keeps its fast path; such
 * a row over several passwords is resealed with {@linkcode STATE_KEY_OPTIONS}
 * when its pairs change, and until then its no-change run holds 19 MiB, not 7.
 * A row naming any other parameters is no state: a row can never make a sync
 * compute a costlier Argon2 than Barycenter's.
 */
const OPENABLE_STATE_KEYS: StateKeyOptions[] = [STATE_KEY_OPTIONS, SINGLE_PASSWORD_KEY];

/** The key the state is made with, derived from the file's passwords; never stored. */
export interface PairsKey {
  salt: Buffer;
  key: Buffer;
  /** What it was derived with: a state sealed with the key names these. */
  options: StateKeyOptions;
}

/**
 * The state's key: the raw output of one Argon2id computation (by default with
 * the parameters {@linkcode stateKeyOptionsFor} gives) of
 * {@linkcode canonicalPairs} and `salt` (a new random one by default). Only
 * someone who knows every file password can compute it.
 */
export async function pairsKey(
  specs: UserSpec[],
  salt: Buffer = randomBytes(16),
  options: StateKeyOptions = stateKeyOptionsFor(specs),
): Promise<PairsKey> {
  const { memoryCost, timeCost, parallelism } = options;
  const derived = await argon2HashRaw(canonicalPairs(specs), {
    ...ARGON2_OPTIONS,
    memoryCost,
    timeCost,
    parallelism,
    salt,
  });
  return { salt, key: derived, options };
}

/** {@linkcode pairsKey}, counted as one of the run's proofs. */
function countedPairsKey(
  specs: UserSpec[],
  counts: Argon2Counts,
  salt?: Buffer,
  options?: StateKeyOptions,
): Promise<PairsKey> {
  counts.proofs++;
  return pairsKey(specs, salt, options);
}

/** HMAC-SHA256 under the pairs' key; the label keeps the verifier and the digests' HMACs apart. */
function stateMac(key: Buffer, label: "verifier" | "hashes_digest" | "bucket_digest", message = ""): Buffer {
  return createHmac("sha256", key).update(`user_sync_state.${label}\0${message}`).digest();
}

/** The HMAC, under the file's key, of bucket `index` of `count` holding hashes with digest `digest`. */
function bucketMac(key: Buffer, count: number, index: number, digest: string): Buffer {
  return stateMac(key, "bucket_digest", `${count}\0${index}\0${digest}`);
}

/**
 * The state row that records `digest`, a {@linkcode passwordHashesDigest}, under the pairs' key; with
 * `bucketDigests`, a file's row that also records each bucket's digest (see {@linkcode bucketsOf}).
 */
export function sealState(
  fileKey: string,
  { salt, key, options }: PairsKey,
  digest: string,
  now: number,
  bucketDigests?: string[],
): SyncState {
  const base64 = (bytes: Buffer) => bytes.toString("base64").replace(/=+$/, "");
  const buckets = bucketDigests === undefined
    ? ""
    : `;buckets:${bucketDigests.map((d, i) => bucketMac(key, bucketDigests.length, i, d).toString("hex")).join("")}`;
  return {
    file_key: fileKey,
    pairs_hash: `${stateKeyPrefix(options)}${base64(salt)}$${base64(stateMac(key, "verifier"))}`,
    hashes_digest: `hmac-sha256:${stateMac(key, "hashes_digest", digest).toString("hex")}${buckets}`,
    updated_at: now,
  };
}

/** A row opened: its key's parameters, salt, verifier and HMAC, and in a file's row the HMACs of its buckets' digests. */
interface OpenedState {
  options: StateKeyOptions;
  salt: Buffer;
  verifier: Buffer;
  mac: Buffer;
  bucketMacs?: Buffer[];
}

/**
 * The key parameters, salt, verifier and HMACs of a row in this version's
 * format, with either of {@linkcode OPENABLE_STATE_KEYS} (or in the format
 * before, which had no buckets). Any other row (the first version's
 * Argon2id PHC hash and plain digest, or anything edited into the table) is
 * no state: a slower run, never an error.
 */
function openState(state: SyncState): OpenedState | undefined {
  const pairsHash = String(state.pairs_hash);
  const options = OPENABLE_STATE_KEYS.find((o) => pairsHash.startsWith(stateKeyPrefix(o)));
  const key = options === undefined
    ? null
    : /^([A-Za-z0-9+/]{22})\$([A-Za-z0-9+/]{43})$/.exec(pairsHash.slice(stateKeyPrefix(options).length));
  const mac = /^hmac-sha256:([0-9a-f]{64})(?:;buckets:((?:[0-9a-f]{64})+))?$/.exec(String(state.hashes_digest));
  if (options === undefined || key === null || mac === null) return undefined;
  const [salt, verifier] = [key[1], key[2]].map((text) => Buffer.from(text, "base64"));
  const bucketMacs = mac[2]?.match(/.{64}/g)?.map((hex) => Buffer.from(hex, "hex"));
  return { options, salt, verifier, mac: Buffer.from(mac[1], "hex"), ...(bucketMacs ? { bucketMacs } : {}) };
}

/** What the stored state shows about the file's passwords. */
export interface StateProof {
  /**
   * Every file password matches its stored hash: all users exist, the file's
   * pairs are the ones the state was made for, and the stored hashes are the
   * ones the last sync left for them.
   */
  proves: boolean;
  /** When it proves: the digest of the stored hashes it proved. */
  digest?: string;
  /**
   * When the state was made for the file's pairs (its verifier matched), their
   * key: a new state for the same pairs reuses it instead of another Argon2.
   */
  key?: PairsKey;
  /** With the key, a file row's HMACs of its buckets' digests, if it has them. */
  bucketMacs?: Buffer[];
}

/**
 * What the stored state proves about the passwords of `specs`. One Argon2
 * computation in all, none when there is no state in this version's format
 * or a user of `specs` does not exist.
 */
async function stateProvesPasswords(
  specs: UserSpec[],
  stored: Map<string, StoredUser>,
  state: SyncState | undefined,
  counts: Argon2Counts,
): Promise<StateProof> {
  if (!specs.every((s) => stored.has(s.username))) return { proves: false };
  return unlockedProves(specs, stored, await unlockState(specs, state, counts));
}

/** What a state row already opened with the key of the pairs of `specs` proves, given the stored users. */
function unlockedProves(specs: UserSpec[], stored: Map<string, StoredUser>, unlocked: UnlockedState): StateProof {
  if (unlocked === undefined || !specs.every((s) => stored.has(s.username))) return { proves: false };
  const { sealed, key } = unlocked;
  const bucketMacs = sealed.bucketMacs ? { bucketMacs: sealed.bucketMacs } : {};
  const digest = passwordHashesDigest(enforced(specs).map((s) => stored.get(s.username)!));
  if (!timingSafeEqual(stateMac(key.key, "hashes_digest", digest), sealed.mac)) {
    return { proves: false, key, ...bucketMacs };
  }
  return { proves: true, digest, key, ...bucketMacs };
}

/** The state row opened with the key of the file's pairs, whose verifier matched; undefined when it did not open. */
type UnlockedState = { sealed: OpenedState; key: PairsKey } | undefined;

/**
 * Derives the key of the file's pairs under the state row's salt (one Argon2)
 * and checks the row's verifier: the part of the fast path's proof that needs
 * no stored user, so that it runs before they are read (see
 * {@linkcode readCurrent}).
 */
async function unlockState(
  specs: UserSpec[],
  state: SyncState | undefined,
  counts: Argon2Counts,
): Promise<UnlockedState> {
  const sealed = state === undefined ? undefined : openState(state);
  if (sealed === undefined) return undefined;
  const key = await countedPairsKey(specs, counts, sealed.salt, sealed.options);
  return timingSafeEqual(stateMac(key.key, "verifier"), sealed.verifier) ? { sealed, key } : undefined;
}

/**
 * Below this many users with file passwords, no buckets: finding one change
 * among them through buckets (√N proofs, √N verifications, two new keys)
 * would cost about as much as verifying each, and every first run B more.
 */
const BUCKETS_FROM = 16;

/**
 * How many buckets N users with file passwords are split into: the power of
 * two nearest √N, so that one change costs about √N bucket proofs plus √N
 * verifications, and the count stays the same while N moves within a factor 2;
 * 0 (no buckets) below {@linkcode BUCKETS_FROM}.
 */
function bucketCount(users: number): number {
  return users < BUCKETS_FROM ? 0 : 2 ** Math.round(Math.log2(users) / 2);
}

/**
 * The users with file passwords, in `count` buckets chosen by SHA-256 of the
 * username: a user added or removed changes its own bucket only.
 */
function bucketsOf(specs: UserSpec[], count: number): UserSpec[][] {
  const buckets = Array.from({ length: count }, (): UserSpec[] => []);
  if (count === 0) return buckets;
  for (const spec of withFilePassword(specs)) {
    const hash = createHash("sha256").update(`user_sync_bucket\0${spec.username}`).digest();
    buckets[hash.readUInt32BE(0) % count].push(spec);
  }
  return buckets;
}

/** The digest of a bucket's hashes as `hashOf` gives them; undefined when one of its users has none. */
function bucketDigest(bucket: UserSpec[], hashOf: (username: string) => string | undefined): string | undefined {
  const hashes = bucket.map((s) => ({ username: s.username, password_hash: hashOf(s.username) }));
  return hashes.every((h) => h.password_hash !== undefined)
    ? passwordHashesDigest(hashes as { username: string; password_hash: string }[])
    : undefined;
}

/** What the buckets proved when the file's own proof did not. */
export interface BucketsProof {
  /** The users whose stored hashes a bucket proved to match their file passwords. */
  proven: Set<string>;
  /** The keys of bucket rows whose verifier matched, by their `file_key`, with the digest they proved, if any. */
  keys: Map<string, { key: PairsKey; digest?: string }>;
}

/**
 * Which users the buckets prove, when the file's proof did not prove them all.
 * When its verifier matched (the same pairs: hashes changed inside Barycenter),
 * the file's HMACs of its buckets' digests show, with no Argon2, which buckets
 * hold the same hashes as after the last sync. Otherwise each bucket's own row
 * is checked, one Argon2 each, under the bucketing with the most rows found:
 * the current one, or half or twice it (N just crossed a boundary). A bucket
 * is checked by its users that exist, so one that gained a user is proved by
 * the row sealed before, and the new user is not in what it proves.
 */
async function bucketsProve(
  specs: UserSpec[],
  stored: Map<string, StoredUser>,
  fileProof: StateProof,
  readBuckets: (fileKeys: string[]) => Promise<SyncState[]>,
  work: CountedWork,
): Promise<BucketsProof> {
  const proven = new Set<string>();
  const keys: BucketsProof["keys"] = new Map();
  const hashOf = (username: string) => stored.get(username)?.password_hash;
  const count = bucketCount(withFilePassword(specs).length);
  const macs = fileProof.key !== undefined && fileProof.bucketMacs?.length === count ? fileProof.bucketMacs : [];
  if (macs.length > 0) {
    bucketsOf(specs, count).forEach((bucket, index) => {
      const digest = bucketDigest(bucket, hashOf);
      if (digest !== undefined && timingSafeEqual(bucketMac(fileProof.key!.key, count, index, digest), macs[index])) {
        for (const spec of bucket) proven.add(spec.username);
      }
    });
    return { proven, keys };
  }

  // Below BUCKETS_FROM there is no bucket to read; the read is still sent, so that the statements never depend on N.
  // A bucket is checked by its users that exist: one that gained a user since its row was sealed is proved by
  // that row (one Argon2) instead of by verifying each of its other users; the new user is hashed in any case.
  const bucketings = (count === 0 ? [] : [count, count * 2, count / 2]).filter((c) => c >= 1 && Number.isInteger(c))
    .map((c) =>
      bucketsOf(specs, c).map((bucket) => bucket.filter((s) => stored.has(s.username)))
        .filter((bucket) => bucket.length > 0)
    );
  const rows = new Map((await readBuckets(bucketings.flat().map(stateKey))).map((row) => [row.file_key, row]));
  const found = bucketings.map((buckets) => buckets.filter((bucket) => rows.has(stateKey(bucket))));
  const checked = found.reduce((best, buckets) => (buckets.length > best.length ? buckets : best), []);
  const tick = work.progress("checking bucket proofs", checked.length);
  await mapConcurrently(checked, work.concurrency, async (bucket) => {
    const proof = await stateProvesPasswords(bucket, stored, rows.get(stateKey(bucket)), work.counts);
    tick();
    if (proof.key !== undefined) keys.set(stateKey(bucket), { key: proof.key, digest: proof.digest });
    if (proof.proves) { for (const spec of bucket) proven.add(spec.username); }
  });
  return { proven, keys };
}

/**
 * The bucket rows to write after a sync, for the hashes `hashOf` gives: none
 * for a bucket whose row still proves its hashes (the file's HMAC of its
 * digest, under `fileKey`, or its own checked row says so); a row resealed
 * under the key its check derived; else a new salt and one Argon2.
 */
async function sealBuckets(
  specs: UserSpec[],
  hashOf: (username: string) => string,
  previous: { fileKey?: Buffer; bucketMacs?: Buffer[]; buckets: BucketsProof },
  now: number,
  work: CountedWork,
): Promise<{ digests: string[]; rows: SyncState[] }> {
  const count = bucketCount(withFilePassword(specs).length);
  const buckets = bucketsOf(specs, count);
  const digests = buckets.map((bucket) => bucketDigest(bucket, hashOf)!);
  const unchanged = (index: number) =>
    previous.fileKey !== undefined && previous.bucketMacs?.length === count &&
    timingSafeEqual(bucketMac(previous.fileKey, count, index, digests[index]), previous.bucketMacs[index]);
  const stale = buckets.map((bucket, index) => ({ bucket, index }))
    .filter(({ bucket, index }) =>
      bucket.length > 0 && !unchanged(index) && previous.buckets.keys.get(stateKey(bucket))?.digest !== digests[index]
    );
  const fresh = stale.filter(({ bucket }) => !previous.buckets.keys.has(stateKey(bucket)));
  const tick = work.progress("sealing bucket proofs", fresh.length);
  const rows = await mapConcurrently(stale, work.concurrency, async ({ bucket, index }) => {
    const known = previous.buckets.keys.get(stateKey(bucket))?.key;
    const key = known ?? await countedPairsKey(bucket, work.counts);
    if (known === undefined) tick();
    return sealState(stateKey(bucket), key, digests[index], now);
  });
  return { digests, rows };
}
// #endregion

// #region Stores: one interface, one SQL, a dialect and a runner per backend

/** The tables the sync writes to: Barycenter's two, and its own: the fast path's state, the users it created. */
export type TableName = "users" | "properties" | "user_sync_state" | "user_sync_buckets" | "user_sync_created";

const TABLES: TableName[] = ["users", "properties", "user_sync_state", "user_sync_buckets", "user_sync_created"];

/**
 * Every table that keys rows by a user's subject, from Barycenter's migrations (and the tool's own record of
 * the users it created), stated once: deleting a user deletes its rows in each that exists; disabling one
 * ends its access in those with a `disable` action (delete the row, or set `revoked` or `consumed` where it is
 * 0). `rows` names what a log line counts (`tokens` sums two tables); none: not counted. Barycenter's other
 * tables exist only once its migrator has run, so each is looked for first. In the order log lines name them.
 */
const SUBJECT_TABLES: SubjectTable[] = [
  { table: "properties", subject: "owner", rows: "properties" },
  { table: "passkeys", subject: "subject", rows: "passkeys" },
  { table: "sessions", subject: "subject", rows: "sessions", disable: "delete" },
  { table: "access_tokens", subject: "subject", rows: "tokens", disable: "revoke" },
  { table: "refresh_tokens", subject: "subject", rows: "tokens", disable: "revoke" },
  { table: "auth_codes", subject: "subject", rows: "auth codes", disable: "consume" },
  { table: "webauthn_challenges", subject: "subject", rows: "passkey challenges" },
  { table: "consent", subject: "subject", rows: "consents" },
  // `device_code` until the migration m20250222_000001_rename_device_code_table renames it.
  { table: "device_codes", subject: "subject", rows: "device codes" },
  { table: "device_code", subject: "subject", rows: "device codes" },
  { table: "federated_identities", subject: "local_user_id", rows: "federated identities" },
  { table: "user_sync_created", subject: "subject" },
];

/** One table of {@linkcode SUBJECT_TABLES}. */
interface SubjectTable {
  table: string;
  /** The column that holds the user's subject. */
  subject: string;
  /** What its rows are called in a log line, plural. */
  rows?: RowNoun;
  /** How disabling a user ends its access here: delete the row, or set `revoked` or `consumed` to 1. */
  disable?: "delete" | "revoke" | "consume";
}

/** The nouns of {@linkcode SubjectTable.rows}, plural → singular. */
const ROW_NOUNS = {
  properties: "property",
  passkeys: "passkey",
  sessions: "session",
  tokens: "token",
  "auth codes": "auth code",
  "passkey challenges": "passkey challenge",
  consents: "consent",
  "device codes": "device code",
  "federated identities": "federated identity",
} as const;

type RowNoun = keyof typeof ROW_NOUNS;

/** Rows a deletion removed, or a disabling ended, by {@linkcode RowNoun}: only the counts that are not 0. */
export type RowCounts = Partial<Record<RowNoun, number>>;

/** The operations a sync needs, inside one transaction. */
export interface StoreTransaction {
  /**
   * Serialises concurrent syncs of the same database until the transaction
   * ends (replicas start their init containers together).
   */
  lock(): Promise<void>;
  /** Which of the tables do not exist yet. */
  missingTables(): Promise<TableName[]>;
  /** Creates the tables exactly as Barycenter's first migration does. */
  createTables(tables: TableName[]): Promise<void>;
  /**
   * Which of {@linkcode LATER_USER_COLUMNS} the `users` table lacks (Barycenter
   * has not started on it yet). Until this is asked, the transaction reads and
   * writes none of them; after, those that exist.
   */
  absentUserColumns(): Promise<string[]>;
  /**
   * The listed users that exist, by username, with their properties, in one
   * query. `withProperties` is false only when a dry run finds no `properties` table.
   */
  readUsers(usernames: string[], withProperties: boolean): Promise<Map<string, StoredUser>>;
  /** Inserts new users and updates existing ones, in one statement. */
  writeUsers(rows: UserRow[]): Promise<void>;
  /** Inserts or replaces properties, in one statement. */
  writeProperties(rows: PropertyRow[]): Promise<void>;
  /** The fast path's state for this users file, if any. */
  readState(fileKey: string): Promise<SyncState | undefined>;
  /** Inserts or replaces the fast path's state. */
  writeState(state: SyncState): Promise<void>;
  /** The fast path's bucket rows with these keys (one query); none when a dry run finds no table. */
  readBuckets(fileKeys: string[]): Promise<SyncState[]>;
  /** Inserts or replaces bucket rows, in one statement. */
  writeBuckets(rows: SyncState[]): Promise<void>;
  /** Records users the tool created, so that `--prune` may delete them later (and no others). */
  recordCreated(rows: CreatedRow[]): Promise<void>;
  /** The users the tool created that still exist and whose usernames are not `listed`, in one query. */
  readCreated(listed: string[]): Promise<UserRef[]>;
  /**
   * Ends the access of users being disabled, in the tables of {@linkcode SUBJECT_TABLES} that exist: one
   * statement to find them, one per table. Returns what was ended, by subject.
   */
  endAccess(subjects: string[]): Promise<Map<string, RowCounts>>;
  /** Deletes users and every row keyed by their subjects, the same way. Returns what was deleted, by subject. */
  removeUsers(subjects: string[]): Promise<Map<string, RowCounts>>;
}

/** A row of the tool's record of the users it created. */
export type CreatedRow = Pick<UserRow, "subject" | "username" | "created_at">;

/** A database the sync can run against. */
export interface Store {
  /** Runs `work` in one transaction: committed if it resolves, rolled back if it throws. */
  transaction<T>(work: (tx: StoreTransaction) => Promise<T>, mode: { readOnly: boolean }): Promise<T>;
  /**
   * Ends at once, for a signal that stops the run: rolls back a transaction in
   * progress and says what became of the run's changes, so that the last line
   * printed is true.
   */
  abort(): Promise<AbortOutcome>;
  close(): Promise<void>;
}

/**
 * What {@linkcode Store.abort} found: no write transaction had begun (or it
 * had already ended without a commit), one was rolled back, it had committed,
 * or a COMMIT was on its way and the server did not say how it ended.
 */
export type AbortOutcome = "nothing begun" | "rolled back" | "committed" | "unknown";

/** How a store waits: for a database that is not up yet, and for slow statements. */
export interface StoreOptions {
  /** Seconds to keep retrying connection failures (PostgreSQL) or to wait for a lock (SQLite). */
  waitSeconds: number;
  /** Seconds one statement may take. */
  statementTimeoutSeconds: number;
  /** Told about each failed connection attempt that will be retried, and each SQLite lock waited for: one line each. */
  onRetry: (message: string) => void;
}

const DEFAULT_STORE_OPTIONS: StoreOptions = {
  waitSeconds: OPTIONS.wait.number.default,
  statementTimeoutSeconds: OPTIONS["statement-timeout"].number.default,
  onRetry: () => {},
};

/**
 * The DDL of Barycenter's first migration for the two tables the sync
 * touches: initial columns only, so that Barycenter's later migrations
 * (which `ALTER TABLE ... ADD COLUMN`) still apply cleanly. Plus the tool's own.
 */
const CREATE_TABLE: Record<TableName, string> = {
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
  // The tool's own table, never a column in Barycenter's: its migrations know nothing of it. Its columns are
  // the first version's: what they hold changed (see SyncState), so a table an older version made still serves.
  user_sync_state: `CREATE TABLE IF NOT EXISTS "user_sync_state" (
  "file_key" varchar NOT NULL PRIMARY KEY,
  "pairs_hash" varchar NOT NULL,
  "hashes_digest" varchar NOT NULL,
  "updated_at" bigint NOT NULL
)`,
  // The tool's own too: one row per bucket of a users file (see SyncState), keyed by the bucket's usernames.
  // A table of its own, so that `user_sync_state` keeps one row per users file, as older versions read it.
  user_sync_buckets: `CREATE TABLE IF NOT EXISTS "user_sync_buckets" (
  "file_key" varchar NOT NULL PRIMARY KEY,
  "pairs_hash" varchar NOT NULL,
  "hashes_digest" varchar NOT NULL,
  "updated_at" bigint NOT NULL
)`,
  // The tool's own too: every user it created, and only those, may be pruned. Users created before this table
  // existed are not in it, and are never pruned.
  user_sync_created: `CREATE TABLE IF NOT EXISTS "user_sync_created" (
  "subject" varchar NOT NULL PRIMARY KEY,
  "username" varchar NOT NULL,
  "created_at" bigint NOT NULL
)`,
};

/**
 * Serialises syncs of one PostgreSQL database until the transaction ends: an
 * advisory lock keyed by the first 8 bytes of SHA-256("barycenter-user-sync").
 */
const ADVISORY_LOCK = "SELECT pg_advisory_xact_lock(5356544628862928228)";

/** A column's SQL type, as Barycenter's migrations declare it. */
type SqlType = "varchar" | "bigint";

/**
 * The `users` columns the sync reads and writes, in table order, each stated
 * once: the statements of both backends, the rows read back and
 * {@linkcode UserRow} are built from it. `kept`: set on insert, never updated
 * (the subject, the username the upsert matches on, the creation time).
 */
const USER_COLUMNS = {
  subject: { type: "varchar", kept: true },
  username: { type: "varchar", kept: true },
  password_hash: { type: "varchar" },
  email: { type: "varchar", nullable: true },
  email_verified: { type: "bigint" },
  created_at: { type: "bigint", kept: true },
  enabled: { type: "bigint" },
  // Added by Barycenter's migration m20250107_000002, which fails if the column exists: never created here.
  requires_2fa: { type: "bigint", later: true },
} as const satisfies Record<string, { type: SqlType; nullable?: true; kept?: true; later?: true }>;

/** The columns of {@linkcode USER_COLUMNS} that only Barycenter's later migrations add. */
const LATER_USER_COLUMNS: string[] = Object.entries(USER_COLUMNS).filter(([, c]) => "later" in c).map(([n]) => n);

/** What a batch of properties carries: the owner by username, looked up in the same statement. */
const PROPERTY_BATCH_COLUMNS = {
  username: { type: "varchar" },
  key: { type: "varchar" },
  value: { type: "varchar" },
  updated_at: { type: "bigint" },
} as const satisfies Record<string, { type: SqlType }>;

/** The columns of the tool's record of the users it created. */
const CREATED_COLUMNS = {
  subject: { type: "varchar" },
  username: { type: "varchar" },
  created_at: { type: "bigint" },
} as const satisfies Record<string, { type: SqlType }>;

/** The columns of the tool's own state table. */
const STATE_COLUMNS = ["file_key", "pairs_hash", "hashes_digest", "updated_at"] as const;

/** The same columns with their types, for a batch of bucket rows. */
const BUCKET_COLUMNS = {
  file_key: { type: "varchar" },
  pairs_hash: { type: "varchar" },
  hashes_digest: { type: "varchar" },
  updated_at: { type: "bigint" },
} as const satisfies Record<(typeof STATE_COLUMNS)[number], { type: SqlType }>;

/**
 * What differs between the backends' SQL, and nothing else: how a parameter
 * is written, how a batch (one JSON parameter) becomes rows, how a table's
 * existence is asked, and how rows aggregate into a JSON object.
 */
interface Dialect {
  /** The `n`th parameter (1-based). */
  param(n: number): string;
  /** Rows with `columns`, named `alias`, from parameter `n`: a JSON array of objects. */
  rows(n: number, columns: Record<string, { type: SqlType }>, alias: string): string;
  /** A one-column table (`value`) of the strings in parameter `n`: a JSON array. */
  values(n: number): string;
  /** Whether the table named by the SQL text expression `name` exists. */
  tableExists(name: string): string;
  /** Whether the table named by the SQL text `table` has the column named by the SQL text expression `column`. */
  columnExists(table: string, column: string): string;
  /** The JSON text of an object aggregated from `key` and `value` over the rows (`{}` for none). */
  objectAgg(key: string, value: string): string;
}

/** PostgreSQL: `$n` parameters, `json_to_recordset`, `to_regclass`. */
const POSTGRES_DIALECT: Dialect = {
  param: (n) => `$${n}`,
  rows: (n, columns, alias) =>
    `json_to_recordset($${n}::text::json) AS ${alias}(${
      Object.entries(columns).map(([name, { type }]) => `${name} ${type}`).join(", ")
    })`,
  values: (n) => `json_array_elements_text($${n}::text::json)`,
  tableExists: (name) => `to_regclass(${name}) IS NOT NULL`,
  columnExists: (table, column) =>
    `EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = to_regclass(${table}) AND a.attname = ${column} ` +
    `AND a.attnum > 0 AND NOT a.attisdropped)`,
  objectAgg: (key, value) => `coalesce(json_object_agg(${key}, ${value}), '{}')::text`,
};

/** SQLite: `?` parameters, `json_each` (SQLite has no arrays to bind), `sqlite_master`. */
const SQLITE_DIALECT: Dialect = {
  param: () => "?",
  rows: (_, columns, alias) =>
    `(SELECT ${
      Object.keys(columns).map((name) => `value ->> '${name}' AS ${name}`).join(", ")
    } FROM json_each(?)) AS ${alias}`,
  values: () => "json_each(?)",
  tableExists: (name) => `EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ${name})`,
  columnExists: (table, column) => `EXISTS (SELECT 1 FROM pragma_table_info(${table}) AS t WHERE t.name = ${column})`,
  objectAgg: (key, value) => `json_group_object(${key}, ${value})`,
};

/** Every statement a sync runs, written once for both backends; the dialect fills in what differs. */
function statementsFor(d: Dialect) {
  /** The `users` columns that exist, of {@linkcode USER_COLUMNS}: a later one only once Barycenter added it. */
  const only = (columns: string[]) =>
    Object.fromEntries(Object.entries(USER_COLUMNS).filter(([name]) => columns.includes(name)));
  const properties = `(SELECT ${d.objectAgg("p.key", "p.value")} FROM properties p WHERE p.owner = u.subject)`;
  const ofSubjects = (column: string) => `${column} IN (SELECT value FROM ${d.values(1)})`;
  const createdColumns = Object.keys(CREATED_COLUMNS).join(", ");
  // Each returns one row per row it deleted or changed, for the counts of the log lines.
  const ENDING = {
    delete: (t: SubjectTable) => `DELETE FROM "${t.table}" WHERE ${ofSubjects(t.subject)}`,
    revoke: (t: SubjectTable) => `UPDATE "${t.table}" SET revoked = 1 WHERE revoked = 0 AND ${ofSubjects(t.subject)}`,
    consume: (t: SubjectTable) =>
      `UPDATE "${t.table}" SET consumed = 1 WHERE consumed = 0 AND ${ofSubjects(t.subject)}`,
  };
  // `WHERE true` tells SQLite's parser that ON CONFLICT belongs to the INSERT, not to a join.
  return {
    missingTables: `SELECT value AS name FROM ${d.values(1)} WHERE NOT ${d.tableExists("value")}`,
    absentUserColumns: `SELECT value AS name FROM ${d.values(1)} WHERE NOT ${d.columnExists("'users'", "value")}`,
    readUsers: (withProperties: boolean, columns: string[]) =>
      `SELECT ${columns.join(", ")}, ${withProperties ? properties : "'{}'"} AS properties
       FROM users u WHERE username IN (SELECT value FROM ${d.values(1)})`,
    // On a username that exists, only the columns not kept are set.
    writeUsers: (columns: string[]) => {
      const updated = Object.entries(only(columns)).filter(([, column]) => !("kept" in column)).map(([name]) => name);
      return `INSERT INTO users (${columns.join(", ")}) SELECT ${columns.join(", ")} FROM ${
        d.rows(1, only(columns), "b")
      } WHERE true
       ON CONFLICT (username) DO UPDATE SET ${updated.map((name) => `${name} = excluded.${name}`).join(", ")}`;
    },
    // The owner is looked up by username in the same statement, so a user created just before is found.
    writeProperties: `INSERT INTO properties (owner, key, value, updated_at)
       SELECT u.subject, p.key, p.value, p.updated_at FROM ${d.rows(1, PROPERTY_BATCH_COLUMNS, "p")}
       JOIN users u ON u.username = p.username WHERE true
       ON CONFLICT (owner, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
    readState: `SELECT ${STATE_COLUMNS.join(", ")} FROM user_sync_state WHERE file_key = ${d.param(1)}`,
    writeState: `INSERT INTO user_sync_state (${STATE_COLUMNS.join(", ")})
       VALUES (${STATE_COLUMNS.map((_, i) => d.param(i + 1)).join(", ")})
       ON CONFLICT (file_key) DO UPDATE SET ${
      STATE_COLUMNS.slice(1).map((name) => `${name} = excluded.${name}`).join(", ")
    }`,
    readBuckets: `SELECT ${STATE_COLUMNS.join(", ")} FROM user_sync_buckets
       WHERE file_key IN (SELECT value FROM ${d.values(1)})`,
    writeBuckets: `INSERT INTO user_sync_buckets (${STATE_COLUMNS.join(", ")}) SELECT ${
      STATE_COLUMNS.join(", ")
    } FROM ${d.rows(1, BUCKET_COLUMNS, "s")} WHERE true ON CONFLICT (file_key) DO UPDATE SET ${
      STATE_COLUMNS.slice(1).map((name) => `${name} = excluded.${name}`).join(", ")
    }`,
    recordCreated: `INSERT INTO user_sync_created (${createdColumns}) SELECT ${createdColumns} FROM ${
      d.rows(1, CREATED_COLUMNS, "c")
    } WHERE true ON CONFLICT (subject) DO NOTHING`,
    // The username is the user's current one: the admin API may have renamed it.
    readCreated: `SELECT u.subject, u.username FROM user_sync_created c JOIN users u ON u.subject = c.subject
       WHERE u.username NOT IN (SELECT value FROM ${d.values(1)})`,
    /** Ends a disabled user's access in one table of {@linkcode SUBJECT_TABLES}. */
    endAccess: (t: SubjectTable) => `${ENDING[t.disable!](t)} RETURNING ${t.subject} AS subject`,
    /** Deletes a removed user's rows in one table of {@linkcode SUBJECT_TABLES}. */
    removeRows: (t: SubjectTable) => `${ENDING.delete(t)} RETURNING ${t.subject} AS subject`,
    deleteUsers: `DELETE FROM users WHERE ${ofSubjects("subject")}`,
  };
}

type Statements = ReturnType<typeof statementsFor>;

const POSTGRES_STATEMENTS = statementsFor(POSTGRES_DIALECT);
const SQLITE_STATEMENTS = statementsFor(SQLITE_DIALECT);

/**
 * How a backend runs one statement: the only I/O the shared transaction needs. With `arrays`, each row comes as
 * the array of its values, in the order of the statement's columns: for reads of a row per user, an object per
 * row costs time and memory (node:sqlite gives each such object a shape of its own).
 */
type RunStatement = {
  (text: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  (text: string, params: unknown[], arrays: true): Promise<unknown[][]>;
  /**
   * Hands `each` every row, as an array, as it is read, and keeps none: a row read for what is made of it then
   * dies young, where 10,000 rows kept until the last is read would be copied out of the young generation into
   * memory the process touches for the first time. Resolves to no rows.
   */
  (text: string, params: unknown[], arrays: true, each: (row: unknown[]) => void): Promise<unknown[][]>;
};

/**
 * The operations of a sync for either backend: each is one statement of
 * {@linkcode statementsFor}, with every batch sent as one JSON parameter, so
 * the number of statements never grows with the number of users.
 */
class SqlTransaction implements StoreTransaction {
  #run: RunStatement;
  #sql: Statements;
  #lock: string | undefined;
  /** `lock`: the statement that serialises syncs, if the transaction's own BEGIN does not already. */
  constructor(run: RunStatement, sql: Statements, lock?: string) {
    this.#run = run;
    this.#sql = sql;
    this.#lock = lock;
  }

  async lock(): Promise<void> {
    if (this.#lock !== undefined) await this.#run(this.#lock);
  }

  async missingTables(): Promise<TableName[]> {
    const rows = await this.#run(this.#sql.missingTables, [JSON.stringify(TABLES)]);
    const missing = new Set(rows.map((row) => row.name));
    return TABLES.filter((table) => missing.has(table));
  }

  async createTables(tables: TableName[]): Promise<void> {
    for (const table of tables) await this.#run(CREATE_TABLE[table]);
  }

  /** Later columns not known to exist: all of them until {@linkcode absentUserColumns} has looked. */
  #absentColumns = LATER_USER_COLUMNS;

  async absentUserColumns(): Promise<string[]> {
    const rows = await this.#run(this.#sql.absentUserColumns, [JSON.stringify(LATER_USER_COLUMNS)]);
    this.#absentColumns = rows.map((row) => String(row.name));
    return this.#absentColumns;
  }

  /** The `users` columns this transaction reads and writes. */
  #userColumns(): string[] {
    return Object.keys(USER_COLUMNS).filter((name) => !this.#absentColumns.includes(name));
  }

  async readUsers(usernames: string[], withProperties: boolean): Promise<Map<string, StoredUser>> {
    const columns = this.#userColumns();
    const users = new Map<string, StoredUser>();
    const add = storedUserReader([...columns, "properties"], users);
    await this.#run(this.#sql.readUsers(withProperties, columns), [JSON.stringify(usernames)], true, add);
    return users;
  }

  async writeUsers(rows: UserRow[]): Promise<void> {
    if (rows.length > 0) await this.#run(this.#sql.writeUsers(this.#userColumns()), [JSON.stringify(rows)]);
  }

  async writeProperties(rows: PropertyRow[]): Promise<void> {
    if (rows.length > 0) await this.#run(this.#sql.writeProperties, [JSON.stringify(rows)]);
  }

  async readState(fileKey: string): Promise<SyncState | undefined> {
    const [row] = await this.#run(this.#sql.readState, [fileKey]);
    return row === undefined ? undefined : stateRow(row);
  }

  async writeState(state: SyncState): Promise<void> {
    await this.#run(this.#sql.writeState, STATE_COLUMNS.map((name) => state[name]));
  }

  async readBuckets(fileKeys: string[]): Promise<SyncState[]> {
    // Sent even with no key, for the same reason as writeBuckets.
    return (await this.#run(this.#sql.readBuckets, [JSON.stringify(fileKeys)])).map(stateRow);
  }

  async writeBuckets(rows: SyncState[]): Promise<void> {
    // Sent even empty: whether there are buckets depends on the number of users, the statements must not.
    await this.#run(this.#sql.writeBuckets, [JSON.stringify(rows)]);
  }

  async recordCreated(rows: CreatedRow[]): Promise<void> {
    if (rows.length > 0) await this.#run(this.#sql.recordCreated, [JSON.stringify(rows)]);
  }

  async readCreated(listed: string[]): Promise<UserRef[]> {
    const rows = await this.#run(this.#sql.readCreated, [JSON.stringify(listed)]);
    return rows.map((row) => ({ username: String(row.username), subject: String(row.subject) }));
  }

  async endAccess(subjects: string[]): Promise<Map<string, RowCounts>> {
    const tables = SUBJECT_TABLES.filter((t) => t.disable !== undefined);
    return await this.#inSubjectTables(subjects, tables, this.#sql.endAccess);
  }

  async removeUsers(subjects: string[]): Promise<Map<string, RowCounts>> {
    // The rows keyed by the subjects first: a passkey's foreign key would otherwise delete it uncounted.
    const counts = await this.#inSubjectTables(subjects, SUBJECT_TABLES, this.#sql.removeRows);
    if (subjects.length > 0) await this.#run(this.#sql.deleteUsers, [JSON.stringify(subjects)]);
    return counts;
  }

  /** Runs `statement` on each of `tables` that exists, for all `subjects` at once, and counts the rows it returns. */
  async #inSubjectTables(
    subjects: string[],
    tables: SubjectTable[],
    statement: (table: SubjectTable) => string,
  ): Promise<Map<string, RowCounts>> {
    const counts = new Map<string, RowCounts>();
    if (subjects.length === 0) return counts;
    const missing = await this.#run(this.#sql.missingTables, [JSON.stringify(tables.map((t) => t.table))]);
    const absent = new Set(missing.map((row) => row.name));
    const batch = [JSON.stringify(subjects)];
    for (const table of tables.filter((t) => !absent.has(t.table))) {
      for (const row of await this.#run(statement(table), batch)) {
        if (table.rows === undefined) continue;
        const tally = counts.get(String(row.subject)) ?? {};
        tally[table.rows] = (tally[table.rows] ?? 0) + 1;
        counts.set(String(row.subject), tally);
      }
    }
    return counts;
  }
}

/** A row of `user_sync_state` or `user_sync_buckets`, as read. */
function stateRow(row: Record<string, unknown>): SyncState {
  return {
    file_key: String(row.file_key),
    pairs_hash: String(row.pairs_hash),
    hashes_digest: String(row.hashes_digest),
    updated_at: Number(row.updated_at),
  };
}

/**
 * Opens the store a database URL names; throws {@linkcode UsageError} for a URL it cannot use. Asynchronous because
 * the PostgreSQL driver is loaded here, by the run that needs it, not at start.
 */
export async function openStore(url: string, options: StoreOptions = DEFAULT_STORE_OPTIONS): Promise<Store> {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  if (scheme === "sqlite") return new SqliteStore(parseSqliteUrl(url), options);
  if (scheme === "postgres" || scheme === "postgresql") {
    // Without "//" the driver reads the whole rest, password included, as a database name.
    if (!/^[a-z]+:\/\//i.test(url)) {
      throw new UsageError(
        `the database URL must start with ${scheme}://; expected ${scheme}://user:password@host:5432/database`,
      );
    }
    refuseAmbiguousUrl(url);
    return new PostgresStore(await loadPostgres(), url, options);
  }
  throw new UsageError(
    scheme === undefined
      ? "the database URL has no scheme; expected sqlite://PATH?mode=rwc or postgres://user:password@host:5432/database"
      : `unsupported database URL scheme "${scheme}:"; expected sqlite:, postgres: or postgresql:`,
  );
}

/**
 * Refuses a PostgreSQL URL whose user name or password holds an unencoded "@",
 * "/", "?" or "#": readers disagree on where such a password ends. The
 * `postgres` driver (and libpq) end it at the first "@", sqlx (Barycenter) and
 * WHATWG URLs at the last, and "/", "?" or "#" end the host part early: each
 * reading turns a piece of the password into a host, port or database name,
 * which messages print. Percent-encoded, the URL means one thing to all of them.
 */
function refuseAmbiguousUrl(url: string): void {
  const rest = url.slice(url.indexOf("//") + 2);
  const end = rest.search(/[/?#]/);
  // user:password@host:port, as a URL parser delimits it.
  const authority = end < 0 ? rest : rest.slice(0, end);
  const ats = url.split("@").length - 1;
  if (ats > 1 || (ats === 1 && !authority.includes("@"))) {
    throw new UsageError(
      'the database URL is ambiguous: its user name or password holds an unencoded "@", "/", "?" or "#", ' +
        "so drivers disagree on where the password ends; percent-encode them (@ as %40, / as %2F, ? as %3F, # as %23)",
    );
  }
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
 * How long one wait for a SQLite lock may hold the thread. SQLite's busy
 * timeout sleeps on the JavaScript thread, where no signal handler runs (a
 * SIGTERM waited for the whole --wait): so a wait of --wait seconds is made
 * of many waits this short, with the event loop turning between them.
 */
const SQLITE_BUSY_SLICE_MS = 100;

/**
 * Whether SQLite refused because another connection holds a lock
 * (SQLITE_BUSY, any extended code). Deno's `node:sqlite` gives no `errcode`,
 * only SQLite's message for that code.
 */
function sqliteBusy(error: unknown): boolean {
  const { errcode, message } = error as { errcode?: number; message?: unknown };
  return errcode === undefined ? String(message).startsWith("database is locked") : errcode % 256 === 5;
}

/**
 * SQLite through the runtime's built-in `node:sqlite`: one connection,
 * `BEGIN IMMEDIATE`, a busy timeout, and `json_each` batches (SQLite has no
 * arrays to bind, so each batch is one JSON parameter).
 */
class SqliteStore implements Store {
  #location: SqliteLocation;
  #options: StoreOptions;
  #db: SqliteDatabase | undefined;
  #committed = false;
  /** The file path: safe to print. */
  readonly target: string;

  constructor(location: SqliteLocation, options: StoreOptions = DEFAULT_STORE_OPTIONS) {
    this.#location = location;
    this.#options = options;
    this.target = location.path;
  }

  async transaction<T>(work: (tx: StoreTransaction) => Promise<T>, mode: { readOnly: boolean }): Promise<T> {
    const db = await this.#open(mode.readOnly);
    try {
      // IMMEDIATE takes the write lock now, so a concurrent writer waits here, not halfway through. A read takes its
      // lock at its first read: done here too, so that a writer's commit is waited for here and nowhere else.
      await this.#untilUnlocked(
        mode.readOnly ? () => beginReading(db) : () => db.exec("BEGIN IMMEDIATE"),
        () =>
          `SQLite ${this.target} is locked by another writer (Barycenter or another sync); ` +
          `waiting up to ${this.#options.waitSeconds} s (--wait)`,
      );
    } catch (error) {
      const busy = sqliteBusy(error);
      throw new DatabaseError(
        busy
          ? `SQLite ${this.target} stayed locked by another writer (Barycenter or another sync) for ` +
            `${this.#options.waitSeconds} s (--wait)`
          : `cannot start a transaction on SQLite ${this.target}: ${describeDriverError(error)}`,
        { inTransaction: false },
      );
    }
    let result: T;
    try {
      const run = ((text: string, params: unknown[] = [], arrays = false, each?: (row: unknown[]) => void) => {
        try {
          const statement = db.prepare(text);
          const values = params as (string | number | null)[];
          // An older node:sqlite (Node.js 22) may have no setReturnArrays, or no iterate: its objects are made
          // arrays here, and all are read before the first is handed on. So are Deno's: its iterate() ends at a
          // row it cannot read as if every row had been read, where all() throws, and a user after that row
          // would be taken for one the database does not hold.
          if (arrays && statement.setReturnArrays !== undefined) statement.setReturnArrays(true);
          if (
            each !== undefined && statement.setReturnArrays !== undefined && statement.iterate !== undefined &&
            process.versions.deno === undefined
          ) {
            for (const row of statement.iterate(...values)) each(row as unknown as unknown[]);
            return Promise.resolve([]);
          }
          const all = statement.all(...values);
          const rows = arrays && statement.setReturnArrays === undefined ? all.map(Object.values) : all;
          if (each === undefined) return Promise.resolve(rows);
          for (let r = 0; r < rows.length; r++) each(rows[r] as unknown[]);
          return Promise.resolve([]);
        } catch (error) {
          return Promise.reject(
            new DatabaseError(`SQLite ${this.target}: ${describeDriverError(error)}`, { cause: error }),
          );
        }
      }) as RunStatement;
      // `BEGIN IMMEDIATE` already holds SQLite's write lock: no statement of its own.
      result = await work(new SqlTransaction(run, SQLITE_STATEMENTS));
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    }
    try {
      if (mode.readOnly) {
        db.exec("ROLLBACK");
      } else {
        // Outside WAL mode a commit waits for readers (Barycenter answering a login) to finish: SQLite keeps the
        // transaction when COMMIT finds them, and documents retrying it.
        await this.#untilUnlocked(
          () => {
            db.exec("COMMIT");
            this.#committed = true;
          },
          () =>
            `SQLite ${this.target} is being read (by Barycenter?); the commit waits for the readers, ` +
            `up to ${this.#options.waitSeconds} s (--wait)`,
        );
      }
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw new DatabaseError(
        sqliteBusy(error)
          ? `SQLite ${this.target} stayed in use by readers for ${this.#options.waitSeconds} s (--wait), so the ` +
            "commit could not take place"
          : `SQLite ${this.target}: ${describeDriverError(error)}`,
      );
    }
    return result;
  }

  /**
   * Runs `statement` (BEGIN or COMMIT, which SQLite lets one retry) until it
   * no longer finds the database locked, or --wait runs out: each attempt
   * waits at most {@linkcode SQLITE_BUSY_SLICE_MS}, then the event loop turns,
   * so a signal is handled at once. The first lock found is logged.
   */
  async #untilUnlocked(statement: () => void, locked: () => string): Promise<void> {
    const deadline = monotonicMs() + this.#options.waitSeconds * 1000;
    for (let attempt = 1;; attempt++) {
      try {
        return statement();
      } catch (error) {
        if (!sqliteBusy(error) || monotonicMs() >= deadline) throw error;
        if (attempt === 1) this.#options.onRetry(locked());
      }
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  async #open(readOnly: boolean): Promise<SqliteDatabase> {
    if (this.#db !== undefined) return this.#db;
    const { path, mode } = this.#location;
    const missing = path !== ":memory:" && !existsSync(path);
    if (missing && mode === "rw") {
      throw new DatabaseError(
        `SQLite database file ${path} does not exist and the URL's mode is rw (sqlx's default); ` +
          "check the path and the volume, or add ?mode=rwc to let the sync create it",
        { inTransaction: false },
      );
    }
    let DatabaseSync: typeof import("node:sqlite").DatabaseSync;
    try {
      ({ DatabaseSync } = await import("node:sqlite"));
    } catch {
      throw new RuntimeError(
        `SQLite needs the runtime's node:sqlite, which Node.js ${process.versions.node} does not have: run with ` +
          "Node.js 22.13+ or Deno 2.2+ (PostgreSQL, --validate and hash-password work with this one)",
      );
    }
    try {
      // A dry run must not create the file: an empty in-memory database stands in for a missing one.
      const db = readOnly
        ? new DatabaseSync(missing ? ":memory:" : path, { readOnly: !missing })
        : new DatabaseSync(path);
      db.exec(`PRAGMA busy_timeout = ${Math.min(SQLITE_BUSY_SLICE_MS, Math.round(this.#options.waitSeconds * 1000))}`);
      this.#db = db;
      return db;
    } catch (error) {
      throw new DatabaseError(`cannot open SQLite ${path}: ${describeDriverError(error)}`, {
        inTransaction: false,
        cause: error,
      });
    }
  }

  async abort(): Promise<AbortOutcome> {
    // COMMIT runs on this thread: a signal is handled before it or after it, never during it.
    const outcome = this.#committed ? "committed" : this.#db?.isTransaction ? "rolled back" : "nothing begun";
    if (outcome === "rolled back") this.#db!.exec("ROLLBACK");
    await this.close();
    return outcome;
  }

  close(): Promise<void> {
    this.#db?.close();
    this.#db = undefined;
    return Promise.resolve();
  }
}

/**
 * Begins a read transaction and takes its lock (SQLite takes it at the first
 * read), so that a writer holding the database is met here; on failure the
 * transaction is ended again, to be begun anew.
 */
function beginReading(db: SqliteDatabase): void {
  db.exec("BEGIN");
  try {
    db.prepare("SELECT count(*) FROM sqlite_master").get();
  } catch (error) {
    db.exec("ROLLBACK");
    throw error;
  }
}

/**
 * Adds to `result` the stored user each row makes, rows read as arrays of `columns`, whatever the backend's row
 * types (bigint as string or number); `properties` is the JSON text of an object of key → stored value.
 */
function storedUserReader(columns: string[], result: Map<string, StoredUser>): (row: unknown[]) => void {
  // Where each column is in a row: -1 for a later column Barycenter has not added yet.
  const at = USER_COLUMN_ENTRIES.map(([name]) => columns.indexOf(name));
  const [username, propertiesAt] = [columns.indexOf("username"), columns.indexOf("properties")];
  // Index loops, no destructuring: this runs once per user read, before V8 has optimised it (see userProblems).
  return (row) => {
    // Kept as parsed, not copied into a Map: at 10,000 users the copies cost 10 to 30 ms of a no-change run.
    const properties = JSON.parse(String(row[propertiesAt])) as Record<string, string>;
    const user: Record<string, unknown> = { properties };
    for (let c = 0; c < USER_COLUMN_ENTRIES.length; c++) {
      if (at[c] < 0) continue;
      const { type, nullable } = USER_COLUMN_ENTRIES[c][1];
      const value = row[at[c]];
      user[USER_COLUMN_ENTRIES[c][0]] = value === null && nullable
        ? null
        : type === "bigint"
        ? Number(value)
        : String(value);
    }
    result.set(String(row[username]), user as StoredUser);
  };
}

/** {@linkcode USER_COLUMNS} as entries, for {@linkcode storedUserReader}. */
const USER_COLUMN_ENTRIES = Object.entries(USER_COLUMNS) as [string, { type: SqlType; nullable?: true }][];

/** PostgreSQL through the `postgres` package: one connection, an advisory lock, a watchdog on every statement. */
class PostgresStore implements Store {
  #sql: ReturnType<typeof postgres>;
  #secrets: string[];
  #options: StoreOptions;
  /** Where the transaction stands, for {@linkcode abort} to say what became of it. */
  #state: "idle" | "open" | "committing" | "committed" = "idle";
  /** The COMMIT on its way, while `#state` is "committing". */
  #commit: Promise<unknown> | undefined;
  /** Set by {@linkcode abort}: from then on no COMMIT is sent. */
  #aborted = false;
  /** `host:port/database`, never the password: safe to print. */
  readonly target: string;
  /** The URL's `sslmode` (or `ssl`), to say what a failed TLS handshake was asked for. */
  #sslmode: string | undefined;

  constructor(driver: typeof postgres, url: string, options: StoreOptions = DEFAULT_STORE_OPTIONS) {
    this.#secrets = urlSecrets(url);
    const query = new URLSearchParams(url.split("#")[0].split("?")[1] ?? "");
    this.#sslmode = query.get("sslmode") ?? query.get("ssl") ?? undefined;
    this.#options = options;
    try {
      this.#sql = driver(url, {
        max: 1,
        onnotice: () => {},
        connect_timeout: Math.max(1, Math.min(10, options.waitSeconds || 10)),
        // The driver's own reconnect delay (up to 20 s) would stack on the backoff below.
        backoff: () => 0,
        connection: {
          application_name: "barycenter-user-sync",
          // The server cancels a statement that runs too long, waiting for another sync's lock included.
          statement_timeout: options.statementTimeoutSeconds * 1000, // milliseconds, PostgreSQL's unit
        },
      });
    } catch {
      throw new UsageError("the database URL cannot be parsed; expected postgres://user:password@host:5432/database");
    }
    const { host, port, database } = this.#sql.options;
    // With several hosts the driver swallows each connection error while it moves on to the next, for ever, past any
    // --wait; and Barycenter's sqlx reads no host list at all, so such a URL cannot be the database Barycenter uses.
    if (host.length > 1) {
      throw new UsageError(
        `the database URL names ${host.length} hosts; Barycenter connects to a single host, so give the one it uses`,
      );
    }
    this.target = this.#redact(`${host.map((h, i) => `${h}:${port[i] ?? port[0]}`).join(",")}/${database}`);
  }

  /**
   * Removes the URL's password from a message. A malformed URL (a "/" or "@"
   * left unencoded in the password) can make the driver read part of the
   * password as a host or database name, which then shows up in messages.
   */
  #redact(message: string): string {
    return this.#secrets.reduce((text, secret) => text.split(secret).join("***"), message);
  }

  /**
   * Runs the transaction; a failure to connect that may pass (refused, name
   * not resolvable yet, server starting up) is retried with capped
   * exponential backoff and jitter until `--wait` runs out. Nothing has
   * happened before the transaction begins, so a retry is safe.
   */
  async transaction<T>(work: (tx: StoreTransaction) => Promise<T>, mode: { readOnly: boolean }): Promise<T> {
    const started = monotonicMs();
    const deadline = started + this.#options.waitSeconds * 1000;
    for (let attempt = 1;; attempt++) {
      try {
        return await this.#attempt(work, mode);
      } catch (error) {
        if (!(error instanceof ConnectError)) throw error;
        const reason = this.#redact(connectFailure(error.cause, this.#sslmode));
        const remaining = deadline - monotonicMs();
        const delay = Math.min(remaining, retryDelay(attempt));
        if (!isTransientConnectError(error.cause) || remaining <= 0) {
          const seconds = ((monotonicMs() - started) / 1000).toFixed(1);
          const waited = attempt > 1
            ? ` after ${attempt} attempts in ${seconds} s (--wait ${this.#options.waitSeconds})`
            : "";
          const hint = isTransientConnectError(error.cause) ? `; ${UNREACHABLE_HINT}` : "";
          throw new DatabaseError(`cannot connect to PostgreSQL at ${this.target}${waited}: ${reason}${hint}`, {
            inTransaction: false,
            cause: error.cause,
          });
        }
        this.#options.onRetry(
          `PostgreSQL at ${this.target} not reachable yet (attempt ${attempt}: ${reason}); ` +
            `retrying in ${(delay / 1000).toFixed(1)} s`,
        );
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /**
   * One transaction on a reserved connection, begun and ended by hand rather
   * than with the driver's `begin()`: after a connection was killed, `begin()`
   * still sends ROLLBACK down the dead socket, which crashes the driver. The
   * server rolls back by itself a transaction whose connection is gone.
   */
  async #attempt<T>(work: (tx: StoreTransaction) => Promise<T>, mode: { readOnly: boolean }): Promise<T> {
    let sql: postgres.ReservedSql;
    try {
      sql = await this.#sql.reserve();
      await this.#watchdog(sql.unsafe(mode.readOnly ? "BEGIN READ ONLY" : "BEGIN READ WRITE"));
    } catch (error) {
      throw new ConnectError(error);
    }
    try {
      this.#state = "open";
      let result: T;
      try {
        const run = (async (text: string, params: unknown[] = [], arrays = false, each?: (row: unknown[]) => void) => {
          try {
            const query = sql.unsafe(text, params as postgres.ParameterOrJSON<never>[]);
            if (each !== undefined) {
              await this.#watchdog(query.values().forEach((row) => each(row as unknown as unknown[])));
              return [];
            }
            return [...await this.#watchdog(arrays ? query.values() : query)];
          } catch (error) {
            const message = `PostgreSQL at ${this.target}: ${this.#redact(describeDriverError(error))}`;
            throw new DatabaseError(message, { cause: error });
          }
        }) as RunStatement;
        result = await work(new SqlTransaction(run, POSTGRES_STATEMENTS, ADVISORY_LOCK));
        // A signal's handler has said "rolling back" and is dropping the connection: that must stay true.
        if (this.#aborted) throw new DatabaseError(`PostgreSQL at ${this.target}: stopped by a signal`);
      } catch (error) {
        if (!connectionLost(error)) await this.#watchdog(sql.unsafe("ROLLBACK")).catch(() => {});
        this.#state = "idle";
        throw error;
      }
      try {
        this.#state = "committing";
        await (this.#commit = this.#watchdog(sql.unsafe("COMMIT")));
        this.#state = mode.readOnly ? "idle" : "committed";
      } catch (error) {
        this.#state = "idle";
        throw new DatabaseError(`PostgreSQL at ${this.target}: ${this.#redact(describeDriverError(error))}`);
      }
      return result;
    } finally {
      sql.release();
    }
  }

  /**
   * Bounds a statement on the client side too: a half-open connection never
   * delivers the server's cancellation, so after the statement timeout (and a
   * grace period) the connection is dropped, which fails the statement.
   */
  #watchdog = <T>(query: PromiseLike<T>): Promise<T> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.#sql.end({ timeout: 0 }).catch(() => {});
        reject(Object.assign(
          new Error(`no answer within ${this.#options.statementTimeoutSeconds + 10} s; connection dropped`),
          { code: "CONNECTION_DROPPED_BY_WATCHDOG" },
        ));
      }, (this.#options.statementTimeoutSeconds + 10) * 1000);
    });
    return Promise.race([query, expired]).finally(() => clearTimeout(timer));
  };

  async abort(): Promise<AbortOutcome> {
    this.#aborted = true;
    const state = this.#state;
    let outcome: AbortOutcome = state === "open"
      ? "rolled back"
      : state === "committed"
      ? "committed"
      : "nothing begun";
    if (state === "committing") {
      // The COMMIT is on its way: what the server answers within a second is the truth to print.
      outcome = await Promise.race([
        this.#commit!.then(
          () => "committed" as const,
          (error) => isPostgresError(error) ? "rolled back" as const : "unknown" as const,
        ),
        new Promise<"unknown">((resolve) => setTimeout(resolve, 1000, "unknown")),
      ]);
    }
    // Dropping the connection makes the server roll an open transaction back.
    await this.#sql.end({ timeout: 0 }).catch(() => {});
    return outcome;
  }

  async close(): Promise<void> {
    await this.#sql.end({ timeout: 5 });
  }
}

/**
 * How long to wait before connection attempt `attempt + 1`: exponential from
 * 250 ms, capped at 5 s, with jitter (×0.5 to ×1) so that replicas started
 * together do not knock on the database in step.
 */
function retryDelay(attempt: number): number {
  return Math.min(5000, 250 * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
}

/** Whether a failed statement took its connection with it (killed, server shut down, network gone). */
function connectionLost(error: unknown): boolean {
  const cause = error instanceof DatabaseError ? error.cause : error;
  const code = (cause as { code?: unknown })?.code;
  return typeof code === "string" &&
    (code.startsWith("CONNECTION_") || code.startsWith("57P0") || ["ECONNRESET", "EPIPE"].includes(code));
}

/** A failure before the transaction began: nothing happened yet, so it may be retried. */
class ConnectError extends Error {
  constructor(cause: unknown) {
    super("connection failed", { cause });
  }
}

/** What to check when the server stays unreachable: the usual causes in a cluster, in one clause. */
const UNREACHABLE_HINT = "check the host (in Kubernetes, the Service's name and namespace), the port, " +
  "and any NetworkPolicy between this pod and the database";

/**
 * A connection failure in one line. A failed TLS handshake is said in words:
 * the driver's own ("Client network socket disconnected before secure TLS
 * connection was established") does not say that the server refused TLS.
 */
function connectFailure(error: unknown, sslmode: string | undefined): string {
  const { message } = error as { message?: unknown };
  if (sslmode !== undefined && /\b(TLS|SSL)\b/i.test(String(message))) {
    return `the server did not accept TLS, which the URL's sslmode=${sslmode} asks for; enable TLS on the server, ` +
      "or give sslmode=prefer or sslmode=disable where the network is trusted " +
      `(${describeDriverError(error)})`;
  }
  return describeDriverError(error);
}

/**
 * Failures that pass by themselves when the database is starting at the same
 * time as the pod: refused, unreachable, name not resolvable yet, timed out,
 * "the database system is starting up". Authentication, an unknown database
 * and TLS errors do not pass by waiting: they are reported at once.
 */
function isTransientConnectError(error: unknown): boolean {
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (isPostgresError(error)) return code === "57P03";
  // A reset during the TLS handshake is a server that does not speak TLS, not one still starting.
  if (/\b(TLS|SSL)\b/i.test(String(message))) return false;
  return typeof code === "string" && [
    "ECONNREFUSED",
    "ECONNRESET",
    "ENOTFOUND",
    "EAI_AGAIN",
    "ETIMEDOUT",
    "EHOSTUNREACH",
    "ENETUNREACH",
    "EPIPE",
    "CONNECT_TIMEOUT",
    "CONNECTION_CLOSED",
    "CONNECTION_ENDED",
    "CONNECTION_DESTROYED",
  ].includes(code);
}
// #endregion

// #region Apply: the whole file in one transaction, in named steps

/** The outcome of a sync: what happened to each user. */
export interface SyncResult {
  changes: UserChange[];
  dryRun: boolean;
  /** Whether the stored state proved every password, sparing one verification per user. */
  fastPath: boolean;
  /** Barycenter's `admin` exists, is enabled and still has the password `password123` (the file does not list it). */
  defaultAdminPassword: boolean;
  /** The Argon2 computations the run made, by why. */
  argon2: Argon2Counts;
}

/** What a sync needs to know of the database before it plans. */
interface Current {
  /** The listed users that exist, by username. */
  users: Map<string, StoredUser>;
  /** The fast path's state row for this set of usernames, opened with the file's pairs: {@linkcode unlockState}. */
  unlocked: UnlockedState;
  /** Reads the fast path's bucket rows with these keys: none when a dry run finds no table. */
  readBuckets: (fileKeys: string[]) => Promise<SyncState[]>;
  /** The later `users` columns (`requires_2fa`) that Barycenter has not added yet. */
  absentColumns: string[];
  /** Whether a `users` table exists to read (a dry run creates none). */
  usersTable: boolean;
  /** With `--prune`: the users the tool created that the file does not list. */
  created: UserRef[];
}

/** Which file passwords match their stored hashes, and how that was learnt. */
interface PasswordProof {
  /** Username → whether the file's password (or its `password_hash`) matches what is stored. */
  matches: Map<string, boolean>;
  /** The state proved every password: no per-user verification ran. */
  fastPath: boolean;
  /** What the state showed, for {@linkcode sealedState}. */
  proof: StateProof;
  /** What the buckets showed when the state did not prove every password. */
  buckets: BucketsProof;
}

/**
 * Makes the store match `specs`, in one transaction, in named steps: read
 * what is there, prove the passwords (through the fast path when the stored
 * state allows, else one verification per user), plan, apply, record the
 * state. With `dryRun`, it plans only and writes nothing (the transaction is
 * read only).
 */
export async function syncUsers(
  store: Store,
  specs: UserSpec[],
  options: { dryRun: boolean; now?: () => number; work?: Argon2Work; prune?: { max: number } },
): Promise<SyncResult> {
  const now = (options.now ?? (() => Math.floor(Date.now() / 1000)))();
  const { dryRun, prune } = options;
  const work: CountedWork = { ...options.work ?? DEFAULT_ARGON2_WORK, counts: { proofs: 0, verified: 0, hashed: 0 } };
  // Absent users have no password, and no place in the fast path's state.
  const present = specs.filter((spec) => spec.state !== "absent");
  return await store.transaction(async (tx) => {
    const current = await readCurrent(tx, specs, dryRun, prune !== undefined, work.counts);
    const passwords = await provePasswords(present, current, work);
    let plan = planChanges(specs, current.users, passwords.matches, now, undefined, current.absentColumns);
    if (prune !== undefined) plan = planPrune(plan, specs, current.created, prune.max);
    if (!dryRun) {
      const written = await hashPlannedUsers(plan.users, work);
      // Sealed before any write: its Argon2 work (7 MiB a computation in flight) then never adds to what
      // sending the rows holds.
      const state = await sealedState(present, current, passwords, written, now, work);
      const rows = await applyPlan(tx, plan, written);
      if (state !== undefined) {
        await tx.writeBuckets(state.buckets);
        await tx.writeState(state.file);
      }
      plan = withRowCounts(plan, rows);
    }
    const defaultAdminPassword = await hasDefaultAdminPassword(tx, specs, !current.usersTable, work.counts);
    return { changes: plan.changes, dryRun, fastPath: passwords.fastPath, defaultAdminPassword, argon2: work.counts };
  }, { readOnly: dryRun });
}

/**
 * Takes the lock, creates missing tables (not in a dry run, which creates
 * nothing and reads what exists), and reads the state, then the listed users
 * while the state is opened ({@linkcode unlockState}, one Argon2). Its 7 MiB
 * are freed long before the rows read pile up: a no-change re-sync of 10,000
 * or 50,000 users peaks as high as when the key was derived first.
 */
async function readCurrent(
  tx: StoreTransaction,
  specs: UserSpec[],
  dryRun: boolean,
  prune: boolean,
  counts: Argon2Counts,
): Promise<Current> {
  // Without the lock, two first runs both try CREATE TABLE and one fails; a dry run writes nothing, so waits for no one.
  if (!dryRun) await tx.lock();
  const missing = await tx.missingTables();
  if (!dryRun && missing.length > 0) await tx.createTables(missing);
  const absent = (table: TableName) => dryRun && missing.includes(table);
  // First: the users read and written next are those columns that exist.
  const absentColumns = absent("users") ? LATER_USER_COLUMNS : await tx.absentUserColumns();
  const present = specs.filter((spec) => spec.state !== "absent");
  const state = absent("user_sync_state") ? undefined : await tx.readState(stateKey(present));
  // The state's key (one Argon2, on the thread pool) is derived while the users are read, not before: a 1,000-user
  // read no longer waits for it. The read starts one turn of the event loop later, because the computation is
  // handed to the pool from a promise callback, and SQLite reads on this thread: started at once, the read would
  // end before the pool is handed anything. A failed derivation is met at its `await`, after the read, inside the
  // transaction still; until then the empty catch keeps it from counting as unhandled.
  const unlocking = unlockState(present, state, counts);
  unlocking.catch(() => {});
  await nextTurn();
  const users = absent("users")
    ? new Map<string, StoredUser>()
    : await tx.readUsers(specs.map((s) => s.username), !absent("properties"));
  const unlocked = await unlocking;
  // Read only when the state does not prove every password: a no-change run reads no bucket, nor does a
  // run that has just created (or, dry, would create) the table.
  const readBuckets = (fileKeys: string[]) =>
    missing.includes("user_sync_buckets") ? Promise.resolve([]) : tx.readBuckets(fileKeys);
  const created = prune && !absent("user_sync_created") && !absent("users")
    ? await tx.readCreated(specs.map((s) => s.username))
    : [];
  return { users, unlocked, readBuckets, absentColumns, usersTable: !absent("users"), created };
}

/** Barycenter's well-known default account: created at its start when no user `admin` exists. */
const DEFAULT_ADMIN_ACCOUNT = { username: DEFAULT_ADMIN, password: "password123" } as const;

/**
 * Whether Barycenter's `admin` is enabled with its default password: one
 * Argon2 verification, none when the file lists `admin` with a password it
 * enforces (the sync has just made it the file's) or there is no `users`
 * table to read. An `initial` password of `admin` keeps whatever is stored, the
 * default password too, so it is still checked.
 */
async function hasDefaultAdminPassword(
  tx: StoreTransaction,
  specs: UserSpec[],
  noTable: boolean,
  counts: Argon2Counts,
): Promise<boolean> {
  if (noTable || enforced(specs).some((s) => s.username === DEFAULT_ADMIN_ACCOUNT.username)) return false;
  const admin = (await tx.readUsers([DEFAULT_ADMIN_ACCOUNT.username], false)).get(DEFAULT_ADMIN_ACCOUNT.username);
  if (admin === undefined || admin.enabled !== 1 || !usableArgon2(admin.password_hash)) return false;
  counts.verified++;
  return await argon2Verify(admin.password_hash, DEFAULT_ADMIN_ACCOUNT.password).catch(() => false);
}

/**
 * Learns which passwords match: `password_hash` users by comparing strings,
 * the others all at once through the state's proof (one Argon2), or, when it
 * does not prove them, through the buckets' proofs and one verification for
 * each user they do not prove.
 */
async function provePasswords(specs: UserSpec[], current: Current, work: CountedWork): Promise<PasswordProof> {
  const proof = unlockedProves(specs, current.users, current.unlocked);
  const matches = new Map(
    enforced(specs).filter((s) => s.password_hash !== undefined)
      .map((s) => [s.username, current.users.get(s.username)?.password_hash === s.password_hash]),
  );
  // An initial password is kept while the stored hash is usable: never verified, so no Argon2. (Index loops over
  // the users: see userProblems.)
  for (let i = 0; i < specs.length; i++) {
    const hash = specs[i].password_mode === "initial" ? current.users.get(specs[i].username)?.password_hash : undefined;
    if (hash !== undefined) matches.set(specs[i].username, usableArgon2(hash));
  }
  if (proof.proves) {
    // Every file password proven at once: no bucket to check, no one to verify.
    const proven = withFilePassword(specs);
    for (let i = 0; i < proven.length; i++) matches.set(proven[i].username, true);
    return { matches, fastPath: true, proof, buckets: { proven: new Set(), keys: new Map() } };
  }
  const buckets = await bucketsProve(specs, current.users, proof, current.readBuckets, work);
  for (const username of buckets.proven) matches.set(username, true);
  const unproven = specs.filter((s) => !buckets.proven.has(s.username));
  for (const [username, ok] of await verifyPasswords(unproven, current.users, work)) matches.set(username, ok);
  return { matches, fastPath: false, proof, buckets };
}

/**
 * Writes the users (`written`: the plan's rows with their hashes), then their properties, records the users
 * created (a statement each); ends the access of users being disabled and deletes the users to remove, with
 * their rows in Barycenter's other tables (a statement to find those tables, then one per table). Returns what
 * was ended or deleted, by username.
 */
async function applyPlan(tx: StoreTransaction, plan: Plan, written: UserRow[]): Promise<Map<string, RowCounts>> {
  await tx.writeUsers(written);
  await tx.writeProperties(plan.properties);
  const created = new Set(plan.changes.filter((c) => c.action === "create").map((c) => c.username));
  await tx.recordCreated(
    written.filter((row) => created.has(row.username))
      .map(({ subject, username, created_at }) => ({ subject, username, created_at })),
  );
  const rows = new Map<string, RowCounts>();
  for (
    const [users, counts] of [
      [plan.disabled, await tx.endAccess(plan.disabled.map((u) => u.subject))],
      [plan.removals, await tx.removeUsers(plan.removals.map((u) => u.subject))],
    ] as const
  ) {
    for (const { username, subject } of users) rows.set(username, counts.get(subject) ?? {});
  }
  return rows;
}

/** The plan's changes with the counts of rows ended or deleted for each user, those not 0. */
function withRowCounts(plan: Plan, rows: Map<string, RowCounts>): Plan {
  const changes = plan.changes.map((change) => {
    const counts = rows.get(change.username);
    return counts === undefined || Object.keys(counts).length === 0 ? change : { ...change, rows: counts };
  });
  return { ...plan, changes };
}

/**
 * The fast path's state for the hashes the database will hold once `written`
 * is: undefined when the proven state stays true (no hash changed), and is
 * left alone; otherwise a new one, sealed under the key the proof derived
 * when the state was made for these pairs, else under a new salt (one
 * Argon2), with the rows of the buckets whose hashes or pairs changed (one
 * Argon2 each, unless their own row's check derived their key).
 */
async function sealedState(
  specs: UserSpec[],
  current: Current,
  passwords: PasswordProof,
  written: UserRow[],
  now: number,
  work: CountedWork,
): Promise<{ file: SyncState; buckets: SyncState[] } | undefined> {
  const { proof } = passwords;
  // A state from before the buckets, still proving: sealed again once, with its buckets.
  const count = bucketCount(withFilePassword(specs).length);
  const hasBuckets = count === 0 || proof.bucketMacs?.length === count;
  // The state proved the hashes read, and none was written: it proves them still (no digest to compute again).
  if (passwords.fastPath && written.length === 0 && hasBuckets) return undefined;
  const hashes = new Map([...current.users].map(([name, user]) => [name, user.password_hash]));
  for (const row of written) hashes.set(row.username, row.password_hash);
  const hashOf = (username: string) => hashes.get(username)!;
  const digest = passwordHashesDigest(
    enforced(specs).map((s) => ({ username: s.username, password_hash: hashOf(s.username) })),
  );
  if (passwords.fastPath && digest === proof.digest && hasBuckets) return undefined;
  const buckets = await sealBuckets(
    specs,
    hashOf,
    { fileKey: proof.key?.key, bucketMacs: proof.bucketMacs, buckets: passwords.buckets },
    now,
    work,
  );
  const key = proof.key ?? await countedPairsKey(specs, work.counts);
  const bucketDigests = count === 0 ? undefined : buckets.digests;
  return { file: sealState(stateKey(specs), key, digest, now, bucketDigests), buckets: buckets.rows };
}
// #endregion

// #region Report: logs, progress, the summary

/** Where the tool writes: one line per call. */
export interface Output {
  stdout(line: string): void;
  stderr(line: string): void;
}

/** Writes events as text lines or as JSON objects, one a line. Never given secrets. */
export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /** Context for the person running the tool, not a result: on standard error, so standard output stays results. */
  note(msg: string, fields?: Record<string, unknown>): void;
}

/** How a logger writes: colour per stream (text only), and when the run started. */
export interface LoggerOptions {
  color?: { stdout: boolean; stderr: boolean };
  /** Milliseconds on `process.hrtime`'s clock at the start of the run: JSON lines carry `duration_ms` since then. */
  started?: number;
}

const ANSI = { red: 31, green: 32, yellow: 33, cyan: 36, dim: 2, bold: 1 } as const;

/**
 * Colour for a terminal: on only when the stream is a terminal and
 * `NO_COLOR` is unset or empty (no-color.org), never in JSON.
 */
function colorFor(
  env: Env,
  streams: { stdout?: boolean; stderr?: boolean },
): { stdout: boolean; stderr: boolean } {
  const allowed = !env.NO_COLOR;
  return { stdout: allowed && streams.stdout === true, stderr: allowed && streams.stderr === true };
}

/**
 * Characters a log line must not show raw: control characters (a line break
 * starts a fake line, an escape sequence drives the terminal), format
 * characters (U+202E prints the rest of the line reversed), line and paragraph
 * separators, lone surrogates, private-use and unassigned code points.
 */
const NON_PRINTABLE = /[\p{C}\p{Zl}\p{Zp}]/gu;

/**
 * `text` with every character that does not print as itself written as a
 * `\uXXXX` escape (`\u{XXXXX}` beyond the BMP), so that a text log line shows
 * what a name holds, and is never split or reordered by it.
 */
export function printable(text: string): string {
  return text.replace(NON_PRINTABLE, (char) => {
    const code = char.codePointAt(0)!;
    return code > 0xffff
      ? `\\u{${code.toString(16).toUpperCase()}}`
      : `\\u${code.toString(16).toUpperCase().padStart(4, "0")}`;
  });
}

/** A logger writing `format` to `output`: info to stdout, warnings and errors to stderr. */
export function createLogger(format: "text" | "json", output: Output, options: LoggerOptions = {}): Logger {
  const started = options.started ?? monotonicMs();
  if (format === "json") {
    // JSON.stringify escapes C0 controls and lone surrogates but writes U+202E, U+2028, DEL and the like raw;
    // they only stand inside strings, where \uXXXX means the same, so the line parses to the same value.
    const line = (level: string, msg: string, fields?: Record<string, unknown>) =>
      JSON.stringify({
        time: new Date().toISOString(),
        level,
        msg,
        duration_ms: Math.round(monotonicMs() - started),
        ...fields,
      }).replace(
        NON_PRINTABLE,
        (char) => char.split("").map((unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, "0")}`).join(""),
      );
    return {
      info: (msg, fields) => output.stdout(line("info", msg, fields)),
      warn: (msg, fields) => output.stderr(line("warn", msg, fields)),
      error: (msg, fields) => output.stderr(line("error", msg, fields)),
      note: (msg, fields) => output.stderr(line("info", msg, fields)),
    };
  }
  const paint = (on: boolean | undefined, code: number, text: string) => on ? `\x1b[${code}m${text}\x1b[0m` : text;
  const out = options.color?.stdout;
  const err = options.color?.stderr;
  const actionColor: Record<string, number> = { create: ANSI.green, update: ANSI.yellow, unchanged: ANSI.dim };
  // Escaped first, painted after: the colours are the only escape sequences a text line may carry.
  return {
    info: (msg, fields) => {
      const code = actionColor[String(fields?.action)] ?? (fields?.summary ? ANSI.bold : undefined);
      output.stdout(code === undefined ? printable(msg) : paint(out, code, printable(msg)));
    },
    warn: (msg) => output.stderr(`${paint(err, ANSI.yellow, "warning:")} ${printable(msg)}`),
    note: (msg) => output.stderr(printable(msg)),
    error: (msg, fields) => {
      output.stderr(`${paint(err, ANSI.red, "error:")} ${printable(msg)}`);
      for (const problem of (fields?.problems as string[] | undefined) ?? []) output.stderr(`  ${printable(problem)}`);
      for (const frame of (fields?.stack as string[] | undefined) ?? []) output.stderr(`    ${printable(frame)}`);
    },
  };
}

/** Argon2 batches smaller than this finish too fast to need a progress report. */
const PROGRESS_THRESHOLD = 250;

/**
 * Progress for large Argon2 batches: a line rewritten in place on a terminal,
 * or a log line every few seconds when the output is a log.
 */
function createProgress(log: Logger, terminal: { write(text: string): void } | undefined): Progress {
  return (label, total) => {
    if (total < PROGRESS_THRESHOLD) return () => {};
    let done = 0;
    if (terminal) {
      let last = 0;
      return () => {
        done++;
        const now = monotonicMs();
        if (done < total && now - last < 100) return;
        last = now;
        terminal.write(`\r${label}: ${done}/${total}${done === total ? "\n" : ""}`);
      };
    }
    // A log gets a line at the start, then one per tenth done, at most one a second: a few lines, not thousands.
    const line = () => log.info(`${label}: ${done}/${total}`, { progress: label, done, total });
    line();
    let last = monotonicMs();
    let nextTenth = 1;
    return () => {
      done++;
      if (done * 10 < nextTenth * total) return;
      nextTenth = Math.floor((done * 10) / total) + 1;
      const now = monotonicMs();
      if (done === total || now - last >= 1000) {
        last = now;
        line();
      }
    };
  };
}

/**
 * Logs one line per created or updated user (and, for a plan, per unchanged
 * user too), then the summary. Returns whether anything changes.
 */
function reportResult(result: SyncResult, log: Logger, check = false, summaryFields = {}): boolean {
  const verb = result.dryRun
    ? {
      create: "would create",
      update: "would update",
      unchanged: "unchanged",
      delete: "would delete",
      absent: "already absent",
    }
    : { create: "created", update: "updated", unchanged: "unchanged", delete: "deleted", absent: "already absent" };
  const counts = { create: 0, update: 0, unchanged: 0, delete: 0, absent: 0 };
  for (const { username, action, changes, passwordKept, pending, reason, rows } of result.changes) {
    counts[action]++;
    if ((action === "unchanged" || action === "absent") && !result.dryRun) continue;
    const what = changes.length > 0 ? `: ${changes.join(", ")}` : "";
    const notes = [
      ...(passwordKept ? ["password: initial, kept"] : []),
      ...(pending ? [`${pending.join(", ")}: pending Barycenter's first start`] : []),
      reason === "prune" ? "pruned: created by this tool, no longer in the file" : "",
      rowsText(rows, action === "update"),
    ]
      .filter((note) => note !== "");
    log.info(`${verb[action]} ${username}${what}${notes.length > 0 ? ` (${notes.join("; ")})` : ""}`, {
      user: username,
      action,
      changes,
      ...(passwordKept ? { password_mode: "initial", password: "kept" } : {}),
      ...(pending ? { pending } : {}),
      ...(reason === undefined ? {} : { reason }),
      ...(rows === undefined ? {} : { rows }),
    });
  }
  const waiting = result.changes.filter((change) => change.pending !== undefined);
  if (waiting.length > 0) {
    const columns = [...new Set(waiting.flatMap((change) => change.pending!))];
    log.warn(
      `${columns.join(", ")} not applied to ${waiting.map((c) => c.username).join(", ")}: the users table has no ` +
        `such column until Barycenter's first start runs its migration m20250107_000002; the next sync after that ` +
        `applies it`,
      { code: "requires_2fa_pending", columns, users: waiting.map((c) => c.username) },
    );
  }
  if (result.defaultAdminPassword) {
    log.warn(
      "Barycenter's default admin is live: user admin is enabled and still has Barycenter's well-known default " +
        'password; list admin in the users file with a real password, or with "enabled": false',
      { code: "default_admin_password", user: "admin" },
    );
  }
  const differs = counts.create + counts.update + counts.delete > 0 || waiting.length > 0;
  const drift = differs || result.defaultAdminPassword;
  const mode = check
    ? (differs
      ? "check: the database differs from the file"
      : drift
      ? "check: the database matches the file, but Barycenter's default admin password is live"
      : "check: the database matches the file")
    : "dry run: nothing written";
  // Deletions are named only when the file or --prune asks for some, so that the usual summary stays as it was.
  const removals = counts.delete + counts.absent > 0;
  const summary = result.dryRun
    ? `users: ${counts.create} to create, ${counts.update} to update, ${counts.unchanged} unchanged${
      removals ? `, ${counts.delete} to delete, ${counts.absent} already absent` : ""
    } (${mode})`
    : `users: ${counts.create} created, ${counts.update} updated, ${counts.unchanged} unchanged${
      removals ? `, ${counts.delete} deleted, ${counts.absent} already absent` : ""
    }`;
  log.info(summary, {
    summary: true,
    dry_run: result.dryRun,
    ...(check ? { check: true, drift } : {}),
    fast_path: result.fastPath,
    // Argon2 computations, by why: the cost of the run, visible in logs (the text summary stays as it was).
    proofs: result.argon2.proofs,
    verified: result.argon2.verified,
    hashed: result.argon2.hashed,
    created: counts.create,
    updated: counts.update,
    unchanged: counts.unchanged,
    deleted: counts.delete,
    already_absent: counts.absent,
    ...summaryFields,
  });
  return drift;
}

/**
 * The summary's account of the Argon2 thread pool: `argon2_threads`, `argon2_threads_from` (`cpu_quota`,
 * `memory_limit`, `cores`, `UV_THREADPOOL_SIZE`) and, for a cgroup limit, `argon2_threads_limit` (its value and
 * the file that set it), so that a log shows the pool was sized to the pod's limits.
 */
function poolFields(pool: Argon2Pool | undefined): Record<string, unknown> {
  if (pool === undefined) return {};
  return {
    argon2_threads: pool.threads,
    argon2_threads_from: pool.from,
    ...(pool.limit === undefined ? {} : { argon2_threads_limit: pool.limit }),
  };
}

/**
 * What a deletion removed (`4 properties, 1 passkey`) or a disabling ended (`ended 2 sessions, revoked 3
 * tokens`), in the order of {@linkcode SUBJECT_TABLES}; empty when nothing was.
 */
function rowsText(rows: RowCounts | undefined, ended: boolean): string {
  if (rows === undefined) return "";
  const verbs = { delete: "ended ", revoke: "revoked ", consume: "consumed " };
  return (Object.entries(rows) as [RowNoun, number][]).map(([noun, count]) => {
    const disable = ended ? SUBJECT_TABLES.find((t) => t.rows === noun)?.disable : undefined;
    return `${disable === undefined ? "" : verbs[disable]}${count} ${count === 1 ? ROW_NOUNS[noun] : noun}`;
  }).join(", ");
}
// #endregion

// #region Main: the command line, signals, exit statuses

/** Runs the tool with `args` and returns its exit status. */
async function main(args: string[], env: Env, output: Output = processOutput): Promise<number> {
  const started = monotonicMs();
  let options: Options;
  try {
    options = parseOptions(args, env);
  } catch (error) {
    // The options could not be read, but a log pipeline that asked for JSON still gets JSON.
    const json = args.some((a, i) => a === "--log-format=json" || (a === "--log-format" && args[i + 1] === "json"));
    if (permissionDenied(error) !== undefined) {
      return reportFailure(error, createLogger(json ? "json" : "text", output));
    }
    const message = (error as Error).message;
    createLogger(json ? "json" : "text", output).error(
      `${message}${message.endsWith("?") ? " (see --help)" : "; see --help"}`,
    );
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
  const color = colorFor(env, { stdout: isTerminal(1), stderr: isTerminal(2) });
  const log = createLogger(options.logFormat, output, { color, started });
  try {
    workInInvocationDir(env);
  } catch (error) {
    return reportFailure(error, log);
  }
  const validating = options.command !== "hash-password" && options.mode === "validate";
  // Sized before the first file read, the thread pool's first use. A validation computes no Argon2: its pool is
  // libuv's default, and the cgroup files are not read.
  const pool = validating ? undefined : sizeThreadPool();
  const concurrency = pool?.threads ?? 1;
  if (!validating) {
    // Loaded now, before anything is read: a missing addon or Deno permission is said at once, not mid-transaction.
    try {
      await loadArgon2();
    } catch (error) {
      return reportFailure(error, log);
    }
  }
  if (options.command === "hash-password") return await hashPasswordCommand(process.stdin, output, log);
  // From the first read on: a signal must end the run in a moment whatever it waits for.
  const signals = exitOnSignal(log);
  try {
    // --watch with --validate validates once, below: a sidecar's arguments can be checked in CI as they stand.
    if (options.watch && options.mode === "sync") {
      return await watchFiles(options, env, log, { signals, concurrency, pool });
    }
    if (options.mode === "validate") {
      // Secrets from files and variables exist only where the sync runs (a CI pipeline has none): not read here.
      const { files, users: specs } = await readUsers(options, log);
      const count = (n: number) => n === 1 ? "1 user" : `${n} users`;
      for (const { label, users } of files) log.info(`${label}: ${count(users)}, valid`, { file: label, users });
      if (files.length > 1) {
        log.info(`${count(specs.length)} in ${files.length} files, valid`, {
          files: files.length,
          users: specs.length,
        });
      }
      return EXIT.ok;
    }
    return await syncOnce(options, await readSpecs(options, log), env, log, { signals, concurrency, pool });
  } catch (error) {
    return reportFailure(error, log);
  } finally {
    signals.stop();
  }
}

/**
 * Moves to the folder the user ran the command in. npm runs a script in the
 * package root and passes the user's folder as `INIT_CWD`: without this,
 * `cd examples && npm run -s sync -- -f users.json -c config.toml -d
 * sqlite://x.db` would look for both files, and create x.db, in the package
 * root. With it, every relative path (--file, --config, a password_file's users
 * file, a relative SQLite URL) means what it means to npx, and to a plain run
 * from that folder.
 */
function workInInvocationDir(env: Env): void {
  let folder: string | undefined;
  try {
    folder = env.INIT_CWD;
  } catch {
    // Deno without --allow-env for it: npm's hint only, so the working directory stands, as without npm.
    return;
  }
  if (folder === undefined || folder === "" || resolvePath(folder) === process.cwd()) return;
  try {
    process.chdir(folder);
  } catch (error) {
    throw new UsageError(
      `cannot work in $INIT_CWD, ${folder} (the folder npm says the command was run in): ${
        whyUnreadable(error, { missing: "not found", directory: "not a folder", denied: "permission denied" })
      }`,
    );
  }
}

/**
 * Reads, parses and validates every users file and merges them into one list
 * ({@linkcode mergeUsersFiles}), with `--password-mode` as the default; logs
 * the warnings about the merged list. Throws {@linkcode InputError} with every
 * problem of every file; no file's users are returned unless all are valid.
 */
async function readSpecs(options: Options, log: Logger): Promise<UserSpec[]> {
  return (await readUsers(options, log)).users;
}

/** {@linkcode readSpecs}, with how messages name each file read and how many users it lists. */
async function readUsers(
  options: Options,
  log: Logger,
): Promise<{ files: { label: string; users: number }[]; users: UserSpec[] }> {
  const { files, problems } = await listUsersFiles(options.files, options.workingDir);
  const several = files.length + problems.length > 1;
  // One file is named as given, as it always was; several by their names, short and unambiguous.
  const labels = several ? fileLabels(files.map((file) => file.given)) : files.map((file) => file.given);
  const parsed: ParsedUsersFile[] = [];
  for (const [i, file] of files.entries()) {
    const label = labels[i];
    try {
      const text = await readUsersFile(file.path, options.maxFileBytes, label);
      parsed.push({ label, dir: dirname(file.path), data: parseUsersJson(text, label) });
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      // One file: its error as it is. Several: each problem under its file ("cannot read" names the path already).
      if (!several) throw error;
      const own = error.problems.map((problem) => `${label}: ${problem}`);
      problems.push(...(own.length > 0 ? own : [error.message.replace(/; nothing was changed$/, "")]));
    }
  }
  const merged = mergeUsersFiles(parsed, several);
  problems.push(...merged.problems);
  if (problems.length === 1 && files.length === 0) throw new InputError(problems[0]);
  if (problems.length > 0) throw invalid(problems, several ? "users files are" : "users file is");
  const users = merged.users;
  for (let i = 0; i < users.length; i++) users[i].password_mode ??= options.passwordMode;
  for (const warning of claimWarnings(users)) log.warn(warning.message, { code: warning.code, ...warning.fields });
  return { files: parsed.map(({ label, data }) => ({ label, users: usersList(data).length })), users };
}

/** What every sync of a run shares: the signal handling and how many Argon2 computations run at once. */
interface RunContext {
  signals: ReturnType<typeof exitOnSignal>;
  concurrency: number;
  /** The Argon2 thread count and where it came from, for the summary. */
  pool?: Argon2Pool;
  /** Says which database the run opens: {@linkcode announceDatabase}, or once only for all of a watcher's syncs. */
  announce?: typeof announceDatabase;
}

/**
 * One run against the database: syncs in one transaction ({@linkcode syncDatabase}) and reports. Returns the
 * exit status; throws what {@linkcode reportFailure} turns into one.
 */
async function syncOnce(options: Options, specs: UserSpec[], env: Env, log: Logger, run: RunContext): Promise<number> {
  const result = await syncDatabase(options, specs, env, log, run);
  const drift = reportResult(result, log, options.mode === "check", poolFields(run.pool));
  return options.mode === "check" && drift ? EXIT.drift : EXIT.ok;
}

/**
 * Reads the secrets the users name, opens the store, syncs in one transaction
 * and closes the store: the part of a run that a one-shot run and each of
 * `--watch`'s syncs share. Throws what {@linkcode reportFailure} reports.
 */
async function syncDatabase(
  options: Options,
  specs: UserSpec[],
  env: Env,
  log: Logger,
  { signals, concurrency, announce }: RunContext,
): Promise<SyncResult> {
  if (options.prune && !specs.some((spec) => spec.state !== "absent")) {
    log.warn("--prune: the file lists no users, so nothing is pruned (an empty file is more likely a mistake)");
  }
  const users = await resolvePasswords(specs, env, options.workingDir);
  const database = await resolveDatabaseUrl(options);
  const store = await openStore(database.url, {
    waitSeconds: options.waitSeconds,
    statementTimeoutSeconds: options.statementTimeoutSeconds,
    onRetry: (message) => log.warn(message, { retry: true }),
  });
  (announce ?? announceDatabase)(database, store, log);
  signals.abortFirst(store);
  try {
    const terminal = isTerminal(2) ? { write: (text: string) => process.stderr.write(text) } : undefined;
    return await syncUsers(store, users, {
      dryRun: options.mode !== "sync",
      ...(options.prune ? { prune: { max: options.maxPrune } } : {}),
      work: { concurrency, progress: createProgress(log, terminal) },
    });
  } finally {
    await store.close().catch(() => {});
  }
}

/** How long a burst of file events must have been quiet before the sync it asks for. */
const WATCH_QUIET_MS = 1000;

/** Where file events are unavailable: how often the watched paths' modification times are compared. */
const WATCH_POLL_MS = 1000;

/**
 * Longest a watcher stays silent while nothing changes, in seconds: then one
 * status line. `USER_SYNC_STATUS_SECONDS` changes it: the tests and the
 * bench cannot wait an hour.
 */
const WATCH_STATUS_SECONDS = 3600;

/**
 * The paths `--watch` watches: each users file (through the directory that
 * holds it, where Kubernetes swaps its `..data` link) and each directory itself.
 */
function watchedPaths(options: Options): string[] {
  return options.files.map((path) => resolvePath(options.workingDir, path));
}

/**
 * `--watch`: syncs at once, then after each burst of changes to
 * {@linkcode watchedPaths} and every `--resync-interval` seconds, never two
 * syncs at once, until SIGTERM or SIGINT stops it while idle (returns 0; a
 * signal during a sync ends the process as in a one-shot run). Each sync is a
 * one-shot run's transaction on a store opened for it and closed after it, so
 * nothing lingers between syncs, not even a connection that the server may
 * drop. A failed sync, the first included, logs one error line and leaves the
 * database as it was; the watcher keeps going, so that a bad Secret never
 * crash-loops the pod, and the next change or interval tries again.
 */
async function watchFiles(options: Options, env: Env, log: Logger, run: RunContext): Promise<number> {
  const collectGarbage = fullCollector();
  const paths = watchedPaths(options);
  const statusSeconds = Number(env.USER_SYNC_STATUS_SECONDS);
  const statusMs = (statusSeconds >= 0 ? statusSeconds : WATCH_STATUS_SECONDS) * 1000;
  const quietLog = withoutRepeatedWarnings(log);
  let announced = false;
  const once: RunContext = {
    ...run,
    announce: (...args) => {
      if (!announced) announceDatabase(...args);
      announced = true;
    },
  };
  const started = new Date();
  let syncs = 0;
  let users = 0;
  let files = 0;
  let lastChange: Date | undefined;
  let lastLine = Date.now();
  let failed = false;
  let syncing = false;
  let again = false;
  let nextInterval: ReturnType<typeof setTimeout> | undefined;
  let quiet: ReturnType<typeof setTimeout> | undefined;
  let stopped!: () => void;
  const done = new Promise<void>((resolve) => (stopped = resolve));

  /** One sync: reported in full when it changed something, was the first, or follows a failure. */
  const attempt = async () => {
    const first = syncs === 0;
    const fields = { resyncs: syncs, ...poolFields(run.pool) };
    syncs++;
    try {
      const read = await readUsers(options, quietLog);
      const result = await syncDatabase(options, read.users, env, quietLog, once);
      users = read.users.length;
      files = read.files.length;
      const changed = result.changes.some((c) =>
        c.action === "create" || c.action === "update" || c.action === "delete"
      );
      if (changed) lastChange = new Date();
      if (first || changed || failed) {
        reportResult(result, quietLog, false, fields);
        lastLine = Date.now();
      } else if (Date.now() - lastLine >= statusMs) {
        const count = (n: number, noun: string) => `${n.toLocaleString("en-US")} ${noun}${n === 1 ? "" : "s"}`;
        const since = lastChange ? `last change ${clockTime(lastChange)}` : `no change since ${clockTime(started)}`;
        log.info(`watching ${count(files, "file")}; ${count(users, "user")} in step; ${since}`, {
          watching: paths,
          files,
          users,
          last_change: lastChange?.toISOString() ?? null,
          ...fields,
        });
        lastLine = Date.now();
      }
      failed = false;
    } catch (error) {
      failed = true;
      const prefix = first ? "first sync failed, still watching: " : "re-sync failed, still watching: ";
      reportFailure(error, { ...log, error: (msg, f) => log.error(prefix + msg, { ...f, ...fields }) });
      lastLine = Date.now();
    } finally {
      run.signals.abortFirst(undefined);
      quietLog.nextRun();
    }
  };

  const syncNow = async () => {
    if (syncing) {
      again = true;
      return;
    }
    syncing = true;
    clearTimeout(nextInterval);
    run.signals.whenIdle(undefined);
    try {
      do {
        again = false;
        await attempt();
      } while (again);
      collectGarbage();
    } finally {
      syncing = false;
      nextInterval = setTimeout(syncNow, options.resyncIntervalSeconds * 1000);
      run.signals.whenIdle(stop);
    }
  };

  const changed = () => {
    clearTimeout(quiet);
    quiet = setTimeout(syncNow, WATCH_QUIET_MS);
  };
  const unwatch = watchForChanges(paths, changed, log);
  const stop = () => {
    clearTimeout(nextInterval);
    clearTimeout(quiet);
    unwatch();
    stopped();
  };
  log.info(
    `watching ${paths.join(", ")} for changes; re-sync every ${options.resyncIntervalSeconds} s in any case`,
    { watching: paths, resync_interval_s: options.resyncIntervalSeconds },
  );
  await syncNow();
  await done;
  return EXIT.ok;
}

/**
 * A full garbage collection where the runtime lets one be asked for (Node.js: V8's `gc`, exposed at run time),
 * else nothing. A watcher runs one after each sync, while idle: with the image's small young generation
 * (`--max-semi-space-size=1`) most of a sync's short-lived objects outlive it and are promoted, and V8 lets
 * the old generation fill with them before collecting. Measured, a watcher on 1,000 users against PostgreSQL,
 * resident MiB after 10 / 50 / 400 re-syncs: 129 / 158 / 157 without, 117 / 118 / 120 with; a full collection
 * of what a sync leaves takes a few milliseconds.
 */
function fullCollector(): () => void {
  // Deno collects on its own schedule and has no flag to expose `gc` at run time.
  if ("deno" in process.versions) return () => {};
  try {
    // node:v8 and node:vm only here, for a watcher: loading them costs every other run's start-up.
    process.getBuiltinModule("node:v8").setFlagsFromString("--expose-gc");
    const gc: unknown = process.getBuiltinModule("node:vm").runInNewContext("gc");
    if (typeof gc === "function") return gc as () => void;
  } catch { /* a runtime that refuses the flag: V8's own schedule, as before */ }
  return () => {};
}

/**
 * Calls `changed` after something changes under `paths`: by file events on
 * each file's directory (Kubernetes replaces a Secret's files by swapping the
 * `..data` link beside them, which a watch on the file itself never sees) or
 * on each directory. Where events are unavailable or fail, says so in one
 * line and compares modification times instead. Returns what stops watching.
 */
function watchForChanges(paths: string[], changed: () => void, log: Logger): () => void {
  const targets = paths.map((path) => {
    const isDirectory = statSync(path, { throwIfNoEntry: false })?.isDirectory() === true;
    const name = basename(path);
    // Only names that can change what is read, so that a database file or a journal beside them is no trigger.
    const relevant = isDirectory
      ? (file: string) => file.endsWith(".json") || file.startsWith("..")
      : (file: string) => file === name || file.startsWith("..");
    return { directory: isDirectory ? path : dirname(path), relevant };
  });
  let watchers: FSWatcher[] = [];
  let poller: ReturnType<typeof setInterval> | undefined;
  const stopWatchers = () => {
    for (const watcher of watchers) watcher.close();
    watchers = [];
  };
  const poll = (reason: string) => {
    stopWatchers();
    if (poller !== undefined) return;
    log.warn(
      `file events are not available (${reason}); comparing modification times every ${WATCH_POLL_MS / 1000} s instead`,
      { code: "watch_polling" },
    );
    let last = modificationTimes(paths);
    poller = setInterval(() => {
      const now = modificationTimes(paths);
      if (now === last) return;
      last = now;
      changed();
    }, WATCH_POLL_MS);
  };
  try {
    for (const { directory, relevant } of targets) {
      const watcher = watch(directory, { persistent: true }, (_event, file) => {
        if (file === null || relevant(String(file))) changed();
      });
      watcher.on("error", (error) => poll(describeDriverError(error)));
      watchers.push(watcher);
    }
  } catch (error) {
    poll(describeDriverError(error));
  }
  return () => {
    stopWatchers();
    clearInterval(poller);
  };
}

/**
 * What the polling fallback compares: identity, size and modification time of
 * each path (a file's link followed), of the `..data` link's target beside it,
 * and of each entry of a watched directory.
 */
function modificationTimes(paths: string[]): string {
  const stamp = (path: string) => {
    const stats = statSync(path, { throwIfNoEntry: false });
    return stats ? `${path} ${stats.ino} ${stats.size} ${stats.mtimeMs}` : `${path} -`;
  };
  return paths.flatMap((path) => {
    const isDirectory = statSync(path, { throwIfNoEntry: false })?.isDirectory() === true;
    const directory = isDirectory ? path : dirname(path);
    let entries: string[] = [];
    try {
      if (isDirectory) entries = readdirSync(path).filter((name) => !name.startsWith(".")).sort();
    } catch { /* unreadable now: its stamp says so, and the sync will name the problem */ }
    return [path, join(directory, "..data"), ...entries.map((name) => join(path, name))].map(stamp);
  }).join("\n");
}

/**
 * `log`, but a warning printed by the previous sync is not printed again: a
 * watcher re-reading the same file must not repeat its warnings at every
 * interval. `nextRun` marks where one sync ends.
 */
function withoutRepeatedWarnings(log: Logger): Logger & { nextRun(): void } {
  let previous = new Set<string>();
  let current = new Set<string>();
  return {
    ...log,
    warn: (msg, fields) => {
      current.add(msg);
      if (!previous.has(msg)) log.warn(msg, fields);
    },
    nextRun: () => {
      previous = current;
      current = new Set();
    },
  };
}

/** `14:02` for today, `2026-11-26 14:02` before, in UTC as the JSON logs' times. */
function clockTime(date: Date): string {
  const iso = date.toISOString();
  const today = new Date().toISOString().slice(0, 10);
  return iso.slice(0, 10) === today ? iso.slice(11, 16) : `${iso.slice(0, 10)} ${iso.slice(11, 16)}`;
}

/**
 * Says which database a run opens and where its URL came from
 * (`database: sqlite /abs/x.db (from config ../config.toml)`), never a
 * password: a run from the wrong directory must not silently fill a second
 * file. Warns when the config file given with -c has no `[database] url`.
 * Called once per run; a loop that re-syncs calls it once, not per sync.
 */
function announceDatabase(database: DatabaseUrlChoice, store: Store, log: Logger): void {
  if (database.configWithoutUrl !== undefined) {
    log.warn(
      `config file ${database.configWithoutUrl} has no [database] url; using Barycenter's default, ` +
        `${DEFAULT_DATABASE_URL} (in the working directory)`,
      { code: "config_without_database_url" },
    );
  }
  const [backend, target] = store instanceof SqliteStore
    ? ["sqlite", store.target === ":memory:" ? "in memory" : resolvePath(store.target)]
    : ["postgres", (store as PostgresStore).target];
  log.note(`database: ${backend} ${target} (from ${database.source})`, {
    database: backend,
    target,
    source: database.source,
  });
}

/**
 * `hash-password`: reads one password from standard input and prints its
 * Argon2id hash in PHC form, for a users file's `password_hash`. On a
 * terminal it asks twice without echo; from a pipe it reads everything, one
 * trailing newline trimmed.
 */
async function hashPasswordCommand(
  input: typeof process.stdin,
  output: Output,
  log: Logger,
): Promise<number> {
  let password: string;
  try {
    if (input.isTTY) {
      const ask = hiddenPrompt(input);
      password = await ask("Password: ");
      if (await ask("Repeat:   ") !== password) {
        log.error("the two passwords differ; nothing was printed");
        return EXIT.badInput;
      }
    } else {
      // At most what a password_file may hold: a pipe that never ends is refused, not read until memory runs out.
      const chunks: Uint8Array[] = [];
      let length = 0;
      for await (const chunk of input) {
        chunks.push(chunk as Uint8Array);
        length += (chunk as Uint8Array).length;
        if (length > PASSWORD_FILE_MAX_BYTES) {
          log.error(`standard input holds more than ${BEYOND_ANY_PASSWORD}; nothing was printed`);
          return EXIT.badInput;
        }
      }
      password = withoutTrailingNewline(strictUtf8.decode(Buffer.concat(chunks)));
    }
  } catch (error) {
    if (error instanceof InputError) throw error;
    log.error("standard input is not UTF-8 text");
    return EXIT.badInput;
  }
  const check = v.safeParse(ResolvedPasswordSchema, password);
  if (!check.success) {
    log.error(`the password ${check.issues[0].message}; nothing was printed`);
    return EXIT.badInput;
  }
  output.stdout(await hashPassword(password));
  return EXIT.ok;
}

/**
 * From now on, SIGTERM (a pod being deleted) or SIGINT ends the process
 * within a moment with 128 + the signal's number, whatever the run is doing:
 * reading a file, connecting, waiting for a lock, hashing, writing, and after
 * `stop` (the run over) still writing its output, silently then;
 * except while a `whenIdle` function is set (a watcher between syncs), which
 * is called instead, for the run to end with status 0.
 * The store given to `abortFirst` is aborted first, and the line printed says
 * what became of the changes: never "rolling back" after a commit.
 */
function exitOnSignal(log: Logger): {
  abortFirst(store: Store | undefined): void;
  whenIdle(stop: (() => void) | undefined): void;
  stop(): void;
} {
  let store: Store | undefined;
  let idle: (() => void) | undefined;
  let stopping = false;
  let over = false;
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.on(signal, async () => {
      // The run is over and only its output is left to write (to a reader that may have stopped): end now. The
      // handler stays installed to the end, as removing it could drop a signal that Node.js had already caught.
      if (over) exitNow(signal === "SIGTERM" ? 143 : 130);
      if (stopping) return;
      stopping = true;
      if (idle) {
        // A watcher between syncs: nothing to roll back, so a clean stop and exit status 0.
        log.info(`received ${signal}: stopping; no sync was running`, { signal });
        idle();
        return;
      }
      try {
        const outcome: AbortOutcome = store ? await store.abort().catch(() => "unknown" as const) : "nothing begun";
        log.error(`received ${signal}: ${SIGNAL_OUTCOME[outcome]}`);
      } finally {
        exitNow(signal === "SIGTERM" ? 143 : 130);
      }
    });
  }
  return {
    abortFirst: (s) => (store = s),
    whenIdle: (stop) => (idle = stop),
    stop: () => (over = true),
  };
}

/** What the signal's line says, for each {@linkcode AbortOutcome}. */
const SIGNAL_OUTCOME: Record<AbortOutcome, string> = {
  "nothing begun": "stopping; nothing was changed",
  "rolled back": "rolling back; nothing was changed",
  committed: "stopping; the sync had already committed its changes",
  unknown: "stopping during the commit, which PostgreSQL did not confirm: the changes are either all in the " +
    "database or none of them; the next run completes them",
};

/**
 * Ends the process with `code` now. Node's process.exit first joins the
 * threads of libuv's pool, so it waits for an Argon2 computation running
 * there, which nothing can stop: a costly hash kept a stopped sync burning
 * CPU for minutes. Replacing the process image (execve) with a Node.js that
 * only exits ends those threads with the old image and keeps the process id,
 * so the parent (kubelet, a shell) sees `code`. Raising the signal again
 * would not do: a container's first process is not ended by a signal it does
 * not handle. Deno's exit does not wait for its threads.
 */
function exitNow(code: number): never {
  type Execve = (file: string, args: string[], env: Record<string, string>) => never;
  const execve = (process as { execve?: Execve }).execve;
  if (!("deno" in process.versions) && typeof execve === "function") {
    try {
      execve.call(process, process.execPath, [process.execPath, "--eval", `process.exit(${code})`], {});
    } catch { /* execve refused (a permission model, a worker): exit the ordinary way */ }
  }
  process.exit(code);
}

function reportFailure(error: unknown, log: Logger): number {
  const denied = permissionDenied(error);
  if (denied !== undefined || error instanceof RuntimeError) {
    log.error(denied ?? (error as Error).message);
    return EXIT.badInput;
  }
  if (error instanceof UsageError) {
    log.error(`${error.message}; see --help`);
    return EXIT.badInput;
  }
  if (error instanceof InputError) {
    log.error(error.message, error.problems.length > 0 ? { problems: error.problems } : undefined);
    return EXIT.badInput;
  }
  if (error instanceof DatabaseError) {
    const outcome = error.inTransaction
      ? "the transaction was rolled back, nothing was changed"
      : "nothing was changed";
    log.error(`${error.message}; ${outcome}`);
    return EXIT.database;
  }
  // A bug of ours: the stack helps a report, and holds code locations, not data. One frame a line: a text
  // log line never holds a line break.
  const [first, ...frames] = String((error as Error)?.stack ?? error).split("\n");
  log.error(`unexpected ${first}`, { stack: frames.map((frame) => frame.trim()) });
  return EXIT.unexpected;
}

/**
 * Deno's refusal of a permission (`NotCapable`, here or in an error's causes)
 * in one sentence naming the permission and the flag that grants it; else
 * undefined. Deno's own text comes with a stack trace and no word of the README.
 */
function permissionDenied(error: unknown): string | undefined {
  for (let e = error; e instanceof Error; e = e.cause) {
    if (e.name !== "NotCapable" && !/^Requires \w+ access/.test(e.message)) continue;
    const kind = /Requires (\w+) access/.exec(e.message)?.[1] ?? "a";
    const flag = /--allow-[a-z-]+/.exec(e.message)?.[0] ?? `--allow-${kind}`;
    const to = /access to ("[^"]*"|[^,]+?),/.exec(e.message)?.[1];
    return `Deno did not grant ${kind} access${to ? ` to ${to}` : ""}: run again with ${flag} ` +
      `(the README's "Deno" section lists the narrowest permissions)`;
  }
  return undefined;
}

/**
 * Sizes libuv's thread pool, on which the Argon2 binding runs, to
 * {@linkcode argon2Pool}. It must happen before the pool's first use (the
 * users file is the first read); an explicit UV_THREADPOOL_SIZE wins. Deno
 * has no libuv pool (and gates reading the variable), so only the number of
 * computations in flight is set there. Returns how many computations to
 * keep running at once, and why that many (the summary says).
 */
function sizeThreadPool(): Argon2Pool {
  if ("deno" in process.versions) return argon2Pool();
  const explicit = Number(process.env.UV_THREADPOOL_SIZE);
  const pool: Argon2Pool = explicit > 0 ? { threads: explicit, from: "UV_THREADPOOL_SIZE" } : argon2Pool();
  process.env.UV_THREADPOOL_SIZE = String(pool.threads);
  return pool;
}

const processOutput: Output = {
  stdout: lineWriter(1, () => process.stdout),
  stderr: lineWriter(2, () => process.stderr),
};

/**
 * Writes lines to `fd` with `writeSync`, not through `process.stdout`: creating that stream loads Node.js's streams,
 * and for a pipe (a pod's log) its networking too, more start-up than the rest of a run that prints two lines.
 * Never so that the thread waits on a reader, which would keep a signal from being handled: a pipe is written
 * through a non-blocking descriptor ({@linkcode nonBlockingWriter}). Where a write fails or would block, the rest
 * of the line and every later one go to the stream, which queues them, so that the order holds and such errors
 * are what they always were.
 */
export function lineWriter(fd: number, stream: () => { write(text: Uint8Array): unknown }): (line: string) => void {
  let direct: number | undefined;
  let decided = false;
  return (line) => {
    let bytes = Buffer.from(line + "\n");
    if (!decided) {
      decided = true;
      direct = nonBlockingWriter(fd);
    }
    if (direct !== undefined) {
      let written = 0;
      try {
        while (written < bytes.length) written += writeSync(direct, bytes, written);
        return;
      } catch {
        direct = undefined;
        bytes = bytes.subarray(written);
      }
    }
    stream().write(bytes);
  };
}

/**
 * Where `fd`'s lines can be written without waiting on a reader: `fd` itself for a file or a character device
 * (`/dev/null`; a terminal's stream waits as well); for a pipe, a non-blocking descriptor of the same pipe, of its
 * own (opened through `/proc/self/fd`, so that `fd`'s flags, which the parent shares, stay as they are). Undefined
 * for anything else (a socket), or where that open fails (no `/proc`, a Deno permission): the stream, then.
 */
function nonBlockingWriter(fd: number): number | undefined {
  try {
    const stats = fstatSync(fd);
    if (stats.isFile() || stats.isCharacterDevice()) return fd;
    if (stats.isFIFO()) return openSync(`/proc/self/fd/${fd}`, constants.O_WRONLY | constants.O_NONBLOCK);
  } catch { /* the stream */ }
  return undefined;
}

/**
 * Whether `fd` is a terminal, asked of Node.js's stream (see {@linkcode lineWriter} for its cost) only where it
 * could be one: a pipe, a file, a socket or `/dev/null` (a character device of major 1, memory) never is.
 */
function isTerminal(fd: 1 | 2): boolean {
  try {
    const stats = fstatSync(fd);
    if (!stats.isCharacterDevice() || ((stats.rdev >> 8) & 0xfff) === 1) return false;
  } catch { /* no such descriptor: the stream says what it says */ }
  return (fd === 1 ? process.stdout : process.stderr).isTTY === true;
}

/** Resolves after one turn of the event loop: what promise callbacks queue has run by then. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Milliseconds on a monotonic clock: `performance.now()`, without loading Node.js's perf_hooks (3 ms at start). */
function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
// #endregion

// #region Helpers
//
// Leaf functions the pipeline above calls: each stands alone, and none calls back into it.

// The JSON scanner: finds what JSON.parse does not say, without quoting the text.

/** Where a JSON text first goes wrong, and why, in words that never quote it. */
export function locateJsonError(text: string): { offset: number; reason: string } {
  return scanJson(text).error ?? { offset: text.length, reason: "no error found" };
}

/** Where a value stands in a JSON text: object keys and array indices from the root. */
export type JsonPath = (string | number)[];

/**
 * Scans JSON text without building values: the first syntax error (its
 * offset and a reason that never quotes the text), every key that appears
 * twice in one object, which JSON.parse would silently drop, and every number
 * that JSON.parse would not give back as written (see {@linkcode survivesJsonRoundTrip}),
 * with its place. It reads the whole text, whatever it holds: a check built on
 * it must not stop where the scan stops.
 *
 * Every run scans the whole users file, so the scan allocates nothing per value
 * of a well-formed file: the open arrays and objects are entries of a few
 * arrays, not objects, and a key is compared with the other keys of its object
 * where it stands in the text, made a string only when it holds an escape or
 * its object has many keys.
 */
export function scanJson(text: string): {
  error?: { offset: number; reason: string };
  duplicateKeys: { offset: number; key: string }[];
  inexactNumbers: { offset: number; path: JsonPath }[];
} {
  const duplicateKeys: { offset: number; key: string }[] = [];
  const inexactNumbers: { offset: number; path: JsonPath }[] = [];
  const result = (error?: { offset: number; reason: string }) => ({ error, duplicateKeys, inexactNumbers });
  let i = 0;
  const fail = (reason: string, at = i) => result({ offset: at, reason });
  const skipSpace = () => {
    for (let c = text.charCodeAt(i); c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09; c = text.charCodeAt(i)) i++;
  };
  // Sticky, so that it matches at i over the rest of the text: a number may be any length.
  const number = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  // The open arrays and objects, innermost last, as an explicit stack (deeply nested input cannot overflow it) of
  // `depth` entries: whether each is an object; an array's current index, or where an object's keys begin in the
  // key arrays; and the Set of an object's keys once it has more than a few. The arrays keep their length when
  // the stack shrinks, so that they are not allocated again for the next object.
  const isObject: boolean[] = [];
  const position: number[] = [];
  const keySets: (Set<string> | undefined)[] = [];
  let depth = 0;
  // The `keys` keys of the open objects, in order: where each stands in the text (inside its quotes), and its
  // value when it holds an escape (its text is then not its value).
  const keyFrom: number[] = [];
  const keyTo: number[] = [];
  const keyValue: (string | undefined)[] = [];
  let keys = 0;
  const keyOf = (k: number) => keyValue[k] ?? text.slice(keyFrom[k], keyTo[k]);
  const sameKey = (a: number, b: number) => {
    if (keyValue[a] !== undefined || keyValue[b] !== undefined) return keyOf(a) === keyOf(b);
    const length = keyTo[a] - keyFrom[a];
    if (length !== keyTo[b] - keyFrom[b]) return false;
    for (let c = 0; c < length; c++) {
      if (text.charCodeAt(keyFrom[a] + c) !== text.charCodeAt(keyFrom[b] + c)) return false;
    }
    return true;
  };
  // Compared one by one up to this many keys; an object with more gets a Set.
  const FEW_KEYS = 16;
  const path = (): JsonPath => {
    const place: JsonPath = new Array(depth);
    let keysEnd = keys;
    for (let d = depth - 1; d >= 0; d--) {
      if (!isObject[d]) {
        place[d] = position[d];
        continue;
      }
      place[d] = keyOf(keysEnd - 1); // its current key: the last one read
      keysEnd = position[d];
    }
    return place;
  };
  type State = "value" | "afterValue" | "key";
  let state: State = "value";
  while (true) {
    skipSpace();
    if (i >= text.length) {
      return depth === 0 && state === "afterValue" ? result() : fail("unexpected end of input");
    }
    const c = text[i];
    if (state === "key") {
      if (c !== '"') return fail("expected a property name in double quotes");
      const end = scanString(text, i);
      if (typeof end !== "number") return result(end);
      const k = keys++;
      keyFrom[k] = i + 1;
      keyTo[k] = end - 1;
      // scanString has just matched PLAIN_STRING_REST up to the end (its text is its value) or failed to (it holds
      // an escape): no second match needed.
      keyValue[k] = PLAIN_STRING_REST.lastIndex === end ? undefined : JSON.parse(text.slice(i, end)) as string;
      const top = depth - 1;
      const first = position[top];
      let twice = false;
      if (keySets[top] !== undefined) {
        twice = keySets[top].has(keyOf(k));
        keySets[top].add(keyOf(k));
      } else {
        for (let other = first; other < k && !twice; other++) twice = sameKey(other, k);
        if (k - first + 1 > FEW_KEYS) {
          const keys = new Set<string>();
          for (let other = first; other <= k; other++) keys.add(keyOf(other));
          keySets[top] = keys;
        }
      }
      if (twice) duplicateKeys.push({ offset: i, key: keyOf(k) });
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
        i++;
        skipSpace();
        if (text[i] === (c === "{" ? "}" : "]")) {
          i++;
          state = "afterValue";
        } else {
          isObject[depth] = c === "{";
          position[depth] = c === "{" ? keys : 0;
          keySets[depth] = undefined;
          depth++;
          state = c === "{" ? "key" : "value";
        }
        continue;
      }
      if (c === '"') {
        const end = scanString(text, i);
        if (typeof end !== "number") return result(end);
        i = end;
      } else if (c === "-" || (c >= "0" && c <= "9")) {
        number.lastIndex = i;
        const match = number.exec(text);
        if (!match) return fail("invalid number");
        if (!survivesJsonRoundTrip(match[0])) inexactNumbers.push({ offset: i, path: path() });
        i += match[0].length;
      } else if (text.startsWith("true", i)) i += 4;
      else if (text.startsWith("false", i)) i += 5;
      else if (text.startsWith("null", i)) i += 4;
      else return fail("unexpected character where a value should be");
      state = "afterValue";
      continue;
    }
    // state === "afterValue"
    const top = depth - 1;
    if (top < 0) return fail("unexpected data after the end of the JSON value");
    if (c === ",") {
      i++;
      if (!isObject[top]) position[top]++;
      state = isObject[top] ? "key" : "value";
      skipSpace();
      if (text[i] === "]" || text[i] === "}") return fail("trailing comma");
    } else if ((!isObject[top] && c === "]") || (isObject[top] && c === "}")) {
      // An object's keys are forgotten with it.
      if (isObject[top]) keys = position[top];
      keySets[top] = undefined;
      depth--;
      i++;
    } else {
      return fail(!isObject[top] ? "expected ',' or ']'" : "expected ',' or '}'");
    }
  }
}

/**
 * Whether a JSON number, as written, means exactly the number that
 * JSON.stringify gives back after JSON.parse: `1.0` and `1e3` do (`1`,
 * `1000`); `1e999` (null), `-0` (0) and `12345678901234567890`
 * (12345678901234567000, past a double's 17 significant digits) do not.
 * The two texts are compared as exact decimals, so only the spelling may differ.
 */
export function survivesJsonRoundTrip(source: string): boolean {
  const back = JSON.stringify(Number(source));
  return back === source || exactDecimal(back) === exactDecimal(source);
}

/** A JSON number's exact value as `digits e exponent`, without redundant zeros; `-0` stays apart from `0`. */
function exactDecimal(text: string): string | undefined {
  const match = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!match) return undefined; // "null": the number had no JSON value
  const [, sign, whole, fraction = "", exponent = "0"] = match;
  const digits = (whole + fraction).replace(/^0+/, "");
  if (digits === "") return `${sign}0`;
  let end = digits.length; // trailing zeros counted by hand: /0+$/ backtracks quadratically on long runs of zeros
  while (digits[end - 1] === "0") end--;
  return `${sign}${digits.slice(0, end)}e${Number(exponent) - fraction.length + digits.length - end}`;
}

/**
 * The rest of a string, its closing quote included, when it holds no escape and no control character: the
 * common case, matched by the regular expression engine instead of a loop over every character in cold code.
 */
// deno-lint-ignore no-control-regex -- control characters end the plain case.
const PLAIN_STRING_REST = /[^"\\\u0000-\u001f]*"/y;

function scanString(text: string, start: number): number | { offset: number; reason: string } {
  PLAIN_STRING_REST.lastIndex = start + 1;
  if (PLAIN_STRING_REST.test(text)) return PLAIN_STRING_REST.lastIndex;
  // An escape, a control character or no end: character by character, for its place and reason.
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
function lineAndColumn(text: string, offset: number): { line: number; column: number } {
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

/** {@linkcode lineAndColumn} for many offsets of one text: its line starts are found once. */
function lineLocator(text: string): (offset: number) => { line: number; column: number } {
  const starts = [0];
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) starts.push(i + 1);
  return (offset) => {
    let [low, high] = [0, starts.length - 1];
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      if (starts[middle] <= offset) low = middle;
      else high = middle - 1;
    }
    return { line: low + 1, column: offset - starts[low] + 1 };
  };
}

// The hidden prompt of hash-password.

/**
 * Asks for lines on a terminal without echoing them. Keys typed ahead of a
 * prompt are kept for it. Ctrl-C ends the process with 130. Bytes that are not
 * UTF-8 reject the prompt.
 */
function hiddenPrompt(input: typeof process.stdin): (prompt: string) => Promise<string> {
  let pending = "";
  // One streaming decoder for every read of every prompt: a terminal may deliver one character's bytes in
  // several reads, and decoding each read alone turns the pieces into U+FFFD, the hash of another password.
  const decoder = new TextDecoder("utf-8", { fatal: true });
  return (prompt) => {
    // Raw mode first: a key typed the moment the prompt shows must not be echoed.
    input.setRawMode(true);
    process.stderr.write(prompt);
    return new Promise((resolve, reject) => {
      let typed = "";
      const take = (text: string): boolean => {
        for (let i = 0; i < text.length; i++) {
          const char = text[i];
          if (char === "\u0003") {
            input.setRawMode(false);
            process.stderr.write("\n");
            process.exit(130);
          } else if (char === "\r" || char === "\n" || char === "\u0004") {
            pending = text.slice(i + 1);
            input.setRawMode(false);
            input.pause();
            input.off("data", onData);
            process.stderr.write("\n");
            resolve(typed);
            return true;
          } else if (char === "\u007f" || char === "\b") {
            typed = [...typed].slice(0, -1).join("");
          } else {
            typed += char;
          }
        }
        return false;
      };
      const onData = (data: Uint8Array) => {
        let text: string;
        try {
          text = decoder.decode(data, { stream: true });
        } catch (error) {
          input.setRawMode(false);
          input.pause();
          input.off("data", onData);
          process.stderr.write("\n");
          reject(error);
          return;
        }
        take(text);
      };
      const leftover = pending;
      pending = "";
      if (take(leftover)) return;
      input.on("data", onData);
      input.resume();
    });
  };
}

// Cores and memory from the cgroup: how much Argon2 may run at once.

/** Where the Argon2 thread count came from, as `--log-format json`'s summary reports it. */
export type Argon2ThreadsSource = "UV_THREADPOOL_SIZE" | "cpu_quota" | "memory_limit" | "cores";

/** How many Argon2 computations run at once, and why that many. */
export interface Argon2Pool {
  threads: number;
  from: Argon2ThreadsSource;
  /** For a cgroup limit: its value and the file that set it, e.g. `0.2 CPU (/sys/fs/cgroup/cpu/pod/cpu.cfs_quota_us)`. */
  limit?: string;
}

/** Memory one Argon2 computation holds: m=19456 KiB, plus a little. */
const ARGON2_MEMORY_BYTES = 20 * 1024 * 1024;

/**
 * How many Argon2 computations may run at once: one per usable core (the
 * machine's, capped by a cgroup CPU quota, a Kubernetes `cpu` limit, rounded
 * up: 1 under the chart's `cpu: 200m`), but within half of a cgroup memory
 * limit (a pod with a memory limit and no CPU limit, on a large node, must not
 * run 32 × 19 MiB at once). The limits are those of the process's own cgroup
 * and its ancestors ({@linkcode cgroupLimits}).
 */
export function argon2Pool(
  limits: CgroupLimits = cgroupLimits(readText("/proc/self/cgroup"), readText("/proc/self/mountinfo"), readText),
): Argon2Pool {
  let cores = 4;
  try {
    cores = availableParallelism();
  } catch { /* a runtime without it keeps libuv's default */ }
  const candidates: Argon2Pool[] = [{ threads: cores, from: "cores" }];
  if (limits.cpu !== undefined) {
    candidates.push({
      threads: Math.max(1, Math.ceil(limits.cpu.cores)),
      from: "cpu_quota",
      limit: `${limits.cpu.cores} CPU (${limits.cpu.file})`,
    });
  }
  if (limits.memory !== undefined) {
    candidates.push({
      threads: Math.max(1, Math.floor(limits.memory.bytes / 2 / ARGON2_MEMORY_BYTES)),
      from: "memory_limit",
      limit: `${(limits.memory.bytes / 2 ** 20).toFixed(0)} MiB (${limits.memory.file})`,
    });
  }
  // The smallest wins; on a tie, the cgroup limit is named, as it is what holds wherever the pod lands.
  return candidates.reduce((least, c) => (c.threads <= least.threads ? c : least));
}

/** A cgroup's CPU quota and memory limit: the smallest along its path, each with the file that set it. */
export interface CgroupLimits {
  cpu?: { cores: number; file: string };
  memory?: { bytes: number; file: string };
}

/**
 * The limits that hold for the process: for each of its cgroup directories
 * ({@linkcode cgroupDirectories}), its own group's and every ancestor's up to
 * the mount's root, since a limit on an ancestor applies to all below it; the
 * smallest wins. cgroup v1's `cpu.cfs_quota_us` over `cpu.cfs_period_us` (-1:
 * none) and `memory.limit_in_bytes` (a huge number: none), v2's `cpu.max`
 * (`max 100000`: none) and `memory.max`. Pure: `read` gives a file's text, or
 * undefined where there is none.
 */
export function cgroupLimits(
  cgroup: string | undefined,
  mountinfo: string | undefined,
  read: (path: string) => string | undefined,
): CgroupLimits {
  const limits: CgroupLimits = {};
  const cpu = (cores: number, file: string) => {
    if (cores > 0 && Number.isFinite(cores) && !(limits.cpu && limits.cpu.cores <= cores)) limits.cpu = { cores, file };
  };
  const memory = (bytes: number, file: string) => {
    // cgroup v1 reports "no limit" as a huge number; anything past 1 TiB is no limit here.
    if (bytes > 0 && bytes < 2 ** 40 && !(limits.memory && limits.memory.bytes <= bytes)) {
      limits.memory = { bytes, file };
    }
  };
  for (const { version, controller, dirs } of cgroupDirectories(cgroup ?? "", mountinfo ?? "")) {
    for (const dir of dirs) {
      if (version === 2) {
        const [quota, period] = (read(`${dir}/cpu.max`) ?? "max").trim().split(/\s+/);
        if (quota !== "max") cpu(Number(quota) / Number(period), `${dir}/cpu.max`);
        const max = read(`${dir}/memory.max`)?.trim();
        if (max !== undefined && max !== "max") memory(Number(max), `${dir}/memory.max`);
      } else if (controller === "cpu") {
        const quota = Number(read(`${dir}/cpu.cfs_quota_us`));
        const period = Number(read(`${dir}/cpu.cfs_period_us`));
        if (quota > 0 && period > 0) cpu(quota / period, `${dir}/cpu.cfs_quota_us`);
      } else {
        const bytes = read(`${dir}/memory.limit_in_bytes`);
        if (bytes !== undefined) memory(Number(bytes), `${dir}/memory.limit_in_bytes`);
      }
    }
  }
  return limits;
}

/**
 * Where the process's own cgroups are, from the texts of `/proc/self/cgroup`
 * and `/proc/self/mountinfo`: for cgroup v1's `cpu` and `memory` hierarchies
 * and for the v2 one, the directories of the own group and of each ancestor
 * up to the mount's root, own group first. A mount's root may be a group of
 * its own (a container without a cgroup namespace mounts `/docker/abc` and
 * is in `/docker/abc`); a group outside every mount's root cannot be read and
 * is left out, as is a hierarchy not mounted.
 */
export function cgroupDirectories(
  cgroup: string,
  mountinfo: string,
): { version: 1 | 2; controller: "cpu" | "memory" | "all"; dirs: string[] }[] {
  const mounts = mountinfo.split("\n").flatMap((line) => {
    // id parent major:minor root mount-point options [optional fields...] - fstype source super-options
    const [left, right] = line.split(" - ");
    const fields = left?.split(" ") ?? [];
    const [fstype, , superOptions] = right?.split(" ") ?? [];
    if (fields.length < 5 || (fstype !== "cgroup" && fstype !== "cgroup2")) return [];
    return [{ fstype, root: unescapeMountPath(fields[3]), point: unescapeMountPath(fields[4]), options: superOptions }];
  });
  const found: ReturnType<typeof cgroupDirectories> = [];
  for (const line of cgroup.split("\n")) {
    // hierarchy-id:controller-list:path; v2 is 0::path; the path itself may hold a colon.
    const match = /^(\d+):([^:]*):(\/.*)$/.exec(line.trim());
    if (match === null) continue;
    const [, id, list, group] = match;
    const controllers = list.split(",");
    const wanted = id === "0" && list === ""
      ? ["all"] as const
      : (["cpu", "memory"] as const).filter((c) => controllers.includes(c));
    for (const controller of wanted) {
      const mount = mounts.find((m) =>
        (controller === "all"
          ? m.fstype === "cgroup2"
          : m.fstype === "cgroup" && (m.options ?? "").split(",").includes(controller)) && isWithin(group, m.root)
      );
      if (mount === undefined) continue;
      const below = group.slice(mount.root === "/" ? 0 : mount.root.length).split("/").filter((part) => part !== "");
      const dirs = below.map((_, i) => join(mount.point, ...below.slice(0, below.length - i)));
      found.push({ version: controller === "all" ? 2 : 1, controller, dirs: [...dirs, mount.point] });
    }
  }
  return found;
}

/** Whether cgroup path `group` is `root` or below it. */
function isWithin(group: string, root: string): boolean {
  return root === "/" || group === root || group.startsWith(`${root}/`);
}

/** A path of `/proc/self/mountinfo`, where a space, tab, newline or backslash is an octal escape (`\040`). */
function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** A file's text, or undefined when it cannot be read (no such cgroup file, no permission). */
function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

// Database URLs and driver errors in messages: never a password.

/**
 * The password of a database URL, and the pieces a malformed URL could split
 * it into, for redaction. Pieces shorter than 4 characters are left: they
 * would blank out ordinary words.
 */
function urlSecrets(url: string): string[] {
  const rest = url.replace(/^[a-z]+:\/*/i, "");
  const at = rest.lastIndexOf("@");
  if (at < 0) return [];
  const colon = rest.indexOf(":");
  if (colon < 0 || colon > at) return [];
  const password = rest.slice(colon + 1, at);
  let decoded = password;
  try {
    decoded = decodeURIComponent(password);
  } catch { /* kept as written */ }
  // The driver splits hosts at "," and ports at ":" as well.
  const pieces = [password, decoded, ...password.split(/[/?#@,:]/)];
  return [...new Set(pieces)].filter((piece) => piece.length >= 4).sort((a, b) => b.length - a.length);
}

/** Levenshtein distance with adjacent transpositions counted as one edit (`flie` is one edit from `file`). */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/** A driver's error in one line: its message and code, which name no parameter values. */
function describeDriverError(error: unknown): string {
  if (isPostgresError(error)) return `${error.message} (SQLSTATE ${error.code})`;
  const { code, message } = error as { code?: string; message?: string };
  return [message, code && !String(message).includes(code) ? `(${code})` : ""].filter(Boolean).join(" ");
}

// #endregion

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
