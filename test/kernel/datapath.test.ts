import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { resolveDatapath } from "../../src/backends/ovs/switch/bridge.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { needsKernelHost, ON_KERNEL_HOST } from "../harness/kernel-host.js";
import { addAddress, NetnsPool, nsExec } from "../harness/netns.js";
import { expectPing, iperfThroughput } from "../harness/traffic.js";

/**
 * What only the kernel test host can show: the agent's bridge on the openvswitch kernel datapath,
 * with its ports in the kernel's datapath, forwarding TCP with checksum offload left on.
 */
let t: TestAgent;
const pool = new NetnsPool("kdp");

before(async () => {
  if (ON_KERNEL_HOST) t = await startTestAgent();
});
after(async () => {
  await pool.destroyAll();
  await t?.close();
});

test("auto picks the kernel datapath where the openvswitch module is loaded", needsKernelHost, () => {
  assert.equal(resolveDatapath("auto"), "system");
});

test(
  "the bridge is on the kernel datapath and its ports are the kernel's; TCP crosses with TX offload on",
  needsKernelHost,
  async () => {
    const [n1, n2] = (await pool.create(2)) as [string, string];
    const { lab } = await t.agent.labs.putLab("kdp", {
      nodes: [
        { name: "a", netns: n1, interfaces: [{ name: "eth1" }] },
        { name: "b", netns: n2, interfaces: [{ name: "eth1" }] },
      ],
      links: [{ a: "a:eth1", b: "b:eth1" }],
    });
    const dpType = (await t.ovs.vsctl(["get", "Bridge", t.config.bridge, "datapath_type"])).trim();
    assert.ok(["system", '""'].includes(dpType), `datapath_type ${dpType}`);
    const { stdout } = await nsExec(t.ovs.netns!, ["ovs-dpctl", "show"]);
    for (const n of lab.nodes)
      for (const i of n.interfaces) assert.match(stdout, new RegExp(`port \\d+: ${i.host_port}\\b`), stdout);

    await addAddress(n1, "eth1", "198.18.9.1/24");
    await addAddress(n2, "eth1", "198.18.9.2/24");
    await expectPing(n1, "198.18.9.2");
    // The workaround the userspace datapath needs is not applied here.
    const features = await nsExec(n1, ["ethtool", "-k", "eth1"]);
    assert.match(features.stdout, /^tx-checksumming: on/m);
    const r = await iperfThroughput(n1, n2, "198.18.9.2");
    assert.ok(r > 10e6, `TCP through the kernel datapath carried only ${r} bit/s`);
    await t.agent.labs.deleteLab("kdp");
  },
);
