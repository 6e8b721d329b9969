import assert from "node:assert/strict";
import { test } from "node:test";
import {
  CarrierFollow,
  type CarrierSource,
  type TunnelBfd,
} from "../../src/backends/ovs/carrier/carrier-follow.js";
import { OWNER } from "../../src/backends/ovs/switch/ownership.js";
import { silentLogger } from "../../src/common/log.js";
import type { InterfaceRow, PortRow, Row } from "../../src/ovsdb/index.js";

/**
 * The switch as the monitor shows it, with the kernel's order of events: a veth set admin up
 * reports carrier a moment later (linkwatch), so OVSDB first shows admin up without carrier.
 */
class FakeSwitch implements CarrierSource {
  readonly ifaces = new Map<string, InterfaceRow>();
  readonly ports_: PortRow[] = [];
  follow!: CarrierFollow;
  /** Set-ups whose carrier has not been reported yet (the kernel's linkwatch delay). */
  readonly pendingCarrier: string[] = [];

  link(lab: string, link: string, ...ends: string[]): void {
    for (const name of ends) {
      this.ifaces.set(name, {
        uuid: name,
        name,
        type: "",
        options: {},
        external_ids: {},
        ofport: 1,
        link_state: "up",
        admin_state: "up",
        statistics: {},
        bfd: {},
        bfd_status: {},
      });
      this.ports_.push({
        uuid: `p-${name}`,
        name,
        interfaces: [name],
        external_ids: {
          [OWNER.kind]: "node",
          [OWNER.lab]: lab,
          [OWNER.link]: link,
        },
        other_config: {},
      } as unknown as PortRow);
    }
  }

  /** An overlay link: the node's port carries the link as its overlay mark, the tunnel beside it. */
  overlay(lab: string, link: string, nodeEnd: string, tunnel: string): void {
    this.link(lab, link, nodeEnd, tunnel);
    const [node, vx] = this.ports_.slice(-2) as [PortRow, PortRow];
    node.external_ids = { [OWNER.kind]: "node", [OWNER.lab]: lab, [OWNER.overlay]: link };
    vx.external_ids = { [OWNER.kind]: "overlay", [OWNER.lab]: lab, [OWNER.link]: link };
    this.ifaces.get(tunnel)!.type = "vxlan";
  }

  /** The agent's OVSDB write of a tunnel's BFD configuration. */
  async setBfd(tunnels: readonly TunnelBfd[]): Promise<void> {
    for (const t of tunnels) this.report(t.uuid, { bfd: t.bfd });
  }

  interfaceByName(name: string): InterfaceRow | undefined {
    return this.ifaces.get(name);
  }

  ports(): PortRow[] {
    return this.ports_;
  }

  /** ovs-vswitchd's report of a device's state: a cache change the follower sees. */
  report(name: string, state: Partial<InterfaceRow>): void {
    const old = this.ifaces.get(name)!;
    const now = { ...old, ...state };
    if (JSON.stringify(now) === JSON.stringify(old)) return;
    this.ifaces.set(name, now);
    this.follow.onChange({
      table: "Interface",
      uuid: name,
      kind: "modify",
      old: rawRow(old),
      new: rawRow(now),
    });
  }

  /** The agent's `ip link set`: admin state at once, carrier only when `carrierLater` is flushed. */
  async setUp(names: readonly string[], up: boolean): Promise<void> {
    for (const n of names) {
      if (up) {
        this.report(n, { admin_state: "up", link_state: "down" });
        this.pendingCarrier.push(n);
      } else this.report(n, { admin_state: "down", link_state: "down" });
    }
  }

  /** The kernel reports carrier of these set-ups (all by default); the others stay pending. */
  carrierArrives(only?: readonly string[]): void {
    const now = this.pendingCarrier.filter((n) => !only || only.includes(n));
    this.pendingCarrier.splice(
      0,
      this.pendingCarrier.length,
      ...this.pendingCarrier.filter((n) => !now.includes(n)),
    );
    for (const n of now) this.report(n, { link_state: "up" });
  }
}

/** The columns carrier follow reads from a change, as the monitor's raw row has them. */
function rawRow(i: InterfaceRow): Row {
  return { _uuid: i.uuid, name: i.name, admin_state: i.admin_state ?? "", link_state: i.link_state ?? "" };
}

const noBfd = async () => {};

function setup(): { sw: FakeSwitch; follow: CarrierFollow } {
  const sw = new FakeSwitch();
  sw.link("lab", "l1", "hA", "hB");
  const follow = new CarrierFollow(sw, (names, up) => sw.setUp(names, up), noBfd, silentLogger());
  sw.follow = follow;
  follow.setDesired(["hA", "hB"], "up");
  follow.start();
  return { sw, follow };
}

test("carrier up: the kernel's late carrier report is not a dead end, so nothing flaps back down", async () => {
  const { sw, follow } = setup();
  // The API pulls A's cable: A down, B held down (peer_down).
  follow.setDesired(["hA"], "down");
  await sw.setUp(["hA"], false);
  await follow.idle();
  assert.equal(sw.ifaces.get("hB")!.admin_state, "down");
  assert.equal(follow.operState("hB"), "peer_down");
  sw.carrierArrives();

  // Plugged back in: A up (carrier not reported yet), B released (carrier not reported yet).
  follow.setDesired(["hA"], "up");
  await sw.setUp(["hA"], true);
  await follow.idle();
  assert.equal(sw.ifaces.get("hB")!.admin_state, "up", "B released");
  // In the window before the kernel reports carrier, neither end may be taken for dead.
  await follow.idle();
  assert.equal(sw.ifaces.get("hA")!.admin_state, "up", "A not held down by B's late carrier");
  assert.equal(sw.ifaces.get("hB")!.admin_state, "up", "B not held down by A's late carrier");
  sw.carrierArrives();
  await follow.idle();
  assert.deepEqual([follow.operState("hA"), follow.operState("hB")], ["up", "up"]);
});

test("an end set up whose carrier never comes is its node's own down, after the grace", async () => {
  const sw = new FakeSwitch();
  sw.link("lab", "l1", "hA", "hB");
  const follow = new CarrierFollow(sw, (names, up) => sw.setUp(names, up), noBfd, silentLogger(), 200);
  sw.follow = follow;
  follow.setDesired(["hA", "hB"], "up");
  follow.start();
  follow.setDesired(["hA"], "down");
  await sw.setUp(["hA"], false);
  await follow.idle();
  follow.setDesired(["hA"], "up");
  await sw.setUp(["hA"], true); // A's node has its end down: carrier never comes
  await follow.idle();
  sw.carrierArrives(["hB"]); // B, released, has carrier: its node is fine
  const deadline = Date.now() + 10_000;
  while (sw.ifaces.get("hB")!.admin_state !== "down" && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 10));
  assert.equal(follow.operState("hB"), "peer_down", "B held once A's grace is over");
  assert.equal(follow.operState("hA"), "no_carrier");
});

test("overlay: cpath_down follows the local node's end; the far end's Concatenated Path Down holds it", async () => {
  const sw = new FakeSwitch();
  sw.overlay("lab", "l1", "hN", "vx1");
  const follow = new CarrierFollow(
    sw,
    (names, up) => sw.setUp(names, up),
    (t) => sw.setBfd(t),
    silentLogger(),
  );
  sw.follow = follow;
  follow.setDesired(["hN"], "up");
  follow.start();
  await follow.idle();
  const bfd = () => sw.ifaces.get("vx1")!.bfd;
  assert.deepEqual(bfd(), { enable: "true", cpath_down: "false" });

  sw.report("hN", { link_state: "down" }); // the local node shuts its port
  await follow.idle();
  assert.equal(bfd().cpath_down, "true");
  assert.equal(follow.operState("hN"), "no_carrier");
  sw.report("hN", { link_state: "up" });
  await follow.idle();
  assert.equal(bfd().cpath_down, "false");

  const far = { state: "up", forwarding: "false", remote_diagnostic: "Concatenated Path Down" };
  sw.report("vx1", { bfd_status: far });
  await follow.idle();
  assert.equal(sw.ifaces.get("hN")!.admin_state, "down");
  assert.equal(follow.operState("hN"), "peer_down");
  assert.equal(bfd().cpath_down, "false", "the agent's own hold is not a dead end: no loop");

  // The far tunnel removed: the session goes down and keeps the last remote diagnostic.
  sw.report("vx1", { bfd_status: { ...far, state: "down" } });
  await follow.idle();
  assert.equal(sw.ifaces.get("hN")!.admin_state, "up", "released");
  sw.carrierArrives();
  await follow.idle();
  assert.equal(follow.operState("hN"), "up");
  assert.equal(bfd().cpath_down, "false");
});
