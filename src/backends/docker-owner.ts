import type { DockerPortOwner } from "./network-backend.js";

/**
 * The external_ids keys that say whose a Docker plugin port is, the same with every backend that
 * keeps its ports in an Open vSwitch database (a restarted agent and cleanup read them back).
 */
export const DOCKER_OWNER_MARK = {
  network: "archetype_network",
  endpoint: "archetype_endpoint",
  node: "archetype_node",
  iface: "archetype_if",
} as const;

/** The marks of a Docker port's owner fields (only those given). */
export function dockerOwnerIds(owner: DockerPortOwner): Record<string, string> {
  const ids: Record<string, string> = {};
  for (const [field, key] of Object.entries(DOCKER_OWNER_MARK)) {
    const v = owner[field as keyof DockerPortOwner];
    if (v !== undefined) ids[key] = v;
  }
  return ids;
}
