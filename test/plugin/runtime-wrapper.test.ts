import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import {
  chmod,
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  realpath,
  rm,
  symlink,
  writeFile,
} from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { ipBatch, ipJson } from "../../src/link/index.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import {
  DockerResources,
  docker,
  dockerUnavailable,
  IMAGE,
  pluginSocket,
  RUNTIME,
} from "../harness/docker.js";
import { NetnsPool, uniqueName } from "../harness/netns.js";

/**
 * bin/archetype-runc: without Docker, the config.json edit on `create` (against a fake runc that
 * records its arguments and the config.json it was given, compared byte for byte) and the
 * prestart hook's renames in throw-away namespaces; then, with the real dockerd (the wrapper as
 * scripts/docker-setup.sh installs it), containers in and outside a lab with a 2^64-1 rlimit.
 */

const WRAPPER = fileURLToPath(new URL("../../bin/archetype-runc", import.meta.url));

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `file args` (no shell) with extra environment, stdin and working directory. */
function runFile(
  file: string,
  args: string[],
  opts: { env?: Record<string, string>; input?: string; cwd?: string } = {},
): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { env: { ...process.env, ...opts.env }, cwd: opts.cwd, timeout: 15_000, encoding: "utf8" },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : null) : 0;
        if (err && code === null) return reject(err);
        resolve({ code, stdout, stderr });
      },
    );
    // A child that exits without reading its stdin (ip) closes the pipe: its exit says the rest.
    child.stdin?.on("error", () => {});
    child.stdin?.end(opts.input ?? "");
  });
}

/** An absolute path to a tool, for PATHs that lack it on purpose. */
function which(name: string): string {
  const found = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    .map((d) => join(d, name))
    .find((f) => existsSync(f));
  if (!found) throw new Error(`${name} not found`);
  return found;
}

/** A directory of links to `tools`: a PATH on which everything else is missing. */
async function toolDir(parent: string, name: string, tools: string[]): Promise<string> {
  const dir = join(parent, name);
  await mkdir(dir);
  for (const t of tools) await symlink(which(t), join(dir, t));
  return dir;
}

const SETKEY = `{"path":"/proc/4242/exe","args":["libnetwork-setkey","-exec-root=/var/run/docker","0123abcd","4567ef89"]}`;
/** Where the hook goes in a config text below; every other byte must reach runc as written. */
const AT = "<<HOOK>>";

/**
 * Docker 20.10's config.json for `docker run --ulimit core=-1` on a plugin network (trimmed),
 * with the numbers and strings a JSON rewrite would not keep: 2^64-1, 1e400, -0, 1.0, 1E+2,
 * escapes, JSON-looking text inside strings, unicode both raw and escaped.
 */
const DOCKER = String.raw`{"ociVersion":"1.0.2-dev","process":{"user":{"uid":0,"gid":0,"additionalGids":[0]},"args":["sh","-c","exit 0"],"env":["PATH=/usr/local/sbin:/usr/bin","X=\"hooks\":{\"prestart\":[]}","Y=]}{[,:\\","Z=\u003c\u0026\u003e\t\u2028 üñï 😀"],"cwd":"/","rlimits":[{"type":"RLIMIT_CORE","hard":18446744073709551615,"soft":18446744073709551615}],"oomScoreAdj":0},"root":{"path":"/var/lib/docker/overlay2/ab\"c/merged"},"hostname":"h\"ö","mounts":[{"destination":"/etc/hosts","type":"bind","source":"/var/lib/docker/containers/x/hosts","options":["rbind","rprivate"]}],"hooks":{"prestart":[${SETKEY}${AT}]},"linux":{"sysctl":{"net.ipv4.ping_group_range":"0 2147483647"},"resources":{"memory":{"limit":1e400,"swap":-0,"reservation":1.0},"cpu":{"shares":1E+2,"quota":-1.5e-7},"pids":{"limit":0}},"cgroupsPath":"/docker/x","namespaces":[{"type":"mount"},{"type":"network"},{"type":"uts"},{"type":"pid"},{"type":"ipc"}],"seccomp":{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["personality"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":4294967295,"op":"SCMP_CMP_EQ"}]}],"x":[true,false,null,[],{}]}}}`;

/** The same shape written by another tool: indented, CRLF in places, a final newline, more hooks. */
const PRETTY = `{\r\n  "ociVersion" : "1.0.2",\n  "hooks" : {\n    "createRuntime" : [ { "path" : "/bin/true" } ],\n    "prestart" : [\n      { "path" : "/bin/true", "args" : [ "true" ] },\n      ${SETKEY},\n      { "path" : "/usr/bin/x", "args" : [ "x", "libnetwork-setkey" ], "timeout" : 5 }\n    ${AT}],\n    "poststart" : [ ]\n  },\n  "process" : { "rlimits" : [ { "hard" : 18446744073709551615 } ] },\n  "linux" : { "namespaces" : [ { "type" : "network", "path" : "" } ] }\n}\n`;

/** Each case: a config text, and whether the wrapper must add the hook at AT (else: unchanged). */
const withoutHook = (text: string) => text.replace(AT, "");
/** DOCKER without the hook marker, `from` replaced by `to` (which must be there). */
function dockerWith(from: string, to: string): string {
  const text = withoutHook(DOCKER);
  if (!text.includes(from)) throw new Error(`${from} is not in the config`);
  return text.replace(from, to);
}
const hooks = (h: string) => dockerWith(`"hooks":{"prestart":[${SETKEY}]},`, h === "" ? "" : `"hooks":${h},`);
const netns = (ns: string) =>
  dockerWith(
    `"namespaces":[{"type":"mount"},{"type":"network"},{"type":"uts"},{"type":"pid"},{"type":"ipc"}]`,
    `"namespaces":${ns}`,
  );

const SPLICED: [string, string][] = [
  ["Docker's compact config.json, --ulimit core=-1", DOCKER],
  ["indented, CRLF, more hooks before and after libnetwork's", PRETTY],
  [
    "hooks before libnetwork's, a network namespace with an empty path",
    DOCKER.replace(SETKEY, `{"path":"/bin/true"},${SETKEY}`).replace(
      `{"type":"network"}`,
      `{"path":"","type":"network"}`,
    ),
  ],
];

/** Valid JSON that is not a container libnetwork moves interfaces into, or is unusual. */
const LAYOUTS: [string, string][] = [
  ["no hooks", hooks("")],
  ["hooks: {} (Docker's --network none)", hooks("{}")],
  ["hooks: null", hooks("null")],
  ["prestart: []", hooks(`{"prestart":[]}`)],
  ["prestart: {}", hooks(`{"prestart":{}}`)],
  ["other prestart hooks only", hooks(`{"prestart":[{"path":"/bin/true","args":["true"]}]}`)],
  ["libnetwork's hook under createRuntime", hooks(`{"createRuntime":[${SETKEY}]}`)],
  ["libnetwork-setkey not first", hooks(`{"prestart":[{"path":"/x","args":["x","libnetwork-setkey"]}]}`)],
  ["a joined network namespace", netns(`[{"type":"mount"},{"type":"network","path":"/proc/42/ns/net"}]`)],
  ["no network namespace (host network)", netns(`[{"type":"mount"},{"type":"pid"}]`)],
  ["two network namespaces", netns(`[{"type":"network"},{"type":"network"}]`)],
  ["hooks twice", dockerWith(`"hostname"`, `"hooks":{},"hostname"`)],
  ["prestart twice", hooks(`{"prestart":[${SETKEY}],"prestart":[]}`)],
  ["a key written with escapes", hooks(`{"pre\\u0073tart":[${SETKEY}]}`)],
  ["an array", `[${SETKEY}]`],
];

const BROKEN: [string, string][] = [
  ["not JSON", "{not json"],
  ["cut short", withoutHook(DOCKER).slice(0, -1)],
  ["an unterminated string", withoutHook(DOCKER).slice(0, 40)],
  ["text after the object", `${withoutHook(DOCKER)}x`],
  ["two objects", `${withoutHook(DOCKER)}{}`],
  ["empty", ""],
  ["a raw control byte", dockerWith(`"h\\"ö"`, `"h\u0001"`)],
  ["a brace too many", dockerWith(`"pids":{"limit":0}}`, `"pids":{"limit":0}}}`)],
];

describe("archetype-runc: the config.json edit", () => {
  const pool = new NetnsPool("arc");
  let dir: string;
  let bundle: string;
  let stub: string;
  /** The wrapper, copied where its path needs escaping in JSON: quotes, a backslash, unicode. */
  let odd: string;
  let lab: string; // a namespace with an archetype: interface, as the host is while a lab runs
  let plain: string; // one without (an alias that merely contains archetype:)
  const IP = which("ip");

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "archrunc-"));
    bundle = join(dir, "bundle");
    await mkdir(bundle);
    stub = join(dir, "runc-stub");
    // The fake runc records its arguments (one a line) and the bytes of the config.json it was
    // given (or that there was none).
    await writeFile(
      stub,
      `#!/bin/sh\nprintf '%s\\n' "$@" > "$0.args"\n` +
        `/bin/cp "$STUB_BUNDLE/config.json" "$0.config" 2>/dev/null || /bin/rm -f "$0.config"\n`,
    );
    await chmod(stub, 0o755);
    const oddDir = join(dir, `it's "odd" \\ ünï 😀`);
    await mkdir(oddDir);
    odd = join(oddDir, "archetype-runc");
    await copyFile(WRAPPER, odd);
    await chmod(odd, 0o755);
    const [a, b] = await pool.create(2);
    if (!a || !b) throw new Error("no namespaces");
    [lab, plain] = [a, b];
    const veth = (ns: string, alias: string) =>
      ipBatch(
        [
          ["link", "add", "v0", "type", "veth", "peer", "name", "v1"],
          ["link", "set", "dev", "v0", "alias", alias],
        ],
        { netns: { name: ns } },
      );
    await veth(lab, "archetype:eth1");
    await veth(plain, "xarchetype:eth1");
  });
  after(async () => {
    await pool.destroyAll();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

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

  interface Create {
    result: Result;
    args: string[];
    /** config.json as runc got it (latin1: one char per byte), undefined when there was none. */
    config: string | undefined;
  }

  /**
   * Writes `config` (unless undefined) and runs the wrapper in namespace `ns` (its /sys shows
   * that namespace's interfaces, as the host's does for Docker) as Docker runs runc.
   */
  async function create(
    ns: string,
    config: string | undefined,
    opts: { wrapper?: string; args?: string[]; cwd?: string; path?: string; prefix?: string[] } = {},
  ): Promise<Create> {
    const file = join(bundle, "config.json");
    await rm(file, { force: true });
    if (config !== undefined) await writeFile(file, config);
    await rm(`${stub}.args`, { force: true });
    const args = opts.args ?? dockerArgs("create", ["--bundle", bundle]);
    const env: Record<string, string> = { ARCHETYPE_RUNC: stub, STUB_BUNDLE: bundle };
    if (opts.path !== undefined) env.PATH = opts.path;
    const result = await runFile(
      IP,
      ["netns", "exec", ns, ...(opts.prefix ?? []), opts.wrapper ?? odd, ...args],
      { env, cwd: opts.cwd },
    );
    const recorded = await readFile(`${stub}.args`, "utf8").catch(() => "");
    const got = await readFile(`${stub}.config`).catch(() => undefined);
    return { result, args: recorded.split("\n").slice(0, -1), config: got?.toString("latin1") };
  }

  const latin1 = (text: string) => Buffer.from(text, "utf8").toString("latin1");
  const hookFor = async (path: string) => {
    const self = await realpath(path);
    return JSON.stringify({ path: self, args: [self, "hook"], timeout: 10 });
  };
  /** The text with the hook at AT, as bytes in latin1. */
  const spliced = async (text: string, path = odd) => latin1(text.replace(AT, `,${await hookFor(path)}`));

  test("the hook is inserted after the last prestart hook, every other byte as it was", async () => {
    for (const [what, text] of SPLICED) {
      const c = await create(lab, withoutHook(text));
      assert.equal(c.result.code, 0, `${what}: ${c.result.stderr}`);
      assert.equal(c.result.stderr, "", what);
      assert.deepEqual(c.args, dockerArgs("create", ["--bundle", bundle]), what);
      assert.equal(c.config, await spliced(text), what);
      // What runc reads: libnetwork's hook, then ours, last.
      const prestart = JSON.parse(Buffer.from(c.config as string, "latin1").toString("utf8")).hooks.prestart;
      assert.deepEqual(prestart.at(-1), JSON.parse(await hookFor(odd)), what);
      assert.ok(
        prestart.findIndex((h: { args?: string[] }) => h.args?.[0] === "libnetwork-setkey") <
          prestart.length - 1,
        what,
      );

      // Once only: a config.json with the hook in it is left as it is.
      const again = await create(lab, Buffer.from(c.config as string, "latin1").toString("utf8"));
      assert.equal(again.result.code, 0, again.result.stderr);
      assert.equal(again.config, c.config, `${what}, again`);
    }
    // No file left behind in the bundle.
    assert.deepEqual(await readdir(bundle), ["config.json"]);
  });

  test("unusual layouts and broken files reach runc byte for byte as they were", async () => {
    for (const [what, text] of [...LAYOUTS, ...BROKEN]) {
      const c = await create(lab, text);
      assert.equal(c.result.code, 0, `${what}: ${c.result.stderr}`);
      assert.deepEqual(c.args, dockerArgs("create", ["--bundle", bundle]), what);
      assert.equal(c.config, latin1(text), what);
    }
    // The cases are what they say: the layouts parse, the broken ones do not.
    for (const [what, text] of LAYOUTS) assert.doesNotThrow(() => JSON.parse(text), what);
    for (const [what, text] of BROKEN) assert.throws(() => JSON.parse(text), what);
    for (const [what, text] of SPLICED) assert.doesNotThrow(() => JSON.parse(withoutHook(text)), what);
    const none = await create(lab, undefined);
    assert.equal(none.result.code, 0, none.result.stderr);
    assert.deepEqual(
      none.args,
      dockerArgs("create", ["--bundle", bundle]),
      "no config.json: runc still runs",
    );
    assert.deepEqual(await readdir(bundle), []);
  });

  test("no archetype interface on the host: config.json is not touched", async () => {
    const c = await create(plain, withoutHook(DOCKER));
    assert.equal(c.result.code, 0, c.result.stderr);
    assert.equal(c.config, latin1(withoutHook(DOCKER)));
  });

  test("create needs no jq; without awk or with a read-only bundle config.json goes through as it was", async () => {
    const base = ["sh", "grep", "readlink", "mv", "rm"];
    const noJq = await toolDir(dir, "no-jq", [...base, "awk"]);
    const noAwk = await toolDir(dir, "no-awk", [...base, "jq"]);
    const c = await create(lab, withoutHook(DOCKER), { path: noJq });
    assert.equal(c.result.code, 0, c.result.stderr);
    assert.equal(c.config, await spliced(DOCKER));

    const without = await create(lab, withoutHook(DOCKER), { path: noAwk });
    assert.equal(without.result.code, 0, without.result.stderr);
    assert.deepEqual(without.args, dockerArgs("create", ["--bundle", bundle]));
    assert.equal(without.config, latin1(withoutHook(DOCKER)));
    assert.match(without.result.stderr, /^archetype-runc: .*interfaces keep Docker's names/);

    // `ip netns exec` gives the wrapper a mount namespace of its own: the bundle is read-only there.
    const ro = await create(lab, withoutHook(DOCKER), {
      prefix: ["sh", "-c", 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"', bundle],
    });
    assert.equal(ro.result.code, 0, ro.result.stderr);
    assert.deepEqual(ro.args, dockerArgs("create", ["--bundle", bundle]));
    assert.equal(ro.config, latin1(withoutHook(DOCKER)));
    assert.match(
      ro.result.stderr,
      /^archetype-runc: cannot read .* or write .*interfaces keep Docker's names/,
    );
    assert.deepEqual(await readdir(bundle), ["config.json"]);
  });

  test("every bundle spelling (-b X, --bundle=X, -b=X, working directory) and `run`", async () => {
    const spellings: [string, string[], string | undefined][] = [
      ["create", ["-b", bundle], undefined],
      ["create", [`--bundle=${bundle}`], undefined],
      ["run", [`-b=${bundle}`], undefined],
      ["create", [], bundle],
    ];
    for (const [cmd, bundleArgs, cwd] of spellings) {
      const args = dockerArgs(cmd, bundleArgs);
      const c = await create(lab, withoutHook(DOCKER), { args, cwd, wrapper: WRAPPER });
      assert.equal(c.result.code, 0, c.result.stderr);
      assert.deepEqual(c.args, args);
      assert.equal(c.config, await spliced(DOCKER, WRAPPER), `${cmd} ${bundleArgs.join(" ")}`);
    }
  });

  test("other subcommands go straight to runc, config.json untouched", async () => {
    for (const cmd of ["start", "delete", "state", "kill"]) {
      // A subcommand-like word after the subcommand must not count (e.g. a container named create).
      const args = [...dockerArgs(cmd, []), "create"];
      const c = await create(lab, withoutHook(DOCKER), { args, cwd: bundle });
      assert.equal(c.result.code, 0, c.result.stderr);
      assert.deepEqual(c.args, args);
      assert.equal(c.config, latin1(withoutHook(DOCKER)), cmd);
    }
  });
});

/** dist/archnet-rename, as `make build` makes it: the hook's native implementation. */
const HELPER = fileURLToPath(new URL("../../dist/archnet-rename", import.meta.url));

/**
 * The hook's two implementations, run by the same tests: the wrapper with the native helper
 * installed beside it (as scripts/docker-setup.sh installs both), and the checkout's wrapper,
 * which has none beside it and so plans with jq and renames with nsenter + ip.
 */
const IMPLS = [
  { impl: "native helper", native: true },
  { impl: "sh + jq fallback", native: false },
] as const;

type Pair = [string, string, string?, string?, boolean?];

for (const { impl, native } of IMPLS) {
  describe(`archetype-runc hook (${impl}): renames in the container's namespace`, () => {
    const pool = new NetnsPool("arw");
    const sleepers: ChildProcess[] = [];
    let dir: string;
    let path = WRAPPER;

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "archrunc-hook-"));
      if (native) {
        assert.ok(existsSync(HELPER), `${HELPER} is missing: run \`make build\``);
        path = join(dir, "archetype-runc");
        await copyFile(WRAPPER, path);
        await copyFile(HELPER, join(dir, "archnet-rename"));
        await chmod(path, 0o755);
        await chmod(join(dir, "archnet-rename"), 0o755);
      } else {
        assert.ok(
          !existsSync(join(WRAPPER, "../archnet-rename")),
          "the checkout's wrapper must have no helper beside it",
        );
      }
    });
    after(async () => {
      for (const s of sleepers) s.kill("SIGKILL");
      await pool.destroyAll();
      if (dir) await rm(dir, { recursive: true, force: true });
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
    /** ifindex -> "name:up|down", to follow each interface through its renames. */
    const byIndex = (m: Map<number, Link>) =>
      Object.fromEntries(
        [...m].map(([i, l]) => [i, `${l.ifname}:${l.flags.includes("UP") ? "up" : "down"}`]),
      );

    /** Veth pairs inside `ns`, in this order: [name, peer, alias of name, alias of peer, up?]. */
    async function veths(ns: string, pairs: Pair[]) {
      const lines: string[][] = [];
      const spaced: string[][] = []; // aliases with white space, which `ip -batch` cannot take
      for (const [a, b, aliasA, aliasB, up] of pairs) {
        lines.push(["link", "add", a, "type", "veth", "peer", "name", b]);
        for (const [dev, alias] of [
          [a, aliasA],
          [b, aliasB],
        ] as const)
          if (alias) (/\s/.test(alias) ? spaced : lines).push(["link", "set", "dev", dev, "alias", alias]);
        if (up) lines.push(["link", "set", "dev", a, "up"]);
      }
      await ipBatch(lines, { netns: { name: ns } });
      for (const args of spaced) {
        const r = await runFile(which("ip"), ["-n", ns, ...args]);
        assert.equal(r.code, 0, r.stderr);
      }
    }

    const hook = (pid: number, env?: Record<string, string>) =>
      runFile(path, ["hook"], { input: JSON.stringify({ ociVersion: "1.0.2", pid }), env });

    /**
     * Makes `pairs` (then sets `up` interfaces up), runs the hook, and checks each interface by
     * ifindex: `expect` maps a name before to "name:up|down" after; unlisted ones keep theirs.
     */
    async function renames(pairs: Pair[], up: string[], expect: Record<string, string>) {
      const ns = await newNs();
      await veths(ns, pairs);
      if (up.length > 0)
        await ipBatch(
          up.map((d) => ["link", "set", "dev", d, "up"]),
          { netns: { name: ns } },
        );
      const before = await links(ns);
      const want = byIndex(before);
      for (const [i, l] of before) if (l.ifname in expect) want[i] = expect[l.ifname] as string;
      const r = await hook(await processIn(ns));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, "");
      const now = await links(ns);
      assert.deepEqual(byIndex(now), want);
      // Run again: every name is right, nothing changes.
      const again = await hook(await processIn(ns));
      assert.equal(again.code, 0, again.stderr);
      assert.deepEqual(byIndex(await links(ns)), want);
    }

    test("crossing names swap, a foreign holder moves to a free ethN, up state is kept", async () => {
      // eth1 wants eth2 and eth2 wants eth1 (a swap); x0 wants eth0, held by a foreign interface.
      await renames(
        [
          ["eth1", "eth2", "archetype:eth2", "archetype:eth1", true],
          ["x0", "eth0", "archetype:eth0", undefined, false],
        ],
        ["eth0"],
        { eth1: "eth2:up", eth2: "eth1:down", x0: "eth0:down", eth0: "eth3:up" },
      );
    });

    test("a rotation of three, UP interfaces stay UP, the ones already named right are not touched", async () => {
      await renames(
        [
          ["eth1", "p1", "archetype:eth2", "archetype:p1"],
          ["eth2", "p2", "archetype:eth3", "archetype:lan0"],
          ["eth3", "p3", "archetype:eth1", undefined],
        ],
        ["eth1", "eth3", "p1", "p2"],
        { eth1: "eth2:up", eth2: "eth3:down", eth3: "eth1:up", p1: "p1:up", p2: "lan0:up" },
      );
    });

    test("foreign holders take the first ethN nobody has or asks for, in interface order", async () => {
      // Ours: a0 -> eth0, a1 -> eth1, eth5 -> eth3, a2 -> a 15-character name. Foreign: eth0 (up),
      // eth1, eth2. eth0 skips eth0-eth2 (taken), eth3 (asked for), lands on eth4; eth1 skips
      // eth5 too (the current name of one of ours, still taken), lands on eth6.
      await renames(
        [
          ["a0", "eth0", "archetype:eth0", undefined],
          ["a1", "eth1", "archetype:eth1", undefined],
          ["eth5", "eth2", "archetype:eth3", undefined],
          ["a2", "b2", "archetype:abcdefghijklmno", undefined, true],
        ],
        ["eth0"],
        {
          a0: "eth0:down",
          a1: "eth1:down",
          eth5: "eth3:down",
          a2: "abcdefghijklmno:up",
          eth0: "eth4:up",
          eth1: "eth6:down",
          eth2: "eth2:down",
        },
      );
    });

    test("no interface of ours: exit 0, nothing changes", async () => {
      const ns = await newNs();
      await veths(ns, [["eth0", "peer0", "xarchetype:eth9", "not-ours", true]]);
      const before = summary(await links(ns));
      const r = await hook(await processIn(ns));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, "");
      assert.deepEqual(summary(await links(ns)), before);
    });

    test("an invalid wanted name or two interfaces wanting one name: non-zero exit, the message, nothing changes", async () => {
      const bad = (alias: string, message: string): [string, Pair[], string] => [
        alias,
        [["eth1", "eth2", "archetype:eth2", alias, true]],
        `archetype-runc: hook: ${message}\n`,
      ];
      const cases: [string, Pair[], string][] = [
        bad("archetype:bad/name", "eth2 asks for invalid name bad/name"),
        bad("archetype:abcdefghijklmnop", "eth2 asks for invalid name abcdefghijklmnop"),
        bad("archetype:a b", "eth2 asks for invalid name a b"),
        bad("archetype:a\u00a0b", "eth2 asks for invalid name a\u00a0b"),
        bad("archetype:x:y", "eth2 asks for invalid name x:y"),
        bad("archetype:", "eth2 asks for invalid name "),
        [
          "duplicate",
          [["eth1", "eth2", "archetype:eth5", "archetype:eth5", true]],
          // The kernel registers a veth's peer first: eth2 is listed (and claims) before eth1.
          "archetype-runc: hook: eth2 and eth1 both ask to be named eth5\n",
        ],
        [
          "the first problem in interface order wins",
          [
            ["eth1", "eth2", "archetype:eth7", "archetype:eth7"],
            ["eth3", "eth4", "archetype:no/pe", undefined],
          ],
          "archetype-runc: hook: eth2 and eth1 both ask to be named eth7\n",
        ],
      ];
      for (const [what, pairs, message] of cases) {
        const ns = await newNs();
        await veths(ns, pairs);
        const before = summary(await links(ns));
        const r = await hook(await processIn(ns));
        assert.equal(r.code, 1, what);
        assert.equal(r.stderr, message, what);
        assert.deepEqual(summary(await links(ns)), before, what);
      }
    });

    if (native)
      test("a helper that cannot run or dies: the sh + jq path renames, with a note", async () => {
        const broken = join(dir, "broken");
        await mkdir(broken);
        const brokenWrapper = join(broken, "archetype-runc");
        await copyFile(WRAPPER, brokenWrapper);
        await chmod(brokenWrapper, 0o755);
        for (const [what, text] of [
          ["a missing interpreter", "#!/nonexistent/interpreter\n"],
          ["killed by a signal", "#!/bin/sh\nkill -SEGV $$\n"],
        ]) {
          await writeFile(join(broken, "archnet-rename"), text as string, { mode: 0o755 });
          const ns = await newNs();
          await veths(ns, [["eth1", "eth2", "archetype:eth2", "archetype:eth1", true]]);
          const input = JSON.stringify({ ociVersion: "1.0.2", pid: await processIn(ns) });
          const r = await runFile(brokenWrapper, ["hook"], { input });
          assert.equal(r.code, 0, `${what}: ${r.stderr}`);
          assert.match(
            r.stderr,
            /archetype-runc: hook: .*archnet-rename failed; trying nsenter, ip and jq\n$/,
            what,
          );
          assert.deepEqual(summary(await links(ns)), ["eth1:down", "eth2:up", "lo:up"], what);
        }
      });

    test(
      native
        ? "needs no tools at all: a lab container is renamed with an empty PATH"
        : "without jq a lab container fails with the fix; any other container starts",
      async () => {
        const tools = await mkdtemp(join(tmpdir(), "archrunc-tools-"));
        try {
          const noJq = await toolDir(tools, "no-jq", native ? [] : ["nsenter", "ip"]);
          const nsLab = await newNs();
          await veths(nsLab, [["eth1", "eth2", "archetype:eth2", undefined, true]]);
          const before = summary(await links(nsLab));
          const r = await hook(await processIn(nsLab), { PATH: noJq });
          if (native) {
            assert.equal(r.code, 0, r.stderr);
            assert.equal(r.stderr, "");
            // eth1 takes eth2, the peer that held it moves to eth0.
            assert.deepEqual(summary(await links(nsLab)), ["eth0:down", "eth2:up", "lo:up"]);
          } else {
            assert.notEqual(r.code, 0);
            assert.equal(r.stderr, "archetype-runc: hook: jq not found: apt-get install jq\n");
            assert.deepEqual(summary(await links(nsLab)), before);
          }

          const nsOther = await newNs();
          await veths(nsOther, [["eth0", "peer0", "xarchetype:eth9", undefined, true]]);
          const other = await hook(await processIn(nsOther), { PATH: noJq });
          assert.equal(other.code, 0, other.stderr);
        } finally {
          await rm(tools, { recursive: true, force: true });
        }
      },
    );

    test("when it cannot look inside (process gone, no pid, no nsenter or ip) the container starts, with a note", async () => {
      const tools = await mkdtemp(join(tmpdir(), "archrunc-tools-"));
      try {
        const ns = await newNs();
        await veths(ns, [["eth1", "eth2", "archetype:eth2", undefined, true]]);
        const before = summary(await links(ns));
        const pid = await processIn(ns);
        if (!native) {
          for (const [what, tool] of [
            ["nsenter", "ip"],
            ["ip", "nsenter"],
          ] as const) {
            const r = await hook(pid, { PATH: await toolDir(tools, `no-${what}`, [tool, "jq"]) });
            assert.equal(r.code, 0, r.stderr);
            assert.match(
              r.stderr,
              /^archetype-runc: hook: nsenter or ip not found: apt-get install util-linux iproute2;/,
            );
          }
          assert.deepEqual(summary(await links(ns)), before);
        }
        // A process that has exited: its pid names no namespace (pid_max is at most 2^22).
        const gone = await hook(2 ** 22 + 1);
        assert.equal(gone.code, 0, gone.stderr);
        assert.match(
          gone.stderr,
          /^archetype-runc: hook: .*4194305.*; interfaces keep the names Docker gave them\n$/,
        );
        for (const input of ['{"ociVersion":"1.0.2"}', '{"pid":0}', '{"pid":"12"}', "not json", ""]) {
          const r = await runFile(path, ["hook"], { input });
          assert.equal(r.code, 0, input);
          assert.match(
            r.stderr,
            /^archetype-runc: hook: .*interfaces keep the names Docker gave them/,
            input,
          );
        }
      } finally {
        await rm(tools, { recursive: true, force: true });
      }
    });
  });
}

describe("archetype-runc under the real dockerd", { skip: await dockerUnavailable() }, () => {
  const { socket, driver } = pluginSocket();
  const res = new DockerResources();
  let t: TestAgent | undefined;

  before(async () => {
    const runtimes = JSON.parse(await docker(["info", "--format", "{{json .Runtimes}}"]));
    const installed = await readFile(runtimes.archetype.path, "utf8");
    assert.ok(
      installed === (await readFile(WRAPPER, "utf8")),
      `dockerd's archetype runtime ${runtimes.archetype.path} is not this checkout's bin/archetype-runc: run scripts/docker-setup.sh`,
    );
    const helper = join(runtimes.archetype.path, "../archnet-rename");
    assert.ok(
      existsSync(HELPER) && (await readFile(helper)).equals(await readFile(HELPER)),
      `${helper} is not this checkout's dist/archnet-rename: run \`make build\`, then scripts/docker-setup.sh`,
    );
    t = await startTestAgent({ pluginSocket: socket });
  });
  after(async () => {
    await res.cleanup();
    await t?.close();
  });

  test("--ulimit core=-1 (2^64-1 in config.json): a container outside any lab starts", async () => {
    const c = res.container(uniqueName("cn"));
    await docker([
      "run",
      "--rm",
      "--name",
      c,
      ...RUNTIME,
      "--ulimit",
      "core=-1",
      IMAGE,
      "sh",
      "-c",
      "exit 0",
    ]);
  });

  test("a lab container with --ulimit core=-1 gets its interface name and keeps the limit", async () => {
    const net = res.network(uniqueName("nm"));
    await res.createNetwork(driver, net, { lab_id: uniqueName("lab"), interface_name: "eth7" });
    const c = res.container(uniqueName("cn"));
    const out = await docker([
      "run",
      "--rm",
      "--name",
      c,
      ...RUNTIME,
      "--ulimit",
      "core=-1",
      "--network",
      net,
      IMAGE,
      "sh",
      "-c",
      "ulimit -c; cd /sys/class/net && echo *",
    ]);
    assert.deepEqual(out.split("\n"), ["unlimited", "eth7 lo"]);
  });
});
