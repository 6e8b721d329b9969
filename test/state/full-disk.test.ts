import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { type RunningApi, startApi } from "../../src/api/server.js";
import { silentLogger } from "../../src/common/log.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { addAddress, NetnsPool } from "../harness/netns.js";
import { expectPing } from "../harness/traffic.js";
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
  const shown = (await call("GET", "/labs/keep")).body;
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
  assert.deepEqual((await call("GET", "/labs/keep")).body, shown, "the lab is served as it was");
  assert.equal((await call("GET", "/labs/fresh")).status, 404);
  assert.deepEqual(await ownedPorts(ta.ovs), ports, "nothing changed on the switch");
  await expectPing(n1, "198.18.32.2", { count: 2 });
  assert.equal(readFileSync(join(disk.dir, "labs", "keep.json"), "utf8"), stored);
  assert.deepEqual(readdirSync(join(disk.dir, "labs")), ["keep.json"], "no temporary file is left");

  // Still full at restart: the agent starts and serves what it had.
  await api.close();
  await ta.restart();
  api = await startApi(ta.agent.services, { logger: silentLogger() });
  assert.deepEqual((await call("GET", "/labs/keep")).body, shown);
  await expectPing(n1, "198.18.32.2", { count: 2 });
  // With space again the same change goes through.
  disk.drain();
  assert.equal((await call("PUT", "/labs/keep", change)).status, 200);
  assert.deepEqual(
    (await call("GET", "/labs/keep")).body.nodes.map((n) => n.name),
    ["n1", "n2", "n3"],
  );
});
