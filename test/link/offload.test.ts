import assert from "node:assert/strict";
import { after, test } from "node:test";
import { createVeths, deleteLinks, disableTxOffload } from "../../src/link/index.js";
import { NetnsPool, nsExec, uniqueName } from "../harness/netns.js";

const pool = new NetnsPool("txo");
const hosts: string[] = [];
after(async () => {
  await deleteLinks(hosts, { ignoreMissing: true });
  await pool.destroyAll();
});

const txChecksumming = async (ns: string, dev: string) =>
  /^tx-checksumming: (on|off)/m.exec((await nsExec(ns, ["ethtool", "-k", dev])).stdout)?.[1];

test("TX offload is turned off on many interfaces in many namespaces in one helper run", async () => {
  const nss = await pool.create(3);
  const specs = nss.flatMap((ns) =>
    ["eth1", "eth2"].map((peer) => ({ host: uniqueName("vt"), peer, netns: { name: ns } })),
  );
  hosts.push(...specs.map((s) => s.host));
  await createVeths(specs);
  for (const s of specs) assert.equal(await txChecksumming(s.netns.name, s.peer), "on");
  await disableTxOffload(specs.map((s) => ({ dev: s.peer, netns: s.netns })));
  for (const s of specs) assert.equal(await txChecksumming(s.netns.name, s.peer), "off");
});

test("a missing interface is an error naming it", async () => {
  const [ns] = (await pool.create(1)) as [string];
  await assert.rejects(disableTxOffload([{ dev: "nope0", netns: { name: ns } }]), /nope0: No such device/);
});
