import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { OvsBackend } from "../../src/backends/ovs/ovs-backend.js";
import { ipBatch } from "../../src/link/index.js";
import type { OperState } from "../../src/model/views.js";
import type { InterfaceRow } from "../../src/ovsdb/index.js";
import { lowerUp, until as untilWithin } from "../harness/carrier.js";
import { addAddress, NetnsPool } from "../harness/netns.js";
import { ping } from "../harness/traffic.js";
import { type SimHost, startTwoHosts, type TwoHosts } from "../harness/two-hosts.js";

/**
 * A cable has two ends, across hosts: node a1 on host A and b1 on host B share an overlay link;
 * when a1 shuts its port, b1 loses carrier (BFD on the VXLAN tunnel carries the signal), and
 * gets it back when a1 comes up again.
 */
const VNI = 5101;
const TUNNEL = `vxlan${VNI}`;
const IP = { a1: "198.19.2.1", b1: "198.19.2.2" } as const;
/** BFD comes up in a second or more; a loaded machine may take many. */
const WAIT_MS = 60_000;
const until = <T>(what: string, get: () => Promise<T> | T, ok: (v: T) => boolean) =>
  untilWithin(what, get, ok, WAIT_MS);

let h: TwoHosts;
const pool = new NetnsPool("cfov");
const ns: Record<"a1" | "b1", string> = { a1: "", b1: "" };

before(async () => {
  h = await startTwoHosts();
  [ns.a1, ns.b1] = (await pool.create(2)) as [string, string];
  for (const [host, node, remote] of [
    [h.a, "a1", h.b],
    [h.b, "b1", h.a],
  ] as const) {
    await host.agent.labs.addInterfaces("lab1", node, { netns: ns[node], interfaces: [{ name: "eth1" }] });
    await addAddress(ns[node], "eth1", `${IP[node]}/24`);
    await host.agent.services.overlays.attach({
      lab: "lab1",
      link: "l1",
      node,
      interface: "eth1",
      vni: VNI,
      local_ip: host.ip,
      remote_ip: remote.ip,
    });
  }
});
after(async () => {
  await pool.destroyAll();
  await h?.close();
});

function tunnelOf(host: SimHost): InterfaceRow | undefined {
  return (host.agent.services.backend as OvsBackend).ovsdb.interfaceByName(TUNNEL);
}

function operState(host: SimHost, node: string): OperState | undefined {
  return host.agent.labs.getLab("lab1").nodes.find((n) => n.name === node)?.interfaces[0]?.oper_state;
}

const setPort = (node: "a1" | "b1", state: "up" | "down") =>
  ipBatch([["link", "set", "dev", "eth1", state]], { netns: { name: ns[node] } });

test("a node on host A shuts its port: the node on host B loses carrier, ping stops; up: both back", async (t) => {
  await until(
    "BFD up on both tunnels",
    () => [h.a, h.b].map((host) => tunnelOf(host)?.bfd_status.forwarding),
    (v) => v.every((f) => f === "true"),
  );
  assert.equal(tunnelOf(h.a)?.bfd.enable, "true");
  await until(
    "ping a1 -> b1",
    () => ping(ns.a1, IP.b1),
    (ok) => ok,
  );

  const t0 = performance.now();
  await setPort("a1", "down");
  await until(
    "b1 without carrier",
    () => lowerUp(ns.b1),
    (up) => !up,
  );
  t.diagnostic(`a1 down -> b1 NO-CARRIER: ${Math.round(performance.now() - t0)} ms`);
  assert.equal(tunnelOf(h.a)?.bfd.cpath_down, "true");
  await until(
    "views",
    () => [operState(h.a, "a1"), operState(h.b, "b1")],
    (v) => v.join() === "no_carrier,peer_down",
  );
  assert.equal(await ping(ns.b1, IP.a1), false, "no ping b1 -> a1 while a1 is down");

  const t1 = performance.now();
  await setPort("a1", "up");
  await until(
    "both have carrier",
    () => Promise.all([lowerUp(ns.a1), lowerUp(ns.b1)]),
    (v) => v.every(Boolean),
  );
  t.diagnostic(`a1 up -> both carrier: ${Math.round(performance.now() - t1)} ms`);
  await until(
    "views",
    () => [operState(h.a, "a1"), operState(h.b, "b1")],
    (v) => v.join() === "up,up",
  );
  await until(
    "ping b1 -> a1",
    () => ping(ns.b1, IP.a1),
    (ok) => ok,
  );
  await until(
    "ping a1 -> b1",
    () => ping(ns.a1, IP.b1),
    (ok) => ok,
  );
  assert.equal(tunnelOf(h.a)?.bfd.cpath_down, "false");
});
