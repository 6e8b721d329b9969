import type { Logger } from "../common/log.js";
import type { AgentConfig } from "../config/config.js";
import { LocalBackend } from "./local/local-backend.js";
import type { BackendName, NetworkBackend } from "./network-backend.js";
import { OvnBackend } from "./ovn/ovn-backend.js";
import { OvsBackend } from "./ovs/ovs-backend.js";

type Factory = (config: AgentConfig, logger: Logger) => NetworkBackend;

/** Backends by name; a new one (e.g. OVN) is one entry here and one folder beside ovs/ and local/. */
const BACKENDS: Record<BackendName, Factory> = {
  ovs: (config, logger) => new OvsBackend(config, logger),
  local: (config, logger) => new LocalBackend(config, logger),
  ovn: (config, logger) => new OvnBackend(config, logger),
};

export function createBackend(config: AgentConfig, logger: Logger): NetworkBackend {
  return BACKENDS[config.backend](config, logger);
}
