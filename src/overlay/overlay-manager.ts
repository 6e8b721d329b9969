import type { LinkEnd } from "../backends/network-backend.js";
import type { VlanAllocator } from "../backends/ovs/vlan-allocator.js";
import { AgentError } from "../common/errors.js";
import type { Logger } from "../common/log.js";
import type { AgentConfig } from "../config/config.js";
import type { TunnelView } from "../labs/views.js";
import type { BridgeRow, Operation, OvsdbClient } from "../ovsdb/index.js";
import type { OverlayRecord } from "../state/records.js";

export interface OverlayManagerDeps {
  config: AgentConfig;
  logger: Logger;
  client: OvsdbClient;
  vlans: VlanAllocator;
  bridge: () => BridgeRow;
  /** The backend's transaction door (waits for ovs-vswitchd, marks the change as the agent's own). */
  transact: (ops: Operation[]) => Promise<void>;
}

// PLACEHOLDER: written by the overlay work (issue 6).
export class OverlayManager {
  constructor(readonly deps: OverlayManagerDeps) {}
  async attach(_rec: OverlayRecord, _end: LinkEnd): Promise<void> {
    throw new AgentError("NOT_SUPPORTED", "overlay links are not implemented yet");
  }
  async detach(_rec: OverlayRecord, _end: LinkEnd | undefined): Promise<void> {}
  status(_recs: readonly OverlayRecord[]): TunnelView[] {
    return [];
  }
  async reconcile(
    _recs: readonly OverlayRecord[],
    _endOf: (o: OverlayRecord) => LinkEnd | undefined,
  ): Promise<string[]> {
    return [];
  }
}
