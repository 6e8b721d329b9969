import { type Stats, statfsSync, statSync } from "node:fs";
import { lstat, readlink, stat, statfs } from "node:fs/promises";
import { isAbsolute } from "node:path";
import { AgentError } from "../common/errors.js";
import { validateNetnsName } from "../model/names.js";
import type { NetnsIdentity, NetnsRef } from "../model/records.js";

export type { NetnsIdentity, NetnsRef };

export const NETNS_RUN_DIR = "/var/run/netns";
/** statfs f_type of the namespace filesystem (linux/magic.h). */
const NSFS_MAGIC = 0x6e736673;
const OWN_NETNS = "/proc/self/ns/net";
/** Errors of a namespace file that is not there (ESRCH: its process is exiting). */
const GONE = new Set(["ENOENT", "ENOTDIR", "ESRCH"]);

/** The file that holds the namespace; validates the reference. */
export function netnsPath(ref: NetnsRef): string {
  if ("name" in ref) return `${NETNS_RUN_DIR}/${validateNetnsName(ref.name)}`;
  if ("pid" in ref) {
    if (!Number.isSafeInteger(ref.pid) || ref.pid <= 0) {
      throw new AgentError("BAD_REQUEST", `pid ${JSON.stringify(ref.pid)} is not a positive integer`);
    }
    return `/proc/${ref.pid}/ns/net`;
  }
  const p = ref.path;
  if (typeof p !== "string" || !isAbsolute(p) || p.split("/").includes("..")) {
    throw new AgentError(
      "BAD_REQUEST",
      `netns path ${JSON.stringify(p)} must be absolute and must not contain ".."`,
      "give e.g. /var/run/netns/NAME or /proc/PID/ns/net",
    );
  }
  return p;
}

/**
 * What `ip link ... netns X` is given: always the file. ip tries X as a name under
 * /var/run/netns first and as a pid second, so `123` could mean either; a path cannot.
 */
export function netnsArg(ref: NetnsRef): string {
  return netnsPath(ref);
}

export function describeNetns(ref: NetnsRef): string {
  if ("name" in ref) return `netns "${ref.name}"`;
  if ("pid" in ref) return `netns of pid ${ref.pid}`;
  return `netns at ${ref.path}`;
}

export function netnsNotFound(ref: NetnsRef): AgentError {
  return new AgentError(
    "NETNS_NOT_FOUND",
    `${describeNetns(ref)} does not exist`,
    "pid" in ref
      ? "the process has exited: is the container running?"
      : "create it first (ip netns add NAME) or check the container is running",
  );
}

function kindOf(s: Stats): string {
  if (s.isFIFO()) return "a FIFO";
  if (s.isDirectory()) return "a directory";
  if (s.isCharacterDevice() || s.isBlockDevice()) return "a device";
  if (s.isSocket()) return "a socket";
  return "a plain file";
}

const identity = (s: Stats): NetnsIdentity => ({ dev: s.dev, ino: s.ino });
const same = (a: NetnsIdentity, b: NetnsIdentity) => a.dev === b.dev && a.ino === b.ino;

async function identityOf(path: string): Promise<NetnsIdentity | undefined> {
  return stat(path).then(identity, () => undefined);
}

/** One node's checks (see checkNodeNetns); never opens the file. */
async function checkOne(
  { node, netns: ref }: { node: string; netns: NetnsRef },
  refused: readonly [NetnsIdentity | undefined, string][],
): Promise<NetnsIdentity> {
  const path = netnsPath(ref);
  const notNetns = (why: string) =>
    new AgentError(
      "BAD_REQUEST",
      `node ${node}: ${describeNetns(ref)} is not a network namespace a node can live in: ${why}`,
      "give the node's own namespace: a name from `ip netns list`, /proc/PID/ns/net or its process's pid",
    );
  let fs: Awaited<ReturnType<typeof statfs>>;
  let st: Stats;
  try {
    [fs, st] = await Promise.all([statfs(path), stat(path)]);
  } catch (e) {
    if (!GONE.has((e as NodeJS.ErrnoException).code ?? ""))
      throw notNetns(`${path}: ${(e as Error).message}`);
    const nf = netnsNotFound(ref);
    throw new AgentError(nf.code, `node ${node}: ${nf.message}`, nf.hint);
  }
  if (fs.type !== NSFS_MAGIC) throw notNetns(`${path} is ${kindOf(st)}, not a namespace file`);
  // A /proc/PID/ns/* link names its type ("uts:[4026531838]"); a bind mount does not, and the
  // kernel refuses one of another type when the first veth is made (nothing is left then).
  const link = (await lstat(path)).isSymbolicLink() ? await readlink(path).catch(() => "") : "";
  const type = /^(\w+):\[\d+\]$/.exec(link)?.[1];
  if (type !== undefined && type !== "net") throw notNetns(`${path} is a ${type} namespace`);
  const id = identity(st);
  for (const [other, what] of refused) if (other && same(id, other)) throw notNetns(`it is ${what}`);
  return id;
}

/**
 * Checks the namespaces of new nodes before anything is made in them; returns their identities.
 * Each must be an nsfs file (statfs never opens it: a FIFO cannot block, /etc/passwd or
 * /dev/null are no namespace) of a network namespace, and neither the agent's own nor the
 * switch's (where ovs-vswitchd and the host ends live): node interfaces there would mix with
 * them. NETNS_NOT_FOUND when missing, BAD_REQUEST otherwise.
 */
export async function checkNodeNetns(
  nodes: readonly { node: string; netns: NetnsRef }[],
  switchNetns: NetnsRef | undefined,
): Promise<NetnsIdentity[]> {
  const refused: [NetnsIdentity | undefined, string][] = [
    [await identityOf(OWN_NETNS), "the agent's own network namespace"],
    [switchNetns && (await identityOf(netnsPath(switchNetns))), "the switch's network namespace"],
  ];
  return Promise.all(nodes.map((n) => checkOne(n, refused)));
}

/**
 * Why a node's namespace is not the one recorded (undefined: it is). With an identity (pid and
 * path references) a namespace that is gone, or another one now (the pid reused, the path
 * mounted again), is lost for good: nothing must be made in what the number points to now.
 * Without one (named namespaces: the name is the handle) only whether it is there counts.
 * Two syscalls, no subprocess, never throws.
 */
export function netnsLost(ref: NetnsRef, id?: NetnsIdentity): string | undefined {
  const path = netnsPath(ref);
  let st: Stats;
  try {
    if (statfsSync(path).type !== NSFS_MAGIC) return `${path} is no namespace file now`;
    st = statSync(path);
  } catch (e) {
    if (!GONE.has((e as NodeJS.ErrnoException).code ?? ""))
      return `${path} cannot be read (${(e as Error).message})`;
    return "pid" in ref ? `process ${ref.pid} has exited` : `${describeNetns(ref)} does not exist`;
  }
  if (id === undefined || same(identity(st), id)) return undefined;
  return "pid" in ref
    ? `pid ${ref.pid} is in another network namespace now (the node's process exited and the number was reused, or it moved)`
    : `${path} holds another network namespace now`;
}

/** API input `{netns: "name" | "/path", pid}` to a reference; exactly one must be given. */
export function parseNetnsRef(input: { netns?: string; pid?: number }): NetnsRef {
  const hasNetns = input.netns !== undefined && input.netns !== "";
  const hasPid = input.pid !== undefined;
  if (hasNetns === hasPid) {
    throw new AgentError(
      "BAD_REQUEST",
      "give exactly one of netns (a name or an absolute path) and pid",
      'e.g. {"netns": "lab1-r1"} or {"netns": "/proc/1234/ns/net"} or {"pid": 1234}',
    );
  }
  const ref: NetnsRef = hasPid
    ? { pid: input.pid as number }
    : input.netns!.startsWith("/")
      ? { path: input.netns! }
      : { name: input.netns! };
  netnsPath(ref);
  return ref;
}

/** The switch's namespace setting (a name or an absolute path); undefined: the agent's own. */
export function switchNetnsRef(setting: string | undefined): NetnsRef | undefined {
  return setting === undefined ? undefined : parseNetnsRef({ netns: setting });
}
