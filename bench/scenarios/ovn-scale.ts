import { existsSync } from "node:fs";
import type { OvnBackend } from "../../src/backends/ovn/ovn-backend.js";
import type { LabSpec, LabView } from "../../src/model/views.js";
import { until } from "../../test/harness/ovn-hosts.js";
import { scoped } from "../lib/cleanup.js";
import { startEnv } from "../lib/env.js";
import { startOvnAgents } from "../lib/ovn.js";
import { figure, type ScenarioResult } from "../lib/report.js";
import { timed } from "../lib/stats.js";
import { makeTopology } from "../lib/topology.js";

const NAME = "ovn: a lab across three hosts";
const HOSTS = 3;

/** Every interface bound and up, every link up: what "the lab works" means for the clock. */
function allUp(v: LabView): boolean {
  return (
    v.nodes.every((n) => n.interfaces.every((i) => i.binding?.up === true)) &&
    v.links.every((l) => l.state === "up")
  );
}

/**
 * Scenario 18: bring-up of `perHost` links per host on three simulated hosts (a private OVS,
 * ovn-controller and agent each, central NB/SB/northd), nodes placed round-robin so most links
 * cross hosts, put through one agent: until its answer (the lab in NB and every chassis applied
 * it), and until every binding and link is up. Beside it, in the same run, the same lab (fresh
 * namespaces) on one host with the ovs backend. No target; the issue asks for the figures.
 */
export async function ovnScale(perHost: number): Promise<ScenarioResult> {
  if (!existsSync("/usr/bin/ovn-northd") || !existsSync("/usr/bin/ovn-controller")) {
    const reason = "OVN is not installed (ovn-central, ovn-host: bash scripts/host-setup.sh --docker)";
    return { id: 18, name: NAME, status: "skipped", reason, figures: [] };
  }
  const links = HOSTS * perHost;
  return scoped(async () => {
    // The ovs backend's figure first, on its own private OVS (it is gone before OVN starts).
    const single = await scoped(async () => {
      const env = await startEnv();
      const topo = await makeTopology(links, "bos");
      const put = await timed(() => env.t.agent.labs.putLab("one", topo.spec));
      const up = put.value.lab.links.filter((l) => l.state === "up").length;
      if (up !== links) throw new Error(`ovs backend: ${up} of ${links} links up after putLab`);
      const del = await timed(() => env.t.agent.labs.deleteLab("one"));
      return { up: put.ms, down: del.ms };
    });

    const { ovn, agents } = await startOvnAgents(HOSTS);
    const backend = agents[0]!.services.backend as OvnBackend;
    const chassis = ovn.hosts.map((h) => h.chassis);
    await until("every chassis", () => chassis.every((c) => backend.knownHosts().has(c)), 60_000);
    const topo = await makeTopology(links, "bov");
    const spec: LabSpec = {
      ...topo.spec,
      nodes: topo.spec.nodes.map((n, k) => ({ ...n, host: chassis[k % HOSTS] })),
    };
    const where = new Map(spec.nodes.map((n) => [n.name, n.host]));
    const crossing = spec.links.filter(
      (l) => where.get(l.a.split(":")[0]!) !== where.get(l.b.split(":")[0]!),
    ).length;
    const labs = agents[0]!.services.labs;
    const started = performance.now();
    const put = await timed(() => labs.putLab("wide", spec));
    await until("every binding and link up", () => allUp(labs.getLab("wide")), 600_000);
    const allUpMs = performance.now() - started;
    const pending = agents[0]!.ovnLabs?.lastApplied?.pending ?? [];
    const del = await timed(() => labs.deleteLab("wide"));
    const note = `${links} links (${crossing} across hosts), ${2 * links} interfaces on ${HOSTS} hosts; floor column: the same lab on one host with the ovs backend, same run`;
    return {
      id: 18,
      name: NAME,
      status: "ran",
      params: { hosts: HOSTS, perHost, links, crossing },
      figures: [
        figure({
          name: `putLab of ${HOSTS} x ${perHost} links, until answered (every chassis applied)`,
          unit: "ms",
          agent: put.ms,
          floor: single.up,
          note: `${note}; answered with ${pending.length} chassis or ports still pending`,
        }),
        figure({
          name: `putLab of ${HOSTS} x ${perHost} links, until every binding and link is up`,
          unit: "ms",
          agent: allUpMs,
          floor: single.up,
          note,
        }),
        figure({
          name: `deleteLab of ${HOSTS} x ${perHost} links`,
          unit: "ms",
          agent: del.ms,
          floor: single.down,
          note,
        }),
      ],
    };
  });
}
