import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Agent, createAgent } from "../../src/agent.js";
import { run } from "../../src/common/exec.js";
import { type Logger, silentLogger } from "../../src/common/log.js";
import type { AgentConfig } from "../../src/config/config.js";
import { testAgentConfig } from "./agent.js";
import { type OvsInstance, startOvs } from "./ovs-instance.js";

/**
 * Two simulated hosts on one machine (like shared/sandbox/two-hosts.sh): each a private Open
 * vSwitch in its own throw-away namespace (the "host"), joined by an underlay veth `uA`/`uB`,
 * each with its own in-process agent whose underlay config puts the NIC on `br-phy` with the
 * host's tunnel IP (198.18.0.1 and 198.18.0.2). `close()` stops and removes everything.
 */
export interface SimHost {
  name: "A" | "B";
  ovs: OvsInstance;
  config: AgentConfig;
  /** This host's tunnel address (no prefix). */
  ip: string;
  readonly agent: Agent;
  stopAgent(): Promise<void>;
  startAgent(): Promise<Agent>;
  vsctl(args: readonly string[]): Promise<string>;
}

export interface TwoHosts {
  a: SimHost;
  b: SimHost;
  close(): Promise<void>;
}

export const UNDERLAY_PREFIX = "198.18.0";

async function makeHost(
  name: "A" | "B",
  ovs: OvsInstance,
  overrides: Partial<AgentConfig>,
  cleanups: (() => Promise<void>)[],
  logger: Logger,
): Promise<SimHost> {
  const stateDir = await mkdtemp(join(tmpdir(), `archnet-state-${name}-`));
  cleanups.push(() => rm(stateDir, { recursive: true, force: true }));
  const ip = `${UNDERLAY_PREFIX}.${name === "A" ? 1 : 2}`;
  const config = testAgentConfig(ovs, stateDir, {
    underlay: { bridge: "br-phy", interface: `u${name}`, localIp: `${ip}/24` },
    ...overrides,
  });
  let agent: Agent | undefined;
  const host: SimHost = {
    name,
    ovs,
    config,
    ip,
    get agent() {
      if (!agent) throw new Error(`the agent of host ${name} is stopped`);
      return agent;
    },
    async stopAgent() {
      await agent?.close();
      agent = undefined;
    },
    async startAgent() {
      agent = await createAgent(config, { logger });
      return agent;
    },
    vsctl: (args) => ovs.vsctl(args),
  };
  cleanups.push(() => host.stopAgent().catch(() => undefined));
  await host.startAgent();
  return host;
}

export async function startTwoHosts(
  overrides: Partial<AgentConfig> = {},
  opts: { logger?: Logger } = {},
): Promise<TwoHosts> {
  const logger = opts.logger ?? silentLogger();
  // Cleanups run in reverse order of registration.
  const cleanups: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  };
  try {
    const ovsA = await startOvs({ isolatedNetns: true });
    cleanups.push(() => ovsA.stop());
    const ovsB = await startOvs({ isolatedNetns: true });
    cleanups.push(() => ovsB.stop());
    // The underlay cable: created directly inside the two host namespaces.
    await run("ip", [
      "link",
      "add",
      "uA",
      "netns",
      ovsA.netns!,
      "type",
      "veth",
      "peer",
      "name",
      "uB",
      "netns",
      ovsB.netns!,
    ]);
    const a = await makeHost("A", ovsA, overrides, cleanups, logger);
    const b = await makeHost("B", ovsB, overrides, cleanups, logger);
    return { a, b, close };
  } catch (e) {
    await close();
    throw e;
  }
}
