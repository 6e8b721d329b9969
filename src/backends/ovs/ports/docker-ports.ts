import { createVethsInHost, deleteLinks, disableTxOffload } from "../../../link/index.js";
import { eqUuid, mapSetKeys, mutate } from "../../../ovsdb/index.js";
import { dockerOwnerIds } from "../../docker-owner.js";
import type { DetachedEndpoint, DockerPortOwner, DockerPortsCapability } from "../../network-backend.js";
import type { OvsSwitch } from "../switch/ovs-switch.js";
import { OWNER } from "../switch/ownership.js";

/**
 * Docker's endpoints: veths made in the switch's namespace with their ports (Docker moves the
 * peer into the container), and the marks that say which network, endpoint and node own them.
 */
export class DockerPorts implements DockerPortsCapability {
  constructor(private readonly sw: OvsSwitch) {}

  /**
   * Callers hold one of the agent's locks (src/plugin does): a reconcile or cleanup pass
   * (exclusive) rebuilds the VLAN allocator from OVSDB and would forget the isolated VLANs taken
   * here before their ports are committed, handing them out again.
   */
  async createDetached(eps: readonly DetachedEndpoint[]): Promise<void> {
    if (eps.length === 0) return;
    const isolated = this.sw.vlans.allocateMany("isolated", eps.length); // all or none
    try {
      await createVethsInHost(
        eps.map((ep) => ({ host: ep.hostPort, peer: ep.peerName, mtu: ep.mtu, alias: ep.alias })),
        { netns: this.sw.hostNs },
      );
      // Container start may wait on this: the offload change and the ports go in parallel, and
      // the ports need not be applied by ovs-vswitchd yet (linking them waits for that).
      const offload =
        this.sw.datapath === "netdev"
          ? disableTxOffload(eps.map((ep) => ({ dev: ep.peerName, netns: undefined })))
          : undefined;
      const now = String(Date.now());
      const ports = this.sw.addPortRows(
        eps.map((ep, k) => ({
          name: ep.hostPort,
          tag: isolated[k]!,
          externalIds: {
            alias: ep.alias,
            ...dockerOwnerIds(ep.owner),
            [OWNER.kind]: "plugin",
            [OWNER.lab]: ep.lab,
            ...this.sw.isolationMarks(isolated[k]!),
            [OWNER.created]: now,
          },
        })),
        { waitApplied: false },
      );
      const [o, p] = await Promise.allSettled([offload, ports]);
      if (p.status === "rejected") throw p.reason;
      if (o.status === "rejected") {
        await this.sw.takeOffBridge(eps.map((ep) => this.sw.port(ep.hostPort)));
        throw o.reason;
      }
    } catch (e) {
      for (const v of isolated) this.sw.vlans.release(v);
      await deleteLinks(
        eps.map((ep) => ep.hostPort),
        { ignoreMissing: true, netns: this.sw.hostNs },
      ).catch(() => undefined);
      throw e;
    }
  }

  async removeDetached(hostPorts: readonly string[]): Promise<void> {
    if (hostPorts.length === 0) return;
    await this.sw.removePortRows(hostPorts.map((h) => this.sw.port(h)));
    await deleteLinks(hostPorts, { ignoreMissing: true, netns: this.sw.hostNs });
  }

  /**
   * Sets external_ids of a plugin port (its endpoint when a spare is claimed, its container
   * after Join); false when the port is not on the bridge. `wait: false` answers on commit.
   * Only these keys are written, in place (a mutation, not the cached map): the tag and the
   * other marks stay whatever a concurrent retag made them.
   */
  async mark(hostPort: string, owner: DockerPortOwner, opts: { wait?: boolean } = {}): Promise<boolean> {
    const p = this.sw.port(hostPort);
    if (!p) return false;
    const ids = mapSetKeys("external_ids", dockerOwnerIds(owner));
    await this.sw.transact([mutate("Port", [eqUuid(p.uuid)], ids)], { waitApplied: opts.wait ?? true });
    return true;
  }
}
