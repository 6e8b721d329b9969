import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Agent, createAgent } from "../../src/agent.js";
import { silentLogger } from "../../src/common/log.js";
import { type OvnHosts, ovnAgentConfig, startOvnHosts } from "../../test/harness/ovn-hosts.js";
import { onCleanup } from "./cleanup.js";

/** A private OVN of `hosts` simulated hosts with an ovn-backend agent each, all registered for cleanup. */
export async function startOvnAgents(hosts: number): Promise<{ ovn: OvnHosts; agents: Agent[] }> {
  const ovn = await startOvnHosts({ hosts, configureChassis: false });
  onCleanup(`private OVN (central + ${hosts} hosts)`, () => ovn.close());
  const agents: Agent[] = [];
  for (const h of ovn.hosts) {
    const dir = await mkdtemp(join(tmpdir(), "archnet-bench-ovn-"));
    onCleanup(`state dir ${dir}`, () => rm(dir, { recursive: true, force: true }));
    const a = await createAgent(ovnAgentConfig(ovn, h, dir), { logger: silentLogger() });
    onCleanup(`ovn agent of ${h.chassis}`, () => a.close());
    agents.push(a);
  }
  return { ovn, agents };
}
