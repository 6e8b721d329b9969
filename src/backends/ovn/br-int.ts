import {
  eqUuid,
  insert,
  map,
  mapSetKey,
  mutate,
  namedUuid,
  type Operation,
  set,
  setDelete,
  setInsert,
  uuid,
} from "../../ovsdb/index.js";

/**
 * The integration bridge's rows as the agent writes them: node and container veths become ports
 * of br-int (one Interface each, named after the device), and `iface-id` binds one to its
 * logical port. Operations as data, for the caller's one transaction.
 */

/** A device to put on br-int, with the marks of its Port (and of its Interface). */
export interface NewPort {
  name: string;
  portIds: Record<string, string>;
  ifaceIds?: Record<string, string>;
}

/** Inserts the ports and adds them to the bridge (named rows: one call per transaction). */
export function plugOps(bridgeUuid: string, ports: readonly NewPort[]): Operation[] {
  if (ports.length === 0) return [];
  const ops: Operation[] = ports.flatMap((p, i) => [
    insert("Interface", { name: p.name, ...(p.ifaceIds ? { external_ids: map(p.ifaceIds) } : {}) }, `i${i}`),
    insert("Port", { name: p.name, interfaces: namedUuid(`i${i}`), external_ids: map(p.portIds) }, `p${i}`),
  ]);
  ops.push(
    mutate(
      "Bridge",
      [eqUuid(bridgeUuid)],
      [setInsert("ports", set(ports.map((_, i) => namedUuid(`p${i}`))))],
    ),
  );
  return ops;
}

/** Takes ports off the bridge (ovsdb-server then drops their rows). */
export function unplugOps(bridgeUuid: string, portUuids: readonly string[]): Operation[] {
  if (portUuids.length === 0) return [];
  return [mutate("Bridge", [eqUuid(bridgeUuid)], [setDelete("ports", set(portUuids.map((u) => uuid(u))))])];
}

/**
 * Binds an Interface to a logical port (`lsp`), or unbinds it (undefined): mutations of that one
 * key, as ovn-controller writes the Interface's other keys (`ovn-installed`) meanwhile.
 */
export function ifaceIdOps(ifaceUuid: string, lsp: string | undefined): Operation[] {
  return [mutate("Interface", [eqUuid(ifaceUuid)], mapSetKey("external_ids", "iface-id", lsp))];
}
