import type { Logger } from "../../common/log.js";

interface Bump {
  cfg: number;
  at: number;
}

export interface HostLivenessOptions {
  timeoutMs: number;
  /** Asks every hypervisor for a sync (an NB nb_cfg bump); resolves with the new nb_cfg. */
  bump: () => Promise<number>;
  /** Each chassis' applied nb_cfg (SB Chassis_Private), by chassis name. */
  applied: () => Map<string, number>;
  logger: Logger;
  /** The clock (ms since the epoch); Date.now unless a test steps it. */
  now?: () => number;
}

/**
 * Which hosts stopped answering. OVN keeps the chassis row of a host that vanished without
 * leaving (killed, frozen, cut off), so a registered chassis proves nothing. Every third of the
 * timeout the agent asks all hypervisors for a sync, as `ovn-nbctl --wait=hv sync` does; a
 * chassis that has not applied a sync older than the timeout, while another chassis applied it
 * (so ovn-northd passes changes on), is silent.
 */
export class HostLiveness {
  private bumps: Bump[] = [];
  private readonly firstSeen = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private failing = false;

  constructor(private readonly opts: HostLivenessOptions) {}

  start(): void {
    this.timer ??= setInterval(() => void this.tick(), Math.max(1000, this.opts.timeoutMs / 3));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Silent chassis, each with the time (ms since the epoch) of the first sync it left unanswered. */
  silent(now = this.now()): Map<string, number> {
    const applied = this.seen(now);
    const out = new Map<string, number>();
    for (const [name, cfg] of applied) {
      const since = this.firstSeen.get(name) ?? now;
      const missed = this.bumps.find((b) => b.cfg > cfg && b.at >= since);
      if (!missed || now - missed.at <= this.opts.timeoutMs) continue;
      const answered = [...applied].some(([other, c]) => other !== name && c >= missed.cfg);
      if (answered) out.set(name, missed.at);
    }
    return out;
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** One sync asked (exposed for tests, which step the clock themselves). */
  async tick(): Promise<void> {
    try {
      const cfg = await this.opts.bump();
      this.bumps.push({ cfg, at: this.now() });
      this.failing = false;
    } catch (e) {
      if (!this.failing) this.opts.logger.warn({ err: e }, "ovn: could not ask the hosts for a sync");
      this.failing = true;
    }
    this.prune();
  }

  /** Applied nb_cfg by chassis; a chassis is judged only on syncs asked after it was first seen. */
  private seen(now: number): Map<string, number> {
    const applied = this.opts.applied();
    for (const name of applied.keys()) if (!this.firstSeen.has(name)) this.firstSeen.set(name, now);
    for (const name of this.firstSeen.keys()) if (!applied.has(name)) this.firstSeen.delete(name);
    return applied;
  }

  /** Keeps the newest sync and, per chassis, the first it has not applied: a few, not one per tick. */
  private prune(): void {
    const applied = this.seen(this.now());
    const keep = new Set<Bump>(this.bumps.slice(-1));
    for (const [name, cfg] of applied) {
      const since = this.firstSeen.get(name) ?? 0;
      const missed = this.bumps.find((b) => b.cfg > cfg && b.at >= since);
      if (missed) keep.add(missed);
    }
    this.bumps = this.bumps.filter((b) => keep.has(b));
  }
}
