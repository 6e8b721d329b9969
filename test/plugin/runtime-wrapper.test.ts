import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, realpath, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { ipBatch, ipJson } from "../../src/link/index.js";
import { NetnsPool } from "../harness/netns.js";

/**
 * bin/archetype-runc without Docker: the config.json edit on `create` (against a stub runc that
 * records its arguments) and the prestart hook's renames in a throw-away namespace.
 */

const WRAPPER = fileURLToPath(new URL("../../bin/archetype-runc", import.meta.url));

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the wrapper (no shell) with extra environment, stdin and working directory. */
function wrapper(
  args: string[],
  opts: { env?: Record<string, string>; input?: string; cwd?: string } = {},
): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      WRAPPER,
      args,
      { env: { ...process.env, ...opts.env }, cwd: opts.cwd, timeout: 15_000, encoding: "utf8" },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : null) : 0;
        if (err && code === null) return reject(err);
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin?.end(opts.input ?? "");
  });
}

const LIBNETWORK_HOOK = {
  path: "/usr/bin/dockerd",
  args: ["libnetwork-setkey", "-exec-root=/var/run/docker", "0123abcd", "4567ef89"],
};

/** A config.json shaped like the one Docker writes (trimmed). */
function dockerConfig(netns: { type: string; path?: string }): Record<string, unknown> {
  return {
    ociVersion: "1.0.2-dev",
    process: { args: ["sleep", "30"], cwd: "/", env: ["PATH=/bin"] },
    root: { path: "/var/lib/docker/overlay2/x/merged" },
    hostname: "abc",
    hooks: { prestart: [LIBNETWORK_HOOK] },
    linux: {
      resources: { memory: { swap: -1 }, pids: { limit: 0 } },
      namespaces: [{ type: "mount" }, netns, { type: "uts" }, { type: "pid" }, { type: "ipc" }],
    },
  };
}

describe("archetype-runc: the config.json edit", () => {
  let dir: string;
  let bundle: string;
  let stub: string;
  let self: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "archrunc-"));
    bundle = join(dir, "bundle");
    await mkdir(bundle);
    stub = join(dir, "runc-stub");
    // The stub records its arguments, one a line, and its working directory.
    await writeFile(stub, `#!/bin/sh\npwd > "$0.cwd"\nprintf '%s\\n' "$@" > "$0.args"\n`);
    await chmod(stub, 0o755);
    self = await realpath(WRAPPER);
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const env = () => ({ ARCHETYPE_RUNC: stub });
  const recorded = async () => (await readFile(`${stub}.args`, "utf8")).split("\n").slice(0, -1);
  const readConfig = async () => JSON.parse(await readFile(join(bundle, "config.json"), "utf8"));
  const writeConfig = (c: unknown) => writeFile(join(bundle, "config.json"), JSON.stringify(c));
  const ourHook = () => ({ path: self, args: [self, "hook"], timeout: 10 });
  const dockerArgs = (cmd: string, bundleArgs: string[]) => [
    "--root",
    "/var/run/docker/runtime-runc/moby",
    "--log",
    "/run/x/log.json",
    "--log-format",
    "json",
    "--systemd-cgroup",
    cmd,
    ...bundleArgs,
    "--pid-file",
    "/run/x/init.pid",
    "0123abcd",
  ];

  test("create appends the hook after libnetwork's, once; arguments pass through unchanged", async () => {
    await writeConfig(dockerConfig({ type: "network" }));
    const args = dockerArgs("create", ["--bundle", bundle]);
    const r = await wrapper(args, { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await recorded(), args);
    const c = await readConfig();
    assert.deepEqual(c.hooks.prestart, [LIBNETWORK_HOOK, ourHook()]);
    // Everything else is left as it was.
    assert.deepEqual({ ...c, hooks: undefined }, { ...dockerConfig({ type: "network" }), hooks: undefined });

    const again = await wrapper(args, { env: env() });
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual((await readConfig()).hooks.prestart, [LIBNETWORK_HOOK, ourHook()]);
  });

  test("every bundle spelling (-b X, --bundle=X, -b=X, working directory) and `run`", async () => {
    const spellings: [string, string[], string | undefined][] = [
      ["create", ["-b", bundle], undefined],
      ["create", [`--bundle=${bundle}`], undefined],
      ["run", [`-b=${bundle}`], undefined],
      ["create", [], bundle],
    ];
    for (const [cmd, bundleArgs, cwd] of spellings) {
      await writeConfig(dockerConfig({ type: "network" }));
      const args = dockerArgs(cmd, bundleArgs);
      const r = await wrapper(args, { env: env(), cwd });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await recorded(), args);
      const c = await readConfig();
      assert.deepEqual(c.hooks.prestart, [LIBNETWORK_HOOK, ourHook()], `${cmd} ${bundleArgs.join(" ")}`);
    }
  });

  test("a config without hooks gets a prestart list with the hook", async () => {
    const c0 = dockerConfig({ type: "network" });
    delete c0.hooks;
    await writeConfig(c0);
    const r = await wrapper(dockerArgs("create", ["--bundle", bundle]), { env: env() });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((await readConfig()).hooks, { prestart: [ourHook()] });
  });

  test("untouched: a joined network namespace, no network namespace, other subcommands", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [dockerConfig({ type: "network", path: "/proc/42/ns/net" }), "create"],
      [{ ...dockerConfig({ type: "network" }), linux: { namespaces: [{ type: "mount" }] } }, "create"],
      [dockerConfig({ type: "network" }), "start"],
      [dockerConfig({ type: "network" }), "delete"],
      [dockerConfig({ type: "network" }), "state"],
    ];
    for (const [config, cmd] of cases) {
      const text = JSON.stringify(config, null, 2);
      await writeFile(join(bundle, "config.json"), text);
      // A subcommand-like word after the subcommand must not count (e.g. a container named create).
      const args =
        cmd === "create" ? dockerArgs(cmd, ["--bundle", bundle]) : [...dockerArgs(cmd, []), "create"];
      const r = await wrapper(args, { env: env(), cwd: bundle });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await recorded(), args);
      assert.equal(await readFile(join(bundle, "config.json"), "utf8"), text, `${cmd}`);
    }
  });

  test("a broken config.json fails before runc runs, with our prefix", async () => {
    await writeFile(join(bundle, "config.json"), "{not json");
    await rm(`${stub}.args`, { force: true });
    const r = await wrapper(dockerArgs("create", ["--bundle", bundle]), { env: env() });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /archetype-runc: /);
    await assert.rejects(readFile(`${stub}.args`, "utf8"));
  });
});

describe("archetype-runc hook: renames in the container's namespace", () => {
  const pool = new NetnsPool("arw");
  const sleepers: ChildProcess[] = [];

  after(async () => {
    for (const s of sleepers) s.kill("SIGKILL");
    await pool.destroyAll();
  });

  async function newNs(): Promise<string> {
    const [ns] = await pool.create(1);
    if (!ns) throw new Error("no namespace");
    return ns;
  }

  /** A process in a fresh namespace: its pid is what runc hands the hook. */
  async function processIn(ns: string): Promise<number> {
    const child = spawn("ip", ["netns", "exec", ns, "sleep", "60"], { stdio: "ignore" });
    sleepers.push(child);
    const pid = child.pid;
    if (pid === undefined) throw new Error("sleep did not start");
    // `ip netns exec` enters the namespace, then execs sleep in the same process.
    const until = Date.now() + 5000;
    for (;;) {
      const comm = await readFile(`/proc/${pid}/comm`, "utf8").catch(() => "");
      if (comm.trim() === "sleep") return pid;
      if (Date.now() > until) throw new Error("sleep did not start in the namespace");
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  type Link = { ifname: string; ifindex: number; flags: string[]; ifalias?: string };
  async function links(ns: string): Promise<Map<number, Link>> {
    const all = await ipJson<Link[]>(["link", "show"], { name: ns });
    return new Map(all.map((l) => [l.ifindex, l]));
  }
  const summary = (m: Map<number, Link>) =>
    [...m.values()].map((l) => `${l.ifname}:${l.flags.includes("UP") ? "up" : "down"}`).sort();

  /** Veth pairs inside `ns`: [name, peer, alias of name, alias of peer, up?]. */
  async function veths(ns: string, pairs: [string, string, string?, string?, boolean?][]) {
    const lines: string[][] = [];
    for (const [a, b, aliasA, aliasB, up] of pairs) {
      lines.push(["link", "add", a, "type", "veth", "peer", "name", b]);
      if (aliasA) lines.push(["link", "set", "dev", a, "alias", aliasA]);
      if (aliasB) lines.push(["link", "set", "dev", b, "alias", aliasB]);
      if (up) lines.push(["link", "set", "dev", a, "up"]);
    }
    await ipBatch(lines, { netns: { name: ns } });
  }

  const hook = (pid: number) => wrapper(["hook"], { input: JSON.stringify({ ociVersion: "1.0.2", pid }) });

  test("crossing names swap, a foreign holder moves to a free ethN, up state is kept", async () => {
    const ns = await newNs();
    // eth1 wants eth2 and eth2 wants eth1 (a swap); x0 wants eth0, held by a foreign interface.
    await veths(ns, [
      ["eth1", "eth2", "archetype:eth2", "archetype:eth1", true],
      ["x0", "eth0", "archetype:eth0", undefined, false],
    ]);
    await ipBatch([["link", "set", "dev", "eth0", "up"]], { netns: { name: ns } });
    const before = await links(ns);
    const idx = (name: string) => [...before.values()].find((l) => l.ifname === name)?.ifindex ?? -1;
    const [i1, i2, ix, i0] = [idx("eth1"), idx("eth2"), idx("x0"), idx("eth0")];

    const r = await hook(await processIn(ns));
    assert.equal(r.code, 0, r.stderr);
    const now = await links(ns);
    assert.equal(now.get(i1)?.ifname, "eth2");
    assert.equal(now.get(i2)?.ifname, "eth1");
    assert.equal(now.get(ix)?.ifname, "eth0");
    assert.equal(now.get(i0)?.ifname, "eth3");
    assert.ok(now.get(i1)?.flags.includes("UP"), "eth1 was up: still up as eth2");
    assert.ok(!now.get(i2)?.flags.includes("UP"), "eth2 was down: still down as eth1");
    assert.ok(!now.get(ix)?.flags.includes("UP"), "x0 was down: still down as eth0");
    assert.ok(now.get(i0)?.flags.includes("UP"), "the foreign eth0 was up: still up as eth3");

    // Run again: every name is right, nothing changes.
    const again = await hook(await processIn(ns));
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(summary(await links(ns)), summary(now));
  });

  test("no interface of ours: exit 0, nothing changes", async () => {
    const ns = await newNs();
    await veths(ns, [["eth0", "peer0", undefined, "not-ours", true]]);
    const before = summary(await links(ns));
    const r = await hook(await processIn(ns));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(summary(await links(ns)), before);
  });

  test("an invalid wanted name or two interfaces wanting one name: non-zero exit, nothing changes", async () => {
    const cases: [string, [string, string, string?, string?, boolean?][], RegExp][] = [
      ["invalid", [["eth1", "eth2", "archetype:eth2", "archetype:bad/name", true]], /invalid name bad\/name/],
      ["too long", [["eth1", "eth2", "archetype:eth2", "archetype:abcdefghijklmnop"]], /invalid name/],
      [
        "duplicate",
        [["eth1", "eth2", "archetype:eth5", "archetype:eth5", true]],
        /both ask to be named eth5/,
      ],
    ];
    for (const [what, pairs, message] of cases) {
      const ns = await newNs();
      await veths(ns, pairs);
      const before = summary(await links(ns));
      const r = await hook(await processIn(ns));
      assert.notEqual(r.code, 0, what);
      assert.match(r.stderr, /^archetype-runc: hook: /, what);
      assert.match(r.stderr, message, what);
      assert.deepEqual(summary(await links(ns)), before, what);
    }
  });

  test("no pid in the OCI state: non-zero exit with our prefix", async () => {
    for (const input of ['{"ociVersion":"1.0.2"}', '{"pid":0}', '{"pid":"12"}', "not json"]) {
      const r = await wrapper(["hook"], { input });
      assert.notEqual(r.code, 0, input);
      assert.match(r.stderr, /^archetype-runc: hook: /, input);
    }
  });
});
