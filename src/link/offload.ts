import { run } from "../common/exec.js";
import { ipBatch } from "./ip.js";
import { mapLimit } from "./limit.js";
import { validateIfName } from "./names.js";
import { type NetnsRef, netnsPath } from "./netns.js";

/** An interface to change, in a namespace (undefined: the agent's own). */
export interface DeviceRef {
  dev: string;
  netns: NetnsRef | undefined;
}

const PARALLEL = 4;

/**
 * Makes the kernel compute checksums and segment TCP itself on these interfaces
 * (`ethtool -K DEV tx off`). The userspace datapath of Open vSwitch forwards frames read from
 * veths as they are, so a frame whose checksum the sender left to "hardware" arrives broken:
 * ping passes while TCP stalls. Turning TX offload off on the node's end fixes that, at the
 * cost of one ethtool run per interface (ethtool takes one device per call); named namespaces
 * share `ip -batch` processes (`netns exec`), the rest go through nsenter.
 */
export async function disableTxOffload(devices: readonly DeviceRef[]): Promise<void> {
  const named: string[][] = [];
  const other: DeviceRef[] = [];
  for (const d of devices) {
    validateIfName(d.dev);
    if (d.netns && "name" in d.netns)
      named.push(["netns", "exec", d.netns.name, "ethtool", "-K", d.dev, "tx", "off"]);
    else other.push(d);
  }
  const chunk = Math.max(1, Math.ceil(named.length / PARALLEL));
  const batches: string[][][] = [];
  for (let i = 0; i < named.length; i += chunk) batches.push(named.slice(i, i + chunk));
  await Promise.all([
    mapLimit(batches, PARALLEL, (lines) => ipBatch(lines)),
    mapLimit(other, PARALLEL * 2, (d) =>
      d.netns
        ? run("nsenter", [`--net=${netnsPath(d.netns)}`, "ethtool", "-K", d.dev, "tx", "off"])
        : run("ethtool", ["-K", d.dev, "tx", "off"]),
    ),
  ]);
}
