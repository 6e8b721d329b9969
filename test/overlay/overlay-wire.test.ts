import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { run } from "../../src/common/exec.js";
import type { LinkMode } from "../../src/model/records.js";
import type { OverlaySpec } from "../../src/model/views.js";
import { until } from "../harness/carrier.js";
import { kindsCrossing } from "../harness/frames.js";
import { addAddress, NetnsPool } from "../harness/netns.js";
import { expectPing, ping } from "../harness/traffic.js";
import { type SimHost, startTwoHosts, type TwoHosts } from "../harness/two-hosts.js";

/**
 * An overlay link as a wire across two simulated hosts: the node's port and the VXLAN port joined
 * by flows on each host, so what a cable carries crosses the tunnel unchanged; the same frames
 * over a VLAN overlay link lose their tagged ones (the test can fail). After ovs-vswitchd restarts
 * on one host, the wire comes back without an API call.
 */
const LAB = "ovw";
let h: TwoHosts;
const pool = new NetnsPool("ovw");
const node: Record<string, string> = {};

function spec(from: SimHost, to: SimHost, n: string, link: string, vni: number, mode: LinkMode): OverlaySpec {
  return { lab: LAB, link, node: n, interface: "eth1", vni, local_ip: from.ip, remote_ip: to.ip, mode };
}

before(async () => {
  h = await startTwoHosts();
  const [a, b, c, d] = (await pool.create(4)) as [string, string, string, string];
  Object.assign(node, { a, b, c, d });
  await h.a.agent.labs.addInterfaces(LAB, "a", { netns: a, interfaces: [{ name: "eth1" }] });
  await h.b.agent.labs.addInterfaces(LAB, "b", { netns: b, interfaces: [{ name: "eth1" }] });
  await h.a.agent.labs.addInterfaces(LAB, "c", { netns: c, interfaces: [{ name: "eth1" }] });
  await h.b.agent.labs.addInterfaces(LAB, "d", { netns: d, interfaces: [{ name: "eth1" }] });
  await addAddress(a, "eth1", "198.19.72.1/24");
  await addAddress(b, "eth1", "198.19.72.2/24");
  await addAddress(c, "eth1", "198.19.73.1/24");
  await addAddress(d, "eth1", "198.19.73.2/24");
  const w = await h.a.agent.services.overlays.attach(spec(h.a, h.b, "a", "w", 7201, "wire"));
  assert.equal(w.mode, "wire");
  await h.b.agent.services.overlays.attach(spec(h.b, h.a, "b", "w", 7201, "wire"));
  await h.a.agent.services.overlays.attach(spec(h.a, h.b, "c", "v", 7301, "vlan"));
  await h.b.agent.services.overlays.attach(spec(h.b, h.a, "d", "v", 7301, "vlan"));
  await until(
    "all four VXLAN ports up",
    () => [h.a, h.b].flatMap((host) => host.agent.services.overlays.status().map((t) => t.state)),
    (s) => s.length === 4 && s.every((x) => x === "up"),
    60_000,
  );
  await expectPing(a, "198.19.72.2", { count: 3, timeoutS: 2 });
  await expectPing(c, "198.19.73.2", { count: 3, timeoutS: 2 });
});
after(async () => {
  await pool.destroyAll();
  await h?.close();
});

test("a wire overlay link carries 802.1Q, QinQ, LLDP, LACP and STP across hosts; a VLAN overlay link drops the tagged", async () => {
  assert.deepEqual(await kindsCrossing(node.a!, node.b!), ["dot1q", "qinq", "lldp", "lacp", "stp"]);
  assert.deepEqual(await kindsCrossing(node.b!, node.a!), ["dot1q", "qinq", "lldp", "lacp", "stp"]);
  const onVlan = await kindsCrossing(node.c!, node.d!);
  assert.ok(
    !onVlan.includes("dot1q") && !onVlan.includes("qinq"),
    `a VLAN overlay link carried ${onVlan.join(", ")}`,
  );
});

test("ovs-vswitchd restarted on one host: the overlay wire comes back without an API call", async () => {
  await h.a.ovs.restartVswitchd();
  const restarted = performance.now();
  // Ping alone proves little here (NORMAL joins the node and the tunnel in their VLAN): the wire's
  // own flows must be back, and then the tagged frames cross again.
  const mgmt = `unix:${h.a.ovs.dir}/${h.a.config.bridge}.mgmt`;
  const wireFlows = async () =>
    (
      await run("ovs-ofctl", ["-O", "OpenFlow13", "dump-flows", "--no-stats", mgmt], {
        timeoutMs: 10_000,
      }).catch(() => ({ stdout: "" }))
    ).stdout
      .split("\n")
      .filter((l) => l.includes("cookie=0xa4c74e7001000000")).length;
  await until("the overlay wire's flows on host A", wireFlows, (n) => n === 2, 60_000);
  console.log(
    `# the overlay wire's flows were back ${(performance.now() - restarted).toFixed(0)} ms after the restart`,
  );
  // A restarted ovs-vswitchd has forgotten the underlay's neighbours: the first frame into the
  // tunnel only starts its ARP and is lost (the underlay's doing, not the wire's). Traffic first.
  await until(
    "a ping across the tunnel",
    () => ping(node.a!, "198.19.72.2"),
    (ok) => ok,
    60_000,
  );
  assert.deepEqual(await kindsCrossing(node.a!, node.b!), ["dot1q", "qinq", "lldp", "lacp", "stp"]);
});
