import type { Logger } from "../../../common/log.js";
import { listLinks } from "../../../link/index.js";
import { netnsLost } from "../../../link/netns.js";
import { type LinkEnd, resolveEnd } from "../../../model/ends.js";
import type { LabRecord, OverlayRecord } from "../../../model/records.js";
import type { ReconcileReport } from "../../network-backend.js";
import type { CarrierControl } from "../carrier/carrier-control.js";
import type { WireLinks } from "../flows/wire-links.js";
import type { VlanLinks } from "../links/vlan-links.js";
import type { OverlayManager } from "../overlay/overlay-manager.js";
import type { NodePorts } from "../ports/node-ports.js";
import type { Shaper } from "../shaping/shaper.js";
import { ensureBridgeOps } from "../switch/bridge.js";
import type { OvsSwitch } from "../switch/ovs-switch.js";

export interface ReconcileRooms {
  sw: OvsSwitch;
  nodePorts: NodePorts;
  vlanLinks: VlanLinks;
  wires: WireLinks;
  carrier: CarrierControl;
  shaper: Shaper;
  tunnels: OverlayManager;
  logger: Logger;
}

/**
 * Makes OVS and the kernel match the desired state: the bridge and its settings, a veth and a
 * port for every interface, the right tag on each port, links wired, carrier as declared,
 * impairments, overlay ports present. Each repair is reported as a line; each lab is repaired on
 * its own (one that fails is reported and the others go on).
 */
export async function reconcile(
  r: ReconcileRooms,
  labs: readonly LabRecord[],
  overlays: readonly OverlayRecord[],
): Promise<ReconcileReport> {
  const { sw } = r;
  const repairs: string[] = [];
  const failed = new Map<string, Error>();
  const bridgeOps = ensureBridgeOps(sw.bridgeName, sw.datapath, sw.client.bridgeByName(sw.bridgeName));
  if (bridgeOps.length > 0) {
    await sw.transact(bridgeOps);
    repairs.push(`bridge ${sw.bridgeName} created or corrected`);
  }
  sw.vlans.rebuild(sw.vlansInUse());
  const kernel = new Map((await listLinks(sw.hostNs)).map((l) => [l.name, l]));
  for (const lab of labs) {
    for (const node of Object.values(lab.nodes)) {
      for (const i of Object.values(node.interfaces)) r.carrier.follow.setDesired([i.hostPort], i.carrier);
    }
  }
  // Before the carrier repairs below: a hold a previous agent made is one, not a wrong state.
  r.carrier.follow.start();

  for (const lab of labs) {
    try {
      await reconcileLab(r, lab, kernel, repairs);
    } catch (e) {
      failed.set(lab.lab, e instanceof Error ? e : new Error(String(e)));
    }
  }
  // Wires after the ports: a port made again has a new OpenFlow number.
  try {
    repairs.push(
      ...(await r.wires.reconcile(
        labs.filter((l) => !failed.has(l.lab)),
        overlays,
      )),
    );
  } catch (e) {
    r.logger.warn({ err: e }, "wires: the switch's flows could not be repaired; the next reconcile retries");
  }
  await r.shaper.reconcile(
    labs.filter((l) => !failed.has(l.lab)),
    repairs,
    failed,
  );
  const endOf = (o: OverlayRecord): LinkEnd | undefined => {
    const lab = labs.find((l) => l.lab === o.lab);
    return lab && resolveEnd(lab, { node: o.node, iface: o.interface });
  };
  repairs.push(...(await r.tunnels.reconcile(overlays, endOf)));
  if (repairs.length > 0) r.logger.info({ repairs }, "reconciled");
  return { repairs, failed };
}

async function reconcileLab(
  r: ReconcileRooms,
  lab: LabRecord,
  kernel: ReadonlyMap<string, { up: boolean }>,
  repairs: string[],
): Promise<void> {
  const { sw } = r;
  const ends: LinkEnd[] = [];
  for (const node of Object.values(lab.nodes)) {
    for (const iface of Object.values(node.interfaces)) ends.push({ node, iface });
  }
  // Veths that vanished are created again where their node still exists, as the namespace it
  // was made in (Docker's own endpoints are the plugin's to re-create).
  const lost = ends.filter((e) => e.node.origin === "api" && !kernel.has(e.iface.hostPort));
  const recreate = lost.filter((e) => e.node.netns && !netnsLost(e.node.netns, e.node.netnsId));
  await sw.removePortRows(recreate.map((e) => sw.port(e.iface.hostPort)));
  if (recreate.length > 0) {
    await r.nodePorts.provision(lab, recreate);
    repairs.push(...recreate.map((e) => `lab ${lab.lab}: ${e.node.name}:${e.iface.name} re-created`));
  }
  // Ports missing from the bridge (the bridge was deleted, or the port removed by hand).
  const unported = ends.filter((e) => kernel.has(e.iface.hostPort) && !sw.port(e.iface.hostPort));
  if (unported.length > 0) {
    await r.nodePorts.addPorts(lab, unported);
    repairs.push(...unported.map((e) => `lab ${lab.lab}: port ${e.iface.hostPort} re-added`));
  }
  repairs.push(...(await r.vlanLinks.reconcile(lab)));
  repairs.push(...(await r.carrier.reconcile(lab, ends, kernel)));
}
