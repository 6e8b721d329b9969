import { AgentError } from "../../../common/errors.js";
import type { VlanRange } from "../../../config/vlan-range.js";

export type VlanPool = "local" | "isolated" | "overlay";

/**
 * The one VLAN allocator of the agent. Allocation is synchronous, so concurrent requests on the
 * event loop can never receive the same VLAN; it is rebuilt from the tags OVSDB holds, so a
 * restarted agent knows what is in use. Next-fit, so a freed VLAN is not handed out again at
 * once (its MAC entries age out first).
 */
export class VlanAllocator {
  private readonly used = new Set<number>();
  private readonly cursor: Record<VlanPool, number>;

  /**
   * With shared isolation every unlinked port waits in one parking VLAN (the isolated range's
   * first), kept apart by a drop flow each (flows/), so a host is not limited to one VLAN per
   * interface: "allocating" it takes nothing, freeing it is nothing.
   */
  readonly park: number | undefined;

  constructor(
    private readonly ranges: Readonly<Record<VlanPool, VlanRange>>,
    opts: { sharedIsolation?: boolean } = {},
  ) {
    this.cursor = { local: ranges.local.min, isolated: ranges.isolated.min, overlay: ranges.overlay.min };
    this.park = opts.sharedIsolation ? ranges.isolated.min : undefined;
  }

  /** Forget everything and mark these VLANs in use (from OVSDB). */
  rebuild(inUse: Iterable<number>): void {
    this.used.clear();
    for (const v of inUse) this.used.add(v);
  }

  claim(vlan: number): void {
    this.used.add(vlan);
  }

  isUsed(vlan: number): boolean {
    return this.used.has(vlan);
  }

  inPool(pool: VlanPool, vlan: number): boolean {
    const r = this.ranges[pool];
    return vlan >= r.min && vlan <= r.max;
  }

  allocate(pool: VlanPool): number {
    if (pool === "isolated" && this.park !== undefined) return this.park;
    const { min, max } = this.ranges[pool];
    const size = max - min + 1;
    for (let i = 0; i < size; i++) {
      const v = min + ((this.cursor[pool] - min + i) % size);
      if (!this.used.has(v)) {
        this.used.add(v);
        this.cursor[pool] = v + 1 > max ? min : v + 1;
        return v;
      }
    }
    throw new AgentError(
      "VLAN_EXHAUSTED",
      `all ${size} VLANs of the ${pool} range ${min}-${max} are in use`,
      pool === "local"
        ? "remove links you no longer need, or widen ARCHETYPE_AGENT_VLAN_RANGE"
        : pool === "isolated"
          ? "remove interfaces you no longer need, or widen ARCHETYPE_AGENT_ISOLATED_VLAN_RANGE"
          : "detach overlay links you no longer need, or widen ARCHETYPE_AGENT_OVERLAY_VLAN_RANGE",
    );
  }

  /** Allocates n VLANs or none. */
  allocateMany(pool: VlanPool, n: number): number[] {
    const out: number[] = [];
    try {
      for (let i = 0; i < n; i++) out.push(this.allocate(pool));
    } catch (e) {
      for (const v of out) this.release(v);
      throw e;
    }
    return out;
  }

  release(vlan: number | undefined): void {
    if (vlan !== undefined && vlan !== this.park) this.used.delete(vlan);
  }
}
