import { existsSync } from "node:fs";
import type { Datapath } from "../../../config/config.js";
import type { BridgeRow } from "../../../ovsdb/index.js";
import {
  eqUuid,
  insert,
  map,
  mutate,
  namedUuid,
  type Operation,
  setInsert,
  update,
} from "../../../ovsdb/index.js";

/** `auto` picks the kernel datapath where its module is loaded, the userspace one elsewhere. */
export function resolveDatapath(configured: Datapath): "system" | "netdev" {
  if (configured !== "auto") return configured;
  return existsSync("/sys/module/openvswitch") ? "system" : "netdev";
}

/**
 * What a lab bridge needs: standalone (a plain learning switch, no controller needed) and
 * forward-bpdu so LLDP, LACP and STP frames reach the linked peer instead of being eaten.
 */
export function desiredBridge(datapath: string): {
  fail_mode: string;
  datapath_type: string;
  other: Record<string, string>;
} {
  return { fail_mode: "standalone", datapath_type: datapath, other: { "forward-bpdu": "true" } };
}

/** The operations that create the bridge, or correct its settings; empty when it is right. */
export function ensureBridgeOps(
  name: string,
  datapath: string,
  existing: BridgeRow | undefined,
): Operation[] {
  const want = desiredBridge(datapath);
  if (!existing) {
    // A bridge carries an internal port of its own name, as `ovs-vsctl add-br` makes it.
    return [
      insert("Interface", { name, type: "internal" }, "bi"),
      insert("Port", { name, interfaces: namedUuid("bi") }, "bp"),
      insert(
        "Bridge",
        {
          name,
          ports: namedUuid("bp"),
          fail_mode: want.fail_mode,
          datapath_type: want.datapath_type,
          other_config: map(want.other),
        },
        "br",
      ),
      mutate("Open_vSwitch", [], [setInsert("bridges", namedUuid("br"))]),
    ];
  }
  const other = { ...existing.other_config, ...want.other };
  const right =
    existing.fail_mode === want.fail_mode &&
    existing.datapath_type === want.datapath_type &&
    Object.entries(want.other).every(([k, v]) => existing.other_config[k] === v);
  if (right) return [];
  return [
    update("Bridge", [eqUuid(existing.uuid)], {
      fail_mode: want.fail_mode,
      datapath_type: want.datapath_type,
      other_config: map(other),
    }),
  ];
}
