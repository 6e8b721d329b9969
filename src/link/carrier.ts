import { fileURLToPath } from "node:url";
import { run } from "../common/exec.js";
import { validateIfName } from "../model/names.js";
import { netnsPath } from "./netns.js";
import type { DeviceRef } from "./offload.js";

/** Built by `make build` from native/archnet-carrier.c (the same path from src/ and from dist/). */
export const CARRIER_HELPER = fileURLToPath(new URL("../../dist/archnet-carrier", import.meta.url));

/**
 * Waits until node interfaces whose cable was just plugged back in (their veth peer set up)
 * transmit again, and makes the nodes forget the neighbours they failed to resolve meanwhile.
 * `ip link set up` on the peer returns before the kernel's link-watch work has brought the
 * node's end into service (until then its queue drops every frame), and an ARP lookup started
 * during the outage stays INCOMPLETE, so the next ping waits up to a second for its retry. The
 * helper does any number of interfaces in one process (setns + ioctl + netlink). Resolves one
 * line per interface that is not ready within `timeoutMs` (or gone); the caller decides.
 */
export async function untilCarrier(devices: readonly DeviceRef[], timeoutMs: number): Promise<string[]> {
  if (devices.length === 0) return [];
  const args = devices.flatMap((d) => [d.netns ? netnsPath(d.netns) : "-", validateIfName(d.dev)]);
  const r = await run(CARRIER_HELPER, [String(timeoutMs), ...args], {
    okCodes: [1],
    timeoutMs: timeoutMs + 5000,
  });
  return r.code === 0 ? [] : r.stderr.split("\n").filter((l) => l !== "");
}
