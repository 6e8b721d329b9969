import type { SwitchPortView, SwitchStatusView } from "../../../model/views.js";
import type { OvsdbClient } from "../../../ovsdb/index.js";
import { OWNER } from "./ownership.js";

/** A snapshot of the bridge from the monitor cache: ports, tags, owners, links, state, counters. */
export function switchStatus(client: OvsdbClient, bridgeName: string, datapath: string): SwitchStatusView {
  const bridge = client.bridgeByName(bridgeName);
  const ports: SwitchPortView[] = [];
  for (const uuid of bridge?.ports ?? []) {
    const p = client.portByUuid(uuid);
    if (!p) continue;
    const i = p.interfaces[0] ? client.interfaceByUuid(p.interfaces[0]) : undefined;
    const ids = p.external_ids;
    const stats = i?.statistics ?? {};
    ports.push({
      name: p.name,
      vlan: p.tag ?? null,
      lab: ids[OWNER.lab] ?? null,
      node: ids[OWNER.node] ?? null,
      interface: ids[OWNER.iface] ?? null,
      link: ids[OWNER.link] ?? ids[OWNER.overlay] ?? null,
      ofport: i?.ofport ?? null,
      link_state: i?.link_state ?? null,
      type: i?.type || "system",
      rx_packets: stats.rx_packets ?? 0,
      tx_packets: stats.tx_packets ?? 0,
      rx_bytes: stats.rx_bytes ?? 0,
      tx_bytes: stats.tx_bytes ?? 0,
    });
  }
  ports.sort((a, b) => a.name.localeCompare(b.name));
  return {
    backend: "ovs",
    bridge: bridge ? bridgeName : null,
    fail_mode: bridge?.fail_mode ?? null,
    datapath: bridge?.datapath_type || datapath,
    connected: client.isConnected,
    ports,
  };
}
