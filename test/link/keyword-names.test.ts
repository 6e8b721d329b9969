import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { BackendName } from "../../src/backends/network-backend.js";
import { isAgentError } from "../../src/common/errors.js";
import { ipJson } from "../../src/link/index.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { addAddress, NetnsPool } from "../harness/netns.js";
import { expectPing } from "../harness/traffic.js";

/**
 * Interface names that are also words of `ip link` (`up`, `help`, `a` = address, `dev`, `type`)
 * reach the kernel as names: every batch line says `name NAME` / `dev NAME`. Without that,
 * `link add up ...` made a veth called veth0 and `link add help ...` printed the usage.
 */
const KEYWORDS = ["up", "help", "a", "dev", "type"];

async function ifnames(ns: string): Promise<string[]> {
  const links = await ipJson<{ ifname: string }[]>(["link", "show"], { name: ns });
  return links.map((l) => l.ifname).sort();
}

for (const backend of ["ovs", "local"] as BackendName[]) {
  describe(`interface names that are ip keywords (${backend} backend)`, () => {
    let t: TestAgent;
    const pool = new NetnsPool("kw");
    before(async () => {
      t = await startTestAgent({ backend });
    });
    after(async () => {
      await pool.destroyAll();
      await t?.close();
    });

    test("each appears under its exact name in the node's namespace and carries a ping", async (c) => {
      const [n1, n2] = (await pool.create(2)) as [string, string];
      const lab = `kw-${backend}`;
      c.after(() => t.agent.labs.deleteLab(lab).catch(() => undefined));
      const interfaces = KEYWORDS.map((name) => ({ name }));
      await t.agent.labs.putLab(lab, {
        nodes: [
          { name: "r1", netns: n1, interfaces },
          { name: "r2", netns: n2, interfaces },
        ],
        links: KEYWORDS.map((k) => ({ a: `r1:${k}`, b: `r2:${k}`, id: `l-${k}` })),
      });
      const want = ["lo", ...KEYWORDS].sort();
      assert.deepEqual(await ifnames(n1), want);
      assert.deepEqual(await ifnames(n2), want);
      for (const [i, k] of KEYWORDS.entries()) {
        await addAddress(n1, k, `198.18.${40 + i}.1/24`);
        await addAddress(n2, k, `198.18.${40 + i}.2/24`);
      }
      for (const [i, k] of KEYWORDS.entries()) {
        await expectPing(n1, `198.18.${40 + i}.2`, { count: 1 });
        assert.equal(t.agent.labs.getLab(lab).links.find((l) => l.id === `l-${k}`)?.state, "up", k);
      }
    });

    test("names the kernel reserves are refused before anything is made", async () => {
      const [n1] = (await pool.create(1)) as [string];
      for (const name of ["all", "default", "eth#1"]) {
        await assert.rejects(
          t.agent.labs.putLab("kw-bad", {
            nodes: [{ name: "r1", netns: n1, interfaces: [{ name }] }],
            links: [],
          }),
          (e: unknown) => isAgentError(e) && e.code === "INVALID_NAME",
          name,
        );
      }
      assert.deepEqual(await ifnames(n1), ["lo"]);
      assert.equal(t.agent.store.lab("kw-bad"), undefined);
    });
  });
}
