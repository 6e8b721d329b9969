import { AgentError } from "../../../common/errors.js";
import { type LinkEnd, resolveEnd, storedEnd, type WiredLink } from "../../../model/ends.js";
import type { LabRecord } from "../../../model/records.js";
import type { Operation, PortRow } from "../../../ovsdb/index.js";
import type { CarrierControl } from "../carrier/carrier-control.js";
import type { Shaper } from "../shaping/shaper.js";
import type { OvsSwitch } from "../switch/ovs-switch.js";
import { OWNER, portKind } from "../switch/ownership.js";
import { isolateAgain, retag } from "../switch/port-ops.js";

/**
 * VLAN links: both ends' access ports share a VLAN of the link's own, and the port rows carry the
 * link's id (OVSDB itself tells a restarted agent which links are wired). A hot (dis)connect is a
 * retag: one transaction, answered once ovs-vswitchd has applied it.
 */
export class VlanLinks {
  constructor(
    private readonly sw: OvsSwitch,
    private readonly carrier: CarrierControl,
    private readonly shaper: Shaper,
  ) {}

  async connect(links: readonly WiredLink[]): Promise<void> {
    const vlans = this.sw.vlans.allocateMany("local", links.length);
    const ops: Operation[] = [];
    const unparked: string[] = [];
    try {
      links.forEach((w, i) => {
        for (const end of [w.a, w.b]) {
          const p = this.requirePort(end);
          if (this.sw.isParked(p)) unparked.push(p.name);
          ops.push(retag(p.uuid, vlans[i]!, { ...p.external_ids, [OWNER.link]: w.link.id }));
        }
      });
      await this.sw.transact(ops);
    } catch (e) {
      for (const v of vlans) this.sw.vlans.release(v);
      throw e;
    }
    // Out of the parking VLAN: their drop flows go (until now they kept the link dark).
    await this.sw.parking?.undrop(this.sw.ofports(unparked));
    await this.shaper.joined(links);
    await this.carrier.joined(links);
  }

  async disconnect(links: readonly WiredLink[]): Promise<void> {
    const ops: Operation[] = [];
    const freed: number[] = [];
    const parking: string[] = [];
    for (const w of links) {
      for (const end of [w.a, w.b]) {
        const p = this.sw.port(end.iface.hostPort);
        if (!p || p.external_ids[OWNER.link] !== w.link.id) continue;
        if (p.tag !== undefined && this.sw.vlans.inPool("local", p.tag)) freed.push(p.tag);
        if (p.external_ids[OWNER.parked] === "true") parking.push(p.name);
        ops.push(isolateAgain(p));
      }
    }
    // Back to the parking VLAN: their drop flows first, so nothing of theirs reaches NORMAL there.
    await this.sw.parking?.drop(this.sw.ofports(parking));
    await this.sw.transact(ops);
    for (const v of new Set(freed)) this.sw.vlans.release(v);
    await this.shaper.unlinked(links);
  }

  /** Links whose ends exist but do not share the link's VLAN are wired again; stray links undone. */
  async reconcile(lab: LabRecord): Promise<string[]> {
    const find = (text: string) => resolveEnd(lab, storedEnd(text));
    const rewire: WiredLink[] = [];
    const expected = new Map<string, string>();
    for (const link of Object.values(lab.links)) {
      if (link.mode === "wire") continue; // flows, not tags: the wires' room
      const a = find(link.a);
      const b = find(link.b);
      if (!a || !b) continue;
      expected.set(a.iface.hostPort, link.id);
      expected.set(b.iface.hostPort, link.id);
      const pa = this.sw.port(a.iface.hostPort);
      const pb = this.sw.port(b.iface.hostPort);
      if (!pa || !pb) continue;
      const ok =
        pa.external_ids[OWNER.link] === link.id &&
        pb.external_ids[OWNER.link] === link.id &&
        pa.tag !== undefined &&
        pa.tag === pb.tag &&
        this.sw.vlans.inPool("local", pa.tag);
      if (!ok) rewire.push({ link, a, b });
    }
    const repairs: string[] = [];
    const rewired = new Set(rewire.flatMap((w) => [w.a.iface.hostPort, w.b.iface.hostPort]));
    // Ports that think they are in a link the lab no longer has go back to isolation.
    const ops: Operation[] = [];
    for (const p of this.sw.client.ports()) {
      if (p.external_ids[OWNER.lab] !== lab.lab || portKind(p.external_ids) === "overlay") continue;
      if (rewired.has(p.name) || expected.has(p.name) || p.external_ids[OWNER.overlay]) continue;
      if (p.external_ids[OWNER.link] || p.tag !== Number(p.external_ids[OWNER.isolated])) {
        ops.push(isolateAgain(p));
        repairs.push(`lab ${lab.lab}: port ${p.name} isolated again`);
      }
    }
    await this.sw.transact(ops);
    if (rewire.length > 0) {
      // Free what the broken pairs held, then wire them in one transaction.
      for (const w of rewire) {
        for (const e of [w.a, w.b]) {
          const p = this.sw.port(e.iface.hostPort);
          if (p?.tag !== undefined && this.sw.vlans.inPool("local", p.tag) && !this.sw.tagShared(p))
            this.sw.vlans.release(p.tag);
        }
      }
      await this.connect(rewire);
      repairs.push(...rewire.map((w) => `lab ${lab.lab}: link ${w.link.id} wired again`));
    }
    return repairs;
  }

  private requirePort(end: LinkEnd): PortRow {
    const p = this.sw.port(end.iface.hostPort);
    if (!p) {
      throw new AgentError(
        "INTERFACE_NOT_FOUND",
        `${end.node.name}:${end.iface.name} has no port on ${this.sw.bridgeName}`,
        "the agent repairs missing ports within a second; retry",
      );
    }
    return p;
  }
}
