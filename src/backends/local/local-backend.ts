import { AgentError } from "../../common/errors.js";
import type { Logger } from "../../common/log.js";
import type { AgentConfig } from "../../config/config.js";
import type { SwitchStatusView, TunnelView } from "../../labs/views.js";
import type { CarrierState, InterfaceRecord, LabRecord, OverlayRecord } from "../../state/records.js";
import type {
  Capability,
  CleanupContext,
  DetachedEndpoint,
  LinkEnd,
  NetworkBackend,
  Orphan,
  PortObservation,
  WiredLink,
} from "../network-backend.js";

// PLACEHOLDER: written by the local backend work (issue 8).
export class LocalBackend implements NetworkBackend {
  readonly name = "local" as const;
  readonly datapath = null;
  constructor(
    readonly config: AgentConfig,
    readonly logger: Logger,
  ) {}
  unsupported(cap: Capability): string | undefined {
    return cap === "carrier" ? undefined : `the local backend has no ${cap} support`;
  }
  async start(_labs: readonly LabRecord[], _overlays: readonly OverlayRecord[]): Promise<void> {}
  async stop(): Promise<void> {}
  async provision(_lab: LabRecord, _ends: readonly LinkEnd[]): Promise<void> {}
  async release(_lab: LabRecord, _ends: readonly LinkEnd[]): Promise<void> {}
  async connect(_lab: LabRecord, _links: readonly WiredLink[]): Promise<void> {
    throw new AgentError("NOT_SUPPORTED", "not implemented yet");
  }
  async disconnect(_lab: LabRecord, _links: readonly WiredLink[]): Promise<void> {}
  async setCarrier(_lab: LabRecord, _ends: readonly LinkEnd[], _state: CarrierState): Promise<void> {}
  async teardown(_lab: LabRecord): Promise<void> {}
  observe(_iface: InterfaceRecord): PortObservation {
    return { present: false, vlan: null, link: null };
  }
  async reconcile(_labs: readonly LabRecord[], _overlays: readonly OverlayRecord[]): Promise<string[]> {
    return [];
  }
  onDrift(_listener: (reason: string) => void): void {}
  async status(): Promise<SwitchStatusView> {
    return { backend: "local", bridge: null, fail_mode: null, datapath: null, connected: true, ports: [] };
  }
  async attachOverlay(_rec: OverlayRecord, _end: LinkEnd): Promise<void> {}
  async detachOverlay(_rec: OverlayRecord, _end: LinkEnd | undefined): Promise<void> {}
  overlayStatus(_recs: readonly OverlayRecord[]): TunnelView[] {
    return [];
  }
  async createDetached(_ep: DetachedEndpoint): Promise<void> {}
  async removeDetached(_hostPort: string): Promise<void> {}
  async audit(_ctx: CleanupContext): Promise<Orphan[]> {
    return [];
  }
  async removeOrphans(_orphans: readonly Orphan[]): Promise<void> {}
}
