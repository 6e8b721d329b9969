import { randomInt } from "node:crypto";
import { AgentError } from "../common/errors.js";
import { CommandError } from "../common/exec.js";
import { validateIfName } from "../model/names.js";
import { batchTimeoutMs, ipBatch, runIp } from "./ip.js";
import { listLinks } from "./links.js";
import type { NetnsRef } from "./netns.js";
import { validateGroup, validateMtu } from "./values.js";

const MISSING = /Cannot find device|No such device/;

/** Deletes links in one batch (a veth's peer goes with it). With ignoreMissing, absent ones are skipped. */
export async function deleteLinks(
  names: readonly string[],
  opts: { ignoreMissing?: boolean; netns?: NetnsRef } = {},
): Promise<void> {
  const lines = names.map((n) => ["link", "del", "dev", validateIfName(n)]);
  if (opts.ignoreMissing) await ipBatch(lines, { netns: opts.netns, force: true, ignore: MISSING });
  else await ipBatch(lines, { netns: opts.netns });
}

/** Below this many devices, deleting one by one is as fast as the group trick. */
const BULK_MIN = 8;

/**
 * Deletes many links, missing ones skipped. Each `ip link del` of a veth waits for an RCU grace
 * period (~20-40 ms), so many are first moved into a fresh interface group nobody uses and then
 * deleted in one kernel call: 400 veths in ~0.4 s instead of ~9 s. The caller holds what keeps
 * others from taking a group meanwhile (the agent's exclusive lock, or a backend without groups).
 */
export async function deleteMany(names: readonly string[], netns: NetnsRef | undefined): Promise<void> {
  if (names.length < BULK_MIN) {
    await deleteLinks(names, { ignoreMissing: true, netns });
    return;
  }
  const used = new Set((await listLinks(netns)).map((l) => String(l.group)));
  let group = randomInt(0x40000000, 0x7fffffff);
  while (used.has(String(group))) group = randomInt(0x40000000, 0x7fffffff);
  await ipBatch(
    names.map((n) => ["link", "set", "dev", validateIfName(n), "group", String(group)]),
    { netns, force: true, ignore: MISSING },
  );
  await deleteGroup(group, { netns, links: names.length });
}

/**
 * Deletes every link of a group in one kernel call: the fast teardown. An empty group is fine.
 * `links`: about how many it holds (the kernel takes longer the more, seconds for thousands).
 */
export async function deleteGroup(
  group: number,
  opts: { netns?: NetnsRef; links?: number } = {},
): Promise<void> {
  validateGroup(group);
  if (group === 0) {
    throw new AgentError(
      "BAD_REQUEST",
      "refusing to delete interface group 0: it is the default group every link (eth0, lo...) is in",
      "give the lab's own group number",
    );
  }
  try {
    await runIp(["link", "delete", "group", String(group)], {
      netns: opts.netns,
      timeoutMs: batchTimeoutMs(opts.links ?? 1),
    });
  } catch (e) {
    if (e instanceof CommandError && MISSING.test(e.stderr)) return;
    throw e;
  }
}

export async function setLinkUp(names: readonly string[], up: boolean, netns?: NetnsRef): Promise<void> {
  const state = up ? "up" : "down";
  await ipBatch(
    names.map((n) => ["link", "set", "dev", validateIfName(n), state]),
    { netns },
  );
}

export async function setMtu(names: readonly string[], mtu: number, netns?: NetnsRef): Promise<void> {
  validateMtu(mtu);
  await ipBatch(
    names.map((n) => ["link", "set", "dev", validateIfName(n), "mtu", String(mtu)]),
    { netns },
  );
}

/** Moves links into a group (for later bulk teardown with deleteGroup). */
export async function setGroup(names: readonly string[], group: number, netns?: NetnsRef): Promise<void> {
  validateGroup(group);
  await ipBatch(
    names.map((n) => ["link", "set", "dev", validateIfName(n), "group", String(group)]),
    { netns },
  );
}
