import { run } from "../../src/common/exec.js";

/**
 * The baseline: what the reference Python agent does, one `ip` or `ovs-vsctl` process per
 * operation, against the same private OVS and switch namespace as the agent. It is kept
 * generous (each step is the fewest processes a per-operation design can use: `ip -n` instead
 * of `ip netns exec`, rename and up in one call, a port added straight with its link's tag
 * instead of isolated then retagged), so the ratios against it are lower bounds.
 */
export interface BaselineIface {
  /** Host end, stays in the switch namespace and becomes the OVS port. */
  host: string;
  /** Temporary name of the node end before it is moved and renamed. */
  tmp: string;
  netns: string;
  name: string;
  mtu: number;
  tag: number;
}

export class PerProcessSwitch {
  constructor(
    private readonly remote: string,
    private readonly switchNetns: string,
    private readonly bridge: string,
  ) {}

  /** `ovs-vsctl` waits for ovs-vswitchd to apply the change, like the agent does. */
  vsctl(args: readonly string[]): Promise<unknown> {
    return run("ovs-vsctl", [`--db=${this.remote}`, "--timeout=20", ...args], { timeoutMs: 30_000 });
  }

  ip(netns: string, args: readonly string[]): Promise<unknown> {
    return run("ip", ["-n", netns, ...args]);
  }

  /**
   * Per interface: create the veth, move and rename the node end, bring both up, add the port.
   * Stops after `budgetMs` and returns how many it did (the caller extrapolates).
   */
  async provision(ifaces: readonly BaselineIface[], budgetMs = Infinity): Promise<number> {
    const t0 = performance.now();
    let done = 0;
    for (const f of ifaces) {
      if (performance.now() - t0 > budgetMs) break;
      done++;
      const mtu = String(f.mtu);
      await this.ip(this.switchNetns, [
        "link",
        "add",
        f.host,
        "mtu",
        mtu,
        "type",
        "veth",
        "peer",
        "name",
        f.tmp,
      ]);
      await this.ip(this.switchNetns, ["link", "set", f.tmp, "netns", f.netns]);
      await this.ip(f.netns, ["link", "set", f.tmp, "name", f.name, "mtu", mtu, "up"]);
      await this.ip(this.switchNetns, ["link", "set", f.host, "up"]);
      await this.vsctl(["add-port", this.bridge, f.host, `tag=${f.tag}`]);
    }
    return done;
  }

  /** Hot connect or disconnect of one link: `ovs-vsctl set port X tag=N` for each end. */
  async retagPair(a: string, b: string, tag: number): Promise<void> {
    await this.vsctl(["set", "port", a, `tag=${tag}`]);
    await this.vsctl(["set", "port", b, `tag=${tag}`]);
  }

  /** Per interface: remove the port, then delete the veth (its peer goes with it). */
  async teardown(hosts: readonly string[], budgetMs = Infinity): Promise<number> {
    const t0 = performance.now();
    let done = 0;
    for (const h of hosts) {
      if (performance.now() - t0 > budgetMs) break;
      done++;
      await this.vsctl(["--if-exists", "del-port", this.bridge, h]);
      await this.ip(this.switchNetns, ["link", "del", h]);
    }
    return done;
  }
}
