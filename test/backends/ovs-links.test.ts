import assert from "node:assert/strict";
import { after, before, type TestContext, test } from "node:test";
import { run } from "../../src/common/exec.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { dropLabsAfter as dropAfter, labNodes } from "../harness/lab-nodes.js";
import { ifindex, NetnsPool, nsExec } from "../harness/netns.js";
import { capture, expectNoPing, expectPing, ping } from "../harness/traffic.js";
import { ovsPorts } from "../labs/facts.js";

/** Links on the OVS backend proven with traffic: isolation, LLDP, carrier, labs side by side. */
let t: TestAgent;
const pool = new NetnsPool("olk");

before(async () => {
  t = await startTestAgent();
});
after(async () => {
  await pool.destroyAll();
  await t?.close();
});

const dropLabsAfter = (ctx: TestContext, ...names: string[]) => dropAfter(t, ctx, ...names);
const nodes = (lab: string, k: number, subnet: number) => labNodes(t, pool, lab, k, subnet);

test("linked nodes ping; unlinked and differently linked interfaces are isolated", async (ctx) => {
  dropLabsAfter(ctx, "iso");
  const labs = t.agent.labs;
  const { ns, ip } = await nodes("iso", 5, 10);
  const [a, b, c, d, e] = ns as [string, string, string, string, string];
  const ab = await labs.addLink("iso", { a: "n0:eth1", b: "n1:eth1", id: "ab" });
  const cd = await labs.addLink("iso", { a: "n2:eth1", b: "n3:eth1", id: "cd" });
  assert.notEqual(ab.vlan, cd.vlan);
  assert.equal(ab.state, "up");
  await Promise.all([expectPing(a, ip[1]!), expectPing(c, ip[3]!)]);
  // Across links, and to/from the unlinked n4: nothing.
  const blocked: [string, string][] = [
    [a, ip[2]!],
    [a, ip[3]!],
    [b, ip[2]!],
    [d, ip[0]!],
    [a, ip[4]!],
    [e, ip[0]!],
    [e, ip[2]!],
  ];
  const results = await Promise.all(blocked.map(([from, to]) => ping(from, to)));
  assert.deepEqual(
    results,
    blocked.map(() => false),
    `some isolated pairs answered: ${JSON.stringify(blocked.filter((_, i) => results[i]))}`,
  );

  const idx = await ifindex(a, "eth1");
  await labs.removeLink("iso", "ab");
  await expectNoPing(a, ip[1]!);
  await expectPing(c, ip[3]!); // the other link is untouched
  const view = labs.getLab("iso");
  assert.equal(view.links.length, 1);
  const n0 = view.nodes.find((n) => n.name === "n0")?.interfaces[0];
  assert.equal(n0?.link, null);
  assert.equal(n0?.present, true);

  const again = await labs.addLink("iso", { a: "n0:eth1", b: "n1:eth1", id: "ab" });
  assert.equal(again.state, "up");
  await expectPing(a, ip[1]!);
  assert.equal(await ifindex(a, "eth1"), idx, "reconnecting keeps the node's interface");
  await labs.deleteLab("iso");
});

/** Sends `count` LLDP frames (ethertype 0x88cc to 01:80:c2:00:00:0e) out of `dev` in `ns`. */
async function sendLldp(ns: string, dev: string, count: number): Promise<void> {
  const py = [
    "import socket,sys,time",
    "s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)",
    "s.bind((sys.argv[1],0))",
    "src=open('/sys/class/net/'+sys.argv[1]+'/address').read().strip().replace(':','')",
    // chassis id TLV (MAC), port id TLV, TTL TLV, end TLV
    "tlv=bytes.fromhex('020704'+src+'0304056574683106020078'+'0000')",
    "f=bytes.fromhex('0180c200000e'+src+'88cc')+tlv",
    "f=f+bytes(max(0,60-len(f)))",
    "for i in range(int(sys.argv[2])):",
    "  s.send(f); time.sleep(0.05)",
  ].join("\n");
  await nsExec(ns, ["python3", "-c", py, dev, String(count)]);
}

test("LLDP frames cross a link and only that link", async (ctx) => {
  dropLabsAfter(ctx, "lldp");
  const labs = t.agent.labs;
  const { ns } = await nodes("lldp", 3, 11);
  const [a, b, c] = ns as [string, string, string];
  await labs.addLink("lldp", { a: "n0:eth1", b: "n1:eth1" });
  const seen = await capture(b, "eth1", ["ether", "proto", "0x88cc"], () => sendLldp(a, "eth1", 3), {
    count: 3,
    timeoutMs: 4000,
  });
  assert.equal(seen.length, 3, `LLDP frames captured on the peer: ${seen.join("\n")}`);
  assert.match(seen[0]!, /01:80:c2:00:00:0e/);
  const stray = await capture(c, "eth1", ["ether", "proto", "0x88cc"], () => sendLldp(a, "eth1", 3), {
    count: 1,
    timeoutMs: 1500,
  });
  assert.deepEqual(stray, [], "an unlinked interface sees no LLDP");
  await labs.deleteLab("lldp");
});

async function linkState(ns: string, dev: string): Promise<{ flags: string[]; operstate: string }> {
  const r = await run("ip", ["-n", ns, "-j", "link", "show", "dev", dev]);
  const [l] = JSON.parse(r.stdout) as { flags: string[]; operstate: string }[];
  assert.ok(l);
  return l;
}

test("carrier down is a pulled cable inside the node; up restores; whole links too", async (ctx) => {
  dropLabsAfter(ctx, "car");
  const labs = t.agent.labs;
  const { ns, ip } = await nodes("car", 2, 12);
  const [a, b] = ns as [string, string];
  const link = await labs.addLink("car", { a: "n0:eth1", b: "n1:eth1" });
  await expectPing(a, ip[1]!);

  const iv = await labs.setCarrier("car", "n0", "eth1", "down");
  assert.equal(iv.carrier, "down");
  const down = await linkState(a, "eth1");
  assert.ok(down.flags.includes("NO-CARRIER"), `flags ${down.flags}`);
  // A veth whose peer is down reports DOWN (stacked devices would say LOWERLAYERDOWN).
  assert.ok(["DOWN", "LOWERLAYERDOWN"].includes(down.operstate), `operstate ${down.operstate}`);
  await expectNoPing(a, ip[1]!);
  // The peer loses carrier too, a moment later (test/backends/carrier-follow.test.ts).

  await labs.setCarrier("car", "n0", "eth1", "up");
  assert.ok(!(await linkState(a, "eth1")).flags.includes("NO-CARRIER"));
  await expectPing(a, ip[1]!);

  const lv = await labs.setLinkCarrier("car", link.id, "down");
  assert.equal(lv.state, "down");
  for (const n of [a, b]) assert.ok((await linkState(n, "eth1")).flags.includes("NO-CARRIER"));
  await expectNoPing(b, ip[0]!);
  const up = await labs.setLinkCarrier("car", link.id, "up");
  assert.equal(up.state, "up");
  await expectPing(b, ip[0]!);

  await labs.deleteLab("car");
});

test("two labs with the same node and interface names coexist; tearing one down spares the other", async (ctx) => {
  dropLabsAfter(ctx, "twin1", "twin2");
  const labs = t.agent.labs;
  const one = await nodes("twin1", 2, 13);
  const two = await nodes("twin2", 2, 14);
  await labs.addLink("twin1", { a: "n0:eth1", b: "n1:eth1" });
  await labs.addLink("twin2", { a: "n0:eth1", b: "n1:eth1" });
  const ports = (lab: string) =>
    labs
      .getLab(lab)
      .nodes.flatMap((n) => n.interfaces.map((i) => i.host_port))
      .sort();
  const p1 = ports("twin1");
  const p2 = ports("twin2");
  assert.equal(new Set([...p1, ...p2]).size, 4, "distinct host ports");
  await Promise.all([expectPing(one.ns[0]!, one.ip[1]!), expectPing(two.ns[0]!, two.ip[1]!)]);
  await labs.deleteLab("twin1");
  const left = (await ovsPorts(t.ovs)).map((p) => p.name);
  for (const p of p1) assert.ok(!left.includes(p), `${p} of twin1 is gone`);
  for (const p of p2) assert.ok(left.includes(p), `${p} of twin2 stays`);
  await expectPing(two.ns[0]!, two.ip[1]!);
  assert.deepEqual(
    labs.listLabs().map((l) => l.lab),
    ["twin2"],
  );
  await labs.deleteLab("twin2");
});
