import { addPorts, removePorts } from "../../src/backends/ovs/switch/port-ops.js";
import { deleteGroup, ipBatch } from "../../src/link/index.js";
import { eqUuid, type OvsdbClient, update } from "../../src/ovsdb/index.js";

/**
 * The floor: the same kernel and OVS work with the least machinery this host allows, one
 * `ip -batch` (veths created straight into the namespaces, run in the switch namespace) and one
 * OVSDB transaction that waits for ovs-vswitchd. No validation, persistence or bookkeeping.
 */
export interface FloorIface {
  host: string;
  netns: string;
  name: string;
  mtu: number;
  tag: number;
  group: number;
  /** Marks of the same size as the agent's (not its keys, so the agent sees no drift). */
  marks: Record<string, string>;
}

export class BatchedSwitch {
  constructor(
    private readonly client: OvsdbClient,
    private readonly switchNetns: string,
    private readonly bridge: string,
  ) {}

  private bridgeUuid(): string {
    const b = this.client.bridgeByName(this.bridge);
    if (!b) throw new Error(`bridge ${this.bridge} does not exist`);
    return b.uuid;
  }

  async createVeths(ifaces: readonly FloorIface[]): Promise<void> {
    const lines: string[][] = [];
    for (const f of ifaces) {
      const mtu = String(f.mtu);
      lines.push(["link", "add", f.name, "netns", f.netns, "mtu", mtu, "up", "type", "veth"]);
      lines[lines.length - 1]!.push("peer", "name", f.host, "mtu", mtu, "group", String(f.group));
      lines.push(["link", "set", "dev", f.host, "up"]);
    }
    await ipBatch(lines, { netns: { name: this.switchNetns } });
  }

  async addPorts(ifaces: readonly FloorIface[]): Promise<void> {
    const ops = addPorts(
      this.bridgeUuid(),
      ifaces.map((f) => ({ name: f.host, tag: f.tag, externalIds: f.marks })),
    );
    await this.client.transact(ops, { waitApplied: true });
  }

  /** One `ip -batch` plus one transaction. */
  async provision(ifaces: readonly FloorIface[]): Promise<void> {
    await this.createVeths(ifaces);
    await this.addPorts(ifaces);
  }

  /** Hot connect/disconnect: one transaction setting both ports' tags. */
  async retagPair(a: string, b: string, tag: number, waitApplied = true): Promise<void> {
    const ops = [a, b].map((name) => {
      const p = this.client.portByName(name);
      if (!p) throw new Error(`no port ${name}`);
      return update("Port", [eqUuid(p.uuid)], { tag });
    });
    await this.client.transact(ops, { waitApplied });
  }

  /** The teardown floor: `ip link delete group N` in the switch namespace, one call. */
  deleteGroup(group: number): Promise<void> {
    return deleteGroup(group, { netns: { name: this.switchNetns } });
  }

  /** Removes the ports (not part of the timed floor). */
  async removePorts(hosts: readonly string[]): Promise<void> {
    const uuids = hosts.flatMap((h) => {
      const p = this.client.portByName(h);
      return p ? [p.uuid] : [];
    });
    await this.client.transact(removePorts(this.bridgeUuid(), uuids), { waitApplied: true });
  }
}
