import { existsSync } from "node:fs";
import type { OvnBackend } from "../../src/backends/ovn/ovn-backend.js";
import { run } from "../../src/common/exec.js";
import type { LabSpec } from "../../src/model/views.js";
import { addAddress, NetnsPool } from "../../test/harness/netns.js";
import { until } from "../../test/harness/ovn-hosts.js";
import { ping } from "../../test/harness/traffic.js";
import { OvnMoveFloor } from "../floor/ovn-move.js";
import { onCleanup, scoped } from "../lib/cleanup.js";
import { startOvnAgents } from "../lib/ovn.js";
import { figure, type ScenarioResult } from "../lib/report.js";
import { now, summary } from "../lib/stats.js";

const NAME = "ovn: cross-host hot rewire";

/**
 * Scenario 16: a link from node x (host hv1) rewired between y1 and y2 (host hv2) and back, each
 * a PUT of the lab answered once both chassis applied it (the moved ports claimed in SB, then a
 * second nb_cfg bumped after the claims reported in SB Chassis_Private.nb_cfg, the ports up).
 * Baseline: the same move by one `ovn-nbctl --wait=hv` process each. Floor: OvnMoveFloor, the
 * same transactions and waits without the agent.
 */
export async function ovnRewire(ops: number): Promise<ScenarioResult> {
  if (!existsSync("/usr/bin/ovn-northd") || !existsSync("/usr/bin/ovn-controller")) {
    const reason = "OVN is not installed (ovn-central, ovn-host: bash scripts/host-setup.sh --docker)";
    return { id: 16, name: NAME, status: "skipped", reason, figures: [] };
  }
  return scoped(async () => {
    const { ovn, agents } = await startOvnAgents(2);
    const pool = new NetnsPool("bovn");
    onCleanup("node namespaces", () => pool.destroyAll());
    const [x, y1, y2] = (await pool.create(3)) as [string, string, string];
    const backend = agents[0]!.services.backend as OvnBackend;
    await until("both chassis", () => ["hv1", "hv2"].every((h) => backend.knownHosts().has(h)), 60_000);
    const spec = (peer: string): LabSpec => ({
      nodes: [
        { name: "x", netns: x, interfaces: [{ name: "eth1" }] },
        { name: "y1", netns: y1, host: "hv2", interfaces: [{ name: "eth1" }] },
        { name: "y2", netns: y2, host: "hv2", interfaces: [{ name: "eth1" }] },
      ],
      links: [{ id: "L", a: "x:eth1", b: `${peer}:eth1` }],
    });
    const labs = agents[0]!.services.labs;
    await labs.putLab("rw", spec("y1"));
    await until(
      "every port bound",
      () => labs.getLab("rw").nodes.every((n) => n.interfaces.every((i) => i.binding?.up)),
      60_000,
    );
    // Traffic right after each answer: static neighbours (no ARP in the way), one ping each.
    const mac = async (netns: string) =>
      (await run("ip", ["netns", "exec", netns, "cat", "/sys/class/net/eth1/address"])).stdout.trim();
    const ip: Record<string, string> = { x: "198.19.9.1", y1: "198.19.9.2", y2: "198.19.9.3" };
    const nsOf: Record<string, string> = { x, y1, y2 };
    for (const n of ["x", "y1", "y2"]) await addAddress(nsOf[n]!, "eth1", `${ip[n]}/24`);
    for (const peer of ["y1", "y2"]) {
      await run("ip", [
        "-n",
        x,
        "neigh",
        "replace",
        ip[peer]!,
        "lladdr",
        await mac(nsOf[peer]!),
        "dev",
        "eth1",
      ]);
      await run("ip", ["-n", nsOf[peer]!, "neigh", "replace", ip.x!, "lladdr", await mac(x), "dev", "eth1"]);
    }
    let firstPing = 0;
    const ms: number[] = [];
    const pending: string[] = [];
    const chassis: number[] = [];
    for (let i = 0; i < ops; i++) {
      const t0 = now();
      const peer = i % 2 === 0 ? "y2" : "y1";
      await labs.putLab("rw", spec(peer));
      ms.push(now() - t0);
      if (await ping(x, ip[peer]!, { timeoutS: 1 })) firstPing++;
      const applied = agents[0]!.ovnLabs?.lastApplied;
      pending.push(...(applied?.pending ?? []));
      if (applied) chassis.push(applied.chassisMs);
    }

    // Baseline: the same move (the peer's port between the link's switch and the lab's, enabled
    // or not) with ovn-nbctl, one process per rewire, --wait=hv.
    const uuidOf = async (name: string) =>
      (
        await ovn.central.nbctl([
          "--bare",
          "--columns=_uuid",
          "find",
          "Logical_Switch_Port",
          `name="${name}"`,
        ])
      ).trim();
    const p1 = await uuidOf("an:rw:y1:eth1");
    const p2 = await uuidOf("an:rw:y2:eth1");
    // After an even number of agent rewires the link holds y1 again.
    let linked = ops % 2 === 0 ? p1 : p2;
    let parked = linked === p1 ? p2 : p1;
    const base: number[] = [];
    const baseOps = Math.min(ops, 20);
    for (let i = 0; i < baseOps; i++) {
      const t0 = now();
      await ovn.central.nbctl([
        "--wait=hv",
        "remove",
        "Logical_Switch",
        "an:rw:L",
        "ports",
        linked,
        "--",
        "add",
        "Logical_Switch",
        "an:rw:L",
        "ports",
        parked,
        "--",
        "remove",
        "Logical_Switch",
        "an:rw",
        "ports",
        parked,
        "--",
        "add",
        "Logical_Switch",
        "an:rw",
        "ports",
        linked,
        "--",
        "set",
        "Logical_Switch_Port",
        linked,
        "enabled=false",
        "--",
        "set",
        "Logical_Switch_Port",
        parked,
        "enabled=true",
      ]);
      base.push(now() - t0);
      [linked, parked] = [parked, linked];
    }

    // Floor: the same move on the project's OVSDB client with the agent's waits and nothing else.
    const floor = await OvnMoveFloor.connect(ovn.central.nbRemote, ovn.central.sbRemote);
    onCleanup("the floor's NB and SB clients", () => floor.close());
    let [inPort, outPort] =
      linked === p1 ? ["an:rw:y2:eth1", "an:rw:y1:eth1"] : ["an:rw:y1:eth1", "an:rw:y2:eth1"];
    const floorMs: number[] = [];
    for (let i = 0; i < baseOps; i++) {
      const t0 = now();
      await floor.move({ link: "an:rw:L", inPort, inFrom: "an:rw", outPort, outTo: "an:rw" }, ["hv1", "hv2"]);
      floorMs.push(now() - t0);
      [inPort, outPort] = [outPort, inPort];
    }
    const s = summary(ms);
    const b = summary(base);
    const f = summary(floorMs);
    return {
      id: 16,
      name: NAME,
      status: "ran",
      params: { ops, baselineOps: baseOps, hosts: 2 },
      figures: [
        figure(
          {
            name: "cross-host rewire p50 (until both chassis applied)",
            unit: "ms",
            agent: s.p50,
            baseline: b.p50,
            floor: f.p50,
            target: "p50 <= 10 ms",
            note: `p99 ${s.p99.toFixed(1)} ms; the moved ports claimed, a second nb_cfg bumped and both chassis at it at p50 ${summary(chassis).p50.toFixed(1)} ms, then their bindings up; answered with something pending ${pending.length} times; the first ping after the answer passed ${firstPing} of ${ops} times; floor: OVN's own path (the move, the claim, a second nb_cfg, both chassis at it) on the project's OVSDB client, p99 ${f.p99.toFixed(1)} ms`,
          },
          (f) => f.agent <= 10,
        ),
      ],
    };
  });
}
