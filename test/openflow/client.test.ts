import assert from "node:assert/strict";
import { once } from "node:events";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { isAgentError } from "../../src/common/errors.js";
import { ipBatch } from "../../src/link/index.js";
import { type FlowMod, OpenflowClient, OpenflowRequestError } from "../../src/openflow/index.js";
import { lowerUp, until } from "../harness/carrier.js";
import { addAddress, NetnsPool, uniqueName } from "../harness/netns.js";
import { type OvsInstance, startOvs } from "../harness/ovs-instance.js";
import { expectNoPing, expectPing } from "../harness/traffic.js";

/**
 * The OpenFlow client against a real ovs-vswitchd: two nodes whose ports sit in different VLANs
 * (NORMAL never joins them) are joined only by the client's flows, and traffic proves it.
 */
const BRIDGE = "ofbr0";
const COOKIE = 0xa7c4_0000_0000_0001n;
const FOREIGN = 0x1234n;
let ovs: OvsInstance;
let client: OpenflowClient;
const pool = new NetnsPool("oft");
let nodes: [string, string];
let ports: [number, number];
let hosts: readonly [string, string];

const wire = (command: FlowMod["command"], a: number, b: number, cookie = COOKIE): FlowMod[] => [
  { command, cookie, priority: 100, match: { inPort: a }, actions: [{ output: b }] },
  { command, cookie, priority: 100, match: { inPort: b }, actions: [{ output: a }] },
];

before(async () => {
  ovs = await startOvs({ isolatedNetns: true });
  await ovs.vsctl([
    "add-br",
    BRIDGE,
    "--",
    "set",
    "bridge",
    BRIDGE,
    "datapath_type=netdev",
    "fail_mode=standalone",
  ]);
  nodes = (await pool.create(2)) as [string, string];
  hosts = [uniqueName("ofh"), uniqueName("ofh")] as const;
  await ipBatch(
    hosts.flatMap((h, i) => [
      ["link", "add", "name", h, "type", "veth", "peer", "name", "eth1", "netns", nodes[i]!],
      ["link", "set", "dev", h, "up"],
    ]),
    { netns: { name: ovs.netns! } },
  );
  for (const [i, n] of nodes.entries()) {
    await addAddress(n, "eth1", `198.18.40.${i + 1}/24`);
    await ipBatch([["link", "set", "dev", "eth1", "up"]], { netns: { name: n } });
  }
  await ovs.vsctl(["add-port", BRIDGE, hosts[0], "tag=11", "--", "add-port", BRIDGE, hosts[1], "tag=12"]);
  ports = (await Promise.all(
    hosts.map(async (h) => Number(await ovs.vsctl(["get", "Interface", h, "ofport"]))),
  )) as [number, number];
  client = await OpenflowClient.connect({ target: `unix:${join(ovs.dir, `${BRIDGE}.mgmt`)}` });
});

after(async () => {
  await client?.close();
  await pool.destroyAll();
  await ovs?.stop();
});

test("a pair of flows is a wire: ping crosses two ports NORMAL keeps apart; counters count it", async () => {
  await expectNoPing(nodes[0], "198.18.40.2");
  await client.apply(wire("add", ports[0], ports[1]));
  await expectPing(nodes[0], "198.18.40.2", { count: 2 });
  const flows = await client.flows({ cookie: COOKIE });
  assert.equal(flows.length, 2);
  const byIn = new Map(flows.map((f) => [f.match.inPort, f]));
  assert.deepEqual(byIn.get(ports[0])?.actions, [{ output: ports[1] }]);
  assert.deepEqual(byIn.get(ports[1])?.actions, [{ output: ports[0] }]);
  for (const f of flows) {
    assert.equal(f.priority, 100);
    assert.ok(f.packets >= 2n && f.bytes > 0n, `counters ${f.packets}/${f.bytes}`);
  }
  await client.apply(wire("delete-strict", ports[0], ports[1]));
  assert.deepEqual(await client.flows({ cookie: COOKIE }), []);
  await expectNoPing(nodes[0], "198.18.40.2");
});

test("delete by cookie removes only the agent's flows; the bridge's NORMAL flow and foreign flows stay", async () => {
  await client.apply([...wire("add", ports[0], ports[1]), ...wire("add", 4000, 4001, FOREIGN)]);
  await client.apply([{ command: "delete", cookie: COOKIE }]);
  assert.deepEqual(await client.flows({ cookie: COOKIE }), []);
  const rest = await client.flows();
  assert.equal(rest.filter((f) => f.cookie === FOREIGN).length, 2);
  assert.ok(
    rest.some((f) => f.priority === 0 && f.cookie === 0n),
    "the bridge's NORMAL flow is still there",
  );
  await client.apply([{ command: "delete", cookie: FOREIGN }]);
});

test("an ERROR is reported for the message that caused it; the rest of the batch applies", async () => {
  const [a, b] = wire("add", ports[0], ports[1]);
  const bad: FlowMod = { command: "add", cookie: COOKIE, tableId: 0xff, match: { inPort: 7 }, actions: [] };
  await assert.rejects(client.apply([a!, bad, b!]), (e: unknown) => {
    assert.ok(e instanceof OpenflowRequestError, String(e));
    assert.deepEqual(
      e.failures.map((f) => [f.index, f.error.name]),
      [[1, "FLOW_MOD_FAILED/2"]],
    );
    return true;
  });
  assert.equal((await client.flows({ cookie: COOKIE })).length, 2);
  await expectPing(nodes[0], "198.18.40.2");
  await client.apply([{ command: "delete", cookie: COOKIE }]);
});

test("PORT_MOD sets a port's device down (its node sees NO-CARRIER) and up; a wrong MAC is refused", async () => {
  const mac = JSON.parse(await ovs.vsctl(["get", "Interface", hosts[0], "mac_in_use"])) as string;
  await client.apply(wire("add", ports[0], ports[1]));
  try {
    await expectPing(nodes[0], "198.18.40.2");
    await assert.rejects(
      client.modPorts([{ portNo: ports[0], hwAddr: "02:00:00:00:00:01", down: true }]),
      (e: unknown) => e instanceof OpenflowRequestError && e.failures[0]?.error.name === "PORT_MOD_FAILED/1", // OFPPMFC_BAD_HW_ADDR,
    );
    await client.modPorts([{ portNo: ports[0], hwAddr: mac, down: true }]);
    await until(
      "no carrier",
      () => lowerUp(nodes[0]),
      (c) => !c,
    );
    await expectNoPing(nodes[0], "198.18.40.2");
    await client.modPorts([{ portNo: ports[0], hwAddr: mac, down: false }]);
    await until(
      "carrier",
      () => lowerUp(nodes[0]),
      (c) => c,
    );
    await expectPing(nodes[0], "198.18.40.2", { count: 2 });
  } finally {
    await client.apply([{ command: "delete", cookie: COOKIE }]);
  }
});

test("echo both ways: the client's echo is answered; a switch probing its controller is answered", async () => {
  assert.ok((await client.echo()) >= 0);
  // A controller-style target: the switch listens, the client connects as its controller, and
  // with an inactivity probe of 1 s the switch sends echo requests the client must answer.
  // ovs-vswitchd accepts punix controllers only as <rundir>/<bridge>.*
  const sock = join(ovs.dir, `${BRIDGE}.controller`);
  await ovs.vsctl(["set-controller", BRIDGE, `punix:${sock}`]);
  await ovs.vsctl(["set", "controller", BRIDGE, "inactivity_probe=1000"]);
  await untilExists(sock);
  const ctl = await OpenflowClient.connect({ target: `unix:${sock}` });
  try {
    const echoes = once(ctl, "echo");
    const deadline = AbortSignal.timeout(15_000);
    await Promise.race([
      echoes,
      once(deadline, "abort").then(() => assert.fail("the switch sent no echo within 15 s")),
    ]);
    // Still connected after answering: the switch would drop a controller that stays silent.
    assert.ok((await ctl.echo()) >= 0);
    assert.ok(ctl.connected);
  } finally {
    await ctl.close();
    await ovs.vsctl(["del-controller", BRIDGE]);
  }
});

test("ovs-vswitchd restart: the client reconnects by itself; the switch lost the flows", async () => {
  await client.apply(wire("add", ports[0], ports[1]));
  const reconnected = once(client, "connected");
  await ovs.restartVswitchd();
  await reconnected;
  assert.deepEqual(await client.flows({ cookie: COOKIE }), [], "flows live only in ovs-vswitchd's memory");
  await client.apply(wire("add", ports[0], ports[1]));
  assert.equal((await client.flows({ cookie: COOKIE })).length, 2);
  await client.apply([{ command: "delete", cookie: COOKIE }]);
});

test("a switch that does not allow OpenFlow 1.3 is refused with what to set", async () => {
  const br = "ofbr10";
  await ovs.vsctl(["add-br", br, "--", "set", "bridge", br, "datapath_type=netdev", "protocols=OpenFlow10"]);
  try {
    await assert.rejects(
      OpenflowClient.connect({ target: `unix:${join(ovs.dir, `${br}.mgmt`)}`, reconnect: false }),
      (e: unknown) => isAgentError(e, "OPENFLOW_PROTOCOL") && /protocols=/.test(e.hint ?? ""),
    );
  } finally {
    await ovs.vsctl(["del-br", br]);
  }
});

test("a peer that never says HELLO times out; bad targets are INVALID_CONFIG before any I/O", async () => {
  const path = join(ovs.dir, "silent.sock");
  const silent = createServer(() => undefined).listen(path);
  await once(silent, "listening");
  try {
    await assert.rejects(
      OpenflowClient.connect({ target: `unix:${path}`, connectTimeoutMs: 300, reconnect: false }),
      (e: unknown) => isAgentError(e, "OPENFLOW_TIMEOUT"),
    );
  } finally {
    silent.close();
  }
  for (const target of ["", "mgmt", "tcp:host", "unix:", "tcp:[::1]:99999"])
    await assert.rejects(OpenflowClient.connect({ target }), (e: unknown) =>
      isAgentError(e, "INVALID_CONFIG"),
    );
});

/** ovs-vswitchd opens a new listener in its main loop, after ovs-vsctl has returned. */
async function untilExists(path: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!existsSync(path)) {
    if (Date.now() > deadline) assert.fail(`${path} did not appear within 10 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
