import { AgentError } from "../../common/errors.js";
import { IpBatchError, ipBatch, type LinkInfo, listLinks } from "../../link/index.js";
import { mapLimit } from "../../link/limit.js";
import {
  describeNetns,
  type NetnsIdentity,
  type NetnsRef,
  netnsArg,
  netnsLost,
  netnsPath,
} from "../../link/netns.js";

/**
 * Kernel work of the local backend: a link is one veth pair whose two ends are created directly in
 * the two nodes' namespaces under their final names. No switch, no host ends.
 */

/** One end of a direct pair: the node's interface. */
export interface PairSide {
  /** The interface record's host port name: the key the lab service and views know it by. */
  hostPort: string;
  netns: NetnsRef;
  /** The namespace `netns` must still be: a side whose pid or path points elsewhere is never entered. */
  netnsId?: NetnsIdentity | undefined;
  /** Name inside the node. */
  name: string;
  mtu: number;
  /** The device's MAC address (nodeMac); absent: the kernel picks one. */
  mac?: string;
  /** Administrative state wanted for this device (down = its peer sees NO-CARRIER). */
  up: boolean;
}

export interface Pair {
  lab: string;
  link: string;
  /** `first` is the device added (created up when wanted); `second` is its peer, set up afterwards. */
  first: PairSide;
  second: PairSide;
  createdAt: number;
}

/** Namespace batches run in parallel; each is one nsenter+ip process. */
const NETNS_CONCURRENCY = 8;

export function nsKey(ref: NetnsRef): string {
  return netnsPath(ref);
}

/**
 * Chooses which end of each pair is created first: the second end needs one `ip` run inside its
 * namespace to come up, so seconds are gathered into as few namespaces as possible (greedy).
 */
export function orient(pairs: Pair[]): void {
  const degree = new Map<string, number>();
  for (const p of pairs)
    for (const s of [p.first, p.second]) degree.set(nsKey(s.netns), (degree.get(nsKey(s.netns)) ?? 0) + 1);
  const batched = new Set<string>();
  const swap = (p: Pair) => {
    [p.first, p.second] = [p.second, p.first];
  };
  for (const p of pairs) {
    if (!p.first.up || !p.second.up) {
      // At most one end comes up: it is the one created, and no second step is needed.
      if (!p.first.up && p.second.up) swap(p);
      continue;
    }
    const a = nsKey(p.first.netns);
    const b = nsKey(p.second.netns);
    const second = batched.has(b)
      ? b
      : batched.has(a)
        ? a
        : (degree.get(a) ?? 0) > (degree.get(b) ?? 0)
          ? a
          : b;
    batched.add(second);
    if (second === a && a !== b) swap(p);
  }
}

/**
 * Creates the pairs in one `ip -batch` run from the agent's namespace. All or nothing: on failure
 * the pairs created before the failing line are deleted again.
 */
export async function createPairs(pairs: readonly Pair[]): Promise<void> {
  if (pairs.length === 0) return;
  for (const p of pairs) {
    for (const s of [p.first, p.second]) {
      const lost = netnsLost(s.netns, s.netnsId);
      if (lost)
        throw new AgentError(
          "NETNS_NOT_FOUND",
          `cannot link ${p.link}: ${lost}`,
          "is the container running?",
        );
    }
  }
  const lines = pairs.map((p) => [
    "link",
    "add",
    "name",
    p.first.name,
    "netns",
    netnsArg(p.first.netns),
    "mtu",
    String(p.first.mtu),
    ...(p.first.mac ? ["address", p.first.mac] : []),
    ...(p.first.up ? ["up"] : []),
    "type",
    "veth",
    "peer",
    "name",
    p.second.name,
    "netns",
    netnsArg(p.second.netns),
    "mtu",
    String(p.second.mtu),
    ...(p.second.mac ? ["address", p.second.mac] : []),
  ]);
  try {
    await ipBatch(lines);
  } catch (e) {
    const failed = e instanceof IpBatchError ? e.failedLine : undefined;
    // Lines before the failing one ran; without a line number nothing is known to exist.
    const made = failed === undefined ? [] : pairs.slice(0, failed);
    await deletePairs(made).catch(() => undefined);
    const p = failed === undefined ? undefined : pairs[failed];
    const reason = e instanceof IpBatchError ? (e.failures[0]?.message ?? e.message) : String(e);
    if (p && /File exists/.test(reason)) {
      throw new AgentError(
        "CONFLICT",
        `cannot link ${p.first.name} in ${describeNetns(p.first.netns)} to ${p.second.name} in ${describeNetns(p.second.netns)}: an interface of that name already exists`,
        "delete the old interface inside the node, or choose another interface name",
        { cause: e },
      );
    }
    if (p && /No such process|Invalid "netns" value|Cannot open network namespace/.test(reason)) {
      throw new AgentError(
        "NETNS_NOT_FOUND",
        `cannot link ${p.link}: a namespace of its nodes does not exist (${reason})`,
        "is the container running?",
        { cause: e },
      );
    }
    throw e instanceof AgentError
      ? e
      : new AgentError("COMMAND_FAILED", `creating veth pairs failed: ${reason}`, undefined, { cause: e });
  }
  try {
    await setAdmin(pairs.filter((p) => p.second.up).map((p) => p.second));
  } catch (e) {
    await deletePairs(pairs).catch(() => undefined);
    throw e;
  }
}

/** Groups devices by namespace and runs one `ip -batch` inside each (in parallel, bounded). */
async function perNetns(
  all: readonly { netns: NetnsRef; netnsId?: NetnsIdentity | undefined; name: string }[],
  line: (name: string) => string[],
  opts: { ignoreMissing?: boolean } = {},
): Promise<void> {
  // What a lost node's pid or path points to now is someone else's namespace.
  const sides = all.filter((s) => !(s.netnsId && netnsLost(s.netns, s.netnsId)));
  const groups = new Map<string, { netns: NetnsRef; names: string[] }>();
  for (const s of sides) {
    const k = nsKey(s.netns);
    const g = groups.get(k) ?? { netns: s.netns, names: [] };
    g.names.push(s.name);
    groups.set(k, g);
  }
  await mapLimit([...groups.values()], NETNS_CONCURRENCY, async (g) => {
    try {
      await ipBatch(
        g.names.map(line),
        opts.ignoreMissing
          ? { netns: g.netns, force: true, ignore: /Cannot find device|No such device/ }
          : { netns: g.netns },
      );
    } catch (e) {
      // A namespace that is gone took its devices with it.
      if (opts.ignoreMissing && e instanceof AgentError && e.code === "NETNS_NOT_FOUND") return;
      throw e;
    }
  });
}

/** Sets each device up or down (per its `up`) inside its namespace. */
export async function setAdmin(sides: readonly PairSide[]): Promise<void> {
  for (const up of [true, false]) {
    const these = sides.filter((s) => s.up === up);
    if (these.length > 0) await perNetns(these, (n) => ["link", "set", "dev", n, up ? "up" : "down"]);
  }
}

/** Deletes pairs (one end each, not a lost one's; the peer goes with it); missing devices and namespaces are fine. */
export async function deletePairs(pairs: readonly Pair[]): Promise<void> {
  await perNetns(
    pairs.map((p) => (p.first.netnsId && netnsLost(p.first.netns, p.first.netnsId) ? p.second : p.first)),
    (n) => ["link", "del", "dev", n],
    { ignoreMissing: true },
  );
}

/** Deletes devices by name inside namespaces (stale halves found by reconciliation). */
export async function deleteDevices(sides: readonly { netns: NetnsRef; name: string }[]): Promise<void> {
  await perNetns(sides, (n) => ["link", "del", "dev", n], { ignoreMissing: true });
}

/** The links of each namespace (missing namespaces are left out), in bounded parallel. */
export async function listByNetns(refs: readonly NetnsRef[]): Promise<Map<string, Map<string, LinkInfo>>> {
  const unique = new Map<string, NetnsRef>();
  for (const r of refs) unique.set(nsKey(r), r);
  const out = new Map<string, Map<string, LinkInfo>>();
  await mapLimit([...unique.entries()], NETNS_CONCURRENCY, async ([k, ref]) => {
    try {
      out.set(k, new Map((await listLinks(ref)).map((l) => [l.name, l])));
    } catch (e) {
      if (e instanceof AgentError && e.code === "NETNS_NOT_FOUND") return;
      throw e;
    }
  });
  return out;
}
