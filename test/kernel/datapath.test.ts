import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { resolveDatapath } from "../../src/backends/ovs/bridge.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { needsKernelHost, ON_KERNEL_HOST } from "../harness/kernel-host.js";
import { addAddress, NetnsPool, nsExec } from "../harness/netns.js";
import { expectPing } from "../harness/traffic.js";

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
    await nsExec(n2, ["iperf3", "-s", "-1", "-D", "-B", "198.18.9.2", "-I", `/tmp/iperf-${n2}.pid`]);
    const r = await iperfClient(n1, "198.18.9.2");
    assert.ok(r > 10e6, `TCP through the kernel datapath carried only ${r} bit/s`);
    await t.agent.labs.deleteLab("kdp");
  },
);

/** iperf3 client; retries while the server (started as a daemon) is not listening yet. */
async function iperfClient(ns: string, server: string): Promise<number> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await nsExec(ns, ["iperf3", "-c", server, "-t", "1", "-J"], {
      timeoutMs: 60_000,
      okCodes: [1],
    });
    const out = JSON.parse(r.stdout) as {
      error?: string;
      end?: { sum_received?: { bits_per_second: number } };
    };
    if (r.code === 0 && out.end?.sum_received) return out.end.sum_received.bits_per_second;
    if (Date.now() > deadline || !/connect|refused/i.test(out.error ?? ""))
      assert.fail(`iperf3: ${out.error}`);
    await new Promise((res) => setTimeout(res, 100));
  }
}
