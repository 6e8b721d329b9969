import { capability, type NetworkBackend } from "../backends/network-backend.js";
import { AgentError, toAgentError } from "../common/errors.js";
import type { Locks } from "../common/locks.js";
import type { Logger } from "../common/log.js";
import type { AgentConfig } from "../config/config.js";
import { checkNodeNetns, type NetnsRef, netnsLost, parseNetnsRef, switchNetnsRef } from "../link/netns.js";
import type { Metrics } from "../metrics.js";
import { defaultLinkId, labGroup } from "../model/derived-names.js";
import { type LinkEnd, resolveEnd, type WiredLink, wiredLinks } from "../model/ends.js";
import { type EndRef, formatEnd, parseEnd, validateId } from "../model/names.js";
import type { LabOperations } from "../model/operations.js";
import {
  type CarrierState,
  type InterfaceRecord,
  type LabRecord,
  LINK_MODES,
  type LinkMode,
  type LinkRecord,
  type NodeRecord,
  type OverlayRecord,
} from "../model/records.js";
import type {
  InterfaceView,
  LabChanges,
  LabSpec,
  LabView,
  LinkView,
  NodeInterfacesSpec,
  NodeView,
} from "../model/views.js";
import { overlayKey } from "../overlay/overlay-service.js";
import type { StateStore } from "../state/state-store.js";
import { requireShaping } from "./impairment.js";
import {
  emptyPlan,
  type LabPlan,
  newInterface,
  planLab,
  plannedRecord,
  validateInterfaces,
} from "./lab-plan.js";
import { mustLab, mustLink } from "./lookups.js";
import { pluginNodesOf } from "./plugin-members.js";
import { labView, linkView, nodeView, summary } from "./render.js";

export interface LabServiceDeps {
  config: AgentConfig;
  store: StateStore;
  backend: NetworkBackend;
  locks: Locks;
  metrics: Metrics;
  logger: Logger;
  /** Labs the last reconcile could not converge, with why (shown in their views). */
  unconverged: ReadonlyMap<string, string>;
}

/**
 * Lab bookkeeping on top of a backend: validates input before anything changes, keeps the
 * desired state durable (written before the network work, so a crash mid-way is finished by
 * reconciliation), serialises work per lab, and tells the backend what to build in batches.
 */
export class LabService implements LabOperations {
  constructor(private readonly d: LabServiceDeps) {}

  listLabs() {
    return this.d.store.labs().map(summary);
  }

  getLab(lab: string): LabView {
    return labView(mustLab(this.d.store, lab), this.d.backend, this.d.unconverged.get(lab));
  }

  listLinks(lab: string): LinkView[] {
    return this.getLab(lab).links;
  }

  async putLab(lab: string, spec: LabSpec): Promise<{ lab: LabView; changes: LabChanges }> {
    validateId(lab, "lab");
    return this.d.locks.withKey(lab, () =>
      this.d.metrics.time("apply_lab", async () => {
        const current = this.d.store.lab(lab) ?? this.newLab(lab);
        const plan = planLab(
          current,
          spec,
          this.d.config.localMtu,
          this.overlaysOf(lab),
          this.takenPorts(lab),
          this.d.config.linkMode,
        );
        this.requireModes(plan.addLinks);
        requireShaping(
          this.d.backend,
          [...plan.addLinks, ...plan.impairLinks].map((l) => l.impairment),
        );
        await this.requireNetns(
          current,
          plan.addNodes.map((n) => n.node),
        );
        const next = await this.execute(current, plan);
        return {
          lab: labView(next, this.d.backend, this.d.unconverged.get(lab)),
          changes: plan.changes,
        };
      }),
    );
  }

  async deleteLab(lab: string): Promise<void> {
    await this.d.locks.withKey(lab, () =>
      this.d.metrics.time("teardown", async () => {
        const rec = mustLab(this.d.store, lab);
        for (const o of this.overlaysOf(lab)) {
          await this.d.backend.overlay?.detach(o, this.findEnd(rec, { node: o.node, iface: o.interface }));
          await this.d.store.overlays.delete(overlayKey(o.lab, o.link));
        }
        await this.d.backend.teardown(rec);
        await this.d.store.deleteLab(lab);
      }),
    );
  }

  async addInterfaces(lab: string, node: string, spec: NodeInterfacesSpec): Promise<NodeView> {
    validateId(lab, "lab");
    validateId(node, "node");
    const netns = parseNetnsRef(spec);
    const wanted = validateInterfaces(spec.interfaces, this.d.config.localMtu);
    return this.d.locks.withKey(lab, () =>
      this.d.metrics.time("provision", async () => {
        const rec = this.d.store.lab(lab) ?? this.newLab(lab);
        const existing = rec.nodes[node];
        if (existing && !sameNetns(existing.netns, netns)) {
          throw new AgentError(
            "CONFLICT",
            `node ${node} of lab ${lab} already lives in another namespace`,
            "remove the node (PUT the lab without it) before moving it to another namespace",
          );
        }
        const nodeRec: NodeRecord = existing ?? { name: node, netns, origin: "api", interfaces: {} };
        const taken = this.takenPorts(lab);
        const fresh: InterfaceRecord[] = [];
        for (const w of wanted) {
          const have = nodeRec.interfaces[w.name];
          if (have) {
            if (have.mtu !== w.mtu) {
              throw new AgentError(
                "CONFLICT",
                `${node}:${w.name} in lab ${lab} exists with MTU ${have.mtu}, not ${w.mtu}`,
                "remove the interface first to change its MTU",
              );
            }
            continue;
          }
          fresh.push(newInterface(lab, node, w.name, w.mtu, taken));
        }
        if (fresh.length === 0) return nodeView(nodeRec, this.d.backend);
        await this.requireNetns(rec, [nodeRec]);
        const plan: LabPlan = emptyPlan();
        plan.addNodes.push({ node: nodeRec, ifaces: fresh });
        if (!existing) plan.changes.nodes_added.push(node);
        plan.changes.interfaces_added.push(...fresh.map((f) => `${node}:${f.name}`));
        const next = await this.execute(rec, plan);
        return nodeView(next.nodes[node] as NodeRecord, this.d.backend);
      }),
    );
  }

  async addLink(
    lab: string,
    spec: { a: string; b: string; id?: string; mode?: LinkMode },
  ): Promise<LinkView> {
    validateId(lab, "lab");
    const a = parseEnd(spec.a);
    const b = parseEnd(spec.b);
    const mode = spec.mode ?? this.d.config.linkMode;
    if (!LINK_MODES.includes(mode))
      throw new AgentError(
        "BAD_REQUEST",
        `link mode ${JSON.stringify(mode)} is not one of ${LINK_MODES.join(", ")}`,
      );
    if (formatEnd(a) === formatEnd(b)) {
      throw new AgentError("BAD_REQUEST", `a link needs two different ends, got ${formatEnd(a)} twice`);
    }
    const id = spec.id === undefined ? defaultLinkId(a, b) : validateId(spec.id, "link");
    return this.d.locks.withKey(lab, () =>
      this.d.metrics.time("connect", async () => {
        const rec = this.d.store.lab(lab) ?? this.newLab(lab);
        const same = rec.links[id];
        if (same) {
          if (sameEnds(same, a, b) && (same.mode ?? "vlan") === mode)
            return linkView(rec, same, this.d.backend);
          throw new AgentError(
            "CONFLICT",
            `link ${id} of lab ${lab} exists with other ends (${same.a}, ${same.b})`,
          );
        }
        for (const end of [a, b]) this.requireUnlinked(rec, end);
        const link: LinkRecord = {
          id,
          a: formatEnd(a),
          b: formatEnd(b),
          carrier: "up",
          createdAt: Date.now(),
          mode,
        };
        this.requireModes([link]);
        const plan = emptyPlan();
        plan.addLinks.push(link);
        plan.changes.links_added.push(id);
        const next = await this.execute(rec, plan);
        return linkView(next, link, this.d.backend);
      }),
    );
  }

  async removeLink(lab: string, id: string): Promise<void> {
    await this.d.locks.withKey(lab, () =>
      this.d.metrics.time("disconnect", async () => {
        const rec = mustLab(this.d.store, lab);
        const link = mustLink(rec, id);
        const plan = emptyPlan();
        plan.removeLinks.push(link);
        plan.changes.links_removed.push(id);
        await this.execute(rec, plan);
      }),
    );
  }

  async setCarrier(lab: string, node: string, iface: string, state: CarrierState): Promise<InterfaceView> {
    return this.d.locks.withKey(lab, () =>
      this.d.metrics.time("carrier", async () => {
        const rec = mustLab(this.d.store, lab);
        const end = this.findEnd(rec, { node, iface });
        if (!end && !Object.hasOwn(rec.nodes, node)) {
          throw new AgentError(
            "NODE_NOT_FOUND",
            `node ${node} does not exist in lab ${lab}`,
            `see \`archnet lab show ${lab}\``,
          );
        }
        if (!end) throw notFoundInterface(lab, node, iface);
        await this.d.backend.setCarrier(rec, [end], state);
        end.iface.carrier = state;
        await this.d.store.saveLab(rec);
        const view = nodeView(end.node, this.d.backend).interfaces.find((i) => i.name === iface);
        return view as InterfaceView;
      }),
    );
  }

  async setLinkCarrier(lab: string, id: string, state: CarrierState): Promise<LinkView> {
    return this.d.locks.withKey(lab, () =>
      this.d.metrics.time("carrier", async () => {
        const rec = mustLab(this.d.store, lab);
        const link = mustLink(rec, id);
        const ends = [parseEnd(link.a), parseEnd(link.b)]
          .map((e) => this.findEnd(rec, e))
          .filter((e): e is LinkEnd => e !== undefined);
        await this.d.backend.setCarrier(rec, ends, state);
        for (const e of ends) e.iface.carrier = state;
        link.carrier = state;
        await this.d.store.saveLab(rec);
        return linkView(rec, link, this.d.backend);
      }),
    );
  }

  /**
   * Records a Docker plugin endpoint (its port exists already) as interface NODE:IF of the lab,
   * node origin "plugin", and wires the links that waited for it.
   */
  async adoptPluginInterface(lab: string, node: string, iface: InterfaceRecord): Promise<void> {
    validateId(lab, "lab");
    validateId(node, "node");
    await this.d.locks.withKey(lab, async () => {
      const rec = this.d.store.lab(lab) ?? this.newLab(lab);
      const existing = rec.nodes[node];
      if (existing && existing.origin !== "plugin") {
        throw new AgentError("CONFLICT", `node ${node} of lab ${lab} exists and is not a Docker container`);
      }
      const have = existing?.interfaces[iface.name];
      if (have?.hostPort === iface.hostPort) {
        if (!this.d.store.lab(lab)) await this.d.store.saveLab(rec); // a new lab that had it already
        return;
      }
      if (have) {
        throw new AgentError("CONFLICT", `${node}:${iface.name} in lab ${lab} belongs to another endpoint`);
      }
      const plan = emptyPlan();
      plan.addNodes.push({
        node: existing ?? { name: node, netns: undefined, origin: "plugin", interfaces: {} },
        ifaces: [iface],
      });
      await this.execute(rec, plan);
    });
  }

  /** Forgets a Docker plugin interface (its links wait for it again); the plugin removes the port. */
  async releasePluginInterface(lab: string, node: string, ifname: string, hostPort: string): Promise<void> {
    await this.d.locks.withKey(lab, async () => {
      const rec = this.d.store.lab(lab);
      const end = rec && this.findEnd(rec, { node, iface: ifname });
      if (!rec || !end || end.node.origin !== "plugin" || end.iface.hostPort !== hostPort) return;
      const plan = emptyPlan();
      plan.removeEnds.push(end);
      if (Object.keys(end.node.interfaces).length === 1) plan.removeNodes.push(node);
      await this.execute(rec, plan);
    });
  }

  /** Labs are this host's alone: a lab put again takes its containers back itself (pluginNodesOf). */
  async setPluginSlots(): Promise<void> {}

  labExists(lab: string): boolean {
    return this.d.store.lab(lab) !== undefined;
  }

  pluginInterfaces(): { lab: string; node: string; iface: string; hostPort: string }[] {
    return this.d.store.labs().flatMap((rec) =>
      Object.values(rec.nodes)
        .filter((n) => n.origin === "plugin")
        .flatMap((n) =>
          Object.values(n.interfaces).map((i) => ({
            lab: rec.lab,
            node: n.name,
            iface: i.name,
            hostPort: i.hostPort,
          })),
        ),
    );
  }

  /** Resolves `NODE:IF` to its records, if the interface exists in the lab. */
  findEnd(rec: LabRecord, ref: EndRef): LinkEnd | undefined {
    return resolveEnd(rec, ref);
  }

  /**
   * Applies a plan as one: the new desired state is written (durable, so a crash mid-way is
   * finished by reconciliation) and the network changes step by step. When a step or the write
   * fails, the steps done are undone in reverse and the old desired state is written back: the
   * lab is as it was, or the error says what is left for reconciliation. A plan that only connects
   * links, or disconnects wires, writes while the network changes (a durable write is 4-7 ms here,
   * a hot wire change less; a crash before both finish leaves the old record, to which the next
   * start converges), as undoing those is exact. Others write first: a failed write then costs no
   * provisioning, and a VLAN link is not given another tag by re-linking it. Returns the lab's
   * new record.
   */
  private async execute(rec: LabRecord, plan: LabPlan): Promise<LabRecord> {
    const next = plannedRecord(rec, plan);
    const old = this.d.store.lab(rec.lab) === rec ? rec : undefined;
    const undo: Undo[] = [];
    const interfaces = plan.addNodes.length + plan.removeNodes.length + plan.removeEnds.length;
    const hot =
      interfaces + plan.detachOverlays.length === 0 && plan.removeLinks.every((l) => l.mode === "wire");
    const written = this.writeDesired(next, plan.detachOverlays, old);
    if (!hot) await written;
    const [write, work] = await Promise.allSettled([written, this.converge(rec, next, plan, undo)]);
    const error = write.status === "rejected" ? write : work.status === "rejected" ? work : undefined;
    if (error) {
      const failed: string[] = [];
      for (const u of undo.reverse()) {
        await u.run().catch((err: unknown) => failed.push(`${u.what}: ${toAgentError(err).message}`));
      }
      this.d.logger.warn(
        { lab: rec.lab, err: toAgentError(error.reason).message, failed },
        "lab change rolled back",
      );
      // A failed write put the old record back itself, and its error says how that went.
      if (error === write) {
        if (failed.length === 0) throw write.reason;
        throw rolledBack((write.reason as Error).cause ?? write.reason, failed);
      }
      failed.push(...(await this.restoreDesired(rec.lab, plan.detachOverlays, old)));
      throw rolledBack(error.reason, failed);
    }
    this.d.logger.debug({ lab: rec.lab, changes: plan.changes }, "lab converged");
    return next;
  }

  /**
   * The one place a lab change becomes desired state: the lab's new record, and its overlay
   * links that go with removed interfaces dropped. A failed write leaves it as it was.
   */
  private async writeDesired(
    next: LabRecord,
    dropped: readonly OverlayRecord[],
    old: LabRecord | undefined,
  ): Promise<void> {
    try {
      await this.d.store.saveLab(next);
    } catch (e) {
      throw rolledBack(e, []); // nothing was written (atomic), and the store shows the old record
    }
    try {
      for (const o of dropped) await this.d.store.overlays.delete(overlayKey(o.lab, o.link));
    } catch (e) {
      throw rolledBack(e, await this.restoreDesired(next.lab, dropped, old));
    }
  }

  /** Writes the desired state from before a change back; returns what could not be. */
  private async restoreDesired(
    lab: string,
    dropped: readonly OverlayRecord[],
    old: LabRecord | undefined,
  ): Promise<string[]> {
    const failed: string[] = [];
    const attempt = (what: string, write: Promise<void>) =>
      write.catch((e: unknown) => failed.push(`${what}: ${toAgentError(e).message}`));
    await attempt(`the record of lab ${lab}`, old ? this.d.store.saveLab(old) : this.d.store.deleteLab(lab));
    for (const o of dropped) {
      await attempt(
        `the record of overlay link ${o.link}`,
        this.d.store.overlays.set(overlayKey(o.lab, o.link), o),
      );
    }
    return failed;
  }

  /** Wire links need the backend's wire capability: refused (501) before anything changes. */
  private requireModes(links: readonly LinkRecord[]): void {
    if (links.some((l) => l.mode === "wire")) capability(this.d.backend, "wire");
  }

  /** Joins the links' ends, each link as its mode says. */
  private async link(rec: LabRecord, links: readonly WiredLink[]): Promise<void> {
    const { vlan, wire } = byMode(links);
    if (vlan.length > 0) await this.d.backend.connect(rec, vlan);
    if (wire.length > 0) await capability(this.d.backend, "wire").connect(rec, wire);
  }

  private async unlink(rec: LabRecord, links: readonly WiredLink[]): Promise<void> {
    const { vlan, wire } = byMode(links);
    if (wire.length > 0) await capability(this.d.backend, "wire").disconnect(rec, wire);
    if (vlan.length > 0) await this.d.backend.disconnect(rec, vlan);
  }

  /**
   * The network part of a plan, from the old record `rec` to `next`; every step done leaves its
   * inverse in `undo`. Links that go away or lose an end are undone first and nothing stays
   * linked to an interface being removed. Interfaces (and their overlay links) are removed after
   * the new ones are built, so the likely failure (provisioning) costs no veth or tunnel; only
   * those re-created under the same host port name go first.
   */
  private async converge(rec: LabRecord, next: LabRecord, plan: LabPlan, undo: Undo[]): Promise<void> {
    const { backend } = this.d;
    const leaving = new Set(plan.removeEnds.map((e) => `${e.node.name}:${e.iface.name}`));
    const touched = Object.values(rec.links).filter((l) => leaving.has(l.a) || leaving.has(l.b));
    const unlinking = this.wired(rec, [...new Set([...plan.removeLinks, ...touched])]);
    if (unlinking.length > 0) {
      await this.unlink(rec, unlinking);
      undo.push({ what: "re-linking", run: () => this.link(rec, unlinking) });
    }

    const added: LinkEnd[] = plan.addNodes.flatMap(({ node, ifaces }) =>
      ifaces.map((i) => this.findEnd(next, { node: node.name, iface: i.name }) as LinkEnd),
    );
    const addedPorts = new Set(added.map((e) => e.iface.hostPort));
    // Docker plugin interfaces belong to their endpoint: the plugin removes them, not the lab.
    const releasing = plan.removeEnds.filter((e) => e.node.origin === "api");
    const remade = releasing.filter((e) => addedPorts.has(e.iface.hostPort));
    const remadeKeys = new Set(remade.map((e) => `${e.node.name}:${e.iface.name}`));
    const keptOverlays = this.overlaysOf(rec.lab).filter((o) => remadeKeys.has(`${o.node}:${o.interface}`));
    const release = async (ends: readonly LinkEnd[], overlays: readonly OverlayRecord[]) => {
      if (ends.length === 0) return;
      // Recorded first: a release can fail half-way.
      undo.push({ what: "re-creating removed interfaces", run: () => this.rebuild(rec, ends, overlays) });
      await backend.release(rec, ends);
    };
    await release(remade, keptOverlays);

    // Docker plugin interfaces exist already (the plugin made them): only api ones are built.
    const building = added.filter((e) => e.node.origin === "api");
    if (building.length > 0) {
      await backend.provision(next, building);
      undo.push({ what: "removing new interfaces", run: () => backend.release(next, building) });
    }
    // Links that can now be wired: the new ones, and pending ones whose missing end just arrived.
    const activate = this.wired(next, Object.values(next.links)).filter(
      (w) =>
        plan.addLinks.includes(w.link) ||
        addedPorts.has(w.a.iface.hostPort) ||
        addedPorts.has(w.b.iface.hostPort),
    );
    if (activate.length > 0) {
      undo.push({ what: "unlinking new links", run: () => this.unlink(next, activate) });
      await this.link(next, activate);
    }
    // Links kept whose impairment changed (connecting applied those just wired).
    const retuned = plan.impairLinks.filter((l) => !activate.some((w) => w.link.id === l.id));
    if (retuned.length > 0) {
      const before = this.wired(
        rec,
        retuned.map((l) => rec.links[l.id] as LinkRecord),
      );
      const shaping = capability(backend, "impairment");
      undo.push({ what: "restoring impairments", run: () => shaping.apply(rec, before) });
      await shaping.apply(next, this.wired(next, retuned));
    }
    for (const o of plan.detachOverlays) {
      await backend.overlay?.detach(o, undefined);
      const end = this.findEnd(rec, { node: o.node, iface: o.interface });
      if (end)
        undo.push({
          what: `re-attaching overlay link ${o.link}`,
          run: () => capability(backend, "overlay").attach(o, end),
        });
    }
    await release(
      releasing.filter((e) => !remade.includes(e)),
      [],
    );
    // A re-created interface keeps its overlay link.
    for (const o of keptOverlays) {
      const end = this.findEnd(next, { node: o.node, iface: o.interface }) as LinkEnd;
      undo.push({
        what: `detaching overlay link ${o.link}`,
        run: async () => backend.overlay?.detach(o, undefined),
      });
      await capability(backend, "overlay").attach(o, end);
    }
  }

  /** Puts removed interfaces back as they were (after whatever of a half-done release is left). */
  private async rebuild(rec: LabRecord, ends: readonly LinkEnd[], overlays: readonly OverlayRecord[]) {
    const { backend } = this.d;
    await backend.release(rec, ends);
    await backend.provision(rec, ends);
    for (const o of overlays) {
      const end = this.findEnd(rec, { node: o.node, iface: o.interface });
      if (end) await capability(backend, "overlay").attach(o, end);
    }
  }

  /** The links of the lab whose two ends exist, with their records. */
  private wired(rec: LabRecord, links: readonly LinkRecord[]): WiredLink[] {
    return wiredLinks(rec, links);
  }

  private newLab(lab: string): LabRecord {
    const taken = new Set(this.d.store.labs().map((l) => l.group));
    // Running containers' endpoints on the lab's networks are in it from the start.
    const nodes = pluginNodesOf(this.d.store, lab);
    return { lab, group: labGroup(lab, taken), createdAt: Date.now(), nodes, links: {} };
  }

  private requireUnlinked(rec: LabRecord, end: EndRef): void {
    const text = formatEnd(end);
    const other = Object.values(rec.links).find((l) => l.a === text || l.b === text);
    if (other) {
      throw new AgentError(
        "ALREADY_LINKED",
        `${text} in lab ${rec.lab} is already in link ${other.id}`,
        `remove link ${other.id} first (archnet link rm ${rec.lab} ${other.id})`,
      );
    }
    if (this.linkedByOverlay(rec.lab).has(text)) {
      throw new AgentError(
        "ALREADY_LINKED",
        `${text} in lab ${rec.lab} carries an overlay link`,
        "detach the overlay link first",
      );
    }
  }

  /** `NODE:IF` of the lab's interfaces that carry overlay links. */
  private linkedByOverlay(lab: string): Set<string> {
    return new Set(this.overlaysOf(lab).map((o) => `${o.node}:${o.interface}`));
  }

  private overlaysOf(lab: string): OverlayRecord[] {
    return this.d.store.overlays.values().filter((o) => o.lab === lab);
  }

  /** Host port names used by other labs' interfaces: a digest clash must never merge two. */
  private takenPorts(exceptLab: string): Set<string> {
    const out = new Set<string>();
    for (const l of this.d.store.labs()) {
      if (l.lab === exceptLab) continue;
      for (const n of Object.values(l.nodes))
        for (const i of Object.values(n.interfaces)) out.add(i.hostPort);
    }
    return out;
  }

  /**
   * New nodes' namespaces are checked (see checkNodeNetns) and, for pid and path references,
   * their identity recorded; a node that exists must still be in the namespace it was made in.
   */
  private async requireNetns(rec: LabRecord, nodes: readonly NodeRecord[]): Promise<void> {
    const fresh = nodes.filter((n) => n.netns && rec.nodes[n.name] !== n);
    for (const n of nodes) {
      const lost = n.netns && rec.nodes[n.name] === n ? netnsLost(n.netns, n.netnsId) : undefined;
      if (lost) {
        throw new AgentError(
          "NETNS_NOT_FOUND",
          `node ${n.name} of lab ${rec.lab} is lost: ${lost}`,
          "give the node its container's current pid or namespace (PUT the lab with it)",
        );
      }
    }
    const ids = await checkNodeNetns(
      fresh.map((n) => ({ node: n.name, netns: n.netns as NetnsRef })),
      switchNetnsRef(this.d.config.switchNetns),
    );
    fresh.forEach((n, i) => {
      if (!("name" in n.netns!)) n.netnsId = ids[i];
    });
  }
}

/** A step's inverse, named for the error message when it fails too. */
interface Undo {
  what: string;
  run: () => Promise<unknown>;
}

/** The error of a failed change, saying whether the lab is as it was. */
export function rolledBack(e: unknown, failed: readonly string[]): AgentError {
  const err = toAgentError(e);
  const how =
    failed.length === 0
      ? "the change was rolled back: the lab is as it was before the request"
      : `rolling the change back was incomplete (${failed.join("; ")}); the agent's reconciliation retries`;
  return new AgentError(err.code, `${err.message}; ${how}`, err.hint, { cause: e });
}

function describeRef(ref: NetnsRef): string {
  return "name" in ref ? ref.name : "path" in ref ? ref.path : `pid ${ref.pid}`;
}

function sameNetns(a: NetnsRef | undefined, b: NetnsRef): boolean {
  return a !== undefined && describeRef(a) === describeRef(b);
}

function sameEnds(l: LinkRecord, a: EndRef, b: EndRef): boolean {
  const x = [l.a, l.b].sort().join(" ");
  return x === [formatEnd(a), formatEnd(b)].sort().join(" ");
}

function notFoundInterface(lab: string, node: string, iface: string): AgentError {
  return new AgentError(
    "INTERFACE_NOT_FOUND",
    `interface ${node}:${iface} does not exist in lab ${lab}`,
    `see \`archnet lab show ${lab}\``,
  );
}

function byMode(links: readonly WiredLink[]): { vlan: WiredLink[]; wire: WiredLink[] } {
  return {
    vlan: links.filter((w) => w.link.mode !== "wire"),
    wire: links.filter((w) => w.link.mode === "wire"),
  };
}
