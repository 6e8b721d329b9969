import { labSwitchName, linkSwitchName, parseShapedError, portName } from "../backends/ovn/marks.js";
import {
  type DesiredPort,
  hasDockerSlot,
  type NbLab,
  type NbLink,
  type NbPort,
  type NbState,
} from "../backends/ovn/nb-model.js";
import type { DesiredLab, DesiredLink } from "../backends/ovn/nb-plan.js";
import { type Applied, ConcurrentLabChange, type OvnBackend } from "../backends/ovn/ovn-backend.js";
import { AgentError, toAgentError } from "../common/errors.js";
import type { Locks } from "../common/locks.js";
import type { Logger } from "../common/log.js";
import type { AgentConfig } from "../config/config.js";
import { parseShapeText, type QdiscShape, sameShape, shapeText } from "../link/index.js";
import { checkNodeNetns, type NetnsRef, netnsLost, parseNetnsRef } from "../link/netns.js";
import type { Metrics } from "../metrics.js";
import { defaultLinkId, hostPortName } from "../model/derived-names.js";
import { formatEnd, parseEnd, validateId } from "../model/names.js";
import type {
  CaptureTarget,
  ImpairmentOperations,
  LabOperations,
  PluginInterfaceOperations,
} from "../model/operations.js";
import type { CarrierState, Impairment, InterfaceRecord } from "../model/records.js";
import type {
  ImpairmentView,
  InterfaceView,
  LabChanges,
  LabSpec,
  LabSummary,
  LabView,
  LinkView,
  NodeInterfacesSpec,
  NodeView,
} from "../model/views.js";
import type { CaptureEnd } from "./capture-service.js";
import { refuseWithoutNetem, sameImpairment, validateImpairment } from "./impairment.js";
import { emptyPlan, validateInterfaces } from "./lab-plan.js";
import { rolledBack } from "./lab-service.js";
import { interfaceNotFound, labNotFound, linkNotFound } from "./lookups.js";
import { netnsText } from "./render.js";

/**
 * Default MTU of node interfaces with the ovn backend: a 1500-byte underlay less Geneve's 58
 * bytes with OVN's options (every link may cross hosts).
 */
export const OVN_DEFAULT_MTU = 1442;

/** How often a container's join or leave is tried while other agents write its lab at once. */
const MERGE_ATTEMPTS = 5;

export interface OvnLabServiceDeps {
  config: AgentConfig;
  backend: OvnBackend;
  locks: Locks;
  metrics: Metrics;
  logger: Logger;
}

/**
 * Labs with the ovn backend: one lab, many hosts. The desired state is OVN's northbound database
 * (shared by every agent), not the agent's state dir: any agent takes a change, validates it
 * (nothing is written when anything is wrong), and writes it as one NB transaction; each agent
 * then makes its own host's part (see OvnBackend). A node says where it runs (`host`, a chassis;
 * absent: this agent's host). Views show every interface's host and binding.
 */
export class OvnLabService implements LabOperations, PluginInterfaceOperations {
  /** What the last change waited for (tests and the bench read it). */
  lastApplied: Applied | undefined;

  constructor(private readonly d: OvnLabServiceDeps) {}

  listLabs(): LabSummary[] {
    return [...this.d.backend.nbState().labs.values()].map((l) => ({
      lab: l.lab,
      nodes: new Set([...l.interfaces.values()].map((p) => p.node)).size,
      links: l.links.size,
    }));
  }

  getLab(lab: string): LabView {
    return this.view(this.mustLab(lab));
  }

  listLinks(lab: string): LinkView[] {
    return this.getLab(lab).links;
  }

  async putLab(lab: string, spec: LabSpec): Promise<{ lab: LabView; changes: LabChanges }> {
    validateId(lab, "lab");
    return this.d.locks.withKey(lab, () =>
      this.d.metrics.time("apply_lab", async () => {
        const cur = this.d.backend.nbState().labs.get(lab);
        const want = await this.desired(lab, spec, cur);
        // Checked here, for this host's kernel; another host's agent reports its own refusal.
        refuseWithoutNetem(
          this.d.backend.netemMissing(),
          want.links.map((l) => l.impairment),
        );
        const changes = diff(cur, want);
        await this.commit(want, cur);
        return { lab: this.view(this.mustLab(lab)), changes };
      }),
    );
  }

  async deleteLab(lab: string): Promise<void> {
    await this.d.locks.withKey(lab, () =>
      this.d.metrics.time("teardown", async () => {
        this.mustLab(lab);
        this.lastApplied = await this.d.backend.deleteLab(lab);
      }),
    );
  }

  async addInterfaces(lab: string, node: string, spec: NodeInterfacesSpec): Promise<NodeView> {
    validateId(lab, "lab");
    validateId(node, "node");
    return this.d.locks.withKey(lab, async () => {
      const cur = this.d.backend.nbState().labs.get(lab);
      const body = cur ? specOf(cur) : { nodes: [], links: [] };
      const have = body.nodes.find((n) => n.name === node);
      const netns = parseNetnsRef(spec);
      if (have) {
        if (JSON.stringify(netnsOfSpec(have)) !== JSON.stringify(netns)) {
          throw new AgentError(
            "CONFLICT",
            `node ${node} of lab ${lab} already lives in another namespace`,
            "remove the node (PUT the lab without it) before moving it to another namespace",
          );
        }
        for (const i of spec.interfaces) {
          const old = have.interfaces.find((x) => x.name === i.name);
          if (old && i.mtu !== undefined && old.mtu !== i.mtu) {
            throw new AgentError(
              "CONFLICT",
              `${node}:${i.name} in lab ${lab} exists with MTU ${old.mtu}, not ${i.mtu}`,
              "remove the interface first to change its MTU",
            );
          }
          if (!old) have.interfaces.push(i);
        }
      } else {
        body.nodes.push({ name: node, ...spec });
      }
      const want = await this.desired(lab, body, cur);
      await this.commit(want, cur);
      const view = this.view(this.mustLab(lab)).nodes.find((n) => n.name === node);
      return view as NodeView;
    });
  }

  async addLink(lab: string, spec: { a: string; b: string; id?: string }): Promise<LinkView> {
    validateId(lab, "lab");
    const a = parseEnd(spec.a);
    const b = parseEnd(spec.b);
    const id = spec.id === undefined ? defaultLinkId(a, b) : validateId(spec.id, "link");
    return this.d.locks.withKey(lab, async () => {
      const cur = this.mustLab(lab);
      const body = specOf(cur);
      const same = body.links.find((l) => l.id === id);
      if (same) {
        if ([same.a, same.b].sort().join() === [formatEnd(a), formatEnd(b)].sort().join())
          return this.linkOf(lab, id);
        throw new AgentError(
          "CONFLICT",
          `link ${id} of lab ${lab} exists with other ends (${same.a}, ${same.b})`,
        );
      }
      for (const end of [formatEnd(a), formatEnd(b)]) {
        const other = body.links.find((l) => l.a === end || l.b === end);
        if (other) {
          throw new AgentError(
            "ALREADY_LINKED",
            `${end} in lab ${lab} is already in link ${other.id}`,
            `remove link ${other.id} first (archnet link rm ${lab} ${other.id})`,
          );
        }
      }
      body.links.push({ id, a: formatEnd(a), b: formatEnd(b) });
      const want = await this.desired(lab, body, cur);
      await this.commit(want, cur);
      return this.linkOf(lab, id);
    });
  }

  async removeLink(lab: string, id: string): Promise<void> {
    await this.d.locks.withKey(lab, async () => {
      const cur = this.mustLab(lab);
      if (!cur.links.has(id)) throw linkNotFound(lab, id);
      const body = specOf(cur);
      body.links = body.links.filter((l) => l.id !== id);
      const want = await this.desired(lab, body, cur);
      await this.commit(want, cur);
    });
  }

  /**
   * A pulled cable: the logical port disabled (traffic stops in one NB transaction, answered once
   * the chassis applied it) and, by the node's own host agent, the host end of its veth down (the
   * node sees NO-CARRIER). The link's peer is not held down (the ovs backend's carrier follow).
   */
  async setCarrier(lab: string, node: string, iface: string, state: CarrierState): Promise<InterfaceView> {
    return this.d.locks.withKey(lab, async () => {
      const cur = this.mustLab(lab);
      const key = `${node}:${iface}`;
      if (!cur.interfaces.has(key)) {
        const known = [...cur.interfaces.values()].some((p) => p.node === node);
        throw known
          ? new AgentError("INTERFACE_NOT_FOUND", `interface ${key} does not exist in lab ${lab}`)
          : new AgentError("NODE_NOT_FOUND", `node ${node} does not exist in lab ${lab}`);
      }
      await this.withCarrier(lab, cur, [key], state);
      const view = this.view(this.mustLab(lab)).nodes.find((n) => n.name === node);
      return view?.interfaces.find((i) => i.name === iface) as InterfaceView;
    });
  }

  async setLinkCarrier(lab: string, id: string, state: CarrierState): Promise<LinkView> {
    return this.d.locks.withKey(lab, async () => {
      const cur = this.mustLab(lab);
      const link = cur.links.get(id);
      if (!link) throw linkNotFound(lab, id);
      await this.withCarrier(lab, cur, [link.a, link.b], state);
      return this.linkOf(lab, id);
    });
  }

  private async withCarrier(lab: string, cur: NbLab, ends: readonly string[], state: CarrierState) {
    const want = await this.desired(lab, specOf(cur), cur);
    for (const p of want.ports) if (ends.includes(`${p.node}:${p.iface}`)) p.carrier = state;
    await this.commit(want, cur);
  }

  /**
   * Writes the lab to NB and waits until applied. When a host's agent could not apply a qdisc
   * (tc refused it there), the lab is put back as it was and that error is thrown.
   */
  private async commit(want: DesiredLab, before: NbLab | undefined): Promise<void> {
    const applied = await this.d.backend.applyLab(want);
    this.lastApplied = applied;
    const first = applied.shapeFailed[0];
    if (!first) return;
    const failed: string[] = [];
    try {
      if (before) await this.d.backend.applyLab(desiredOf(before));
      else await this.d.backend.deleteLab(want.lab);
    } catch (e) {
      failed.push(`the lab in OVN's northbound database: ${toAgentError(e).message}`);
    }
    this.d.logger.warn(
      { lab: want.lab, port: first.lsp, err: first.error.message, failed },
      "impairment rolled back",
    );
    throw rolledBack(first.error, failed);
  }

  // ---- Docker containers: their interfaces join a lab as ports of this host ----

  /**
   * A container's interface (its veth the plugin's, on this host) becomes NODE:IF of the lab in
   * one NB transaction, answered once applied: the links that name it are wired (across hosts
   * too). The lab is made when it does not exist yet.
   */
  async adoptPluginInterface(lab: string, node: string, iface: InterfaceRecord): Promise<void> {
    validateId(lab, "lab");
    validateId(node, "node");
    const here = this.d.backend.hostId;
    await this.d.locks.withKey(lab, () =>
      this.merging(lab, async () => {
        const state = this.d.backend.nbState();
        const cur = state.labs.get(lab);
        const key = `${node}:${iface.name}`;
        const have = cur?.interfaces.get(key);
        if (have?.origin === "plugin" && have.host === here && have.hostPort === iface.hostPort) return;
        const other = [...(cur?.interfaces.values() ?? [])].find((p) => p.node === node);
        if (other && other.origin !== "plugin")
          throw new AgentError("CONFLICT", `node ${node} of lab ${lab} exists and is not a Docker container`);
        if (other && other.host !== here) {
          throw new AgentError(
            "CONFLICT",
            `node ${node} of lab ${lab} is a Docker container on host ${other.host}: a node runs on one host`,
            "give containers of one lab names unique across its hosts",
          );
        }
        if (have) throw new AgentError("CONFLICT", `${key} in lab ${lab} belongs to another endpoint`);
        refuseForeignLab(state, lab);
        refuseForeign(state.foreignPorts, "logical port", portName(lab, node, iface.name));
        const want: DesiredLab = cur ? desiredOf(cur) : { lab, ports: [], links: [] };
        want.ports.push({
          node,
          iface: iface.name,
          host: here,
          netns: "null",
          mtu: iface.mtu,
          hostPort: iface.hostPort,
          carrier: "up",
          origin: "plugin",
        });
        await this.commit(want, cur);
      }),
    );
  }

  /**
   * Runs `change` (which reads NB afresh) again when another agent wrote the lab in between:
   * containers on several hosts join and leave one lab at once, and each only adds or removes
   * its own port. Before a retry the cache is let catch up with that other write.
   */
  private async merging(lab: string, change: () => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const seen = this.d.backend.nbState().labs.get(lab)?.generation;
      try {
        return await change();
      } catch (e) {
        if (!(e instanceof ConcurrentLabChange) || attempt === MERGE_ATTEMPTS) throw e;
        await this.d.backend.nb.until(
          () => this.d.backend.nbState().labs.get(lab)?.generation !== seen,
          2000,
        );
      }
    }
  }

  /** The container's interface leaves the lab (its links keep the end and wait for it). */
  async releasePluginInterface(lab: string, node: string, ifname: string, hostPort: string): Promise<void> {
    await this.d.locks.withKey(lab, () =>
      this.merging(lab, async () => {
        const cur = this.d.backend.nbState().labs.get(lab);
        const key = `${node}:${ifname}`;
        const p = cur?.interfaces.get(key);
        if (!cur || p?.origin !== "plugin" || p.hostPort !== hostPort || p.host !== this.d.backend.hostId)
          return;
        const want = desiredOf(cur);
        want.ports = want.ports.filter((x) => `${x.node}:${x.iface}` !== key);
        await this.commit(want, cur);
      }),
    );
  }

  /** Kept in NB, so that any agent accepts a link naming a container of a slot ahead of it. */
  setPluginSlots(slots: readonly { lab: string; iface: string }[]): Promise<void> {
    return this.d.backend.writeDockerSlots(slots.map((s) => `${s.lab}/${s.iface}`));
  }

  labExists(lab: string): boolean {
    return this.d.backend.nbState().labs.has(lab);
  }

  watchLabs(listener: () => void): () => void {
    return this.d.backend.onNbChanged(listener);
  }

  pluginInterfaces(): { lab: string; node: string; iface: string; hostPort: string }[] {
    const here = this.d.backend.hostId;
    return [...this.d.backend.nbState().labs.values()].flatMap((l) =>
      [...l.interfaces.values()]
        .filter((p) => p.origin === "plugin" && p.host === here)
        .map((p) => ({ lab: l.lab, node: p.node, iface: p.iface, hostPort: p.hostPort })),
    );
  }

  // ---- impairments: kept in NB on the link's switch; each end's host agent applies its own ----

  /** `GET/PUT/DELETE /labs/{lab}/links/{id}/impairment` with the ovn backend. */
  readonly impairments: ImpairmentOperations = {
    get: async (lab, id) => this.impairmentView(lab, id),
    set: (lab, id, spec) => this.setImpairment(lab, id, spec),
  };

  private async setImpairment(
    lab: string,
    id: string,
    spec: Impairment | undefined,
  ): Promise<ImpairmentView> {
    const impairment = validateImpairment(spec);
    return this.d.locks.withKey(lab, () =>
      this.d.metrics.time("impair", async () => {
        const cur = this.mustLab(lab);
        const link = cur.links.get(id);
        if (!link) throw linkNotFound(lab, id);
        refuseWithoutNetem(this.d.backend.netemMissing(), [impairment]);
        if (!sameImpairment(link.impairment, impairment)) {
          const want = desiredOf(cur);
          want.links = want.links.map((l) => (l.id === id ? { ...l, impairment } : l));
          await this.commit(want, cur);
        }
        return this.impairmentView(lab, id);
      }),
    );
  }

  /**
   * What a link's impairment asks, and what its ends' hosts apply: this host's ends read back
   * from tc, another host's as its agent reported it in NB.
   */
  private async impairmentView(lab: string, id: string): Promise<ImpairmentView> {
    const rec = this.mustLab(lab);
    const link = rec.links.get(id);
    if (!link) throw linkNotFound(lab, id);
    const [atA, atB] = await Promise.all([link.a, link.b].map((e) => this.appliedAt(rec.interfaces.get(e))));
    return {
      lab,
      id,
      a: link.a,
      b: link.b,
      a_to_b: link.impairment?.a_to_b ?? {},
      b_to_a: link.impairment?.b_to_a ?? {},
      applied: atA && atB ? { a_to_b: atB.shape, b_to_a: atA.shape } : null,
      in_sync: (atA?.inSync ?? true) && (atB?.inSync ?? true),
    };
  }

  /** The qdisc on a port's host end (undefined while it is absent). */
  private async appliedAt(
    p: NbPort | undefined,
  ): Promise<{ shape: QdiscShape; inSync: boolean } | undefined> {
    const backend = this.d.backend;
    if (!p) return undefined;
    if (p.host === backend.hostId) {
      if (!backend.localPresent(p.hostPort)) return undefined;
      const q = await backend.localQdisc(p.hostPort).catch(() => undefined);
      return { shape: q?.kind === "shape" ? q.shape : {}, inSync: sameShape(p.shape, q) };
    }
    if (backend.binding(p.name).chassis !== p.host) return undefined;
    if (parseShapedError(p.shaped)) return { shape: {}, inSync: false };
    return { shape: parseShapeText(p.shaped), inSync: p.shaped === shapeText(p.shape) };
  }

  // ---- validation: everything is checked before anything is written ----

  private async desired(lab: string, spec: LabSpec, cur: NbLab | undefined): Promise<DesiredLab> {
    const backend = this.d.backend;
    const state = backend.nbState();
    const hosts = backend.knownHosts();
    refuseForeignLab(state, lab);
    const ports: DesiredPort[] = [];
    const declared = new Set<string>();
    const local: { node: string; netns: NetnsRef }[] = [];
    // Host ports of other labs, per host: two interfaces on one host must not share a veth name.
    const taken = new Map<string, string>();
    for (const other of state.labs.values()) {
      if (other.lab === lab) continue;
      for (const p of other.interfaces.values())
        taken.set(`${p.host}/${p.hostPort}`, `${other.lab}/${p.node}`);
    }
    for (const n of spec.nodes) {
      const name = validateId(n.name, "node");
      if (declared.has(name)) {
        throw new AgentError("BAD_REQUEST", `node ${name} is declared twice (a node runs on one host)`);
      }
      declared.add(name);
      const netns = parseNetnsRef(n);
      const host = n.host ?? backend.hostId;
      const was = [...(cur?.interfaces.values() ?? [])].find((p) => p.node === name);
      if (was?.origin === "plugin") {
        throw new AgentError(
          "CONFLICT",
          `node ${name} of lab ${lab} is a Docker container of the plugin (on host ${was.host})`,
          "leave it out of the lab body: its links name it like any other node",
        );
      }
      // A node already on a host that is gone now stays there (its links show down meanwhile).
      if (!hosts.has(host) && was?.host !== host) {
        throw new AgentError(
          "HOST_NOT_FOUND",
          `node ${name}: host ${host} is not a chassis of this OVN deployment`,
          `known hosts: ${[...hosts].sort().join(", ")} (a host appears once its ovn-controller has registered)`,
        );
      }
      if (was && was.host !== host) {
        throw new AgentError(
          "CONFLICT",
          `node ${name} of lab ${lab} runs on host ${was.host}, not ${host}: a node is on one host`,
          "remove the node (PUT the lab without it) before declaring it on another host",
        );
      }
      if (host === backend.hostId && (!was || was.netns !== JSON.stringify(netns)))
        local.push({ node: name, netns });
      for (const w of validateInterfaces(n.interfaces, OVN_DEFAULT_MTU)) {
        const hostPort = hostPortName(lab, name, w.name);
        const clash = taken.get(`${host}/${hostPort}`);
        if (clash) {
          throw new AgentError(
            "CONFLICT",
            `host port name ${hostPort} of ${name}:${w.name} clashes with ${clash}'s`,
          );
        }
        refuseForeign(state.foreignPorts, "logical port", portName(lab, name, w.name));
        ports.push({
          node: name,
          iface: w.name,
          host,
          netns: JSON.stringify(netns),
          mtu: w.mtu,
          hostPort,
          // A declarative PUT keeps a pulled cable pulled (as with the ovs backend).
          carrier: cur?.interfaces.get(`${name}:${w.name}`)?.carrier ?? "up",
          origin: "api",
        });
      }
    }
    // Docker containers' interfaces are their plugin's, not the body's: they stay as they are.
    for (const p of cur?.interfaces.values() ?? []) if (p.origin === "plugin") ports.push(desiredPort(p));
    const ifaces = new Set(ports.map((p) => `${p.node}:${p.iface}`));
    // A link may keep an end that is a container not running now (it joins again when it runs).
    const waiting = new Set<string>();
    for (const l of cur?.links.values() ?? [])
      for (const e of [l.a, l.b]) if (!cur?.interfaces.has(e)) waiting.add(e);
    const links: DesiredLink[] = [];
    const ids = new Set<string>();
    const ends = new Set<string>();
    for (const l of spec.links) {
      const a = parseEnd(l.a);
      const b = parseEnd(l.b);
      const id = l.id === undefined ? defaultLinkId(a, b) : validateId(l.id, "link");
      if (formatEnd(a) === formatEnd(b))
        throw new AgentError("BAD_REQUEST", `link ${id} joins ${formatEnd(a)} to itself`);
      if (ids.has(id)) throw new AgentError("BAD_REQUEST", `link id ${id} is declared twice`);
      ids.add(id);
      for (const e of [formatEnd(a), formatEnd(b)]) {
        const [node, iface] = e.split(":") as [string, string];
        const container = !declared.has(node) && (waiting.has(e) || hasDockerSlot(state, lab, iface));
        if (!ifaces.has(e) && !container) {
          throw new AgentError(
            "BAD_REQUEST",
            `link ${id}: ${e} is not an interface of lab ${lab}'s body`,
            "a link joins two interfaces of the same lab: declared in its body, or a Docker container's (a network of the lab for that interface on some host: docker network create -d archetype-ovs -o lab_id=LAB -o interface_name=IF); a port of another lab cannot be linked",
          );
        }
        if (ends.has(e)) throw new AgentError("ALREADY_LINKED", `${e} is in two links of the lab body`);
        ends.add(e);
      }
      refuseForeign(state.foreignSwitches, "logical switch", linkSwitchName(lab, id));
      const impairment = validateImpairment(l.impairment, `link ${id}: impairment`);
      links.push({ id, a: formatEnd(a), b: formatEnd(b), ...(impairment ? { impairment } : {}) });
    }
    // This host's new nodes' namespaces must exist (other hosts' agents check their own).
    const sw = this.d.config.switchNetns;
    await checkNodeNetns(local, sw === undefined ? undefined : parseNetnsRef({ netns: sw }));
    return { lab, ports, links };
  }

  // ---- capture ----

  /**
   * The interface a capture names, on this host: a link's end here (a, else b), or NODE:IF. An
   * interface on another host is captured by that host's agent (its veth is there).
   */
  captureEnd(target: CaptureTarget): CaptureEnd {
    if ("overlay" in target) {
      throw new AgentError(
        "NOT_SUPPORTED",
        "the ovn backend has no overlay links: capture the lab's link or interface instead",
      );
    }
    const lab = this.mustLab(target.lab);
    const here = this.d.backend.hostId;
    const portOf = (end: string) => lab.interfaces.get(end);
    let ends: string[];
    let what: string;
    if ("link" in target) {
      const link = lab.links.get(target.link);
      if (!link) throw linkNotFound(target.lab, target.link);
      ends = [link.a, link.b];
      what = `link ${link.id}`;
    } else {
      const end = `${target.node}:${target.iface}`;
      if (!portOf(end)) {
        const known = [...lab.interfaces.values()].some((p) => p.node === target.node);
        throw interfaceNotFound(target.lab, target.node, target.iface, known);
      }
      ends = [end];
      what = `interface ${end}`;
    }
    const local = ends.map(portOf).find((p) => p?.host === here);
    if (!local) {
      const hosts = [...new Set(ends.map((e) => portOf(e)?.host).filter((h) => h !== undefined))];
      throw new AgentError(
        "CONFLICT",
        `${what} of lab ${target.lab} is not on this host (${here}): it runs on ${hosts.join(" and ")}`,
        `capture it through the agent of ${hosts[0] ?? "its host"}`,
      );
    }
    return { lab: target.lab, node: local.node, iface: local.iface, hostPort: local.hostPort, what };
  }

  // ---- views ----

  private mustLab(lab: string): NbLab {
    const rec = this.d.backend.nbState().labs.get(lab);
    if (!rec) throw labNotFound(lab);
    return rec;
  }

  private linkOf(lab: string, id: string): LinkView {
    return this.view(this.mustLab(lab)).links.find((l) => l.id === id) as LinkView;
  }

  private view(lab: NbLab): LabView {
    const backend = this.d.backend;
    const bindings = backend.bindings();
    const linkOf = new Map<string, string>();
    for (const l of lab.links.values()) {
      linkOf.set(l.a, l.id);
      linkOf.set(l.b, l.id);
    }
    const byNode = new Map<string, NbPort[]>();
    for (const p of lab.interfaces.values()) byNode.set(p.node, [...(byNode.get(p.node) ?? []), p]);
    // Without SB (reconnecting), NB's Logical_Switch_Port.up (ovn-northd's copy) stands in.
    const bindingOf = (p: NbPort) =>
      backend.sb.isConnected
        ? (bindings.get(p.name) ?? { chassis: null, up: false })
        : { chassis: null, up: p.up };
    // A host whose chassis left SB is gone, one whose chassis stopped applying syncs is not
    // answering (both only known while SB is reachable): its ports stay.
    const registered = backend.sb.isConnected ? backend.registeredChassis() : undefined;
    const silent = backend.sb.isConnected ? backend.liveness.silent() : new Map<string, number>();
    const goneHost = (p: NbPort | undefined): string | undefined => {
      if (p === undefined || registered === undefined) return undefined;
      if (!registered.has(p.host)) return hostGone(p.host);
      const since = silent.get(p.host);
      return since === undefined ? undefined : hostSilent(p.host, since);
    };
    const peerOf = (p: NbPort): NbPort | undefined => {
      const l = lab.links.get(linkOf.get(`${p.node}:${p.iface}`) ?? "");
      if (!l) return undefined;
      return lab.interfaces.get(l.a === `${p.node}:${p.iface}` ? l.b : l.a);
    };
    const ifaceView = (p: NbPort): InterfaceView => {
      const binding = bindingOf(p);
      const mine = p.host === backend.hostId;
      const own = goneHost(p);
      const peer = peerOf(p);
      const peerGone = own === undefined ? goneHost(peer) : undefined;
      const reason = own ?? (peerGone && `its link peer ${peer?.node}:${peer?.iface}: ${peerGone}`);
      return {
        name: p.iface,
        host_port: p.hostPort,
        mtu: p.mtu,
        vlan: null,
        carrier: p.carrier,
        oper_state: p.carrier === "down" ? "admin_down" : own ? "no_carrier" : peerGone ? "peer_down" : "up",
        present: mine ? backend.localPresent(p.hostPort) : binding.chassis === p.host,
        link: linkOf.get(`${p.node}:${p.iface}`) ?? null,
        host: p.host,
        binding,
        ...(reason ? { reason } : {}),
      };
    };
    const nodes: NodeView[] = [...byNode.entries()].map(([name, ports]) => {
      const first = ports[0]!;
      let ref: NetnsRef | undefined;
      try {
        // A container's namespace is Docker's ("null"): the view shows none, like the ovs backend's.
        ref = (JSON.parse(first.netns) as NetnsRef | null) ?? undefined;
      } catch {
        ref = undefined;
      }
      const mine = first.host === backend.hostId;
      const problem =
        goneHost(first) ??
        (mine
          ? ((ref && safeLost(ref)) ??
            ports.map((p) => backend.localProblem(p.name)).find((x) => x !== undefined))
          : undefined);
      return {
        name,
        netns: netnsText(ref),
        origin: first.origin,
        ...(problem ? { state: "lost" as const, reason: problem } : { state: "ok" as const }),
        host: first.host,
        interfaces: ports.map(ifaceView),
      };
    });
    const links: LinkView[] = [...lab.links.values()].map((l) => {
      const ends = [l.a, l.b].map((e) => lab.interfaces.get(e));
      const up = ends.every((p) => p !== undefined && bindingOf(p).up);
      const down = ends.some((p) => p?.carrier === "down");
      const gone = ends.find((p) => goneHost(p) !== undefined);
      if (gone) {
        const reason = `${gone.node}:${gone.iface}: ${goneHost(gone)}`;
        return { id: l.id, a: l.a, b: l.b, mode: "wire", vlan: null, state: "down", reason };
      }
      // A logical switch with VLAN passthrough and unknown addresses: a cable.
      return {
        id: l.id,
        a: l.a,
        b: l.b,
        mode: "wire",
        vlan: null,
        state: down ? "down" : up ? "up" : "pending",
        ...(l.impairment ? { impairment: l.impairment } : {}),
      };
    });
    return { lab: lab.lab, nodes, links };
  }
}

/** CONFLICT when NB has a row of this name that the agent did not make: it never changes those. */
function refuseForeign(
  foreign: ReadonlySet<string>,
  what: "logical switch" | "logical port",
  name: string,
  hint?: string,
): void {
  if (foreign.has(name))
    throw new AgentError(
      "CONFLICT",
      `OVN's northbound database has a ${what} ${name} that is not the agent's`,
      hint,
    );
}

function refuseForeignLab(state: NbState, lab: string): void {
  refuseForeign(
    state.foreignSwitches,
    "logical switch",
    labSwitchName(lab),
    "choose another lab id; the agent never changes what it did not make",
  );
}

function hostGone(host: string): string {
  return `host ${host} is gone: no chassis ${host} in OVN's southbound database (its ovn-controller stopped or the host is down); back once it registers again`;
}

function hostSilent(host: string, since: number): string {
  const s = Math.round((Date.now() - since) / 1000);
  return `host ${host} is not answering: its ovn-controller has applied no change for ${s} s while other hosts did (it is stopped, or the host is down or cut off); back once it catches up`;
}

function safeLost(ref: NetnsRef): string | undefined {
  try {
    return netnsLost(ref);
  } catch (e) {
    return (e as Error).message;
  }
}

function netnsOfSpec(n: { netns?: string; pid?: number }): NetnsRef {
  return parseNetnsRef(n);
}

/** The lab body NB holds (what a declarative PUT would give to keep it as it is). */
function specOf(lab: NbLab): LabSpec {
  const nodes = new Map<string, LabSpec["nodes"][number]>();
  for (const p of lab.interfaces.values()) {
    if (p.origin === "plugin") continue; // a container's, kept by desired()
    let n = nodes.get(p.node);
    if (!n) {
      const ref = JSON.parse(p.netns) as NetnsRef;
      n = {
        name: p.node,
        ...("pid" in ref ? { pid: ref.pid } : { netns: "name" in ref ? ref.name : ref.path }),
        host: p.host,
        interfaces: [],
      };
      nodes.set(p.node, n);
    }
    n.interfaces.push({ name: p.iface, mtu: p.mtu });
  }
  return {
    nodes: [...nodes.values()],
    links: [...lab.links.values()].map(linkSpecOf),
  };
}

function linkSpecOf(l: NbLink): DesiredLink {
  return { id: l.id, a: l.a, b: l.b, ...(l.impairment ? { impairment: l.impairment } : {}) };
}

/** The lab as NB holds it, as the desired state that keeps it so (checked when it was written). */
function desiredOf(lab: NbLab): DesiredLab {
  const ports: DesiredPort[] = [...lab.interfaces.values()].map(desiredPort);
  return { lab: lab.lab, ports, links: [...lab.links.values()].map(linkSpecOf) };
}

function desiredPort(p: NbPort): DesiredPort {
  return {
    node: p.node,
    iface: p.iface,
    host: p.host,
    netns: p.netns,
    mtu: p.mtu,
    hostPort: p.hostPort,
    carrier: p.carrier,
    origin: p.origin,
  };
}

/** What a change does, in the contract's words. */
function diff(cur: NbLab | undefined, want: DesiredLab): LabChanges {
  const c: LabChanges = emptyPlan().changes;
  const curNodes = new Set([...(cur?.interfaces.values() ?? [])].map((p) => p.node));
  const wantNodes = new Set(want.ports.map((p) => p.node));
  for (const n of wantNodes) if (!curNodes.has(n)) c.nodes_added.push(n);
  for (const n of curNodes) if (!wantNodes.has(n)) c.nodes_removed.push(n);
  const wantIfaces = new Map(want.ports.map((p) => [`${p.node}:${p.iface}`, p]));
  for (const [k, p] of wantIfaces) {
    const have = cur?.interfaces.get(k);
    if (!have || have.mtu !== p.mtu || have.netns !== p.netns) {
      if (have) c.interfaces_removed.push(k);
      c.interfaces_added.push(k);
    }
  }
  for (const k of cur?.interfaces.keys() ?? []) if (!wantIfaces.has(k)) c.interfaces_removed.push(k);
  const wantLinks = new Map(want.links.map((l) => [l.id, l]));
  for (const [id, l] of wantLinks) {
    const have = cur?.links.get(id);
    if (!have || [have.a, have.b].sort().join() !== [l.a, l.b].sort().join()) {
      if (have) c.links_removed.push(id);
      c.links_added.push(id);
    }
  }
  for (const id of cur?.links.keys() ?? []) if (!wantLinks.has(id)) c.links_removed.push(id);
  for (const [id, l] of wantLinks) {
    const have = cur?.links.get(id);
    if (have && !c.links_added.includes(id) && !sameImpairment(have.impairment, l.impairment))
      c.impairments_changed.push(id);
  }
  return c;
}
