/**
 * The one place that imports third-party packages. `sync.ts` imports only
 * from here and from the runtime's own `node:` modules, so the dependency
 * surface of the tool can be read in one screen.
 *
 * @module
 */

import {
  array,
  boolean,
  check,
  custom,
  description,
  literal,
  maxLength,
  metadata,
  minLength,
  nullable,
  optional,
  picklist,
  pipe as valibotPipe,
  record,
  regex,
  safeParse,
  strictObject,
  string,
  union,
  unknown,
} from "valibot";
import type postgres from "postgres";

type Argon2 = typeof import("@node-rs/argon2");
let argon2: Promise<Argon2> | undefined;

/**
 * Loads the Argon2 addon. It is loaded on first use, not on import: under Deno
 * without `--allow-ffi` or `--allow-env` its loader throws, and a static
 * import would end the run with a stack trace before the tool could say which
 * permission is missing. The tool calls this at the start of a run that hashes.
 */
export function loadArgon2(): Promise<Argon2> {
  return argon2 ??= import("@node-rs/argon2");
}

/** `@node-rs/argon2`'s `hash`, loading the addon on first use. */
export function argon2Hash(...args: Parameters<Argon2["hash"]>): ReturnType<Argon2["hash"]> {
  return loadArgon2().then((argon2) => argon2.hash(...args));
}
/** `@node-rs/argon2`'s `hashRaw`, loading the addon on first use. */
export function argon2HashRaw(...args: Parameters<Argon2["hashRaw"]>): ReturnType<Argon2["hashRaw"]> {
  return loadArgon2().then((argon2) => argon2.hashRaw(...args));
}
/** `@node-rs/argon2`'s `verify`, loading the addon on first use. */
export function argon2Verify(...args: Parameters<Argon2["verify"]>): ReturnType<Argon2["verify"]> {
  return loadArgon2().then((argon2) => argon2.verify(...args));
}

type Postgres = typeof postgres;
let postgresDriver: Promise<Postgres> | undefined;
let loadedPostgres: Postgres | undefined;

/**
 * Loads the PostgreSQL driver, when a run opens PostgreSQL: not at start, since
 * it brings in `node:net`, `node:tls` and `node:stream`, which a run on
 * SQLite, `--validate`, `--help` or `hash-password` never uses (measured: 8 %
 * of the bundle's start-up CPU).
 */
export function loadPostgres(): Promise<Postgres> {
  return postgresDriver ??= import("postgres").then((module) => loadedPostgres = module.default);
}

/** Whether an error is the PostgreSQL server's: never before the driver is loaded, as no other code makes one. */
export function isPostgresError(error: unknown): error is postgres.PostgresError {
  return loadedPostgres !== undefined && error instanceof loadedPostgres.PostgresError;
}

/** The PostgreSQL driver's types (its value: {@linkcode loadPostgres}). */
export type { postgres };

/** Parses TOML (Barycenter's config.toml), loading the parser on first use: only `--config` needs it. */
export async function parseToml(text: string): Promise<Record<string, unknown>> {
  const { parse } = await import("smol-toml");
  return parse(text);
}
export type { BaseIssue } from "valibot";

/** A dataset as valibot's `~run` methods pass it along a pipe. */
type PipeDataset = { typed: boolean; value: unknown; issues?: unknown[] };
/** valibot's run configuration, as far as a pipe reads it. */
type PipeConfig = { abortEarly?: boolean; abortPipeEarly?: boolean };
/** A schema, action or metadata item of a pipe. */
type PipeItem = { kind: string; "~run"(dataset: PipeDataset, config: PipeConfig): PipeDataset };

/**
 * valibot's `pipe`, whose schema runs its items with an index loop instead of
 * `for...of`. Each field of each user goes through a pipe once per run, before
 * V8 has optimised anything, and there every step of an array iterator is an
 * object: at 1,000 users, 870 KiB of a no-change run's 8 MiB of allocations.
 * The schema is valibot's own, with the same `pipe` items (so JSON Schema is
 * made from it alike), and its `~run` follows valibot's: metadata is skipped;
 * once there is an issue no schema or transformation runs, nor anything else
 * with `abortEarly` or `abortPipeEarly`.
 */
const pipe = ((...items: PipeItem[]) => {
  const schema = (valibotPipe as unknown as (...items: PipeItem[]) => PipeItem)(...items);
  schema["~run"] = (dataset, config) => {
    for (let i = 0; i < items.length; i++) {
      const item = items[i];
      if (item.kind === "metadata") continue;
      if (dataset.issues && (item.kind === "schema" || item.kind === "transformation")) {
        dataset.typed = false;
        break;
      }
      if (!dataset.issues || (!config.abortEarly && !config.abortPipeEarly)) dataset = item["~run"](dataset, config);
    }
    return dataset;
  };
  return schema;
}) as unknown as typeof valibotPipe;

/**
 * The valibot functions the schema uses, under valibot's customary `v.`
 * prefix. Listed one by one because a namespace re-export would pull all of
 * valibot (85 kB minified) into the bundle.
 */
export const v = {
  array,
  boolean,
  check,
  custom,
  description,
  literal,
  maxLength,
  metadata,
  minLength,
  nullable,
  optional,
  picklist,
  pipe,
  record,
  regex,
  safeParse,
  strictObject,
  string,
  union,
  unknown,
};
