import assert from "node:assert/strict";
import { test } from "node:test";
import {
  ownsPort,
  sameTunnel,
  tunnelDrops,
  vxlanMarks,
  vxlanOptions,
  vxlanPortName,
} from "../../src/backends/ovs/overlay/vxlan-port.js";
import type { OverlayRecord } from "../../src/model/records.js";
import { VNI_MAX } from "../../src/overlay/overlay-service.js";
import type { InterfaceRow, PortRow } from "../../src/ovsdb/index.js";

const rec: OverlayRecord = {
  lab: "lab1",
  link: "l1",
  node: "r1",
  interface: "eth1",
  vni: 5001,
  localIp: "198.18.0.1",
  remoteIp: "198.18.0.2",
  mtu: 1450,
  createdAt: 1,
};

function iface(over: Partial<InterfaceRow>): InterfaceRow {
  return {
    uuid: "u",
    name: "vxlan5001",
    type: "vxlan",
    options: {},
    external_ids: {},
    statistics: {},
    bfd: {},
    bfd_status: {},
    ...over,
  };
}

test("the port name follows from the VNI and fits 13 characters even for the largest VNI", () => {
  assert.equal(vxlanPortName(5001), "vxlan5001");
  assert.equal(vxlanPortName(VNI_MAX).length, 13);
});

test("options and marks", () => {
  assert.deepEqual(vxlanOptions(rec), { remote_ip: "198.18.0.2", local_ip: "198.18.0.1", key: "5001" });
  const marks = vxlanMarks(rec);
  assert.equal(marks.archetype_kind, "overlay");
  assert.equal(marks.archetype_vni, "5001");
  const port: PortRow = {
    uuid: "p",
    name: "vxlan5001",
    interfaces: [],
    external_ids: marks,
    other_config: {},
  };
  assert.ok(ownsPort(rec, port));
  assert.ok(!ownsPort({ ...rec, link: "l2" }, port));
  assert.ok(!ownsPort(rec, { ...port, external_ids: {} }));
});

test("sameTunnel compares type and the options the agent sets, ignoring others", () => {
  const opts = { ...vxlanOptions(rec), dst_port: "4789" };
  assert.ok(sameTunnel(rec, iface({ options: opts })));
  assert.ok(!sameTunnel(rec, iface({ options: { ...opts, remote_ip: "198.18.0.3" } })));
  assert.ok(!sameTunnel(rec, iface({ type: "geneve", options: opts })));
  assert.ok(!sameTunnel(rec, undefined));
});

test("drops add the tunnel's and the node port's dropped and failed packets", () => {
  const t = iface({ statistics: { tx_dropped: 1, rx_errors: 2, tx_packets: 100 } });
  const n = iface({ name: "vh1", type: "", statistics: { rx_dropped: 6 } });
  assert.equal(tunnelDrops(t, n), 9);
  assert.equal(tunnelDrops(undefined, undefined), 0);
});
