import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { type Agent, createAgent } from "../../src/agent.js";
import { hostChecks } from "../../src/cli/host-check.js";
import { run } from "../../src/common/exec.js";
import { silentLogger } from "../../src/common/log.js";
import { addAddress, NetnsPool } from "../harness/netns.js";
import { type OvnHosts, ovnAgentConfig, startOvnHosts, until } from "../harness/ovn-hosts.js";
import { isOurs, readPid } from "../harness/ovs-instance.js";
import { ping } from "../harness/traffic.js";

/**
 * ovn-controller as the host's service: `host-setup.sh --ovn-host` (what `make run` runs with the
 * ovn backend) starts it on the host's OVS, once; the agent then writes its settings and a lab
 * carries traffic through it; `archnet host check --backend ovn` sees it answering. The "host" is
 * a simulated one (test/harness/ovn-hosts.ts): its namespace, and OVS_RUNDIR/OVN_RUNDIR/OVN_LOGDIR
 * pointing at its private OVS, so the real host's OVS and OVN are never touched.
 */
let ovn: OvnHosts;
let agent: Agent | undefined;
let stateDir: string;
const pool = new NetnsPool("ovnsvc");
const SETUP = join(import.meta.dirname, "../../scripts/host-setup.sh");

const hostEnv = () => {
  const dir = ovn.hosts[0]!.ovs.dir;
  return ["OVS_RUNDIR", "OVN_RUNDIR", "OVN_LOGDIR"].map((k) => `${k}=${dir}`);
};
const pidfile = () => join(ovn.hosts[0]!.ovs.dir, "ovn-controller.pid");

async function setUpHost(): Promise<string> {
  const r = await run(
    "ip",
    ["netns", "exec", ovn.hosts[0]!.netns, "env", ...hostEnv(), "bash", SETUP, "--ovn-host"],
    {
      timeoutMs: 120_000,
    },
  );
  return r.stdout;
}

before(async () => {
  ovn = await startOvnHosts({ hosts: 1, configureChassis: false, controller: false });
  stateDir = await mkdtemp(join(tmpdir(), "ovnsvc-state-"));
});

after(async () => {
  try {
    await agent?.close();
    // ovn-ctl's way, so its monitor goes too; the harness then stops whatever is left.
    await run(
      "ip",
      [
        "netns",
        "exec",
        ovn.hosts[0]!.netns,
        "env",
        ...hostEnv(),
        "/usr/share/ovn/scripts/ovn-ctl",
        "stop_controller",
      ],
      { timeoutMs: 30_000 },
    ).catch(() => undefined);
    await pool.destroyAll();
  } finally {
    await ovn?.close();
    await rm(stateDir, { recursive: true, force: true });
  }
});

test("host-setup --ovn-host starts ovn-controller once; with the agent's settings it carries a lab", async () => {
  const first = await setUpHost();
  assert.match(first, /starting ovn-controller \(ovn-ctl\)/);
  const pid = await readPid(pidfile());
  assert.ok(
    pid !== undefined && (await isOurs(pid, ovn.hosts[0]!.ovs.dir)),
    "ovn-controller runs on the host's OVS",
  );

  // Idempotent: a second run finds it and starts nothing.
  const second = await setUpHost();
  assert.match(second, new RegExp(`ovn-controller: running \\(pid ${pid}\\)`));
  assert.equal(await readPid(pidfile()), pid);

  // Nothing configured it: the agent writes system-id, ovn-remote and the encap, and it registers.
  agent = await createAgent(ovnAgentConfig(ovn, ovn.hosts[0]!, stateDir), { logger: silentLogger() });
  const chassis = ovn.hosts[0]!.chassis;
  await until(`chassis ${chassis} in SB`, async () =>
    (await ovn.central.sbctl(["--bare", "--columns=name", "list", "chassis"])).split("\n").includes(chassis),
  );

  const [a, b] = (await pool.create(2)) as [string, string];
  await agent.services.labs.putLab("svc", {
    nodes: [
      { name: "a", netns: a, interfaces: [{ name: "eth1" }] },
      { name: "b", netns: b, interfaces: [{ name: "eth1" }] },
    ],
    links: [{ id: "l1", a: "a:eth1", b: "b:eth1" }],
  });
  await until("the lab's bindings up", () =>
    agent!.services.labs.getLab("svc").nodes.every((n) => n.interfaces.every((i) => i.binding?.up)),
  );
  await addAddress(a, "eth1", "198.19.40.1/24");
  await addAddress(b, "eth1", "198.19.40.2/24");
  assert.ok(await ping(a, "198.19.40.2"), "a pings b through the service's flows");

  // `archnet host check --backend ovn` finds it answering on its control socket.
  const saved = process.env.OVN_RUNDIR;
  process.env.OVN_RUNDIR = ovn.hosts[0]!.ovs.dir;
  try {
    const check = (await hostChecks("ovn")).find((c) => c.name === "ovn-controller running");
    assert.ok(check?.ok, `host check: ${check?.detail}`);
    assert.match(check.detail, /connected/);
  } finally {
    if (saved === undefined) delete process.env.OVN_RUNDIR;
    else process.env.OVN_RUNDIR = saved;
  }
});
