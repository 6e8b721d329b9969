import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type Agent, createAgent } from "../../src/agent.js";
import { startApi } from "../../src/api/server.js";
import { NB_MARK, shapedError } from "../../src/backends/ovn/marks.js";
import type { OvnBackend } from "../../src/backends/ovn/ovn-backend.js";
import { isAgentError } from "../../src/common/errors.js";
import { silentLogger } from "../../src/common/log.js";
import type { AgentConfig } from "../../src/config/config.js";
import { netemMissing } from "../../src/link/index.js";
import type { Impairment } from "../../src/model/records.js";
import type { ImpairmentView, LabSpec, LabView } from "../../src/model/views.js";
import { eq, mapDeleteKeys, mapInsert, mutate } from "../../src/ovsdb/index.js";
import { addAddress, NetnsPool, nsExec } from "../harness/netns.js";
import { type OvnHosts, ovnAgentConfig, startOvnHosts, until } from "../harness/ovn-hosts.js";
import { iperfThroughput, ping } from "../harness/traffic.js";

/**
 * Link impairments with the ovn backend, on real OVN across two simulated hosts: the impairment
 * lives in NB on the link's switch, each end's host agent puts the qdisc on its own host end
 * (a->b is the egress of b's host end) and reports it in NB; the change answers once both did.
 * This kernel has tbf and no netem: the shapes here are rates.
 */
let ovn: OvnHosts;
const pool = new NetnsPool("ovni");
const agents: (Agent | undefined)[] = [];
const configs: AgentConfig[] = [];
const stateDirs: string[] = [];
const ns: Record<string, string> = {};
const [HV1, HV2] = ["hv1", "hv2"];
const LAB = "imp";

const agent = (i: number): Agent => {
  const a = agents[i];
  if (!a) throw new Error(`agent ${i} is stopped`);
  return a;
};
const backend = (i: number) => agent(i).services.backend as OvnBackend;
const impairments = (i: number) => agent(i).services.impairments;

/** a on hv1; b and c on hv2 (c is where L1 is rewired to), all in 198.19.9.0/24. */
function spec(bEnd = "b:eth1", impairment?: Impairment): LabSpec {
  return {
    nodes: [
      { name: "a", netns: ns.a!, host: HV1, interfaces: [{ name: "eth1" }] },
      { name: "b", netns: ns.b!, host: HV2, interfaces: [{ name: "eth1" }] },
      { name: "c", netns: ns.c!, host: HV2, interfaces: [{ name: "eth1" }] },
    ],
    links: [{ id: "L1", a: "a:eth1", b: bEnd, ...(impairment ? { impairment } : {}) }],
  };
}

/** The host end of a node's eth1 and the namespace it is in (its host's). */
function hostEnd(node: string): { netns: string; dev: string } {
  const v = agent(0).services.labs.getLab(LAB) as LabView;
  const n = v.nodes.find((x) => x.name === node)!;
  return { netns: ovn.hosts[n.host === HV1 ? 0 : 1]!.netns, dev: n.interfaces[0]!.host_port };
}

async function qdisc(node: string): Promise<string> {
  const { netns, dev } = hostEnd(node);
  const { stdout } = await nsExec(netns, ["tc", "qdisc", "show", "dev", dev, "root"]);
  return stdout.trim();
}

/** NB's rows of the lab's switches and ports, to compare before and after a refused change. */
function nbRows(): string {
  const b = backend(0);
  return JSON.stringify(
    ["Logical_Switch", "Logical_Switch_Port"].map((t) =>
      [...b.nb.rawRows(t).values()].map((r) => [r.name, r.external_ids, r.ports ?? null, r.enabled ?? null]),
    ),
  );
}

before(async () => {
  ovn = await startOvnHosts({ hosts: 2, configureChassis: false });
  for (const h of ovn.hosts) {
    const dir = await mkdtemp(join(tmpdir(), "archnet-ovni-"));
    stateDirs.push(dir);
    configs.push(ovnAgentConfig(ovn, h, dir));
  }
  for (let i = 0; i < 2; i++) agents[i] = await createAgent(configs[i]!, { logger: silentLogger() });
  const names = await pool.create(3);
  ["a", "b", "c"].forEach((n, i) => {
    ns[n] = names[i]!;
  });
  await until("both chassis in SB", () => [HV1, HV2].every((h) => backend(0).knownHosts().has(h)), 60_000);
  await until(
    "br-int on both hosts",
    () => [0, 1].every((i) => backend(i).ovs.bridgeByName("br-int")),
    60_000,
  );
  await agent(0).services.labs.putLab(LAB, spec());
  await until(
    "every interface bound",
    () =>
      agent(1)
        .services.labs.getLab(LAB)
        .nodes.every((n) => n.interfaces.every((i) => i.binding?.up)),
    60_000,
  );
  await addAddress(ns.a!, "eth1", "198.19.9.1/24");
  await addAddress(ns.b!, "eth1", "198.19.9.2/24");
  await addAddress(ns.c!, "eth1", "198.19.9.3/24");
});

after(async () => {
  for (const a of agents) await a?.close().catch(() => undefined);
  await pool.destroyAll();
  await ovn?.close();
  for (const d of stateDirs) await rm(d, { recursive: true, force: true });
});

const nodeMacOf = async (netns: string) =>
  (await nsExec(netns, ["cat", "/sys/class/net/eth1/address"])).stdout.trim();

test("set through hv1's agent, applied on both hosts before the answer; iperf3 across hosts runs at the rate", async (ctx) => {
  await until("a pings b across hosts", () => ping(ns.a!, "198.19.9.2"), 30_000);
  const view = await impairments(0).set(LAB, "L1", {
    a_to_b: { rate_kbit: 2000 },
    b_to_a: { rate_kbit: 20_000 },
  });
  assert.deepEqual(view.applied, { a_to_b: { rate_kbit: 2000 }, b_to_a: { rate_kbit: 20_000 } });
  assert.equal(view.in_sync, true);
  // a->b leaves the switch on b's host end (hv2); b->a on a's (hv1). Both were there at the answer.
  assert.match(await qdisc("b"), /^qdisc tbf .*rate 2Mbit/);
  assert.match(await qdisc("a"), /^qdisc tbf .*rate 20Mbit/);
  const bps = await iperfThroughput(ns.a!, ns.b!, "198.19.9.2");
  ctx.diagnostic(`iperf3 a (hv1) -> b (hv2) through rate_kbit 2000: ${(bps / 1e6).toFixed(2)} Mbit/s`);
  assert.ok(
    bps > 1.5e6 && bps < 2.2e6,
    `iperf3 across hosts through a 2 Mbit/s link: ${(bps / 1e6).toFixed(2)} Mbit/s`,
  );
  // hv2's agent shows the same: its own end read back from tc, hv1's as hv1's agent reported it.
  const seen = await impairments(1).get(LAB, "L1");
  assert.deepEqual(seen.applied, view.applied);
  assert.equal(seen.in_sync, true);
  const link = agent(1)
    .services.labs.getLab(LAB)
    .links.find((l) => l.id === "L1");
  assert.deepEqual(link?.impairment, { a_to_b: { rate_kbit: 2000 }, b_to_a: { rate_kbit: 20_000 } });
});

test("over HTTP from hv2's agent: DELETE clears both hosts' ends", async () => {
  const api = await startApi(agent(1).services, { logger: silentLogger() });
  try {
    const res = await fetch(`${api.address}/labs/${LAB}/links/L1/impairment`, { method: "DELETE" });
    assert.equal(res.status, 200, await res.clone().text());
    const view = (await res.json()) as ImpairmentView;
    assert.deepEqual(view.applied, { a_to_b: {}, b_to_a: {} });
    for (const n of ["a", "b"]) assert.doesNotMatch(await qdisc(n), /tbf|netem/);
    assert.equal(agent(0).services.labs.getLab(LAB).links[0]?.impairment, undefined);
  } finally {
    await api.close();
  }
});

test("the lab body carries it; a rewire to another node moves it there and leaves the old end plain", async () => {
  const imp = { a_to_b: { rate_kbit: 8000 } };
  const put = await agent(1).services.labs.putLab(LAB, spec("b:eth1", imp));
  assert.deepEqual(put.changes.impairments_changed, ["L1"]);
  assert.match(await qdisc("b"), /tbf .*rate 8Mbit/);
  await agent(0).services.labs.putLab(LAB, spec("c:eth1", imp));
  assert.match(await qdisc("c"), /tbf .*rate 8Mbit/, "the new end has it at the answer");
  assert.doesNotMatch(await qdisc("b"), /tbf|netem/, "the old end is a plain interface again");
  await until("a pings c, the new end", () => ping(ns.a!, "198.19.9.3"), 30_000);
  const view = await impairments(0).get(LAB, "L1");
  assert.deepEqual(view.applied, { a_to_b: { rate_kbit: 8000 }, b_to_a: {} });
  assert.equal(view.in_sync, true);
});

test("hv2's agent restarted after its qdisc was removed by hand, then its veth deleted: shaped again, no API call", async () => {
  const c = hostEnd("c");
  await agent(1).close();
  agents[1] = undefined;
  try {
    await nsExec(c.netns, ["tc", "qdisc", "del", "dev", c.dev, "root"]);
    assert.doesNotMatch(await qdisc("c"), /tbf/);
  } finally {
    agents[1] = await createAgent(configs[1]!, { logger: silentLogger() });
  }
  await until("c's qdisc back", async () => /tbf .*rate 8Mbit/.test(await qdisc("c")), 30_000);
  const macBefore = await nodeMacOf(ns.c!);
  await nsExec(c.netns, ["ip", "link", "del", c.dev]);
  await until(
    "c's veth made again, with its qdisc",
    async () =>
      /tbf .*rate 8Mbit/.test(
        await nsExec(c.netns, ["tc", "qdisc", "show", "dev", c.dev, "root"], { okCodes: [1, 2, 255] }).then(
          (r) => r.stdout,
        ),
      ),
    30_000,
  );
  await until("in sync, seen from hv1", async () => (await impairments(0).get(LAB, "L1")).in_sync, 30_000);
  // The node's end was made again too, with its MAC (a's neighbour entry still holds), without
  // the address the test had given it.
  assert.equal(await nodeMacOf(ns.c!), macBefore);
  await addAddress(ns.c!, "eth1", "198.19.9.3/24");
  await until("a pings c through the remade veth", () => ping(ns.a!, "198.19.9.3"), 30_000);
});

test("netem where this kernel has none: 501 with the reason, NB unchanged", {
  skip: netemMissing() === undefined ? "this kernel has netem" : false,
}, async () => {
  const before = nbRows();
  for (const bad of [{ a_to_b: { delay_ms: 20 } }, { b_to_a: { rate_kbit: 1000, loss_pct: 1 } }]) {
    await assert.rejects(impairments(0).set(LAB, "L1", bad), (e) => isAgentError(e, "NOT_SUPPORTED"));
    await assert.rejects(
      agent(1).services.labs.putLab(LAB, spec("c:eth1", bad)),
      (e) => isAgentError(e, "NOT_SUPPORTED") && /netem/.test(e.message),
    );
  }
  assert.equal(nbRows(), before);
});

test("bad bodies are 400, unknown links 404; NB unchanged", async () => {
  const before = nbRows();
  for (const bad of [
    { a_to_b: { loss_pct: 101 } },
    { a_to_b: { rate_kbit: 4 } },
    { c_to_d: {} },
    { a_to_b: "5ms" },
  ]) {
    await assert.rejects(impairments(1).set(LAB, "L1", bad as Impairment), (e) =>
      isAgentError(e, "BAD_REQUEST"),
    );
  }
  await assert.rejects(impairments(0).set(LAB, "nope", {}), (e) => isAgentError(e, "LINK_NOT_FOUND"));
  await assert.rejects(impairments(0).get("nope", "L1"), (e) => isAgentError(e, "LAB_NOT_FOUND"));
  assert.equal(nbRows(), before);
});

test("a host whose tc refuses the shape: its error is answered and the change rolled back in NB", async () => {
  const lsp = "an:imp:c:eth1";
  const where = [eq("name", lsp)];
  await agent(1).close();
  agents[1] = undefined;
  let restarted: Promise<Agent> | undefined;
  try {
    const set = impairments(0).set(LAB, "L1", { a_to_b: { rate_kbit: 5000 } });
    const asked = () => backend(0).nbState().labs.get(LAB)?.links.get("L1")?.impairment?.a_to_b?.rate_kbit;
    await until("the change in NB", () => asked() === 5000);
    // What hv2's agent reports when tc refuses (it is stopped: written here as it would).
    const refusal = shapedError('{"rate_kbit":5000}', "COMMAND_FAILED", "tc -batch failed: injected");
    await backend(0).nb.transact([
      mutate("Logical_Switch_Port", where, [mapDeleteKeys("external_ids", [NB_MARK.shaped])]),
      mutate("Logical_Switch_Port", where, [mapInsert("external_ids", { [NB_MARK.shaped]: refusal })]),
    ]);
    // Back at once: the rollback waits for hv2 to report the impairment before, as any change.
    restarted = createAgent(configs[1]!, { logger: silentLogger() });
    await assert.rejects(
      set,
      (e) =>
        isAgentError(e, "COMMAND_FAILED") &&
        /host hv2: .*injected/.test(e.message) &&
        /rolled back: the lab is as it was/.test(e.message),
    );
    assert.equal(asked(), 8000, "NB holds the impairment before the change");
  } finally {
    agents[1] = await (restarted ?? createAgent(configs[1]!, { logger: silentLogger() }));
  }
  const view = await impairments(0).get(LAB, "L1");
  assert.equal(view.in_sync, true, JSON.stringify(view));
  assert.match(await qdisc("c"), /tbf .*rate 8Mbit/);
});

test("netem across hosts: each direction's delay adds to the round trip", {
  skip: netemMissing() === undefined ? false : "this kernel has no netem (make test-kernel runs it)",
}, async (ctx) => {
  const view = await impairments(1).set(LAB, "L1", { a_to_b: { delay_ms: 40 }, b_to_a: { delay_ms: 25 } });
  assert.deepEqual(view.applied, { a_to_b: { delay_ms: 40 }, b_to_a: { delay_ms: 25 } });
  assert.equal(view.in_sync, true);
  assert.match(await qdisc("c"), /^qdisc netem .*delay 40ms/);
  assert.match(await qdisc("a"), /^qdisc netem .*delay 25ms/);
  const r = await nsExec(ns.a!, ["ping", "-n", "-q", "-c", "3", "-i", "0.2", "-W", "5", "198.19.9.3"]);
  const min = Number(/= ([\d.]+)\//.exec(r.stdout)?.[1]);
  ctx.diagnostic(`ping a (hv1) -> c (hv2) through 40 ms + 25 ms: min rtt ${min} ms`);
  assert.ok(min >= 65, `min rtt ${min} ms through 40 ms one way and 25 ms back`);
});

test("deleting the lab removes the qdiscs with the veths", async () => {
  const c = hostEnd("c");
  await agent(0).services.labs.deleteLab(LAB);
  await until(
    "c's veth gone on hv2",
    async () => (await nsExec(c.netns, ["ip", "link", "show", c.dev], { okCodes: [1] })).code !== 0,
    30_000,
  );
});
