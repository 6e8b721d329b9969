import { spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { ipBatch, ipJson } from "../../src/link/index.js";
import { PerProcessSwitch } from "../baseline/per-process.js";
import { BatchedSwitch, type FloorIface } from "../floor/batched.js";
import { scoped } from "../lib/cleanup.js";
import { startEnv } from "../lib/env.js";
import { figure, type ScenarioResult } from "../lib/report.js";
import { now, summary, timed } from "../lib/stats.js";
import { makeTopology } from "../lib/topology.js";

/** Pings `ip` every 2 ms from `ns` until the first reply (or `deadlineS`); resolves when ping exits. */
function pingUntilReply(
  ns: string,
  ip: string,
  deadlineS: number,
): { done: Promise<boolean>; exited: () => boolean } {
  const child = spawn(
    "ip",
    ["netns", "exec", ns, "ping", "-n", "-q", "-c", "1", "-i", "0.002", "-w", String(deadlineS), ip],
    {
      stdio: "ignore",
    },
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

async function mac(ns: string, dev: string): Promise<string> {
  const [l] = await ipJson<{ address: string }[]>(["link", "show", "dev", dev], { name: ns });
  if (!l) throw new Error(`no ${dev} in ${ns}`);
  return l.address;
}

/** Scenario 2: hot connect/disconnect latency on existing interfaces. */
export async function hotLinks(opts: {
  ops: number;
  pairs: number;
  baselineOps: number;
  trafficSample: number;
}): Promise<ScenarioResult> {
  return scoped(async () => {
    const { t, client, switchNetns, bridge } = await startEnv();
    const labs = t.agent.labs;
    const P = opts.pairs;
    const topo = await makeTopology(P, "bhl");
    await labs.putLab("hot", { ...topo.spec, links: [] });
    const end = (j: number) => `${topo.ifaces[j]!.node}:${topo.ifaces[j]!.name}`;
    const connect = (p: number) => labs.addLink("hot", { a: end(2 * p), b: end(2 * p + 1), id: `h${p}` });
    const disconnect = (p: number) => labs.removeLink("hot", `h${p}`);
    for (let p = 0; p < Math.min(P, 10); p++) {
      await connect(p);
      await disconnect(p);
    }

    const conn: number[] = [];
    const disc: number[] = [];
    for (let i = 0; i < opts.ops; i++) {
      const p = Math.floor(i / 2) % P;
      const t0 = now();
      if (i % 2 === 0) {
        await connect(p);
        conn.push(now() - t0);
      } else {
        await disconnect(p);
        disc.push(now() - t0);
      }
    }

    // Until traffic passes: static neighbours (no ARP timer in the way), a ping every 2 ms
    // started before the connect, time until its first reply.
    const sample = Math.min(opts.trafficSample, P, 250);
    const byNs = new Map<string, string[][]>();
    for (let p = 0; p < sample; p++) {
      for (const [k, j] of [
        [1, 2 * p],
        [2, 2 * p + 1],
      ] as const) {
        const f = topo.ifaces[j]!;
        const o = topo.ifaces[j === 2 * p ? 2 * p + 1 : 2 * p]!;
        const list = byNs.get(f.netns) ?? [];
        list.push(["addr", "add", `198.18.${p}.${k}/24`, "dev", f.name]);
        list.push([
          "neigh",
          "replace",
          `198.18.${p}.${3 - k}`,
          "lladdr",
          await mac(o.netns, o.name),
          "dev",
          f.name,
          "nud",
          "permanent",
        ]);
        byNs.set(f.netns, list);
      }
    }
    for (const [ns, l] of byNs) await ipBatch(l, { netns: { name: ns } });
    const applied: number[] = [];
    const traffic: number[] = [];
    let leaked = 0;
    for (let p = 0; p < sample; p++) {
      const pinger = pingUntilReply(topo.ifaces[2 * p]!.netns, `198.18.${p}.2`, 3);
      await sleep(30);
      if (pinger.exited()) leaked++;
      const t0 = now();
      await connect(p);
      applied.push(now() - t0);
      const ok = await pinger.done;
      if (ok) traffic.push(now() - t0);
      await disconnect(p);
    }

    // Floor and baseline on ports of their own (retagging the agent's would be drift it repairs).
    const fTopo = await makeTopology(P, "bhf");
    const fIfaces: FloorIface[] = fTopo.ifaces.map((f, j) => ({
      ...f,
      host: `bh${j}`,
      mtu: 9000,
      tag: 2000 + j,
      group: 4243,
      marks: { bench_kind: "node" },
    }));
    const floor = new BatchedSwitch(client, switchNetns, bridge);
    await floor.provision(fIfaces);
    const base = new PerProcessSwitch(t.ovs.remote, switchNetns, bridge);
    const measure = async (n: number, retag: (a: string, b: string, tag: number) => Promise<void>) => {
      const c: number[] = [];
      const d: number[] = [];
      for (let i = 0; i < n; i++) {
        const p = Math.floor(i / 2) % P;
        const [a, b] = [fIfaces[2 * p]!.host, fIfaces[2 * p + 1]!.host];
        const r = await timed(() => retag(a, b, i % 2 === 0 ? 500 + (p % 400) : 2000 + 2 * p));
        (i % 2 === 0 ? c : d).push(r.ms);
      }
      return { c, d, all: [...c, ...d] };
    };
    const fl = await measure(Math.min(opts.ops, 1000), (a, b, tag) => floor.retagPair(a, b, tag));
    const fnw = await measure(Math.min(opts.ops, 1000), (a, b, tag) => floor.retagPair(a, b, tag, false));
    const bl = await measure(opts.baselineOps, (a, b, tag) => base.retagPair(a, b, tag));

    const all = summary([...conn, ...disc]);
    const c = summary(conn);
    const d = summary(disc);
    const fa = summary(fl.all);
    const ba = summary(bl.all);
    const figures = [
      figure(
        {
          name: "connect/disconnect p50 (until applied)",
          unit: "ms",
          agent: all.p50,
          baseline: ba.p50,
          floor: fa.p50,
          target: "p50 <= 2 ms",
        },
        (f) => f.agent <= 2,
      ),
      figure({
        name: "connect/disconnect p99 (until applied)",
        unit: "ms",
        agent: all.p99,
        baseline: ba.p99,
        floor: fa.p99,
      }),
      figure({
        name: "retag txn p50 without waiting for ovs-vswitchd",
        unit: "ms",
        agent: summary(fnw.all).p50,
        note: "the floor's transaction alone: the rest of the floor is ovs-vswitchd applying it",
      }),
      figure({
        name: "connect p50",
        unit: "ms",
        agent: c.p50,
        baseline: summary(bl.c).p50,
        floor: summary(fl.c).p50,
      }),
      figure({
        name: "disconnect p50",
        unit: "ms",
        agent: d.p50,
        baseline: summary(bl.d).p50,
        floor: summary(fl.d).p50,
      }),
    ];
    if (traffic.length > 0) {
      const tr = summary(traffic);
      figures.push(
        figure({
          name: `connect until a ping passes p50 (${traffic.length}/${sample} sampled)`,
          unit: "ms",
          agent: tr.p50,
          note: `p99 ${tr.p99.toFixed(1)} ms; connect calls in the sample took p50 ${summary(applied).p50.toFixed(2)} ms; ping every 2 ms, so +-2 ms`,
        }),
      );
    }
    return {
      id: 2,
      name: `hot connect/disconnect over ${opts.ops} ops on ${2 * P} interfaces`,
      status: "ran",
      params: {
        ops: opts.ops,
        interfaces: 2 * P,
        baseline_ops: opts.baselineOps,
        floor_ops: fl.all.length,
        traffic_sample: sample,
        leaked_before_connect: leaked,
      },
      figures,
      phases: { agent_connect: c, agent_disconnect: d, floor: fa, baseline: ba },
    };
  });
}
