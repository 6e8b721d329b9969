import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, test } from "node:test";
import { OWNER } from "../../src/backends/ovs/switch/ownership.js";
import { silentLogger } from "../../src/common/log.js";
import type { ContainerAction, DockerEngine } from "../../src/plugin/docker-engine.js";
import { NetworkDriver } from "../../src/plugin/network-driver.js";
import { GENERIC_OPTION } from "../../src/plugin/protocol.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { NetnsPool, nsExec, uniqueName } from "../harness/netns.js";

/**
 * Plugin port work (veths made, spares claimed, endpoints marked with their container) racing
 * the lab's links and full reconciles, on a real OVS: afterwards no two unlinked ports share a
 * VLAN and every mark is there. A small isolated VLAN range makes the allocator wrap around, so
 * a VLAN it forgot (a reconcile rebuilding it mid-way) would be handed out twice.
 */
const CONTAINERS = 10;
const SLOTS = 4;

let t: TestAgent;
const pool = new NetnsPool("ppr");

before(async () => {
  const base = (await import("../../src/config/config.js")).defaultConfig().vlan;
  t = await startTestAgent({
    pluginSpares: 2,
    // Nothing here is stale: the cleanup passes below must find nothing to remove.
    cleanupGraceS: 600,
    vlan: { ...base, isolated: { min: 1000, max: 1000 + CONTAINERS * SLOTS + 25 } },
  });
});
after(async () => {
  await t?.close();
  await pool.destroyAll();
});

/** Docker as far as the driver asks it: containers by endpoint, start events on demand. */
class FakeDocker implements DockerEngine {
  readonly byEndpoint = new Map<string, string>();
  private listener: ((id: string, action: ContainerAction) => void) | undefined;
  containerOfEndpoint(_net: string, ep: string) {
    return Promise.resolve(this.byEndpoint.get(ep));
  }
  endpointsOf(name: string) {
    const endpoints = [...this.byEndpoint].filter(([, c]) => c === name).map(([e]) => e);
    return Promise.resolve(endpoints.length > 0 ? { name, endpoints } : undefined);
  }
  watchContainers(l: (id: string, action: ContainerAction) => void) {
    this.listener = l;
    return () => {
      this.listener = undefined;
    };
  }
  start(name: string) {
    this.listener?.(name, "start");
  }
}

/** A plugin driver on the test agent, as the agent makes it. */
function driverOn(docker: DockerEngine): NetworkDriver {
  const a = t.agent;
  return new NetworkDriver({
    config: t.config,
    store: a.store,
    backend: a.services.backend,
    labs: a.labs,
    locks: a.locks,
    logger: silentLogger(),
    defaultMtu: t.config.localMtu,
    docker,
    resolveTimeoutMs: 60_000,
  });
}

interface PortJson {
  name: string;
  tag: number | undefined;
  ids: Record<string, string>;
}

async function ports(): Promise<PortJson[]> {
  const out = await t.ovs.vsctl(["--format=json", "--columns=name,tag,external_ids", "list", "Port"]);
  const doc = JSON.parse(out) as { data: [string, unknown, [string, [string, string][]]][] };
  return doc.data.map(([name, tag, ids]) => ({
    name,
    tag: typeof tag === "number" ? tag : undefined,
    ids: Object.fromEntries(ids[1]),
  }));
}

function sharedVlans(all: readonly PortJson[]): string[] {
  const byTag = new Map<number, PortJson[]>();
  for (const p of all) if (p.tag !== undefined) byTag.set(p.tag, [...(byTag.get(p.tag) ?? []), p]);
  const bad: string[] = [];
  for (const [tag, ps] of byTag) {
    const links = new Set(ps.map((p) => p.ids[OWNER.link] ?? `unlinked ${p.name}`));
    if (ps.length > 1 && (links.size > 1 || ps.length > 2))
      bad.push(`VLAN ${tag}: ${ps.map((p) => `${p.name}(${p.ids[OWNER.link] ?? "-"})`).join(" ")}`);
  }
  return bad;
}

test("plugin ports made, claimed and marked while links and reconciles run: VLANs unique, marks kept", async () => {
  const lab = uniqueName("lab");
  const docker = new FakeDocker();
  const a = t.agent;
  const driver = driverOn(docker);
  const call = (name: string, body: unknown) => driver.handle(`NetworkDriver.${name}`, body);
  const nets: string[] = [];
  try {
    // Namespace nodes whose links come and go meanwhile.
    const nss = await pool.create(2);
    for (const [i, ns] of nss.entries())
      await a.labs.addInterfaces(lab, `r${i}`, {
        netns: ns,
        interfaces: [{ name: "eth1" }, { name: "eth2" }, { name: "eth3" }],
      });
    for (let s = 1; s <= SLOTS; s++) {
      const id = randomBytes(16).toString("hex");
      nets.push(id);
      await call("CreateNetwork", {
        NetworkID: id,
        Options: { [GENERIC_OPTION]: { lab_id: lab, interface_name: `eth${s}` } },
        IPv4Data: [{ Pool: "0.0.0.0/0" }],
      });
    }
    // Container k's eth1 links to k+1's eth2: wired as soon as both are adopted.
    for (let k = 0; k + 1 < CONTAINERS; k++)
      await a.labs.addLink(lab, { a: `c${k}:eth1`, b: `c${k + 1}:eth2`, id: `cc${k}` });

    let done = false;
    const churn = (async () => {
      for (let i = 0; !done; i++) {
        const l = await a.labs.addLink(lab, { a: `r0:eth${1 + (i % 3)}`, b: `r1:eth${1 + ((i + 1) % 3)}` });
        await a.reconcile();
        await a.labs.removeLink(lab, l.id);
      }
    })();
    const reconciles = (async () => {
      while (!done) {
        await a.reconcile();
        await a.cleanup.run();
      }
    })();

    for (let round = 0; round < 4; round++) {
      // Every container joins all slots at once, like parallel `docker start`s.
      docker.byEndpoint.clear();
      const eps: { net: string; ep: string }[] = [];
      await Promise.all(
        Array.from({ length: CONTAINERS }, async (_, k) => {
          for (const net of nets) {
            const ep = randomBytes(16).toString("hex");
            docker.byEndpoint.set(ep, `c${k}`);
            eps.push({ net, ep });
            await call("CreateEndpoint", { NetworkID: net, EndpointID: ep, Interface: {} });
            await call("Join", { NetworkID: net, EndpointID: ep, SandboxKey: "" });
          }
          docker.start(`c${k}`);
        }),
      );
      const until = Date.now() + 60_000;
      const allAdopted = () =>
        Array.from({ length: CONTAINERS }).every(
          (_, k) => Object.keys(a.store.lab(lab)?.nodes[`c${k}`]?.interfaces ?? {}).length === SLOTS,
        );
      while (!allAdopted()) {
        assert.ok(Date.now() < until, `round ${round}: not every endpoint was adopted`);
        await new Promise((r) => setTimeout(r, 50));
      }
      await a.reconcile(); // settles links whose wiring a race broke, as the agent would

      const seen = await ports();
      assert.deepEqual(sharedVlans(seen), [], `round ${round}: ports that share a VLAN`);
      const byName = new Map(seen.map((p) => [p.name, p]));
      for (const { ep } of eps) {
        const rec = a.store.pluginEndpoints.get(ep);
        assert.ok(rec, `endpoint ${ep} recorded`);
        const p = byName.get(rec.hostPort);
        assert.ok(p, `port ${rec.hostPort} of endpoint ${ep} on the bridge`);
        assert.equal(p.ids[OWNER.endpoint], ep, `${rec.hostPort}: endpoint mark`);
        assert.equal(p.ids[OWNER.node], rec.node, `${rec.hostPort}: container mark`);
        assert.ok(p.ids[OWNER.iface], `${rec.hostPort}: interface mark`);
      }
      // Linked container pairs share their link's VLAN.
      for (let k = 0; k + 1 < CONTAINERS; k++) {
        const [x, y] = [`c${k}:eth1`, `c${k + 1}:eth2`].map((e) => {
          const [n, i] = e.split(":") as [string, string];
          return byName.get(a.store.lab(lab)!.nodes[n]!.interfaces[i]!.hostPort)!;
        });
        assert.equal(x!.ids[OWNER.link], `cc${k}`);
        assert.equal(x!.tag, y!.tag, `link cc${k} shares one VLAN`);
      }
      await Promise.all(
        eps.map(async ({ net, ep }) => {
          await call("Leave", { NetworkID: net, EndpointID: ep });
          await call("DeleteEndpoint", { NetworkID: net, EndpointID: ep });
        }),
      );
      // Their ports go in the background; the next round needs their VLANs.
      const gone = new Set(eps.map((e) => e.ep));
      const backend = a.services.backend as unknown as {
        ovsdb: { ports(): { external_ids: Record<string, string> }[] };
      };
      while (backend.ovsdb.ports().some((p) => gone.has(p.external_ids[OWNER.endpoint] ?? ""))) {
        assert.ok(Date.now() < until, `round ${round}: endpoint ports not removed`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    done = true;
    await Promise.all([churn, reconciles]);
  } finally {
    for (const n of nets) await call("DeleteNetwork", { NetworkID: n }).catch(() => undefined);
    await driver.close();
    await a.labs.deleteLab(lab).catch(() => undefined);
  }
  const left = (await ports()).filter((p) => p.ids[OWNER.lab] === lab);
  assert.deepEqual(
    left.map((p) => p.name),
    [],
    "no port of the lab's networks left",
  );
});

test("a spare whose endpoint record cannot be written is refused and removed, not kept out of the pool", async () => {
  const lab = uniqueName("lab");
  const a = t.agent;
  const driver = driverOn(new FakeDocker());
  const call = (name: string, body: unknown) => driver.handle(`NetworkDriver.${name}`, body);
  const net = randomBytes(16).toString("hex");
  const eventually = async (what: string, check: () => boolean | Promise<boolean>) => {
    const deadline = Date.now() + 60_000;
    while (!(await check())) {
      assert.ok(Date.now() < deadline, `not within 60 s: ${what}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const endpoints = a.store.pluginEndpoints;
  const set = endpoints.set.bind(endpoints);
  try {
    await call("CreateNetwork", {
      NetworkID: net,
      Options: { [GENERIC_OPTION]: { lab_id: lab, interface_name: "eth1" } },
      IPv4Data: [{ Pool: "0.0.0.0/0" }],
    });
    await eventually("two spares made", () => (a.store.pluginNetworks.get(net)?.spares ?? []).length === 2);
    const spare = a.store.pluginNetworks.get(net)!.spares![0]!.hostPort;
    assert.ok((await ports()).some((p) => p.name === spare));
    assert.ok(await nsExec(t.ovs.netns!, ["ip", "link", "show", spare]), "the spare's veth is there");
    // The disk refuses the endpoint's record once.
    endpoints.set = () => {
      endpoints.set = set;
      return Promise.reject(new Error("no space left on device (injected)"));
    };
    const ep = randomBytes(16).toString("hex");
    await assert.rejects(
      call("CreateEndpoint", { NetworkID: net, EndpointID: ep, Interface: {} }),
      /no space left/,
    );
    assert.equal(endpoints.get(ep), undefined, "no endpoint recorded");
    assert.ok(!(a.store.pluginNetworks.get(net)?.spares ?? []).some((s) => s.hostPort === spare));
    const vethThere = () =>
      nsExec(t.ovs.netns!, ["ip", "link", "show", spare]).then(
        () => true,
        () => false,
      );
    await eventually(
      "the refused spare's port and veth removed",
      async () => (await ports()).every((p) => p.name !== spare) && !(await vethThere()),
    );
    // Docker's retry gets an interface.
    await call("CreateEndpoint", { NetworkID: net, EndpointID: ep, Interface: {} });
    const rec = endpoints.get(ep);
    assert.ok(rec && rec.hostPort !== spare, "the retry has an interface of its own");
  } finally {
    endpoints.set = set;
    await call("DeleteNetwork", { NetworkID: net }).catch(() => undefined);
    await driver.close();
    await a.labs.deleteLab(lab).catch(() => undefined);
  }
});
