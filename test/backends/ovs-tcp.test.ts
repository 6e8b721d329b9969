import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { addAddress, NetnsPool } from "../harness/netns.js";
import { iperfThroughput } from "../harness/traffic.js";

let t: TestAgent;
const pool = new NetnsPool("otc");

before(async () => {
  t = await startTestAgent();
});
after(async () => {
  await pool.destroyAll();
  await t?.close();
});

// The userspace datapath forwards frames as read: without TX offload off on the nodes' ends,
// ping passes but TCP stalls on bad checksums. This proves TCP flows through a link.
test("TCP flows through a link (iperf3)", async () => {
  const [n1, n2] = (await pool.create(2)) as [string, string];
  await t.agent.labs.putLab("tcp", {
    nodes: [
      { name: "a", netns: n1, interfaces: [{ name: "eth1" }] },
      { name: "b", netns: n2, interfaces: [{ name: "eth1" }] },
    ],
    links: [{ a: "a:eth1", b: "b:eth1" }],
  });
  await addAddress(n1, "eth1", "198.18.7.1/24");
  await addAddress(n2, "eth1", "198.18.7.2/24");
  const bps = await iperfThroughput(n1, n2, "198.18.7.2");
  assert.ok(bps > 10e6, `TCP through the link carried only ${bps} bit/s`);
});
