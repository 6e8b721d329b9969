import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { until } from "../labs/facts.js";

/** The lab bridge: created right, created once, and corrected (not duplicated) when wrong. */
let t: TestAgent;

before(async () => {
  t = await startTestAgent();
});
after(async () => {
  await t?.close();
});

async function bridgeFacts() {
  const out = await t.ovs.vsctl([
    "--format=json",
    "--columns=_uuid,name,fail_mode,datapath_type,other_config",
    "list",
    "Bridge",
  ]);
  const j = JSON.parse(out) as { data: unknown[][] };
  return j.data.map((r) => ({
    uuid: (r[0] as [string, string])[1],
    name: String(r[1]),
    failMode: r[2],
    datapath: r[3],
    other: Object.fromEntries((r[4] as ["map", [string, string][]])[1]),
  }));
}

test("the bridge is standalone, netdev, forwards BPDUs; a second start changes nothing", async () => {
  const [br, ...more] = await bridgeFacts();
  assert.equal(more.length, 0);
  assert.ok(br);
  assert.equal(br.name, t.config.bridge);
  assert.equal(br.failMode, "standalone");
  assert.equal(br.datapath, "netdev");
  assert.equal(br.other["forward-bpdu"], "true");
  assert.deepEqual(await t.agent.reconcile(), [], "a fresh agent has nothing to repair");

  await t.restart();
  const again = await bridgeFacts();
  assert.deepEqual(again, [br], "the same bridge row, untouched");
  const status = await t.agent.services.backend.status();
  assert.equal(status.bridge, t.config.bridge);
  assert.equal(status.fail_mode, "standalone");
  assert.equal(status.datapath, "netdev");
});

test("a bridge with wrong settings is corrected in place while the agent runs", async () => {
  const [before1] = await bridgeFacts();
  await t.ovs.vsctl([
    "set",
    "Bridge",
    t.config.bridge,
    "fail_mode=secure",
    "other_config:forward-bpdu=false",
    "other_config:mac-aging-time=77",
  ]);
  const ms = await until(
    async () => {
      const [b] = await bridgeFacts();
      return b?.failMode === "standalone" && b.other["forward-bpdu"] === "true";
    },
    3000,
    "bridge settings corrected",
  );
  const after1 = await bridgeFacts();
  assert.equal(after1.length, 1, "not duplicated");
  assert.equal(after1[0]?.uuid, before1?.uuid, "corrected, not re-created");
  assert.equal(after1[0]?.other["mac-aging-time"], "77", "other settings of the bridge are kept");
  console.log(`# bridge settings corrected ${ms} ms after a hand edit`);
});

test("a bridge with wrong settings made before the agent starts is corrected at start", async () => {
  await t.stopAgent();
  await t.ovs.vsctl([
    "set",
    "Bridge",
    t.config.bridge,
    "fail_mode=secure",
    "other_config:forward-bpdu=false",
  ]);
  const [before1] = await bridgeFacts();
  await t.startAgent();
  const [b, ...more] = await bridgeFacts();
  assert.equal(more.length, 0);
  assert.equal(b?.uuid, before1?.uuid);
  assert.equal(b?.failMode, "standalone");
  assert.equal(b?.other["forward-bpdu"], "true");
});
