import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { AgentError, type ErrorCode } from "../../src/common/errors.js";
import { run } from "../../src/common/exec.js";
import { deleteNetns, ipJson } from "../../src/link/index.js";
import { hostPortName } from "../../src/model/derived-names.js";
import type { LabSpec, LabView } from "../../src/model/views.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { addAddress, NetnsPool } from "../harness/netns.js";
import { expectPing } from "../harness/traffic.js";
import { assertNoSharedVlan, hostVeths, kernelLinks, ovsPorts, ownedPorts } from "./facts.js";

/**
 * A declarative PUT is one plan: when any part fails (here provisioning the new node), the lab
 * is put back as it was: interfaces, links, carrier, the stored record, and traffic.
 */
const pool = new NetnsPool("prb");
after(() => pool.destroyAll());
const LAB = "rb";

describe("a PUT that fails part-way is rolled back", () => {
  let t: TestAgent;
  let n1: string;
  let n2: string;
  let n3: string;
  before(async () => {
    t = await startTestAgent();
    [n1, n2, n3] = (await pool.create(3)) as [string, string, string];
    const old: LabSpec = {
      nodes: [
        { name: "r1", netns: n1, interfaces: [{ name: "eth1" }, { name: "eth2" }] },
        { name: "r2", netns: n2, interfaces: [{ name: "eth1" }] },
        { name: "r3", netns: n3, interfaces: [{ name: "eth1" }, { name: "eth2" }] },
      ],
      links: [
        { a: "r1:eth1", b: "r2:eth1", id: "l1" },
        { a: "r1:eth2", b: "r3:eth1", id: "l2" },
      ],
    };
    await t.agent.labs.putLab(LAB, old);
    await t.agent.labs.setCarrier(LAB, "r3", "eth2", "down");
    await addAddress(n1, "eth1", "198.18.30.1/24");
    await addAddress(n2, "eth1", "198.18.30.2/24");
    await addAddress(n1, "eth2", "198.18.31.1/24");
    await addAddress(n3, "eth1", "198.18.31.3/24");
    await oldLinksPing();
  });
  after(() => t?.close());

  async function oldLinksPing() {
    await expectPing(n1, "198.18.30.2");
    await expectPing(n1, "198.18.31.3");
  }

  /**
   * Removes link l2, re-creates r3:eth2 (new MTU: its veth is deleted before the new node is
   * built), adds node r4 and link l3 (r3:eth1, which leaves l2, to r4:eth1).
   */
  function newSpec(n4: string): LabSpec {
    return {
      nodes: [
        { name: "r1", netns: n1, interfaces: [{ name: "eth1" }, { name: "eth2" }] },
        { name: "r2", netns: n2, interfaces: [{ name: "eth1" }] },
        { name: "r3", netns: n3, interfaces: [{ name: "eth1" }, { name: "eth2", mtu: 1500 }] },
        { name: "r4", netns: n4, interfaces: [{ name: "eth1" }] },
      ],
      links: [
        { a: "r1:eth1", b: "r2:eth1", id: "l1" },
        { a: "r3:eth1", b: "r4:eth1", id: "l3" },
      ],
    };
  }

  /** The view without VLAN numbers (re-wired links and re-made interfaces get fresh ones). */
  function shape(v: LabView) {
    return JSON.stringify({
      ...v,
      nodes: v.nodes.map((n) => ({
        ...n,
        interfaces: n.interfaces.map((i) => ({ ...i, vlan: i.vlan !== null })),
      })),
      links: v.links.map((l) => ({ ...l, vlan: l.vlan !== null })),
    });
  }

  async function facts() {
    return {
      veths: (await hostVeths(t.ovs)).sort(),
      ports: (await ownedPorts(t.ovs)).map((p) => p.name).sort(),
      view: shape(t.agent.labs.getLab(LAB)),
      stored: JSON.stringify(t.agent.store.lab(LAB)),
    };
  }

  async function linkOf(ns: string, dev: string) {
    const [l] = await ipJson<{ mtu: number; flags: string[] }[]>(["link", "show", "dev", dev], { name: ns });
    assert.ok(l, `${dev} exists in ${ns}`);
    return l;
  }

  const r4Port = hostPortName(LAB, "r4", "eth1");
  const obstacles: {
    what: string;
    code: ErrorCode;
    /** Puts the obstacle in place; returns what removes it. */
    place: (n4: string) => Promise<() => Promise<void>>;
    /** What of the obstacle must still exist afterwards (it is not the agent's). */
    stillThere?: () => Promise<void>;
  }[] = [
    {
      what: "the new node's netns vanishes between validation and provisioning",
      code: "NETNS_NOT_FOUND",
      place: async (n4) => {
        const backend = t.agent.services.backend;
        const provision = backend.provision;
        backend.provision = async (lab, ends) => {
          if (ends.some((e) => e.node.name === "r4")) await deleteNetns([n4]);
          return provision.call(backend, lab, ends);
        };
        return async () => {
          backend.provision = provision;
        };
      },
    },
    {
      what: "a foreign device holds the new node's host port name in the switch namespace",
      code: "CONFLICT",
      place: async () => {
        await run("ip", ["-n", t.ovs.netns!, "link", "add", r4Port, "type", "bridge"]);
        return async () => {
          await run("ip", ["-n", t.ovs.netns!, "link", "del", r4Port]);
        };
      },
      stillThere: async () => {
        const [l] = await ipJson<{ link_type: string }[]>(["link", "show", "dev", r4Port], {
          name: t.ovs.netns!,
        });
        assert.ok(l, "the foreign device is left alone");
      },
    },
    {
      what: "OVS refuses the new node's port (a foreign port has its name)",
      code: "OVSDB_ERROR",
      place: async () => {
        await t.ovs.vsctl(["add-port", t.config.bridge, r4Port]);
        return async () => {
          await t.ovs.vsctl(["del-port", t.config.bridge, r4Port]);
        };
      },
      stillThere: async () => {
        assert.ok(
          (await ovsPorts(t.ovs)).some((p) => p.name === r4Port),
          "the foreign port is left alone",
        );
      },
    },
  ];

  for (const o of obstacles) {
    test(`${o.what}: the answer is an error and the lab is as before`, async () => {
      const before1 = await facts();
      const [n4] = (await pool.create(1)) as [string];
      const remove = await o.place(n4);
      try {
        await assert.rejects(t.agent.labs.putLab(LAB, newSpec(n4)), (e: unknown) => {
          assert.ok(e instanceof AgentError, `an AgentError, not ${String(e)}`);
          assert.equal(e.code, o.code, e.message);
          assert.match(e.message, /rolled back: the lab is as it was/, e.message);
          return true;
        });
        await o.stillThere?.();
      } finally {
        await remove();
      }
      assert.deepEqual(await facts(), before1);
      await oldLinksPing();
      // r3:eth2 was re-made (its veth had been deleted for the new MTU): old MTU, carrier down.
      const eth2 = await linkOf(n3, "eth2");
      assert.equal(eth2.mtu, 9000);
      assert.ok(eth2.flags.includes("NO-CARRIER"), `r3:eth2 has no carrier: ${eth2.flags.join(",")}`);
      // Nothing of the new node: no veth, no port, nothing in its namespace.
      assert.ok(!(await hostVeths(t.ovs)).includes(r4Port));
      assert.ok(!(await ownedPorts(t.ovs)).some((p) => p.name === r4Port));
      if (o.code !== "NETNS_NOT_FOUND")
        assert.deepEqual(
          (await kernelLinks(n4)).map((l) => l.split(":")[1]),
          ["lo"],
        );
      assertNoSharedVlan(await ownedPorts(t.ovs));
    });
  }

  test("a restarted agent reads the old lab back and has nothing to repair; the PUT then succeeds", async () => {
    const before1 = await facts();
    await t.restart();
    assert.deepEqual(await facts(), before1);
    assert.deepEqual(await t.agent.reconcile(), []);
    await oldLinksPing();

    const [n4] = (await pool.create(1)) as [string];
    const r = await t.agent.labs.putLab(LAB, newSpec(n4));
    assert.deepEqual(r.changes.nodes_added, ["r4"]);
    assert.deepEqual(r.changes.links_removed, ["l2"]);
    assert.deepEqual(r.changes.links_added, ["l3"]);
    await addAddress(n4, "eth1", "198.18.31.4/24");
    await expectPing(n3, "198.18.31.4");
    await expectPing(n1, "198.18.30.2");
    assertNoSharedVlan(await ownedPorts(t.ovs));
  });
});

describe("a PUT whose state write fails (disk full) changes nothing", () => {
  let t: TestAgent | undefined;
  let dir: string;
  before(async () => {
    // The state dir on a tiny tmpfs of its own, so the disk can be filled without harm.
    dir = await mkdtemp(join(tmpdir(), "archnet-full-"));
    await run("mount", ["-t", "tmpfs", "-o", "size=256k", "tmpfs", dir]);
    t = await startTestAgent({ stateDir: dir });
  });
  after(async () => {
    await t?.close();
    await run("umount", [dir]).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  test("ENOSPC: the error says so; network, view and stored state are the old ones", async () => {
    const labs = t!.agent.labs;
    const [m1, m2, m3] = (await pool.create(3)) as [string, string, string];
    const node = (name: string, netns: string) => ({ name, netns, interfaces: [{ name: "eth1" }] });
    await labs.putLab("full", {
      nodes: [node("r1", m1), node("r2", m2)],
      links: [{ a: "r1:eth1", b: "r2:eth1" }],
    });
    await addAddress(m1, "eth1", "198.18.32.1/24");
    await addAddress(m2, "eth1", "198.18.32.2/24");
    await expectPing(m1, "198.18.32.2");
    const before1 = {
      veths: (await hostVeths(t!.ovs)).sort(),
      ports: await ownedPorts(t!.ovs),
      view: JSON.stringify(labs.getLab("full")),
      stored: JSON.stringify(t!.agent.store.lab("full")),
    };
    const filler = join(dir, "filler");
    await run("dd", ["if=/dev/zero", `of=${filler}`, "bs=4k"], { okCodes: [1] });
    try {
      const next: LabSpec = { nodes: [node("r1", m1), node("r2", m2), node("r3", m3)], links: [] };
      await assert.rejects(labs.putLab("full", next), /ENOSPC.*rolled back: the lab is as it was/s);
    } finally {
      await rm(filler);
    }
    assert.deepEqual(
      {
        veths: (await hostVeths(t!.ovs)).sort(),
        ports: await ownedPorts(t!.ovs),
        view: JSON.stringify(labs.getLab("full")),
        stored: JSON.stringify(t!.agent.store.lab("full")),
      },
      before1,
    );
    await expectPing(m1, "198.18.32.2");
    await t!.restart();
    assert.equal(JSON.stringify(t!.agent.store.lab("full")), before1.stored);
  });
});
