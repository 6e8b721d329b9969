import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { isAgentError } from "../../src/common/errors.js";
import { type CacheChange, del, eq, insert, map, OvsdbClient } from "../../src/ovsdb/index.js";
import { type OvnHosts, startOvnHosts, until } from "../harness/ovn-hosts.js";

/** The project's OVSDB client on OVN's northbound database: chosen tables, hv_cfg as "applied". */
let ovn: OvnHosts;
let nb: OvsdbClient;

before(async () => {
  ovn = await startOvnHosts({ hosts: 1 });
  await until("the chassis registered", async () =>
    (await ovn.central.sbctl(["--bare", "--columns=name", "list", "Chassis"])).includes("hv1"),
  );
  nb = await OvsdbClient.connect({
    remote: ovn.central.nbRemote,
    database: "OVN_Northbound",
    monitor: { Logical_Switch: ["name", "external_ids"] },
  });
});
after(async () => {
  await nb?.close();
  await ovn?.close();
});

test("a database other than Open_vSwitch needs its tables named (NB's applied counter is one)", async () => {
  await assert.rejects(
    OvsdbClient.connect({ remote: ovn.central.sbRemote, database: "OVN_Southbound" }),
    (e: unknown) => isAgentError(e) && e.code === "INVALID_CONFIG",
  );
});

test("transact with waitApplied answers once every hypervisor applied it (nb_cfg -> hv_cfg)", async () => {
  const seen: CacheChange[] = [];
  nb.on("change", (c: CacheChange) => seen.push(c));
  await nb.transact(
    [insert("Logical_Switch", { name: "probe", external_ids: map({ archetype_owner: "test" }) })],
    { waitApplied: true, timeoutMs: 30_000 },
  );
  const global = [...nb.rawRows("NB_Global").values()][0]!;
  assert.ok(typeof global.nb_cfg === "number" && global.nb_cfg > 0);
  assert.ok(nb.appliedCfg >= global.nb_cfg, `hv_cfg ${nb.appliedCfg} reached nb_cfg ${global.nb_cfg}`);
  // ovn-controller reported it in SB too.
  const cfg = Number(
    (await ovn.central.sbctl(["--bare", "--columns=nb_cfg", "list", "Chassis_Private"])).trim(),
  );
  assert.ok(cfg >= global.nb_cfg);
  assert.ok(seen.some((c) => c.table === "Logical_Switch" && c.kind === "insert" && c.new?.name === "probe"));
  assert.deepEqual(
    [...nb.rawRows("Logical_Switch").values()].map((r) => r.name),
    ["probe"],
  );
  await nb.transact([del("Logical_Switch", [eq("name", "probe")])], { waitApplied: true, timeoutMs: 30_000 });
  assert.equal(nb.rawRows("Logical_Switch").size, 0);
});

test("the southbound database has no applied counter: waitApplied is refused, plain transact works", async () => {
  const sb = await OvsdbClient.connect({
    remote: ovn.central.sbRemote,
    database: "OVN_Southbound",
    monitor: { Chassis: ["name"] },
  });
  try {
    assert.deepEqual(
      [...sb.rawRows("Chassis").values()].map((r) => r.name),
      ["hv1"],
    );
    await assert.rejects(
      sb.transact([], { waitApplied: true }),
      (e: unknown) => isAgentError(e) && e.code === "INVALID_CONFIG",
    );
  } finally {
    await sb.close();
  }
});
