import { setMaxListeners } from "node:events";
import { basename } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { capability, type DockerPortsCapability, type NetworkBackend } from "../backends/network-backend.js";
import { AgentError, isAgentError } from "../common/errors.js";
import { Locks } from "../common/locks.js";
import type { Logger } from "../common/log.js";
import type { AgentConfig } from "../config/config.js";
import { getLink, listLinks } from "../link/links.js";
import { type NetnsRef, switchNetnsRef } from "../link/netns.js";
import { pluginPortNames } from "../model/derived-names.js";
import { validateId, validateIfName } from "../model/names.js";
import type { PluginInterfaceOperations } from "../model/operations.js";
import type { InterfaceRecord, PluginEndpointRecord, PluginNetworkRecord } from "../model/records.js";
import type { StateStore } from "../state/state-store.js";
import type { DockerEngine } from "./docker-engine.js";
import { isRunningSandbox, renameWhenMoved } from "./live-rename.js";
import { PortReaper } from "./port-reaper.js";
import {
  ALIAS_PREFIX,
  type CreateNetworkRequest,
  type DriverAnswer,
  type EndpointRequest,
  GENERIC_OPTION,
  type JoinRequest,
  type JoinResponse,
  type NetworkRequest,
  NULL_POOLS,
} from "./protocol.js";
import { SparePool } from "./spare-pool.js";
import { VethBatcher } from "./veth-batcher.js";

export interface DriverDeps {
  config: AgentConfig;
  store: StateStore;
  backend: NetworkBackend;
  labs: PluginInterfaceOperations;
  locks: Locks;
  logger: Logger;
  docker: DockerEngine;
  /** The MTU of a network's interfaces without `-o mtu` (the backend's default). */
  defaultMtu: number;
  /** How long to look for the container of a joined endpoint in Docker (ms). */
  resolveTimeoutMs?: number;
}

/** First look for the container of an endpoint joined while its container starts (no start event seen). */
const FIRST_LOOK_MS = 1500;
/** ... and of one joined to a running container (`docker network connect`), or after a restart. */
const RUNNING_FIRST_LOOK_MS = 250;
/** Spares are made this long after a network was created (quiet). */
const START_REFILL_MS = 50;
/** Docker is asked for created containers once its create events paused this long ... */
const DEMAND_QUIET_MS = 100;
/** ... and after starts once they paused this long (Docker is busy while it starts containers). */
const START_QUIET_MS = 1000;
/** After a create, the demand is asked once more this much later (then once Docker is quiet). */
const SECOND_LOOK_MS = 2000;

/**
 * The archetype-ovs network driver: a Docker network is one interface slot (`interface_name`) of
 * a lab (`lab_id`); each endpoint is a veth whose host end is an isolated switch port. Once Docker
 * says which container holds an endpoint, it becomes interface CONTAINER:IF of the lab, so lab
 * links wire it like any other interface.
 *
 * Docker calls CreateEndpoint/Join and Leave/DeleteEndpoint one network after the other while it
 * starts or stops a container, so the calls do no process work: endpoints take pre-made veths
 * (SparePool), host ends are removed in the background (PortReaper), and a starting container's
 * endpoints are adopted when Docker reports the start.
 */
export class NetworkDriver {
  private closed = false;
  private readonly resolving = new Set<string>();
  /** Endpoints whose veth this process made: Join need not look for it in the kernel. */
  private readonly made = new Set<string>();
  /** Serialises work per endpoint; its own locks, so lab locks taken inside cannot deadlock. */
  private readonly endpointLocks = new Locks();
  private readonly spares: SparePool;
  /** Removes host ends in the background: Docker waits on DeleteEndpoint, one after the other. */
  private readonly reaper: PortReaper;
  /** Makes the veths of concurrent CreateEndpoint calls (and spares) in one batch. */
  private readonly veths: VethBatcher;
  /** Ends the resolve loops' pauses when the driver closes. */
  /** Ends every resolve pause at close; one endpoint's pause per concurrent call listens on it. */
  private readonly closing = withoutListenerLimit(new AbortController());
  /** Endpoints adopted by this process (and the container they were adopted for). */
  private readonly adopted = new Map<string, string>();
  private readonly stopWatching: (() => void) | undefined;
  private readonly stopWatchingLabs: (() => void) | undefined;
  private rejoinQueued = false;
  /** Endpoints a rejoin was refused for: not tried again until their lab is gone once more. */
  private readonly rejoinRefused = new Set<string>();
  private demandTimer: NodeJS.Timeout | undefined;
  /** A container was created since Docker was last asked: the demand may rise. */
  private demandRaise = false;
  /** A container was created: Docker is asked soon (its start may follow at once). */
  private demandQuick = false;
  /** The backend's Docker ports (NOT_SUPPORTED when it has none: the driver is not started then). */
  private readonly ports: DockerPortsCapability;

  constructor(private readonly d: DriverDeps) {
    const ports = capability(d.backend, "dockerPorts");
    this.ports = ports;
    // Plugin ports are made, marked and removed under the agent's locks: a reconcile or cleanup
    // pass (exclusive) never rebuilds the VLAN allocator in the middle of them.
    this.reaper = new PortReaper(
      (hostPorts) => d.locks.withKey(PORTS_KEY, () => ports.removeDetached(hostPorts)),
      d.logger,
    );
    this.veths = new VethBatcher((eps) => d.locks.withKey(PORTS_KEY, () => ports.createDetached(eps)));
    this.spares = new SparePool({ ...d, reaper: this.reaper, create: (eps) => this.veths.create(eps) });
    this.stopWatching = d.docker.watchContainers?.((id, action) => {
      if (action === "start") this.onContainerStart(id);
      else this.demandSoon("create"); // one more container to make spares for
    });
    this.stopWatchingLabs = d.labs.watchLabs?.(() => this.rejoinSoon());
  }

  /** Stops background work; resolves once queued removals are done. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.demandTimer);
    this.spares.close();
    this.stopWatching?.();
    this.stopWatchingLabs?.();
    this.closing.abort();
    await this.reaper.drain();
  }

  /** Answers one protocol call (`NetworkDriver.Join`, ...). Errors are thrown as AgentError. */
  async handle(call: string, body: unknown): Promise<DriverAnswer> {
    switch (call) {
      case "Plugin.Activate":
        return { Implements: ["NetworkDriver"] };
      case "NetworkDriver.GetCapabilities":
        return { Scope: "local", ConnectivityScope: "local" };
      case "NetworkDriver.CreateNetwork":
        return this.createNetwork(body as CreateNetworkRequest);
      case "NetworkDriver.DeleteNetwork":
        return this.deleteNetwork(body as NetworkRequest);
      case "NetworkDriver.CreateEndpoint":
        return this.createEndpoint(body as EndpointRequest);
      case "NetworkDriver.Join":
        return { ...(await this.join(body as JoinRequest)) };
      case "NetworkDriver.Leave":
        return this.leave(body as EndpointRequest);
      case "NetworkDriver.DeleteEndpoint":
        return this.deleteEndpoint(body as EndpointRequest);
      case "NetworkDriver.EndpointOperInfo":
        this.mustEndpoint(body as EndpointRequest);
        return { Value: {} };
      case "NetworkDriver.ProgramExternalConnectivity":
      case "NetworkDriver.RevokeExternalConnectivity":
      case "NetworkDriver.DiscoverNew":
      case "NetworkDriver.DiscoverDelete":
        return {};
      case "NetworkDriver.AllocateNetwork":
      case "NetworkDriver.FreeNetwork":
        throw new AgentError("NOT_SUPPORTED", `${call}: archetype-ovs is a local-scope driver`);
      default:
        throw new AgentError("NOT_FOUND", `${call} is not a call of the remote network driver protocol`);
    }
  }

  private async createNetwork(req: CreateNetworkRequest): Promise<DriverAnswer> {
    const id = requireId(req.NetworkID, "NetworkID");
    const opts = (req.Options?.[GENERIC_OPTION] ?? {}) as Record<string, unknown>;
    const usage = "docker network create -d <driver> -o lab_id=LAB -o interface_name=eth1 NAME";
    if (opts.lab_id === undefined || opts.lab_id === "") {
      throw new AgentError("BAD_REQUEST", "archetype-ovs: option lab_id is required", usage);
    }
    if (opts.interface_name === undefined || opts.interface_name === "") {
      throw new AgentError("BAD_REQUEST", "archetype-ovs: option interface_name is required", usage);
    }
    const lab = validateId(opts.lab_id, "lab");
    const interfaceName = validateIfName(String(opts.interface_name), "interface_name");
    const mtu = networkMtu(opts);
    requireNoAddresses(req);
    const known = this.d.store.pluginNetworks.get(id);
    if (known && (known.lab !== lab || known.interfaceName !== interfaceName || known.mtu !== mtu)) {
      throw new AgentError("CONFLICT", `network ${id} exists for ${known.lab} ${known.interfaceName}`);
    }
    if (!known) {
      await this.d.store.pluginNetworks.set(id, {
        networkId: id,
        lab,
        interfaceName,
        ...(mtu === undefined ? {} : { mtu }),
        createdAt: Date.now(),
      });
      this.spares.refillSoon(START_REFILL_MS); // containers usually follow their networks at once
      await this.publishSlots();
    }
    this.d.logger.info({ network: id, lab, interface: interfaceName }, "plugin network created");
    return {};
  }

  private async deleteNetwork(req: NetworkRequest): Promise<DriverAnswer> {
    const id = requireId(req.NetworkID, "NetworkID");
    for (const ep of this.d.store.pluginEndpoints.values().filter((e) => e.networkId === id)) {
      await this.removeEndpoint(ep);
    }
    const net = this.d.store.pluginNetworks.get(id);
    if (net) this.spares.discard(net);
    await this.d.store.pluginNetworks.delete(id);
    if (net) await this.publishSlots();
    return {};
  }

  /**
   * Tells the lab service every slot this host's networks make (with ovn: NB, so that any agent
   * accepts links naming containers ahead of them). A failure only delays that: it is logged.
   */
  private async publishSlots(): Promise<void> {
    const slots = this.d.store.pluginNetworks.values().map((n) => ({ lab: n.lab, iface: n.interfaceName }));
    await this.d.labs
      .setPluginSlots(slots)
      .catch((e) =>
        this.d.logger.warn({ err: errorText(e) }, "could not publish the Docker networks' slots"),
      );
  }

  /** Labs changed behind this host (ovn: another agent put a deleted lab again): once per turn. */
  private rejoinSoon(): void {
    if (this.rejoinQueued || this.closed) return;
    this.rejoinQueued = true;
    setImmediate(() => {
      this.rejoinQueued = false;
      this.rejoin();
    });
  }

  /** Containers whose lab was deleted go back in once it exists again (as the ovs backend's do). */
  private rejoin(): void {
    const have = new Set(this.d.labs.pluginInterfaces().map((i) => `${i.lab}/${i.hostPort}`));
    for (const ep of this.d.store.pluginEndpoints.values()) {
      const net = this.d.store.pluginNetworks.get(ep.networkId);
      if (ep.node === undefined || !net || !this.adopted.has(ep.endpointId)) continue;
      if (!this.d.labs.labExists(net.lab)) {
        this.rejoinRefused.delete(ep.endpointId);
        continue;
      }
      if (have.has(`${net.lab}/${ep.hostPort}`) || this.rejoinRefused.has(ep.endpointId)) continue;
      void this.endpointLocks
        .withKey(endpointKey(ep.endpointId), async () => {
          // Left meanwhile (Leave holds this lock while it releases the interface).
          if (ep.node === undefined || this.d.store.pluginEndpoints.get(ep.endpointId) !== ep) return;
          await this.d.labs.adoptPluginInterface(net.lab, ep.node, this.interfaceOf(net, ep));
        })
        .catch((e) => {
          // e.g. the name is another host's container there now: said once, not at every change.
          this.rejoinRefused.add(ep.endpointId);
          this.d.logger.warn(
            { err: errorText(e), endpoint: ep.endpointId },
            "could not put a container back into its lab",
          );
        });
    }
  }

  private interfaceOf(net: PluginNetworkRecord, ep: PluginEndpointRecord): InterfaceRecord {
    return {
      name: net.interfaceName,
      hostPort: ep.hostPort,
      mtu: ep.mtu,
      carrier: "up",
      createdAt: ep.createdAt,
    };
  }

  private async createEndpoint(req: EndpointRequest): Promise<DriverAnswer> {
    const net = this.mustNetwork(req.NetworkID);
    const id = requireId(req.EndpointID, "EndpointID");
    await this.endpointLocks.withKey(endpointKey(id), async () => {
      if (this.d.store.pluginEndpoints.get(id)) return;
      if (await this.claimSpare(net, id)) return;
      const { hostPort, peer } = pluginPortNames(id);
      const ep: PluginEndpointRecord = {
        endpointId: id,
        networkId: net.networkId,
        hostPort,
        peerName: peer,
        mtu: net.mtu ?? this.d.defaultMtu,
        createdAt: Date.now(),
      };
      // Recorded first: a crash in between leaves a record that start() clears up.
      await this.d.store.pluginEndpoints.set(id, ep);
      try {
        await this.createVeth(net, ep);
      } catch (e) {
        await this.d.store.pluginEndpoints.delete(id);
        throw e;
      }
    });
    // Docker keeps the address and MAC it chose: the answer adds nothing.
    return { Interface: {} };
  }

  /**
   * The endpoint takes a pre-made veth of its network: no process, no waiting. Docker calls
   * CreateEndpoint one container after the other on a network, so this is on the path of every
   * container of a lab started at once. False when the network has no spare (or its port
   * vanished: made afresh).
   */
  private async claimSpare(net: PluginNetworkRecord, id: string): Promise<boolean> {
    const taken = this.spares.take(net);
    if (!taken) return false;
    const { spare, recorded } = taken;
    if (!this.d.backend.observe({ ...spare, name: net.interfaceName, carrier: "up" }).present) {
      this.reaper.add([spare.hostPort]);
      await recorded;
      return false;
    }
    // Both on disk before the answer: after a crash the spare is neither lost nor handed out twice.
    try {
      await Promise.all([
        recorded,
        this.d.store.pluginEndpoints.set(id, { endpointId: id, networkId: net.networkId, ...spare }),
      ]);
    } catch (e) {
      // Out of the pool, and no endpoint has it: its veth goes (Docker retries the endpoint).
      await this.d.store.pluginEndpoints.delete(id).catch(() => undefined);
      this.reaper.add([spare.hostPort]);
      throw e;
    }
    this.made.add(id);
    // The mark only tells OVSDB's readers whose port it is (cleanup and restarts go by the
    // store): sent now, not awaited. A mutation of this one key, so no lock is needed.
    void this.ports
      .mark(spare.hostPort, { endpoint: id }, { wait: false })
      .catch((e) =>
        this.d.logger.warn({ err: errorText(e), port: spare.hostPort }, "could not mark a claimed spare"),
      );
    return true;
  }

  private async join(req: JoinRequest): Promise<JoinResponse> {
    const ep = this.mustEndpoint(req);
    const net = this.mustNetwork(ep.networkId);
    await this.endpointLocks.withKey(endpointKey(ep.endpointId), async () => {
      // The veth may have gone (removed by hand, agent restarted) before the container started.
      if (!this.made.has(ep.endpointId) && !(await this.hostPortExists(ep.hostPort))) {
        await this.createVeth(net, ep);
      }
      if (typeof req.SandboxKey === "string" && req.SandboxKey !== "") {
        ep.sandboxKey = req.SandboxKey;
        await this.d.store.pluginEndpoints.set(ep.endpointId, ep);
      }
    });
    const running = isRunningSandbox(req.SandboxKey);
    this.resolveLater(ep.endpointId, running);
    if (running) this.renameLater(req.SandboxKey as string, net.interfaceName, ep.peerName);
    return {
      InterfaceName: { SrcName: ep.peerName, DstPrefix: "eth" },
      DisableGatewayService: true,
    };
  }

  private async leave(req: EndpointRequest): Promise<DriverAnswer> {
    const ep = this.d.store.pluginEndpoints.get(requireId(req.EndpointID, "EndpointID"));
    if (!ep) return {}; // forgotten already (its veth vanished): Docker must still be able to go on
    await this.endpointLocks.withKey(endpointKey(ep.endpointId), () => this.forget(ep));
    return {};
  }

  private async deleteEndpoint(req: EndpointRequest): Promise<DriverAnswer> {
    const ep = this.d.store.pluginEndpoints.get(requireId(req.EndpointID, "EndpointID"));
    if (ep) await this.removeEndpoint(ep); // an unknown endpoint is already deleted
    return {};
  }

  /**
   * After a restart: endpoints whose host port is gone are dropped (their container lost the
   * interface with it) unless not joined yet (Join makes the veth again); plugin interfaces in
   * labs without an endpoint are released.
   */
  async recover(): Promise<void> {
    const present = new Set((await listLinks(this.switchNetns())).map((l) => l.name));
    for (const ep of this.d.store.pluginEndpoints.values()) {
      const net = this.d.store.pluginNetworks.get(ep.networkId);
      if (net && present.has(ep.hostPort)) {
        this.resolveLater(ep.endpointId, true);
        continue;
      }
      if (net && ep.sandboxKey === undefined) continue;
      this.d.logger.info(
        { endpoint: ep.endpointId, port: ep.hostPort },
        "dropping a vanished plugin endpoint",
      );
      await this.removeEndpoint(ep);
    }
    const known = new Set(this.d.store.pluginEndpoints.values().map((e) => e.hostPort));
    for (const i of this.d.labs.pluginInterfaces()) {
      if (known.has(i.hostPort)) continue;
      await this.d.labs.releasePluginInterface(i.lab, i.node, i.iface, i.hostPort);
      this.reaper.add([i.hostPort]);
    }
    await this.spares.recover(present);
    await this.publishSlots();
    this.demandSoon("create");
    await this.reaper.drain(); // start-up leaves nothing half-removed behind it
  }

  /** A running container joined (`docker network connect`): name its interface once moved in. */
  private renameLater(sandboxKey: string, ifname: string, peerName: string): void {
    void renameWhenMoved(sandboxKey, `${ALIAS_PREFIX}${ifname}`, ifname, peerName)
      .then((r) => {
        if (r === "taken" || r === "timeout")
          this.d.logger.warn(
            { sandboxKey, interface: ifname, result: r },
            "could not name a connected interface",
          );
      })
      .catch((e) =>
        this.d.logger.warn({ err: e, interface: ifname }, "renaming a connected interface failed"),
      );
  }

  /**
   * Looks for the container of a joined endpoint in the background, then adopts it. A container
   * being started is adopted when Docker reports that it started (onContainerStart): asking
   * Docker while it starts the container slows the start down. This loop is the fallback.
   */
  private resolveLater(endpointId: string, running: boolean): void {
    if (this.resolving.has(endpointId)) return;
    this.resolving.add(endpointId);
    void this.resolve(endpointId, running ? RUNNING_FIRST_LOOK_MS : FIRST_LOOK_MS)
      .catch((e) => this.d.logger.warn({ err: e, endpoint: endpointId }, "adopting a plugin endpoint failed"))
      .finally(() => this.resolving.delete(endpointId));
  }

  private async resolve(endpointId: string, firstLookMs: number): Promise<void> {
    const deadline = Date.now() + (this.d.resolveTimeoutMs ?? 120_000);
    let wait = RUNNING_FIRST_LOOK_MS;
    await this.pause(firstLookMs);
    while (!this.closed && Date.now() < deadline) {
      const ep = this.d.store.pluginEndpoints.get(endpointId);
      if (!ep) return;
      if (ep.node !== undefined) return this.adopt(ep, ep.node);
      const name = await this.d.docker.containerOfEndpoint(ep.networkId, endpointId).catch(() => undefined);
      if (name !== undefined) return this.adopt(ep, name);
      await this.pause(wait);
      wait = Math.min(wait * 2, 1000);
    }
  }

  /**
   * Asks Docker (once a burst of events is over) how many containers are created on our
   * networks and not started yet: the spare pool makes that many interfaces ahead of their
   * start. After starts it asks later (not while Docker is busy starting) and only to lower it.
   */
  private demandSoon(after: "create" | "start" | "second look"): void {
    const createdOn = this.d.docker.createdOn?.bind(this.d.docker);
    const socket = this.d.config.pluginSocket;
    if (!createdOn || socket === undefined || this.closed) return;
    this.demandRaise ||= after !== "start";
    this.demandQuick ||= after === "create";
    clearTimeout(this.demandTimer);
    this.demandTimer = setTimeout(
      () => {
        const lowerOnly = !this.demandRaise;
        const quick = this.demandQuick;
        this.demandRaise = false;
        this.demandQuick = false;
        createdOn(basename(socket, ".sock")).then(
          (created) => this.closed || this.spares.setDemand(created, { lowerOnly }),
          (e) => this.d.logger.debug({ err: errorText(e) }, "could not ask Docker for created containers"),
        );
        // `docker network connect` on a created container sends no event and calls no driver:
        // networks connected between create and start are seen by a second look.
        if (quick) setTimeout(() => this.demandSoon("second look"), SECOND_LOOK_MS).unref();
      },
      this.demandQuick ? DEMAND_QUIET_MS : START_QUIET_MS,
    );
    this.demandTimer.unref();
  }

  /** Resolves after `ms`, or at once when the driver closes. */
  private pause(ms: number): Promise<void> {
    return sleep(ms, undefined, { signal: this.closing.signal }).catch(() => undefined);
  }

  /**
   * A container started: its endpoints that wait for their container are adopted (one inspect
   * for all of them), and spares are made again.
   */
  private onContainerStart(containerId: string): void {
    // Once Docker is quiet: others may be starting (containers created ahead have spares already).
    this.spares.startsBegan();
    this.spares.refillSoon();
    this.demandSoon("start");
    const waiting = this.d.store.pluginEndpoints
      .values()
      .filter((e) => this.resolving.has(e.endpointId) && e.node === undefined);
    if (waiting.length === 0 || !this.d.docker.endpointsOf) return;
    void this.d.docker
      .endpointsOf(containerId)
      .then(async (c) => {
        if (!c) return;
        const mine = waiting.filter((e) => c.endpoints.includes(e.endpointId));
        for (const ep of mine) await this.adopt(ep, c.name);
      })
      .catch((e) =>
        this.d.logger.warn({ err: errorText(e), container: containerId }, "adopting endpoints failed"),
      );
  }

  /** The endpoint becomes interface NAME:IF of its lab (links waiting for it are wired). */
  private async adopt(ep: PluginEndpointRecord, name: string): Promise<void> {
    if (this.closed || this.adopted.get(ep.endpointId) === name) return;
    const net = this.d.store.pluginNetworks.get(ep.networkId);
    if (!net) return;
    try {
      validateId(name, "node");
    } catch {
      this.d.logger.warn({ container: name }, "container name is not a valid node id; not added to the lab");
      return;
    }
    // A container has one endpoint per network: another one of it there is stale (Docker went
    // away without Leave, e.g. across a dockerd restart) and gives way to this one.
    for (const old of this.d.store.pluginEndpoints.values()) {
      if (old !== ep && old.networkId === ep.networkId && old.node === name) {
        this.d.logger.info({ endpoint: old.endpointId, node: name }, "replacing a stale plugin endpoint");
        await this.removeEndpoint(old);
      }
    }
    await this.endpointLocks.withKey(endpointKey(ep.endpointId), async () => {
      if (this.d.store.pluginEndpoints.get(ep.endpointId) !== ep) return; // deleted meanwhile
      ep.node = name;
      await this.d.store.pluginEndpoints.set(ep.endpointId, ep);
      // Under the lab's lock (its links retag this port); answers on commit (no work for
      // ovs-vswitchd).
      await this.d.locks.withKey(net.lab, () =>
        this.ports.mark(ep.hostPort, { node: name, iface: net.interfaceName }, { wait: false }),
      );
      await this.d.labs.adoptPluginInterface(net.lab, name, this.interfaceOf(net, ep));
      this.d.logger.info(
        { lab: net.lab, node: name, interface: net.interfaceName },
        "plugin interface adopted",
      );
      this.adopted.set(ep.endpointId, name);
    });
  }

  /** The endpoint stops being a lab interface (its links wait for it again). */
  private async forget(ep: PluginEndpointRecord): Promise<void> {
    this.adopted.delete(ep.endpointId);
    this.rejoinRefused.delete(ep.endpointId);
    const net = this.d.store.pluginNetworks.get(ep.networkId);
    if (net && ep.node !== undefined) {
      await this.d.labs.releasePluginInterface(net.lab, ep.node, net.interfaceName, ep.hostPort);
    }
    if (this.d.store.pluginEndpoints.get(ep.endpointId) === ep) {
      ep.node = undefined;
      ep.sandboxKey = undefined;
      await this.d.store.pluginEndpoints.set(ep.endpointId, ep);
    }
  }

  private async removeEndpoint(ep: PluginEndpointRecord): Promise<void> {
    this.made.delete(ep.endpointId);
    await this.endpointLocks.withKey(endpointKey(ep.endpointId), async () => {
      await this.forget(ep);
      this.reaper.add([ep.hostPort]);
      await this.d.store.pluginEndpoints.delete(ep.endpointId);
    });
  }

  private async createVeth(net: PluginNetworkRecord, ep: PluginEndpointRecord): Promise<void> {
    await this.veths.create([
      {
        lab: net.lab,
        hostPort: ep.hostPort,
        peerName: ep.peerName,
        mtu: ep.mtu,
        alias: `${ALIAS_PREFIX}${net.interfaceName}`,
        owner: { network: net.networkId, endpoint: ep.endpointId },
      },
    ]);
    this.made.add(ep.endpointId);
  }

  private async hostPortExists(name: string): Promise<boolean> {
    return (await getLink(name, this.switchNetns())) !== undefined;
  }

  private switchNetns(): NetnsRef | undefined {
    return switchNetnsRef(this.d.config.switchNetns);
  }

  private mustNetwork(id: unknown): PluginNetworkRecord {
    const net = this.d.store.pluginNetworks.get(requireId(id, "NetworkID"));
    if (!net) {
      throw new AgentError(
        "NOT_FOUND",
        `archetype-ovs: network ${String(id)} is unknown to the agent`,
        "remove and create the Docker network again",
      );
    }
    return net;
  }

  private mustEndpoint(req: { EndpointID?: unknown }): PluginEndpointRecord {
    const ep = this.d.store.pluginEndpoints.get(requireId(req.EndpointID, "EndpointID"));
    if (!ep) {
      throw new AgentError(
        "NOT_FOUND",
        `archetype-ovs: endpoint ${String(req.EndpointID)} is unknown to the agent`,
      );
    }
    return ep;
  }
}

/**
 * `-o mtu=N` (or Docker's generic `com.docker.network.driver.mtu`): e.g. the overlay MTU for a
 * slot that is wired across hosts, so attaching it needs no MTU change.
 */
function networkMtu(opts: Record<string, unknown>): number | undefined {
  const text = opts.mtu ?? opts["com.docker.network.driver.mtu"];
  if (text === undefined || text === "") return undefined;
  const mtu = Number(text);
  if (!/^\d+$/.test(String(text)) || mtu < 68 || mtu > 65535) {
    throw new AgentError(
      "BAD_REQUEST",
      `archetype-ovs: option mtu ${JSON.stringify(text)} is not a whole number from 68 to 65535`,
    );
  }
  return mtu;
}

/**
 * A network on Docker's default IPAM would put Docker's addresses (and routes) on lab
 * interfaces, whose nodes configure their own: refused at `docker network create`.
 */
function requireNoAddresses(req: CreateNetworkRequest): void {
  const pools = [...(req.IPv4Data ?? []), ...(req.IPv6Data ?? [])]
    .map((d) => d.Pool)
    .filter((p): p is string => typeof p === "string" && p !== "" && !NULL_POOLS.has(p));
  if (pools.length === 0) return;
  throw new AgentError(
    "BAD_REQUEST",
    `archetype-ovs: Docker's IPAM would give lab interfaces addresses from ${pools.join(", ")}`,
    "create the network with --ipam-driver null (lab nodes configure their own addresses)",
  );
}

/** The agent lock key of plugin port creation and removal (other keys are labs). */
const PORTS_KEY = "docker-plugin/ports";

function endpointKey(id: string): string {
  return `docker-endpoint/${id}`;
}

function requireId(value: unknown, what: string): string {
  if (typeof value === "string" && /^[A-Za-z0-9]{1,128}$/.test(value)) return value;
  throw new AgentError(
    "BAD_REQUEST",
    `archetype-ovs: ${what} ${JSON.stringify(value)} is missing or not an id`,
  );
}

/** The text Docker shows a user: message, then the hint. */
export function errorText(e: unknown): string {
  if (isAgentError(e)) return e.hint ? `${e.message} (${e.hint})` : e.message;
  return e instanceof Error ? e.message : String(e);
}

/** A controller whose signal many waits may share without Node's leak warning (10 by default). */
function withoutListenerLimit(c: AbortController): AbortController {
  setMaxListeners(0, c.signal);
  return c;
}
