import type { TestContext } from "node:test";
import type { TestAgent } from "./agent.js";
import { addAddress, type NetnsPool } from "./netns.js";

/** Deletes the labs when the test ends, also when it fails: a lab left behind fails the next tests. */
export function dropLabsAfter(t: TestAgent, ctx: TestContext, ...names: string[]): void {
  ctx.after(async () => {
    const left = new Set(t.agent.labs.listLabs().map((l) => l.lab));
    for (const lab of names) if (left.has(lab)) await t.agent.labs.deleteLab(lab);
  });
}

/** Nodes n0..n(k-1) with eth1 each, all in 198.18.SUBNET.0/24 so only the switch can keep them apart. */
export async function labNodes(
  t: TestAgent,
  pool: NetnsPool,
  lab: string,
  k: number,
  subnet: number,
): Promise<{ ns: string[]; ip: string[] }> {
  const ns = await pool.create(k);
  const ip: string[] = [];
  for (const [i, n] of ns.entries()) {
    await t.agent.labs.addInterfaces(lab, `n${i}`, { netns: n, interfaces: [{ name: "eth1" }] });
    ip.push(`198.18.${subnet}.${i + 1}`);
    await addAddress(n, "eth1", `${ip[i]}/24`);
  }
  return { ns, ip };
}
