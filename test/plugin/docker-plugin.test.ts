import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { run } from "../../src/common/exec.js";
import { getLink, listLinks } from "../../src/link/index.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import {
  containerPings,
  DockerResources,
  docker,
  dockerUnavailable,
  IMAGE,
  median,
  pluginCall,
  pluginSocket,
  RUNTIME,
  runLabContainer,
} from "../harness/docker.js";
import { NetnsPool, nsExec, uniqueName } from "../harness/netns.js";

const skip = await dockerUnavailable();
const { socket, driver } = pluginSocket();
let t: TestAgent;
const res = new DockerResources();
const pool = new NetnsPool("dpl");

async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined> | T | undefined,
  ms = 20_000,
): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until)
      throw new Error(`timed out waiting for ${what} (last seen: ${JSON.stringify(v)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function switchNs() {
  return t.ovs.netns === undefined ? undefined : { name: t.ovs.netns };
}

/** The plugin node's interfaces in the lab, once adopted. */
function adopted(lab: string, node: string): string[] | undefined {
  const rec = t.agent.store.lab(lab);
  const n = rec?.nodes[node];
  return n?.origin === "plugin" && Object.keys(n.interfaces).length > 0
    ? Object.keys(n.interfaces).sort()
    : undefined;
}

/** Endpoint ids Docker gave a container, one per network name. */
async function endpointIds(container: string): Promise<string[]> {
  const out = await docker(["inspect", "-f", "{{json .NetworkSettings.Networks}}", container]);
  return Object.values(JSON.parse(out) as Record<string, { EndpointID: string }>).map((n) => n.EndpointID);
}

/** Host-side names of an endpoint's veth (pre-made spares have names of their own). */
function portsOf(endpointId: string): { hostPort: string; peer: string } {
  const ep = t.agent.store.pluginEndpoints.get(endpointId);
  assert.ok(ep, `endpoint ${endpointId} is known to the agent`);
  return { hostPort: ep.hostPort, peer: ep.peerName };
}

describe("Docker network plugin", { skip }, () => {
  before(async () => {
    t = await startTestAgent({ pluginSocket: socket });
  });
  after(async () => {
    await res.cleanup();
    await pool.destroyAll();
    await t?.close();
  });

  test("a container sees exactly the interface names its lab asked for, 10 runs of 10", async () => {
    const lab = uniqueName("lab");
    const p = uniqueName("nm");
    // Network names sort the other way round from the interface names they carry.
    const slots: [string, string][] = [
      ["eth1", `${p}-d`],
      ["eth2", `${p}-c`],
      ["eth3", `${p}-b`],
      ["eth4", `${p}-a`],
    ];
    for (const i of [2, 0, 3, 1]) {
      const [ifname, net] = slots[i]!;
      await res.createNetwork(driver, net, { lab_id: lab, interface_name: ifname });
    }
    const script = 'cd /sys/class/net && for i in *; do echo "$i=$(cat $i/ifalias)"; done';
    for (let run = 0; run < 10; run++) {
      const c = res.container(uniqueName("cn"));
      const order = [3, 1, 0, 2].map((i) => slots[(i + run) % 4]![1]);
      await docker(["create", ...RUNTIME, "--network", order[0]!, "--name", c, IMAGE, "sh", "-c", script]);
      for (const net of order.slice(1)) await docker(["network", "connect", net, c]);
      const out = await docker(["start", "-a", c]);
      assert.deepEqual(
        out.split("\n").map((l) => l.trim()),
        ["eth1=archetype:eth1", "eth2=archetype:eth2", "eth3=archetype:eth3", "eth4=archetype:eth4", "lo="],
        `run ${run}`,
      );
      await res.removeContainer(c);
    }
    // Control: without the wrapper Docker's own order and counter decide, and they differ.
    const plain = res.container(uniqueName("cn"));
    await docker([
      "create",
      "--runtime",
      "runc",
      "--network",
      slots[0]![1],
      "--name",
      plain,
      IMAGE,
      "sh",
      "-c",
      script,
    ]);
    for (const [, net] of slots.slice(1)) await docker(["network", "connect", net, plain]);
    const wrong = (await docker(["start", "-a", plain])).split("\n").map((l) => l.trim());
    assert.notDeepEqual(wrong.slice(0, 4), [
      "eth1=archetype:eth1",
      "eth2=archetype:eth2",
      "eth3=archetype:eth3",
      "eth4=archetype:eth4",
    ]);
    console.log(`# without the runtime wrapper: ${wrong.join(" ")}`);
    await res.removeContainer(plain);
    for (const [, net] of slots) await res.removeNetwork(net);
    assert.equal(t.agent.store.pluginEndpoints.values().length, 0);
  });

  test("10 containers with 4 interfaces each started at once: all named right, spares made ahead, nothing left", async () => {
    const lab = uniqueName("lab");
    const p = uniqueName("np");
    // A network is one interface slot of the lab; every container is on all of them. The
    // networks' names sort the other way round from their interface names.
    const slots: [string, string][] = [
      ["eth1", `${p}-d`],
      ["eth2", `${p}-c`],
      ["eth3", `${p}-b`],
      ["eth4", `${p}-a`],
    ];
    for (const [ifname, net] of slots)
      await res.createNetwork(driver, net, { lab_id: lab, interface_name: ifname });
    const containers = Array.from({ length: 10 }, () => res.container(uniqueName("cp")));
    for (const c of containers) {
      await docker(["create", ...RUNTIME, "--network", slots[0]![1], "--name", c, IMAGE, "sleep", "3600"]);
      for (const [, net] of slots.slice(1)) await docker(["network", "connect", net, c]);
    }
    // The agent counts the containers created on the lab's networks and makes a spare for each.
    const labNets = () => t.agent.store.pluginNetworks.values().filter((n) => n.lab === lab);
    await waitFor("10 spares per network", () =>
      labNets().length === 4 && labNets().every((n) => (n.spares?.length ?? 0) >= 10) ? true : undefined,
    );
    const premade = new Set(labNets().flatMap((n) => (n.spares ?? []).map((s) => s.hostPort)));
    await Promise.all(containers.map((c) => docker(["start", c])));

    const script = 'cd /sys/class/net && for i in *; do echo "$i=$(cat $i/ifalias)"; done';
    for (const c of containers) {
      const out = await docker(["exec", c, "sh", "-c", script]);
      assert.deepEqual(
        out.split("\n").map((l) => l.trim()),
        ["eth1=archetype:eth1", "eth2=archetype:eth2", "eth3=archetype:eth3", "eth4=archetype:eth4", "lo="],
        c,
      );
    }
    await waitFor("all 40 interfaces adopted", () =>
      containers.every((c) => adopted(lab, c)?.length === 4) ? true : undefined,
    );
    const ports = (await Promise.all(containers.map(endpointIds))).flat().map(portsOf);
    assert.equal(ports.length, 40);
    assert.ok(
      ports.every((x) => premade.has(x.hostPort)),
      "every endpoint took a spare made before the start",
    );

    // One at a time: parallel removals can leave Docker's endpoint count stale (moby/moby#42119).
    for (const c of containers) await res.removeContainer(c);
    for (const [, net] of slots) await res.removeNetwork(net);
    await waitFor("the lab's ports removed", async () =>
      (await t.ovs.vsctl(["--columns=name", "find", "Port", `external_ids:archetype_lab=${lab}`])).trim() ===
      ""
        ? true
        : undefined,
    );
    // Their veths go right after (in the background, one batch).
    const left = async () => {
      const kernel = new Set([...(await listLinks(switchNs())), ...(await listLinks())].map((l) => l.name));
      return ports.flatMap((x) => [x.hostPort, x.peer]).filter((n) => kernel.has(n));
    };
    await waitFor("the lab's veths removed", async () =>
      (await left()).length === 0 ? true : undefined,
    ).catch(async (e: Error) => {
      throw new Error(`${e.message}: ${(await left()).join(" ")}`);
    });
    assert.equal(labNets().length, 0);
    for (const c of containers) assert.equal(adopted(lab, c), undefined);
  });

  test("docker network connect to a running container: the interface gets its name too", async () => {
    const lab = uniqueName("lab");
    const [na, nb] = [uniqueName("nc"), uniqueName("nc")];
    await res.createNetwork(driver, na, { lab_id: lab, interface_name: "eth7" });
    await res.createNetwork(driver, nb, { lab_id: lab, interface_name: "eth3" });
    const c = res.container(uniqueName("cc"));
    await docker(["run", "-d", ...RUNTIME, "--network", na, "--name", c, IMAGE, "sleep", "3600"]);
    await docker(["network", "connect", nb, c]);
    const names = () =>
      docker(["exec", c, "ls", "/sys/class/net"]).then((o) => o.split(/\s+/).sort().join(" "));
    let seen = "";
    await waitFor(
      "eth3 and eth7",
      async () => {
        seen = await names();
        return seen === "eth3 eth7 lo" ? true : seen === "" ? undefined : false;
      },
      15_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}; the container has: ${seen}`);
    });
    await waitFor("both adopted", () => (adopted(lab, c)?.length === 2 ? true : undefined));
    await res.removeContainer(c);
    await res.removeNetwork(na);
    await res.removeNetwork(nb);
  });

  test("two containers linked through the lab ping each other; unlink stops it", async () => {
    const lab = uniqueName("lab");
    const netName = uniqueName("np");
    await res.createNetwork(driver, netName, { lab_id: lab, interface_name: "eth1" });
    const [c1, c2] = [res.container(uniqueName("c1")), res.container(uniqueName("c2"))];
    for (const [c, ip] of [
      [c1, "198.18.21.1/24"],
      [c2, "198.18.21.2/24"],
    ] as const) {
      await runLabContainer(c, netName, [
        "sh",
        "-c",
        `ip addr add ${ip} dev eth1 && ip link set eth1 up && sleep 3600`,
      ]);
    }
    await waitFor("c1 adopted", () => adopted(lab, c1), 60_000).catch((e) => {
      console.log("# endpoints:", JSON.stringify(t.agent.store.pluginEndpoints.values()));
      throw e;
    });
    await waitFor("c2 adopted", () => adopted(lab, c2));
    assert.deepEqual(adopted(lab, c1), ["eth1"]);
    const view = t.agent.labs.getLab(lab);
    assert.equal(view.nodes.find((n) => n.name === c1)?.origin, "plugin");
    assert.equal(view.nodes.find((n) => n.name === c1)?.netns, null);

    assert.equal(await containerPings(c1, "198.18.21.2"), false, "not linked yet: isolated");
    const link = await t.agent.labs.addLink(lab, { a: `${c1}:eth1`, b: `${c2}:eth1` });
    await waitFor("ping c1 -> c2", () => containerPings(c1, "198.18.21.2"), 10_000);
    assert.ok(await containerPings(c2, "198.18.21.1"));
    await t.agent.labs.removeLink(lab, link.id);
    assert.equal(await containerPings(c1, "198.18.21.2"), false, "unlinked: no ping");

    // A link made before the container exists waits for it and is wired once it joins.
    await t.agent.labs.removeLink(lab, link.id).catch(() => undefined);
    await res.removeContainer(c2);
    await t.agent.labs.addLink(lab, { a: `${c1}:eth1`, b: `${c2}:eth1` });
    await runLabContainer(res.container(c2), netName, [
      "sh",
      "-c",
      "ip addr add 198.18.21.2/24 dev eth1 && ip link set eth1 up && sleep 3600",
    ]);
    await waitFor("c2 adopted again", () => adopted(lab, c2));
    await docker(["exec", c1, "ip", "neigh", "flush", "dev", "eth1"]); // c2 came back with a new MAC
    await waitFor(
      "ping after the container came back",
      () => containerPings(c1, "198.18.21.2"),
      20_000,
    ).catch(async (e) => {
      console.log("# lab:", JSON.stringify(t.agent.labs.getLab(lab)));
      console.log("# endpoints:", JSON.stringify(t.agent.store.pluginEndpoints.values()));
      console.log(
        "# c2:",
        (await docker(["exec", c2, "ip", "-o", "addr"]).catch(String)).replace(/\n/g, " | "),
      );
      throw e;
    });
    await t.agent.labs.deleteLab(lab);
    await res.removeContainer(c1);
    await res.removeContainer(c2);
    await res.removeNetwork(netName);
  });

  test("a lab deleted and PUT again: a running container's interface is in it again and pings", async () => {
    const lab = uniqueName("lab");
    const net = uniqueName("nd");
    await res.createNetwork(driver, net, { lab_id: lab, interface_name: "eth1" });
    const c = res.container(uniqueName("cd"));
    await runLabContainer(c, net, [
      "sh",
      "-c",
      "ip addr add 198.18.23.1/24 dev eth1 && ip link set eth1 up && sleep 3600",
    ]);
    await waitFor("adopted", () => adopted(lab, c));
    const [ns] = (await pool.create(1)) as [string];
    const spec = {
      nodes: [{ name: "r1", netns: ns, interfaces: [{ name: "eth1" }] }],
      links: [{ a: `${c}:eth1`, b: "r1:eth1" }],
    };
    const putAndPing = async (what: string) => {
      await t.agent.labs.putLab(lab, spec);
      await nsExec(ns, ["ip", "addr", "add", "198.18.23.2/24", "dev", "eth1"]);
      await nsExec(ns, ["ip", "link", "set", "eth1", "up"]);
      await docker(["exec", c, "ip", "neigh", "flush", "dev", "eth1"]); // r1:eth1 is new: a new MAC
      await waitFor(`ping ${what}`, () => containerPings(c, "198.18.23.2"), 20_000).catch(async (e) => {
        console.log("# lab:", JSON.stringify(t.agent.labs.getLab(lab)));
        console.log("# c neigh:", await docker(["exec", c, "ip", "neigh"]).catch(String));
        throw e;
      });
    };
    await putAndPing("after the first PUT");
    await t.agent.labs.deleteLab(lab);
    assert.equal(await containerPings(c, "198.18.23.2"), false, "the lab is gone: no ping");
    await putAndPing("after DELETE and PUT again");
    assert.deepEqual(adopted(lab, c), ["eth1"]);
    await t.agent.labs.deleteLab(lab);
    await res.removeContainer(c);
    await res.removeNetwork(net);
  });

  test("docker rm -f, network rm and agent restarts leave nothing behind; other labs untouched", async () => {
    // Another lab with a namespace node and its own plugin container: must survive all of it.
    const other = uniqueName("lab");
    const [ns] = (await pool.create(1)) as [string];
    await t.agent.labs.addInterfaces(other, "r1", { netns: ns, interfaces: [{ name: "eth1" }] });
    const otherNet = uniqueName("no");
    await res.createNetwork(driver, otherNet, { lab_id: other, interface_name: "eth2" });
    const oc = res.container(uniqueName("oc"));
    await docker(["run", "-d", ...RUNTIME, "--network", otherNet, "--name", oc, IMAGE, "sleep", "3600"]);
    await waitFor("other container adopted", () => adopted(other, oc));
    const otherPorts = Object.values(t.agent.store.lab(other)!.nodes).flatMap((n) =>
      Object.values(n.interfaces).map((i) => i.hostPort),
    );

    const lab = uniqueName("lab");
    const nets = [uniqueName("nx"), uniqueName("ny")];
    await res.createNetwork(driver, nets[0]!, { lab_id: lab, interface_name: "eth1" });
    await res.createNetwork(driver, nets[1]!, { lab_id: lab, interface_name: "eth2" });
    const c = res.container(uniqueName("cr"));
    await docker(["create", ...RUNTIME, "--network", nets[0]!, "--name", c, IMAGE, "sleep", "3600"]);
    await docker(["network", "connect", nets[1]!, c]);
    // Each network gets a pre-made interface in the background; the container's endpoints take them.
    const labNets = () => t.agent.store.pluginNetworks.values().filter((n) => n.lab === lab);
    // At least one each: demand from the created container may add a spare ahead (see SparePool).
    const sparePerNet = () => labNets().length === 2 && labNets().every((n) => (n.spares?.length ?? 0) > 0);
    await waitFor("a spare per network", () => sparePerNet() || undefined);
    const premade = new Set(labNets().flatMap((n) => (n.spares ?? []).map((s) => s.hostPort)));
    await docker(["start", c]);
    await waitFor("both interfaces adopted", () => (adopted(lab, c)?.length === 2 ? true : undefined));
    const ports = (await endpointIds(c)).map(portsOf);
    assert.equal(ports.length, 2);
    assert.ok(
      ports.every((p) => premade.has(p.hostPort)),
      `endpoints took the spares: ${ports.map((p) => p.hostPort)} of ${[...premade]}`,
    );
    await waitFor("spares made again", () => sparePerNet() || undefined);
    const spares = labNets().flatMap((n) =>
      (n.spares ?? []).map((s) => ({ hostPort: s.hostPort, peer: s.peerName })),
    );
    const owned = new Set([...ports, ...spares].map((p) => p.hostPort));
    const orphans = await t.agent.services.cleanup.audit();
    assert.deepEqual(
      orphans.filter((o) => owned.has(o.name)),
      [],
      "spares and endpoints are not orphans",
    );
    for (const p of ports) {
      assert.ok(await getLink(p.hostPort, switchNs()), `${p.hostPort} exists`);
      assert.ok(t.agent.services.backend.observe({ hostPort: p.hostPort } as never).present);
    }

    await t.restart();
    assert.deepEqual(adopted(lab, c), ["eth1", "eth2"], "kept across a restart");
    assert.equal(t.agent.store.pluginEndpoints.values().length, 3);

    await res.removeContainer(c);
    await t.restart();
    await res.removeNetwork(nets[0]!);
    await res.removeNetwork(nets[1]!);
    await t.restart();

    const kernelSwitch = new Set((await listLinks(switchNs())).map((l) => l.name));
    const kernelHost = new Set((await listLinks()).map((l) => l.name));
    assert.equal(
      (await t.ovs.vsctl(["--columns=name", "find", "Port", `external_ids:archetype_lab=${lab}`])).trim(),
      "",
      "no port of the lab's networks left",
    );
    for (const p of [...ports, ...spares]) {
      assert.ok(!kernelSwitch.has(p.hostPort), `veth ${p.hostPort} gone`);
      assert.ok(!kernelHost.has(p.peer), `peer ${p.peer} gone`);
      assert.equal(t.agent.services.backend.observe({ hostPort: p.hostPort } as never).present, false);
    }
    assert.equal(adopted(lab, c), undefined, "no node left in the lab");
    assert.deepEqual(
      t.agent.store.pluginEndpoints.values().map((e) => e.networkId),
      [t.agent.store.pluginNetworks.values().find((n) => n.lab === other)!.networkId],
      "only the other lab's endpoint is left",
    );
    assert.equal(t.agent.store.pluginNetworks.values().filter((n) => n.lab === lab).length, 0);
    // The other lab is as it was.
    assert.deepEqual(adopted(other, oc), ["eth2"]);
    for (const hp of otherPorts) {
      assert.ok(kernelSwitch.has(hp), `${hp} of the other lab kept`);
      assert.ok(t.agent.services.backend.observe({ hostPort: hp } as never).present);
    }

    // A veth that vanished while the agent was down is dropped at start with its records.
    const vanish = uniqueName("nv");
    await res.createNetwork(driver, vanish, { lab_id: lab, interface_name: "eth3" });
    const vc = res.container(uniqueName("cv"));
    await docker(["run", "-d", ...RUNTIME, "--network", vanish, "--name", vc, IMAGE, "sleep", "3600"]);
    await waitFor("adopted", () => adopted(lab, vc));
    const [vid] = await endpointIds(vc);
    const vanished = portsOf(vid!).hostPort;
    await t.stopAgent();
    // The veth vanishes while the agent is down (its container keeps running without it).
    await run("ip", ["-n", t.ovs.netns!, "link", "del", vanished]);
    await t.startAgent();
    assert.equal(t.agent.store.pluginEndpoints.get(vid!), undefined);
    assert.equal(adopted(lab, vc), undefined);
    assert.equal(t.agent.services.backend.observe({ hostPort: vanished } as never).present, false);
    await res.removeContainer(vc);
    await res.removeNetwork(vanish);
    await res.removeContainer(oc);
    await res.removeNetwork(otherNet);
    assert.equal(t.agent.store.pluginEndpoints.values().length, 0);
    assert.equal(t.agent.store.pluginNetworks.values().length, 0);
  });

  test("bad options fail `docker network create` with the plugin's message; unknown ids are Err", async () => {
    const networksBefore = t.agent.store.pluginNetworks.values().length;
    const n1 = res.network(uniqueName("ne"));
    await assert.rejects(
      docker(["network", "create", "-d", driver, "--ipam-driver", "null", "-o", "interface_name=eth1", n1]),
      /lab_id is required/,
    );
    const n2 = res.network(uniqueName("ne"));
    await assert.rejects(
      docker([
        "network",
        "create",
        "-d",
        driver,
        "--ipam-driver",
        "null",
        "-o",
        "lab_id=l1",
        "-o",
        "interface_name=bad/name",
        n2,
      ]),
      /interface_name/,
    );
    const n3 = res.network(uniqueName("ne"));
    await assert.rejects(
      docker([
        "network",
        "create",
        "-d",
        driver,
        "--ipam-driver",
        "null",
        "-o",
        "lab_id=-bad",
        "-o",
        "interface_name=eth1",
        n3,
      ]),
      /lab id/,
    );
    const n4 = res.network(uniqueName("ne"));
    await assert.rejects(
      docker([
        "network",
        "create",
        "-d",
        driver,
        "--ipam-driver",
        "null",
        "-o",
        "lab_id=l1",
        "-o",
        "interface_name=eth1",
        "-o",
        "mtu=9k",
        n4,
      ]),
      /option mtu "9k" is not a whole number/,
    );
    // Docker's default IPAM (what a user gets without --ipam-driver null) is refused: its
    // addresses would land on lab interfaces. A benchmark-range subnet, so nothing else is used.
    const n5 = res.network(uniqueName("ne"));
    const subnet = `198.18.${160 + Math.floor(Math.random() * 90)}.0/24`;
    await assert.rejects(
      docker([
        "network",
        "create",
        "-d",
        driver,
        "--subnet",
        subnet,
        "-o",
        "lab_id=l1",
        "-o",
        "interface_name=eth1",
        n5,
      ]),
      (e: Error) =>
        e.message.includes(`addresses from ${subnet}`) && e.message.includes("--ipam-driver null"),
    );
    await assert.rejects(docker(["network", "inspect", n5]), /No such network|not found/i);
    const unknown = await pluginCall(
      socket,
      "NetworkDriver.CreateEndpoint",
      JSON.stringify({ NetworkID: "deadbeef", EndpointID: "cafe", Interface: {} }),
    );
    assert.match(String((unknown.json as { Err?: string }).Err), /network deadbeef is unknown/);
    const join = await pluginCall(
      socket,
      "NetworkDriver.Join",
      JSON.stringify({ NetworkID: "a", EndpointID: "b" }),
    );
    assert.match(String((join.json as { Err?: string }).Err), /endpoint b is unknown/);
    const bad = await pluginCall(socket, "NetworkDriver.CreateNetwork", "{not json");
    assert.equal(bad.status, 400);
    assert.match(String((bad.json as { Err?: string }).Err), /not JSON/);
    const act = await pluginCall(socket, "Plugin.Activate", "");
    assert.deepEqual(act.json, { Implements: ["NetworkDriver"] });
    const caps = await pluginCall(socket, "NetworkDriver.GetCapabilities", "");
    assert.deepEqual(caps.json, { Scope: "local", ConnectivityScope: "local" });
    assert.equal(t.agent.store.pluginNetworks.values().length, networksBefore);
  });

  test("a network's mtu option sets its interfaces' MTU (e.g. the overlay MTU)", async () => {
    const lab = uniqueName("lab");
    const net = uniqueName("nm");
    await res.createNetwork(driver, net, { lab_id: lab, interface_name: "eth1", mtu: "1450" });
    const c = res.container(uniqueName("cm"));
    const out = await docker([
      "run",
      "--rm",
      ...RUNTIME,
      "--network",
      net,
      "--name",
      c,
      IMAGE,
      "cat",
      "/sys/class/net/eth1/mtu",
    ]);
    assert.equal(out.trim(), "1450");
    await res.removeNetwork(net);
  });

  test("container start time: 8 plugin interfaces vs --network none (median of 5)", async () => {
    const lab = uniqueName("lab");
    const nets: string[] = [];
    for (let i = 1; i <= 8; i++) {
      const n = uniqueName("nb");
      await res.createNetwork(driver, n, { lab_id: lab, interface_name: `eth${i}` });
      nets.push(n);
    }
    const startMs = async (networks: string[] | "none", runtime: string[]): Promise<number> => {
      const c = res.container(uniqueName("cb"));
      const first = networks === "none" ? "none" : networks[0]!;
      await docker([
        "create",
        ...runtime,
        "--network",
        first,
        "--name",
        c,
        IMAGE,
        "sh",
        "-c",
        "ls /sys/class/net",
      ]);
      if (networks !== "none") for (const n of networks.slice(1)) await docker(["network", "connect", n, c]);
      const t0 = performance.now();
      const out = await docker(["start", "-a", c]);
      const ms = performance.now() - t0;
      if (networks !== "none") assert.equal(out.split("\n").length, 9, out);
      await res.removeContainer(c);
      return ms;
    };
    const runs = { plugin8: [] as number[], noneArchetype: [] as number[], noneRunc: [] as number[] };
    for (let i = 0; i < 5; i++) {
      runs.plugin8.push(await startMs(nets, RUNTIME));
      runs.noneArchetype.push(await startMs("none", RUNTIME));
      runs.noneRunc.push(await startMs("none", ["--runtime", "runc"]));
    }
    const report = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, Math.round(median(v))]));
    console.log(
      `# docker start -a, median of 5 (ms): ${JSON.stringify(report)} all: ${JSON.stringify(runs)}`,
    );
    for (const n of nets) await res.removeNetwork(n);
  });
});
