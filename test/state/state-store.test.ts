import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import type { OverlayRecord } from "../../src/state/records.js";
import { StateStore } from "../../src/state/state-store.js";

const root = mkdtempSync(join(tmpdir(), "archnet-state-"));
after(() => rmSync(root, { recursive: true, force: true }));

const overlay = (link: string, vni: number): OverlayRecord => ({
  lab: "lab1",
  link,
  node: "r1",
  interface: "eth1",
  vni,
  localIp: "198.18.0.1",
  remoteIp: "198.18.0.2",
  mtu: 1450,
  createdAt: 1,
});

test("collections keep one file per item and read back after a restart", () => {
  const dir = join(root, "a");
  const s = new StateStore(dir);
  s.overlays.set("lab1/l1", overlay("l1", 5001));
  s.overlays.set("lab1/l2", overlay("l2", 5002));
  s.overlays.set("lab1/l2", overlay("l2", 5003));
  s.overlays.delete("lab1/l1");
  assert.deepEqual(readdirSync(join(dir, "overlays")), ["lab1%2Fl2.json"]);
  // A torn temporary file of an interrupted write is ignored.
  writeFileSync(join(dir, "overlays", "lab1%2Fl3.json.tmp-1"), "{");
  const again = new StateStore(dir);
  assert.deepEqual(again.overlays.values(), [overlay("l2", 5003)]);
  assert.equal(again.overlays.get("lab1/l2")?.vni, 5003);
});

test("a collection kept in one file by an earlier version is moved to per-item files", () => {
  const dir = join(root, "b");
  new StateStore(dir); // creates the directories
  rmSync(join(dir, "overlays"), { recursive: true });
  writeFileSync(join(dir, "overlays.json"), JSON.stringify({ "lab1/l1": overlay("l1", 5001) }));
  const s = new StateStore(dir);
  assert.deepEqual(s.overlays.values(), [overlay("l1", 5001)]);
  assert.equal(existsSync(join(dir, "overlays.json")), false);
  assert.deepEqual(new StateStore(dir).overlays.values(), [overlay("l1", 5001)]);
});
