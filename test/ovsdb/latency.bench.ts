/**
 * Retag latency against a real private OVS: one `update Port tag` transaction, with and without
 * waitApplied, on a bridge with ~200 internal ports. Run: node --import tsx test/ovsdb/latency.bench.ts
 */
import { eq, insert, mutate, namedUuid, OvsdbClient, setInsert, update } from "../../src/ovsdb/index.js";
import { startOvs } from "../harness/ovs-instance.js";

const PORTS = Number(process.env.PORTS ?? 200);
const ROUNDS = Number(process.env.ROUNDS ?? 200);

function stats(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!.toFixed(2);
  return `median ${q(0.5)} ms, p90 ${q(0.9)} ms, p99 ${q(0.99)} ms, max ${s[s.length - 1]!.toFixed(2)} ms`;
}

const ovs = await startOvs({ isolatedNetns: true });
try {
  const client = await OvsdbClient.connect({ remote: ovs.remote, callTimeoutMs: 60_000 });
  await client.transact(
    [
      insert("Bridge", { name: "br-bench", datapath_type: "netdev" }, "b"),
      mutate("Open_vSwitch", [], [setInsert("bridges", namedUuid("b"))]),
    ],
    { waitApplied: true },
  );
  const t0 = performance.now();
  for (let i = 0; i < PORTS; i += 50) {
    const ops = [];
    for (let j = i; j < Math.min(PORTS, i + 50); j++) {
      ops.push(
        insert("Interface", { name: `bp${j}`, type: "internal" }, `i${j}`),
        insert("Port", { name: `bp${j}`, interfaces: namedUuid(`i${j}`), tag: 1 }, `p${j}`),
      );
    }
    ops.push(
      mutate(
        "Bridge",
        [eq("name", "br-bench")],
        [
          setInsert("ports", [
            "set",
            ops
              .filter((o) => o.table === "Port")
              .map((o) => namedUuid((o as { "uuid-name": string })["uuid-name"])),
          ]),
        ],
      ),
    );
    await client.transact(ops, { waitApplied: true });
  }
  console.log(
    `${PORTS} ports added and applied in ${(performance.now() - t0).toFixed(0)} ms; ports in cache: ${client.ports().length}`,
  );

  for (const waitApplied of [false, true]) {
    const ms: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      const tag = 2 + (i % 4000);
      const start = performance.now();
      await client.transact([update("Port", [eq("name", "bp7")], { tag })], { waitApplied });
      ms.push(performance.now() - start);
      if (client.portByName("bp7")?.tag !== tag) throw new Error("cache not current when transact resolved");
    }
    console.log(`retag ${waitApplied ? "with waitApplied" : "commit only     "}: ${stats(ms)} (n=${ROUNDS})`);
  }
  const lookups = 1_000_000;
  const start = performance.now();
  for (let i = 0; i < lookups; i++) client.portByName(`bp${i % PORTS}`);
  console.log(`portByName: ${(((performance.now() - start) / lookups) * 1e6).toFixed(0)} ns per lookup`);
  await client.close();
} finally {
  await ovs.stop();
}
