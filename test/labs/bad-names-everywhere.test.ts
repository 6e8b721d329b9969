import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type RunningApi, startApi } from "../../src/api/server.js";
import { isAgentError } from "../../src/common/errors.js";
import { silentLogger } from "../../src/common/log.js";
import { GENERIC_OPTION } from "../../src/plugin/protocol.js";
import { runCli } from "../cli/target.js";
import { startTestAgent, type TestAgent } from "../harness/agent.js";
import { docker, dockerUnavailable, pluginCall, pluginSocket } from "../harness/docker.js";
import { NetnsPool, uniqueName } from "../harness/netns.js";
import { hostVeths, kernelLinks, ownedPorts } from "./facts.js";

/**
 * `eth#1` would reach `ip -batch` as `eth` plus a comment: a container interface `eth` while the
 * lab records `eth#1`. It is refused with INVALID_NAME by every door, and nothing is made.
 */
const BAD = "eth#1";
const noDocker = await dockerUnavailable();

describe("an interface name ip -batch would cut (eth#1) is refused everywhere", () => {
  const { socket, driver } = pluginSocket();
  const pool = new NetnsPool("bne");
  let t: TestAgent;
  let api: RunningApi;
  let ns: string[];
  const lab = "bne";

  async function call(method: string, path: string, body?: unknown) {
    const res = await fetch(`${api.address}${path}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    });
    return { status: res.status, json: (await res.json()) as { error?: { code: string; message: string } } };
  }

  /** Everything a refused request could have touched. */
  async function facts() {
    return {
      ports: await ownedPorts(t.ovs),
      veths: await hostVeths(t.ovs),
      nodes: await Promise.all(ns.map(kernelLinks)),
      labs: JSON.stringify(t.agent.store.labs()),
      networks: JSON.stringify(t.agent.store.pluginNetworks.values()),
    };
  }

  before(async () => {
    t = await startTestAgent({ pluginSocket: socket });
    api = await startApi(t.agent.services, { logger: silentLogger() });
    ns = await pool.create(2);
    // A lab that exists, so refusals are about the name and not a missing lab or node.
    await t.agent.labs.putLab(lab, {
      nodes: [
        { name: "r1", netns: ns[0]!, interfaces: [{ name: "eth1" }] },
        { name: "r2", netns: ns[1]!, interfaces: [{ name: "eth1" }] },
      ],
      links: [],
    });
  });
  after(async () => {
    await api?.close();
    await pool.destroyAll();
    await t?.close();
  });

  test("the API: bodies and paths give 400 INVALID_NAME", async () => {
    const before1 = await facts();
    const node = (name: string) => ({ name: "r1", netns: ns[0]!, interfaces: [{ name }] });
    const refused: [string, string, unknown?][] = [
      ["PUT", `/labs/${lab}`, { nodes: [node(BAD)], links: [] }],
      ["POST", `/labs/${lab}/nodes/r1/interfaces`, { netns: ns[0]!, interfaces: [{ name: BAD }] }],
      ["POST", `/labs/${lab}/links`, { a: `r1:${BAD}`, b: "r2:eth1" }],
      ["PUT", `/labs/${lab}/nodes/r1/interfaces/${encodeURIComponent(BAD)}/carrier`, { state: "down" }],
      [
        "POST",
        "/overlay/links",
        {
          lab,
          link: "ov1",
          node: "r1",
          interface: BAD,
          vni: 77,
          local_ip: "198.18.0.1",
          remote_ip: "198.18.0.2",
        },
      ],
    ];
    for (const [method, path, body] of refused) {
      const r = await call(method, path, body);
      assert.equal(r.status, 400, `${method} ${path}`);
      assert.equal(r.json.error?.code, "INVALID_NAME", `${method} ${path}: ${r.json.error?.message}`);
      assert.match(r.json.error?.message ?? "", /#/, `${method} ${path} says what is wrong`);
    }
    // Behind the schema the services refuse it as well (other callers: the plugin, the CLI's agent).
    await assert.rejects(
      t.agent.labs.putLab(lab, { nodes: [node(BAD)], links: [] }),
      (e: unknown) => isAgentError(e) && e.code === "INVALID_NAME" && /comment/.test(e.message),
    );
    assert.deepEqual(await facts(), before1);
  });

  test("the CLI: a usage error (exit 2) before any request", async () => {
    const before1 = await facts();
    for (const args of [
      ["link", "add", lab, `r1:${BAD}`, "r2:eth1"],
      ["carrier", lab, `r1:${BAD}`, "down"],
    ]) {
      const r = await runCli(["--url", api.address, ...args]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /^error: interface name "eth#1" is not valid: .*#/, args.join(" "));
    }
    assert.deepEqual(await facts(), before1);
  });

  test("the Docker plugin: CreateNetwork answers Err, no network is recorded", async () => {
    const before1 = await facts();
    const r = await pluginCall(
      socket,
      "NetworkDriver.CreateNetwork",
      JSON.stringify({
        NetworkID: "b".repeat(64),
        Options: { [GENERIC_OPTION]: { lab_id: lab, interface_name: BAD } },
      }),
    );
    assert.match(String((r.json as { Err?: string }).Err), /interface_name "eth#1" is not valid: .*#/);
    assert.deepEqual(await facts(), before1);
  });

  test("docker network create with it fails with the plugin's message", { skip: noDocker }, async () => {
    const before1 = await facts();
    const name = uniqueName("bne");
    await assert.rejects(
      docker(["network", "create", "-d", driver, "-o", `lab_id=${lab}`, "-o", `interface_name=${BAD}`, name]),
      /interface_name "eth#1" is not valid/,
    );
    await docker(["network", "rm", name]).catch(() => undefined);
    assert.deepEqual(await facts(), before1);
  });
});
