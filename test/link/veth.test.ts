import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { isAgentError } from "../../src/common/errors.js";
import {
  createVeths,
  createVethsInHost,
  deleteGroup,
  deleteLinks,
  getLink,
  IpBatchError,
  ipBatch,
  type LinkInfo,
  listLinks,
  type NetnsRef,
  netnsLost,
  setLinkUp,
  type VethSpec,
} from "../../src/link/index.js";
import { addAddress, NetnsPool, uniqueName } from "../harness/netns.js";
import { expectNoPing, expectPing } from "../harness/traffic.js";

const code = (c: string) => (e: unknown) => isAgentError(e) && e.code === c;
const skip = process.getuid?.() !== 0 ? "needs root (real kernel namespaces)" : false;

/** A random group per run, so concurrent test runs never delete each other's links. */
const randomGroup = () => 100_000 + Math.floor(Math.random() * 1_000_000_000);

async function eventually(check: () => Promise<boolean>, what: string, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("link layer on the real kernel", { skip }, () => {
  const pool = new NetnsPool("tlk");
  const hosts: string[] = []; // every host-side name a test may have created
  const sleepers: ChildProcess[] = [];
  const host = () => {
    const n = uniqueName("lk");
    hosts.push(n);
    return n;
  };
  /** Which of these names exist as host-side links, sorted. */
  const present = async (names: string[]) =>
    (await listLinks())
      .map((l) => l.name)
      .filter((n) => names.includes(n))
      .sort();
  /** Call at the start of a test: lists which of the names generated since then exist. */
  const scope = () => {
    const from = hosts.length;
    return () => present(hosts.slice(from));
  };

  after(async () => {
    for (const p of sleepers) p.kill("SIGKILL");
    await deleteLinks(hosts, { ignoreMissing: true });
    await pool.destroyAll();
  });

  describe("createVeths into named, path and pid namespaces", () => {
    let nsName: string;
    let nsPath: string;
    let nsPid: string;
    let pid: number;
    const group = randomGroup();
    const specs: VethSpec[] = [];

    before(async () => {
      [nsName, nsPath, nsPid] = (await pool.create(3)) as [string, string, string];
      const sleeper = spawn("ip", ["netns", "exec", nsPid, "sleep", "300"], { stdio: "ignore" });
      sleepers.push(sleeper);
      pid = sleeper.pid!;
      await eventually(async () => netnsLost({ pid }) === undefined, "the sleeper runs");
      // ip netns exec execs sleep: the pid is in nsPid once it has switched.
      await eventually(async () => {
        const links = await listLinks({ pid });
        return links.length === 1;
      }, "the sleeper is inside its namespace");
      const refs: NetnsRef[] = [{ name: nsName }, { path: `/var/run/netns/${nsPath}` }, { pid }];
      refs.forEach((netns, i) => {
        specs.push({
          host: host(),
          peer: "eth1",
          netns,
          mtu: 9000,
          group,
          alias: `lab/n${i}/eth1`,
          mac: `02:00:5e:10:00:0${i}`,
        });
      });
      await createVeths(specs);
    });

    it("gives host ends the MTU, group, alias and admin state asked for", async () => {
      for (const s of specs) {
        const l = (await getLink(s.host)) as LinkInfo;
        assert.ok(l, `host end ${s.host} exists`);
        assert.equal(l.kind, "veth");
        assert.equal(l.mtu, 9000);
        assert.equal(l.group, group);
        assert.equal(l.alias, s.alias);
        assert.equal(l.up, true);
        assert.equal(l.carrier, true, "carrier: the peer is up");
        assert.equal(typeof l.linkNetnsId, "number", "the peer lives in another namespace");
      }
    });

    it("creates each peer under its final name, up, with MTU, alias and MAC, and nothing else in the namespace", async () => {
      for (const s of specs) {
        const links = await listLinks(s.netns);
        assert.deepEqual(links.map((l) => l.name).sort(), ["eth1", "lo"], "no temporary names left behind");
        const peer = links.find((l) => l.name === "eth1")!;
        const hostEnd = (await getLink(s.host))!;
        assert.equal(peer.kind, "veth");
        assert.equal(peer.mtu, 9000);
        assert.equal(peer.up, true);
        assert.equal(peer.carrier, true);
        assert.equal(peer.alias, s.alias);
        assert.equal(peer.address, s.mac);
        assert.equal(peer.group, 0, "only the host end carries the teardown group");
        assert.equal(peer.peerIfindex, hostEnd.ifindex);
        assert.equal(hostEnd.peerIfindex, peer.ifindex);
      }
    });

    it("carrier follows the host end: down -> NO-CARRIER inside, up -> back", async () => {
      const s = specs[0]!;
      const peerCarrier = async () => (await getLink("eth1", s.netns))!.carrier;
      await setLinkUp([s.host], false);
      await eventually(async () => !(await peerCarrier()), "the peer reports NO-CARRIER");
      const peer = (await getLink("eth1", s.netns))!;
      assert.equal(peer.up, true, "the peer stays admin up");
      assert.equal((await getLink(s.host))!.up, false);
      await setLinkUp([s.host], true);
      await eventually(peerCarrier, "the peer has carrier again");
    });
  });

  it("joins two namespaces with a veth pair that carries 9000-byte frames", async () => {
    const [a, b] = (await pool.create(2)) as [string, string];
    // A pair made inside a with its peer created straight into b: both named eth1, no rename.
    await ipBatch(
      [
        [
          "link",
          "add",
          "eth1",
          "mtu",
          "9000",
          "type",
          "veth",
          "peer",
          "name",
          "eth1",
          "mtu",
          "9000",
          "netns",
          b,
        ],
      ],
      {
        netns: { name: a },
      },
    );
    await setLinkUp(["eth1"], true, { name: a });
    await setLinkUp(["eth1"], true, { name: b });
    await addAddress(a, "eth1", "198.18.7.1/24");
    await addAddress(b, "eth1", "198.18.7.2/24");
    await expectPing(a, "198.18.7.2");
    await expectPing(b, "198.18.7.1");
    await expectPing(a, "198.18.7.2", { size: 8972, dontFragment: true });
    await expectNoPing(a, "198.18.7.2", { size: 8973, dontFragment: true, timeoutS: 1 });
  });

  describe("all or nothing", () => {
    it("rejects invalid names before anything is created", async () => {
      const ours = scope();
      const [ns] = (await pool.create(1)) as [string];
      const good = host();
      for (const bad of ["x".repeat(16), "a b", "a/b", "eth%d", ".."]) {
        const specs: VethSpec[] = [
          { host: good, peer: "eth1", netns: { name: ns } },
          { host: host(), peer: bad, netns: { name: ns } },
        ];
        await assert.rejects(createVeths(specs), code("INVALID_NAME"), bad);
      }
      await assert.rejects(
        createVeths([{ host: good, peer: "eth1", netns: { name: ns }, mtu: 20 }]),
        code("BAD_REQUEST"),
      );
      await assert.rejects(
        createVeths([{ host: good, peer: "eth1", netns: { name: ns }, mac: "01:00:5e:00:00:01" }]),
        code("BAD_REQUEST"),
        "a multicast MAC",
      );
      assert.deepEqual(await ours(), []);
      assert.deepEqual(
        (await listLinks({ name: ns })).map((l) => l.name),
        ["lo"],
      );
    });

    it("a missing namespace fails the whole batch with NETNS_NOT_FOUND and creates nothing", async () => {
      const ours = scope();
      const [ns] = (await pool.create(1)) as [string];
      const specs: VethSpec[] = [
        { host: host(), peer: "eth1", netns: { name: ns } },
        { host: host(), peer: "eth2", netns: { name: ns } },
        { host: host(), peer: "eth1", netns: { name: uniqueName("tnone") } },
        { host: host(), peer: "eth1", netns: { pid: 2 ** 22 + 1 } },
      ];
      await assert.rejects(createVeths(specs), (e: unknown) => {
        assert.ok(isAgentError(e, "NETNS_NOT_FOUND"), String(e));
        assert.match(e.message, new RegExp(`cannot create veth ${specs[2]!.host}: netns "tnone`));
        assert.ok(e.hint);
        return true;
      });
      assert.deepEqual(await ours(), []);
      assert.deepEqual(
        (await listLinks({ name: ns })).map((l) => l.name),
        ["lo"],
      );
    });

    it("a taken host name mid-batch rolls back the veths created before it", async () => {
      const ours = scope();
      const [ns] = (await pool.create(1)) as [string];
      const taken = host();
      await createVeths([{ host: taken, peer: "eth9", netns: { name: ns } }]);
      const before = await ours();
      const specs: VethSpec[] = [
        { host: host(), peer: "eth1", netns: { name: ns }, alias: "first" },
        { host: host(), peer: "eth2", netns: { name: ns } },
        { host: taken, peer: "eth3", netns: { name: ns } },
        { host: host(), peer: "eth4", netns: { name: ns } },
      ];
      await assert.rejects(createVeths(specs), (e: unknown) => {
        assert.ok(isAgentError(e, "CONFLICT"), String(e));
        assert.match(
          e.message,
          new RegExp(`cannot create veth ${taken} <-> eth3 .*: an interface named ${taken} already exists`),
        );
        assert.match(e.message, /the 2 veth\(s\) created before it were deleted again/);
        return true;
      });
      assert.deepEqual(await ours(), before);
      assert.deepEqual((await listLinks({ name: ns })).map((l) => l.name).sort(), ["eth9", "lo"]);
    });

    it("a peer name taken inside the namespace is reported as such and rolled back", async () => {
      const ours = scope();
      const [ns] = (await pool.create(1)) as [string];
      const existing = host();
      await createVeths([{ host: existing, peer: "eth1", netns: { name: ns } }]);
      const specs: VethSpec[] = [
        { host: host(), peer: "eth2", netns: { name: ns } },
        { host: host(), peer: "eth1", netns: { name: ns } },
      ];
      await assert.rejects(createVeths(specs), (e: unknown) => {
        assert.ok(isAgentError(e, "CONFLICT"), String(e));
        assert.match(e.message, new RegExp(`an interface named eth1 in netns "${ns}" already exists`));
        return true;
      });
      assert.deepEqual(await ours(), [existing]);
      assert.deepEqual((await listLinks({ name: ns })).map((l) => l.name).sort(), ["eth1", "lo"]);
    });

    it("ipBatch reports the failing line and how many ran, even when ip exits while parsing", async () => {
      const [a, b] = [host(), host()];
      const err = await ipBatch([
        ["link", "add", a, "type", "veth", "peer", "name", b],
        ["link", "add", host(), "type", "veth", "peer", "name", "p", "netns", uniqueName("tnone")],
      ]).catch((e: unknown) => e);
      assert.ok(err instanceof IpBatchError, String(err));
      assert.equal(err.failedLine, 1);
      assert.equal(err.completed, 1);
      assert.match(err.message, /line 2/);
      await deleteLinks([a]);
      assert.equal(await getLink(b), undefined, "deleting one end deletes the peer");
    });
  });

  it("deleteGroup removes exactly that group's links", async () => {
    const ours = scope();
    const [ns] = (await pool.create(1)) as [string];
    const [g1, g2] = [randomGroup(), randomGroup()];
    const specs: VethSpec[] = [1, 2, 3, 4, 5].map((i) => ({
      host: host(),
      peer: `eth${i}`,
      netns: { name: ns },
      group: i <= 3 ? g1 : g2,
    }));
    await createVeths(specs);
    await deleteGroup(g1);
    assert.deepEqual(
      await ours(),
      specs
        .slice(3)
        .map((s) => s.host)
        .sort(),
    );
    assert.deepEqual((await listLinks({ name: ns })).map((l) => l.name).sort(), ["eth4", "eth5", "lo"]);
    await deleteGroup(g1); // empty group: nothing to do, no error
    await assert.rejects(deleteGroup(0), code("BAD_REQUEST"));
    await deleteGroup(g2);
    assert.deepEqual(await ours(), []);
  });

  it("createVethsInHost leaves both ends here, the peer down, alias on both", async () => {
    const ours = scope();
    const [h, p] = [host(), host()];
    await createVethsInHost([{ host: h, peer: p, mtu: 9000, alias: "lab1/r1/eth1" }]);
    const [hl, pl] = [(await getLink(h))!, (await getLink(p))!];
    assert.equal(hl.up, true);
    assert.equal(pl.up, false);
    assert.equal(pl.mtu, 9000);
    assert.equal(hl.alias, "lab1/r1/eth1");
    assert.equal(pl.alias, "lab1/r1/eth1");
    assert.equal(hl.peer, p, "same-namespace peers are reported by name");
    const listed = (await listLinks()).find((l) => l.name === h)!;
    assert.equal(listed.peerIfindex, pl.ifindex, "listLinks resolves the peer's ifindex");
    assert.equal(hl.linkNetnsId, undefined, "same namespace");
    await assert.rejects(createVethsInHost([{ host: h, peer: host() }]), code("CONFLICT"));
    await deleteLinks([h]);
    assert.deepEqual(await ours(), []);
  });

  it("deleteLinks: missing links fail the batch unless ignoreMissing", async () => {
    const ours = scope();
    const [h, p] = [host(), host()];
    await createVethsInHost([{ host: h, peer: p }]);
    const missing = uniqueName("lkgone");
    const err = await deleteLinks([missing, h]).catch((e: unknown) => e);
    assert.ok(err instanceof IpBatchError && err.failedLine === 0 && err.completed === 0, String(err));
    assert.ok(await getLink(h), "the batch stopped before deleting it");
    await deleteLinks([missing, h, uniqueName("lkgone")], { ignoreMissing: true });
    assert.deepEqual(await ours(), []);
  });
});
