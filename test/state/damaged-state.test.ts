import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { pino } from "pino";
import { type Agent, createAgent } from "../../src/agent.js";
import { addAddress } from "../harness/netns.js";
import { startRealAgentFixture } from "../harness/real-agent-fixture.js";
import { expectPing } from "../harness/traffic.js";

/**
 * A state file damaged behind the agent's back (a crash of an older version, a disk error, a
 * hand edit): the agent must start with everything else, not refuse to start.
 */
test("a damaged lab file and overlay file are set aside at start; the other lab converges and passes traffic", async (t) => {
  const fx = await startRealAgentFixture({});
  let agent: Agent | undefined;
  t.after(async () => {
    await agent?.close();
    await fx.close();
  });
  const labs = fx.test.agent.labs;
  const [a, b, c] = [await fx.nodeRef("a"), await fx.nodeRef("b"), await fx.nodeRef("c")];
  await labs.putLab("good", {
    nodes: [
      { name: "a", ...a, interfaces: [{ name: "eth1" }, { name: "eth2" }, { name: "eth3" }] },
      { name: "b", ...b, interfaces: [{ name: "eth1" }] },
    ],
    links: [{ a: "a:eth1", b: "b:eth1", id: "ab" }],
  });
  await labs.putLab("bad", { nodes: [{ name: "c", ...c, interfaces: [{ name: "eth1" }] }], links: [] });
  const overlay = (link: string, iface: string, vni: number) =>
    fx.services.overlays.attach({
      lab: "good",
      link,
      node: "a",
      interface: iface,
      vni,
      local_ip: "198.18.0.1",
      remote_ip: "198.18.0.2",
    });
  await overlay("o1", "eth2", 5101);
  await overlay("o2", "eth3", 5102);
  await addAddress(a.netns, "eth1", "198.18.31.1/24");
  await addAddress(b.netns, "eth1", "198.18.31.2/24");

  await fx.test.stopAgent();
  const dir = fx.test.config.stateDir;
  writeFileSync(join(dir, "labs", "bad.json"), '{"lab":"bad","group":');
  writeFileSync(join(dir, "overlays", `${encodeURIComponent("good/o2")}.json`), "garbage\n");
  const warnings: { msg: string; file: string; movedTo: string }[] = [];
  const logger = pino({ level: "warn" }, { write: (s: string) => warnings.push(JSON.parse(s)) });
  // The harness's agent logs nowhere: this one is the same agent (same config), with its log kept.
  const restarted = await createAgent(fx.test.config, { logger });
  agent = restarted;

  assert.deepEqual(
    restarted.labs.listLabs().map((l) => l.lab),
    ["good"],
  );
  assert.deepEqual(
    restarted.services.overlays.status().map((o) => o.link),
    ["o1"],
  );
  assert.equal(restarted.labs.getLab("good").links[0]?.state, "up");
  await expectPing(a.netns, "198.18.31.2", { count: 2 });

  const damaged = [join(dir, "labs", "bad.json"), join(dir, "overlays", "good%2Fo2.json")];
  assert.equal(restarted.store.setAside.length, 2);
  for (const [i, file] of damaged.entries()) {
    const moved = restarted.store.setAside.find((m) => m.startsWith(`${file}.corrupt-`));
    assert.ok(moved, `${file} set aside (${restarted.store.setAside})`);
    assert.equal(readFileSync(moved, "utf8"), i === 0 ? '{"lab":"bad","group":' : "garbage\n");
    const w = warnings.find((l) => l.file === file);
    assert.ok(w, `a warning names ${file}: ${JSON.stringify(warnings)}`);
    assert.equal(w.movedTo, moved);
    assert.match(w.msg, /is damaged and was set aside as .*; the agent runs without what it described/);
  }
  assert.deepEqual(
    readdirSync(join(dir, "labs")).filter((f) => f.endsWith(".json")),
    ["good.json"],
  );
});
