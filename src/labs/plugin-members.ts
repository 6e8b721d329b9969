import type { NodeRecord } from "../model/records.js";
import type { StateStore } from "../state/state-store.js";

/**
 * The Docker containers whose endpoints are in lab `lab` now, as the lab's plugin nodes. A lab
 * made afresh (PUT after DELETE) starts with them: their endpoints stay attached to the lab's
 * networks, and Docker does not join them again.
 */
export function pluginNodesOf(store: StateStore, lab: string): Record<string, NodeRecord> {
  const nodes: Record<string, NodeRecord> = {};
  for (const ep of store.pluginEndpoints.values()) {
    const net = store.pluginNetworks.get(ep.networkId);
    if (ep.node === undefined || net?.lab !== lab) continue;
    const node = nodes[ep.node] ?? { name: ep.node, netns: undefined, origin: "plugin", interfaces: {} };
    nodes[ep.node] = node;
    node.interfaces[net.interfaceName] = {
      name: net.interfaceName,
      hostPort: ep.hostPort,
      mtu: ep.mtu,
      carrier: "up",
      createdAt: ep.createdAt,
    };
  }
  return nodes;
}
