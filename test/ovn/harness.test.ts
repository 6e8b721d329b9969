import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { run } from "../../src/common/exec.js";
import { addAddress, NetnsPool, nsExec } from "../harness/netns.js";
import { type OvnHosts, startOvnHosts, until } from "../harness/ovn-hosts.js";
import { expectPing } from "../harness/traffic.js";

/** The harness itself, without the agent: two hosts, one logical switch made with ovn-nbctl. */
let ovn: OvnHosts;
const pool = new NetnsPool("ovnn");

before(async () => {
  ovn = await startOvnHosts({ hosts: 2 });
});
after(async () => {
  await pool.destroyAll();
  await ovn?.close();
});

test("two chassis register, a logical switch across them carries ping", async () => {
  await until("both chassis in SB", async () => {
    const out = await ovn.central.sbctl(["--bare", "--columns=name", "list", "Chassis"]);
    return ovn.hosts.every((h) => out.includes(h.chassis));
  });
  await until("br-int on both hosts", async () => {
    for (const h of ovn.hosts) {
      const r = await h.vsctl(["br-exists", "br-int"]).then(
        () => true,
        () => false,
      );
      if (!r) return false;
    }
    return true;
  });
  const nodes = await pool.create(2);
  for (const [i, h] of ovn.hosts.entries()) {
    const ns = nodes[i]!;
    const vh = `vh${i}`;
    await run("ip", ["-n", h.netns, "link", "add", vh, "type", "veth", "peer", "name", "eth1", "netns", ns]);
    await run("ip", ["-n", h.netns, "link", "set", vh, "up"]);
    await nsExec(ns, ["ip", "link", "set", "eth1", "up"]);
    await addAddress(ns, "eth1", `198.19.0.${i + 1}/24`);
    await h.vsctl(["add-port", "br-int", vh, "--", "set", "interface", vh, `external_ids:iface-id=p${i}`]);
  }
  await ovn.central.nbctl([
    "ls-add",
    "l1",
    "--",
    "set",
    "logical_switch",
    "l1",
    "other_config:vlan-passthru=true",
    "--",
    "lsp-add",
    "l1",
    "p0",
    "--",
    "lsp-set-addresses",
    "p0",
    "unknown",
    "--",
    "lsp-add",
    "l1",
    "p1",
    "--",
    "lsp-set-addresses",
    "p1",
    "unknown",
  ]);
  await ovn.central.nbctl(["--wait=hv", "sync"]);
  await until("both ports up", async () => {
    const out = await ovn.central.nbctl(["--bare", "--columns=up", "list", "Logical_Switch_Port"]);
    return out.split("\n").filter((l) => l.trim() === "true").length === 2;
  });
  await expectPing(nodes[0]!, "198.19.0.2", { count: 3, timeoutS: 2 });
  assert.ok(true);
});
