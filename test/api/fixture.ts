/**
 * What the API tests run against. The stub factory needs nothing; a factory for the real agent
 * can be passed to the same suites (see routes.test.ts), which is why everything stub-only is
 * optional here.
 */
import type { LightMyRequestResponse } from "fastify";
import { buildServer } from "../../src/api/server.js";
import type { App } from "../../src/api/types.js";
import { silentLogger } from "../../src/common/log.js";
import type { OrphanView } from "../../src/model/views.js";
import type { AgentServices } from "../../src/services.js";
import { createStubServices } from "../harness/stub-services.js";

export interface ApiFixture {
  services: AgentServices;
  /** Where a node's interfaces may live: the real agent needs a real netns. */
  nodeRef(node: string): Promise<{ netns: string } | { pid: number }>;
  /** Stub only: the orphans cleanup finds. */
  setOrphans?(orphans: OrphanView[]): void;
  /** Stub only: make every operation throw this (undefined: stop). */
  fault?(error: unknown): void;
  close(): Promise<void>;
}

export type ApiFixtureFactory = (opts: { secret?: string }) => Promise<ApiFixture>;

export const stubFactory: ApiFixtureFactory = async (opts) => {
  const stub = createStubServices({
    secret: opts.secret,
    config: { listen: { host: "127.0.0.1", port: 0 } },
  });
  return {
    services: stub.services,
    nodeRef: async (node) => ({ netns: `${node}ns` }),
    setOrphans: (o) => stub.setOrphans(o),
    fault: (e) => {
      stub.fault = e;
    },
    close: async () => {},
  };
};

export function appFor(fx: ApiFixture): App {
  return buildServer(fx.services, { logger: silentLogger() });
}

/**
 * The whole observable state, through the services (works for the stub and the real agent): labs,
 * tunnels, and the switch's ports with their tags and owners.
 */
export async function stateOf(services: AgentServices): Promise<string> {
  const labs = services.labs.listLabs().map((l) => services.labs.getLab(l.lab));
  return JSON.stringify({
    labs,
    tunnels: services.overlays
      .status()
      .map((t) => ({ ...t, rx_packets: 0, tx_packets: 0, rx_bytes: 0, tx_bytes: 0 })),
    // the switch itself: which ports exist, with which tag and owner (counters left out)
    ports: (await services.backend.status()).ports
      .map((p) => [p.name, p.vlan, p.lab, p.node, p.interface, p.link].join(" "))
      .sort(),
  });
}

export function json<T = Record<string, unknown>>(res: LightMyRequestResponse): T {
  return JSON.parse(res.body) as T;
}
