import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type Agent, createAgent } from "../../src/agent.js";
import { startApi } from "../../src/api/server.js";
import type { OvnBackend } from "../../src/backends/ovn/ovn-backend.js";
import { isAgentError } from "../../src/common/errors.js";
import { silentLogger } from "../../src/common/log.js";
import type { AgentConfig } from "../../src/config/config.js";
import type { LabSpec, LabView } from "../../src/model/views.js";
import { EventReader, samples } from "../harness/event-reader.js";
import { addAddress, NetnsPool, nsExec } from "../harness/netns.js";
import { type OvnHosts, ovnAgentConfig, startOvnHosts, until } from "../harness/ovn-hosts.js";
import { icmpEcho, parsePcap } from "../harness/pcap.js";
import { capture, ping } from "../harness/traffic.js";

/**
 * One lab across three simulated hosts on real OVN (test/harness/ovn-hosts.ts): each host a
 * private OVS + ovn-controller + its own agent (ARCHETYPE_AGENT_BACKEND=ovn), central NB/SB/northd.
 * The agents write ovn-controller's settings themselves (the harness leaves them out).
 */
let ovn: OvnHosts;
const pool = new NetnsPool("ovnl");
const agents: (Agent | undefined)[] = [];
const stateDirs: string[] = [];
const configs: AgentConfig[] = [];
/** Node name -> its namespace. */
const ns: Record<string, string> = {};

function agent(i: number): Agent {
  const a = agents[i];
  if (!a) throw new Error(`agent ${i} is stopped`);
  return a;
}
const labs = (i: number) => agent(i).services.labs;
const backend = (i: number) => agent(i).services.backend as OvnBackend;

const [HV1, HV2, HV3] = ["hv1", "hv2", "hv3"];
/** Nodes: two per host. Addresses: one /24 per link (198.19.L.x). */
const NODES = [
  { name: "a1", host: HV1, ifs: ["eth1", "eth2"] },
  { name: "a2", host: HV1, ifs: ["eth1", "eth2"] },
  { name: "b1", host: HV2, ifs: ["eth1"] },
  { name: "b2", host: HV2, ifs: ["eth1"] },
  { name: "c1", host: HV3, ifs: ["eth1", "eth2"] },
  { name: "c2", host: HV3, ifs: ["eth1"] },
];
const ADDR: Record<string, string> = {
  "a1:eth1": "198.19.1.1",
  "a2:eth1": "198.19.1.2", // L1 inside hv1
  "a1:eth2": "198.19.2.1",
  "b1:eth1": "198.19.2.2", // L2 hv1 <-> hv2
  "c1:eth2": "198.19.2.3", // unlinked; L2 is rewired to it
  "b2:eth1": "198.19.3.1",
  "c1:eth1": "198.19.3.2", // L3 hv2 <-> hv3
  "c2:eth1": "198.19.4.1",
  "a2:eth2": "198.19.4.2", // L4 hv3 <-> hv1
};

/** The lab body; nodes on `self` (the host of the agent that takes it) give no host. */
function spec(l2b = "b1:eth1", self = HV1): LabSpec {
  return {
    nodes: NODES.map((n) => ({
      name: n.name,
      netns: ns[n.name]!,
      ...(n.host === self ? {} : { host: n.host }),
      interfaces: n.ifs.map((name) => ({ name })),
    })),
    links: [
      { id: "L1", a: "a1:eth1", b: "a2:eth1" },
      { id: "L2", a: "a1:eth2", b: l2b },
      { id: "L3", a: "b2:eth1", b: "c1:eth1" },
      { id: "L4", a: "c2:eth1", b: "a2:eth2" },
    ],
  };
}

async function startAgent(i: number): Promise<Agent> {
  agents[i] = await createAgent(configs[i]!, { logger: silentLogger() });
  return agents[i]!;
}

before(async () => {
  ovn = await startOvnHosts({ hosts: 3, configureChassis: false });
  for (const h of ovn.hosts) {
    const dir = await mkdtemp(join(tmpdir(), "archnet-ovn-"));
    stateDirs.push(dir);
    configs.push(ovnAgentConfig(ovn, h, dir));
  }
  for (let i = 0; i < 3; i++) await startAgent(i);
  const names = await pool.create(NODES.length);
  NODES.forEach((n, i) => {
    ns[n.name] = names[i]!;
  });
  // Every chassis registered (the agents wrote ovn-controller's settings) and every br-int made.
  await until(
    "three chassis in SB",
    () => [HV1, HV2, HV3].every((h) => backend(0).knownHosts().has(h) && backend(1).knownHosts().has(h)),
    60_000,
  );
  await until(
    "br-int on every host",
    () => [0, 1, 2].every((i) => backend(i).ovs.bridgeByName("br-int") !== undefined),
    60_000,
  );
});

after(async () => {
  for (const a of agents) await a?.close().catch(() => undefined);
  await pool.destroyAll();
  await ovn?.close();
  for (const d of stateDirs) await rm(d, { recursive: true, force: true });
});

function allBound(v: LabView): boolean {
  return v.nodes.every((n) => n.interfaces.every((i) => i.binding?.up === true && i.present));
}

/** Pings until it answers or the deadline passes (a loaded machine: generous). */
async function eventuallyPings(from: string, to: string, ms = 30_000): Promise<void> {
  await until(`ping from ${from} to ${to}`, () => ping(ns[from]!, to, { timeoutS: 1 }), ms);
}

async function addresses(): Promise<void> {
  for (const [end, ip] of Object.entries(ADDR)) {
    const [node, dev] = end.split(":") as [string, string];
    await addAddress(ns[node]!, dev, `${ip}/24`);
  }
}

/** Raw frames out of `dev`: `kind` lldp (0x88cc to 01:80:c2:00:00:0e) or vlan (802.1Q tag 42). */
async function sendFrames(node: string, dev: string, kind: "lldp" | "vlan", count: number): Promise<void> {
  const py = [
    "import socket,sys,time",
    "s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)",
    "s.bind((sys.argv[1],0))",
    "src=open('/sys/class/net/'+sys.argv[1]+'/address').read().strip().replace(':','')",
    "if sys.argv[3]=='lldp':",
    "  f=bytes.fromhex('0180c200000e'+src+'88cc'+'020704'+src+'0304056574683106020078'+'0000')",
    "else:",
    "  f=bytes.fromhex('ffffffffffff'+src+'8100'+'002a'+'88b5')+b'archetype-tagged'",
    "f=f+bytes(max(0,60-len(f)))",
    "for i in range(int(sys.argv[2])):",
    "  s.send(f); time.sleep(0.05)",
  ].join("\n");
  await nsExec(ns[node]!, ["python3", "-c", py, dev, String(count), kind]);
}

test("a malformed lab is refused and nothing is written to NB", async () => {
  const before = await ovn.central.nbctl(["--bare", "--columns=name", "list", "Logical_Switch"]);
  const bad: [string, LabSpec, string][] = [
    [
      "unknown host",
      { nodes: [{ name: "x", netns: ns.a1!, host: "nohost", interfaces: [{ name: "eth9" }] }], links: [] },
      "HOST_NOT_FOUND",
    ],
    [
      "a node on two hosts",
      {
        nodes: [
          { name: "x", netns: ns.a1!, interfaces: [{ name: "eth9" }] },
          { name: "x", netns: ns.b1!, host: HV2, interfaces: [{ name: "eth9" }] },
        ],
        links: [],
      },
      "BAD_REQUEST",
    ],
    [
      "a link to a port of another lab",
      {
        nodes: [{ name: "x", netns: ns.a1!, interfaces: [{ name: "eth9" }] }],
        links: [{ a: "x:eth9", b: "a1:eth1" }],
      },
      "BAD_REQUEST",
    ],
    [
      "an impairment with a field out of range",
      {
        nodes: [
          { name: "x", netns: ns.a1!, interfaces: [{ name: "eth9" }] },
          { name: "y", netns: ns.a1!, interfaces: [{ name: "eth8" }] },
        ],
        links: [{ a: "x:eth9", b: "y:eth8", impairment: { a_to_b: { loss_pct: 101 } } }],
      },
      "BAD_REQUEST",
    ],
  ];
  for (const [what, body, code] of bad) {
    await assert.rejects(
      labs(1).putLab("bad", body),
      (e: unknown) => isAgentError(e) && e.code === code,
      `${what}: refused with ${code}`,
    );
  }
  assert.equal(await ovn.central.nbctl(["--bare", "--columns=name", "list", "Logical_Switch"]), before);
  assert.equal(await ovn.central.nbctl(["--bare", "--columns=name", "list", "Logical_Switch_Port"]), "");
  assert.deepEqual(
    labs(2)
      .listLabs()
      .map((l) => l.lab),
    [],
  );
});

test("one lab on three hosts: every agent builds its part; pings inside and across hosts", async () => {
  const put = await labs(0).putLab("span", spec());
  assert.deepEqual(put.changes.nodes_added.sort(), NODES.map((n) => n.name).sort());
  await addresses();
  // Any agent shows the whole lab, each interface with its host and binding.
  await until("every interface bound, seen from hv2's agent", () => allBound(labs(1).getLab("span")), 60_000);
  const view = labs(2).getLab("span");
  assert.equal(view.nodes.length, 6);
  const b1 = view.nodes.find((n) => n.name === "b1")!;
  assert.equal(b1.host, HV2);
  assert.deepEqual(b1.interfaces[0]?.binding, { chassis: HV2, up: true });
  assert.equal(b1.interfaces[0]?.link, "L2");
  assert.ok(
    view.links.every((l) => l.state === "up"),
    JSON.stringify(view.links),
  );

  await eventuallyPings("a1", ADDR["a2:eth1"]!); // inside hv1
  await eventuallyPings("a1", ADDR["b1:eth1"]!); // hv1 -> hv2
  await eventuallyPings("b2", ADDR["c1:eth1"]!); // hv2 -> hv3
  await eventuallyPings("c2", ADDR["a2:eth2"]!); // hv3 -> hv1
  // The unlinked c1:eth2 sits in L2's subnet and hears nothing.
  assert.equal(await ping(ns.a1!, ADDR["c1:eth2"]!), false, "an unlinked interface is isolated");
});

test("over HTTP: any agent's GET shows hosts and bindings; a PUT naming an unknown host is a 404", async () => {
  const api = await startApi(agent(2).services, { logger: silentLogger() });
  try {
    const got = await fetch(`${api.address}/labs/span`);
    assert.equal(got.status, 200);
    const view = (await got.json()) as LabView;
    const a1 = view.nodes.find((n) => n.name === "a1")!;
    assert.equal(a1.host, HV1);
    assert.deepEqual(a1.interfaces[0]?.binding, { chassis: HV1, up: true });
    const put = await fetch(`${api.address}/labs/other`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        nodes: [{ name: "z", netns: ns.c2!, host: "hv9", interfaces: [{ name: "eth7" }] }],
        links: [],
      }),
    });
    assert.equal(put.status, 404);
    assert.equal(((await put.json()) as { error: { code: string } }).error.code, "HOST_NOT_FOUND");
  } finally {
    await api.close();
  }
});

test("802.1Q-tagged frames and LLDP cross a cross-host link unchanged", async () => {
  const tagged = await capture(ns.b1!, "eth1", ["vlan", "42"], () => sendFrames("a1", "eth2", "vlan", 3), {
    count: 3,
    timeoutMs: 10_000,
  });
  // tcpdump adds hex lines for the unknown inner ethertype: count the frames' own lines.
  const frames = tagged.filter((l) => /ethertype 802\.1Q.*vlan 42/.test(l));
  assert.equal(frames.length, 3, `tagged frames on b1:eth1: ${tagged.join("\n")}`);
  const lldp = await capture(
    ns.b1!,
    "eth1",
    ["ether", "proto", "0x88cc"],
    () => sendFrames("a1", "eth2", "lldp", 3),
    { count: 3, timeoutMs: 10_000 },
  );
  assert.equal(lldp.length, 3, `LLDP frames on b1:eth1: ${lldp.join("\n")}`);
  assert.match(lldp[0]!, /01:80:c2:00:00:0e/);
});

test("capture of a cross-host link on this host's end; another host's interface is refused, naming its host", async (ctx) => {
  const api = await startApi(agent(0).services, { logger: silentLogger() });
  ctx.after(() => api.close());
  // L2 is a1:eth2 (hv1, this agent's host) <-> b1:eth1 (hv2).
  const res = await fetch(`${api.address}/labs/span/links/L2/capture?count=2&filter=icmp`, {
    signal: AbortSignal.timeout(60_000),
  });
  assert.equal(res.status, 200);
  assert.ok(await ping(ns.a1!, ADDR["b1:eth1"]!), "a1 pings b1 across hosts");
  const echoes = parsePcap(Buffer.from(await res.arrayBuffer()))
    .frames.map((f) => icmpEcho(f.data))
    .filter((e) => e !== undefined);
  assert.deepEqual(
    echoes.map((e) => [e.type, e.src, e.dst]),
    [
      [8, ADDR["a1:eth2"], ADDR["b1:eth1"]],
      [0, ADDR["b1:eth1"], ADDR["a1:eth2"]],
    ],
    "the request and its reply, as they crossed hv1's end of the link",
  );

  const far = await fetch(`${api.address}/labs/span/nodes/b1/interfaces/eth1/capture?count=1`);
  assert.equal(far.status, 409);
  const body = (await far.json()) as { error: { message: string; hint?: string } };
  assert.match(body.error.message, /not on this host \(hv1\): it runs on hv2/);
});

test("the live feed carries this host's lab ports with rates while a cross-host ping runs", async (ctx) => {
  await ovn.hosts[0]!.vsctl(["set", "Open_vSwitch", ".", "other_config:stats-update-interval=1000"]);
  const api = await startApi(agent(0).services, { logger: silentLogger() });
  const reader = new EventReader(`${api.address}/events?lab=span`, "");
  ctx.after(async () => {
    reader.close();
    await api.close();
    await ovn.hosts[0]!.vsctl(["remove", "Open_vSwitch", ".", "other_config", "stats-update-interval"]);
  });
  const view = labs(0).getLab("span");
  const port = view.nodes.find((n) => n.name === "a1")!.interfaces.find((i) => i.name === "eth2")!.host_port;
  await reader.next((e) => e.type === "hello", 10_000);
  await eventuallyPings("a1", ADDR["b1:eth1"]!);
  const pinging = nsExec(ns.a1!, ["ping", "-n", "-q", "-i", "0.2", "-c", "40", ADDR["b1:eth1"]!], {
    timeoutMs: 30_000,
  });
  try {
    const e = await reader.next(
      (x) => x.type === "ports" && samples(x).some((p) => p.port === port && p.rx_pps > 0 && p.tx_pps > 0),
      20_000,
    );
    const s = samples(e).find((p) => p.port === port)!;
    assert.equal(s.lab, "span");
    console.log(`# ${port} (a1:eth2 on hv1): ${s.rx_pps.toFixed(1)} rx, ${s.tx_pps.toFixed(1)} tx packets/s`);
  } finally {
    await pinging;
  }
  const all = reader.events.filter((x) => x.type === "ports").flatMap(samples);
  assert.ok(
    all.every((p) => p.lab === "span"),
    "only the lab's ports, none of ovn-controller's own (tunnels, br-int)",
  );
});

test("hot rewire of a cross-host link to another host's node: one NB transaction, answered once applied", async () => {
  const nbTxnsBefore = Number((await ovn.central.nbctl(["get", "NB_Global", ".", "nb_cfg"])).trim());
  const r = await labs(1).putLab("span", spec("c1:eth2", HV2));
  assert.deepEqual(r.changes.links_added, ["L2"]);
  const applied = agent(1).ovnLabs?.lastApplied;
  assert.ok(
    applied && applied.pending.length === 0,
    `every touched chassis applied it: ${JSON.stringify(applied)}`,
  );
  assert.equal(applied.nbCfg, nbTxnsBefore + 1, "one NB transaction (one nb_cfg bump)");
  const l2 = r.lab.links.find((l) => l.id === "L2")!;
  assert.equal(l2.b, "c1:eth2");
  await eventuallyPings("a1", ADDR["c1:eth2"]!);
  assert.equal(await ping(ns.a1!, ADDR["b1:eth1"]!), false, "the old peer is cut off");
  await eventuallyPings("b2", ADDR["c1:eth1"]!); // the other links are untouched
});

test("carrier down from another host's agent: the port is disabled and the node sees NO-CARRIER; up restores", async () => {
  const noCarrier = async () => {
    const r = await nsExec(ns.a1!, ["ip", "-j", "link", "show", "dev", "eth2"]);
    const [l] = JSON.parse(r.stdout) as { flags: string[] }[];
    return l!.flags.includes("NO-CARRIER");
  };
  const down = await labs(2).setCarrier("span", "a1", "eth2", "down");
  assert.equal(down.oper_state, "admin_down");
  assert.equal(await ping(ns.a1!, ADDR["c1:eth2"]!), false, "a pulled cable carries nothing");
  await until("a1:eth2 shows NO-CARRIER (hv1's agent set its host end down)", noCarrier);
  // A declarative PUT keeps the cable pulled.
  await labs(0).putLab("span", spec("c1:eth2"));
  assert.equal(
    labs(1)
      .getLab("span")
      .links.find((l) => l.id === "L2")?.state,
    "down",
  );
  const link = await labs(1).setLinkCarrier("span", "L2", "up");
  assert.notEqual(link.state, "down");
  await until("a1:eth2 has carrier again", async () => !(await noCarrier()));
  await eventuallyPings("a1", ADDR["c1:eth2"]!);
});

test("a node's veth deleted by hand while its agent runs is made again and bound, with no API call", async () => {
  const iface = () =>
    labs(2)
      .getLab("span")
      .nodes.find((n) => n.name === "c1")!
      .interfaces.find((i) => i.name === "eth2")!;
  await eventuallyPings("a1", ADDR["c1:eth2"]!);
  await nsExec(ovn.hosts[2]!.netns, ["ip", "link", "del", iface().host_port]);
  // Nothing in NB changes: hv3's agent sees its br-int port lose the device.
  await until("c1:eth2 made again", async () => {
    const r = await nsExec(ns.c1!, ["ip", "link", "show", "eth2"]).then(
      () => true,
      () => false,
    );
    return r && iface().binding?.up === true;
  });
  await addAddress(ns.c1!, "eth2", `${ADDR["c1:eth2"]}/24`);
  await nsExec(ns.a1!, ["ip", "neigh", "flush", "dev", "eth2"]);
  await eventuallyPings("a1", ADDR["c1:eth2"]!);
});

test("faults: an agent restart, ovn-controller, SB and NB restarts; traffic returns without API calls", async () => {
  // The agent of hv3 goes: what it made stays (traffic flows). The veth of c1:eth2 is lost
  // meanwhile; the agent, back, makes it again from NB and binds it.
  await agents[2]!.close();
  agents[2] = undefined;
  await eventuallyPings("a1", ADDR["c1:eth2"]!);
  const hostPort = labs(0)
    .getLab("span")
    .nodes.find((n) => n.name === "c1")!
    .interfaces.find((i) => i.name === "eth2")!.host_port;
  await nsExec(ovn.hosts[2]!.netns, ["ip", "link", "del", hostPort]);
  assert.equal(await ping(ns.a1!, ADDR["c1:eth2"]!), false, "the lost veth carried the link");
  await startAgent(2);
  await addAddress(ns.c1!, "eth2", `${ADDR["c1:eth2"]}/24`);
  // The re-made interface has a new MAC address: a1 must not wait for its ARP entry to age.
  await nsExec(ns.a1!, ["ip", "neigh", "flush", "dev", "eth2"]);
  await until("hv3's agent shows the lab bound", () => allBound(labs(2).getLab("span")), 60_000);
  await eventuallyPings("a1", ADDR["c1:eth2"]!);

  // ovn-controller of hv2 restarts: its flows come back from SB.
  await ovn.hosts[1]!.restartController();
  await eventuallyPings("b2", ADDR["c1:eth1"]!, 60_000);

  // The SB server restarts (its database file persists): every chassis reconnects.
  await ovn.central.stopSb();
  await ovn.central.startSb();
  await eventuallyPings("b2", ADDR["c1:eth1"]!, 60_000);
  await eventuallyPings("a1", ADDR["c1:eth2"]!, 60_000);
  await eventuallyPings("c2", ADDR["a2:eth2"]!, 60_000);
  await until("bindings seen again after SB restart", () => allBound(labs(0).getLab("span")), 60_000);

  // The NB server restarts: traffic flows meanwhile, and once the agents are back a rewire works.
  await ovn.central.stopNb();
  await ovn.central.startNb();
  await eventuallyPings("b2", ADDR["c1:eth1"]!, 60_000);
  await until(
    "a PUT through hv1's agent after the NB restart",
    () =>
      labs(0)
        .putLab("span", spec())
        .then(
          () => true,
          (e: unknown) => {
            if (isAgentError(e) && e.code === "OVS_UNREACHABLE") return false;
            throw e;
          },
        ),
    60_000,
  );
  await eventuallyPings("a1", ADDR["b1:eth1"]!, 60_000);
  assert.equal(await ping(ns.a1!, ADDR["c1:eth2"]!), false, "rewired back: c1:eth2 is cut off again");
});

test("two agents writing one lab at once: one wins whole, the other is told to retry", async () => {
  const body = (iface: string): LabSpec => ({
    nodes: [{ name: "r", netns: ns.a1!, host: HV1, interfaces: [{ name: iface }] }],
    links: [],
  });
  await labs(0).putLab("race", body("eth5"));
  const results = await Promise.allSettled([
    labs(0).putLab("race", body("eth6")),
    labs(1).putLab("race", body("eth7")),
  ]);
  const refused = results.filter((r) => r.status === "rejected");
  for (const r of refused) {
    assert.ok(isAgentError(r.reason) && r.reason.code === "CONFLICT", String(r.reason));
  }
  assert.ok(refused.length <= 1);
  const ifaces = labs(2)
    .getLab("race")
    .nodes.flatMap((n) => n.interfaces.map((i) => i.name));
  assert.equal(ifaces.length, 1, `one body won whole: ${ifaces}`);
  assert.ok(["eth6", "eth7"].includes(ifaces[0]!));
  await labs(1).deleteLab("race");
});

test("deleting the lab removes its logical switches and every host's veths", async () => {
  await labs(2).deleteLab("span");
  assert.equal(await ovn.central.nbctl(["--bare", "--columns=name", "list", "Logical_Switch"]), "");
  for (const i of [0, 1, 2]) {
    await until(`host ${i}'s ports gone`, async () => (await backend(i).status()).ports.length === 0, 30_000);
  }
  await until("node interfaces gone", async () => {
    const r = await nsExec(ns.b1!, ["ip", "-o", "link", "show", "eth1"], { okCodes: [1] });
    return r.code !== 0;
  });
});

test("a lab deleted and put again at once comes back whole; a host's many veths go with it", async () => {
  // hv1 holds 14 of the lab's veths (a1 with 8 more, unlinked): more than one `ip link del` each.
  const extra = Array.from({ length: 8 }, (_, k) => ({ name: `eth${k + 3}` }));
  const big = (): LabSpec => {
    const s = spec();
    return {
      ...s,
      nodes: s.nodes.map((n) => (n.name === "a1" ? { ...n, interfaces: [...n.interfaces, ...extra] } : n)),
    };
  };
  await labs(0).putLab("span", big());
  await until("every interface bound", () => allBound(labs(0).getLab("span")), 60_000);
  await labs(0).deleteLab("span");
  // Made again at once: hv1's ports are still being closed by its ovs-vswitchd.
  await labs(0).putLab("span", big());
  await until("every interface bound again", () => allBound(labs(1).getLab("span")), 60_000);
  await addresses();
  await eventuallyPings("a1", ADDR["b1:eth1"]!); // hv1 -> hv2
  await eventuallyPings("c2", ADDR["a2:eth2"]!); // hv3 -> hv1

  await labs(1).deleteLab("span");
  for (const i of [0, 1, 2]) {
    await until(`host ${i}'s ports gone`, async () => (await backend(i).status()).ports.length === 0, 30_000);
  }
  // hv1's agent removes them on the NB change (the ports first in its cache, the veths at once).
  await until("a1 keeps none of the lab's interfaces", async () => {
    const left = await nsExec(ns.a1!, ["ip", "-o", "link", "show"]);
    return !/eth\d+/.test(left.stdout);
  });
});
