import type { PortRow } from "../../../ovsdb/index.js";
import {
  eqUuid,
  insert,
  map,
  mutate,
  namedUuid,
  type Operation,
  set,
  setDelete,
  setInsert,
  update,
  uuid,
} from "../../../ovsdb/index.js";
import { OWNER } from "./ownership.js";

/** OVSDB operations on the agent's bridge ports, as plain data for one transaction. */
export interface NewPort {
  name: string;
  tag: number;
  externalIds: Record<string, string>;
  /** Interface type: "" for a kernel device (the veth), "vxlan" for a tunnel. */
  type?: string;
  options?: Record<string, string>;
  /** The OpenFlow number to ask ovs-vswitchd for (shared isolation: its drop flow is made first). */
  ofportRequest?: number;
}

/** Inserts Interface+Port rows and attaches all ports to the bridge in one mutation. */
export function addPorts(bridgeUuid: string, ports: readonly NewPort[]): Operation[] {
  const ops: Operation[] = [];
  const refs = ports.map((p, i) => {
    const iface = `i${i}`;
    const port = `p${i}`;
    const ifaceRow: Record<string, ReturnType<typeof map> | string | number> = { name: p.name };
    if (p.ofportRequest !== undefined) ifaceRow.ofport_request = p.ofportRequest;
    if (p.type) ifaceRow.type = p.type;
    if (p.options) ifaceRow.options = map(p.options);
    ops.push(insert("Interface", ifaceRow, iface));
    ops.push(
      insert(
        "Port",
        { name: p.name, interfaces: namedUuid(iface), tag: p.tag, external_ids: map(p.externalIds) },
        port,
      ),
    );
    return namedUuid(port);
  });
  if (refs.length > 0) ops.push(mutate("Bridge", [eqUuid(bridgeUuid)], [setInsert("ports", set(refs))]));
  return ops;
}

/** Detaching ports from the bridge garbage-collects their Port and Interface rows. */
export function removePorts(bridgeUuid: string, portUuids: readonly string[]): Operation[] {
  if (portUuids.length === 0) return [];
  return [mutate("Bridge", [eqUuid(bridgeUuid)], [setDelete("ports", set(portUuids.map((u) => uuid(u))))])];
}

/** Sets a port's access VLAN and its whole external_ids map (the caller merges from the cache). */
export function retag(portUuid: string, tag: number, externalIds: Record<string, string>): Operation {
  return update("Port", [eqUuid(portUuid)], { tag, external_ids: map(externalIds) });
}

/** A port back in its own VLAN, out of any link. */
export function isolateAgain(p: PortRow): Operation {
  const { [OWNER.link]: _gone, ...ids } = p.external_ids;
  return retag(p.uuid, Number(ids[OWNER.isolated]), ids);
}
