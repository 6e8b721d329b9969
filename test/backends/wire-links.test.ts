import assert from "node:assert/strict";
import { performance } from "node:perf_hooks";
import { after, before, type TestContext, test } from "node:test";
import { startApi } from "../../src/api/server.js";
import { OFPORT_REQUEST_MIN } from "../../src/backends/ovs/switch/parking.js";
import { isAgentError } from "../../src/common/errors.js";
import { run } from "../../src/common/exec.js";
import { silentLogger } from "../../src/common/log.js";
import { hostPortName } from "../../src/model/derived-names.js";
import type { LinkMode } from "../../src/model/records.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { until } from "../harness/carrier.js";
import {
  captureFrames,
  carries,
  frameKinds,
  kindsCrossing,
  sendFrames,
  untagged,
} from "../harness/frames.js";
import { dropLabsAfter as dropAfter, labNodes } from "../harness/lab-nodes.js";
import { addAddress, ifindex, NetnsPool } from "../harness/netns.js";
import { parsePcap } from "../harness/pcap.js";
import { expectNoPing, expectPing, ping } from "../harness/traffic.js";

/**
 * Wire links on a real ovs-vswitchd, proven with frames and pings: what a cable carries crosses
 * unchanged (and the same frames on a VLAN link do not, so the test can fail), rewires, the
 * switch losing its flows every way it can (del-flows, a restart, del-br, a renumbered port, an
 * agent killed), bad input changing nothing. Foreign flows are never touched.
 */
let t: TestAgent;
const pool = new NetnsPool("wir");
const FOREIGN = "cookie=0x1234,priority=50,in_port=65000,actions=drop";

before(async () => {
  t = await startTestAgent();
});
after(async () => {
  await pool.destroyAll();
  await t?.close();
});

const mgmt = () => `unix:${t.ovs.dir}/${t.config.bridge}.mgmt`;
const ofctl = (args: readonly string[]) =>
  run("ovs-ofctl", ["-O", "OpenFlow13", ...args], { timeoutMs: 10_000 }).then((r) => r.stdout);
/** The switch's flows without counters, sorted: what "nothing changed" compares. */
const flows = async () =>
  (await ofctl(["dump-flows", "--no-stats", mgmt()]))
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("OFPST_FLOW") && !l.startsWith("OFPST"))
    .sort();

const dropLabsAfter = (ctx: TestContext, ...names: string[]) => dropAfter(t, ctx, ...names);
const nodes = (lab: string, k: number, subnet: number) => labNodes(t, pool, lab, k, subnet);

const SRC = "02:00:00:00:0a:01";

test("a wire carries 802.1Q, QinQ, LLDP, LACP and STP unchanged; a VLAN link drops the tagged ones", async (ctx) => {
  dropLabsAfter(ctx, "wf");
  const { ns, ip } = await nodes("wf", 4, 60);
  const [a, b, c, d] = ns as [string, string, string, string];
  const wire = await t.agent.labs.addLink("wf", { a: "n0:eth1", b: "n1:eth1", id: "w", mode: "wire" });
  const vlan = await t.agent.labs.addLink("wf", { a: "n2:eth1", b: "n3:eth1", id: "v" });
  assert.equal(wire.mode, "wire");
  assert.equal(wire.vlan, null);
  assert.equal(wire.state, "up");
  assert.equal(vlan.mode, "vlan");
  assert.equal(typeof vlan.vlan, "number");
  await Promise.all([expectPing(a, ip[1]!), expectPing(c, ip[3]!)]);
  // The wire and the VLAN link stay apart, and unlinked is unlinked.
  assert.deepEqual(await Promise.all([ping(a, ip[2]!), ping(c, ip[0]!), ping(b, ip[3]!)]), [
    false,
    false,
    false,
  ]);

  assert.deepEqual(await kindsCrossing(a, b), ["dot1q", "qinq", "lldp", "lacp", "stp"]);
  assert.deepEqual(await kindsCrossing(b, a), ["dot1q", "qinq", "lldp", "lacp", "stp"]);
  const onVlan = await kindsCrossing(c, d);
  assert.ok(
    !onVlan.includes("dot1q") && !onVlan.includes("qinq"),
    `a VLAN link carried ${onVlan.join(", ")}`,
  );

  const view = t.agent.labs.getLab("wf");
  const n0 = view.nodes.find((n) => n.name === "n0")?.interfaces[0];
  assert.equal(n0?.link, "w");
});

test("rewiring A-B to A-C: frames reach C and no longer B, ifindexes kept, nothing but flows changes", async (ctx) => {
  dropLabsAfter(ctx, "wr");
  const { ns, ip } = await nodes("wr", 3, 61);
  const [a, b, c] = ns as [string, string, string];
  const before = await Promise.all(ns.map((n) => ifindex(n, "eth1")));
  await t.agent.labs.addLink("wr", { a: "n0:eth1", b: "n1:eth1", id: "ab", mode: "wire" });
  await expectPing(a, ip[1]!);
  const ports = await t.ovs.vsctl(["--format=json", "--columns=name,tag,external_ids", "list", "Port"]);
  const started = performance.now();
  await t.agent.labs.removeLink("wr", "ab");
  await t.agent.labs.addLink("wr", { a: "n0:eth1", b: "n2:eth1", id: "ac", mode: "wire" });
  console.log(`# rewire through the lab service: ${(performance.now() - started).toFixed(2)} ms`);
  // Sent right after the answer: the flows are there (barrier).
  await expectPing(a, ip[2]!);
  await expectNoPing(a, ip[1]!);
  assert.deepEqual(await kindsCrossing(a, c), ["dot1q", "qinq", "lldp", "lacp", "stp"]);
  const toB = await captureFrames(
    b,
    "eth1",
    () => sendFrames(a, "eth1", [untagged(SRC, "ff:ff:ff:ff:ff:ff", "gone")]),
    {
      match: carries("gone"),
      count: 1,
      timeoutMs: 1000,
    },
  );
  assert.equal(toB.length, 0, "B still gets A's frames after the rewire");
  assert.deepEqual(await Promise.all(ns.map((n) => ifindex(n, "eth1"))), before);
  // No OVSDB change: the ports' tags and marks are as they were.
  assert.equal(
    await t.ovs.vsctl(["--format=json", "--columns=name,tag,external_ids", "list", "Port"]),
    ports,
  );
  void c;
});

test("the switch losing flows: del-flows, a restart, del-br, a renumbered port, a killed agent; foreign flows stay", async (ctx) => {
  dropLabsAfter(ctx, "wd");
  const { ns, ip } = await nodes("wd", 4, 62);
  const [a, , c] = ns as [string, string, string, string];
  await t.agent.labs.addLink("wd", { a: "n0:eth1", b: "n1:eth1", id: "w", mode: "wire" });
  await t.agent.labs.addLink("wd", { a: "n2:eth1", b: "n3:eth1", id: "v" });
  await ofctl(["add-flow", mgmt(), FOREIGN]);
  const both = () => Promise.all([ping(a, ip[1]!), ping(c, ip[3]!)]);
  // The agent's flows on the switch: the wire's two and NORMAL (ping's 1 s timeout is too coarse to time this).
  const ours = (fl: string[]) => ({
    wire: fl.filter((f) => f.includes("cookie=0xa4c74e7001000000")).length,
    normal: fl.filter((f) => f.includes("cookie=0xa4c74e7002000000") && f.includes("NORMAL")).length,
  });
  const back = async (what: string) => {
    const started = performance.now();
    await until(
      `${what}: the agent's flows`,
      async () => ours(await flows().catch(() => [])),
      (o) => o.wire === 2 && o.normal === 1,
      60_000,
    );
    const ms = performance.now() - started;
    await until(what, both, (r) => r[0] && r[1], 60_000);
    console.log(`# ${what}: the agent's flows back within ${ms.toFixed(0)} ms, then both links pass`);
  };
  await back("at first");

  // By hand: every flow goes, the bridge's NORMAL (VLAN links need it) with them.
  await ofctl(["del-flows", mgmt(), "cookie=0x1234/-1"]).catch(() => undefined);
  await ofctl(["add-flow", mgmt(), FOREIGN]);
  const before = await flows();
  await ofctl(["--strict", "del-flows", mgmt(), "priority=0"]);
  await ofctl(["del-flows", mgmt(), "cookie=0xa4c74e7001000000/0xffffffffff000000"]);
  await back("del-flows by hand");
  assert.deepEqual(await flows(), before, "the agent reinstalled exactly its flows");

  await t.ovs.restartVswitchd();
  await back("ovs-vswitchd restarted");

  await t.ovs.vsctl(["del-br", t.config.bridge]);
  await back("bridge deleted");
  // Gone with the switch's memory and the bridge (not the agent's doing): set again for the rest.
  await ofctl(["add-flow", mgmt(), FOREIGN]);

  // A port made again gets a new OpenFlow number: the wire follows it.
  const port = t.agent.labs.getLab("wd").nodes.find((n) => n.name === "n0")!.interfaces[0]!.host_port;
  await t.ovs.vsctl(["del-port", t.config.bridge, port]);
  await back("a wire's port removed by hand");

  await t.stopAgent(); // like kill -9: nothing torn down
  await back("agent stopped: the switch keeps the flows");
  await t.startAgent();
  await back("agent started again");
  assert.ok(
    (await flows()).some((f) => f.includes("cookie=0x1234") && f.includes("in_port=65000")),
    "the foreign flow survived every repair",
  );
  await ofctl(["del-flows", mgmt(), "cookie=0x1234/-1"]);
});

test("a lab body's wires reach the switch before their ports: promised numbers, traffic at once; a failed PUT leaves no flow", async (ctx) => {
  dropLabsAfter(ctx, "wp");
  const ns = await pool.create(5);
  const node = (i: number) => ({ name: `n${i}`, netns: ns[i]!, interfaces: [{ name: "eth1" }] });
  await t.agent.labs.putLab("wp", {
    nodes: [0, 1, 2, 3].map(node),
    links: [
      { a: "n0:eth1", b: "n1:eth1", id: "w01", mode: "wire" },
      { a: "n2:eth1", b: "n3:eth1", id: "w23", mode: "wire" },
    ],
  });
  // The flows name the numbers promised before the ports existed, and the ports have them.
  const wireFlows = (await flows()).filter((f) => f.includes("priority=100"));
  assert.equal(wireFlows.length, 4, wireFlows.join("\n"));
  for (const i of [0, 1, 2, 3]) {
    const port = hostPortName("wp", `n${i}`, "eth1");
    const ofport = Number((await t.ovs.vsctl(["get", "Interface", port, "ofport"])).trim());
    assert.ok(ofport >= OFPORT_REQUEST_MIN, `${port} has promised number ${ofport}`);
    assert.ok(
      wireFlows.some((f) => f.includes(`in_port=${ofport} `) || f.includes(`in_port=${ofport},`)),
      `a flow from ${ofport}`,
    );
  }
  for (const i of [0, 1, 2, 3]) await addAddress(ns[i]!, "eth1", `198.18.67.${i + 1}/24`);
  await expectPing(ns[0]!, "198.18.67.2");
  await expectPing(ns[2]!, "198.18.67.4");
  await expectNoPing(ns[0]!, "198.18.67.3");

  // A new node wired to a port that exists, whose host port name a foreign device holds:
  // provisioning fails after its wire was sent to the switch, and the wire goes again.
  const before = await flows();
  const blocked = hostPortName("wp", "n4", "eth1");
  await run("ip", ["-n", t.ovs.netns!, "link", "add", blocked, "type", "bridge"]);
  ctx.after(() => run("ip", ["-n", t.ovs.netns!, "link", "del", blocked]).catch(() => undefined));
  const spec = t.agent.labs.getLab("wp");
  await assert.rejects(
    t.agent.labs.putLab("wp", {
      nodes: [0, 1, 2, 3, 4].map(node),
      links: [
        ...spec.links.filter((l) => l.id !== "w23").map((l) => ({ a: l.a, b: l.b, id: l.id, mode: l.mode })),
        { a: "n2:eth1", b: "n4:eth1", id: "w24", mode: "wire" },
      ],
    }),
    (e: unknown) => isAgentError(e) && e.code === "CONFLICT",
  );
  assert.deepEqual(await flows(), before, "the switch's flows are as before the failed PUT");
  await expectPing(ns[2]!, "198.18.67.4");
});

test("bad input: unknown mode, three ends, an interface in two wires, a wire to another lab's port: nothing changes", async (ctx) => {
  dropLabsAfter(ctx, "wb", "wo");
  await nodes("wb", 3, 63);
  await nodes("wo", 1, 64);
  await t.agent.labs.addLink("wb", { a: "n0:eth1", b: "n1:eth1", id: "w", mode: "wire" });
  // The lab as the API shows it, without the counters (they move with the nodes' own traffic).
  const shown = () => {
    const v = t.agent.labs.getLab("wb");
    return JSON.stringify({ ...v, links: v.links.map(({ counters: _, ...l }) => l) });
  };
  const before = { flows: await flows(), lab: shown() };
  const refused = async (what: string, fn: () => Promise<unknown>, code: string) => {
    await assert.rejects(fn, (e: unknown) => isAgentError(e) && e.code === code, what);
    assert.deepEqual(await flows(), before.flows, `${what}: the switch's flows changed`);
    assert.equal(shown(), before.lab, `${what}: the lab changed`);
  };
  await refused(
    "unknown mode",
    () => t.agent.labs.addLink("wb", { a: "n1:eth1", b: "n2:eth1", id: "x", mode: "cable" as LinkMode }),
    "BAD_REQUEST",
  );
  await refused(
    "an interface in two wires",
    () => t.agent.labs.addLink("wb", { a: "n0:eth1", b: "n2:eth1", id: "y", mode: "wire" }),
    "ALREADY_LINKED",
  );
  await refused(
    "an interface in two wires of a lab body",
    () =>
      t.agent.labs.putLab("wb", {
        nodes: t.agent.labs
          .getLab("wb")
          .nodes.map((n) => ({ name: n.name, netns: n.netns!, interfaces: [{ name: "eth1" }] })),
        links: [
          { a: "n0:eth1", b: "n1:eth1", id: "w", mode: "wire" },
          { a: "n0:eth1", b: "n2:eth1", id: "z", mode: "wire" },
        ],
      }),
    "ALREADY_LINKED",
  );
  // An end names a node of this lab: another lab's node of the same name is not it.
  const other = await t.agent.labs.addLink("wb", { a: "n2:eth1", b: "wo-n0:eth1", id: "o", mode: "wire" });
  assert.equal(other.state, "pending");
  assert.deepEqual(await flows(), before.flows, "a pending wire installs no flow");
  await t.agent.labs.removeLink("wb", "o");
});

test("three ends or an unknown mode in an HTTP body: 400, nothing changes", async (ctx) => {
  dropLabsAfter(ctx, "wh");
  await nodes("wh", 3, 65);
  const api = await startApi(t.agent.services, { logger: silentLogger() });
  ctx.after(() => api.close());
  const base = api.address;
  const before = await flows();
  for (const body of [
    { a: "n0:eth1", b: "n1:eth1", c: "n2:eth1", mode: "wire" },
    { a: "n0:eth1", b: "n1:eth1", mode: "cable" },
  ]) {
    const r = await fetch(`${base}/labs/wh/links`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    assert.equal(r.status, 400, JSON.stringify(body));
  }
  assert.deepEqual(await flows(), before);
  assert.equal(t.agent.labs.getLab("wh").links.length, 0);
});

test("a wire's traffic: capture streams its tagged frames, a rate limit shapes it, both go with the link", async (ctx) => {
  dropLabsAfter(ctx, "wc");
  const { ns, ip } = await nodes("wc", 2, 66);
  const [a] = ns as [string, string];
  await t.agent.labs.addLink("wc", { a: "n0:eth1", b: "n1:eth1", id: "w", mode: "wire" });
  const api = await startApi(t.agent.services, { logger: silentLogger() });
  ctx.after(() => api.close());

  const frames = frameKinds(SRC).filter((k) => k.name === "dot1q" || k.name === "qinq");
  const res = await fetch(`${api.address}/labs/wc/links/w/capture?count=${frames.length}&filter=vlan`);
  assert.equal(res.status, 200);
  await sendFrames(
    a,
    "eth1",
    frames.map((k) => k.frame),
  );
  const pcap = parsePcap(Buffer.from(await res.arrayBuffer()));
  assert.deepEqual(
    frames.map((k) => pcap.frames.some((f) => f.data.equals(k.frame))),
    frames.map(() => true),
    "the capture of a wire link holds the tagged frames as sent",
  );

  const shaped = await t.agent.services.impairments.set("wc", "w", { a_to_b: { rate_kbit: 10_000 } });
  assert.equal(shaped.in_sync, true);
  assert.equal(shaped.applied?.a_to_b.rate_kbit, 10_000);
  await expectPing(a, ip[1]!);
  const hostB = t.agent.labs.getLab("wc").nodes.find((n) => n.name === "n1")!.interfaces[0]!.host_port;
  const qdisc = () =>
    run("ip", ["netns", "exec", t.ovs.netns!, "tc", "qdisc", "show", "dev", hostB], { timeoutMs: 10_000 });
  assert.match((await qdisc()).stdout, /\btbf\b/);
  await t.agent.labs.removeLink("wc", "w");
  assert.doesNotMatch((await qdisc()).stdout, /\btbf\b/, "the impairment went with the link");
});
