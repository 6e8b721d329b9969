import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { createConnection } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { isAgentError } from "../../src/common/errors.js";
import {
  type CacheChange,
  del,
  eq,
  insert,
  mutate,
  namedUuid,
  OvsdbClient,
  OvsdbTransactError,
  select,
  setDelete,
  setInsert,
  update,
  uuid,
} from "../../src/ovsdb/index.js";
import { type OvsInstance, readPid, startOvs } from "../harness/ovs-instance.js";
import { until } from "./fake-server.js";

/** Bridge + internal Port/Interface in one transaction, attached to Open_vSwitch. */
function addBridgeOps(bridge: string, port: string) {
  return [
    insert("Interface", { name: port, type: "internal" }, "i0"),
    insert("Port", { name: port, interfaces: namedUuid("i0"), tag: 10 }, "p0"),
    insert("Bridge", { name: bridge, ports: namedUuid("p0"), datapath_type: "netdev" }, "b0"),
    mutate("Open_vSwitch", [], [setInsert("bridges", namedUuid("b0"))]),
  ];
}

function addPortOps(bridge: string, port: string) {
  return [
    insert("Interface", { name: port, type: "internal" }, "i"),
    insert("Port", { name: port, interfaces: namedUuid("i") }, "p"),
    mutate("Bridge", [eq("name", bridge)], [setInsert("ports", namedUuid("p"))]),
  ];
}

describe("OvsdbClient against a real ovsdb-server and ovs-vswitchd", () => {
  let ovs: OvsInstance;
  let client: OvsdbClient;
  const changes: CacheChange[] = [];

  before(async () => {
    ovs = await startOvs({ isolatedNetns: true });
    client = await OvsdbClient.connect({ remote: ovs.remote });
    client.on("change", (c: CacheChange) => changes.push(c));
  });
  after(async () => {
    await client?.close();
    await ovs?.stop();
  });

  test("transact round trip and echo", async () => {
    const [r] = await client.transact([select("Open_vSwitch", [], ["next_cfg", "bridges"])]);
    assert.equal(r?.rows?.length, 1);
    assert.equal(client.openVswitch()?.next_cfg, r?.rows?.[0]?.next_cfg);
    assert.ok(
      client.openVswitch()?.ovs_version === undefined ||
        typeof client.openVswitch()?.ovs_version === "string",
    );
    assert.ok((await client.echo()) >= 0);
    assert.ok(client.isConnected);
  });

  test("named-uuid insert of Bridge+Port+Interface; waitApplied resolves once ovs-vswitchd applied it", async () => {
    changes.length = 0;
    const results = await client.transact(addBridgeOps("br-t", "t0"), { waitApplied: true });
    assert.equal(results.length, 4, "appended next_cfg ops are not in the results");
    const portUuid = results[1]?.uuid?.[1];
    const bridge = client.bridgeByName("br-t");
    assert.ok(bridge);
    assert.equal(bridge.datapath_type, "netdev");
    assert.deepEqual(bridge.ports, [portUuid]);
    const port = client.portByName("t0");
    assert.equal(port?.uuid, portUuid);
    assert.equal(port?.tag, 10);
    const iface = client.interfaceByName("t0");
    assert.equal(iface?.type, "internal");
    assert.deepEqual(port?.interfaces, [iface?.uuid]);
    assert.equal(typeof iface?.ofport, "number", "ofport is set once ovs-vswitchd applied the change");
    assert.ok(iface!.ofport! > 0);
    assert.ok(client.appliedCfg >= client.openVswitch()!.next_cfg);
    assert.ok(changes.some((c) => c.table === "Bridge" && c.kind === "insert"));
    assert.ok(client.openVswitch()?.bridges.includes(bridge.uuid));
    const links = await ovs.vsctl(["list-ports", "br-t"]);
    assert.equal(links.trim(), "t0");
  });

  test("a modify of Port.tag is seen in the cache and as a change event", async () => {
    changes.length = 0;
    const port = client.portByName("t0")!;
    await client.transact([update("Port", [eq("name", "t0")], { tag: 200 })]);
    assert.equal(client.portByName("t0")?.tag, 200);
    const change = changes.find((c) => c.table === "Port" && c.uuid === port.uuid);
    assert.equal(change?.kind, "modify");
    assert.equal(change?.old?.tag, 10);
    assert.equal(change?.new?.tag, 200);
    await client.transact([update("Port", [eq("name", "t0")], { tag: ["set", []] })]);
    assert.equal(client.portByName("t0")?.tag, undefined);
    // a change made by another client (ovs-vsctl) arrives through the monitor too
    await ovs.vsctl(["set", "Port", "t0", "tag=300"]);
    await until(() => client.portByName("t0")?.tag === 300);
  });

  test("removing a port from Bridge.ports garbage-collects its Port and Interface rows", async () => {
    await client.transact(addPortOps("br-t", "t1"), { waitApplied: true });
    const port = client.portByName("t1")!;
    const ifaceUuid = port.interfaces[0]!;
    assert.ok(client.interfaceByUuid(ifaceUuid));
    changes.length = 0;
    await client.transact([mutate("Bridge", [eq("name", "br-t")], [setDelete("ports", uuid(port.uuid))])], {
      waitApplied: true,
    });
    assert.equal(client.portByName("t1"), undefined);
    assert.equal(client.portByUuid(port.uuid), undefined);
    assert.equal(client.interfaceByName("t1"), undefined);
    assert.ok(changes.some((c) => c.table === "Interface" && c.kind === "delete" && c.uuid === ifaceUuid));
    assert.ok(!client.bridgeByName("br-t")!.ports.includes(port.uuid));
  });

  test("per-operation and commit errors surface as OvsdbTransactError with the index", async () => {
    await assert.rejects(
      client.transact([select("Port", []), update("Port", [eq("name", "t0")], { tag: 99999 })]),
      (e) => {
        assert.ok(e instanceof OvsdbTransactError);
        assert.equal(e.code, "OVSDB_ERROR");
        assert.equal(e.errors[0]?.index, 1);
        assert.equal(e.errors[0]?.error, "constraint violation");
        return true;
      },
    );
    // a dangling reference fails at commit: ovsdb-server appends one more result element
    const ghost = "00000000-0000-0000-0000-000000000001";
    await assert.rejects(
      client.transact([insert("Port", { name: "ghost", interfaces: uuid(ghost) })]),
      (e) => {
        assert.ok(e instanceof OvsdbTransactError);
        assert.equal(e.errors[0]?.index, 1);
        assert.equal(e.errors[0]?.error, "referential integrity violation");
        assert.match(e.message, /at commit/);
        return true;
      },
    );
    assert.equal(client.portByName("ghost"), undefined);
    await assert.rejects(client.transact([del("NoSuchTable", [])]), (e) => e instanceof OvsdbTransactError);
  });

  test("waitApplied times out with OVSDB_TIMEOUT when ovs-vswitchd is not running", async () => {
    await ovs.stopVswitchd();
    try {
      await assert.rejects(
        client.transact([update("Port", [eq("name", "t0")], { tag: 5 })], {
          waitApplied: true,
          timeoutMs: 300,
        }),
        (e) => isAgentError(e, "OVSDB_TIMEOUT") && /ovs-vswitchd/.test(e.hint ?? ""),
      );
      assert.equal(client.portByName("t0")?.tag, 5, "the transaction itself was committed");
    } finally {
      await ovs.startVswitchd();
    }
    await client.transact([update("Port", [eq("name", "t0")], { tag: 6 })], { waitApplied: true });
  });

  test("an applied answer waiting in the socket when the timer fires is not a timeout", async () => {
    // ovs-vswitchd frozen, so the change waits; the timer is armed; then, with the event loop
    // blocked, ovs-vswitchd is thawed and applies. Node runs expired timers before reading sockets.
    await client.transact(addBridgeOps("br-late", "late0"), { waitApplied: true });
    const pid = await readPid(join(ovs.dir, "ovs-vswitchd.pid"));
    assert.ok(pid, "ovs-vswitchd's pid");
    process.kill(pid, "SIGSTOP");
    let thawed = false;
    try {
      const armed = Date.now();
      const wait = client.transact([update("Port", [eq("name", "late0")], { tag: 7 })], {
        waitApplied: true,
        timeoutMs: 300,
      });
      // The commit's answer is in (an echo's answer comes after it), so the timer is armed.
      await client.echo();
      assert.equal(client.portByName("late0")?.tag, 7, "committed");
      process.kill(pid, "SIGCONT");
      thawed = true;
      const cfg = (column: string) =>
        Number(
          execFileSync("ovs-vsctl", [`--db=${ovs.remote}`, "--no-wait", "get", "Open_vSwitch", ".", column], {
            timeout: 5_000,
          }),
        );
      const deadline = Date.now() + 60_000;
      // Until ovs-vswitchd has applied the change and the timer has expired.
      while ((cfg("cur_cfg") < cfg("next_cfg") || Date.now() < armed + 600) && Date.now() < deadline);
      assert.ok(Date.now() < deadline, "ovs-vswitchd applied the change");
      await wait;
    } finally {
      if (!thawed) process.kill(pid, "SIGCONT");
      await ovs.vsctl(["--if-exists", "del-br", "br-late"]);
    }
  });

  test("a call to a stuck ovsdb-server times out with OVSDB_TIMEOUT", async () => {
    const pid = Number((await readFile(join(ovs.dir, "ovsdb-server.pid"), "utf8")).trim());
    process.kill(pid, "SIGSTOP");
    try {
      await assert.rejects(client.transact([select("Bridge", [])], { timeoutMs: 200 }), (e) =>
        isAgentError(e, "OVSDB_TIMEOUT"),
      );
    } finally {
      process.kill(pid, "SIGCONT");
    }
    assert.ok(client.isConnected);
    await client.echo();
  });

  test("the client answers ovsdb-server's echo (inactivity probe) and stays connected", async () => {
    const probed = await ovs.addManagerRemote("probed", 1000);
    // a peer that does not answer is dropped by the server: the probe is really active
    const raw = createConnection(probed.slice("unix:".length));
    const dropped = new Promise<number>((resolve) => {
      const t0 = Date.now();
      raw.on("close", () => resolve(Date.now() - t0));
    });
    raw.on("error", () => {});
    raw.resume(); // read (and drop) the echo requests, so the close is seen
    const c = await OvsdbClient.connect({ remote: probed, reconnect: false });
    let disconnected = false;
    c.on("disconnected", () => {
      disconnected = true;
    });
    try {
      const droppedAfter = await dropped;
      assert.ok(droppedAfter < 4_000);
      await new Promise((r) => setTimeout(r, 3_500 - droppedAfter));
      assert.equal(disconnected, false);
      assert.ok(c.isConnected);
      await c.echo();
    } finally {
      raw.destroy();
      await c.close();
    }
  });

  test("ovsdb-server restart: the client reconnects, reloads the cache and transacts again", async () => {
    let disconnects = 0;
    const onDisconnected = () => disconnects++;
    client.on("disconnected", onDisconnected);
    const connected = new Promise<void>((resolve) => client.once("connected", resolve));
    await ovs.stopDbServer();
    await until(() => disconnects === 1);
    assert.equal(client.isConnected, false);
    await assert.rejects(client.transact([select("Bridge", [])]), (e) => isAgentError(e, "OVS_UNREACHABLE"));
    await assert.rejects(client.echo(), (e) => isAgentError(e, "OVS_UNREACHABLE"));
    await ovs.startDbServer();
    await connected;
    client.off("disconnected", onDisconnected);
    assert.ok(client.isConnected);
    assert.ok(client.bridgeByName("br-t"), "cache reloaded");
    assert.equal(client.portByName("t0")?.tag, 6);
    await client.transact([update("Port", [eq("name", "t0")], { tag: 7 })], { waitApplied: true });
    assert.equal(client.portByName("t0")?.tag, 7);
  });
});

test("close() leaves no timers or sockets, also while reconnecting", async () => {
  const ovs = await startOvs({ withVswitchd: false });
  try {
    const baseline = process.getActiveResourcesInfo().length;
    const client = await OvsdbClient.connect({ remote: ovs.remote });
    const pending = client.transact([select("Open_vSwitch", [])]);
    await pending;
    const disconnected = new Promise((r) => client.once("disconnected", r));
    await ovs.stopDbServer();
    await disconnected; // now in back-off, a reconnect timer is armed
    await new Promise((r) => setTimeout(r, 250)); // let a failed attempt or two happen
    await client.close();
    await client.close(); // twice is fine
    await assert.rejects(client.transact([]), (e) => isAgentError(e, "OVS_UNREACHABLE"));
    await until(() => process.getActiveResourcesInfo().length <= baseline, 2_000);
  } finally {
    await ovs.stop();
    await ovs.stop();
  }
});
