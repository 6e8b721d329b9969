import { AgentError } from "../../../common/errors.js";
import { createVeths, deleteGroup, deleteLinks, disableTxOffload } from "../../../link/index.js";
import { nodeMac } from "../../../model/derived-names.js";
import type { LinkEnd } from "../../../model/ends.js";
import type { LabRecord } from "../../../model/records.js";
import type { PortRow } from "../../../ovsdb/index.js";
import type { CarrierControl } from "../carrier/carrier-control.js";
import type { Shaper } from "../shaping/shaper.js";
import type { OvsSwitch } from "../switch/ovs-switch.js";
import { OWNER, portKind } from "../switch/ownership.js";
import { isolateAgain, type NewPort } from "../switch/port-ops.js";

/**
 * A lab's node interfaces: a veth each, whose host end is an access port in a VLAN of its own
 * (isolated) until a link joins it; removed with the lab.
 */
export class NodePorts {
  constructor(
    private readonly sw: OvsSwitch,
    private readonly carrier: CarrierControl,
    private readonly shaper: Shaper,
  ) {}

  /** `numbered`: OpenFlow numbers promised to some of the ports (flows may name them already). */
  async provision(
    lab: LabRecord,
    ends: readonly LinkEnd[],
    numbered?: ReadonlyMap<string, number>,
  ): Promise<void> {
    // Ports ovs-vswitchd is still closing (a lab torn down just before, by this agent or a
    // predecessor) must be gone first: closing one restores the flags it changed on a device *of
    // that name*, which would set the new host ends down behind the agent's back.
    await this.sw.client.caughtUp(this.sw.closeBudgetMs);
    const isolated = this.sw.vlans.allocateMany("isolated", ends.length);
    let made = false;
    try {
      await createVeths(
        ends.map(({ node, iface }) => {
          if (!node.netns) throw new AgentError("BAD_REQUEST", `node ${node.name} has no network namespace`);
          return {
            host: iface.hostPort,
            peer: iface.name,
            netns: node.netns,
            netnsId: node.netnsId,
            mtu: iface.mtu,
            group: lab.group,
            mac: nodeMac(lab.lab, node.name, iface.name),
          };
        }),
        { netns: this.sw.hostNs },
      );
      made = true;
      // The nodes' offload setting and the switch ports are independent: both at once.
      const [offload, ports] = await Promise.allSettled([
        this.sw.datapath === "netdev"
          ? disableTxOffload(ends.map((e) => ({ dev: e.iface.name, netns: e.node.netns })))
          : undefined,
        this.addPorts(lab, ends, isolated, numbered),
      ]);
      if (offload.status === "rejected") {
        if (ports.status === "fulfilled")
          await this.sw.takeOffBridge(ends.map((e) => this.sw.port(e.iface.hostPort)));
        throw offload.reason;
      }
      if (ports.status === "rejected") throw ports.reason;
    } catch (e) {
      for (const v of isolated) this.sw.vlans.release(v);
      // createVeths undoes its own failure: a device by that name then is someone else's.
      if (made)
        await deleteLinks(
          ends.map((e) => e.iface.hostPort),
          { ignoreMissing: true, netns: this.sw.hostNs },
        ).catch(() => undefined);
      throw e;
    }
    const down = ends.filter((e) => e.iface.carrier === "down");
    this.carrier.follow.setDesired(
      ends.filter((e) => e.iface.carrier === "up").map((e) => e.iface.hostPort),
      "up",
    );
    if (down.length > 0) await this.carrier.set(lab, down, "down");
  }

  /** Ports for host ends that exist in the kernel, each isolated in a VLAN allocated here. */
  async addPorts(
    lab: LabRecord,
    ends: readonly LinkEnd[],
    isolated?: readonly number[],
    numbered?: ReadonlyMap<string, number>,
  ): Promise<void> {
    const tags = isolated ?? this.sw.vlans.allocateMany("isolated", ends.length);
    try {
      await this.sw.addPortRows(
        ends.map((e, i) => ({
          ...nodePort(lab, e, this.sw.isolationMarks(tags[i]!), tags[i]!),
          ofportRequest: numbered?.get(e.iface.hostPort),
        })),
      );
    } catch (e) {
      if (!isolated) for (const v of tags) this.sw.vlans.release(v);
      throw e;
    }
  }

  async release(ends: readonly LinkEnd[]): Promise<void> {
    const hostPorts = ends.map((e) => e.iface.hostPort);
    this.carrier.follow.forget(hostPorts);
    this.shaper.forget(hostPorts);
    await this.sw.removePortRows(hostPorts.map((h) => this.sw.port(h)));
    await deleteLinks(hostPorts, { ignoreMissing: true, netns: this.sw.hostNs });
  }

  async teardown(lab: LabRecord): Promise<void> {
    const hostPorts = Object.values(lab.nodes).flatMap((n) =>
      Object.values(n.interfaces).map((i) => i.hostPort),
    );
    this.carrier.follow.forget(hostPorts);
    const isPlugin = (p: PortRow | undefined) => p !== undefined && portKind(p.external_ids) === "plugin";
    // Docker's interfaces stay: an impairment of theirs goes below; the lab's own die with their veths.
    const shapedStaying = hostPorts.filter((h) => this.shaper.isShaped(h) && isPlugin(this.sw.port(h)));
    this.shaper.forget(hostPorts);
    const mine = this.sw.client
      .ports()
      .filter((p) => p.external_ids[OWNER.lab] === lab.lab && portKind(p.external_ids) === "node");
    // One call removes every host veth of the lab (and their peers in the nodes).
    const devices = () => deleteGroup(lab.group, { netns: this.sw.hostNs, links: mine.length });
    if (this.sw.datapath === "system") {
      // The kernel datapath: ovs-vswitchd closes ports whose devices are still there quickly, but
      // devices that vanish under open ports cost it minutes (800 ports: 586 s against 23 s).
      await this.sw.removePortRows(mine, { timeoutMs: this.sw.closeBudgetMs });
      await devices();
    } else {
      // Userspace: ports and devices go at once; the answer comes once the removal is committed
      // (ovs-vswitchd closing hundreds of ports takes seconds; provisioning waits for that).
      await Promise.all([this.sw.removeOnCommit(mine), devices()]);
    }
    // Plugin nodes belong to Docker: they are only separated from the lab's links.
    const plugin = this.sw.client
      .ports()
      .filter((p) => p.external_ids[OWNER.lab] === lab.lab && isPlugin(p) && p.external_ids[OWNER.link]);
    await this.sw.transact(plugin.map(isolateAgain));
    await this.shaper.clear(shapedStaying);
  }
}

function nodePort(
  lab: LabRecord,
  { node, iface }: LinkEnd,
  isolationMarks: Record<string, string>,
  isolated: number,
): NewPort {
  return {
    name: iface.hostPort,
    tag: isolated,
    externalIds: {
      [OWNER.kind]: node.origin === "plugin" ? "plugin" : "node",
      [OWNER.lab]: lab.lab,
      [OWNER.node]: node.name,
      [OWNER.iface]: iface.name,
      ...isolationMarks,
      [OWNER.created]: String(iface.createdAt),
    },
  };
}
