import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { run } from "../../src/common/exec.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { until } from "../harness/carrier.js";
import { captureFrames, carries, frameKinds, sendFrames } from "../harness/frames.js";
import { addAddress, NetnsPool } from "../harness/netns.js";
import { expectNoPing, expectPing, ping } from "../harness/traffic.js";

/**
 * Shared isolation (ARCHETYPE_AGENT_ISOLATION=shared) with an isolated range of 2 VLANs and 12
 * interfaces: every unlinked port waits in the one parking VLAN with a drop flow of its own, so
 * none reaches another; wire links need no VLAN, a VLAN link takes one and gives it back, and a
 * port unlinked is apart again. The drop flows come back after `del-flows` by hand. Traffic
 * proves each step.
 */
let t: TestAgent;
const pool = new NetnsPool("shi");
const LAB = "shared";
let ns: string[] = [];
const ip = (i: number) => `198.18.70.${i + 1}`;
const PARK = "cookie=0xa4c74e7003000000";

const mgmt = () => `unix:${t.ovs.dir}/${t.config.bridge}.mgmt`;
const dropFlows = async () =>
  (
    await run("ovs-ofctl", ["-O", "OpenFlow13", "dump-flows", "--no-stats", mgmt()], { timeoutMs: 10_000 })
  ).stdout
    .split("\n")
    .filter((l) => l.includes(PARK)).length;

before(async () => {
  t = await startTestAgent({
    isolation: "shared",
    vlan: {
      local: { min: 100, max: 109 },
      isolated: { min: 1000, max: 1001 },
      overlay: { min: 3000, max: 3009 },
    },
  });
  ns = await pool.create(12);
  for (const [i, n] of ns.entries()) {
    await t.agent.labs.addInterfaces(LAB, `n${i}`, { netns: n, interfaces: [{ name: "eth1" }] });
    await addAddress(n, "eth1", `${ip(i)}/24`);
  }
});
after(async () => {
  await t?.agent.labs.deleteLab(LAB).catch(() => undefined);
  await pool.destroyAll();
  await t?.close();
});

test("12 interfaces, 2 isolated VLANs: all parked apart; wires need no VLAN; a VLAN link takes one and gives it back", async () => {
  const tags = new Set(t.agent.labs.getLab(LAB).nodes.map((n) => n.interfaces[0]!.vlan));
  assert.deepEqual([...tags], [1000], "every unlinked port waits in the parking VLAN");
  assert.equal(await dropFlows(), 12, "a drop flow per parked port");
  assert.deepEqual(
    await Promise.all([1, 2, 5, 11].map((j) => ping(ns[0]!, ip(j)))),
    [false, false, false, false],
    "parked ports reach nobody",
  );

  for (let k = 0; k < 4; k++) {
    await t.agent.labs.addLink(LAB, {
      a: `n${2 * k}:eth1`,
      b: `n${2 * k + 1}:eth1`,
      id: `w${k}`,
      mode: "wire",
    });
  }
  await t.agent.labs.addLink(LAB, { a: "n8:eth1", b: "n9:eth1", id: "v" });
  await Promise.all([0, 1, 2, 3].map((k) => expectPing(ns[2 * k]!, ip(2 * k + 1))));
  await expectPing(ns[8]!, ip(9));
  assert.equal(await dropFlows(), 10, "the VLAN link's ends left the parking VLAN");
  assert.deepEqual(
    await Promise.all([
      ping(ns[0]!, ip(2)),
      ping(ns[0]!, ip(10)),
      ping(ns[8]!, ip(0)),
      ping(ns[10]!, ip(11)),
      ping(ns[10]!, ip(9)),
    ]),
    [false, false, false, false, false],
    "across links and to the parked n10, n11: nothing",
  );
  const kinds = frameKinds("02:00:00:00:0c:01");
  const got = await captureFrames(
    ns[1]!,
    "eth1",
    () =>
      sendFrames(
        ns[0]!,
        "eth1",
        kinds.map((k) => k.frame),
      ),
    { match: carries(...kinds.map((k) => k.marker)), count: kinds.length, timeoutMs: 10_000 },
  );
  assert.equal(got.length, kinds.length, "a wire between parked ports carries every kind");

  // The drop flows deleted by hand come back (and with them the isolation).
  await run("ovs-ofctl", ["-O", "OpenFlow13", "del-flows", mgmt(), `${PARK}/-1`], { timeoutMs: 10_000 });
  await until("the drop flows back", dropFlows, (n) => n === 10, 30_000);
  assert.equal(await ping(ns[10]!, ip(11)), false);

  await t.agent.labs.removeLink(LAB, "v");
  await expectNoPing(ns[8]!, ip(9));
  await t.agent.labs.removeLink(LAB, "w0");
  await expectNoPing(ns[0]!, ip(1));
  const view = t.agent.labs.getLab(LAB);
  for (const n of ["n0", "n1", "n8", "n9"]) {
    assert.equal(view.nodes.find((x) => x.name === n)!.interfaces[0]!.vlan, 1000, `${n} parked again`);
  }
  assert.equal(await dropFlows(), 12);
});
