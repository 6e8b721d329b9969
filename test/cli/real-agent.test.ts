/**
 * The `archnet` CLI against the real agent served over HTTP on 127.0.0.1: the shared suite, and
 * cleanup of a real orphan (a stray veth with the agent's prefix in the switch's namespace).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { run } from "../../src/common/exec.js";
import { uniqueName } from "../harness/netns.js";
import { type RealAgentFixture, realAgentTarget } from "../harness/real-agent-fixture.js";
import { cliSuite } from "./cli-suite.js";
import { type CliResult, type CliTarget, runCli } from "./target.js";

cliSuite("real agent", realAgentTarget);

describe("archnet CLI against the real agent: status and cleanup", () => {
  let target: CliTarget;
  let switchNs: string;
  const cli = (...args: string[]): Promise<CliResult> => runCli(["--url", target.url, ...args]);
  const ok = (r: CliResult) => assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
  const switchLinks = async () => (await run("ip", ["-n", switchNs, "-br", "link"])).stdout;

  before(async () => {
    target = await realAgentTarget({});
    switchNs = (target.fixture as RealAgentFixture).test.ovs.netns as string;
  });
  after(async () => target?.close());

  it("status names the ovs backend, the userspace datapath and the bridge", async () => {
    const r = await cli("status");
    ok(r);
    assert.match(r.stdout, /\nbackend\s+ovs\b/);
    assert.match(r.stdout, /netdev/);
    const j = JSON.parse((await cli("--json", "status")).stdout) as {
      health: { backend: string; datapath: string };
    };
    assert.deepEqual([j.health.backend, j.health.datapath], ["ovs", "netdev"]);
  });

  it("cleanup --dry-run lists a port left behind and keeps it; cleanup removes it", async () => {
    const clean = await cli("cleanup", "--dry-run");
    ok(clean);
    assert.equal(clean.stdout.trim(), "nothing is orphaned");

    // What a crash can leave: a host port with the agent's marks whose lab no longer exists.
    const stray = uniqueName("vh");
    const peer = uniqueName("zz");
    const fixture = target.fixture as RealAgentFixture;
    await run("ip", ["-n", switchNs, "link", "add", stray, "type", "veth", "peer", "name", peer]);
    try {
      await fixture.test.ovs.vsctl([
        "add-port",
        fixture.test.config.bridge,
        stray,
        "--",
        "set",
        "Port",
        stray,
        "external_ids:archetype_kind=node",
        "external_ids:archetype_lab=gone",
        "external_ids:archetype_node=r1",
        "external_ids:archetype_if=eth1",
        `external_ids:archetype_created=${Date.now() - 60_000}`,
      ]);
      const dry = await cli("cleanup", "--dry-run");
      ok(dry);
      assert.match(dry.stdout, /dry run/);
      assert.match(dry.stdout, new RegExp(`\\nport\\s+${stray}\\s+\\S`), dry.stdout);
      assert.match(await switchLinks(), new RegExp(`^${stray}@`, "m"), "a dry run removes nothing");
      const j = JSON.parse((await cli("--json", "cleanup", "--dry-run")).stdout) as {
        orphans: { kind: string; name: string }[];
      };
      assert.deepEqual(
        j.orphans.map((o) => [o.kind, o.name]),
        [["port", stray]],
      );

      const removed = await cli("cleanup");
      ok(removed);
      assert.match(removed.stdout, /^removed 1:/);
      assert.match(removed.stdout, new RegExp(stray));
      assert.doesNotMatch(
        await fixture.test.ovs.vsctl(["list-ports", fixture.test.config.bridge]),
        new RegExp(stray),
      );
      assert.equal((await cli("cleanup", "--dry-run")).stdout.trim(), "nothing is orphaned");
    } finally {
      await run("ip", ["-n", switchNs, "link", "del", stray], { okCodes: [1] }).catch(() => undefined);
    }
  });
});
