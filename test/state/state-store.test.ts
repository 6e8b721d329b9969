import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { pino } from "pino";
import { isAgentError } from "../../src/common/errors.js";
import type { LabRecord, OverlayRecord } from "../../src/model/records.js";
import { StateStore } from "../../src/state/state-store.js";
import { mountSmallDisk, type SmallDisk } from "./small-disk.js";

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

test("collections keep one file per item and read back after a restart", async () => {
  const dir = join(root, "a");
  const s = await StateStore.open(dir);
  await s.overlays.set("lab1/l1", overlay("l1", 5001));
  await s.overlays.set("lab1/l2", overlay("l2", 5002));
  await s.overlays.set("lab1/l2", overlay("l2", 5003));
  await s.overlays.delete("lab1/l1");
  assert.deepEqual(readdirSync(join(dir, "overlays")), ["lab1%2Fl2.json"]);
  // A torn temporary file of an interrupted write is ignored.
  writeFileSync(join(dir, "overlays", "lab1%2Fl3.json.tmp-1"), "{");
  const again = await StateStore.open(dir);
  assert.deepEqual(again.overlays.values(), [overlay("l2", 5003)]);
  assert.equal(again.overlays.get("lab1/l2")?.vni, 5003);
});

test("a collection kept in one file by an earlier version is moved to per-item files", async () => {
  const dir = join(root, "b");
  await StateStore.open(dir); // creates the directories
  rmSync(join(dir, "overlays"), { recursive: true });
  writeFileSync(join(dir, "overlays.json"), JSON.stringify({ "lab1/l1": overlay("l1", 5001) }));
  const s = await StateStore.open(dir);
  assert.deepEqual(s.overlays.values(), [overlay("l1", 5001)]);
  assert.equal(existsSync(join(dir, "overlays.json")), false);
  assert.deepEqual((await StateStore.open(dir)).overlays.values(), [overlay("l1", 5001)]);
});

test("a change shows at once, reaches the disk off the event loop, and a burst of changes ends as its last", async () => {
  const dir = join(root, "d");
  const s = await StateStore.open(dir);
  const file = join(dir, "labs", "burst.json");
  const first = lab("burst");
  const written = s.saveLab(first);
  // Nothing of the write can have run yet: the call did not wait for the disk.
  assert.equal(existsSync(file), false);
  assert.equal(s.lab("burst"), first);
  await written;
  assert.deepEqual(JSON.parse(readFileSync(file, "utf8")), first);

  const burst = Array.from({ length: 50 }, (_, i) => lab("burst", `eth${i}`));
  const writes = burst.map((rec) => s.saveLab(rec));
  const gone = s.deleteLab("burst");
  const last = s.saveLab(burst[49]!);
  assert.equal(s.lab("burst"), burst[49]);
  await Promise.all([...writes, gone, last]);
  assert.equal(s.lab("burst"), burst[49]);
  assert.deepEqual(JSON.parse(readFileSync(file, "utf8")), burst[49]);
  await s.deleteLab("burst");
  assert.equal(existsSync(file), false);
  assert.deepEqual(
    readdirSync(join(dir, "labs")).filter((f) => f.includes("burst")),
    [],
  );
  assert.equal((await StateStore.open(dir)).lab("burst"), undefined);
});

/** A logger whose warnings the test can read. */
function capturingLogger() {
  const lines: { msg: string; file?: string; movedTo?: string }[] = [];
  const logger = pino({ level: "warn" }, { write: (s: string) => lines.push(JSON.parse(s)) });
  return { logger, lines };
}

const lab = (id: string, pad = ""): LabRecord => ({
  lab: id,
  group: 7,
  createdAt: 1,
  nodes: {},
  links: pad === "" ? {} : { l1: { id: "l1", a: "r1:eth1", b: `r2:${pad}`, carrier: "up", createdAt: 1 } },
});

test("a damaged file (empty, truncated, not JSON, not a record) is set aside, logged, and the rest loads", async () => {
  const dir = join(root, "c");
  const s = await StateStore.open(dir);
  for (const id of ["good", "empty", "torn", "text", "array"]) await s.saveLab(lab(id));
  await s.overlays.set("lab1/l1", overlay("l1", 5001));
  await s.overlays.set("lab1/l2", overlay("l2", 5002));
  writeFileSync(join(dir, "labs", "empty.json"), "");
  writeFileSync(join(dir, "labs", "torn.json"), JSON.stringify(lab("torn")).slice(0, 20));
  writeFileSync(join(dir, "labs", "text.json"), "not json at all");
  writeFileSync(join(dir, "labs", "array.json"), "[1,2]");
  writeFileSync(join(dir, "overlays", "lab1%2Fl2.json"), "\0\0\0");

  const { logger, lines } = capturingLogger();
  const again = await StateStore.open(dir, { logger });
  assert.deepEqual(
    again.labs().map((l) => l.lab),
    ["good"],
  );
  assert.deepEqual(again.overlays.values(), [overlay("l1", 5001)]);
  assert.equal(again.setAside.length, 5);
  assert.deepEqual(
    readdirSync(join(dir, "labs")).filter((f) => f.endsWith(".json")),
    ["good.json"],
  );
  for (const moved of again.setAside) assert.match(moved, /\.json\.corrupt-\d{8}T\d{9}Z$/);
  assert.equal(readFileSync(again.setAside.find((f) => f.includes("text.json"))!, "utf8"), "not json at all");
  assert.equal(lines.length, 5);
  for (const l of lines) {
    assert.match(l.msg, /is damaged and was set aside as .*; the agent runs without what it described/);
    assert.match(l.msg, /PUT the lab \(or attach the overlay link\) again, or repair the kept copy/);
    assert.ok(l.movedTo && again.setAside.includes(l.movedTo));
  }
  // The set-aside copies are not read again.
  assert.deepEqual((await StateStore.open(dir)).setAside, []);
});

describe("a full disk", () => {
  let disk: SmallDisk;
  before(async () => {
    disk = await mountSmallDisk();
  });
  after(() => disk?.remove());

  test("a write that does not fit throws STATE_WRITE_FAILED (507), keeps the old file and memory, leaves no temp file", async () => {
    const s = await StateStore.open(disk.dir);
    const old = lab("big");
    await s.saveLab(old);
    await s.overlays.set("lab1/l1", overlay("l1", 5001));
    const stored = readFileSync(join(disk.dir, "labs", "big.json"), "utf8");
    // One page free: the first write(2) of a larger document is short, the next one ENOSPC.
    disk.fill(4096);
    try {
      await assert.rejects(s.saveLab(lab("big", "x".repeat(10_000))), (e) => {
        assert.ok(isAgentError(e, "STATE_WRITE_FAILED"));
        assert.equal(e.status, 507);
        assert.match(e.message, new RegExp(`in ${join(disk.dir, "labs")} \\(ENOSPC`));
        assert.match(e.hint ?? "", new RegExp(`free space in ${join(disk.dir, "labs")}`));
        return true;
      });
      assert.equal(s.lab("big"), old);
      await assert.rejects(s.saveLab(lab("new", "x".repeat(10_000))), (e) =>
        isAgentError(e, "STATE_WRITE_FAILED"),
      );
      assert.equal(s.lab("new"), undefined);
      await assert.rejects(
        s.overlays.set("lab1/l2", { ...overlay("l2", 5002), node: "x".repeat(10_000) }),
        (e) => isAgentError(e, "STATE_WRITE_FAILED"),
      );
      assert.equal(s.overlays.get("lab1/l2"), undefined);
      // Two changes on their way when the write fails: the collection shows what the disk has.
      const a = s.saveLab(lab("big", "y".repeat(10_000)));
      const b = s.saveLab(lab("big", "z".repeat(10_000)));
      assert.equal(s.lab("big")?.links.l1?.b, `r2:${"z".repeat(10_000)}`);
      await Promise.all([assert.rejects(a), assert.rejects(b)]);
      assert.equal(s.lab("big"), old);
      assert.equal(readFileSync(join(disk.dir, "labs", "big.json"), "utf8"), stored);
      assert.deepEqual(readdirSync(join(disk.dir, "labs")).sort(), ["big.json"]);
      assert.deepEqual(readdirSync(join(disk.dir, "overlays")), ["lab1%2Fl1.json"]);
    } finally {
      disk.drain();
    }
    const again = await StateStore.open(disk.dir);
    assert.deepEqual(again.lab("big"), old);
    assert.deepEqual(again.overlays.values(), [overlay("l1", 5001)]);
  });
});
