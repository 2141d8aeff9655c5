/**
 * The README is the front door: what it shows of the tool's interface must be
 * what the tool does.
 *
 * @module
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { runSync } from "./support/helpers.ts";

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");

test("the README's usage block is exactly what --help prints", async () => {
  const usage = /## Usage\n[^]*?```text\n([^]*?)```/.exec(readme);
  assert.ok(usage, "the README has no ```text block under ## Usage");
  const help = await runSync(["--help"]);
  assert.equal(help.code, 0);
  assert.equal(usage[1], help.stdout);
});
