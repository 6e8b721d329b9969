import { AgentError } from "../../common/errors.js";
import { createVethsInHost, deleteLinks, disableTxOffload } from "../../link/index.js";
import type { NetnsRef } from "../../link/netns.js";
import { eqUuid, mapSetKeys, mutate, type OvsdbClient } from "../../ovsdb/index.js";
import { dockerOwnerIds } from "../docker-owner.js";
import type { DetachedEndpoint, DockerPortOwner, DockerPortsCapability } from "../network-backend.js";
import { plugOps, unplugOps } from "./br-int.js";
import { INTEGRATION_BRIDGE, PORT_MARK } from "./marks.js";

/**
 * Docker's endpoints with the ovn backend: veths whose host end is a port of br-int without an
 * `iface-id` (ovn-controller forwards nothing of a port it does not know: isolated) and whose
 * other end Docker moves into the container. Once the container is a node of a lab, the lab's
 * logical port names it and HostPorts binds it (sets `iface-id`); the veth stays the plugin's.
 */
export class OvnDockerPorts implements DockerPortsCapability {
  constructor(
    private readonly d: {
      ovs: () => OvsdbClient;
      hostNs: NetnsRef | undefined;
      datapath: "system" | "netdev";
    },
  ) {}

  async createDetached(eps: readonly DetachedEndpoint[]): Promise<void> {
    if (eps.length === 0) return;
    const ovs = this.d.ovs();
    const bridge = ovs.bridgeByName(INTEGRATION_BRIDGE);
    if (!bridge) {
      throw new AgentError(
        "OVS_UNREACHABLE",
        `${INTEGRATION_BRIDGE} does not exist on this host yet: ovn-controller makes it once it reached the southbound database`,
        "check the host with: archnet host check --backend ovn",
      );
    }
    await createVethsInHost(
      eps.map((ep) => ({ host: ep.hostPort, peer: ep.peerName, mtu: ep.mtu, alias: ep.alias })),
      { netns: this.d.hostNs },
    );
    try {
      const now = String(Date.now());
      const ops = plugOps(
        bridge.uuid,
        eps.map((ep) => ({
          name: ep.hostPort,
          portIds: {
            [PORT_MARK.kind]: PORT_MARK.pluginKind,
            [PORT_MARK.lab]: ep.lab,
            [PORT_MARK.alias]: ep.alias,
            [PORT_MARK.created]: now,
            ...dockerOwnerIds(ep.owner),
          },
        })),
      );
      // The userspace datapath does not fill in checksums a veth left to the hardware.
      const offload =
        this.d.datapath === "netdev"
          ? disableTxOffload(eps.map((ep) => ({ dev: ep.peerName, netns: undefined })))
          : undefined;
      const [o, p] = await Promise.allSettled([offload, ovs.transact(ops, { waitApplied: false })]);
      if (p.status === "rejected") throw p.reason;
      if (o.status === "rejected") {
        await this.unplug(eps.map((ep) => ep.hostPort));
        throw o.reason;
      }
    } catch (e) {
      await deleteLinks(
        eps.map((ep) => ep.hostPort),
        { ignoreMissing: true, netns: this.d.hostNs },
      ).catch(() => undefined);
      throw e;
    }
  }

  async removeDetached(hostPorts: readonly string[]): Promise<void> {
    if (hostPorts.length === 0) return;
    await this.unplug(hostPorts);
    await deleteLinks(hostPorts, { ignoreMissing: true, netns: this.d.hostNs });
  }

  /** Only these owner keys are written, in place: `iface-id` (on the Interface) is HostPorts'. */
  async mark(hostPort: string, owner: DockerPortOwner, opts: { wait?: boolean } = {}): Promise<boolean> {
    const p = this.pluginPort(hostPort);
    if (!p) return false;
    const ids = mapSetKeys("external_ids", dockerOwnerIds(owner));
    await this.d.ovs().transact([mutate("Port", [eqUuid(p.uuid)], ids)], { waitApplied: opts.wait ?? true });
    return true;
  }

  /**
   * Takes the ports off br-int before their veths go: the kernel datapath is slow to close a
   * port whose device vanished under it.
   */
  private async unplug(hostPorts: readonly string[]): Promise<void> {
    const ovs = this.d.ovs();
    const bridge = ovs.bridgeByName(INTEGRATION_BRIDGE);
    const rows = hostPorts.map((h) => this.pluginPort(h)).filter((p) => p !== undefined);
    if (!bridge || rows.length === 0) return;
    await ovs.transact(
      unplugOps(
        bridge.uuid,
        rows.map((p) => p.uuid),
      ),
      { waitApplied: this.d.datapath === "system" },
    );
  }

  private pluginPort(hostPort: string) {
    const p = this.d.ovs().portByName(hostPort);
    return p?.external_ids[PORT_MARK.kind] === PORT_MARK.pluginKind ? p : undefined;
  }
}
