import { AgentError } from "../../../common/errors.js";
import type { Logger } from "../../../common/log.js";
import { ipBatch, ipJson } from "../../../link/index.js";
import type { NetnsRef } from "../../../link/netns.js";
import {
  type BridgeRow,
  eqUuid,
  insert,
  mutate,
  namedUuid,
  type Operation,
  type OvsdbClient,
  set,
  setInsert,
} from "../../../ovsdb/index.js";

/**
 * The VXLAN underlay. With the userspace datapath ovs-vswitchd encapsulates tunnel traffic
 * itself and routes it with its own table, learnt from the kernel of its namespace: the local
 * tunnel IP must sit on an OVS bridge's internal port (`br-phy`) that holds the underlay NIC.
 * The kernel datapath encapsulates in the kernel, routed by the namespace's own table: there the
 * IP sits on the NIC itself and no bridge is needed. When ARCHETYPE_AGENT_UNDERLAY_INTERFACE and
 * _IP are set the agent builds whichever applies.
 */
export interface UnderlayConfig {
  bridge: string;
  interface: string | undefined;
  /** `IP[/PREFIX]` */
  localIp: string | undefined;
}

export interface UnderlayDeps {
  client: OvsdbClient;
  logger: Logger;
  transact: (ops: Operation[]) => Promise<void>;
  switchNetns: NetnsRef | undefined;
  /** Datapath type of the underlay bridge (the lab bridge's). */
  datapath: string;
}

/** OVSDB operations that create the underlay bridge and put the NIC on it; empty when done. */
export function underlayOps(
  cfg: UnderlayConfig & { interface: string },
  datapath: string,
  client: OvsdbClient,
): Operation[] {
  const bridge = client.bridgeByName(cfg.bridge);
  const nicPort = client.portByName(cfg.interface);
  const ops: Operation[] = [];
  if (!bridge) {
    ops.push(
      insert("Interface", { name: cfg.bridge, type: "internal" }, "ubi"),
      insert("Port", { name: cfg.bridge, interfaces: namedUuid("ubi") }, "ubp"),
    );
    const ports = [namedUuid("ubp")];
    if (!nicPort) {
      ops.push(
        insert("Interface", { name: cfg.interface }, "uni"),
        insert("Port", { name: cfg.interface, interfaces: namedUuid("uni") }, "unp"),
      );
      ports.push(namedUuid("unp"));
    }
    ops.push(
      insert("Bridge", { name: cfg.bridge, ports: set(ports), datapath_type: datapath }, "ub"),
      mutate("Open_vSwitch", [], [setInsert("bridges", namedUuid("ub"))]),
    );
    return ops;
  }
  if (nicPort) {
    if (!bridge.ports.includes(nicPort.uuid)) {
      throw new AgentError(
        "INVALID_CONFIG",
        `underlay interface ${cfg.interface} is a port of another bridge than ${cfg.bridge}`,
        `remove it there, or set ARCHETYPE_AGENT_UNDERLAY_BRIDGE to that bridge`,
      );
    }
    return [];
  }
  return nicPortOps(bridge, cfg.interface);
}

function nicPortOps(bridge: BridgeRow, nic: string): Operation[] {
  return [
    insert("Interface", { name: nic }, "uni"),
    insert("Port", { name: nic, interfaces: namedUuid("uni") }, "unp"),
    mutate("Bridge", [eqUuid(bridge.uuid)], [setInsert("ports", namedUuid("unp"))]),
  ];
}

/**
 * Builds the underlay when both the NIC and the IP are configured. Userspace datapath: the
 * bridge with the NIC as a port, the NIC and the bridge up, the IP on the bridge. Kernel
 * datapath: the NIC up with the IP on it. In the switch namespace, idempotent (`ip addr
 * replace`). Returns what it changed.
 */
export async function ensureUnderlay(cfg: UnderlayConfig, d: UnderlayDeps): Promise<string[]> {
  if (!cfg.interface || !cfg.localIp) return [];
  const kernel = d.datapath === "system";
  const holder = kernel ? cfg.interface : cfg.bridge;
  const changes: string[] = [];
  const ops = kernel ? [] : underlayOps({ ...cfg, interface: cfg.interface }, d.datapath, d.client);
  if (ops.length > 0) {
    await d.transact(ops);
    changes.push(`underlay bridge ${cfg.bridge} with ${cfg.interface} created or completed`);
  }
  const cidr = cfg.localIp.includes("/") ? cfg.localIp : `${cfg.localIp}/32`;
  const ip = cidr.split("/")[0]!;
  const present = await localAddresses(d.switchNetns);
  const links = await ipJson<{ ifname: string; flags?: string[] }[]>(["link", "show"], d.switchNetns);
  const up = (name: string) => links.find((l) => l.ifname === name)?.flags?.includes("UP") === true;
  const lines: string[][] = [];
  if (!up(cfg.interface)) lines.push(["link", "set", "dev", cfg.interface, "up"]);
  if (!kernel && !up(cfg.bridge)) lines.push(["link", "set", "dev", cfg.bridge, "up"]);
  if (!present.has(ip)) lines.push(["addr", "replace", cidr, "dev", holder]);
  if (lines.length > 0) {
    try {
      await ipBatch(lines, { netns: d.switchNetns });
    } catch (e) {
      throw new AgentError(
        "COMMAND_FAILED",
        `could not bring up the underlay (${cfg.interface}, ${cidr} on ${holder}): ${(e as Error).message}`,
        `check that ${cfg.interface} exists in the switch namespace (ARCHETYPE_AGENT_SWITCH_NETNS)`,
        { cause: e },
      );
    }
    changes.push(`underlay ${holder}: ${lines.map((l) => l.join(" ")).join("; ")}`);
  }
  if (changes.length > 0) d.logger.info({ changes }, "underlay ready");
  return changes;
}

/** Every IPv4 address of the switch namespace (one `ip` process). */
export async function localAddresses(netns: NetnsRef | undefined): Promise<Set<string>> {
  const rows = await ipJson<{ addr_info?: { family?: string; local?: string }[] }[]>(
    ["-4", "addr", "show"],
    netns,
  );
  const out = new Set<string>();
  for (const r of rows) for (const a of r.addr_info ?? []) if (a.local) out.add(a.local);
  return out;
}
