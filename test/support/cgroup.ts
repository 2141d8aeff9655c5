/**
 * A cgroup limited as the chart limits the pod (`cpu: 200m`, `memory: 256Mi`),
 * for the test and the bench case that run the tool under those limits. The
 * group is made below the process's own groups (read as the tool reads them),
 * so nothing outside them is touched, and removed afterwards.
 *
 * @module
 */

import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cgroupDirectories } from "../../sync.ts";

/** The limits to set: a CPU quota in cores and a memory limit in bytes. */
export interface GroupLimits {
  cpu: number;
  memoryBytes: number;
}

/** The chart's limits: `cpu: 200m`, `memory: 256Mi`. */
export const CHART_LIMITS: GroupLimits = { cpu: 0.2, memoryBytes: 256 * 2 ** 20 };

/** A limited group: the command that runs a program inside it for its whole life, and its removal. */
export interface LimitedGroup {
  /** The group's directories, one per hierarchy (v1: cpu and memory; v2: one). */
  dirs: string[];
  /** `sh -c` arguments that join the group, then exec `command` with `args`: the whole process is inside. */
  wrap(command: string, args: string[]): [string, string[]];
  /** Removes the group's directories (its processes must have ended). */
  remove(): void;
}

const PERIOD_US = 100_000;

/**
 * Makes a group named `name` with `limits` below the process's own cgroups:
 * cgroup v1's cpu and memory hierarchies where both are mounted (also on a
 * hybrid machine), else cgroup v2's. Returns why not, in one sentence, where
 * none can be made (not root, read-only, controllers not delegated).
 */
export function makeLimitedGroup(name: string, limits: GroupLimits = CHART_LIMITS): LimitedGroup | string {
  let places;
  try {
    places = cgroupDirectories(readFileSync("/proc/self/cgroup", "utf8"), readFileSync("/proc/self/mountinfo", "utf8"));
  } catch (error) {
    return `no cgroups here (${(error as Error).message})`;
  }
  const v1 = ["cpu", "memory"].map((c) => places.find((p) => p.version === 1 && p.controller === c));
  const v2 = places.find((p) => p.version === 2);
  const made: string[] = [];
  const remove = () => {
    for (const dir of [...made].reverse()) {
      try {
        rmdirSync(dir);
      } catch { /* already gone */ }
    }
  };
  const quota = String(Math.round(limits.cpu * PERIOD_US));
  try {
    if (v1[0] !== undefined && v1[1] !== undefined) {
      const [cpu, memory] = v1.map((p) => join(p!.dirs[0], name));
      mkdirSync(cpu);
      made.push(cpu);
      mkdirSync(memory);
      made.push(memory);
      writeFileSync(join(cpu, "cpu.cfs_period_us"), String(PERIOD_US));
      writeFileSync(join(cpu, "cpu.cfs_quota_us"), quota);
      writeFileSync(join(memory, "memory.limit_in_bytes"), String(limits.memoryBytes));
    } else if (v2 !== undefined) {
      const dir = join(v2.dirs[0], name);
      mkdirSync(dir);
      made.push(dir);
      writeFileSync(join(dir, "cpu.max"), `${quota} ${PERIOD_US}`);
      writeFileSync(join(dir, "memory.max"), String(limits.memoryBytes));
    } else {
      return "neither cgroup v1's cpu and memory hierarchies nor cgroup v2 are mounted";
    }
  } catch (error) {
    remove();
    return `cannot make a limited cgroup (${(error as Error).message}); run as root where cgroups are writable`;
  }
  return {
    dirs: [...made],
    wrap: (command, args) => {
      const join = made.map((dir) => `echo $$ > '${dir}/cgroup.procs'`).join(" && ");
      return ["/bin/sh", ["-c", `${join} && exec "$0" "$@"`, command, ...args]];
    },
    remove,
  };
}
