import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { addAddress, ifindex, NetnsPool } from "../harness/netns.js";
import { expectNoPing, expectPing } from "../harness/traffic.js";

let t: TestAgent;
const pool = new NetnsPool("osm");

before(async () => {
  t = await startTestAgent();
});
after(async () => {
  await pool.destroyAll();
  await t?.close();
});

test("two linked nodes ping; unlink stops it; relink restores it without recreating", async () => {
  const [n1, n2] = (await pool.create(2)) as [string, string];
  const labs = t.agent.labs;
  await labs.addInterfaces("lab1", "r1", { netns: n1, interfaces: [{ name: "eth1" }] });
  await labs.addInterfaces("lab1", "r2", { netns: n2, interfaces: [{ name: "eth1" }] });
  await addAddress(n1, "eth1", "198.18.1.1/24");
  await addAddress(n2, "eth1", "198.18.1.2/24");
  await expectNoPing(n1, "198.18.1.2");
  const before1 = await ifindex(n1, "eth1");
  const link = await labs.addLink("lab1", { a: "r1:eth1", b: "r2:eth1" });
  assert.equal(link.state, "up");
  assert.ok(link.vlan !== null && link.vlan >= 100 && link.vlan <= 999);
  await expectPing(n1, "198.18.1.2", { count: 2 });
  await labs.removeLink("lab1", link.id);
  await expectNoPing(n1, "198.18.1.2");
  await labs.addLink("lab1", { a: "r1:eth1", b: "r2:eth1" });
  await expectPing(n1, "198.18.1.2");
  assert.equal(await ifindex(n1, "eth1"), before1);
  await labs.deleteLab("lab1");
  assert.equal(t.agent.labs.listLabs().length, 0);
});
