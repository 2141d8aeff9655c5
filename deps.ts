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

export { hash as argon2Hash, hashRaw as argon2HashRaw, verify as argon2Verify } from "@node-rs/argon2";
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
