import type { NetworkBackend } from "./backends/network-backend.js";
import type { AgentConfig } from "./config/config.js";
import type { Metrics } from "./metrics.js";
import type {
  CaptureOperations,
  CleanupOperations,
  ImpairmentOperations,
  LabOperations,
  OverlayOperations,
} from "./model/operations.js";

/** Everything the API needs, built by the composition root (src/agent.ts). */
export interface AgentServices {
  version: string;
  config: AgentConfig;
  backend: NetworkBackend;
  labs: LabOperations;
  overlays: OverlayOperations;
  cleanup: CleanupOperations;
  impairments: ImpairmentOperations;
  captures: CaptureOperations;
  metrics: Metrics;
}
