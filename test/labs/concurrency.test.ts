import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { AgentError } from "../../src/common/errors.js";
import { defaultLinkId } from "../../src/model/derived-names.js";
import { parseEnd } from "../../src/model/names.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { addAddress, NetnsPool } from "../harness/netns.js";
import { expectPing } from "../harness/traffic.js";
import { assertNoSharedVlan, hostVeths, ownedPorts, percentile, ringLadderSpec } from "./facts.js";

/**
 * Many link requests at once over overlapping interfaces, across labs: the outcome must be what
 * running them one by one in arrival order gives, with a VLAN of its own for every link.
 * Also measures (prints) hot connect/disconnect latency and a 200-link PUT.
 */
let t: TestAgent;
const pool = new NetnsPool("lcc");

before(async () => {
  t = await startTestAgent();
});
after(async () => {
  await pool.destroyAll();
  await t?.close();
});

/** mulberry32: a seeded PRNG, so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

type Op = { lab: string; kind: "add"; a: string; b: string } | { lab: string; kind: "rm"; id: string };

/** The reference: the lab service's rules applied one request at a time. */
function model(ops: readonly Op[], links: Map<string, Map<string, [string, string]>>): string[] {
  return ops.map((op) => {
    const lab = links.get(op.lab) ?? new Map<string, [string, string]>();
    links.set(op.lab, lab);
    if (op.kind === "rm") {
      if (!lab.has(op.id)) return "LINK_NOT_FOUND";
      lab.delete(op.id);
      return "ok";
    }
    if (op.a === op.b) return "BAD_REQUEST";
    const id = defaultLinkId(parseEnd(op.a), parseEnd(op.b));
    const same = lab.get(id);
    if (same) return "ok"; // default ids are derived from the ends: same id, same ends
    for (const [x, y] of lab.values())
      if ([x, y].includes(op.a) || [x, y].includes(op.b)) return "ALREADY_LINKED";
    lab.set(id, [op.a, op.b]);
    return "ok";
  });
}

async function checkSwitch(expected: Map<string, Map<string, [string, string]>>) {
  const ports = await ownedPorts(t.ovs);
  assertNoSharedVlan(ports);
  const byEnd = new Map(
    ports.map((p) => [`${p.ids.archetype_lab}/${p.ids.archetype_node}:${p.ids.archetype_if}`, p]),
  );
  const linkedEnds = new Set<string>();
  const tags = new Set<number>();
  for (const [lab, links] of expected) {
    const view = t.agent.labs.getLab(lab);
    assert.deepEqual(
      view.links.map((l) => l.id).sort(),
      [...links.keys()].sort(),
      `lab ${lab}: the agent reports exactly the links it accepted`,
    );
    for (const l of view.links) {
      assert.equal(l.state, "up", `${lab}/${l.id}`);
      const [pa, pb] = [byEnd.get(`${lab}/${l.a}`), byEnd.get(`${lab}/${l.b}`)];
      assert.ok(pa && pb);
      assert.equal(pa.tag, l.vlan);
      assert.equal(pb.tag, l.vlan);
      assert.equal(pa.ids.archetype_link, l.id);
      assert.ok(!tags.has(l.vlan as number), `VLAN ${l.vlan} used by two links`);
      tags.add(l.vlan as number);
      for (const e of [l.a, l.b]) {
        assert.ok(!linkedEnds.has(`${lab}/${e}`), `${lab}/${e} is in two links`);
        linkedEnds.add(`${lab}/${e}`);
      }
    }
  }
  for (const [end, p] of byEnd) {
    if (linkedEnds.has(end)) continue;
    assert.equal(p.ids.archetype_link, undefined, `${end} is unlinked but marked ${p.ids.archetype_link}`);
    assert.equal(p.tag, Number(p.ids.archetype_isolated), `${end} is back on its isolated VLAN`);
  }
}

test("100 concurrent connect/disconnect requests over overlapping interfaces, two labs", async () => {
  const labsNames = ["cc1", "cc2"];
  const ns = await pool.create(12);
  const ends: string[] = [];
  for (const [i, n] of ns.entries()) {
    const ifs = ["eth1", "eth2", "eth3"].map((name) => ({ name }));
    // The same node and interface names in both labs, in different namespaces.
    await t.agent.labs.addInterfaces(labsNames[i % 2]!, `r${i >> 1}`, { netns: n, interfaces: ifs });
    if (i % 2 === 0) for (const f of ifs) ends.push(`r${i >> 1}:${f.name}`);
  }
  const rnd = prng(7);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)] as T;
  const expected = new Map<string, Map<string, [string, string]>>();
  for (let round = 0; round < 3; round++) {
    const ops: Op[] = [];
    // Candidate ids from links that exist or could: removals hit real and unknown links alike.
    for (let i = 0; i < 100; i++) {
      const lab = pick(labsNames);
      const a = pick(ends);
      const b = pick(ends);
      if (rnd() < 0.35 && a !== b) ops.push({ lab, kind: "rm", id: defaultLinkId(parseEnd(a), parseEnd(b)) });
      else ops.push({ lab, kind: "add", a, b });
    }
    // Removals mostly of links that exist at the start of the round.
    for (const [lab, links] of expected)
      for (const id of links.keys()) if (rnd() < 0.5) ops.push({ lab, kind: "rm", id });
    ops.sort(() => rnd() - 0.5);
    const want = model(ops, expected);
    const settled = await Promise.allSettled(
      ops.map((op) =>
        op.kind === "add"
          ? t.agent.labs.addLink(op.lab, { a: op.a, b: op.b })
          : t.agent.labs.removeLink(op.lab, op.id),
      ),
    );
    const got = settled.map((s) =>
      s.status === "fulfilled" ? "ok" : s.reason instanceof AgentError ? s.reason.code : String(s.reason),
    );
    const diff = ops.map((op, i) => [op, want[i], got[i]] as const).filter(([, w, g]) => w !== g);
    assert.deepEqual(diff, [], `round ${round}: outcomes differ from one-by-one execution`);
    await checkSwitch(expected);
    const n = [...expected.values()].reduce((s, m) => s + m.size, 0);
    console.log(
      `# round ${round}: ${ops.length} requests, ${want.filter((w) => w === "ok").length} accepted, ${n} links`,
    );
  }
  // Same check after a full reconcile: nothing to repair.
  assert.deepEqual(await t.agent.reconcile(), []);
  for (const lab of labsNames) await t.agent.labs.deleteLab(lab);
  assert.deepEqual(await ownedPorts(t.ovs), []);
  await pool.destroyAll();
});

test("measure: hot connect/disconnect latency over 500 operations", async () => {
  const [n1, n2] = (await pool.create(2)) as [string, string];
  const labs = t.agent.labs;
  await labs.addInterfaces("hot", "a", { netns: n1, interfaces: [{ name: "eth1" }] });
  await labs.addInterfaces("hot", "b", { netns: n2, interfaces: [{ name: "eth1" }] });
  await addAddress(n1, "eth1", "198.18.40.1/24");
  await addAddress(n2, "eth1", "198.18.40.2/24");
  const connect: number[] = [];
  const disconnect: number[] = [];
  for (let i = 0; i < 250; i++) {
    let t0 = performance.now();
    const l = await labs.addLink("hot", { a: "a:eth1", b: "b:eth1" });
    connect.push(performance.now() - t0);
    t0 = performance.now();
    await labs.removeLink("hot", l.id);
    disconnect.push(performance.now() - t0);
  }
  const all = [...connect, ...disconnect].sort((x, y) => x - y);
  connect.sort((x, y) => x - y);
  disconnect.sort((x, y) => x - y);
  const f = (xs: number[]) =>
    `p50 ${percentile(xs, 50).toFixed(1)} ms, p99 ${percentile(xs, 99).toFixed(1)} ms`;
  console.log(`# hot connect: ${f(connect)}; disconnect: ${f(disconnect)}; all 500: ${f(all)}`);
  await labs.addLink("hot", { a: "a:eth1", b: "b:eth1" });
  await expectPing(n1, "198.18.40.2");
  await labs.deleteLab("hot");
  await pool.destroyAll();
});

test("measure: PUT of 200 links (400 interfaces, 100 namespaces)", async () => {
  const ns = await pool.create(100);
  // A ring over eth1/eth2 and a ladder over eth3/eth4: 200 links, every interface used once.
  const spec = ringLadderSpec(ns);
  let t0 = performance.now();
  const r = await t.agent.labs.putLab("big", spec);
  const put = performance.now() - t0;
  assert.equal(r.lab.links.length, 200);
  assert.ok(r.lab.links.every((l) => l.state === "up"));
  t0 = performance.now();
  const again = await t.agent.labs.putLab("big", spec);
  const noop = performance.now() - t0;
  assert.deepEqual(Object.values(again.changes).flat(), []);
  assertNoSharedVlan(await ownedPorts(t.ovs));
  assert.equal((await hostVeths(t.ovs)).length, 400);
  await addAddress(ns[0]!, "eth3", "198.18.41.1/24");
  await addAddress(ns[1]!, "eth3", "198.18.41.2/24");
  await expectPing(ns[0]!, "198.18.41.2");
  t0 = performance.now();
  await t.agent.labs.deleteLab("big");
  const teardown = performance.now() - t0;
  assert.deepEqual(await ownedPorts(t.ovs), []);
  assert.deepEqual(await hostVeths(t.ovs), []);
  console.log(
    `# PUT 200 links/400 interfaces/100 netns: ${put.toFixed(0)} ms; idempotent PUT ${noop.toFixed(0)} ms; teardown ${teardown.toFixed(0)} ms`,
  );
});
