import { execFileSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import {
  CENTRAL_SCHEMA,
  centralDbFile,
  centralEnv,
  centralRemote,
  dbServerArgs,
  northdArgs,
} from "../../src/central/daemons.js";
import { run } from "../../src/common/exec.js";
import { type AgentConfig, defaultConfig } from "../../src/config/config.js";
import { TEST_DATAPATH } from "./kernel-host.js";
import { uniqueName } from "./netns.js";
import { type OvsInstance, startOvs, stopDaemon as stopOvsDaemon } from "./ovs-instance.js";

/**
 * OVN across simulated hosts on one machine (like shared/sandbox/ovn-two-hosts.sh), all private:
 *
 * - central: NB and SB ovsdb-servers and ovn-northd, sockets in a temp dir, running in a
 *   throw-away "wire" namespace that also holds the underlay: a Linux bridge every host is
 *   cabled to;
 * - N hosts: each a throw-away namespace with a private Open vSwitch (startOvs) and an
 *   ovn-controller on it (OVS_RUNDIR/OVN_RUNDIR point at the host's own dir). The underlay NIC
 *   has 198.18.0.(i+1)/24, the Geneve endpoint: on the userspace datapath it is a port of
 *   `br-phy` (OVS routes its tunnels itself), on the kernel datapath (TEST_DATAPATH, the kernel
 *   VM) the kernel's own interface.
 *
 * Names are random (namespaces, dirs), so suites may run beside each other and beside other
 * engineers' tests; nothing touches the host's own OVS or OVN. `close()` removes everything
 * (also after a failed start), and an exit hook kills the daemons should the test process end
 * without calling it.
 */
export interface OvnCentral {
  dir: string;
  /** `unix:DIR/nb.sock` */
  nbRemote: string;
  /** `unix:DIR/sb.sock` */
  sbRemote: string;
  nbctl(args: readonly string[]): Promise<string>;
  sbctl(args: readonly string[]): Promise<string>;
  stopSb(): Promise<void>;
  startSb(): Promise<void>;
  stopNb(): Promise<void>;
  startNb(): Promise<void>;
  stopNorthd(): Promise<void>;
  startNorthd(): Promise<void>;
}

export interface OvnHost {
  /** Index 0.. */
  index: number;
  /** The chassis name (system-id) this host gets. */
  chassis: string;
  /** The host's namespace: its OVS runs here and the host ends of node veths live here. */
  netns: string;
  ovs: OvsInstance;
  /** The Geneve endpoint (ovn-encap-ip), no prefix. */
  encapIp: string;
  /** Writes the Open_vSwitch external_ids ovn-controller needs (what the ovn agent does itself). */
  configureChassis(sbRemote?: string): Promise<void>;
  startController(): Promise<void>;
  stopController(): Promise<void>;
  restartController(): Promise<void>;
  vsctl(args: readonly string[]): Promise<string>;
}

export interface OvnHosts {
  central: OvnCentral;
  hosts: OvnHost[];
  /** Stops and removes everything. Safe to call twice. */
  close(): Promise<void>;
}

export interface StartOvnOptions {
  /** Number of simulated hosts. Default 2. */
  hosts?: number;
  /**
   * Write each host's ovn-controller settings (system-id, ovn-remote, encap) into its OVS:
   * default true; false leaves it to the agent under test.
   */
  configureChassis?: boolean;
  /** Prefix of the chassis names (a digit per host is appended). Default "hv". */
  chassisPrefix?: string;
  /**
   * Start each host's ovn-controller: default true; false leaves it to the test (stopped with the
   * host all the same: its pidfile is the host dir's ovn-controller.pid, as OVN_RUNDIR=dir gives).
   */
  controller?: boolean;
}

export const OVN_UNDERLAY_PREFIX = "198.18.0";

/** Every daemon pidfile of every harness alive in this process, for the exit hook. */
const livePidfiles = new Map<string, string>();
let exitHook = false;
function installExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  process.on("exit", () => {
    for (const [pidfile, dir] of livePidfiles) {
      try {
        const pid = Number.parseInt(execFileSync("cat", [pidfile], { encoding: "utf8" }).trim(), 10);
        const cmd = execFileSync("cat", [`/proc/${pid}/cmdline`], { encoding: "utf8" });
        if (cmd.includes(dir)) process.kill(pid, "SIGKILL");
      } catch {
        // gone already
      }
    }
  });
}

/** Runs a program, in `netns` if given, with `env` (KEY=VALUE) through env(1): never a shell. */
async function exec(
  prog: string,
  args: readonly string[],
  opts: { netns?: string; env?: readonly string[]; timeoutMs?: number } = {},
): Promise<string> {
  const argv = ["env", ...(opts.env ?? []), prog, ...args];
  const full = opts.netns === undefined ? argv : ["ip", "netns", "exec", opts.netns, ...argv];
  const r = await run(full[0]!, full.slice(1), { timeoutMs: opts.timeoutMs ?? 20_000 });
  return r.stdout;
}

/** Stops a daemon (ovs-instance's way) and forgets it for the exit hook. */
async function stopDaemon(pidfile: string, dir: string): Promise<void> {
  livePidfiles.delete(pidfile);
  await stopOvsDaemon(pidfile, dir);
}

/** Starts a `--detach`ed daemon and records its pidfile for cleanup. */
async function startDaemon(
  prog: string,
  args: readonly string[],
  pidfile: string,
  dir: string,
  opts: { netns?: string; env?: readonly string[] },
): Promise<void> {
  livePidfiles.set(pidfile, dir);
  await exec(prog, [...args, `--pidfile=${pidfile}`, "--detach"], opts);
}

export async function startOvnHosts(opts: StartOvnOptions = {}): Promise<OvnHosts> {
  installExitHook();
  const count = opts.hosts ?? 2;
  if (count < 1 || count > 250) throw new Error(`startOvnHosts: ${count} hosts?`);
  const cleanups: (() => Promise<void>)[] = [];
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
    })();
    return closing;
  };
  try {
    const dir = await mkdtemp(join(tmpdir(), "ovnt-"));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const wire = uniqueName("ovnw");
    await run("ip", ["netns", "add", wire]);
    cleanups.push(() => run("ip", ["netns", "del", wire]).then(() => undefined));
    await run("ip", ["-n", wire, "link", "set", "lo", "up"]);
    await run("ip", ["-n", wire, "link", "add", "br0", "type", "bridge"]);
    await run("ip", ["-n", wire, "link", "set", "br0", "up"]);

    const central = await startCentral(dir, wire, cleanups);
    const hosts: OvnHost[] = [];
    for (let i = 0; i < count; i++) {
      hosts.push(await startHost(i, wire, central, opts, cleanups));
    }
    return { central, hosts, close };
  } catch (e) {
    await close();
    throw e;
  }
}

async function startCentral(
  dir: string,
  netns: string,
  cleanups: (() => Promise<void>)[],
): Promise<OvnCentral> {
  // The same daemons as `archnet central serve` (src/central/daemons.ts), detached in `netns`.
  const f = (name: string) => join(dir, name);
  const env = Object.entries(centralEnv(dir)).map(([k, v]) => `${k}=${v}`);
  for (const db of ["nb", "sb"] as const)
    await exec("ovsdb-tool", ["create", centralDbFile(dir, db), CENTRAL_SCHEMA[db]], { env });
  // Each daemon logs to and keeps its pid in `dir` under its own name (nb, sb, northd).
  const daemon = (name: string, prog: string, args: readonly string[]) => ({
    start: () =>
      startDaemon(prog, [...args, `--log-file=${f(`${name}.log`)}`], f(`${name}.pid`), dir, { netns, env }),
    stop: () => stopDaemon(f(`${name}.pid`), dir),
  });
  const nb = daemon("nb", "ovsdb-server", dbServerArgs(dir, "nb"));
  const sb = daemon("sb", "ovsdb-server", dbServerArgs(dir, "sb"));
  const northd = daemon("northd", "ovn-northd", northdArgs(dir));
  const nbRemote = centralRemote(dir, "nb");
  const sbRemote = centralRemote(dir, "sb");
  const central: OvnCentral = {
    dir,
    nbRemote,
    sbRemote,
    nbctl: (args) => exec("ovn-nbctl", [`--db=${nbRemote}`, "--timeout=20", ...args], { env }),
    sbctl: (args) => exec("ovn-sbctl", [`--db=${sbRemote}`, "--timeout=20", ...args], { env }),
    startNb: nb.start,
    stopNb: nb.stop,
    startSb: sb.start,
    stopSb: sb.stop,
    startNorthd: northd.start,
    stopNorthd: northd.stop,
  };
  cleanups.push(() => central.stopNb());
  await central.startNb();
  cleanups.push(() => central.stopSb());
  await central.startSb();
  await central.nbctl(["init"]);
  cleanups.push(() => central.stopNorthd());
  await central.startNorthd();
  return central;
}

async function startHost(
  index: number,
  wire: string,
  central: OvnCentral,
  opts: StartOvnOptions,
  cleanups: (() => Promise<void>)[],
): Promise<OvnHost> {
  const ovs = await startOvs({ isolatedNetns: true });
  cleanups.push(() => ovs.stop());
  const netns = ovs.netns!;
  const dir = ovs.dir;
  const encapIp = `${OVN_UNDERLAY_PREFIX}.${index + 1}`;
  const chassis = `${opts.chassisPrefix ?? "hv"}${index + 1}`;
  // The underlay cable: `ul0` in the host, its peer on the wire's bridge.
  const wireEnd = `h${index}`;
  await run("ip", [
    "link",
    "add",
    "ul0",
    "netns",
    netns,
    "type",
    "veth",
    "peer",
    "name",
    wireEnd,
    "netns",
    wire,
  ]);
  await run("ip", ["-n", wire, "link", "set", wireEnd, "master", "br0", "up"]);
  await run("ip", ["-n", netns, "link", "set", "ul0", "up"]);
  if (TEST_DATAPATH === "system") {
    // The kernel's Geneve vports route through the namespace's own stack.
    await run("ip", ["-n", netns, "addr", "add", `${encapIp}/24`, "dev", "ul0"]);
  } else {
    await ovs.vsctl([
      "add-br",
      "br-phy",
      "--",
      "set",
      "bridge",
      "br-phy",
      "datapath_type=netdev",
      "--",
      "add-port",
      "br-phy",
      "ul0",
    ]);
    await run("ip", ["-n", netns, "addr", "add", `${encapIp}/24`, "dev", "br-phy"]);
    await run("ip", ["-n", netns, "link", "set", "br-phy", "up"]);
  }

  const env = ["OVS_RUNDIR", "OVS_LOGDIR", "OVN_RUNDIR", "OVN_LOGDIR"].map((k) => `${k}=${dir}`);
  const pidfile = join(dir, "ovn-controller.pid");
  const host: OvnHost = {
    index,
    chassis,
    netns,
    ovs,
    encapIp,
    vsctl: (args) => ovs.vsctl(args),
    configureChassis: async (sbRemote = central.sbRemote) => {
      await ovs.vsctl([
        "set",
        "open",
        ".",
        `external_ids:system-id=${chassis}`,
        `external_ids:ovn-remote=${sbRemote}`,
        "external_ids:ovn-encap-type=geneve",
        `external_ids:ovn-encap-ip=${encapIp}`,
        `external_ids:ovn-bridge-datapath-type=${TEST_DATAPATH}`,
      ]);
    },
    startController: () =>
      startDaemon(
        "ovn-controller",
        [`unix:${join(dir, "db.sock")}`, `--log-file=${join(dir, "ovn-controller.log")}`],
        pidfile,
        dir,
        { netns, env },
      ),
    stopController: () => stopDaemon(pidfile, dir),
    restartController: async () => {
      await host.stopController();
      await host.startController();
    },
  };
  // Before ovs.stop(): ovn-controller goes first (it would re-create br-int meanwhile).
  cleanups.push(() => host.stopController());
  if (opts.configureChassis ?? true) await host.configureChassis();
  if (opts.controller ?? true) await host.startController();
  return host;
}

/** Polls `check` until it holds or `ms` pass (then throws naming `what`). */
export async function until(
  what: string,
  check: () => boolean | Promise<boolean>,
  ms = 30_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(50);
  }
}

/** An ovn-backend agent's config for `host`: its OVS, its namespace, the central databases. */
export function ovnAgentConfig(ovn: OvnHosts, host: OvnHost, stateDir: string): AgentConfig {
  return {
    ...defaultConfig(),
    backend: "ovn",
    ovsdb: host.ovs.remote,
    datapath: TEST_DATAPATH,
    stateDir,
    pluginSocket: undefined,
    switchNetns: host.netns,
    cleanupIntervalS: 0,
    cleanupGraceS: 0,
    listen: { host: "127.0.0.1", port: 0 },
    ovn: {
      nb: ovn.central.nbRemote,
      sb: ovn.central.sbRemote,
      hostId: host.chassis,
      encapIp: host.encapIp,
      hostTimeoutS: defaultConfig().ovn.hostTimeoutS,
    },
  };
}
