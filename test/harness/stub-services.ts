/**
 * An in-memory AgentServices: a tiny fake lab store with the same rules and errors as the
 * real lab service (no network, no OVS), so the HTTP API and the CLI can be tested anywhere.
 */
import type { NetworkBackend } from "../../src/backends/network-backend.js";
import { AgentError } from "../../src/common/errors.js";
import { type AgentConfig, defaultConfig } from "../../src/config/config.js";
import { requireShaping, validateImpairment } from "../../src/labs/impairment.js";
import { createMetrics } from "../../src/metrics.js";
import type {
  CaptureOperations,
  CleanupOperations,
  ImpairmentOperations,
  LabOperations,
  OverlayOperations,
} from "../../src/model/operations.js";
import type { CarrierState, Impairment, LinkMode } from "../../src/model/records.js";
import type {
  InterfaceView,
  LabChanges,
  LabSpec,
  LabView,
  LinkView,
  NodeInterfacesSpec,
  NodeView,
  OrphanView,
  OverlaySpec,
  SwitchStatusView,
  TunnelView,
} from "../../src/model/views.js";
import type { AgentServices } from "../../src/services.js";

interface StubIface {
  name: string;
  hostPort: string;
  mtu: number;
  carrier: CarrierState;
  isolatedVlan: number;
}
interface StubNode {
  name: string;
  netns: string | null;
  origin: "api" | "plugin";
  interfaces: Map<string, StubIface>;
}
interface StubLink {
  id: string;
  a: string;
  b: string;
  vlan: number;
  mode: LinkMode;
  carrier: CarrierState;
  impairment?: Impairment;
}
interface StubLab {
  lab: string;
  nodes: Map<string, StubNode>;
  links: Map<string, StubLink>;
}

export interface StubOptions {
  secret?: string | undefined;
  config?: Partial<AgentConfig>;
}

export interface StubServices {
  services: AgentServices;
  /** A stable text of the whole fake state: equal texts, equal states. */
  snapshot(): string;
  /** Orphans the fake cleanup finds. */
  setOrphans(orphans: OrphanView[]): void;
  /** When set, every lab/overlay/cleanup/status operation throws this. */
  fault: unknown;
}

export function createStubServices(opts: StubOptions = {}): StubServices {
  const config: AgentConfig = { ...defaultConfig(), backend: "local", ...opts.config, secret: opts.secret };
  const labs = new Map<string, StubLab>();
  const overlays = new Map<string, Required<OverlaySpec>>();
  let orphans: OrphanView[] = [];
  let portSeq = 0;
  let isolatedSeq = config.vlan.isolated.min;
  let linkVlanSeq = config.vlan.local.min;
  const handle: StubServices = {
    services: undefined as unknown as AgentServices,
    snapshot: () => JSON.stringify({ labs: [...labs.keys()].map(labView), overlays: [...overlays], orphans }),
    setOrphans: (o) => {
      orphans = [...o];
    },
    fault: undefined,
  };
  const check = (): void => {
    if (handle.fault !== undefined) throw handle.fault;
  };

  const mustLab = (lab: string): StubLab => {
    const l = labs.get(lab);
    if (!l) throw new AgentError("LAB_NOT_FOUND", `lab ${lab} does not exist`, "see GET /labs");
    return l;
  };
  const ensureLab = (lab: string): StubLab => {
    let l = labs.get(lab);
    if (!l) {
      l = { lab, nodes: new Map(), links: new Map() };
      labs.set(lab, l);
    }
    return l;
  };
  const splitEnd = (end: string): [string, string] => {
    const i = end.indexOf(":");
    return [end.slice(0, i), end.slice(i + 1)];
  };
  const ifaceOf = (l: StubLab, end: string): StubIface | undefined => {
    const [node, iface] = splitEnd(end);
    return l.nodes.get(node)?.interfaces.get(iface);
  };
  const linkOf = (l: StubLab, end: string): StubLink | undefined =>
    [...l.links.values()].find((k) => k.a === end || k.b === end);
  const newIface = (name: string, mtu: number | undefined): StubIface => ({
    name,
    hostPort: `vs${++portSeq}`,
    mtu: mtu ?? config.localMtu,
    carrier: "up",
    isolatedVlan: isolatedSeq++,
  });
  const netnsOf = (spec: { netns?: string | undefined; pid?: number | undefined }): string | null => {
    if (spec.netns !== undefined && spec.pid !== undefined) {
      throw new AgentError("BAD_REQUEST", "give netns or pid, not both");
    }
    return spec.netns ?? (spec.pid === undefined ? null : `pid:${spec.pid}`);
  };

  function ifaceView(l: StubLab, node: string, i: StubIface): InterfaceView {
    const link = linkOf(l, `${node}:${i.name}`);
    return {
      name: i.name,
      host_port: i.hostPort,
      mtu: i.mtu,
      vlan: link ? link.vlan : i.isolatedVlan,
      carrier: i.carrier,
      oper_state: i.carrier === "down" ? "admin_down" : "up",
      present: true,
      link: link?.id ?? null,
    };
  }
  function nodeView(l: StubLab, n: StubNode): NodeView {
    return {
      name: n.name,
      netns: n.netns,
      origin: n.origin,
      state: "ok",
      interfaces: [...n.interfaces.values()].map((i) => ifaceView(l, n.name, i)),
    };
  }
  function linkView(l: StubLab, k: StubLink): LinkView {
    const a = ifaceOf(l, k.a);
    const b = ifaceOf(l, k.b);
    const state = !a || !b ? "pending" : k.carrier === "down" ? "down" : "up";
    return {
      id: k.id,
      a: k.a,
      b: k.b,
      mode: k.mode,
      vlan: k.mode === "wire" ? null : k.vlan,
      state,
      ...(k.impairment ? { impairment: k.impairment } : {}),
    };
  }
  function labView(lab: string): LabView {
    const l = mustLab(lab);
    return {
      lab,
      nodes: [...l.nodes.values()].map((n) => nodeView(l, n)),
      links: [...l.links.values()].map((k) => linkView(l, k)),
    };
  }
  const defaultLinkId = (a: string, b: string): string =>
    `${a}-${b}`
      .replace(/[^A-Za-z0-9_.-]/g, "_")
      .replace(/^[^A-Za-z0-9]/, "l")
      .slice(0, 63);

  function addLinkTo(
    l: StubLab,
    spec: { a: string; b: string; id?: string | undefined; mode?: LinkMode | undefined },
  ): StubLink {
    if (spec.a === spec.b)
      throw new AgentError("BAD_REQUEST", `a link needs two different ends, not ${spec.a} twice`);
    for (const end of [spec.a, spec.b]) {
      const other = linkOf(l, end);
      if (other) {
        throw new AgentError(
          "ALREADY_LINKED",
          `${end} is already in link ${other.id} of lab ${l.lab}`,
          `remove it first: DELETE /labs/${l.lab}/links/${other.id}`,
        );
      }
    }
    const id = spec.id ?? defaultLinkId(spec.a, spec.b);
    if (l.links.has(id)) throw new AgentError("CONFLICT", `lab ${l.lab} already has a link ${id}`);
    const link: StubLink = {
      id,
      a: spec.a,
      b: spec.b,
      vlan: linkVlanSeq++,
      mode: spec.mode ?? "vlan",
      carrier: "up",
    };
    l.links.set(id, link);
    return link;
  }

  const labOps: LabOperations = {
    listLabs() {
      check();
      return [...labs.values()].map((l) => ({ lab: l.lab, nodes: l.nodes.size, links: l.links.size }));
    },
    getLab(lab) {
      check();
      return labView(lab);
    },
    async putLab(lab: string, spec: LabSpec) {
      check();
      // Validate the whole spec before touching anything.
      const names = new Set<string>();
      for (const n of spec.nodes) {
        if (names.has(n.name)) throw new AgentError("BAD_REQUEST", `node ${n.name} appears twice`);
        names.add(n.name);
        netnsOf(n);
        const ifs = new Set<string>();
        for (const i of n.interfaces) {
          if (ifs.has(i.name))
            throw new AgentError("BAD_REQUEST", `interface ${n.name}:${i.name} appears twice`);
          ifs.add(i.name);
        }
      }
      const ends = new Set<string>();
      const impairments = spec.links.map((k) => validateImpairment(k.impairment));
      requireShaping(backend, impairments);
      for (const k of spec.links) {
        for (const end of [k.a, k.b]) {
          if (ends.has(end)) throw new AgentError("ALREADY_LINKED", `${end} is in two links of the spec`);
          ends.add(end);
        }
        if (k.a === k.b)
          throw new AgentError("BAD_REQUEST", `a link needs two different ends, not ${k.a} twice`);
      }
      const existed = labs.get(lab);
      const l: StubLab = { lab, nodes: new Map(), links: new Map() };
      const changes: LabChanges = {
        nodes_added: [],
        nodes_removed: [],
        interfaces_added: [],
        interfaces_removed: [],
        links_added: [],
        links_removed: [],
        overlays_detached: [],
        impairments_changed: [],
      };
      for (const n of spec.nodes) {
        const old = existed?.nodes.get(n.name);
        if (!old) changes.nodes_added.push(n.name);
        const node: StubNode = { name: n.name, netns: netnsOf(n), origin: "api", interfaces: new Map() };
        for (const i of n.interfaces) {
          const oi = old?.interfaces.get(i.name);
          if (!oi) changes.interfaces_added.push(`${n.name}:${i.name}`);
          node.interfaces.set(i.name, oi ? { ...oi, mtu: i.mtu ?? oi.mtu } : newIface(i.name, i.mtu));
        }
        for (const oi of old?.interfaces.keys() ?? []) {
          if (!node.interfaces.has(oi)) changes.interfaces_removed.push(`${n.name}:${oi}`);
        }
        l.nodes.set(n.name, node);
      }
      for (const old of existed?.nodes.values() ?? []) {
        if (old.origin === "plugin") l.nodes.set(old.name, old);
        else if (!l.nodes.has(old.name)) {
          changes.nodes_removed.push(old.name);
          for (const oi of old.interfaces.keys()) changes.interfaces_removed.push(`${old.name}:${oi}`);
        }
      }
      spec.links.forEach((k, n) => {
        const id = k.id ?? defaultLinkId(k.a, k.b);
        const old = existed?.links.get(id);
        const impairment = impairments[n];
        let link: StubLink;
        if (old && old.a === k.a && old.b === k.b) {
          link = old;
          if (JSON.stringify(old.impairment) !== JSON.stringify(impairment))
            changes.impairments_changed.push(id);
        } else {
          link = addLinkTo(l, { a: k.a, b: k.b, id });
          changes.links_added.push(id);
        }
        if (impairment) link.impairment = impairment;
        else delete link.impairment;
        l.links.set(id, link);
      });
      for (const id of existed?.links.keys() ?? []) {
        if (!l.links.has(id)) changes.links_removed.push(id);
      }
      labs.set(lab, l);
      return { lab: labView(lab), changes };
    },
    async deleteLab(lab) {
      check();
      mustLab(lab);
      labs.delete(lab);
      for (const [k, o] of overlays) if (o.lab === lab) overlays.delete(k);
    },
    async addInterfaces(lab: string, node: string, spec: NodeInterfacesSpec) {
      check();
      const netns = netnsOf(spec);
      const existing = labs.get(lab)?.nodes.get(node);
      if (existing && netns !== null && existing.netns !== netns) {
        throw new AgentError(
          "CONFLICT",
          `node ${node} of lab ${lab} is in netns ${existing.netns}, not ${netns}`,
          "a node lives in one network namespace",
        );
      }
      const names = new Set(spec.interfaces.map((i) => i.name));
      if (names.size !== spec.interfaces.length)
        throw new AgentError("BAD_REQUEST", "an interface appears twice");
      const l = ensureLab(lab);
      let n = l.nodes.get(node);
      if (!n) {
        n = { name: node, netns, origin: "api", interfaces: new Map() };
        l.nodes.set(node, n);
      }
      for (const i of spec.interfaces) {
        if (!n.interfaces.has(i.name)) n.interfaces.set(i.name, newIface(i.name, i.mtu));
      }
      return nodeView(l, n);
    },
    async addLink(lab, spec) {
      check();
      const existing = labs.get(lab);
      if (existing) return linkView(existing, addLinkTo(existing, spec));
      const l: StubLab = { lab, nodes: new Map(), links: new Map() };
      const link = addLinkTo(l, spec); // throws before the lab exists
      labs.set(lab, l);
      return linkView(l, link);
    },
    listLinks(lab) {
      check();
      return labView(lab).links;
    },
    async removeLink(lab, id) {
      check();
      const l = mustLab(lab);
      if (!l.links.delete(id)) throw new AgentError("LINK_NOT_FOUND", `lab ${lab} has no link ${id}`);
    },
    async setCarrier(lab, node, iface, state) {
      check();
      const l = mustLab(lab);
      const n = l.nodes.get(node);
      if (!n) throw new AgentError("NODE_NOT_FOUND", `lab ${lab} has no node ${node}`);
      const i = n.interfaces.get(iface);
      if (!i)
        throw new AgentError("INTERFACE_NOT_FOUND", `node ${node} of lab ${lab} has no interface ${iface}`);
      i.carrier = state;
      return ifaceView(l, node, i);
    },
    async setLinkCarrier(lab, id, state) {
      check();
      const l = mustLab(lab);
      const k = l.links.get(id);
      if (!k) throw new AgentError("LINK_NOT_FOUND", `lab ${lab} has no link ${id}`);
      k.carrier = state;
      for (const end of [k.a, k.b]) {
        const i = ifaceOf(l, end);
        if (i) i.carrier = state;
      }
      return linkView(l, k);
    },
  };

  const tunnelView = (o: Required<OverlaySpec>): TunnelView => {
    const l = labs.get(o.lab);
    const present = l !== undefined && l.nodes.get(o.node)?.interfaces.has(o.interface) === true;
    return {
      ...o,
      vlan: config.vlan.overlay.min + (o.vni % (config.vlan.overlay.max - config.vlan.overlay.min + 1)),
      port: `vx${o.vni}`,
      state: present ? "up" : "missing",
      rx_packets: 0,
      tx_packets: 0,
      rx_bytes: 0,
      tx_bytes: 0,
      drops: 0,
    };
  };
  const overlayOps: OverlayOperations = {
    async attach(spec) {
      check();
      const want: Required<OverlaySpec> = {
        ...spec,
        mtu: spec.mtu ?? config.overlayMtu,
        mode: spec.mode ?? "vlan",
      };
      const key = `${spec.lab}/${spec.link}`;
      const old = overlays.get(key);
      if (old) {
        if (JSON.stringify(old) === JSON.stringify(want)) return tunnelView(old);
        throw new AgentError("CONFLICT", `overlay link ${key} exists with other settings`, "detach it first");
      }
      for (const o of overlays.values()) {
        if (o.vni === want.vni && o.remote_ip === want.remote_ip) {
          throw new AgentError(
            "CONFLICT",
            `VNI ${o.vni} to ${o.remote_ip} is already used by ${o.lab}/${o.link}`,
          );
        }
        if (o.lab === want.lab && o.node === want.node && o.interface === want.interface) {
          throw new AgentError(
            "ALREADY_LINKED",
            `${o.node}:${o.interface} is already in overlay link ${o.link}`,
          );
        }
      }
      const l = mustLab(spec.lab);
      const n = l.nodes.get(spec.node);
      if (!n) throw new AgentError("NODE_NOT_FOUND", `lab ${spec.lab} has no node ${spec.node}`);
      if (!n.interfaces.has(spec.interface)) {
        throw new AgentError("INTERFACE_NOT_FOUND", `node ${spec.node} has no interface ${spec.interface}`);
      }
      if (linkOf(l, `${spec.node}:${spec.interface}`)) {
        throw new AgentError("ALREADY_LINKED", `${spec.node}:${spec.interface} is in a local link`);
      }
      overlays.set(key, want);
      return tunnelView(want);
    },
    async detach(lab, link) {
      check();
      if (!overlays.delete(`${lab}/${link}`)) {
        throw new AgentError(
          "OVERLAY_NOT_FOUND",
          `no overlay link ${lab}/${link}`,
          "see GET /overlay/status",
        );
      }
    },
    status() {
      check();
      return [...overlays.values()].map(tunnelView);
    },
  };

  const cleanupOps: CleanupOperations = {
    async audit() {
      check();
      return [...orphans];
    },
    async run() {
      check();
      const removed = orphans;
      orphans = [];
      return removed;
    },
  };

  const impairmentOps: ImpairmentOperations = {
    async get(lab, id) {
      check();
      const k = mustLab(lab).links.get(id);
      if (!k) throw new AgentError("LINK_NOT_FOUND", `lab ${lab} has no link ${id}`);
      const a_to_b = k.impairment?.a_to_b ?? {};
      const b_to_a = k.impairment?.b_to_a ?? {};
      return { lab, id, a: k.a, b: k.b, a_to_b, b_to_a, applied: { a_to_b, b_to_a }, in_sync: true };
    },
    async set(lab, id, spec) {
      check();
      const impairment = validateImpairment(spec);
      const k = mustLab(lab).links.get(id);
      if (!k) throw new AgentError("LINK_NOT_FOUND", `lab ${lab} has no link ${id}`);
      requireShaping(backend, [impairment]);
      if (impairment) k.impairment = impairment;
      else delete k.impairment;
      return impairmentOps.get(lab, id);
    },
  };

  const captureOps: CaptureOperations = {
    async start(target) {
      check();
      if ("overlay" in target && !overlays.has(`${target.lab}/${target.overlay}`)) {
        throw new AgentError("OVERLAY_NOT_FOUND", `no overlay link ${target.lab}/${target.overlay}`);
      }
      mustLab(target.lab);
      throw new AgentError("NOT_SUPPORTED", "the stub backend does not capture");
    },
    active: () => 0,
  };

  const notHere = async (): Promise<never> => {
    throw new AgentError("NOT_SUPPORTED", "the stub backend does not do this");
  };
  const backend: NetworkBackend = {
    name: config.backend,
    datapath: "netdev",
    unsupported: {},
    start: async () => {},
    stop: async () => {},
    provision: notHere,
    release: notHere,
    connect: notHere,
    disconnect: notHere,
    setCarrier: notHere,
    teardown: notHere,
    impairment: {
      netemMissing: () => undefined,
      apply: async () => {},
      applied: async (links) => links.map(() => ({ a_to_b: {}, b_to_a: {}, in_sync: true })),
    },
    capture: { point: () => undefined },
    observe: () => ({ present: true, vlan: null, link: null }),
    reconcile: async () => ({ repairs: [], failed: new Map() }),
    onDrift: () => {},
    async status(): Promise<SwitchStatusView> {
      check();
      const ports = [...labs.values()].flatMap((l) =>
        [...l.nodes.values()].flatMap((n) =>
          [...n.interfaces.values()].map((i) => {
            const v = ifaceView(l, n.name, i);
            return {
              name: i.hostPort,
              vlan: v.vlan,
              lab: l.lab,
              node: n.name,
              interface: i.name,
              link: v.link,
              ofport: Number(i.hostPort.slice(2)),
              link_state: i.carrier,
              type: "",
              rx_packets: 0,
              tx_packets: 0,
              rx_bytes: 0,
              tx_bytes: 0,
            };
          }),
        ),
      );
      return {
        backend: config.backend,
        bridge: config.bridge,
        fail_mode: "secure",
        datapath: "netdev",
        connected: true,
        ports,
      };
    },
  };

  handle.services = {
    version: "0.0.0-stub",
    config,
    backend,
    labs: labOps,
    overlays: overlayOps,
    cleanup: cleanupOps,
    impairments: impairmentOps,
    captures: captureOps,
    metrics: createMetrics(),
  };
  return handle;
}
