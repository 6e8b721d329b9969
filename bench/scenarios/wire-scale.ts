import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { WIRE_COOKIE } from "../../src/backends/ovs/flows/flow-table.js";
import { OpenflowClient } from "../../src/openflow/index.js";
import { readPid } from "../../test/harness/ovs-instance.js";
import { onCleanup, scoped } from "../lib/cleanup.js";
import { startEnv } from "../lib/env.js";
import { pingOnce, staticNeighbours } from "../lib/hot.js";
import { figure, type ScenarioResult } from "../lib/report.js";
import { summary, timed } from "../lib/stats.js";
import { makeTopology } from "../lib/topology.js";

/** Interfaces per namespace: 5000 links are 10000 interfaces, in 500 namespaces. */
const PER_NODE = 20;
/** How long ovs-vswitchd may take to catch up with the previous size's teardown. */
const SETTLE_MS = 600_000;
/** Links whose traffic is checked after each bring-up and hot connect. */
const CHECKED = 3;

/** ovs-vswitchd's resident memory (kB) of the private instance. */
async function vswitchdRssKb(dir: string): Promise<number> {
  const pid = await readPid(join(dir, "ovs-vswitchd.pid"));
  if (pid === undefined) throw new Error("no ovs-vswitchd pid");
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
}

/**
 * Scenario 17: wire links beyond the VLAN space. One agent with shared isolation (unlinked ports
 * park in one VLAN with a drop flow each, wires need no VLAN) on a private userspace-datapath
 * OVS; for each size, a fresh lab of that many wire links (PER_NODE interfaces per namespace) is
 * put, checked (every link up, two flows each, pings across the first links), hot-connected
 * `ops` times (one link removed and added again, until the barrier reply; a ping right after
 * the last one), measured for ovs-vswitchd's memory, and deleted. Figures, no target: the
 * issue asks for them at 400, 2000 and 5000 links.
 */
export async function wireScale(sizes: readonly number[], ops: number): Promise<ScenarioResult> {
  return scoped(async () => {
    const env = await startEnv({ isolation: "shared" });
    const labs = env.t.agent.labs;
    const of = await OpenflowClient.connect({ target: `unix:${env.t.ovs.dir}/${env.bridge}.mgmt` });
    onCleanup("bench OpenFlow connection", async () => of.close());
    const rssIdle = await vswitchdRssKb(env.t.ovs.dir);
    const figures = [];
    const rows: Record<string, unknown>[] = [];
    for (const [k, links] of sizes.entries()) {
      const topo = await makeTopology(links, `bs${k}`, PER_NODE);
      const spec = { ...topo.spec, links: topo.spec.links.map((l) => ({ ...l, mode: "wire" as const })) };
      const lab = `scale${k}`;
      // ovs-vswitchd goes on closing a deleted lab's ports for seconds after deleteLab answers.
      await env.client.transact([], { waitApplied: true, timeoutMs: SETTLE_MS });
      const put = await timed(() => labs.putLab(lab, spec));
      const up = put.value.lab.links.filter((l) => l.state === "up").length;
      if (up !== links) throw new Error(`${links} wire links: ${up} up after putLab`);
      const flows = (await of.flows({ cookie: WIRE_COOKIE })).length;
      if (flows !== 2 * links) throw new Error(`${links} wire links: ${flows} wire flows, not ${2 * links}`);
      const where = await staticNeighbours(topo, CHECKED);
      for (let p = 0; p < CHECKED; p++) {
        const { from, to } = where(p);
        if (!(await pingOnce(from, to, 5)))
          throw new Error(`${links} wire links: link l${p} carries no ping`);
      }
      const rss = await vswitchdRssKb(env.t.ovs.dir);
      const hot: number[] = [];
      const link = spec.links[0]!;
      for (let i = 0; i < ops; i++) {
        await labs.removeLink(lab, link.id!);
        hot.push((await timed(() => labs.addLink(lab, link))).ms);
      }
      const { from, to } = where(0);
      if (!(await pingOnce(from, to, 5))) throw new Error(`${links} wire links: no ping after hot connects`);
      const del = await timed(() => labs.deleteLab(lab));
      const h = summary(hot);
      process.stderr.write(
        `bench: ${links} wire links up in ${Math.round(put.ms)} ms, down in ${Math.round(del.ms)} ms\n`,
      );
      rows.push({ links, up_ms: put.ms, down_ms: del.ms, hot_p50_ms: h.p50, hot_p99_ms: h.p99, rss_kb: rss });
      figures.push(
        figure({ name: `${links} wire links: putLab (${2 * links} ports)`, unit: "ms", agent: put.ms }),
        figure({ name: `${links} wire links: deleteLab`, unit: "ms", agent: del.ms }),
        figure({
          name: `${links} wire links: hot connect p50 (until the barrier reply)`,
          unit: "ms",
          agent: h.p50,
          note: `p99 ${h.p99.toFixed(1)} ms of ${ops}; a ping right after the last one passed`,
        }),
        figure({
          name: `${links} wire links: ovs-vswitchd VmRSS`,
          unit: "MB",
          agent: rss / 1024,
          note: `${(rssIdle / 1024).toFixed(0)} MB with an empty bridge`,
        }),
      );
    }
    return {
      id: 17,
      name: "wire links at scale (shared isolation)",
      status: "ran",
      params: { sizes, ops, perNode: PER_NODE, rows },
      figures,
    };
  });
}
