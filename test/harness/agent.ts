import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { type Agent, createAgent } from "../../src/agent.js";
import { silentLogger } from "../../src/common/log.js";
import { type AgentConfig, defaultConfig } from "../../src/config/config.js";
import { TEST_DATAPATH, TEST_SWITCH_TIMEOUT_SCALE } from "./kernel-host.js";
import { type OvsInstance, startOvs } from "./ovs-instance.js";

/**
 * A real agent for a test: its own private Open vSwitch (ovsdb-server + ovs-vswitchd in a
 * throw-away namespace, where the host ends of veths live too), its own state dir, no plugin
 * socket, no cleanup timer. `close()` stops everything and removes it; call it from `after`.
 */
export interface TestAgent {
  agent: Agent;
  ovs: OvsInstance;
  config: AgentConfig;
  /** Stops the agent (like a process exit) and starts a new one on the same state and OVS. */
  restart(): Promise<Agent>;
  /** Stops the agent without tearing anything down (like kill). */
  stopAgent(): Promise<void>;
  startAgent(): Promise<Agent>;
  close(): Promise<void>;
}

/** Silent, unless ARCHNET_TEST_LOG names a level: then JSON logs go to stderr (debugging a test). */
function testLogger() {
  const level = process.env.ARCHNET_TEST_LOG;
  return level ? pino({ level }, pino.destination(2)) : silentLogger();
}

/** An agent's config for a private OVS: its switch netns, no plugin, no cleanup timer, port 0. */
export function testAgentConfig(
  ovs: OvsInstance,
  stateDir: string,
  overrides: Partial<AgentConfig> = {},
): AgentConfig {
  return {
    ...defaultConfig(),
    ovsdb: ovs.remote,
    datapath: TEST_DATAPATH,
    switchTimeoutScale: TEST_SWITCH_TIMEOUT_SCALE,
    stateDir,
    pluginSocket: undefined,
    switchNetns: ovs.netns,
    cleanupIntervalS: 0,
    cleanupGraceS: 0,
    listen: { host: "127.0.0.1", port: 0 },
    ...overrides,
  };
}

export async function startTestAgent(overrides: Partial<AgentConfig> = {}): Promise<TestAgent> {
  const ovs = await startOvs({ isolatedNetns: true });
  const stateDir = await mkdtemp(join(tmpdir(), "archnet-state-"));
  const config = testAgentConfig(ovs, stateDir, overrides);
  let agent: Agent | undefined;
  const t: TestAgent = {
    get agent() {
      if (!agent) throw new Error("the test agent is stopped");
      return agent;
    },
    ovs,
    config,
    async stopAgent() {
      await agent?.close();
      agent = undefined;
    },
    async startAgent() {
      agent = await createAgent(config, { logger: testLogger() });
      return agent;
    },
    async restart() {
      await t.stopAgent();
      return t.startAgent();
    },
    async close() {
      await t.stopAgent().catch(() => undefined);
      await ovs.stop();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
  try {
    await t.startAgent();
  } catch (e) {
    await t.close();
    throw e;
  }
  return t;
}
