import { capability, type NetworkBackend } from "../backends/network-backend.js";
import { toAgentError } from "../common/errors.js";
import type { Locks } from "../common/locks.js";
import type { Logger } from "../common/log.js";
import type { Metrics } from "../metrics.js";
import type { WiredLink } from "../model/ends.js";
import { parseEnd } from "../model/names.js";
import type { ImpairmentOperations } from "../model/operations.js";
import type { Impairment, LabRecord, LinkRecord } from "../model/records.js";
import type { ImpairmentView } from "../model/views.js";
import type { StateStore } from "../state/state-store.js";
import { requireShaping, sameImpairment, validateImpairment } from "./impairment.js";
import { withImpairment } from "./lab-plan.js";
import { rolledBack } from "./lab-service.js";
import { mustLab, mustLink } from "./lookups.js";

export interface ImpairmentServiceDeps {
  store: StateStore;
  backend: NetworkBackend;
  locks: Locks;
  metrics: Metrics;
  logger: Logger;
}

/**
 * A link's impairment on its own (the lab body sets it too, see lab-plan.ts): validated before
 * anything changes, written to the lab's record first (reconcile restores it after a restart or
 * a change by hand), then applied in one tc batch; a failure puts both back as they were.
 */
export class ImpairmentService implements ImpairmentOperations {
  constructor(private readonly d: ImpairmentServiceDeps) {}

  async get(lab: string, link: string): Promise<ImpairmentView> {
    capability(this.d.backend, "impairment"); // 501 before anything is looked up
    const rec = mustLab(this.d.store, lab);
    return this.view(rec, mustLink(rec, link));
  }

  async set(lab: string, link: string, spec: Impairment | undefined): Promise<ImpairmentView> {
    capability(this.d.backend, "impairment");
    const impairment = validateImpairment(spec);
    return this.d.locks.withKey(lab, () =>
      this.d.metrics.time("impair", async () => {
        const rec = mustLab(this.d.store, lab);
        const old = mustLink(rec, link);
        requireShaping(this.d.backend, [impairment]);
        if (sameImpairment(old.impairment, impairment)) return this.view(rec, old);
        const fresh = withImpairment(old, impairment);
        const next: LabRecord = { ...rec, links: { ...rec.links, [link]: fresh } };
        await this.d.store.saveLab(next); // nothing is written when it fails
        try {
          await capability(this.d.backend, "impairment").apply(next, wired(next, fresh));
        } catch (e) {
          const failed: string[] = [];
          await this.d.store
            .saveLab(rec)
            .catch((err: unknown) => failed.push(`the record of lab ${lab}: ${toAgentError(err).message}`));
          await capability(this.d.backend, "impairment")
            .apply(rec, wired(rec, old))
            .catch((err: unknown) => failed.push(`the impairment before: ${toAgentError(err).message}`));
          this.d.logger.warn({ lab, link, err: toAgentError(e).message, failed }, "impairment rolled back");
          throw rolledBack(e, failed);
        }
        // tc took it: what is applied is what was asked (GET reads it back from the kernel).
        return this.view(next, fresh, false);
      }),
    );
  }

  private async view(rec: LabRecord, link: LinkRecord, readBack = true): Promise<ImpairmentView> {
    const w = wired(rec, link);
    const asked = {
      a_to_b: link.impairment?.a_to_b ?? {},
      b_to_a: link.impairment?.b_to_a ?? {},
      in_sync: true,
    };
    const [applied] =
      w.length === 0 ? [] : readBack ? await capability(this.d.backend, "impairment").applied(w) : [asked];
    return {
      lab: rec.lab,
      id: link.id,
      a: link.a,
      b: link.b,
      a_to_b: link.impairment?.a_to_b ?? {},
      b_to_a: link.impairment?.b_to_a ?? {},
      applied: applied ? { a_to_b: applied.a_to_b, b_to_a: applied.b_to_a } : null,
      in_sync: applied?.in_sync ?? true,
    };
  }
}

/** The link with its ends' records, when both exist (a pending link has nothing to shape yet). */
function wired(rec: LabRecord, link: LinkRecord): WiredLink[] {
  const end = (text: string) => {
    const ref = parseEnd(text);
    const node = rec.nodes[ref.node];
    const iface = node?.interfaces[ref.iface];
    return node && iface ? { node, iface } : undefined;
  };
  const a = end(link.a);
  const b = end(link.b);
  return a && b ? [{ link, a, b }] : [];
}
