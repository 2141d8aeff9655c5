/**
 * The Argon2 thread pool is sized from the process's own cgroup: found through
 * `/proc/self/cgroup` and `/proc/self/mountinfo` (cgroup v1, v2, hybrid, a
 * container with or without a cgroup namespace), the smallest limit along the
 * group's path, and reported in the JSON summary. Parsing is tested on texts
 * as the kernel writes them; one test runs the tool in a real group with the
 * chart's `cpu: 200m` where this machine lets it make one.
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { argon2Pool, cgroupDirectories, cgroupLimits } from "../sync.ts";
import { makeLimitedGroup } from "./support/cgroup.ts";
import { SYNC, usersFile } from "./support/helpers.ts";

// A hybrid host (systemd, cgroup v1 controllers, an empty v2 hierarchy at /sys/fs/cgroup/unified).
const HYBRID_CGROUP = `12:pids:/user.slice/user-1000.slice/session-2.scope
11:memory:/user.slice/user-1000.slice/session-2.scope
5:cpu,cpuacct:/user.slice
4:cpuset:/
1:name=systemd:/user.slice/user-1000.slice/session-2.scope
0::/user.slice/user-1000.slice/session-2.scope
`;
const HYBRID_MOUNTINFO = `22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
25 22 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
30 25 0:27 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:28 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:29 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
36 30 0:33 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
37 30 0:34 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,cpuset
41 30 0:38 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:20 - cgroup cgroup rw,memory
`;

// A Docker container on cgroup v1 without a cgroup namespace: the mounts' roots are the container's group.
const DOCKER_V1_CGROUP = `11:memory:/docker/3a4fd2c9e1b0
5:cpu,cpuacct:/docker/3a4fd2c9e1b0
1:name=systemd:/docker/3a4fd2c9e1b0
`;
const DOCKER_V1_MOUNTINFO = `582 581 0:52 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - tmpfs tmpfs rw,mode=755
585 582 0:33 /docker/3a4fd2c9e1b0 /sys/fs/cgroup/cpu,cpuacct ro,nosuid,nodev,noexec,relatime master:15 - cgroup cpu,cpuacct rw,cpu,cpuacct
589 582 0:38 /docker/3a4fd2c9e1b0 /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime master:20 - cgroup memory rw,memory
`;

// A Kubernetes pod on cgroup v2 with its own cgroup namespace: its group is the mount's root.
const POD_V2_CGROUP = "0::/\n";
const POD_V2_MOUNTINFO =
  `1402 1390 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw,nsdelegate,memory_recursiveprot
`;

// A container on cgroup v2 sharing the host's cgroup namespace (`--cgroupns=host`).
const HOST_NS_V2_CGROUP = "0::/kubepods.slice/kubepods-pod7c1e.slice/cri-containerd-9b2f.scope\n";
const HOST_NS_V2_MOUNTINFO = `1402 1390 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw
`;

/** A reader over a fixed set of files: the cgroup files of a made-up machine. */
const files = (entries: Record<string, string>) => (path: string) => entries[path];

describe("where the process's own cgroups are", () => {
  test("cgroup v1 on a hybrid host: each controller's own group and its ancestors, and the v2 group", () => {
    assert.deepEqual(cgroupDirectories(HYBRID_CGROUP, HYBRID_MOUNTINFO), [
      {
        version: 1,
        controller: "memory",
        dirs: [
          "/sys/fs/cgroup/memory/user.slice/user-1000.slice/session-2.scope",
          "/sys/fs/cgroup/memory/user.slice/user-1000.slice",
          "/sys/fs/cgroup/memory/user.slice",
          "/sys/fs/cgroup/memory",
        ],
      },
      { version: 1, controller: "cpu", dirs: ["/sys/fs/cgroup/cpu,cpuacct/user.slice", "/sys/fs/cgroup/cpu,cpuacct"] },
      {
        version: 2,
        controller: "all",
        dirs: [
          "/sys/fs/cgroup/unified/user.slice/user-1000.slice/session-2.scope",
          "/sys/fs/cgroup/unified/user.slice/user-1000.slice",
          "/sys/fs/cgroup/unified/user.slice",
          "/sys/fs/cgroup/unified",
        ],
      },
    ]);
  });

  test("a container without a cgroup namespace: a mount whose root is the container's group is that group", () => {
    assert.deepEqual(cgroupDirectories(DOCKER_V1_CGROUP, DOCKER_V1_MOUNTINFO), [
      { version: 1, controller: "memory", dirs: ["/sys/fs/cgroup/memory"] },
      { version: 1, controller: "cpu", dirs: ["/sys/fs/cgroup/cpu,cpuacct"] },
    ]);
  });

  test("cgroup v2 in a pod's own cgroup namespace: the mount point itself", () => {
    assert.deepEqual(cgroupDirectories(POD_V2_CGROUP, POD_V2_MOUNTINFO), [
      { version: 2, controller: "all", dirs: ["/sys/fs/cgroup"] },
    ]);
  });

  test("cgroup v2 in the host's namespace: the group's directory below the mount, up to the mount", () => {
    assert.deepEqual(cgroupDirectories(HOST_NS_V2_CGROUP, HOST_NS_V2_MOUNTINFO), [
      {
        version: 2,
        controller: "all",
        dirs: [
          "/sys/fs/cgroup/kubepods.slice/kubepods-pod7c1e.slice/cri-containerd-9b2f.scope",
          "/sys/fs/cgroup/kubepods.slice/kubepods-pod7c1e.slice",
          "/sys/fs/cgroup/kubepods.slice",
          "/sys/fs/cgroup",
        ],
      },
    ]);
  });

  test("a group outside every mount's root, or a hierarchy not mounted, is left out", () => {
    const elsewhere = "11:memory:/other/group\n5:cpu,cpuacct:/docker/3a4fd2c9e1b0\n";
    assert.deepEqual(cgroupDirectories(elsewhere, DOCKER_V1_MOUNTINFO), [
      { version: 1, controller: "cpu", dirs: ["/sys/fs/cgroup/cpu,cpuacct"] },
    ]);
    assert.deepEqual(cgroupDirectories(HYBRID_CGROUP, ""), []);
  });

  test("a mount point with a space in it (written \\040 in mountinfo)", () => {
    const mountinfo = "41 30 0:38 / /mnt/my\\040cgroups rw,relatime - cgroup cgroup rw,memory\n";
    assert.deepEqual(cgroupDirectories("11:memory:/a\n", mountinfo), [
      { version: 1, controller: "memory", dirs: ["/mnt/my cgroups/a", "/mnt/my cgroups"] },
    ]);
  });
});

describe("the limits that hold for the process", () => {
  test("cgroup v1: the quota over the period, and the memory limit, of the own group", () => {
    const limits = cgroupLimits(
      DOCKER_V1_CGROUP,
      DOCKER_V1_MOUNTINFO,
      files({
        "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "20000\n",
        "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes": "268435456\n",
      }),
    );
    assert.deepEqual(limits, {
      cpu: { cores: 0.2, file: "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us" },
      memory: { bytes: 268435456, file: "/sys/fs/cgroup/memory/memory.limit_in_bytes" },
    });
  });

  test("cgroup v1 without limits (-1, and the huge number meaning none) has none", () => {
    const limits = cgroupLimits(
      DOCKER_V1_CGROUP,
      DOCKER_V1_MOUNTINFO,
      files({
        "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
        "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
        "/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
      }),
    );
    assert.deepEqual(limits, {});
  });

  test("a limit set on an ancestor group applies: the smallest along the path wins", () => {
    const limits = cgroupLimits(
      HOST_NS_V2_CGROUP,
      HOST_NS_V2_MOUNTINFO,
      files({
        "/sys/fs/cgroup/kubepods.slice/kubepods-pod7c1e.slice/cri-containerd-9b2f.scope/cpu.max": "max 100000\n",
        "/sys/fs/cgroup/kubepods.slice/kubepods-pod7c1e.slice/cri-containerd-9b2f.scope/memory.max": "536870912\n",
        "/sys/fs/cgroup/kubepods.slice/kubepods-pod7c1e.slice/cpu.max": "20000 100000\n",
        "/sys/fs/cgroup/kubepods.slice/kubepods-pod7c1e.slice/memory.max": "268435456\n",
        "/sys/fs/cgroup/kubepods.slice/cpu.max": "800000 100000\n",
        "/sys/fs/cgroup/kubepods.slice/memory.max": "max\n",
      }),
    );
    assert.deepEqual(limits, {
      cpu: { cores: 0.2, file: "/sys/fs/cgroup/kubepods.slice/kubepods-pod7c1e.slice/cpu.max" },
      memory: { bytes: 268435456, file: "/sys/fs/cgroup/kubepods.slice/kubepods-pod7c1e.slice/memory.max" },
    });
  });

  test("on a hybrid host the v1 controllers' limits count, the empty v2 hierarchy adds none", () => {
    const limits = cgroupLimits(
      HYBRID_CGROUP,
      HYBRID_MOUNTINFO,
      files({
        "/sys/fs/cgroup/cpu,cpuacct/user.slice/cpu.cfs_quota_us": "150000\n",
        "/sys/fs/cgroup/cpu,cpuacct/user.slice/cpu.cfs_period_us": "100000\n",
        "/sys/fs/cgroup/memory/user.slice/user-1000.slice/memory.limit_in_bytes": "1073741824\n",
      }),
    );
    assert.deepEqual(limits, {
      cpu: { cores: 1.5, file: "/sys/fs/cgroup/cpu,cpuacct/user.slice/cpu.cfs_quota_us" },
      memory: { bytes: 1073741824, file: "/sys/fs/cgroup/memory/user.slice/user-1000.slice/memory.limit_in_bytes" },
    });
  });
});

describe("the Argon2 pool's size and why", () => {
  test("a CPU quota of 200m sizes it to one thread, naming the quota and its file", () => {
    assert.deepEqual(argon2Pool({ cpu: { cores: 0.2, file: "/sys/fs/cgroup/cpu.max" } }), {
      threads: 1,
      from: "cpu_quota",
      limit: "0.2 CPU (/sys/fs/cgroup/cpu.max)",
    });
  });

  test("a memory limit alone caps it at one computation per 40 MiB", () => {
    const pool = argon2Pool({ memory: { bytes: 64 * 2 ** 20, file: "/sys/fs/cgroup/memory.max" } });
    assert.deepEqual(pool, { threads: 1, from: "memory_limit", limit: "64 MiB (/sys/fs/cgroup/memory.max)" });
  });

  test("with no limits, the usable cores", () => {
    assert.deepEqual(argon2Pool({}), { threads: availableParallelism(), from: "cores" });
  });
});

test("run in a cgroup with a 200m CPU quota, the summary reports one Argon2 thread, from the quota", async (t) => {
  const group = makeLimitedGroup(`user-sync-test-${process.pid}`);
  if (typeof group === "string") return t.skip(`no cgroup with a CPU quota can be made here: ${group}`);
  try {
    const dir = mkdtempSync(join(tmpdir(), "user-sync-cgroup-"));
    const file = usersFile([{ username: "alice", password: "alice-passphrase" }]);
    const [command, args] = group.wrap(process.execPath, [
      SYNC,
      ...["--file", file, "--database-url", `sqlite://${join(dir, "b.db")}?mode=rwc`, "--log-format", "json"],
    ]);
    const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
      (resolve, reject) => {
        const child = spawn(command, args, { env: { PATH: process.env.PATH ?? "" } });
        let [out, err] = ["", ""];
        child.stdout.setEncoding("utf8").on("data", (d) => (out += d));
        child.stderr.setEncoding("utf8").on("data", (d) => (err += d));
        child.once("error", reject);
        child.once("close", (status) => resolve({ code: status, stdout: out, stderr: err }));
      },
    );
    assert.equal(code, 0, stderr);
    const summary = stdout.trim().split("\n").map((line) => JSON.parse(line)).find((line) => line.summary);
    assert.equal(summary.argon2_threads, 1);
    assert.equal(summary.argon2_threads_from, "cpu_quota");
    const cpuDir = group.dirs.find((d) => !d.includes("/memory/"))!;
    assert.match(summary.argon2_threads_limit, new RegExp(`^0\\.2 CPU \\(${cpuDir.replace(/[.]/g, "\\.")}/cpu\\.`));
  } finally {
    group.remove();
  }
});
