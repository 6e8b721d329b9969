import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { OvsdbClient, select } from "../../src/ovsdb/index.js";
import { startOvs } from "../harness/ovs-instance.js";
import { until } from "./fake-server.js";
import { startFreezableProxy } from "./freezable-proxy.js";

/** Long enough that a loaded machine answers every probe in time, short enough for a quick test. */
const PROBE_MS = 1000;

/** ovsdb-server listening on an ephemeral TCP port of 127.0.0.1 (its log names the port). */
async function tcpPort(ovs: Awaited<ReturnType<typeof startOvs>>): Promise<number> {
  await ovs.appctl("ovsdb-server", ["ovsdb-server/add-remote", "ptcp:0:127.0.0.1"]);
  let port: number | undefined;
  await until(() => {
    const log = readFileSync(join(ovs.dir, "ovsdb-server.log"), "utf8");
    port = Number(/127\.0\.0\.1: listening on port (\d+)/.exec(log)?.[1] ?? Number.NaN) || undefined;
    return port !== undefined;
  });
  return port as number;
}

test("tcp: a half-open connection is found by the inactivity probe; the client reconnects and transacts", async (t) => {
  const ovs = await startOvs({ withVswitchd: false });
  t.after(() => ovs.stop());
  const proxy = await startFreezableProxy({ host: "127.0.0.1", port: await tcpPort(ovs) });
  t.after(() => proxy.close());
  const client = await OvsdbClient.connect({
    remote: `tcp:127.0.0.1:${proxy.port}`,
    probeIntervalMs: PROBE_MS,
  });
  t.after(() => client.close());
  let disconnects = 0;
  client.on("disconnected", () => disconnects++);

  // Idle, the client probes; answered probes keep the connection.
  const echoes = () => proxy.forwarded.filter((r) => r.includes('"method":"echo"')).length;
  await until(() => echoes() >= 2, 10 * PROBE_MS);
  assert.equal(disconnects, 0);
  assert.ok(client.isConnected);

  // The peer vanishes: nothing passes, nothing closes.
  const reconnected = new Promise<void>((resolve) => client.once("connected", resolve));
  proxy.freeze();
  await until(() => disconnects === 1, 10 * PROBE_MS + 5_000);
  await reconnected;
  await until(() => proxy.open === 1); // the client dropped the frozen connection
  const [r] = await client.transact([select("Open_vSwitch", [], ["next_cfg"])]);
  assert.equal(r?.rows?.length, 1);
});
