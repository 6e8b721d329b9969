import assert from "node:assert/strict";
import { test } from "node:test";
import { silentLogger } from "../../src/common/log.js";
import { PortReaper } from "../../src/plugin/port-reaper.js";

test("a burst of removals becomes few batches; drain waits for all of them", async () => {
  const batches: string[][] = [];
  let release: (() => void) | undefined;
  const reaper = new PortReaper(async (ports) => {
    batches.push(ports);
    // The first batch is slow (OVS and the kernel): what comes meanwhile waits for one more batch.
    if (batches.length === 1) await new Promise<void>((r) => (release = r));
  }, silentLogger());
  reaper.add(["p1"]);
  reaper.add(["p2", "p1"]);
  await new Promise((r) => setImmediate(r));
  reaper.add(["p3"]);
  reaper.add(["p4"]);
  let drained = false;
  const d = reaper.drain().then(() => (drained = true));
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(drained, false, "drain waits for the slow batch");
  release?.();
  await d;
  assert.deepEqual(batches, [
    ["p1", "p2"],
    ["p3", "p4"],
  ]);
});

test("a failed batch is logged and does not stop later ones", async () => {
  const seen: string[][] = [];
  const reaper = new PortReaper(async (ports) => {
    seen.push(ports);
    if (ports.includes("bad")) throw new Error("ovsdb gone");
  }, silentLogger());
  reaper.add(["bad"]);
  await reaper.drain();
  reaper.add(["good"]);
  await reaper.drain();
  assert.deepEqual(seen, [["bad"], ["good"]]);
});
