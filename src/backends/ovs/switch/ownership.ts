import { DOCKER_OWNER_MARK } from "../../docker-owner.js";

/**
 * The marks the agent writes into `external_ids` of the OVS ports it owns. A port without
 * `archetype_kind` is not ours and is never touched. Recording owner and link in the same
 * transaction as the change means OVSDB itself tells a restarted agent what is in use.
 */
export const OWNER = {
  kind: "archetype_kind",
  lab: "archetype_lab",
  node: DOCKER_OWNER_MARK.node,
  iface: DOCKER_OWNER_MARK.iface,
  link: "archetype_link",
  /** The interface's own VLAN when it is not linked. */
  isolated: "archetype_isolated",
  /** "true": the isolated VLAN is the shared parking VLAN (a drop flow keeps the port apart). */
  parked: "archetype_parked",
  /** On a node's port: the overlay link it carries (its tag is then the overlay VLAN). */
  overlay: "archetype_overlay",
  endpoint: DOCKER_OWNER_MARK.endpoint,
  /** On a Docker plugin port: its network (a spare has this and no endpoint yet). */
  network: DOCKER_OWNER_MARK.network,
  vni: "archetype_vni",
  created: "archetype_created",
} as const;

/** node: a lab interface's host port; plugin: a Docker endpoint's; overlay: a VXLAN port. */
export type PortKind = "node" | "plugin" | "overlay";

export function portKind(externalIds: Readonly<Record<string, string>>): PortKind | undefined {
  const k = externalIds[OWNER.kind];
  return k === "node" || k === "plugin" || k === "overlay" ? k : undefined;
}
