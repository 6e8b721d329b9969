import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { run } from "../../src/common/exec.js";

/**
 * A private, real Open vSwitch for a test: own database, sockets, pidfiles and logs in a temp
 * dir, ovsdb-server and (by default) ovs-vswitchd. Call `stop()` from an `after` hook.
 *
 * Bridges must use `datapath_type=netdev` (no kernel datapath here). ovs-vswitchd creates its
 * `ovs-netdev` tap and the bridges' internal devices in the netns it runs in: tests that create
 * bridges should ask for `isolatedNetns` so the host's devices are never touched.
 *
 * The daemons get OVS_RUNDIR/OVS_DBDIR/OVS_LOGDIR/OVS_SYSCONFDIR through `env` in their argument
 * list (run() has no env option, and process.env is never changed).
 */
export interface StartOvsOptions {
  /** Run the daemons inside this existing netns (left in place on stop). */
  netns?: string;
  /** Create a throw-away netns `ovst-<random>` for the daemons, deleted on stop. */
  isolatedNetns?: boolean;
  /** Also start ovs-vswitchd. Default true. */
  withVswitchd?: boolean;
}

export interface OvsInstance {
  dir: string;
  /** `unix:DIR/db.sock` */
  remote: string;
  netns: string | undefined;
  /** ovs-vsctl against this instance (waits for ovs-vswitchd unless `--no-wait` is passed). */
  vsctl(args: readonly string[]): Promise<string>;
  /** ovs-appctl to one of the daemons. */
  appctl(daemon: "ovsdb-server" | "ovs-vswitchd", args: readonly string[]): Promise<string>;
  /**
   * Adds a listening remote `unix:DIR/NAME.sock` through a Manager row, so it can carry an
   * inactivity probe: ovsdb-server then sends `echo` requests after `inactivityProbeMs` idle.
   */
  addManagerRemote(name: string, inactivityProbeMs: number): Promise<string>;
  stopVswitchd(): Promise<void>;
  startVswitchd(): Promise<void>;
  restartVswitchd(): Promise<void>;
  stopDbServer(): Promise<void>;
  startDbServer(): Promise<void>;
  /** Stops both daemons, removes their devices and the dir. Safe to call twice. */
  stop(): Promise<void>;
}

const SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema";

export async function startOvs(opts: StartOvsOptions = {}): Promise<OvsInstance> {
  const dir = await mkdtemp(join(tmpdir(), "ovst-"));
  const ownNetns = opts.isolatedNetns ? `ovst-${randomBytes(4).toString("hex")}` : undefined;
  const netns = ownNetns ?? opts.netns;
  const db = `unix:${join(dir, "db.sock")}`;
  const envArgs = ["OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVS_SYSCONFDIR"].map((k) => `${k}=${dir}`);
  const file = (name: string) => join(dir, name);

  /** Runs an OVS program with the instance's environment, inside the netns if `inNetns`. */
  const ovs = async (prog: string, args: readonly string[], inNetns = false): Promise<string> => {
    const argv = ["env", ...envArgs, prog, ...args];
    const r =
      inNetns && netns !== undefined
        ? await run("ip", ["netns", "exec", netns, ...argv], { timeoutMs: 20_000 })
        : await run(argv[0]!, argv.slice(1), { timeoutMs: 20_000 });
    return r.stdout;
  };

  const startDbServer = async () => {
    await ovs(
      "ovsdb-server",
      [
        file("conf.db"),
        `--remote=punix:${file("db.sock")}`,
        `--pidfile=${file("ovsdb-server.pid")}`,
        "--detach",
        `--log-file=${file("ovsdb-server.log")}`,
        `--unixctl=${file("ovsdb-server.ctl")}`,
      ],
      true,
    );
  };
  const startVswitchd = async () => {
    await ovs(
      "ovs-vswitchd",
      [
        db,
        `--pidfile=${file("ovs-vswitchd.pid")}`,
        "--detach",
        `--log-file=${file("ovs-vswitchd.log")}`,
        `--unixctl=${file("ovs-vswitchd.ctl")}`,
      ],
      true,
    );
  };
  const stopVswitchd = () => stopDaemon(file("ovs-vswitchd.pid"), dir);
  const stopDbServer = () => stopDaemon(file("ovsdb-server.pid"), dir);
  const vsctl = (args: readonly string[]) => ovs("ovs-vsctl", [`--db=${db}`, "--timeout=10", ...args]);
  const appctl = (daemon: "ovsdb-server" | "ovs-vswitchd", args: readonly string[]) =>
    ovs("ovs-appctl", ["-t", file(`${daemon}.ctl`), ...args]);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      // Outside a throw-away netns, let ovs-vswitchd remove the bridges' devices itself.
      const devices: string[] = [];
      if (ownNetns === undefined) {
        const vswitchdUp = await isRunning(file("ovs-vswitchd.pid"), dir);
        const bridges = await vsctl(["list-br"]).then(lines, () => []);
        for (const br of bridges) {
          devices.push(br, ...(await vsctl(["list-ifaces", br]).then(lines, () => [])));
          await vsctl([...(vswitchdUp ? [] : ["--no-wait"]), "--if-exists", "del-br", br]).catch(() => {});
        }
      }
      await stopVswitchd();
      await stopDbServer();
      for (const dev of devices) {
        const ns = netns === undefined ? [] : ["-n", netns];
        await run("ip", [...ns, "link", "del", dev]).catch(() => {});
      }
      if (ownNetns !== undefined) await run("ip", ["netns", "del", ownNetns]).catch(() => {});
      await rm(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  const instance: OvsInstance = {
    dir,
    remote: db,
    netns,
    vsctl,
    appctl,
    addManagerRemote: async (name, inactivityProbeMs) => {
      const path = file(`${name}.sock`);
      await appctl("ovsdb-server", [
        "ovsdb-server/add-remote",
        "db:Open_vSwitch,Open_vSwitch,manager_options",
      ]);
      await vsctl([
        "--no-wait",
        "--",
        "--id=@m",
        "create",
        "Manager",
        `target="punix:${path}"`,
        `inactivity_probe=${inactivityProbeMs}`,
        "--",
        "add",
        "Open_vSwitch",
        ".",
        "manager_options",
        "@m",
      ]);
      for (let i = 0; i < 100 && !(await exists(path)); i++) await sleep(20);
      return `unix:${path}`;
    },
    stopVswitchd,
    startVswitchd,
    restartVswitchd: async () => {
      await stopVswitchd();
      await startVswitchd();
    },
    stopDbServer,
    startDbServer,
    stop,
  };

  try {
    if (ownNetns !== undefined) {
      await run("ip", ["netns", "add", ownNetns]);
      await run("ip", ["-n", ownNetns, "link", "set", "lo", "up"]);
    }
    await ovs("ovsdb-tool", ["create", file("conf.db"), SCHEMA]);
    await startDbServer();
    await vsctl(["--no-wait", "init"]);
    if (opts.withVswitchd ?? true) await startVswitchd();
  } catch (e) {
    await stop();
    throw e;
  }
  return instance;
}

function lines(s: string): string[] {
  return s
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

export async function readPid(pidfile: string): Promise<number | undefined> {
  const text = await readFile(pidfile, "utf8").catch(() => "");
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isInteger(pid) && pid > 1 ? pid : undefined;
}

/**
 * Alive and really this instance's daemon (its command line names the dir), not a zombie: PID 1
 * here does not reap detached daemons, so a dead one stays a zombie and kill(pid, 0) succeeds.
 */
export async function isOurs(pid: number, dir: string): Promise<boolean> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
    if (state === "Z" || state === "X") return false;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8");
    return cmdline.includes(dir);
  } catch {
    return false;
  }
}

async function isRunning(pidfile: string, dir: string): Promise<boolean> {
  const pid = await readPid(pidfile);
  return pid !== undefined && (await isOurs(pid, dir));
}

/** SIGTERM, then SIGKILL after 3 s; then removes the pidfile. */
export async function stopDaemon(pidfile: string, dir: string): Promise<void> {
  const pid = await readPid(pidfile);
  if (pid === undefined) return;
  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    if (!(await isOurs(pid, dir))) break;
    try {
      process.kill(pid, signal);
    } catch {
      break;
    }
    for (let i = 0; i < 150 && (await isOurs(pid, dir)); i++) await sleep(20);
  }
  await rm(pidfile, { force: true });
}
