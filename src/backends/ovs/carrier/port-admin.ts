import type { Logger } from "../../../common/log.js";
import { ipBatch } from "../../../link/index.js";
import type { NetnsRef } from "../../../link/netns.js";
import type { PortMod } from "../../../openflow/index.js";
import type { OvsdbClient } from "../../../ovsdb/index.js";
import type { OpenflowDoor } from "../switch/openflow-door.js";

/**
 * Sets host ports administratively up or down for carrier follow. The fast way is an OpenFlow
 * PORT_MOD on the bridge's management socket (ovs-vswitchd flips the device itself: a socket
 * write, no process start); `ip -batch` is the fallback while that connection is not up (the
 * bridge not made yet, a tcp: OVSDB remote with no local socket, a refused message).
 *
 * OVS applies a PORT_MOD only when it differs from its own view of the port (read from the
 * device when it notices a change), so right after an `ip` change a PORT_MOD undoing it may be
 * taken as "nothing to do". A port set with `ip` stays on `ip` until OVSDB's `admin_state` shows
 * that change (ovs-vswitchd has seen it).
 */
export class PortAdmin {
  /** Ports last set with `ip`, to the state set, until OVSDB shows it. */
  private readonly byIp = new Map<string, "up" | "down">();

  constructor(
    private readonly ovsdb: Pick<OvsdbClient, "interfaceByName">,
    private readonly door: OpenflowDoor,
    private readonly hostNs: NetnsRef | undefined,
    private readonly logger: Logger,
  ) {}

  async setUp(names: readonly string[], up: boolean): Promise<void> {
    const mods: PortMod[] = [];
    const rest: string[] = [];
    const of = this.door.current();
    for (const n of names) {
      const i = this.ovsdb.interfaceByName(n);
      if (this.byIp.get(n) === i?.admin_state) this.byIp.delete(n);
      if (of && !this.byIp.has(n) && i?.ofport !== undefined && i.ofport > 0 && i.mac_in_use)
        mods.push({ portNo: i.ofport, hwAddr: i.mac_in_use, down: !up });
      else rest.push(n);
    }
    if (of && mods.length > 0) {
      try {
        await of.modPorts(mods);
      } catch (e) {
        // A port gone or renumbered meanwhile: `ip` sets what still exists, ignores the rest.
        this.logger.debug({ err: e }, "carrier follow: PORT_MOD refused, using ip");
        rest.push(...names.filter((n) => !rest.includes(n)));
      }
    }
    if (rest.length > 0) await this.ip(rest, up);
  }

  // One end gone meanwhile (its namespace deleted) must not keep the others as they were.
  private ip(names: readonly string[], up: boolean): Promise<void> {
    for (const n of names) this.byIp.set(n, up ? "up" : "down");
    return ipBatch(
      names.map((n) => ["link", "set", "dev", n, up ? "up" : "down"]),
      { netns: this.hostNs, force: true, ignore: /Cannot find device|No such device/ },
    );
  }
}
