import type { Logger } from "../../../common/log.js";
import { setLinkUp, untilCarrier } from "../../../link/index.js";
import type { LinkEnd, WiredLink } from "../../../model/ends.js";
import type { CarrierState, LabRecord } from "../../../model/records.js";
import { eqUuid, map, update } from "../../../ovsdb/index.js";
import type { OvsSwitch } from "../switch/ovs-switch.js";
import { CarrierFollow } from "./carrier-follow.js";
import { PortAdmin } from "./port-admin.js";

/** How long carrier up waits for ovs-vswitchd and the nodes to see the links up before answering anyway. */
const CARRIER_WAIT_MS = 3000;

/**
 * Carrier is the host end's admin state: down is a pulled cable (the node's end sees
 * NO-CARRIER). The API's carrier calls, and carrier follow (a dead end takes its peer down).
 */
export class CarrierControl {
  readonly follow: CarrierFollow;
  private readonly admin: PortAdmin;

  constructor(
    private readonly sw: OvsSwitch,
    private readonly logger: Logger,
  ) {
    this.admin = new PortAdmin(sw.client, sw.openflow, sw.hostNs, logger);
    this.follow = new CarrierFollow(
      sw.client,
      (names, up) => this.admin.setUp(names, up),
      (tunnels) =>
        sw.transact(
          tunnels.map((t) => update("Interface", [eqUuid(t.uuid)], { bfd: map(t.bfd) })),
          { waitApplied: false },
        ),
      logger,
    );
    sw.client.on("change", (c) => this.follow.onChange(c));
  }

  /** Links just joined whose cable the API pulled: their ends go down. */
  async joined(links: readonly WiredLink[]): Promise<void> {
    const down = links
      .filter((w) => w.link.carrier === "down")
      .flatMap((w) => [w.a.iface.hostPort, w.b.iface.hostPort]);
    this.follow.setDesired(down, "down");
    if (down.length > 0) await this.setAdmin(down, false);
  }

  /** Sets these host ends down (or up) in one batch, without waiting for the nodes. */
  setAdmin(hostPorts: readonly string[], up: boolean): Promise<void> {
    return setLinkUp(hostPorts, up, this.sw.hostNs);
  }

  async set(lab: LabRecord, ends: readonly LinkEnd[], state: CarrierState): Promise<void> {
    this.follow.setDesired(
      ends.map((e) => e.iface.hostPort),
      state,
    );
    // An end whose link peer is down stays down (peer_down) until the peer comes back.
    const names = ends.map((e) => e.iface.hostPort).filter((h) => state === "down" || this.follow.wantUp(h));
    // The follower's batch for these ends (if any) lands first: a late one would undo this call.
    await this.follow.idle();
    await this.setAdmin(names, state === "up");
    // A cable plugged back in answers once the switch sees the ports up (it forwards then) and
    // the nodes' ends transmit again (Docker's nodes have no namespace on record: not waited for).
    if (state !== "up") return;
    const inNodes = ends.filter((e) => e.node.netns !== undefined && names.includes(e.iface.hostPort));
    // Peers held down for these ends come back once the switch sees these up: waited for too.
    const held = new Set(this.follow.heldPeers(names));
    const [, mine] = await Promise.all([
      this.sw.untilLinkUp(names, CARRIER_WAIT_MS),
      untilCarrier(
        inNodes.map((e) => ({ dev: e.iface.name, netns: e.node.netns })),
        CARRIER_WAIT_MS,
      ),
    ]);
    const late = [...mine];
    if (held.size > 0) {
      await this.follow.idle();
      const peers = Object.values(lab.nodes).flatMap((node) =>
        Object.values(node.interfaces)
          .filter((iface) => held.has(iface.hostPort) && node.netns !== undefined)
          .map((iface) => ({ dev: iface.name, netns: node.netns })),
      );
      const [, theirs] = await Promise.all([
        this.sw.untilLinkUp([...held], CARRIER_WAIT_MS),
        untilCarrier(peers, CARRIER_WAIT_MS),
      ]);
      late.push(...theirs);
    }
    if (late.length > 0) this.logger.warn({ interfaces: late }, "carrier up: node interfaces not ready yet");
  }

  /**
   * The kernel's admin state of these ends against what they should be (up unless the API pulled
   * the cable or the link peer is down: peer_down, not stored); repairs what differs.
   */
  async reconcile(
    lab: LabRecord,
    ends: readonly LinkEnd[],
    kernel: ReadonlyMap<string, { up: boolean }>,
  ): Promise<string[]> {
    const wantUp = (e: LinkEnd) => this.follow.wantUp(e.iface.hostPort);
    const wrong = ends.filter((e) => {
      const k = kernel.get(e.iface.hostPort);
      return k !== undefined && k.up !== wantUp(e);
    });
    const up = wrong.filter(wantUp);
    if (up.length > 0) await this.set(lab, up, "up");
    const down = wrong.filter((e) => !wantUp(e));
    if (down.length > 0)
      await this.setAdmin(
        down.map((e) => e.iface.hostPort),
        false,
      );
    return wrong.map(
      (e) =>
        `lab ${lab.lab}: carrier of ${e.node.name}:${e.iface.name} set ${wantUp(e) ? "up" : e.iface.carrier === "down" ? "down" : "down (its peer is down)"}`,
    );
  }
}
