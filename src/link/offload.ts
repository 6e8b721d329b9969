import { fileURLToPath } from "node:url";
import { run } from "../common/exec.js";
import { validateIfName } from "../model/names.js";
import { type NetnsRef, netnsPath } from "./netns.js";

/** An interface to change, in a namespace (undefined: the agent's own). */
export interface DeviceRef {
  dev: string;
  netns: NetnsRef | undefined;
}

/** Built by `make build` from native/archnet-txoff.c (the same path from src/ and from dist/). */
export const TXOFF_HELPER = fileURLToPath(new URL("../../dist/archnet-txoff", import.meta.url));

/** Interfaces per helper run (keeps the argument list far below the kernel's limit). */
const CHUNK = 500;

/**
 * Makes the kernel compute checksums (and segment TCP) itself on these interfaces, like
 * `ethtool -K DEV tx off`. The userspace datapath of Open vSwitch forwards frames read from
 * veths as they are, so a frame whose checksum the sender left to "hardware" arrives broken:
 * ping passes while TCP stalls. ethtool takes one device per process, which for a lab costs
 * more than creating its veths; the helper does any number in one process (setns + ioctl).
 */
export async function disableTxOffload(devices: readonly DeviceRef[]): Promise<void> {
  const args = devices.flatMap((d) => [d.netns ? netnsPath(d.netns) : "-", validateIfName(d.dev)]);
  for (let i = 0; i < args.length; i += CHUNK * 2) {
    await run(TXOFF_HELPER, args.slice(i, i + CHUNK * 2));
  }
}
