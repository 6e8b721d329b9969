import type { NetworkBackend } from "../backends/network-backend.js";
import type { Locks } from "../common/locks.js";
import type { Logger } from "../common/log.js";
import type { AgentConfig } from "../config/config.js";
import type { LabService } from "../labs/lab-service.js";
import type { StateStore } from "../state/state-store.js";

export interface PluginDeps {
  config: AgentConfig;
  store: StateStore;
  backend: NetworkBackend;
  labs: LabService;
  locks: Locks;
  logger: Logger;
}

// PLACEHOLDER: written by the Docker plugin work (issue 5).
export async function startPlugin(
  _socketPath: string,
  _deps: PluginDeps,
): Promise<{ close(): Promise<void> }> {
  return { close: async () => {} };
}
