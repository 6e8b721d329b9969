import { existsSync } from "node:fs";
import { ipBatch, ipJson } from "../link/ip.js";
import type { NetnsRef } from "../link/netns.js";

interface IpLink {
  ifname: string;
  ifalias?: string;
  flags?: string[];
}

/**
 * `docker network connect` to a running container: the runtime hook does not run again, so the
 * plugin renames the interface itself once Docker has moved it in (found by its ifalias). The
 * container is running already: there is no first process to race.
 * Returns false when the sandbox does not exist yet (a container being started: the hook names it).
 */
export function isRunningSandbox(sandboxKey: string | undefined): sandboxKey is string {
  return sandboxKey !== undefined && sandboxKey !== "" && existsSync(sandboxKey);
}

export async function renameWhenMoved(
  sandboxKey: string,
  alias: string,
  name: string,
  peerName: string,
  timeoutMs = 15_000,
): Promise<"renamed" | "already" | "timeout" | "taken"> {
  const ns: NetnsRef = { path: sandboxKey };
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const links = await ipJson<IpLink[]>(["link", "show"], ns).catch(() => [] as IpLink[]);
    const mine = links.find((l) => l.ifalias === alias);
    // Docker moves the interface in under its host name, then renames it (eth<N>): wait for that,
    // or the two renames race.
    if (mine && mine.ifname !== peerName) {
      if (mine.ifname === name) return "already";
      if (links.some((l) => l.ifname === name)) return "taken";
      const up = mine.flags?.includes("UP") ?? false;
      const done = await ipBatch(
        [
          ["link", "set", "dev", mine.ifname, "down"],
          ["link", "set", "dev", mine.ifname, "name", name],
          ...(up ? [["link", "set", "dev", name, "up"]] : []),
        ],
        { netns: ns },
      ).then(
        () => true,
        () => false, // renamed under us meanwhile: look again
      );
      if (done) return "renamed";
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return "timeout";
}
