/**
 * The API and CLI suites against the real agent: a private Open vSwitch in a throw-away
 * namespace (startTestAgent), real node namespaces made on demand by `nodeRef`, everything
 * removed by `close()` (call it from an `after` hook, also on failure).
 */
import { startApi } from "../../src/api/server.js";
import { silentLogger } from "../../src/common/log.js";
import type { ApiFixture, ApiFixtureFactory } from "../api/fixture.js";
import type { CliTarget, CliTargetFactory } from "../cli/target.js";
import { startTestAgent, type TestAgent } from "./agent.js";
import { addAddress, NetnsPool, nsExec } from "./netns.js";

/**
 * The suites' overlay tunnels start here: an address of the switch's namespace, on a stand-in
 * underlay whose /24 routes to the remotes the suites use (198.18.0.2, .3).
 */
export const OVERLAY_LOCAL_IP = "198.18.0.1";

export interface RealAgentFixture extends ApiFixture {
  test: TestAgent;
  /** A fresh namespace per node name (the same one when asked again). */
  nodeRef(node: string): Promise<{ netns: string }>;
  /** The namespaces nodeRef made, by node name. */
  netns: ReadonlyMap<string, string>;
}

export async function startRealAgentFixture(opts: { secret?: string }): Promise<RealAgentFixture> {
  const test = await startTestAgent({ secret: opts.secret });
  const switchNs = test.ovs.netns as string;
  try {
    // (This kernel has no dummy devices: a veth pair inside the namespace stands in.)
    await nsExec(switchNs, ["ip", "link", "add", "ul0", "type", "veth", "peer", "name", "ul1"]);
    await nsExec(switchNs, ["ip", "link", "set", "ul1", "up"]);
    await nsExec(switchNs, ["ip", "link", "set", "ul0", "up"]);
    await addAddress(switchNs, "ul0", `${OVERLAY_LOCAL_IP}/24`);
  } catch (e) {
    await test.close();
    throw e;
  }
  const pool = new NetnsPool("ran");
  const netns = new Map<string, string>();
  let closed = false;
  return {
    test,
    netns,
    get services() {
      return test.agent.services;
    },
    async nodeRef(node) {
      let ns = netns.get(node);
      if (ns === undefined) {
        [ns] = (await pool.create(1)) as [string];
        netns.set(node, ns);
      }
      return { netns: ns };
    },
    async close() {
      if (closed) return;
      closed = true;
      try {
        await test.close();
      } finally {
        await pool.destroyAll();
      }
    },
  };
}

export const realAgentFactory: ApiFixtureFactory = (opts) => startRealAgentFixture(opts);

/** The real agent served over HTTP on 127.0.0.1 (a free port), for the CLI suite. */
export const realAgentTarget: CliTargetFactory = async (opts) => {
  const fixture = await startRealAgentFixture(opts);
  try {
    const api = await startApi(fixture.services, { logger: silentLogger() });
    return {
      url: api.address,
      fixture,
      close: async () => {
        try {
          await api.close();
        } finally {
          await fixture.close();
        }
      },
    } satisfies CliTarget;
  } catch (e) {
    await fixture.close();
    throw e;
  }
};
