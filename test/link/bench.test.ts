import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { run } from "../../src/common/exec.js";
import { createVeths, deleteGroup, deleteLinks, listLinks, type VethSpec } from "../../src/link/index.js";
import { NetnsPool, uniqueName } from "../harness/netns.js";

/** Measurements printed, not asserted (timings are noisy on shared VMs); correctness is asserted. */
const skip = process.getuid?.() !== 0 ? "needs root (real kernel namespaces)" : false;
const PAIRS = 200;
const NAMESPACES = 100;

const ms = (t0: bigint) => Number((process.hrtime.bigint() - t0) / 1_000_000n);
const randomGroup = () => 100_000 + Math.floor(Math.random() * 1_000_000_000);

describe("link layer cost: batched vs one process per link", { skip }, () => {
  const pool = new NetnsPool("tbn");
  const hosts: string[] = [];
  after(async () => {
    await deleteLinks(hosts, { ignoreMissing: true });
    await pool.destroyAll();
  });

  it(`${PAIRS} veth pairs into ${NAMESPACES} namespaces`, async (t) => {
    const t0 = process.hrtime.bigint();
    const nss = await pool.create(NAMESPACES * 2, { loUp: false });
    t.diagnostic(`create ${NAMESPACES * 2} namespaces (one ip -batch, lo left down): ${ms(t0)} ms`);
    const [batchNs, seqNs] = [nss.slice(0, NAMESPACES), nss.slice(NAMESPACES)];
    const specsFor = (namespaces: string[], group: number): VethSpec[] =>
      Array.from({ length: PAIRS }, (_, i) => {
        const host = uniqueName("bn");
        hosts.push(host);
        return {
          host,
          peer: `eth${Math.floor(i / NAMESPACES) + 1}`,
          netns: { name: namespaces[i % NAMESPACES]! },
          mtu: 9000,
          group,
        };
      });

    const g1 = randomGroup();
    const batched = specsFor(batchNs, g1);
    let t1 = process.hrtime.bigint();
    await createVeths(batched);
    const createBatched = ms(t1);

    const g2 = randomGroup();
    const sequential = specsFor(seqNs, g2);
    t1 = process.hrtime.bigint();
    for (const s of sequential) {
      const ns = (s.netns as { name: string }).name;
      await run(
        "ip",
        ["link", "add", s.host, "mtu", "9000", "group", String(g2), "up", "type", "veth"].concat([
          "peer",
          "name",
          s.peer,
          "mtu",
          "9000",
          "netns",
          ns,
        ]),
      );
    }
    const createSequential = ms(t1);

    const links = await listLinks();
    assert.equal(links.filter((l) => l.group === g1).length, PAIRS);
    assert.equal(links.filter((l) => l.group === g2).length, PAIRS);

    t1 = process.hrtime.bigint();
    await deleteGroup(g1);
    const delGroup = ms(t1);
    t1 = process.hrtime.bigint();
    for (const s of sequential) await run("ip", ["link", "del", "dev", s.host]);
    const delSequential = ms(t1);
    const g3 = randomGroup();
    const aliased = specsFor(batchNs, g3).map((s, i) => ({ ...s, alias: `bench/n${i}/${s.peer}` }));
    t1 = process.hrtime.bigint();
    await createVeths(aliased);
    const createAliased = ms(t1);
    await deleteGroup(g3);
    const left = (await listLinks()).filter((l) => l.group === g1 || l.group === g2 || l.group === g3);
    assert.deepEqual(left, []);

    t.diagnostic(
      `create: createVeths ${createBatched} ms (one ip -batch, peers up) vs ` +
        `${PAIRS} x ip link add ${createSequential} ms (peers left down) -> x${(createSequential / createBatched).toFixed(1)}`,
    );
    t.diagnostic(`create with aliases (adds one nsenter+ip per namespace, 8 at a time): ${createAliased} ms`);
    t.diagnostic(
      `delete: deleteGroup ${delGroup} ms vs ${PAIRS} x ip link del ${delSequential} ms -> x${(delSequential / Math.max(delGroup, 1)).toFixed(1)}`,
    );
  });
});
