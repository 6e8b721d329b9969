import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type Agent, createAgent } from "../../src/agent.js";
import { startApi } from "../../src/api/server.js";
import type { OvnBackend } from "../../src/backends/ovn/ovn-backend.js";
import { silentLogger } from "../../src/common/log.js";
import type { AgentConfig } from "../../src/config/config.js";
import type { LabSpec, LabView, OrphanView } from "../../src/model/views.js";
import { addAddress, NetnsPool } from "../harness/netns.js";
import { type OvnHosts, ovnAgentConfig, startOvnHosts, until } from "../harness/ovn-hosts.js";
import { readPid } from "../harness/ovs-instance.js";
import { ping } from "../harness/traffic.js";

/**
 * The ovn backend's faults beyond restarts (lab-across-hosts.test.ts has those): a host that
 * disappears (its ovn-controller stopped, its chassis deleted from SB) and comes back, and
 * cleanup of the agent's orphaned logical switches beside a foreign deployment's. Two simulated
 * hosts (test/harness/ovn-hosts.ts), an agent each.
 */
let ovn: OvnHosts;
const pool = new NetnsPool("ovnf");
const agents: (Agent | undefined)[] = [];
const stateDirs: string[] = [];
const configs: AgentConfig[] = [];
const ns: Record<string, string> = {};
const HV2 = "hv2";
const ADDR = { a: "198.19.7.1", b: "198.19.7.2", c: "198.19.8.1", d: "198.19.8.2" };

function agent(i: number): Agent {
  const a = agents[i];
  if (!a) throw new Error(`agent ${i} is stopped`);
  return a;
}
const labs = (i: number) => agent(i).services.labs;
const backend = (i: number) => agent(i).services.backend as OvnBackend;

async function startAgent(i: number): Promise<void> {
  agents[i] = await createAgent(configs[i]!, { logger: silentLogger() });
}

/** A node on hv1 and one on hv2, linked. */
function pair(x: "a" | "c", y: "b" | "d", link: string): LabSpec {
  return {
    nodes: [
      { name: x, netns: ns[x]!, interfaces: [{ name: "eth1" }] },
      { name: y, netns: ns[y]!, host: HV2, interfaces: [{ name: "eth1" }] },
    ],
    links: [{ id: link, a: `${x}:eth1`, b: `${y}:eth1` }],
  };
}

function allUp(v: LabView): boolean {
  return (
    v.nodes.every((n) => n.state === "ok" && n.interfaces.every((i) => i.binding?.up && i.present)) &&
    v.links.every((l) => l.state === "up")
  );
}

async function eventuallyPings(from: string, to: string, ms = 60_000): Promise<void> {
  await until(`ping from ${from} to ${to}`, () => ping(ns[from]!, to, { timeoutS: 1 }), ms);
}

/** The rows the agents wrote, as ovn-nbctl lists them (sorted: list order is not stable). */
async function nbRows(): Promise<string> {
  const rows: string[] = [];
  for (const [table, cols] of [
    ["Logical_Switch", "name,external_ids,other_config"],
    ["Logical_Switch_Port", "name,external_ids,enabled,addresses"],
  ] as const) {
    const out = await ovn.central.nbctl(["--bare", `--columns=${cols}`, "list", table]);
    rows.push(...out.split("\n\n").map((r) => `${table} ${r.trim()}`));
  }
  return rows.sort().join("\n");
}

before(async () => {
  ovn = await startOvnHosts({ hosts: 2, configureChassis: false });
  for (const h of ovn.hosts) {
    const dir = await mkdtemp(join(tmpdir(), "archnet-ovnf-"));
    stateDirs.push(dir);
    // Short, so a silent host is told within the test (syncs are asked every second).
    const c = ovnAgentConfig(ovn, h, dir);
    configs.push({ ...c, ovn: { ...c.ovn, hostTimeoutS: 3 } });
  }
  for (let i = 0; i < 2; i++) await startAgent(i);
  const names = await pool.create(4);
  ["a", "b", "c", "d"].forEach((n, i) => {
    ns[n] = names[i]!;
  });
  await until("both chassis in SB", () => backend(0).registeredChassis().size === 2, 60_000);
  await until(
    "br-int on both hosts",
    () => [0, 1].every((i) => backend(i).ovs.bridgeByName("br-int")),
    60_000,
  );
});

after(async () => {
  for (const a of agents) await a?.close().catch(() => undefined);
  await pool.destroyAll();
  await ovn?.close();
  for (const d of stateDirs) await rm(d, { recursive: true, force: true });
});

test("a host that disappears: its links show down with the reason, NB keeps the lab; back, traffic returns", async () => {
  await labs(0).putLab("hg", pair("a", "b", "L1"));
  await addAddress(ns.a!, "eth1", `${ADDR.a}/24`);
  await addAddress(ns.b!, "eth1", `${ADDR.b}/24`);
  await until("the lab up, seen from hv1", () => allUp(labs(0).getLab("hg")), 60_000);
  await eventuallyPings("a", ADDR.b);
  const nbBefore = await nbRows();

  // hv2 goes: its agent and ovn-controller stop, its chassis row is deleted (ovn-sbctl chassis-del).
  await agents[1]!.close();
  agents[1] = undefined;
  await ovn.hosts[1]!.stopController();
  await ovn.central.sbctl(["--if-exists", "chassis-del", HV2]);
  await until("hv1's agent sees hv2's chassis gone", () => !backend(0).registeredChassis().has(HV2));
  const view = labs(0).getLab("hg");
  const b = view.nodes.find((n) => n.name === "b")!;
  assert.equal(b.state, "lost");
  assert.match(b.reason ?? "", /host hv2 is gone/);
  assert.equal(b.interfaces[0]?.oper_state, "no_carrier");
  assert.match(b.interfaces[0]?.reason ?? "", /no chassis hv2/);
  assert.equal(b.interfaces[0]?.present, false);
  const a = view.nodes.find((n) => n.name === "a")!;
  assert.equal(a.state, "ok");
  assert.equal(a.interfaces[0]?.oper_state, "peer_down");
  assert.match(a.interfaces[0]?.reason ?? "", /peer b:eth1: host hv2 is gone/);
  assert.equal(view.links[0]?.state, "down");
  assert.match(view.links[0]?.reason ?? "", /b:eth1: host hv2 is gone/);
  await until("hv1 no longer reaches b", async () => !(await ping(ns.a!, ADDR.b, { timeoutS: 1 })));

  // Over HTTP the reasons are in the answer (the response schema carries them).
  const api = await startApi(agent(0).services, { logger: silentLogger() });
  try {
    const got = (await (await fetch(`${api.address}/labs/hg`)).json()) as LabView;
    assert.match(got.links[0]?.reason ?? "", /host hv2 is gone/);
    assert.match(got.nodes.find((n) => n.name === "b")?.interfaces[0]?.reason ?? "", /host hv2 is gone/);
  } finally {
    await api.close();
  }
  // NB keeps the lab as it was; a PUT of the same body is taken (its node stays on the gone host).
  await labs(0).putLab("hg", pair("a", "b", "L1"));
  assert.equal(await nbRows(), nbBefore, "NB unchanged while hv2 is gone");

  // hv2 comes back: ovn-controller registers its chassis again and claims the ports its OVS
  // still has; no API call.
  await ovn.hosts[1]!.startController();
  await until("the lab up again, seen from hv1", () => allUp(labs(0).getLab("hg")), 60_000);
  assert.equal(labs(0).getLab("hg").links[0]?.reason, undefined);
  await eventuallyPings("a", ADDR.b);
  await startAgent(1);
  await until("the lab up, seen from hv2's agent back", () => allUp(labs(1).getLab("hg")), 60_000);
  await eventuallyPings("b", ADDR.a);
  assert.equal(await nbRows(), nbBefore, "NB unchanged after hv2 came back");
});

test("a host that vanishes without leaving SB (frozen): shown not answering, NB kept; thawed, traffic returns", async () => {
  await labs(0).putLab("hz", pair("c", "d", "L2"));
  await addAddress(ns.c!, "eth1", `${ADDR.c}/24`);
  await addAddress(ns.d!, "eth1", `${ADDR.d}/24`);
  await until("the lab up, seen from hv1", () => allUp(labs(0).getLab("hz")), 60_000);
  await eventuallyPings("c", ADDR.d);
  const nbBefore = await nbRows();

  // hv2 freezes whole (its ovn-controller and ovs-vswitchd): its chassis row stays in SB.
  const hv2 = ovn.hosts[1]!;
  const pids = [
    await readPid(join(hv2.ovs.dir, "ovn-controller.pid")),
    await readPid(join(hv2.ovs.dir, "ovs-vswitchd.pid")),
  ].filter((p): p is number => p !== undefined);
  assert.equal(pids.length, 2, "hv2's ovn-controller and ovs-vswitchd pids");
  const thaw = () => {
    for (const p of pids) process.kill(p, "SIGCONT");
  };
  try {
    for (const p of pids) process.kill(p, "SIGSTOP");
    await until(
      "hv1's agent tells hv2 is not answering",
      () => /host hv2 is not answering/.test(labs(0).getLab("hz").links[0]?.reason ?? ""),
      30_000,
    );
    assert.ok(backend(0).registeredChassis().has(HV2), "hv2's chassis is still in SB");
    const view = labs(0).getLab("hz");
    const d = view.nodes.find((n) => n.name === "d")!;
    assert.equal(d.state, "lost");
    assert.match(
      d.reason ?? "",
      /host hv2 is not answering: its ovn-controller has applied no change for \d+ s/,
    );
    assert.equal(view.links[0]?.state, "down");
    const c = view.nodes.find((n) => n.name === "c")!;
    assert.equal(c.state, "ok");
    assert.equal(c.interfaces[0]?.oper_state, "peer_down");
    assert.equal(await ping(ns.c!, ADDR.d, { timeoutS: 1 }), false, "a frozen host passes no traffic");
    assert.equal(await nbRows(), nbBefore, "NB unchanged while hv2 is silent");
  } finally {
    thaw();
  }
  await until("the lab up again, seen from hv1", () => allUp(labs(0).getLab("hz")), 60_000);
  assert.equal(labs(0).getLab("hz").links[0]?.reason, undefined);
  await eventuallyPings("c", ADDR.d);
  await labs(0).deleteLab("hz");
});

test("cleanup removes only the agent's orphaned logical switches; a foreign one and live labs stay", async () => {
  const foreign = "an:foreign:L1";
  try {
    // A foreign deployment's switch: the agent's name pattern and kind/lab keys, but no owner mark.
    await ovn.central.nbctl(["ls-add", foreign, "--", "lsp-add", foreign, "fport"]);
    await ovn.central.nbctl([
      "set",
      "Logical_Switch",
      foreign,
      "external_ids:archetype_kind=link",
      "external_ids:archetype_lab=orph",
    ]);
    await labs(1).putLab("orph", pair("c", "d", "L9"));
    await until("lab orph up", () => allUp(labs(0).getLab("orph")), 60_000);
    // Its lab switch is deleted behind the agents' backs: the link switch and its ports are left.
    await ovn.central.nbctl(["ls-del", "an:orph"]);
    await until("lab orph gone from the agent's view", () =>
      labs(0)
        .listLabs()
        .every((l) => l.lab !== "orph"),
    );
    assert.match(
      await ovn.central.nbctl(["--bare", "--columns=name", "list", "Logical_Switch"]),
      /an:orph:L9/,
    );
    for (const i of [0, 1]) {
      await until(`host ${i}'s veth of the orphaned lab removed`, async () =>
        (await backend(i).status()).ports.every((p) => p.lab !== "orph"),
      );
    }

    const api = await startApi(agent(0).services, { logger: silentLogger() });
    try {
      const audit = (await (await fetch(`${api.address}/cleanup/audit`)).json()) as { orphans: OrphanView[] };
      assert.deepEqual(
        audit.orphans.map((o) => [o.kind, o.name]),
        [["logical_switch", "an:orph:L9"]],
      );
      assert.match(audit.orphans[0]!.reason, /lab orph, whose lab switch is gone/);
      assert.match(
        await ovn.central.nbctl(["--bare", "--columns=name", "list", "Logical_Switch"]),
        /an:orph:L9/,
        "the audit removes nothing",
      );
      const run = await fetch(`${api.address}/cleanup/run`, { method: "POST" });
      assert.equal(run.status, 200);
      const removed = ((await run.json()) as { removed: OrphanView[] }).removed;
      assert.deepEqual(
        removed.map((o) => o.name),
        ["an:orph:L9"],
      );
    } finally {
      await api.close();
    }
    const switches = (await ovn.central.nbctl(["--bare", "--columns=name", "list", "Logical_Switch"]))
      .split("\n")
      .filter((l) => l !== "")
      .sort();
    assert.deepEqual(switches, ["an:foreign:L1", "an:hg", "an:hg:L1"]);
    const ports = (await ovn.central.nbctl(["--bare", "--columns=name", "list", "Logical_Switch_Port"]))
      .split("\n")
      .filter((l) => l !== "")
      .sort();
    assert.deepEqual(ports, ["an:hg:a:eth1", "an:hg:b:eth1", "fport"], "the orphan's ports went with it");
    assert.deepEqual(await agent(1).services.cleanup.audit(), [], "nothing is left to remove");
    // The live lab still carries traffic.
    await eventuallyPings("a", ADDR.b);
  } finally {
    await ovn.central.nbctl(["--if-exists", "ls-del", foreign]);
  }
});

test("a lab made again after its lab switch was deleted behind the agents' backs: its leftovers go in the same transaction", async () => {
  await labs(0).putLab("again", pair("c", "d", "L5"));
  await until("lab again up", () => allUp(labs(1).getLab("again")), 60_000);
  await ovn.central.nbctl(["ls-del", "an:again"]);
  await until("lab again gone from the view", () =>
    labs(0)
      .listLabs()
      .every((l) => l.lab !== "again"),
  );
  // The link switch an:again:L5 and its ports are left; their port names would clash.
  await labs(1).putLab("again", pair("c", "d", "L5"));
  const switches = (await ovn.central.nbctl(["--bare", "--columns=name", "list", "Logical_Switch"]))
    .split("\n")
    .filter((l) => l.startsWith("an:again"))
    .sort();
  assert.deepEqual(switches, ["an:again", "an:again:L5"], "one link switch, the new one");
  await until("lab again up once more", () => allUp(labs(0).getLab("again")), 60_000);
  await addAddress(ns.c!, "eth1", `${ADDR.c}/24`);
  await addAddress(ns.d!, "eth1", `${ADDR.d}/24`);
  await eventuallyPings("c", ADDR.d);
  assert.deepEqual(await agent(0).services.cleanup.audit(), []);
  await labs(0).deleteLab("again");
});
