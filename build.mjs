#!/usr/bin/env node
// deno-lint-ignore-file no-console -- a build script reports to the terminal; only sync.ts must print through its logger.
/**
 * `npm run build`: bundles sync.ts into dist/sync.mjs (ESM, minified, Node.js
 * 22 target, source map beside it) and places the @node-rs/argon2 native addon
 * of every target platform in dist/, so that dist/ alone runs with a bare
 * `node`: no node_modules, no network.
 *
 *   node build.mjs                          # the platform of this machine
 *   node build.mjs --target linux-arm64     # another one (also: linux-amd64, linux-x64)
 *   node build.mjs --target linux-x64,linux-arm64
 *   node build.mjs --outdir /tmp/out        # somewhere other than dist/ (users.schema.json left alone)
 *   node build.mjs --schema /tmp/s.json     # users.schema.json somewhere other than beside this file
 *
 * Without --outdir (or with --schema) it also writes users.schema.json, the JSON Schema of a users file, from the
 * valibot schema in sync.ts, for editors; it is committed, and a test checks
 * that it is current.
 *
 * An addon whose package npm did not install (another CPU's) is fetched with
 * `npm pack` at the version @node-rs/argon2 pins, from the configured registry.
 */

import { execFileSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { toJsonSchema } from "@valibot/to-json-schema";
import * as esbuild from "esbuild";
import { UserSchema, UsersFileSchema } from "./sync.ts";

const root = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

/** Words an export of a built-in module cannot be named by in `export const NAME`. */
const RESERVED_WORDS = new Set(["default", "delete", "new", "class", "function", "import", "export", "in", "of"]);

/** Bundle size budget: an init container image should stay small. */
const BUNDLE_BUDGET_BYTES = 150 * 1000;

/** The platforms a bundle can carry an addon for: glibc Linux, as in the distroless image. */
/** @type {Record<string, string>} */
const TARGETS = { "linux-x64": "linux-x64-gnu", "linux-arm64": "linux-arm64-gnu" };
/** @type {Record<string, string>} */
const ALIASES = { "linux-amd64": "linux-x64", "linux-aarch64": "linux-arm64" };

const { values } = parseArgs({
  options: { target: { type: "string" }, outdir: { type: "string" }, schema: { type: "string" } },
});
const dist = values.outdir ?? join(root, "dist");
const targets = (values.target ?? `${process.platform}-${process.arch}`)
  .split(",")
  .map((t) => ALIASES[t.trim()] ?? t.trim());
for (const target of targets) {
  if (!(target in TARGETS)) {
    console.error(`build: unsupported target "${target}"; supported: ${Object.keys(TARGETS).join(", ")}`);
    process.exit(2);
  }
}

// A build into another folder (a test's, an image's) leaves the committed schema alone unless --schema asks.
const schemaPath = values.schema ?? (values.outdir === undefined ? join(root, "users.schema.json") : undefined);
if (schemaPath) writeFileSync(schemaPath, JSON.stringify(usersJsonSchema(), null, 2) + "\n");

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist);

// The bundle loads the addon that matches the machine it runs on, from beside itself.
const argon2Loader = `
import { createRequire } from "node:module";
const load = createRequire(import.meta.url);
const name = \`argon2.\${process.platform}-\${process.arch}-gnu.node\`;
let binding;
try {
  binding = load("./" + name);
} catch (error) {
  // Under Deno without --allow-ffi (or --allow-read) the addon is there but may not be loaded: the tool says which flag.
  if (error?.name === "NotCapable") throw error;
  throw new Error(\`this bundle has no Argon2 addon for \${process.platform}-\${process.arch} (\${name}); \` +
    "rebuild it with: node build.mjs --target " + process.platform + "-" + process.arch, { cause: error });
}
export const hash = binding.hash;
export const hashRaw = binding.hashRaw;
export const verify = binding.verify;
`;

const result = await esbuild.build({
  entryPoints: [join(root, "sync.ts")],
  outfile: join(dist, "sync.mjs"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node22",
  minify: true,
  sourcemap: "linked",
  legalComments: "linked",
  metafile: true,
  // Bundled CommonJS code calls require(); ESM has none, so give it one. (The entry's
  // `#!/usr/bin/env node` line is kept by esbuild and stays first.)
  banner: {
    js: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);",
  },
  plugins: [{
    // The driver is imported when a run opens PostgreSQL (deps.ts), and esbuild keeps such a module in the bundle
    // behind a lazy initialiser; but it hoists an ES module's imports of node:net, node:tls and the like to the top
    // of the bundle, where they load at every start. The driver's CommonJS build requires them inside that
    // initialiser instead.
    name: "postgres-driver-loaded-lazily",
    setup(build) {
      build.onResolve({ filter: /^postgres$/ }, () => ({ path: require.resolve("postgres") }));
    },
  }, {
    // An ES module import of a built-in module reads every export of it at start, and some of those are getters that
    // load more (node:fs's ReadStream loads the streams, node:util's its types and diff): the bundle require()s each
    // built-in and reads only the exports it imports.
    name: "builtins-required",
    setup(build) {
      build.onResolve(
        { filter: /^node:/ },
        (args) =>
          args.namespace === "builtin"
            ? { path: args.path, external: true }
            : { path: args.path, namespace: "builtin" },
      );
      // Each export a pure read of the required module, so that esbuild drops those never imported (the others are
      // read once, at start): a CommonJS module would be wrapped in esbuild's interop, which reads every property's
      // descriptor at start, and node:util's lazy ones load its diff and colours (and with them stderr) for nothing.
      build.onLoad({ filter: /.*/, namespace: "builtin" }, (args) => ({
        contents: [
          `const builtin = require(${JSON.stringify(args.path)});`,
          "export default builtin;",
          ...Object.keys(require(args.path))
            .filter((name) => /^[A-Za-z_$][\w$]*$/.test(name) && !RESERVED_WORDS.has(name))
            .map((name) => `export const ${name} = /* @__PURE__ */ (() => builtin.${name})();`),
        ].join("\n"),
        loader: "js",
      }));
    },
  }, {
    name: "argon2-addon-beside-bundle",
    setup(build) {
      build.onResolve({ filter: /^@node-rs\/argon2$/ }, () => ({ path: "argon2", namespace: "argon2-loader" }));
      build.onLoad({ filter: /.*/, namespace: "argon2-loader" }, () => ({ contents: argon2Loader, loader: "js" }));
    },
  }],
  logLevel: "warning",
});

for (const target of targets) copyFileSync(addonFor(TARGETS[target]), join(dist, `argon2.${TARGETS[target]}.node`));
// Marks dist/ as ESM for tools that look at the nearest package.json.
writeFileSync(join(dist, "package.json"), JSON.stringify({ type: "module", private: true }) + "\n");

let total = 0;
for (const file of readdirSync(dist).sort()) {
  const size = statSync(join(dist, file)).size;
  total += size;
  console.log(`${file.padEnd(32)} ${(size / 1000).toFixed(1).padStart(8)} kB`);
}
// The folder as given: dist/ by default, else --outdir's.
const shown = values.outdir ?? relative(process.cwd(), dist) ?? "dist";
console.log(`${`total of ${shown.replace(/\/*$/, "/")}`.padEnd(32)} ${(total / 1000).toFixed(1).padStart(8)} kB`);
if (schemaPath) {
  console.log(
    `${relative(process.cwd(), schemaPath).padEnd(32)} ${(statSync(schemaPath).size / 1000).toFixed(1).padStart(8)} kB`,
  );
}
if (result.warnings.length > 0) process.exitCode = 1;
const bundleSize = statSync(join(dist, "sync.mjs")).size;
if (bundleSize > BUNDLE_BUDGET_BYTES) {
  console.error(`build: ${join(dist, "sync.mjs")} is ${bundleSize} bytes, over the budget of ${BUNDLE_BUDGET_BYTES}`);
  process.exitCode = 1;
}

/**
 * The users file's JSON Schema: valibot's own conversion of the schema in
 * sync.ts, which states each rule once. Two conventions complete it. A `check`
 * is code the converter cannot read: each says what it enforces in JSON
 * Schema's words in a `metadata` action beside it, or in the field's
 * description. And a JSON Schema holds one `pattern`: a field's further regex
 * rules join `allOf`. Patterns are Unicode-aware (ajv and editors compile them
 * with the `u` flag), so a regex may carry that flag and no other.
 */
function usersJsonSchema() {
  const schema = toJsonSchema(UsersFileSchema, {
    target: "draft-2020-12",
    // The properties' plain-object guard (a `custom` schema) comes before the `record` that says their shape.
    typeMode: "output",
    definitions: { User: UserSchema },
    overrideAction({ valibotAction: action, jsonSchema }) {
      if (action.type === "check") return jsonSchema;
      const regex = action.type === "regex" && "requirement" in action ? action.requirement : undefined;
      if (regex instanceof RegExp && /^u?$/.test(regex.flags)) {
        if (jsonSchema.pattern !== regex.source) {
          jsonSchema.allOf = [...(jsonSchema.allOf ?? []), { pattern: regex.source }];
        }
        return jsonSchema;
      }
      return undefined;
    },
  });
  return { $schema: "https://json-schema.org/draft/2020-12/schema", ...schema };
}

/**
 * Path of the addon for a platform: from node_modules, or fetched with `npm pack`.
 * @param {string} platform
 * @returns {string}
 */
function addonFor(platform) {
  const pkg = `@node-rs/argon2-${platform}`;
  const file = `argon2.${platform}.node`;
  try {
    return join(dirname(require.resolve(`${pkg}/package.json`)), file);
  } catch {
    const version = require("@node-rs/argon2/package.json").optionalDependencies[pkg];
    const dir = mkdtempSync(join(tmpdir(), "argon2-addon-"));
    console.log(`fetching ${pkg}@${version} (not installed for this machine's CPU)`);
    const tarball = execFileSync("npm", ["pack", `${pkg}@${version}`, "--silent", "--pack-destination", dir], {
      encoding: "utf8",
    }).trim().split("\n").at(-1);
    if (!tarball) throw new Error(`npm pack ${pkg}@${version} named no tarball`);
    execFileSync("tar", ["-xzf", join(dir, tarball), "-C", dir]);
    return join(dir, "package", file);
  }
}
