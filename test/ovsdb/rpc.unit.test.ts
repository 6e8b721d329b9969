import assert from "node:assert/strict";
import { createConnection } from "node:net";
import { after, before, describe, test } from "node:test";
import { isAgentError } from "../../src/common/errors.js";
import { OvsdbClient } from "../../src/ovsdb/client.js";
import { RpcConnection } from "../../src/ovsdb/rpc.js";
import { type FakeServer, startFakeServer, until } from "./fake-server.js";

describe("JSON-RPC against a fake peer", () => {
  let server: FakeServer;
  const open: RpcConnection[] = [];

  before(async () => {
    server = await startFakeServer();
  });
  after(async () => {
    await Promise.all(open.map((c) => c.close()));
    await server.close();
  });

  async function connect(opts: { callTimeoutMs?: number; maxMessageBytes?: number } = {}) {
    const socket = createConnection(server.path);
    const peer = await server.nextConnection();
    const rpc = new RpcConnection(socket, { remote: server.remote, ...opts });
    open.push(rpc);
    return { rpc, peer };
  }

  test("a call is answered by id; notifications are emitted", async () => {
    const { rpc, peer } = await connect();
    const notes: unknown[] = [];
    rpc.on("notification", (method, params) => notes.push([method, params]));
    const p = rpc.call("list_dbs", []);
    await until(() => server.received(peer).includes("list_dbs"));
    assert.deepEqual(JSON.parse(server.received(peer)), { id: 1, method: "list_dbs", params: [] });
    peer.write(
      '{"id":null,"method":"update2","params":["m",{}]}{"id":1,"result":["Open_vSwitch"],"error":null}',
    );
    assert.deepEqual(await p, ["Open_vSwitch"]);
    assert.deepEqual(notes, [["update2", ["m", {}]]]);
  });

  test("an echo request from the server is answered with its params", async () => {
    const { peer } = await connect();
    peer.write('{"id":"echo","method":"echo","params":[]}');
    await until(() => server.received(peer).length > 0);
    assert.deepEqual(JSON.parse(server.received(peer)), { id: "echo", result: [], error: null });
  });

  test("a JSON-RPC error answer rejects the call with OVSDB_ERROR", async () => {
    const { rpc, peer } = await connect();
    const p = rpc.call("get_schema", ["nope"]);
    peer.write('{"id":1,"result":null,"error":{"error":"unknown database"}}');
    await assert.rejects(p, (e) => isAgentError(e, "OVSDB_ERROR") && /unknown database/.test(e.message));
  });

  test("malformed input from the peer is an error, not a crash; pending calls are rejected", async () => {
    const { rpc, peer } = await connect();
    const closed = new Promise((resolve) => rpc.once("close", resolve));
    const p = rpc.call("list_dbs", []);
    peer.write('{"id":1,"result":[1,2}] this is not json');
    await assert.rejects(p, (e) => isAgentError(e, "OVSDB_PROTOCOL"));
    assert.ok(isAgentError(await closed, "OVSDB_PROTOCOL"));
    assert.equal(rpc.isOpen, false);
    await assert.rejects(rpc.call("echo", []), (e) => isAgentError(e, "OVSDB_PROTOCOL"));
  });

  test("an oversized message is an error, not a crash", async () => {
    const { rpc, peer } = await connect({ maxMessageBytes: 1024 });
    const p = rpc.call("list_dbs", []);
    peer.write(`{"id":1,"result":["${"x".repeat(4096)}`);
    await assert.rejects(p, (e) => isAgentError(e, "OVSDB_PROTOCOL") && /exceeds 1024 bytes/.test(e.message));
  });

  test("a call times out with OVSDB_TIMEOUT; a late answer is ignored", async () => {
    const { rpc, peer } = await connect({ callTimeoutMs: 100 });
    const started = Date.now();
    await assert.rejects(rpc.call("transact", ["Open_vSwitch"]), (e) => isAgentError(e, "OVSDB_TIMEOUT"));
    assert.ok(Date.now() - started >= 95);
    peer.write('{"id":1,"result":[],"error":null}');
    const p = rpc.call("echo", []);
    peer.write('{"id":2,"result":["ok"],"error":null}');
    assert.deepEqual(await p, ["ok"]);
  });

  test("an answer waiting in the socket when the timer fires is not a timeout", async () => {
    const { rpc, peer } = await connect({ callTimeoutMs: 100 });
    // The answer is written, then the event loop is blocked past the deadline from an I/O
    // callback (as a slow request handler would): the next loop turn runs the timer first.
    peer.once("data", () => {
      peer.write('{"id":1,"result":["ok"],"error":null}');
      const until = Date.now() + 300;
      while (Date.now() < until);
    });
    assert.deepEqual(await rpc.call("echo", []), ["ok"]);
  });

  test("the peer closing rejects pending calls with OVS_UNREACHABLE", async () => {
    const { rpc, peer } = await connect();
    const p = rpc.call("list_dbs", []);
    peer.destroy();
    await assert.rejects(p, (e) => isAgentError(e, "OVS_UNREACHABLE"));
  });

  test("OvsdbClient.connect to a peer that sends garbage rejects, without crashing", async () => {
    const connecting = OvsdbClient.connect({ remote: server.remote, reconnect: false });
    const peer = await server.nextConnection();
    peer.write("\x00\x01garbage");
    await assert.rejects(connecting, (e) => isAgentError(e, "OVSDB_PROTOCOL"));
  });
});

test("OvsdbClient.connect to a missing socket rejects with OVS_UNREACHABLE and a hint", async () => {
  await assert.rejects(
    OvsdbClient.connect({ remote: "unix:/tmp/no-such-dir/db.sock", reconnect: false }),
    (e) =>
      isAgentError(e, "OVS_UNREACHABLE") && /ovsdb-server/.test(e.hint ?? "") && /ENOENT/.test(e.message),
  );
  await assert.rejects(OvsdbClient.connect({ remote: "http://x" }), (e) => isAgentError(e, "INVALID_CONFIG"));
});
