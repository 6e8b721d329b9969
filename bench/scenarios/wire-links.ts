import { WIRE_COOKIE } from "../../src/backends/ovs/flows/flow-table.js";
import type { LinkMode } from "../../src/model/records.js";
import { type FlowMod, OpenflowClient } from "../../src/openflow/index.js";
import { PerProcessSwitch } from "../baseline/per-process.js";
import { onCleanup, scoped } from "../lib/cleanup.js";
import { type BenchEnv, startEnv } from "../lib/env.js";
import { alternate, floorPairs, type HotKind, pingOnce, retagKind, staticNeighbours } from "../lib/hot.js";
import { PhaseProfiler } from "../lib/profile.js";
import { figure, type ScenarioResult } from "../lib/report.js";
import { now, summary, timed } from "../lib/stats.js";
import { makeTopology, type Topology } from "../lib/topology.js";

/** The floor's flows: a cookie outside the agent's mark, so the agent never sees them as drift. */
const RAW_COOKIE = 0xbe4c_0000_0000_0001n;
const RAW_PRIORITY = 100;

/** A connection of the bench's own to the bridge's `<bridge>.mgmt`, closed at cleanup. */
async function openflow(env: BenchEnv): Promise<OpenflowClient> {
  const of = await OpenflowClient.connect({
    target: `unix:${env.t.ovs.dir}/${env.bridge}.mgmt`,
    reconnect: false,
  });
  onCleanup("bench OpenFlow connection", () => of.close());
  return of;
}

/** Link id and end strings of pair p of a topology. */
function pairLink(topo: Topology, p: number, id: string, mode: LinkMode) {
  const end = (j: number) => `${topo.ifaces[j]!.node}:${topo.ifaces[j]!.name}`;
  return { a: end(2 * p), b: end(2 * p + 1), id, mode };
}

/**
 * The raw floor of a wire: the two FLOW_MODs (and, to disconnect, the two strict deletes) plus
 * the barrier, on the floor's own ports, with the project's OpenFlow client.
 */
function rawKind(env: BenchEnv, of: OpenflowClient, host: (p: number) => [string, string]): HotKind {
  const ofport = (name: string) => {
    const n = env.client.interfaceByName(name)?.ofport;
    if (n === undefined || n <= 0) throw new Error(`floor port ${name} has no OpenFlow number`);
    return n;
  };
  const flow = (from: number, to: number): FlowMod => ({
    command: "add",
    cookie: RAW_COOKIE,
    priority: RAW_PRIORITY,
    match: { inPort: from },
    actions: [{ output: to }],
  });
  const del = (from: number): FlowMod => ({
    command: "delete-strict",
    cookie: RAW_COOKIE,
    priority: RAW_PRIORITY,
    match: { inPort: from },
  });
  const ports = (p: number) => host(p).map(ofport) as [number, number];
  return {
    connect: (p) => {
      const [a, b] = ports(p);
      return of.apply([flow(a, b), flow(b, a)]);
    },
    disconnect: (p) => {
      const [a, b] = ports(p);
      return of.apply([del(a), del(b)]);
    },
  };
}

/**
 * Scenario 12: hot connect/disconnect of a wire link through the lab service (answered at the
 * barrier reply) and its floor, one op of each in turn, then a VLAN link on the same interfaces,
 * with the floor's ports on the same bridge (4 * pairs ports); baseline `ovs-vsctl set port` per end,
 * floor two FLOW_MODs + barrier. Then a sample of connects each followed at once by one ping.
 */
export async function hotWireLinks(opts: {
  ops: number;
  pairs: number;
  baselineOps: number;
  trafficSample: number;
}): Promise<ScenarioResult> {
  return scoped(async () => {
    const env = await startEnv();
    const { t, client, switchNetns, bridge } = env;
    const labs = t.agent.labs;
    const P = opts.pairs;
    const topo = await makeTopology(P, "bwl");
    await labs.putLab("wire", { ...topo.spec, links: [] });
    const agentKind = (mode: LinkMode): HotKind => ({
      connect: (p) => labs.addLink("wire", pairLink(topo, p, `${mode}${p}`, mode)),
      disconnect: (p) => labs.removeLink("wire", `${mode}${p}`),
    });
    const wire = agentKind("wire");
    const vlan = agentKind("vlan");
    const { host } = await floorPairs(client, switchNetns, bridge, P, "bwf");
    const of = await openflow(env);
    const raw = rawKind(env, of, host);
    const ports = client.ports().length;
    // Warm-up (JIT, the first OpenFlow round, the NORMAL flow the first wire installs).
    await alternate(2 * Math.min(P, 10), Math.min(P, 10), [wire, vlan, raw]);

    // Wires and their floor in turn, the VLAN link apart: a retag's bridge reconfiguration keeps
    // ovs-vswitchd busy after it is applied, and delayed the OpenFlow op after it (4 ms -> 17 ms).
    const [w, r] = await alternate(opts.ops, P, [wire, raw]);
    const [v] = await alternate(opts.ops, P, [vlan]);
    if (!w || !v || !r) throw new Error("no samples");
    // Where a wire op's time goes, measured alone after the timed ops: the flows (the backend's
    // wire capability, until the barrier reply) and the durable write of the lab record.
    const prof = new PhaseProfiler();
    prof.wrap(t.agent.services.backend.wire ?? {}, ["connect", "disconnect"], "wire");
    const store = t.agent.store as unknown as { saveLab: (rec: unknown) => Promise<void> };
    const saveLab = store.saveLab;
    let saveMs = 0;
    store.saveLab = async (rec) => {
      const t0 = now();
      try {
        await saveLab.call(t.agent.store, rec);
      } finally {
        saveMs += now() - t0;
      }
    };
    const profOps = Math.min(opts.ops, 100);
    try {
      await alternate(profOps, P, [wire]);
    } finally {
      prof.unwrapAll();
      delete (store as { saveLab?: unknown }).saveLab;
    }
    const inBackend = prof.snapshot();
    const base = new PerProcessSwitch(t.ovs.remote, switchNetns, bridge);
    const [b] = await alternate(opts.baselineOps, P, [
      retagKind(host, (x, y, tag) => base.retagPair(x, y, tag)),
    ]);
    if (!b) throw new Error("no baseline samples");

    // One ping right after the answer (static neighbours, so no ARP in the way); one sent before
    // the connect must not pass (and leaves the switch's cache with the unconnected path).
    const sample = Math.min(opts.trafficSample, P, 250);
    const pingOf = await staticNeighbours(topo, sample);
    const passed = { wire: 0, vlan: 0 };
    let leaked = 0;
    for (let p = 0; p < sample; p++) {
      const { from, to } = pingOf(p);
      for (const [mode, kind] of [
        ["wire", wire],
        ["vlan", vlan],
      ] as const) {
        if (await pingOnce(from, to, 0.2)) leaked++;
        await kind.connect(p);
        if (await pingOnce(from, to, 1)) passed[mode]++;
        await kind.disconnect(p);
      }
    }

    const ws = summary(w.all);
    const vs = summary(v.all);
    const rs = summary(r.all);
    const bs = summary(b.all);
    const backendMs = (k: string) => {
      const x = inBackend[`wire.${k}`];
      return x ? (x.ms / Math.max(1, x.calls)).toFixed(2) : "-";
    };
    const figures = [
      figure(
        {
          name: "wire connect/disconnect p50 (until the barrier reply)",
          unit: "ms",
          agent: ws.p50,
          baseline: bs.p50,
          floor: rs.p50,
          target: "p50 <= 1 ms until the barrier reply",
          note: `floor: two FLOW_MODs + barrier; ${profOps} wire ops alone, mean: flows until the barrier ${backendMs("connect")} ms (connect), ${backendMs("disconnect")} ms (disconnect); durable lab record write ${(saveMs / profOps).toFixed(2)} ms`,
        },
        (f) => f.agent <= 1,
      ),
      figure({
        name: "wire connect/disconnect p99 (until the barrier reply)",
        unit: "ms",
        agent: ws.p99,
        baseline: bs.p99,
        floor: rs.p99,
      }),
      figure({
        name: "wire connect p50",
        unit: "ms",
        agent: summary(w.c).p50,
        baseline: summary(b.c).p50,
        floor: summary(r.c).p50,
      }),
      figure({
        name: "wire disconnect p50",
        unit: "ms",
        agent: summary(w.d).p50,
        baseline: summary(b.d).p50,
        floor: summary(r.d).p50,
      }),
      figure({
        name: "VLAN link connect/disconnect p50 (until applied), same ports",
        unit: "ms",
        agent: vs.p50,
        baseline: bs.p50,
      }),
      figure({
        name: "VLAN link connect/disconnect p99 (until applied), same ports",
        unit: "ms",
        agent: vs.p99,
        baseline: bs.p99,
      }),
      figure({
        name: "wire vs VLAN link p50 (baseline column: the VLAN link)",
        unit: "ms",
        agent: ws.p50,
        baseline: vs.p50,
        note: `p99 ${ws.p99.toFixed(2)} vs ${vs.p99.toFixed(2)} ms`,
      }),
    ];
    if (sample > 0) {
      figures.push(
        figure(
          {
            name: `wire: a ping right after the answer passed (of ${sample})`,
            unit: "",
            agent: passed.wire,
            target: "every ping passes",
            note: `VLAN link: ${passed.vlan} of ${sample}; pings before the connect that passed: ${leaked} of ${2 * sample}`,
          },
          (f) => f.agent === sample,
        ),
      );
    }
    return {
      id: 12,
      name: `hot wire links over ${opts.ops} ops each, ${ports} ports on the bridge`,
      status: "ran",
      params: {
        ops: opts.ops,
        ports_on_bridge: ports,
        baseline_ops: opts.baselineOps,
        traffic_sample: sample,
        pings_passed: passed,
        leaked_before_connect: leaked,
      },
      figures,
      phases: {
        wire: ws,
        wire_connect: summary(w.c),
        wire_disconnect: summary(w.d),
        vlan: vs,
        raw_flows: rs,
        baseline: bs,
        wire_alone: { ...inBackend, save_lab_ms: saveMs, ops: profOps },
      },
    };
  });
}

/**
 * Scenario 13: `putLab` and `deleteLab` of a lab whose links are all wires against the same lab
 * with VLAN links, on the same namespaces, alternating the order (wire, VLAN, VLAN, wire, ...).
 */
export async function wireLabLifecycle(links: number, rounds: number): Promise<ScenarioResult> {
  return scoped(async () => {
    const env = await startEnv();
    const labs = env.t.agent.labs;
    const of = await openflow(env);
    const wireFlows = async () => (await of.flows({ cookie: WIRE_COOKIE })).length;
    const spec = (topo: Topology, mode: LinkMode) => ({
      ...topo.spec,
      links: topo.spec.links.map((l) => ({ ...l, mode })),
    });
    const agentPorts = () => env.client.ports().filter((p) => p.name.startsWith("vh")).length;

    // Warm-up of both modes (JIT, the first OpenFlow round).
    const warm = await makeTopology(2, "bww");
    for (const mode of ["wire", "vlan"] as const) {
      await labs.putLab("warmup", spec(warm, mode));
      await labs.deleteLab("warmup");
    }

    // Fresh namespaces for every bring-up, as scenario 1: a lab put again right after its
    // deleteLab on the same namespaces is several times slower in either mode (kernel cleanup).
    const times = {
      wire: { up: [] as number[], down: [] as number[] },
      vlan: { up: [] as number[], down: [] as number[] },
    };
    const settle: number[] = [];
    const settleDel = { wire: [] as number[], vlan: [] as number[] };
    for (let r = 0; r < rounds; r++) {
      const order: LinkMode[] = r % 2 === 0 ? ["wire", "vlan"] : ["vlan", "wire"];
      for (const [k, mode] of order.entries()) {
        const topo = await makeTopology(links, `bw${2 * r + k}`);
        const lab = `lc${2 * r + k}`;
        // ovs-vswitchd caught up with the previous teardown before the clock starts.
        settle.push((await timed(() => env.client.transact([], { waitApplied: true }))).ms);
        const put = await timed(() => labs.putLab(lab, spec(topo, mode)));
        const up = put.value.lab.links.filter((l) => l.state === "up" && l.mode === mode).length;
        if (up !== links) throw new Error(`${mode}: ${up} of ${links} links up after putLab`);
        const flows = await wireFlows();
        if (flows !== (mode === "wire" ? 2 * links : 0))
          throw new Error(`${mode}: ${flows} wire flows on the switch after putLab`);
        // ... and with the lab's bring-up before deleteLab's: a wire lab's putLab answers on the
        // barrier, with ovs-vswitchd's own follow-up (tens of ms) still running, a VLAN lab's once
        // the bridge applied it. Its length is kept (settle_before_delete_ms).
        settleDel[mode].push((await timed(() => env.client.transact([], { waitApplied: true }))).ms);
        const del = await timed(() => labs.deleteLab(lab));
        if (agentPorts() !== 0) throw new Error(`${mode}: ${agentPorts()} ports left after deleteLab`);
        // deleteLab answers on commit, as for VLAN links; the flows' removal is sent before it
        // answers (on the agent's own OpenFlow connection) and applied once ovs-vswitchd has
        // closed the ports: polled for, with a deadline.
        const gone = Date.now() + 60_000;
        while ((await wireFlows()) !== 0) {
          if (Date.now() > gone) throw new Error(`${mode}: wire flows left 60 s after deleteLab`);
          await new Promise((r) => setTimeout(r, 20));
        }
        times[mode].up.push(put.ms);
        times[mode].down.push(del.ms);
      }
    }

    const med = (x: number[]) => summary(x).p50;
    const note = `floor column: the same lab with VLAN links in the same run; median of ${rounds} each, order alternated, fresh namespaces, ovs-vswitchd settled before each putLab and each deleteLab`;
    return {
      id: 13,
      name: `bring-up and teardown of a lab of ${links} wire links vs VLAN links`,
      status: "ran",
      params: { links, rounds },
      figures: [
        figure(
          {
            name: "putLab, wire links vs VLAN links",
            unit: "ms",
            agent: med(times.wire.up),
            floor: med(times.vlan.up),
            target: "<= 1.2x the VLAN lab",
            note,
          },
          (f) => (f.ratio_to_floor ?? Infinity) <= 1.2,
        ),
        figure(
          {
            name: "deleteLab, wire links vs VLAN links",
            unit: "ms",
            agent: med(times.wire.down),
            floor: med(times.vlan.down),
            target: "<= 1.2x the VLAN lab",
            note,
          },
          (f) => (f.ratio_to_floor ?? Infinity) <= 1.2,
        ),
      ],
      phases: { ...times, settle_before_put_ms: settle, settle_before_delete_ms: settleDel },
    };
  });
}
