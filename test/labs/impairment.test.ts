/**
 * Impairments on a real agent (private OVS, real namespaces, tc on the host ends): a rate through
 * tbf measured with iperf3, netem refused where the kernel has none (this host), bad bodies
 * refused, GET reading back what tc applies, DELETE, the lab body, restart, drift, link removal.
 * Delay and loss themselves are measured in the kernel test host (test/kernel/impair.test.ts).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { buildServer } from "../../src/api/server.js";
import type { App } from "../../src/api/types.js";
import { isAgentError } from "../../src/common/errors.js";
import { silentLogger } from "../../src/common/log.js";
import { netemMissing } from "../../src/link/tc.js";
import type { Impairment } from "../../src/model/records.js";
import type { ImpairmentView, LabSpec, LinkView } from "../../src/model/views.js";
import { stateOf } from "../api/fixture.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { addAddress, NetnsPool, nsExec } from "../harness/netns.js";
import { expectPing, iperfThroughput } from "../harness/traffic.js";

const LAB = "imp";

let t: TestAgent;
const pool = new NetnsPool("imp");
let n1: string;
let n2: string;
let app: App;
let spec: LabSpec;

/** The root qdisc of a host port, as tc prints it (in the agent's switch namespace). */
async function qdisc(dev: string): Promise<string> {
  const { stdout } = await nsExec(t.ovs.netns!, ["tc", "qdisc", "show", "dev", dev, "root"]);
  return stdout.trim();
}

function hostPort(node: string): string {
  return t.agent.store.lab(LAB)!.nodes[node]!.interfaces.eth1!.hostPort;
}

async function call(method: "GET" | "PUT" | "DELETE", url: string, body?: unknown) {
  const res = await app.inject({
    method,
    url,
    ...(body === undefined
      ? {}
      : { payload: JSON.stringify(body), headers: { "content-type": "application/json" } }),
  });
  return { status: res.statusCode, body: res.body, json: <T>() => JSON.parse(res.body) as T };
}

const url = `/labs/${LAB}/links/l1/impairment`;

before(async () => {
  t = await startTestAgent();
  [n1, n2] = (await pool.create(2)) as [string, string];
  spec = {
    nodes: [
      { name: "a", netns: n1, interfaces: [{ name: "eth1", mtu: 1500 }] },
      { name: "b", netns: n2, interfaces: [{ name: "eth1", mtu: 1500 }] },
    ],
    links: [{ a: "a:eth1", b: "b:eth1", id: "l1" }],
  };
  await t.agent.labs.putLab(LAB, spec);
  await addAddress(n1, "eth1", "198.18.21.1/24");
  await addAddress(n2, "eth1", "198.18.21.2/24");
  app = buildServer(t.agent.services, { logger: silentLogger() });
});
after(async () => {
  await app?.close();
  await pool.destroyAll();
  await t?.close();
});

describe("link impairments on the host", () => {
  it("rate_kbit 10000 (tbf): iperf3 a->b within 10% of 10 Mbit/s of frames; GET reads it back from tc", async (ctx) => {
    const put = await call("PUT", url, { a_to_b: { rate_kbit: 10_000 } });
    assert.equal(put.status, 200, put.body);
    const view = put.json<ImpairmentView>();
    assert.deepEqual(view.a_to_b, { rate_kbit: 10_000 });
    assert.deepEqual(view.b_to_a, {});
    assert.deepEqual(view.applied, { a_to_b: { rate_kbit: 10_000 }, b_to_a: {} });
    assert.equal(view.in_sync, true);
    // a->b leaves the switch on b's host end; a's host end is untouched.
    assert.match(await qdisc(hostPort("b")), /^qdisc tbf .*rate 10Mbit/);
    assert.doesNotMatch(await qdisc(hostPort("a")), /tbf|netem/);
    await expectPing(n1, "198.18.21.2");
    const bps = await iperfThroughput(n1, n2, "198.18.21.2");
    ctx.diagnostic(`iperf3 a->b through rate_kbit 10000: ${(bps / 1e6).toFixed(2)} Mbit/s`);
    // iperf3 counts TCP payload: 1448 of a 1514-byte frame, 9.56 Mbit/s through 10 Mbit/s of
    // frames when nothing else runs. 10% below that is left for a busy machine's scheduling.
    assert.ok(bps > 8.6e6 && bps < 11e6, `iperf3 through a 10 Mbit/s link: ${(bps / 1e6).toFixed(2)} Mbit/s`);
    // The link's view says so too.
    const link = t.agent.labs.listLinks(LAB).find((l) => l.id === "l1") as LinkView;
    assert.deepEqual(link.impairment, { a_to_b: { rate_kbit: 10_000 } });
    const get = await call("GET", url);
    assert.equal(get.status, 200);
    assert.deepEqual(get.json<ImpairmentView>().applied, { a_to_b: { rate_kbit: 10_000 }, b_to_a: {} });
  });

  it("netem fields where the kernel has no netem are 501 with the reason, and change nothing", {
    skip: netemMissing() === undefined ? "this kernel has netem" : false,
  }, async () => {
    const before = await stateOf(t.agent.services);
    const qb = await qdisc(hostPort("b"));
    for (const body of [
      { a_to_b: { delay_ms: 20 } },
      { a_to_b: { rate_kbit: 5000, loss_pct: 1 } },
      { b_to_a: { jitter_ms: 1, delay_ms: 5 } },
      { b_to_a: { corrupt_pct: 1 } },
      { a_to_b: { duplicate_pct: 1 } },
      { a_to_b: { reorder_pct: 1, delay_ms: 1 } },
    ]) {
      const res = await call("PUT", url, body);
      assert.equal(res.status, 501, res.body);
      const err = res.json<{ error: { code: string; message: string } }>().error;
      assert.equal(err.code, "NOT_SUPPORTED");
      assert.match(err.message, /netem/);
    }
    // The lab body too.
    const lab = await app.inject({
      method: "PUT",
      url: `/labs/${LAB}`,
      headers: { "content-type": "application/json" },
      payload: JSON.stringify({
        ...spec,
        links: [{ ...spec.links[0], impairment: { a_to_b: { delay_ms: 10 } } }],
      }),
    });
    assert.equal(lab.statusCode, 501, lab.body);
    assert.equal(await stateOf(t.agent.services), before);
    assert.equal(await qdisc(hostPort("b")), qb);
    assert.deepEqual(t.agent.store.lab(LAB)!.links.l1!.impairment, { a_to_b: { rate_kbit: 10_000 } });
  });

  it("bad bodies are 400 and change nothing", async () => {
    const before = await stateOf(t.agent.services);
    const record = JSON.stringify(t.agent.store.lab(LAB));
    const bad: unknown[] = [
      { a_to_b: { loss_pct: 101 } },
      { a_to_b: { loss_pct: -1 } },
      { a_to_b: { delay_ms: 60_001 } },
      { a_to_b: { rate_kbit: 1.5 } },
      { a_to_b: { rate_kbit: 4 } },
      { a_to_b: { rate_kbit: 100_000_001 } },
      { a_to_b: { jitter_ms: 5 } },
      { b_to_a: { reorder_pct: 5 } },
      { a_to_b: { delay: 5 } },
      { c_to_d: {} },
      { a_to_b: "5ms" },
      { a_to_b: { loss_pct: "1" } },
      { a_to_b: { loss_pct: null } },
      { a_to_b: [] },
      [],
      "x",
      7,
    ];
    for (const body of bad) {
      const res = await call("PUT", url, body);
      assert.equal(res.status, 400, `${JSON.stringify(body)}: ${res.body}`);
      assert.equal(res.json<{ error: { code: string } }>().error.code, "BAD_REQUEST");
    }
    // Straight to the service (the schema is not there): the same answers.
    for (const body of bad.slice(0, 9)) {
      await assert.rejects(t.agent.services.impairments.set(LAB, "l1", body as Impairment), (e) =>
        isAgentError(e, "BAD_REQUEST"),
      );
    }
    // In a lab body.
    const res = await app.inject({
      method: "PUT",
      url: `/labs/${LAB}`,
      headers: { "content-type": "application/json" },
      payload: JSON.stringify({
        ...spec,
        links: [{ ...spec.links[0], impairment: { a_to_b: { loss_pct: 200 } } }],
      }),
    });
    assert.equal(res.statusCode, 400, res.body);
    await assert.rejects(
      t.agent.labs.putLab(LAB, {
        ...spec,
        links: [{ a: "a:eth1", b: "b:eth1", id: "l1", impairment: { b_to_a: { jitter_ms: 3 } } }],
      }),
      (e) => isAgentError(e, "BAD_REQUEST"),
    );
    assert.equal(await stateOf(t.agent.services), before);
    assert.equal(JSON.stringify(t.agent.store.lab(LAB)), record);
    // Unknown lab and link: 404.
    assert.equal((await call("PUT", `/labs/nope/links/l1/impairment`, {})).status, 404);
    assert.equal((await call("GET", `/labs/${LAB}/links/nope/impairment`)).status, 404);
  });

  it("DELETE clears both directions; both host ends are back to their default", async () => {
    await call("PUT", url, { a_to_b: { rate_kbit: 20_000 }, b_to_a: { rate_kbit: 30_000 } });
    assert.match(await qdisc(hostPort("a")), /tbf .*rate 30Mbit/);
    const del = await call("DELETE", url);
    assert.equal(del.status, 200, del.body);
    assert.deepEqual(del.json<ImpairmentView>().applied, { a_to_b: {}, b_to_a: {} });
    for (const n of ["a", "b"]) assert.doesNotMatch(await qdisc(hostPort(n)), /tbf|netem/);
    assert.equal(t.agent.store.lab(LAB)!.links.l1!.impairment, undefined);
    assert.equal(
      t.agent.labs.listLinks(LAB).find((l) => l.id === "l1")?.impairment,
      undefined,
      "no impairment in the link's view",
    );
    // Clearing what is clear is fine.
    assert.equal((await call("DELETE", url)).status, 200);
  });

  it("a declarative lab body sets, changes and clears it (swapped ends keep their directions)", async () => {
    const withImp = (impairment: Impairment | undefined, swap = false): LabSpec => ({
      ...spec,
      links: [
        {
          ...(swap ? { a: "b:eth1", b: "a:eth1" } : { a: "a:eth1", b: "b:eth1" }),
          id: "l1",
          ...(impairment ? { impairment } : {}),
        },
      ],
    });
    let r = await t.agent.labs.putLab(LAB, withImp({ b_to_a: { rate_kbit: 4000 } }));
    assert.deepEqual(r.changes.impairments_changed, ["l1"]);
    assert.match(await qdisc(hostPort("a")), /tbf .*rate 4Mbit/);
    r = await t.agent.labs.putLab(LAB, withImp({ b_to_a: { rate_kbit: 4000 } }));
    assert.deepEqual(r.changes.impairments_changed, []);
    // The same link written b, a: its b_to_a is the record's a_to_b.
    r = await t.agent.labs.putLab(LAB, withImp({ b_to_a: { rate_kbit: 6000 } }, true));
    assert.deepEqual(r.changes.impairments_changed, ["l1"]);
    assert.deepEqual(t.agent.store.lab(LAB)!.links.l1!.impairment, { a_to_b: { rate_kbit: 6000 } });
    assert.match(await qdisc(hostPort("b")), /tbf .*rate 6Mbit/);
    assert.doesNotMatch(await qdisc(hostPort("a")), /tbf/);
    r = await t.agent.labs.putLab(LAB, withImp(undefined));
    assert.deepEqual(r.changes.impairments_changed, ["l1"]);
    for (const n of ["a", "b"]) assert.doesNotMatch(await qdisc(hostPort(n)), /tbf|netem/);
    await expectPing(n1, "198.18.21.2");
  });

  it("an agent restart restores it; a change by hand is repaired by reconcile; removing the link removes it", async () => {
    await t.agent.services.impairments.set(LAB, "l1", { a_to_b: { rate_kbit: 8000 } });
    const portB = hostPort("b");
    await app.close();
    await t.stopAgent();
    // Lost while the agent was away.
    await nsExec(t.ovs.netns!, ["tc", "qdisc", "del", "dev", portB, "root"]);
    assert.doesNotMatch(await qdisc(portB), /tbf/);
    await t.startAgent();
    app = buildServer(t.agent.services, { logger: silentLogger() });
    assert.match(await qdisc(portB), /tbf .*rate 8Mbit/);
    // Changed by hand: the next reconcile sets it back, and removes one added by hand elsewhere.
    await nsExec(t.ovs.netns!, [
      "tc",
      "qdisc",
      "replace",
      "dev",
      hostPort("b"),
      "root",
      "tbf",
      "rate",
      "1mbit",
      "burst",
      "10k",
      "latency",
      "10ms",
    ]);
    assert.equal((await t.agent.services.impairments.get(LAB, "l1")).in_sync, false);
    const repairs = await t.agent.reconcile();
    assert.ok(
      repairs.some((r) => /impairment a_to_b of link l1/.test(r)),
      repairs.join("; "),
    );
    assert.match(await qdisc(hostPort("b")), /tbf .*rate 8Mbit/);
    assert.equal((await t.agent.services.impairments.get(LAB, "l1")).in_sync, true);
    // Gone with the link; the interfaces stay.
    await t.agent.labs.removeLink(LAB, "l1");
    for (const n of ["a", "b"]) assert.doesNotMatch(await qdisc(hostPort(n)), /tbf|netem/);
    // Back for the next tests.
    await t.agent.labs.putLab(LAB, spec);
    await expectPing(n1, "198.18.21.2");
  });

  it("impairment set and clear: each one tc process, well under a second", async (ctx) => {
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      await t.agent.services.impairments.set(LAB, "l1", { a_to_b: { rate_kbit: 1000 + i } });
      await t.agent.services.impairments.set(LAB, "l1", undefined);
      times.push((performance.now() - t0) / 2);
    }
    times.sort((x, y) => x - y);
    ctx.diagnostic(`set/clear median ${times[2]!.toFixed(1)} ms`);
    assert.ok(times[2]! < 1000, `median set/clear ${times[2]} ms`);
  });
});

// Counters come from the switch's cache, which ovs-vswitchd refreshes every 5 s.
describe("per-link counters", () => {
  it("link views carry both ends' counters, growing with traffic; /metrics has them per lab, link and end", async () => {
    const view = () => t.agent.labs.listLinks(LAB).find((l) => l.id === "l1") as LinkView;
    const before = view().counters;
    assert.ok(before?.a && before.b, JSON.stringify(view()));
    for (const k of Object.keys(before.a))
      assert.equal(typeof before.a[k as keyof typeof before.a], "number");
    await nsExec(n1, ["ping", "-n", "-q", "-c", "20", "-i", "0.01", "198.18.21.2"]);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const c = view().counters!;
      if (c.a!.tx_packets >= before.a.tx_packets + 20 && c.b!.rx_packets >= before.b.rx_packets + 20) {
        assert.ok(c.a!.rx_packets >= before.a.rx_packets + 20, "a received the replies");
        assert.ok(c.a!.tx_bytes > before.a.tx_bytes);
        break;
      }
      assert.ok(Date.now() < deadline, `counters did not grow: ${JSON.stringify(c)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const res = await app.inject({ method: "GET", url: "/metrics" });
    assert.match(res.body, /archnet_link_tx_packets\{lab="imp",link="l1",end="a"\} [1-9]\d*/);
    assert.match(res.body, /archnet_link_rx_dropped\{lab="imp",link="l1",end="b"\} \d+/);
    assert.match(res.body, /archnet_captures_active 0/);
    // Exactly one series per link end.
    assert.equal(res.body.match(/^archnet_link_rx_bytes\{/gm)?.length, 2);
  });
});
