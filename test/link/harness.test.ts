import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isAgentError } from "../../src/common/errors.js";
import { getLink, ipBatch, listLinks, setMtu } from "../../src/link/index.js";
import { addAddress, ifindex, nsExec, setUp, uniqueName, withNetns } from "../harness/netns.js";
import { capture, ping } from "../harness/traffic.js";

const skip = process.getuid?.() !== 0 ? "needs root (real kernel namespaces)" : false;

describe("namespace test harness", { skip }, () => {
  it("uniqueName fits an interface name", () => {
    const names = new Set(Array.from({ length: 100 }, () => uniqueName("lab")));
    assert.equal(names.size, 100);
    for (const n of names) assert.match(n, /^lab[0-9a-z]{12}$/);
    assert.throws(() => uniqueName("x".repeat(12)));
  });

  it("withNetns creates namespaces with lo up and always deletes them", async () => {
    let made: string[] = [];
    await assert.rejects(
      withNetns(2, async (names) => {
        made = names;
        for (const ns of names) assert.equal((await getLink("lo", { name: ns }))?.up, true);
        throw new Error("boom");
      }),
      /boom/,
    );
    for (const ns of made) {
      await assert.rejects(listLinks({ path: `/var/run/netns/${ns}` }), (e: unknown) =>
        isAgentError(e, "NETNS_NOT_FOUND"),
      );
    }
  });

  it("ping, capture and MTU changes between two namespaces", async () => {
    await withNetns(2, async ([a, b]) => {
      const [na, nb] = [a!, b!];
      await ipBatch([["link", "add", "eth1", "type", "veth", "peer", "name", "eth1", "netns", nb]], {
        netns: { name: na },
      });
      await setUp(na, "eth1");
      await setUp(nb, "eth1");
      await addAddress(na, "eth1", "198.19.0.1/30");
      await addAddress(nb, "eth1", "198.19.0.2/30");
      assert.equal(typeof (await ifindex(nb, "eth1")), "number");
      assert.match(
        (await nsExec(na, ["ip", "-br", "addr", "show", "dev", "eth1"])).stdout,
        /198\.19\.0\.1\/30/,
      );
      const lines = await capture(nb, "eth1", "icmp", () => ping(na, "198.19.0.2", { count: 2 }), {
        count: 2,
        timeoutMs: 5000,
      });
      assert.equal(lines.length, 2, lines.join("\n"));
      assert.match(lines[0]!, /198\.19\.0\.1 > 198\.19\.0\.2: ICMP echo request/);
      assert.match(lines[0]!, /([0-9a-f]{2}:){5}[0-9a-f]{2} > /, "-e prints MAC addresses");

      await setMtu(["eth1"], 1400, { name: na });
      assert.equal((await getLink("eth1", { name: na }))?.mtu, 1400);
      assert.equal(await ping(na, "198.19.0.2", { size: 1400, dontFragment: true }), false);
      assert.equal(
        await ping(na, "198.18.255.254", { timeoutS: 1 }),
        false,
        "unreachable is false, not a throw",
      );
      await assert.rejects(ping(na, "203.0.113.1"), /outside 198\.18\.0\.0\/15/);
      await assert.rejects(addAddress(na, "eth1", "100.64.1.1/24"), /outside 198\.18\.0\.0\/15/);
    });
  });
});
