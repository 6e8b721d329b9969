/**
 * The names and ownership marks of what the ovn backend writes: logical switches and ports in
 * the northbound database, ports on this host's integration bridge, and the Open_vSwitch
 * settings of ovn-controller. A row without `archetype_owner` is not the agent's: it is never
 * changed or removed, and a name clash with one refuses the change.
 */
export const OWNER_VALUE = "archetype-network";

export const NB_MARK = {
  owner: "archetype_owner",
  /**
   * lab: the lab's own switch (its unlinked ports, disabled); link: one link's switch; docker: a
   * host's list of Docker network slots (NB_MARK.slots).
   */
  kind: "archetype_kind",
  lab: "archetype_lab",
  link: "archetype_link",
  /** On a link switch: its declared ends, NODE:IF. */
  a: "archetype_a",
  b: "archetype_b",
  node: "archetype_node",
  iface: "archetype_if",
  /** The chassis the node runs on. */
  host: "archetype_host",
  /** The node's namespace on its host, as JSON ({"name":..} | {"path":..} | {"pid":..}). */
  netns: "archetype_netns",
  mtu: "archetype_mtu",
  /** The host end of the node's veth (on its host's integration bridge). */
  hostPort: "archetype_host_port",
  carrier: "archetype_carrier",
  /** `plugin`: a Docker container's interface, added by its host's Docker plugin (absent: `api`). */
  origin: "archetype_origin",
  /** On a link switch: its impairment, canonical JSON ({"a_to_b":{..},"b_to_a":{..}}). */
  impairment: "archetype_impairment",
  /**
   * On a port: the qdisc its host's agent applied on the host end (canonical JSON of the shape,
   * "" for none), or "error: ..." when tc refused it. Only that agent writes it.
   */
  shaped: "archetype_shaped",
  /**
   * On a host's Docker switch (kind `docker`, no ports): the interface slots of the Docker
   * networks on that host, JSON of sorted "LAB/IF" (a lab's links may name containers ahead).
   */
  slots: "archetype_slots",
  /** On a lab switch: bumped by every change, so two agents writing one lab at once cannot both win. */
  generation: "archetype_generation",
  /** The chassis of the agent that last wrote the row. */
  writer: "archetype_writer",
  created: "archetype_created",
} as const;

/**
 * NB_MARK.shaped when tc refused a shape: which shape (shapeText), and the error's code and
 * message for the agent that waits for it. JSON with an `error` key (a shape has none).
 */
export function shapedError(shape: string, code: string, message: string): string {
  return JSON.stringify({ error: code, message, shape });
}

export function parseShapedError(mark: string): { shape: string; code: string; message: string } | undefined {
  if (!mark.includes('"error"')) return undefined;
  try {
    const v = JSON.parse(mark) as { error?: unknown; message?: unknown; shape?: unknown };
    if (typeof v.error !== "string") return undefined;
    return { code: v.error, message: String(v.message ?? ""), shape: String(v.shape ?? "") };
  } catch {
    return undefined;
  }
}

/** Marks on this host's br-int ports of node interfaces (beside `iface-id`). */
export const PORT_MARK = {
  kind: "archetype_kind",
  kindValue: "ovn-node",
  /** A Docker plugin endpoint's veth: made by the plugin, bound while its container is in a lab. */
  pluginKind: "ovn-plugin",
  lab: "archetype_lab",
  node: "archetype_node",
  iface: "archetype_if",
  /** What the veth was made for: a change re-creates it. */
  netns: "archetype_netns",
  mtu: "archetype_mtu",
  /** Plugin ports (their owner: DOCKER_OWNER_MARK): the interface's alias, when it was made. */
  alias: "archetype_alias",
  created: "archetype_created",
} as const;

/** Whether a br-int port's marks say it is a lab interface of this agent (a node's or a container's). */
export function isLabPort(ids: Readonly<Record<string, string>>): boolean {
  const k = ids[PORT_MARK.kind];
  return k === PORT_MARK.kindValue || k === PORT_MARK.pluginKind;
}

/** The Open_vSwitch external_ids key saying the agent wrote ovn-controller's settings. */
export const OVS_CONFIGURED_MARK = "archetype_ovn";

/** ovn-controller's integration bridge. */
export const INTEGRATION_BRIDGE = "br-int";

// Lab, node and link ids never hold ":" (link/names.ts), interface names neither: names are unique.
export function labSwitchName(lab: string): string {
  return `an:${lab}`;
}

export function linkSwitchName(lab: string, link: string): string {
  return `an:${lab}:${link}`;
}

/** The row where a host's agent lists its Docker networks' slots (kind `docker`). */
export function dockerSwitchName(host: string): string {
  return `an-docker:${host}`;
}

export function portName(lab: string, node: string, iface: string): string {
  return `an:${lab}:${node}:${iface}`;
}
