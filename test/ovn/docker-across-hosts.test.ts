import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Agent, createAgent } from "../../src/agent.js";
import { PORT_MARK } from "../../src/backends/ovn/marks.js";
import type { OvnBackend } from "../../src/backends/ovn/ovn-backend.js";
import { isAgentError } from "../../src/common/errors.js";
import { silentLogger } from "../../src/common/log.js";
import type { AgentConfig } from "../../src/config/config.js";
import { getLink } from "../../src/link/index.js";
import { pluginPortNames } from "../../src/model/derived-names.js";
import type { LabView } from "../../src/model/views.js";
import {
  containerPings,
  DockerResources,
  docker,
  dockerUnavailable,
  pluginSocket,
  runLabContainer,
} from "../harness/docker.js";
import { uniqueName } from "../harness/netns.js";
import { type OvnHosts, ovnAgentConfig, startOvnHosts, until } from "../harness/ovn-hosts.js";

/**
 * Docker containers in one lab across two simulated OVN hosts: each host's agent (ovn backend)
 * serves its own plugin socket, so one dockerd stands in for both hosts' (driver A's containers
 * are wired on host hv1, driver B's on hv2). Proven with pings between the containers.
 */
const skip = await dockerUnavailable();
const HOSTS = ["hv1", "hv2"] as const;
const LAB = uniqueName("odk");
const res = new DockerResources();
let ovn: OvnHosts;
const agents: Agent[] = [];
const configs: AgentConfig[] = [];
const stateDirs: string[] = [];
const sockets = [pluginSocket(), pluginSocket()];
/** Container names (node ids), one per host. */
const ca = uniqueName("ca");
const cb = uniqueName("cb");
const cc = uniqueName("cc");
const cd = uniqueName("cd");
const nets = [uniqueName("odkna"), uniqueName("odknb")];

const labs = (i: number) => agents[i]!.ovnLabs!;
const backend = (i: number) => agents[i]!.services.backend as OvnBackend;

async function addressed(container: string, ip: string): Promise<void> {
  await docker(["exec", container, "ip", "addr", "add", `${ip}/24`, "dev", "eth1"]);
  await docker(["exec", container, "ip", "link", "set", "eth1", "up"]);
}

function nodeOf(v: LabView | undefined, name: string) {
  return v?.nodes.find((n) => n.name === name);
}

function viewOf(i: number): LabView | undefined {
  return labs(i)
    .listLabs()
    .some((l) => l.lab === LAB)
    ? labs(i).getLab(LAB)
    : undefined;
}

/** Plugin ports on a host's br-int. (Views: viewOf, as another agent's NB cache may lag a change.) */
function pluginPorts(i: number): string[] {
  return backend(i)
    .ovs.ports()
    .filter((p) => p.external_ids[PORT_MARK.kind] === PORT_MARK.pluginKind)
    .map((p) => p.name);
}

describe("Docker containers in one lab across OVN hosts", { skip }, () => {
  before(async () => {
    ovn = await startOvnHosts({ hosts: 2, configureChassis: false });
    for (const [i, h] of ovn.hosts.entries()) {
      const dir = await mkdtemp(join(tmpdir(), "archnet-ovnd-"));
      stateDirs.push(dir);
      const config = { ...ovnAgentConfig(ovn, h, dir), pluginSocket: sockets[i]!.socket };
      configs.push(config);
      agents.push(await createAgent(config, { logger: silentLogger() }));
    }
    await until(
      "both chassis in SB and br-int on both hosts",
      () =>
        HOSTS.every((h) => backend(0).knownHosts().has(h) && backend(1).knownHosts().has(h)) &&
        [0, 1].every((i) => backend(i).ovs.bridgeByName("br-int") !== undefined),
      60_000,
    );
    for (const [i, net] of nets.entries())
      await res.createNetwork(sockets[i]!.driver, net, { lab_id: LAB, interface_name: "eth1" });
  });

  after(async () => {
    await res.cleanup();
    for (const a of agents) await a.close().catch(() => undefined);
    await ovn?.close();
    for (const d of stateDirs) await rm(d, { recursive: true, force: true });
  });

  test("a container on each host joins the lab; a link between them carries pings across hosts", async () => {
    for (const [i, c] of [ca, cb].entries()) {
      res.container(c);
      await runLabContainer(c, nets[i]!);
    }
    // Any agent shows both containers, each on its host (no lab body declared them).
    await until(
      "both containers in the lab, seen from hv1's agent",
      () => {
        const v = viewOf(0);
        return v !== undefined && nodeOf(v, ca) !== undefined && nodeOf(v, cb) !== undefined;
      },
      60_000,
    );
    const joined = labs(0).getLab(LAB);
    for (const [c, host] of [
      [ca, "hv1"],
      [cb, "hv2"],
    ] as const) {
      const n = nodeOf(joined, c)!;
      assert.equal(n.origin, "plugin");
      assert.equal(n.host, host);
      assert.equal(n.netns, null);
      assert.deepEqual(
        n.interfaces.map((i) => i.name),
        ["eth1"],
      );
      // The default MTU leaves room for Geneve (a link may cross hosts).
      assert.equal(n.interfaces[0]!.mtu, 1442);
    }
    // The nodes' side is ready before the link is made, as a node's own configuration would be.
    await addressed(ca, "198.19.30.1");
    await addressed(cb, "198.19.30.2");
    // A declarative PUT from the other host: containers are not the body's, its links name them.
    const put = await labs(1).putLab(LAB, {
      nodes: [],
      links: [{ id: "x", a: `${ca}:eth1`, b: `${cb}:eth1` }],
    });
    assert.deepEqual(put.changes.links_added, ["x"]);
    assert.deepEqual(put.changes.nodes_removed, []);
    // The userspace datapath resolves a Geneve peer's MAC itself and drops the frame that finds
    // its tunnel neighbour cache without it (seen here: `tnl/neigh/show` empty before the first
    // ping, filled after it; ARP retried 1 s later): the first contact of two fresh simulated
    // hosts may take ARP's retry. The kernel datapath resolves through the host's stack.
    await until("a ping across hosts", () => containerPings(ca, "198.19.30.2"), 30_000);
    assert.ok(await containerPings(ca, "198.19.30.2"), "pings once the path is known");
    const v = labs(0).getLab(LAB);
    assert.equal(v.links.find((l) => l.id === "x")?.state, "up");
    for (const n of v.nodes) assert.equal(n.interfaces[0]!.binding?.up, true, `${n.name} bound`);
  });

  test("a lab body may not declare a container; a link to an interface nobody has is refused", async () => {
    const before = JSON.stringify(labs(0).getLab(LAB));
    await assert.rejects(
      labs(0).putLab(LAB, {
        nodes: [{ name: ca, netns: "nowhere", interfaces: [{ name: "eth1" }] }],
        links: [{ id: "x", a: `${ca}:eth1`, b: `${cb}:eth1` }],
      }),
      (e: unknown) => isAgentError(e) && e.code === "CONFLICT" && /Docker container/.test(e.message),
    );
    await assert.rejects(
      labs(0).putLab(LAB, {
        nodes: [],
        links: [
          { id: "x", a: `${ca}:eth1`, b: `${cb}:eth1` },
          { id: "y", a: `${ca}:eth9`, b: "ghost:eth1" },
        ],
      }),
      (e: unknown) => isAgentError(e) && e.code === "BAD_REQUEST",
    );
    assert.equal(JSON.stringify(labs(0).getLab(LAB)), before);
  });

  test("a stopped container's link waits for it (pending) and carries traffic again once it runs", async () => {
    await docker(["stop", "-t", "0", cb]);
    await until(
      "cb out of the lab, its link pending",
      () => {
        const v = viewOf(0);
        return v !== undefined && !nodeOf(v, cb) && v.links.find((l) => l.id === "x")?.state === "pending";
      },
      60_000,
    );
    const waiting = labs(0).getLab(LAB);
    assert.deepEqual(
      waiting.links.map((l) => [l.id, l.a, l.b]),
      [["x", `${ca}:eth1`, `${cb}:eth1`]],
    );
    // The declarative body that made the link is still accepted while its end is away.
    const again = await labs(0).putLab(LAB, {
      nodes: [],
      links: [{ id: "x", a: `${ca}:eth1`, b: `${cb}:eth1` }],
    });
    assert.deepEqual(again.changes.links_added, []);
    await docker(["start", cb]);
    await until(
      "cb back in the lab, its link up",
      () => (viewOf(1)?.links ?? []).find((l) => l.id === "x")?.state === "up",
      60_000,
    );
    await addressed(cb, "198.19.30.2");
    // The container came back with another MAC: ca's neighbour entry is stale.
    await docker(["exec", ca, "ip", "neigh", "flush", "dev", "eth1"]);
    await until("ping across hosts after the restart", () => containerPings(ca, "198.19.30.2"), 30_000);
  });

  test("hv2's agent restarted: the container stays in the lab and its link carries traffic, no API call", async () => {
    await agents[1]!.close();
    agents[1] = await createAgent(configs[1]!, { logger: silentLogger() });
    await agents[1]!.settled();
    const v = labs(1).getLab(LAB);
    assert.equal(nodeOf(v, cb)?.origin, "plugin");
    assert.equal(v.links.find((l) => l.id === "x")?.state, "up");
    await until(
      "ping across hosts after the agent's restart",
      () => containerPings(ca, "198.19.30.2"),
      30_000,
    );
  });

  test("cleanup removes a plugin port on br-int whose endpoint nobody knows, and only that", async () => {
    const stray = pluginPortNames("0123456789abcdef");
    await backend(1).dockerPorts.createDetached([
      {
        lab: LAB,
        hostPort: stray.hostPort,
        peerName: stray.peer,
        mtu: 1442,
        alias: "archetype:eth1",
        owner: {},
      },
    ]);
    const found = await agents[1]!.cleanup.audit();
    assert.deepEqual(
      found.filter((o) => o.kind === "plugin_endpoint").map((o) => o.name),
      [stray.hostPort],
    );
    await agents[1]!.cleanup.run();
    assert.deepEqual(pluginPorts(1).includes(stray.hostPort), false);
    assert.equal(await getLink(stray.peer), undefined);
    assert.equal(await getLink(stray.hostPort, { name: ovn.hosts[1]!.netns }), undefined);
    // The container's port is still there and bound: its link carries traffic.
    assert.ok(await containerPings(ca, "198.19.30.2"));
  });

  test("a lab deleted and put again from the other host takes its containers back; a body links containers ahead", async () => {
    await labs(0).deleteLab(LAB);
    await until("the lab gone for hv2's agent", () => viewOf(1) === undefined);
    assert.equal(await containerPings(ca, "198.19.30.2"), false, "no lab: no link");
    // cc and cd are not running: a link may name them, as every host knows the lab's eth1 slot.
    const body = {
      nodes: [],
      links: [
        { id: "x", a: `${ca}:eth1`, b: `${cb}:eth1` },
        { id: "y", a: `${cc}:eth1`, b: `${cd}:eth1` },
      ],
    };
    const put = await labs(1).putLab(LAB, body);
    assert.deepEqual(put.changes.links_added.sort(), ["x", "y"]);
    await until(
      "ca and cb back in the lab, x up",
      () => (viewOf(0)?.links ?? []).find((l) => l.id === "x")?.state === "up",
      60_000,
    );
    assert.equal((viewOf(0)?.links ?? []).find((l) => l.id === "y")?.state, "pending");
    await until("ping across x again", () => containerPings(ca, "198.19.30.2"), 30_000);
    for (const [c, net, ip] of [
      [cc, nets[0]!, "198.19.31.1"],
      [cd, nets[1]!, "198.19.31.2"],
    ] as const) {
      await runLabContainer(res.container(c), net);
      await until(`${c} in the lab`, () => nodeOf(viewOf(0), c) !== undefined, 60_000);
      await addressed(c, ip);
    }
    await until("y up", () => (viewOf(1)?.links ?? []).find((l) => l.id === "y")?.state === "up", 60_000);
    await until("ping across y", () => containerPings(cc, "198.19.31.2"), 30_000);
    assert.equal(await containerPings(cc, "198.19.30.2"), false, "y and x are apart");
  });

  test("removing the containers and networks leaves no port in NB or on either br-int", async () => {
    for (const c of [ca, cb, cc, cd]) await res.removeContainer(c);
    await until(
      "no container in the lab",
      () => (viewOf(0)?.nodes.length ?? 0) === 0 && (viewOf(1)?.nodes.length ?? 0) === 0,
      60_000,
    );
    for (const n of nets) await res.removeNetwork(n);
    await until("no Docker slots in NB", () => backend(0).nbState().dockerSlots.size === 0);
    await until(
      "no plugin port on either br-int",
      () => pluginPorts(0).length + pluginPorts(1).length === 0,
      60_000,
    );
    // The lab keeps its link (its ends may come back); deleting it leaves nothing.
    await labs(0).deleteLab(LAB);
    await until("the lab gone for hv2's agent too", () => viewOf(1) === undefined);
  });
});
