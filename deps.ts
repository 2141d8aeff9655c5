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
  pipe,
  record,
  regex,
  safeParse,
  strictObject,
  string,
  union,
  unknown,
} from "valibot";

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
export { default as postgres } from "postgres";
export { parse as parseToml } from "smol-toml";
export type { BaseIssue } from "valibot";

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
