import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { type RunningApi, startApi } from "../../src/api/server.js";
import { run } from "../../src/common/exec.js";
import { silentLogger } from "../../src/common/log.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { addAddress, NetnsPool } from "../harness/netns.js";
import { expectNoPing, expectPing } from "../harness/traffic.js";
import { ownedPorts } from "../labs/facts.js";
import { mountSmallDisk } from "./small-disk.js";

interface Answer {
  error: { code: string; message: string; hint: string };
  nodes: { name: string }[];
}

/**
 * The state dir's disk is full: a change is refused with 507 and a hint, and nothing of it
 * happens, neither in the agent's memory nor on the switch; every existing lab stays stored,
 * served and passing traffic, also after a restart.
 */
test("a full state disk refuses a PUT with 507 STATE_WRITE_FAILED and loses nothing", async (t) => {
  const disk = await mountSmallDisk(256);
  const pool = new NetnsPool("fdk");
  let ta: TestAgent | undefined;
  let api: RunningApi | undefined;
  t.after(async () => {
    try {
      await api?.close();
      await ta?.close();
      await pool.destroyAll();
    } finally {
      await disk.remove();
    }
  });
  ta = await startTestAgent({ stateDir: disk.dir });
  api = await startApi(ta.agent.services, { logger: silentLogger() });
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${api?.address}${path}`, {
      method,
      ...(body === undefined
        ? {}
        : { headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Answer };
  };

  const [n1, n2, n3] = (await pool.create(3)) as [string, string, string];
  const keep = {
    nodes: [
      { name: "n1", netns: n1, interfaces: [{ name: "eth1" }] },
      { name: "n2", netns: n2, interfaces: [{ name: "eth1" }] },
    ],
    links: [{ a: "n1:eth1", b: "n2:eth1", id: "l1" }],
  };
  assert.equal((await call("PUT", "/labs/keep", keep)).status, 200);
  await addAddress(n1, "eth1", "198.18.32.1/24");
  await addAddress(n2, "eth1", "198.18.32.2/24");
  await expectPing(n1, "198.18.32.2", { count: 2 });
  const stored = readFileSync(join(disk.dir, "labs", "keep.json"), "utf8");
  // Counters move with ovs-vswitchd's periodic statistics, whatever the test does: not compared.
  const served = async () =>
    JSON.parse(
      JSON.stringify((await call("GET", "/labs/keep")).body, (k, v) => (k === "counters" ? undefined : v)),
    );
  const shown = await served();
  const ports = await ownedPorts(ta.ovs);

  disk.fill(0);
  // Removes the link and adds a node: both halves must not happen.
  const change = {
    nodes: [...keep.nodes, { name: "n3", netns: n3, interfaces: [{ name: "eth1" }] }],
    links: [],
  };
  for (const [path, spec] of [
    ["/labs/keep", change],
    ["/labs/fresh", { nodes: [{ name: "n3", netns: n3, interfaces: [{ name: "eth1" }] }], links: [] }],
  ] as const) {
    const res = await call("PUT", path, spec);
    assert.equal(res.status, 507, JSON.stringify(res.body));
    assert.equal(res.body.error.code, "STATE_WRITE_FAILED");
    assert.match(
      res.body.error.message,
      new RegExp(`cannot store the agent's state in ${disk.dir}/labs .*ENOSPC`),
    );
    assert.match(res.body.error.hint, new RegExp(`^free space in ${disk.dir}/labs`));
  }
  assert.deepEqual(await served(), shown, "the lab is served as it was");
  assert.equal((await call("GET", "/labs/fresh")).status, 404);
  assert.deepEqual(await ownedPorts(ta.ovs), ports, "nothing changed on the switch");
  await expectPing(n1, "198.18.32.2", { count: 2 });
  assert.equal(readFileSync(join(disk.dir, "labs", "keep.json"), "utf8"), stored);
  assert.deepEqual(readdirSync(join(disk.dir, "labs")), ["keep.json"], "no temporary file is left");

  // Still full at restart: the agent starts and serves what it had.
  await api.close();
  await ta.restart();
  api = await startApi(ta.agent.services, { logger: silentLogger() });
  assert.deepEqual(await served(), shown);
  await expectPing(n1, "198.18.32.2", { count: 2 });
  // With space again the same change goes through.
  disk.drain();
  assert.equal((await call("PUT", "/labs/keep", change)).status, 200);
  assert.deepEqual(
    (await call("GET", "/labs/keep")).body.nodes.map((n) => n.name),
    ["n1", "n2", "n3"],
  );
});

/**
 * Hot connects and wire disconnects write the record while the network changes: with the disk
 * full, they (and a VLAN disconnect, written first) are refused with 507 and undone, so the
 * switch's ports and flows are as before and the old links pass traffic.
 */
test("a full state disk refuses hot link changes with 507 and undoes them on the switch", async (t) => {
  const disk = await mountSmallDisk(256);
  const pool = new NetnsPool("fdh");
  let ta: TestAgent | undefined;
  t.after(async () => {
    try {
      await ta?.close();
      await pool.destroyAll();
    } finally {
      await disk.remove();
    }
  });
  ta = await startTestAgent({ stateDir: disk.dir });
  const labs = ta.agent.labs;
  const [n1, n2] = (await pool.create(2)) as [string, string];
  const ifaces = [{ name: "eth1" }, { name: "eth2" }, { name: "eth3" }];
  await labs.putLab("hot", {
    nodes: [
      { name: "n1", netns: n1, interfaces: ifaces },
      { name: "n2", netns: n2, interfaces: ifaces },
    ],
    links: [
      { a: "n1:eth1", b: "n2:eth1", id: "v1" },
      { a: "n1:eth2", b: "n2:eth2", id: "w1", mode: "wire" },
    ],
  });
  for (const [k, dev] of ["eth1", "eth2", "eth3"].entries()) {
    await addAddress(n1, dev, `198.18.${40 + k}.1/24`);
    await addAddress(n2, dev, `198.18.${40 + k}.2/24`);
  }
  const mgmt = `unix:${ta.ovs.dir}/${ta.config.bridge}.mgmt`;
  const flows = async () =>
    (
      await run("ovs-ofctl", ["-O", "OpenFlow13", "dump-flows", "--no-stats", mgmt], { timeoutMs: 10_000 })
    ).stdout
      .split("\n")
      .filter((l) => l.includes("cookie="))
      .map((l) => l.trim())
      .sort();
  const before = { ports: await ownedPorts(ta.ovs), flows: await flows() };
  const stored = readFileSync(join(disk.dir, "labs", "hot.json"), "utf8");

  disk.fill(0);
  const refused = /ENOSPC.*rolled back: the lab is as it was/s;
  await assert.rejects(labs.removeLink("hot", "v1"), refused);
  await assert.rejects(labs.removeLink("hot", "w1"), refused);
  await assert.rejects(labs.addLink("hot", { a: "n1:eth3", b: "n2:eth3", id: "w3", mode: "wire" }), refused);
  await assert.rejects(labs.addLink("hot", { a: "n1:eth3", b: "n2:eth3", id: "v3" }), refused);
  assert.deepEqual({ ports: await ownedPorts(ta.ovs), flows: await flows() }, before);
  await expectPing(n1, "198.18.40.2", { count: 2 });
  await expectPing(n1, "198.18.41.2", { count: 2 });
  await expectNoPing(n1, "198.18.42.2");
  assert.equal(readFileSync(join(disk.dir, "labs", "hot.json"), "utf8"), stored);
  assert.deepEqual(
    labs.getLab("hot").links.map((l) => l.id),
    ["v1", "w1"],
  );
  disk.drain();
  await labs.addLink("hot", { a: "n1:eth3", b: "n2:eth3", id: "w3", mode: "wire" });
  await expectPing(n1, "198.18.42.2", { count: 2 });
});
