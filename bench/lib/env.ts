import { OvsdbClient } from "../../src/ovsdb/index.js";
import { startTestAgent, type TestAgent } from "../../test/harness/agent.js";
import { onCleanup } from "./cleanup.js";

/**
 * A private OVS in a throw-away namespace with the agent in-process on it (test/harness/agent.ts),
 * plus a second OVSDB connection for the floor; all registered for cleanup.
 */
export interface BenchEnv {
  t: TestAgent;
  switchNetns: string;
  bridge: string;
  client: OvsdbClient;
}

export async function startEnv(overrides: Parameters<typeof startTestAgent>[0] = {}): Promise<BenchEnv> {
  const t = await startTestAgent(overrides);
  onCleanup(`agent and private OVS ${t.ovs.dir}`, () => t.close());
  const client = await OvsdbClient.connect({ remote: t.ovs.remote });
  onCleanup("floor OVSDB connection", () => client.close());
  return { t, switchNetns: t.ovs.netns!, bridge: t.config.bridge, client };
}

/** Ports on the bridge whose names are in `names`. */
export function countPorts(client: OvsdbClient, names: readonly string[]): number {
  const set = new Set(names);
  return client.ports().filter((p) => set.has(p.name)).length;
}
