import assert from "node:assert/strict";
import { ipJson } from "../../src/link/index.js";

/** Whether a node's device has carrier (LOWER_UP) as the node sees it. */
export async function lowerUp(netns: string, dev = "eth1"): Promise<boolean> {
  const [l] = await ipJson<{ flags: string[] }[]>(["link", "show", "dev", dev], { name: netns });
  return l?.flags.includes("LOWER_UP") ?? false;
}

/** Polls a condition against a deadline (never a timing assumption); fails with the last value seen. */
export async function until<T>(
  what: string,
  get: () => Promise<T> | T,
  ok: (v: T) => boolean,
  ms = 30_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > deadline) assert.fail(`${what}: still ${JSON.stringify(v)} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
