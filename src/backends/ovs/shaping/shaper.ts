import {
  isEmptyShape,
  listRootQdiscs,
  netemMissing,
  type QdiscShape,
  qdiscLine,
  type RootQdisc,
  rootQdisc,
  sameShape,
  tcBatch,
} from "../../../link/index.js";
import { resolveEnd, storedEnd, type WiredLink } from "../../../model/ends.js";
import type { LabRecord } from "../../../model/records.js";
import type { ImpairmentCapability } from "../../network-backend.js";
import type { OvsSwitch } from "../switch/ovs-switch.js";

/** One host port's qdisc: what the direction towards its node suffers. */
export interface Shaping {
  dev: string;
  shape: QdiscShape | undefined;
  mtu: number;
  /** e.g. `a_to_b of link l1`. */
  what: string;
}

/**
 * Link impairments as qdiscs on the host ends of veths (tc: netem, or tbf for a rate alone), in
 * one `tc -batch` per change. A link's a->b direction is the egress of b's host end.
 */
export class Shaper {
  /** Host ports given a qdisc by this agent (reconcile checks them even when none is wanted now). */
  private readonly shaped = new Set<string>();
  /** Whether a reconcile has compared the host ends' qdiscs with the records yet. */
  private qdiscsChecked = false;

  constructor(private readonly sw: OvsSwitch) {}

  readonly capability: ImpairmentCapability = {
    netemMissing: () => {
      const why = netemMissing();
      return (
        why &&
        `${why}; delay, jitter, loss, corruption, duplication and reordering need it (rate_kbit alone works, through tbf)`
      );
    },
    apply: (_lab, links) => this.impair(links),
    applied: (links) => this.applied(links),
  };

  isShaped(hostPort: string): boolean {
    return this.shaped.has(hostPort);
  }

  /** These ports are gone (their veths died with them): nothing of theirs to remember. */
  forget(hostPorts: readonly string[]): void {
    for (const h of hostPorts) this.shaped.delete(h);
  }

  /** Gives both directions of each link their impairment. */
  async impair(links: readonly WiredLink[]): Promise<void> {
    await this.shape(links.flatMap((w) => directions(w, w.link.impairment)));
  }

  /** Links just joined: those with an impairment get it. */
  async joined(links: readonly WiredLink[]): Promise<void> {
    await this.impair(links.filter((w) => !isEmptyImpairment(w)));
  }

  /** A link's impairment goes with it: its ends are plain interfaces again. */
  async unlinked(links: readonly WiredLink[]): Promise<void> {
    const shaped = links.filter(
      (w) => !isEmptyImpairment(w) || [w.a, w.b].some((e) => this.shaped.has(e.iface.hostPort)),
    );
    await this.shape(shaped.flatMap((w) => directions(w, undefined)));
  }

  /** Removes the qdisc of these host ports. */
  async clear(hostPorts: readonly string[]): Promise<void> {
    await this.shape(hostPorts.map((dev) => ({ dev, shape: undefined, mtu: 0, what: "" })));
  }

  /** Gives each host port its qdisc (undefined: none) in one tc batch. */
  async shape(items: readonly Shaping[]): Promise<void> {
    if (items.length === 0) return;
    await tcBatch(
      items.map((i) => qdiscLine(i.dev, i.shape, i.mtu)),
      this.sw.hostNs,
    );
    for (const i of items) {
      if (isEmptyShape(i.shape)) this.shaped.delete(i.dev);
      else this.shaped.add(i.dev);
    }
  }

  private applied(links: readonly WiredLink[]) {
    return Promise.all(
      links.map(async (w) => {
        const [toB, toA] = directions(w, w.link.impairment);
        const [haveB, haveA] = await Promise.all(
          [toB, toA].map((d) => rootQdisc(d.dev, this.sw.hostNs).catch(() => undefined)),
        );
        return {
          a_to_b: shapeOf(haveB),
          b_to_a: shapeOf(haveA),
          in_sync: sameShape(toB.shape, haveB) && sameShape(toA.shape, haveA),
        };
      }),
    );
  }

  /**
   * The host ends' qdiscs as the links' impairments say: what differs (a veth made again, a
   * qdisc changed or removed by hand) is set again, a shape on a port that wants none removed.
   * One `tc` listing per pass, and only when some link is impaired or was (or on the first pass).
   */
  async reconcile(labs: readonly LabRecord[], repairs: string[], failed: Map<string, Error>): Promise<void> {
    const wanted = labs.map((lab) => ({ lab, items: wantedShapes(lab) }));
    const any = wanted.some((w) => w.items.some((i) => !isEmptyShape(i.shape)));
    if (!any && this.shaped.size === 0 && this.qdiscsChecked) return;
    const have = await listRootQdiscs(this.sw.hostNs);
    this.qdiscsChecked = true;
    for (const { items } of wanted) {
      for (const i of items) {
        if (have.get(i.dev)?.kind === "shape") this.shaped.add(i.dev);
        else this.shaped.delete(i.dev);
      }
    }
    for (const { lab, items } of wanted) {
      const wrong = items.filter((i) => {
        const now = have.get(i.dev);
        if (now === undefined) return false; // no such device (yet): nothing to shape
        if (isEmptyShape(i.shape)) return now.kind === "shape";
        return !sameShape(i.shape, now);
      });
      if (wrong.length === 0) continue;
      try {
        await this.shape(wrong);
        repairs.push(
          ...wrong.map((i) =>
            isEmptyShape(i.shape)
              ? `lab ${lab.lab}: stray qdisc on ${i.dev} removed`
              : `lab ${lab.lab}: impairment ${i.what} set again`,
          ),
        );
      } catch (e) {
        failed.set(lab.lab, e instanceof Error ? e : new Error(String(e)));
      }
    }
  }
}

/** A link's two directions: a->b is the egress of b's host end (towards node b), b->a of a's. */
function directions(w: WiredLink, imp: WiredLink["link"]["impairment"]): [Shaping, Shaping] {
  return [
    { dev: w.b.iface.hostPort, shape: imp?.a_to_b, mtu: w.b.iface.mtu, what: `a_to_b of link ${w.link.id}` },
    { dev: w.a.iface.hostPort, shape: imp?.b_to_a, mtu: w.a.iface.mtu, what: `b_to_a of link ${w.link.id}` },
  ];
}

function isEmptyImpairment(w: WiredLink): boolean {
  return isEmptyShape(w.link.impairment?.a_to_b) && isEmptyShape(w.link.impairment?.b_to_a);
}

/** Every interface of the lab with the qdisc it should have (none unless in an impaired link). */
function wantedShapes(lab: LabRecord): Shaping[] {
  const out = new Map<string, Shaping>();
  for (const node of Object.values(lab.nodes)) {
    for (const iface of Object.values(node.interfaces)) {
      out.set(iface.hostPort, { dev: iface.hostPort, shape: undefined, mtu: iface.mtu, what: "" });
    }
  }
  for (const link of Object.values(lab.links)) {
    const a = resolveEnd(lab, storedEnd(link.a));
    const b = resolveEnd(lab, storedEnd(link.b));
    if (a && b) for (const d of directions({ link, a, b }, link.impairment)) out.set(d.dev, d);
  }
  return [...out.values()];
}

function shapeOf(q: RootQdisc | undefined): QdiscShape {
  return q?.kind === "shape" ? q.shape : {};
}
