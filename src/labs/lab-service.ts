import type { LinkEnd, NetworkBackend, WiredLink } from "../backends/network-backend.js";
import { AgentError } from "../common/errors.js";
import type { Locks } from "../common/locks.js";
import type { Logger } from "../common/log.js";
import type { AgentConfig } from "../config/config.js";
import { type NetnsRef, netnsExists, parseNetnsRef } from "../link/netns.js";
import type { Metrics } from "../metrics.js";
import type { LabOperations } from "../services.js";
import type { CarrierState, InterfaceRecord, LabRecord, LinkRecord, NodeRecord } from "../state/records.js";
import type { StateStore } from "../state/state-store.js";
import { emptyPlan, type LabPlan, newInterface, planLab, validateInterfaces } from "./lab-plan.js";
import { defaultLinkId, type EndRef, formatEnd, labGroup, parseEnd, validateId } from "./names.js";
import { labView, linkView, nodeView, summary } from "./render.js";
import type {
  InterfaceView,
  LabChanges,
  LabSpec,
  LabView,
  LinkView,
  NodeInterfacesSpec,
  NodeView,
} from "./views.js";

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
    return labView(this.mustLab(lab), this.d.backend, this.d.unconverged.get(lab));
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
          this.linkedByOverlay(lab),
          this.takenPorts(lab),
        );
        await this.requireNetns(plan.addNodes.map((n) => n.node));
        await this.execute(current, plan);
        return {
          lab: labView(current, this.d.backend, this.d.unconverged.get(lab)),
          changes: plan.changes,
        };
      }),
    );
  }

  async deleteLab(lab: string): Promise<void> {
    await this.d.locks.withKey(lab, () =>
      this.d.metrics.time("teardown", async () => {
        const rec = this.mustLab(lab);
        for (const o of this.d.store.overlays.values().filter((o) => o.lab === lab)) {
          await this.d.backend.detachOverlay(o, this.findEnd(rec, { node: o.node, iface: o.interface }));
          this.d.store.overlays.delete(`${o.lab}/${o.link}`);
        }
        await this.d.backend.teardown(rec);
        this.d.store.deleteLab(lab);
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
        await this.requireNetns([nodeRec]);
        const plan: LabPlan = emptyPlan();
        plan.addNodes.push({ node: nodeRec, ifaces: fresh });
        if (!existing) plan.changes.nodes_added.push(node);
        plan.changes.interfaces_added.push(...fresh.map((f) => `${node}:${f.name}`));
        await this.execute(rec, plan);
        return nodeView(nodeRec, this.d.backend);
      }),
    );
  }

  async addLink(lab: string, spec: { a: string; b: string; id?: string }): Promise<LinkView> {
    validateId(lab, "lab");
    const a = parseEnd(spec.a);
    const b = parseEnd(spec.b);
    if (formatEnd(a) === formatEnd(b)) {
      throw new AgentError("BAD_REQUEST", `a link needs two different ends, got ${formatEnd(a)} twice`);
    }
    const id = spec.id === undefined ? defaultLinkId(a, b) : validateId(spec.id, "link");
    return this.d.locks.withKey(lab, () =>
      this.d.metrics.time("connect", async () => {
        const rec = this.d.store.lab(lab) ?? this.newLab(lab);
        const same = rec.links[id];
        if (same) {
          if (sameEnds(same, a, b)) return linkView(rec, same, this.d.backend);
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
        };
        const plan = emptyPlan();
        plan.addLinks.push(link);
        plan.changes.links_added.push(id);
        await this.execute(rec, plan);
        return linkView(rec, link, this.d.backend);
      }),
    );
  }

  async removeLink(lab: string, id: string): Promise<void> {
    await this.d.locks.withKey(lab, () =>
      this.d.metrics.time("disconnect", async () => {
        const rec = this.mustLab(lab);
        const link = this.mustLink(rec, id);
        const plan = emptyPlan();
        plan.removeLinks.push(link);
        plan.changes.links_removed.push(id);
        await this.execute(rec, plan);
      }),
    );
  }

  async setCarrier(lab: string, node: string, iface: string, state: CarrierState): Promise<InterfaceView> {
    this.requireCapability();
    return this.d.locks.withKey(lab, () =>
      this.d.metrics.time("carrier", async () => {
        const rec = this.mustLab(lab);
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
        this.d.store.saveLab(rec);
        const view = nodeView(end.node, this.d.backend).interfaces.find((i) => i.name === iface);
        return view as InterfaceView;
      }),
    );
  }

  async setLinkCarrier(lab: string, id: string, state: CarrierState): Promise<LinkView> {
    this.requireCapability();
    return this.d.locks.withKey(lab, () =>
      this.d.metrics.time("carrier", async () => {
        const rec = this.mustLab(lab);
        const link = this.mustLink(rec, id);
        const ends = [parseEnd(link.a), parseEnd(link.b)]
          .map((e) => this.findEnd(rec, e))
          .filter((e): e is LinkEnd => e !== undefined);
        await this.d.backend.setCarrier(rec, ends, state);
        for (const e of ends) e.iface.carrier = state;
        link.carrier = state;
        this.d.store.saveLab(rec);
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
      if (have?.hostPort === iface.hostPort) return;
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

  /** Resolves `NODE:IF` to its records, if the interface exists in the lab. */
  findEnd(rec: LabRecord, ref: EndRef): LinkEnd | undefined {
    const node = rec.nodes[ref.node];
    const iface = node?.interfaces[ref.iface];
    return node && iface ? { node, iface } : undefined;
  }

  /**
   * Applies a plan: desired state first (durable), then the network in batches, ordered so that
   * nothing is linked to an interface being removed and new links see their new ends.
   */
  private async execute(rec: LabRecord, plan: LabPlan): Promise<void> {
    const { backend, store } = this.d;
    const wired = (links: readonly LinkRecord[]): WiredLink[] =>
      links.flatMap((link) => {
        const a = this.findEnd(rec, parseEnd(link.a));
        const b = this.findEnd(rec, parseEnd(link.b));
        return a && b ? [{ link, a, b }] : [];
      });

    // Links that go away, or lose an end, are undone on the network before the records drop.
    const leaving = new Set(plan.removeEnds.map((e) => `${e.node.name}:${e.iface.name}`));
    const touched = Object.values(rec.links).filter((l) => leaving.has(l.a) || leaving.has(l.b));
    const unlinking = wired([...new Set([...plan.removeLinks, ...touched])]);
    if (unlinking.length > 0) await backend.disconnect(rec, unlinking);
    // Docker plugin interfaces belong to their endpoint: the plugin removes them, not the lab.
    const releasing = plan.removeEnds.filter((e) => e.node.origin === "api");
    if (releasing.length > 0) await backend.release(rec, releasing);
    for (const l of plan.removeLinks) delete rec.links[l.id];
    for (const e of plan.removeEnds) delete e.node.interfaces[e.iface.name];
    for (const n of plan.removeNodes) delete rec.nodes[n];

    // New interfaces and links are recorded first, then built.
    const added: LinkEnd[] = [];
    for (const { node, ifaces } of plan.addNodes) {
      rec.nodes[node.name] = node;
      for (const iface of ifaces) {
        node.interfaces[iface.name] = iface;
        added.push({ node, iface });
      }
    }
    for (const l of plan.addLinks) rec.links[l.id] = l;
    store.saveLab(rec);

    // Nothing of a failed addition stays: neither records nor what the backend made.
    const undoAdded = async (built: readonly LinkEnd[]): Promise<void> => {
      if (built.length > 0) await backend.release(rec, built).catch(() => undefined);
      for (const { node, iface } of added) delete node.interfaces[iface.name];
      for (const { node } of plan.addNodes)
        if (Object.keys(node.interfaces).length === 0) delete rec.nodes[node.name];
      for (const l of plan.addLinks) delete rec.links[l.id];
      store.saveLab(rec);
    };
    // Docker plugin interfaces exist already (the plugin made them): only api ones are built.
    const building = added.filter((e) => e.node.origin === "api");
    try {
      if (building.length > 0) await backend.provision(rec, building);
    } catch (e) {
      await undoAdded([]);
      throw e;
    }

    // Links that can now be wired: the new ones, and pending ones whose missing end just arrived.
    const addedPorts = new Set(added.map((e) => e.iface.hostPort));
    const activate = wired(Object.values(rec.links)).filter(
      (w) =>
        plan.addLinks.includes(w.link) ||
        addedPorts.has(w.a.iface.hostPort) ||
        addedPorts.has(w.b.iface.hostPort),
    );
    if (activate.length > 0) {
      try {
        await backend.connect(rec, activate);
      } catch (e) {
        await undoAdded(building);
        throw e;
      }
    }
    this.d.logger.debug({ lab: rec.lab, changes: plan.changes }, "lab converged");
  }

  private newLab(lab: string): LabRecord {
    const taken = new Set(this.d.store.labs().map((l) => l.group));
    return { lab, group: labGroup(lab, taken), createdAt: Date.now(), nodes: {}, links: {} };
  }

  private mustLab(lab: string): LabRecord {
    const rec = this.d.store.lab(lab);
    if (!rec) {
      throw new AgentError("LAB_NOT_FOUND", `lab ${lab} does not exist`, "list labs with `archnet lab ls`");
    }
    return rec;
  }

  private mustLink(rec: LabRecord, id: string): LinkRecord {
    const link = rec.links[id];
    if (!link) {
      throw new AgentError(
        "LINK_NOT_FOUND",
        `link ${id} does not exist in lab ${rec.lab}`,
        `see \`archnet link ls ${rec.lab}\``,
      );
    }
    return link;
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
    return new Set(
      this.d.store.overlays
        .values()
        .filter((o) => o.lab === lab)
        .map((o) => `${o.node}:${o.interface}`),
    );
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

  private async requireNetns(nodes: readonly NodeRecord[]): Promise<void> {
    for (const n of nodes) {
      if (n.netns && !(await netnsExists(n.netns))) {
        throw new AgentError(
          "NETNS_NOT_FOUND",
          `the network namespace of node ${n.name} (${describeRef(n.netns)}) does not exist`,
          "create it first (ip netns add NAME), or give the pid of the container's process",
        );
      }
    }
  }

  private requireCapability(): void {
    const why = this.d.backend.unsupported("carrier");
    if (why) throw new AgentError("NOT_SUPPORTED", why);
  }
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
