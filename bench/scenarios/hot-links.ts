import { setTimeout as sleep } from "node:timers/promises";
import { PerProcessSwitch } from "../baseline/per-process.js";
import { scoped } from "../lib/cleanup.js";
import { startEnv } from "../lib/env.js";
import { alternate, floorPairs, pingUntilReply, retagKind, staticNeighbours } from "../lib/hot.js";
import { figure, type ScenarioResult } from "../lib/report.js";
import { now, summary } from "../lib/stats.js";
import { makeTopology } from "../lib/topology.js";

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

    const [agentOps] = await alternate(opts.ops, P, [{ connect, disconnect }]);
    const conn = agentOps!.c;
    const disc = agentOps!.d;

    // Until traffic passes: static neighbours (no ARP timer in the way), a ping every 2 ms
    // started before the connect, time until its first reply.
    const sample = Math.min(opts.trafficSample, P, 250);
    const pingOf = await staticNeighbours(topo, sample);
    const applied: number[] = [];
    const traffic: number[] = [];
    let leaked = 0;
    for (let p = 0; p < sample; p++) {
      const { from, to } = pingOf(p);
      const pinger = pingUntilReply(from, to, 3);
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
    const { floor, host } = await floorPairs(client, switchNetns, bridge, P, "bhf");
    const base = new PerProcessSwitch(t.ovs.remote, switchNetns, bridge);
    const fOps = Math.min(opts.ops, 1000);
    const [fl] = await alternate(fOps, P, [retagKind(host, (a, b, tag) => floor.retagPair(a, b, tag))]);
    const [fnw] = await alternate(fOps, P, [
      retagKind(host, (a, b, tag) => floor.retagPair(a, b, tag, false)),
    ]);
    const [bl] = await alternate(opts.baselineOps, P, [
      retagKind(host, (a, b, tag) => base.retagPair(a, b, tag)),
    ]);
    if (!fl || !fnw || !bl) throw new Error("no floor or baseline samples");

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
