import { spawn } from "node:child_process";
import { run } from "../../src/common/exec.js";
import { ipBatch, ipJson } from "../../src/link/index.js";
import type { OvsdbClient } from "../../src/ovsdb/index.js";
import { BatchedSwitch, type FloorIface } from "../floor/batched.js";
import { now } from "./stats.js";
import { makeTopology, type Topology } from "./topology.js";

/**
 * What the hot (dis)connect scenarios share: pairs of existing interfaces connected and
 * disconnected in turn, static neighbours for traffic checks, and ports of the floor's own.
 */

/** Pings `ip` every 2 ms from `ns` until the first reply (or `deadlineS`); resolves when ping exits. */
export function pingUntilReply(
  ns: string,
  ip: string,
  deadlineS: number,
): { done: Promise<boolean>; exited: () => boolean } {
  // Long-lived and raced against the connect, so spawned rather than awaited through run().
  const child = spawn(
    "ip",
    ["netns", "exec", ns, "ping", "-n", "-q", "-c", "1", "-i", "0.002", "-w", String(deadlineS), ip],
    { stdio: "ignore" },
  );
  let exited = false;
  const done = new Promise<boolean>((resolve) => {
    child.on("exit", (code) => {
      exited = true;
      resolve(code === 0);
    });
    child.on("error", () => {
      exited = true;
      resolve(false);
    });
  });
  return { done, exited: () => exited };
}

/** One echo request from `ns`, its reply awaited up to `waitS`: whether it came back. */
export async function pingOnce(ns: string, ip: string, waitS: number): Promise<boolean> {
  const r = await run("ip", ["netns", "exec", ns, "ping", "-n", "-q", "-c", "1", "-W", String(waitS), ip], {
    timeoutMs: (waitS + 5) * 1000,
    okCodes: [1],
  });
  return r.code === 0;
}

async function mac(ns: string, dev: string): Promise<string> {
  const [l] = await ipJson<{ address: string }[]>(["link", "show", "dev", dev], { name: ns });
  if (!l) throw new Error(`no ${dev} in ${ns}`);
  return l.address;
}

/**
 * Pair p (interfaces 2p and 2p+1) of the first `pairs` gets 198.18.p.1 and .2/24 and permanent
 * neighbours for each other, so no ARP timer stands between a connect and the first ping.
 * Returns where to ping pair p from and to.
 */
export async function staticNeighbours(
  topo: Topology,
  pairs: number,
): Promise<(p: number) => { from: string; to: string }> {
  const byNs = new Map<string, string[][]>();
  for (let p = 0; p < pairs; p++) {
    for (const [k, j, o] of [
      [1, 2 * p, 2 * p + 1],
      [2, 2 * p + 1, 2 * p],
    ] as const) {
      const f = topo.ifaces[j]!;
      const other = topo.ifaces[o]!;
      const list = byNs.get(f.netns) ?? [];
      list.push(["addr", "add", `198.18.${p}.${k}/24`, "dev", f.name]);
      list.push([
        "neigh",
        "replace",
        `198.18.${p}.${3 - k}`,
        "lladdr",
        await mac(other.netns, other.name),
        "dev",
        f.name,
        "nud",
        "permanent",
      ]);
      byNs.set(f.netns, list);
    }
  }
  for (const [ns, l] of byNs) await ipBatch(l, { netns: { name: ns } });
  return (p) => ({ from: topo.ifaces[2 * p]!.netns, to: `198.18.${p}.2` });
}

/** One way of connecting and disconnecting pair p, timed op by op. */
export interface HotKind {
  connect: (p: number) => Promise<unknown>;
  disconnect: (p: number) => Promise<unknown>;
}

/**
 * `ops` operations per kind, connect and disconnect in turn over `pairs` pairs; with several
 * kinds, one connect + disconnect of each in turn (on the same pair, so the kinds may share
 * interfaces) and every kind sees the same machine load. Per kind the times (ms).
 */
export async function alternate(
  ops: number,
  pairs: number,
  kinds: readonly HotKind[],
): Promise<{ c: number[]; d: number[]; all: number[] }[]> {
  const out = kinds.map(() => ({ c: [] as number[], d: [] as number[], all: [] as number[] }));
  for (let i = 0; i < ops; i += 2) {
    const p = Math.floor(i / 2) % pairs;
    for (const [k, kind] of kinds.entries()) {
      for (const op of i + 1 < ops ? ([0, 1] as const) : ([0] as const)) {
        const t0 = now();
        await (op === 0 ? kind.connect(p) : kind.disconnect(p));
        const ms = now() - t0;
        (op === 0 ? out[k]!.c : out[k]!.d).push(ms);
        out[k]!.all.push(ms);
      }
    }
  }
  return out;
}

/**
 * `pairs` pairs of ports of the floor's own (retagging or rewiring the agent's would be drift it
 * repairs), each in its own VLAN (2000+j), created by the floor's one batch + one transaction.
 */
export async function floorPairs(
  client: OvsdbClient,
  switchNetns: string,
  bridge: string,
  pairs: number,
  prefix: string,
): Promise<{ floor: BatchedSwitch; ifaces: FloorIface[]; host: (p: number) => [string, string] }> {
  const topo = await makeTopology(pairs, prefix);
  const ifaces: FloorIface[] = topo.ifaces.map((f, j) => ({
    ...f,
    host: `${prefix}${j}`,
    mtu: 9000,
    tag: 2000 + j,
    group: 4243,
    marks: { bench_kind: "node" },
  }));
  const floor = new BatchedSwitch(client, switchNetns, bridge);
  await floor.provision(ifaces);
  return { floor, ifaces, host: (p) => [ifaces[2 * p]!.host, ifaces[2 * p + 1]!.host] };
}

/** A retag kind on floor pairs: connect = one VLAN for both ends, disconnect = each its own again. */
export function retagKind(
  host: (p: number) => [string, string],
  retag: (a: string, b: string, tag: number) => Promise<void>,
): HotKind {
  return {
    connect: (p) => retag(...host(p), 500 + (p % 400)),
    disconnect: (p) => retag(...host(p), 2000 + 2 * p),
  };
}
