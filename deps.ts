/**
 * The one place that imports third-party packages. `sync.ts` imports only
 * from here and from the runtime's own `node:` modules, so the dependency
 * surface of the tool can be read in one screen.
 *
 * @module
 */

export { hash as argon2Hash, verify as argon2Verify } from "@node-rs/argon2";
export { default as postgres } from "postgres";
export * as v from "valibot";
export { parse as parseToml } from "smol-toml";
