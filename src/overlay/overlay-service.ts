import { isIP } from "node:net";
import { capability, type NetworkBackend } from "../backends/network-backend.js";
import { AgentError } from "../common/errors.js";
import type { Locks } from "../common/locks.js";
import type { AgentConfig } from "../config/config.js";
import type { Metrics } from "../metrics.js";
import { validateId, validateIfName } from "../model/names.js";
import type { OverlayOperations } from "../model/operations.js";
import { LINK_MODES, type LinkMode, type OverlayRecord } from "../model/records.js";
import type { OverlaySpec, TunnelView } from "../model/views.js";
import type { StateStore } from "../state/state-store.js";

export const VNI_MAX = 16_777_215;

export interface OverlayServiceDeps {
  config: AgentConfig;
  store: StateStore;
  backend: NetworkBackend;
  locks: Locks;
  metrics: Metrics;
}

export function overlayKey(lab: string, link: string): string {
  return `${lab}/${link}`;
}

/** The one OVERLAY_NOT_FOUND: detaching and capturing an overlay link that is not there. */
export function mustOverlay(store: StateStore, lab: string, link: string): OverlayRecord {
  const key = overlayKey(lab, link);
  const rec = store.overlays.get(key);
  if (!rec) {
    throw new AgentError(
      "OVERLAY_NOT_FOUND",
      `overlay link ${key} does not exist`,
      "see `archnet overlay ls`",
    );
  }
  return rec;
}

/** Validates an overlay link request completely before anything changes. */
export function validateOverlay(
  spec: OverlaySpec,
  defaultMtu: number,
  defaultMode: LinkMode = "vlan",
): Omit<OverlayRecord, "createdAt"> {
  if (spec.mode !== undefined && !LINK_MODES.includes(spec.mode))
    throw new AgentError(
      "BAD_REQUEST",
      `link mode ${JSON.stringify(spec.mode)} is not one of ${LINK_MODES.join(", ")}`,
    );
  if (!Number.isInteger(spec.vni) || spec.vni < 1 || spec.vni > VNI_MAX) {
    throw new AgentError(
      "INVALID_VNI",
      `VNI ${JSON.stringify(spec.vni)} is not a whole number from 1 to ${VNI_MAX}`,
    );
  }
  for (const [what, ip] of [
    ["local_ip", spec.local_ip],
    ["remote_ip", spec.remote_ip],
  ] as const) {
    if (typeof ip !== "string" || isIP(ip) !== 4) {
      throw new AgentError(
        "INVALID_IP",
        `${what} ${JSON.stringify(ip)} is not an IPv4 address`,
        "e.g. 198.18.0.1",
      );
    }
  }
  if (spec.local_ip === spec.remote_ip) {
    throw new AgentError(
      "INVALID_IP",
      `local_ip and remote_ip are both ${spec.local_ip}`,
      "remote_ip is the other host's tunnel address",
    );
  }
  const mtu = spec.mtu ?? defaultMtu;
  if (!Number.isInteger(mtu) || mtu < 68 || mtu > 65485) {
    throw new AgentError("BAD_REQUEST", `MTU ${mtu} is not a whole number from 68 to 65485`);
  }
  return {
    lab: validateId(spec.lab, "lab"),
    link: validateId(spec.link, "link"),
    node: validateId(spec.node, "node"),
    interface: validateIfName(spec.interface),
    vni: spec.vni,
    localIp: spec.local_ip,
    remoteIp: spec.remote_ip,
    mtu,
    mode: spec.mode ?? defaultMode,
  };
}

/** Cross-host links: the lab's bookkeeping around the backend's VXLAN ports. */
export class OverlayService implements OverlayOperations {
  constructor(private readonly d: OverlayServiceDeps) {}

  async attach(spec: OverlaySpec, opts: { wait?: boolean } = {}): Promise<TunnelView> {
    const overlay = capability(this.d.backend, "overlay");
    const want = validateOverlay(spec, this.d.config.overlayMtu, this.d.config.linkMode);
    if (want.mode === "wire") capability(this.d.backend, "wire");
    return this.d.locks.withKey(want.lab, () =>
      this.d.metrics.time("overlay_attach", async () => {
        const { store } = this.d;
        const key = overlayKey(want.lab, want.link);
        const have = store.overlays.get(key);
        if (have) {
          const stored = { ...have, mode: have.mode ?? "vlan" };
          const same = (Object.keys(want) as (keyof typeof want)[]).every((k) => stored[k] === want[k]);
          if (!same) {
            throw new AgentError(
              "CONFLICT",
              `overlay link ${key} exists with other parameters`,
              `detach it first (DELETE /overlay/links/${key})`,
            );
          }
        }
        for (const o of store.overlays.values()) {
          if (overlayKey(o.lab, o.link) === key) continue;
          if (o.vni === want.vni) {
            throw new AgentError(
              "CONFLICT",
              `VNI ${want.vni} is already used by overlay link ${overlayKey(o.lab, o.link)}`,
            );
          }
          if (o.lab === want.lab && o.node === want.node && o.interface === want.interface) {
            throw new AgentError(
              "ALREADY_LINKED",
              `${want.node}:${want.interface} already carries overlay link ${o.link}`,
            );
          }
        }
        const lab = store.lab(want.lab);
        const node = lab?.nodes[want.node];
        const iface = node?.interfaces[want.interface];
        if (!lab || !node || !iface) {
          throw new AgentError(
            "INTERFACE_NOT_FOUND",
            `${want.node}:${want.interface} does not exist in lab ${want.lab}`,
            `create it first: POST /labs/${want.lab}/nodes/${want.node}/interfaces`,
          );
        }
        const local = Object.values(lab.links).find((l) =>
          [l.a, l.b].includes(`${want.node}:${want.interface}`),
        );
        if (local) {
          throw new AgentError(
            "ALREADY_LINKED",
            `${want.node}:${want.interface} is in local link ${local.id}`,
            "remove that link first",
          );
        }
        const rec: OverlayRecord = have ?? { ...want, createdAt: Date.now() };
        await store.overlays.set(key, rec);
        try {
          await overlay.attach(rec, { node, iface }, opts);
        } catch (e) {
          if (!have) await store.overlays.delete(key);
          throw e;
        }
        return this.view(rec);
      }),
    );
  }

  async detach(lab: string, link: string): Promise<void> {
    const overlay = capability(this.d.backend, "overlay");
    await this.d.locks.withKey(lab, () =>
      this.d.metrics.time("overlay_detach", async () => {
        const rec = mustOverlay(this.d.store, lab, link);
        const node = this.d.store.lab(lab)?.nodes[rec.node];
        const iface = node?.interfaces[rec.interface];
        await overlay.detach(rec, node && iface ? { node, iface } : undefined);
        await this.d.store.overlays.delete(overlayKey(lab, link));
      }),
    );
  }

  status(): TunnelView[] {
    const overlay = this.d.backend.overlay;
    if (!overlay) return [];
    const byId = (x: OverlayRecord, y: OverlayRecord) =>
      x.lab === y.lab ? (x.link < y.link ? -1 : x.link > y.link ? 1 : 0) : x.lab < y.lab ? -1 : 1;
    return overlay.status(this.d.store.overlays.values().sort(byId));
  }

  private view(rec: OverlayRecord): TunnelView {
    const v = capability(this.d.backend, "overlay").status([rec])[0];
    if (!v) throw new AgentError("INTERNAL", `overlay link ${overlayKey(rec.lab, rec.link)} has no status`);
    return v;
  }
}
