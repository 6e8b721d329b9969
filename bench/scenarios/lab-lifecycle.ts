import { PerProcessSwitch } from "../baseline/per-process.js";
import { BatchedSwitch, type FloorIface } from "../floor/batched.js";
import { scoped } from "../lib/cleanup.js";
import { countPorts, startEnv } from "../lib/env.js";
import { PhaseProfiler } from "../lib/profile.js";
import { figure, type ScenarioResult } from "../lib/report.js";
import { timed } from "../lib/stats.js";
import { hostNames, makeTopology, type Topology } from "../lib/topology.js";

const MTU = 9000;
const FLOOR_GROUP = 4242;

/** The floor's and baseline's interfaces for a topology: link i's two ends share VLAN 100+i. */
function plainIfaces(topo: Topology, prefix: string) {
  const hosts = hostNames(prefix, topo.ifaces.length);
  return topo.ifaces.map((f, j) => ({
    ...f,
    host: hosts[j]!,
    tmp: `${prefix}t${j}`,
    mtu: MTU,
    tag: 100 + (Math.floor(j / 2) % 900),
    group: FLOOR_GROUP,
    marks: {
      bench_kind: "node",
      bench_lab: "floor",
      bench_node: f.node,
      bench_if: f.name,
      bench_iso: "1000",
    },
  }));
}

/** Scenarios 1 (provision a lab) and 3 (tear it down): agent vs baseline vs floor. */
export async function labLifecycle(links: number, baselineBudgetMs = 30_000): Promise<ScenarioResult[]> {
  return scoped(async () => {
    const env = await startEnv();
    const { t, client, switchNetns, bridge } = env;
    const labs = t.agent.labs;
    const floor = new BatchedSwitch(client, switchNetns, bridge);
    const base = new PerProcessSwitch(t.ovs.remote, switchNetns, bridge);

    // Warm-up (JIT, first ip/ovsdb round): a 2-link lab through the agent and the floor.
    const warm = await makeTopology(2, "bwu");
    await labs.putLab("warmup", warm.spec);
    await labs.deleteLab("warmup");
    const warmF = plainIfaces(warm, "wf") as FloorIface[];
    await floor.provision(warmF);
    await floor.deleteGroup(FLOOR_GROUP);
    await floor.removePorts(warmF.map((f) => f.host));

    // Agent.
    const topoA = await makeTopology(links, "bla");
    const prof = new PhaseProfiler();
    prof.wrap(t.agent.services.backend, ["provision", "connect", "transact", "teardown"], "backend");
    const put = await timed(() => labs.putLab("bench", topoA.spec));
    const provPhases = prof.snapshot();
    prof.reset();
    const up = put.value.lab.links.filter((l) => l.state === "up").length;
    if (up !== links) throw new Error(`agent: ${up} of ${links} links up after putLab`);
    const del = await timed(() => labs.deleteLab("bench"));
    const tearPhases = prof.snapshot();
    prof.unwrapAll();
    const left = client.ports().filter((p) => p.name.startsWith("vh")).length;
    if (left !== 0) throw new Error(`agent: ${left} ports left after deleteLab`);

    // Floor.
    const topoF = await makeTopology(links, "blf");
    const fIfaces = plainIfaces(topoF, "bf") as FloorIface[];
    const fProvVeth = await timed(() => floor.createVeths(fIfaces));
    const fProvOvs = await timed(() => floor.addPorts(fIfaces));
    const fHosts = fIfaces.map((f) => f.host);
    if (countPorts(client, fHosts) !== fHosts.length) throw new Error("floor: ports missing");
    const fDel = await timed(() => floor.deleteGroup(FLOOR_GROUP));
    const fDelOvs = await timed(() => floor.removePorts(fHosts));

    // Baseline.
    const topoB = await makeTopology(links, "blb");
    const bIfaces = plainIfaces(topoB, "bb");
    const bProvRun = await timed(() => base.provision(bIfaces, baselineBudgetMs));
    const bHosts = bIfaces.slice(0, bProvRun.value).map((f) => f.host);
    if (countPorts(client, bHosts) !== bHosts.length) throw new Error("baseline: ports missing");
    const bDelRun = await timed(() => base.teardown(bHosts, baselineBudgetMs));
    // Over budget: extrapolated linearly from what was done. Each ovs-vsctl gets slower as the
    // bridge grows, so this understates the baseline (the speed-ups are lower bounds).
    const bProv = { ms: (bProvRun.ms * bIfaces.length) / bProvRun.value };
    const bDel = { ms: (bDelRun.ms * bIfaces.length) / bDelRun.value };
    await base.teardown(bHosts.slice(bDelRun.value));
    const extrapolated = (done: number) =>
      done < bIfaces.length
        ? `baseline extrapolated from ${done} of ${bIfaces.length} interfaces (time budget)`
        : undefined;

    const ifaces = 2 * links;
    const floorProv = fProvVeth.ms + fProvOvs.ms;
    return [
      {
        id: 1,
        name: `provision a lab of ${links} links (${ifaces} interfaces, ${topoA.namespaces.length} namespaces)`,
        status: "ran",
        params: { links, interfaces: ifaces, namespaces: topoA.namespaces.length },
        figures: [
          figure(
            {
              name: "putLab",
              unit: "ms",
              agent: put.ms,
              baseline: bProv.ms,
              floor: floorProv,
              target: ">= 20x faster than baseline, <= 2x floor",
              note: extrapolated(bProvRun.value),
            },
            (f) => (f.speedup_vs_baseline ?? 0) >= 20 && (f.ratio_to_floor ?? Infinity) <= 2,
          ),
          figure({
            name: "putLab per interface",
            unit: "ms",
            agent: put.ms / ifaces,
            baseline: bProv.ms / ifaces,
            floor: floorProv / ifaces,
          }),
        ],
        phases: {
          agent: provPhases,
          floor: { ip_batch_ms: fProvVeth.ms, ovsdb_txn_ms: fProvOvs.ms },
        },
      },
      {
        id: 3,
        name: `tear down a lab of ${links} links`,
        status: "ran",
        params: { links, interfaces: ifaces },
        figures: [
          figure(
            {
              name: "deleteLab",
              unit: "ms",
              agent: del.ms,
              baseline: bDel.ms,
              floor: fDel.ms,
              target: "<= 2x `ip link delete group` floor",
              note: [
                `floor is the kernel call alone; removing the ports in one more transaction took ${fDelOvs.ms.toFixed(1)} ms`,
                extrapolated(bDelRun.value),
              ]
                .filter(Boolean)
                .join("; "),
            },
            (f) => (f.ratio_to_floor ?? Infinity) <= 2,
          ),
        ],
        phases: { agent: tearPhases, floor: { ip_link_delete_group_ms: fDel.ms, ovsdb_txn_ms: fDelOvs.ms } },
      },
    ];
  });
}
