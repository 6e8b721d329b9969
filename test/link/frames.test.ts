import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { run } from "../../src/common/exec.js";
import { ipBatch } from "../../src/link/index.js";
import { type FlowMod, OpenflowClient } from "../../src/openflow/index.js";
import {
  captureFrames,
  carries,
  type FrameKind,
  frameKinds,
  newMarker,
  sendFrames,
  untagged,
} from "../harness/frames.js";
import { NetnsPool, setUp, uniqueName, withNetns } from "../harness/netns.js";
import { type OvsInstance, startOvs } from "../harness/ovs-instance.js";

/**
 * The raw-frame harness against a real kernel and a real ovs-vswitchd: what a cable carries
 * (802.1Q, QinQ, LLDP, LACP, STP) arrives byte-identical over a veth and over a pair of
 * OpenFlow flows, and two access ports sharing a VLAN (today's links) drop the tagged ones.
 */
const skip = process.getuid?.() !== 0 ? "needs root (real kernel namespaces, ovs-vswitchd)" : false;

const MAC_A = "02:00:00:00:0f:0a";
const MAC_B = "02:00:00:00:0f:0b";

/**
 * Sends every kind from `from` and expects each at `to` once, byte for byte. Not their order:
 * through ovs-vswitchd's userspace datapath frames of different kinds sent back to back were seen
 * reordered (it executes a received batch's flow-cache misses and its hits separately).
 */
async function expectCarried(from: string, to: string, kinds: FrameKind[]): Promise<void> {
  const got = await captureFrames(
    to,
    "eth1",
    () =>
      sendFrames(
        from,
        "eth1",
        kinds.map((k) => k.frame),
      ),
    {
      count: kinds.length,
      match: carries(...kinds.map((k) => k.marker)),
    },
  );
  for (const k of kinds) {
    const seen = got.filter(carries(k.marker));
    assert.equal(
      seen.length,
      1,
      `${k.name} frame arrived ${seen.length} times (${got.length} frames in all)`,
    );
    assert.equal(seen[0]!.toString("hex"), k.frame.toString("hex"), `${k.name} frame arrived changed`);
  }
}

describe("raw frames", { skip }, () => {
  it("a veth pair between two namespaces carries all five kinds byte-identical (the harness works)", async () => {
    await withNetns(
      2,
      async ([a, b]) => {
        await ipBatch([["link", "add", "eth1", "type", "veth", "peer", "name", "eth1", "netns", b!]], {
          netns: { name: a! },
        });
        await setUp(a!, "eth1");
        await setUp(b!, "eth1");
        // veths do VLAN offload (the receiver moves the tag into metadata); libpcap puts it back.
        await expectCarried(a!, b!, frameKinds(MAC_A));
        await expectCarried(b!, a!, frameKinds(MAC_B));
        // tcpdump is stopped when fn throws: nothing is left running in the namespace.
        await assert.rejects(
          captureFrames(b!, "eth1", async () => {
            throw new Error("boom");
          }),
          /boom/,
        );
        assert.equal((await run("ip", ["netns", "pids", b!])).stdout.trim(), "", "no tcpdump left");
      },
      "frm",
    );
  });

  it("bad input is refused before anything runs", async () => {
    const f = untagged(MAC_A, MAC_B, newMarker("bad"));
    await assert.rejects(sendFrames("nons", "eth1", []), /at least one frame/);
    await assert.rejects(sendFrames("nons", "eth1", [Buffer.alloc(9001)]), /9001 bytes/);
    await assert.rejects(sendFrames("nons", "eth1", [Buffer.alloc(13)]), /13 bytes/);
    for (const dev of ["", "all", "a/b", "x".repeat(16), "eth 1"])
      await assert.rejects(sendFrames("nons", dev, [f]), (e: unknown) => /device/.test(String(e)));
  });

  describe("through Open vSwitch", () => {
    const BRIDGE = "frbr0";
    const pool = new NetnsPool("frm");
    let ovs: OvsInstance;
    let client: OpenflowClient;
    let nodes: [string, string];
    let hosts: [string, string];

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
      hosts = [uniqueName("frh"), uniqueName("frh")];
      await ipBatch(
        hosts.flatMap((h, i) => [
          ["link", "add", "name", h, "type", "veth", "peer", "name", "eth1", "netns", nodes[i]!],
          ["link", "set", "dev", h, "up"],
        ]),
        { netns: { name: ovs.netns! } },
      );
      for (const n of nodes) await setUp(n, "eth1");
      await ovs.vsctl(["add-port", BRIDGE, hosts[0], "--", "add-port", BRIDGE, hosts[1]]);
      client = await OpenflowClient.connect({ target: `unix:${join(ovs.dir, `${BRIDGE}.mgmt`)}` });
    });

    after(async () => {
      await client?.close();
      await pool.destroyAll();
      await ovs?.stop();
    });

    it("two access ports sharing tag 300 (today's VLAN link) drop tagged and QinQ frames, pass untagged", async () => {
      await ovs.vsctl(["set", "port", hosts[0], "tag=300", "--", "set", "port", hosts[1], "tag=300"]);
      const kinds = frameKinds(MAC_A).filter((k) => k.name === "dot1q" || k.name === "qinq");
      // No fixed wait for an absence: an untagged frame sent afterwards, by a second sender, is
      // the signal. ovs-vswitchd handles a received batch completely (output or drop) before it
      // reads the next, and the second sender starts well after the first one's frames went out.
      const last = untagged(MAC_A, MAC_B, newMarker("last"));
      const got = await captureFrames(
        nodes[1],
        "eth1",
        async () => {
          await sendFrames(
            nodes[0],
            "eth1",
            kinds.map((k) => k.frame),
          );
          await sendFrames(nodes[0], "eth1", [last]);
        },
        { count: 1, match: (f) => f.equals(last) || carries(...kinds.map((k) => k.marker))(f) },
      );
      assert.deepEqual(
        got.map((f) => f.toString("hex")),
        [last.toString("hex")],
        "only the untagged frame crosses, unchanged",
      );
    });

    it("two flows in_port=A->output:B and back carry all five kinds byte-identical both ways", async () => {
      await ovs.vsctl(["set", "port", hosts[0], "tag=301", "--", "set", "port", hosts[1], "tag=302"]);
      const ports = (await Promise.all(
        hosts.map(async (h) => Number(await ovs.vsctl(["get", "Interface", h, "ofport"]))),
      )) as [number, number];
      const cookie = 0xa7c4_0000_0000_0f0an;
      const wire = (a: number, b: number): FlowMod => ({
        command: "add",
        cookie,
        priority: 100,
        match: { inPort: a },
        actions: [{ output: b }],
      });
      await client.apply([wire(ports[0], ports[1]), wire(ports[1], ports[0])]);
      try {
        await expectCarried(nodes[0], nodes[1], frameKinds(MAC_A));
        await expectCarried(nodes[1], nodes[0], frameKinds(MAC_B));
      } finally {
        await client.apply([{ command: "delete", cookie }]);
      }
    });
  });
});
