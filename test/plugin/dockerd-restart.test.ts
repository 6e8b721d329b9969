import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import type { OvsBackend } from "../../src/backends/ovs/ovs-backend.js";
import { OWNER } from "../../src/backends/ovs/switch/ownership.js";
import { run } from "../../src/common/exec.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import {
  DockerResources,
  docker,
  dockerUnavailable,
  IMAGE,
  pluginSocket,
  RUNTIME,
} from "../harness/docker.js";
import { addAddress, NetnsPool, nsExec, uniqueName } from "../harness/netns.js";
import { ping } from "../harness/traffic.js";

const skip = await dockerUnavailable();
const { socket, driver } = pluginSocket();
const res = new DockerResources();
const pool = new NetnsPool("ddr");
const SETUP = fileURLToPath(new URL("../../scripts/docker-setup.sh", import.meta.url));
let t: TestAgent;

async function until<T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const alive = (pid: number) => {
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, "utf8")); // a zombie has exited
  } catch {
    return false;
  }
};

/** A normal dockerd restart: SIGTERM (containers are stopped), then the project's set-up starts it. */
async function restartDockerd(): Promise<void> {
  const pid = Number(readFileSync("/var/run/docker.pid", "utf8").trim());
  process.kill(pid, "SIGTERM");
  await until("dockerd to exit", async () => !alive(pid), 60_000);
  await run("bash", [SETUP], { timeoutMs: 120_000 });
  await until("dockerd to answer", () => docker(["info", "--format", "{{.ServerVersion}}"], 5_000));
}

describe("Docker network plugin across a dockerd restart", { skip }, () => {
  before(async () => {
    t = await startTestAgent({ pluginSocket: socket });
  });
  after(async () => {
    await res.cleanup();
    await t?.close();
    await pool.destroyAll();
  });

  test("networks and endpoints survive it: the container starts again with its names and its link", async () => {
    const lab = uniqueName("lab");
    const [n1, n2] = [uniqueName("zz"), uniqueName("aa")]; // sort unlike the interface names
    await res.createNetwork(driver, n1, { lab_id: lab, interface_name: "eth1" });
    await res.createNetwork(driver, n2, { lab_id: lab, interface_name: "eth2" });
    const c = res.container(uniqueName("cr"));
    await docker(
      ["create", ...RUNTIME, "--stop-timeout", "1", "--cap-add", "NET_ADMIN", "--network", n1].concat([
        "--name",
        c,
        IMAGE,
        "sh",
        "-c",
        "ip addr add 198.18.31.1/24 dev eth1 && ip link set eth1 up && sleep 3600",
      ]),
    );
    await docker(["network", "connect", n2, c]);
    await docker(["start", c]);

    const [ns] = (await pool.create(1)) as [string];
    await t.agent.labs.addInterfaces(lab, "peer", { netns: ns, interfaces: [{ name: "eth1" }] });
    await addAddress(ns, "eth1", "198.18.31.2/24");
    await t.agent.labs.addLink(lab, { a: `${c}:eth1`, b: "peer:eth1" });
    await until("ping before the restart", () => ping(ns, "198.18.31.1"));

    await restartDockerd();
    assert.match(
      await docker(["network", "ls", "--format", "{{.Name}} {{.Driver}}"]),
      new RegExp(`${n1} ${driver}`),
    );
    await docker(["start", c]);
    // The container's interface is a new veth with a new MAC: forget the old one, as a router would.
    await nsExec(ns, ["ip", "neigh", "flush", "all"]);
    const names = await docker(["exec", c, "ls", "/sys/class/net"]);
    assert.deepEqual(names.split(/\s+/).sort(), ["eth1", "eth2", "lo"]);
    await until("ping after the restart (the link follows the new endpoint)", () =>
      ping(ns, "198.18.31.1"),
    ).catch(async (e: Error) => {
      const inside = await docker(["exec", c, "ip", "addr"]).catch((x: Error) => x.message);
      throw new Error(`${e.message}\nlab: ${JSON.stringify(t.agent.labs.getLab(lab))}\ncontainer: ${inside}`);
    });

    // The endpoints of before the restart are gone: exactly the two current ones remain (plus
    // each network's pre-made spare).
    const backend = t.agent.services.backend as OvsBackend;
    await until("old endpoints released", async () => t.agent.store.pluginEndpoints.values().length === 2);
    // Ports of released endpoints go in the background: wait for the switch to settle.
    const settled = () => {
      const ports = backend.ovsdb
        .ports()
        .filter((p) => p.external_ids[OWNER.kind] === "plugin" && p.external_ids[OWNER.lab] === lab);
      const endpointPorts = ports.filter((p) => p.external_ids[OWNER.endpoint] !== undefined);
      const others = ports.filter((p) => p.external_ids[OWNER.endpoint] === undefined).map((p) => p.name);
      const spares = t.agent.store.pluginNetworks
        .values()
        .filter((n) => n.lab === lab)
        .flatMap((n) => (n.spares ?? []).map((x) => x.hostPort));
      return { endpoints: endpointPorts.length, others: others.sort(), spares: spares.sort() };
    };
    await until(
      "exactly the two endpoints' ports, and every other plugin port a recorded spare",
      async () => {
        const s = settled();
        return s.endpoints === 2 && JSON.stringify(s.others) === JSON.stringify(s.spares);
      },
    ).catch((e: Error) => {
      throw new Error(`${e.message}: ${JSON.stringify(settled())}`);
    });
    await res.removeContainer(c);
  });
});
