import assert from "node:assert/strict";
import { test } from "node:test";
import { HostLiveness } from "../../src/backends/ovn/host-liveness.js";
import { silentLogger } from "../../src/common/log.js";

/** A liveness judge on a stepped clock and a hand-set SB: `nb` is the next sync's nb_cfg. */
function judge(timeoutMs = 3000) {
  const sb = new Map<string, number>();
  let clock = 1_000_000;
  let nb = 0;
  const live = new HostLiveness({
    timeoutMs,
    bump: async () => ++nb,
    applied: () => new Map(sb),
    logger: silentLogger(),
    now: () => clock,
  });
  return {
    sb,
    live,
    step: (ms: number) => {
      clock += ms;
    },
    answer: (...hosts: string[]) => {
      for (const h of hosts) sb.set(h, nb);
    },
  };
}

test("a chassis that leaves a sync unanswered past the timeout, while another applied it, is silent", async () => {
  const j = judge();
  j.sb.set("hv1", 0);
  j.sb.set("hv2", 0);
  await j.live.tick();
  j.answer("hv1", "hv2");
  j.step(1000);
  await j.live.tick(); // hv2 stops here
  const missedAt = 1_001_000;
  j.answer("hv1");
  j.step(3000);
  assert.deepEqual([...j.live.silent()], [], "not past the timeout yet");
  j.step(1);
  assert.deepEqual([...j.live.silent()], [["hv2", missedAt]]);
  // Many syncs later the first unanswered one is still what counts, and few are kept.
  for (let i = 0; i < 50; i++) {
    j.step(1000);
    await j.live.tick();
    j.answer("hv1");
  }
  assert.deepEqual([...j.live.silent()], [["hv2", missedAt]]);
  assert.ok((j.live as unknown as { bumps: unknown[] }).bumps.length <= 3, "syncs kept stay few");
  j.answer("hv2");
  assert.deepEqual([...j.live.silent()], [], "caught up: answering again");
});

test("nobody applied the sync (ovn-northd down): no host is blamed; a new chassis is judged from when it came", async () => {
  const j = judge();
  j.sb.set("hv1", 0);
  j.sb.set("hv2", 0);
  await j.live.tick();
  j.step(10_000);
  assert.deepEqual([...j.live.silent()], []);
  j.answer("hv1", "hv2");
  j.sb.set("hv3", 0); // registers now: the old syncs are not its
  j.live.silent();
  j.step(10_000);
  assert.deepEqual([...j.live.silent()], []);
  await j.live.tick();
  j.answer("hv1", "hv2");
  j.step(3001);
  assert.deepEqual(
    [...j.live.silent()].map(([h]) => h),
    ["hv3"],
  );
});
