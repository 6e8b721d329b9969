import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { columnKind, defaultValue } from "../../src/ovsdb/schema.js";
import {
  applyUpdate2Modify,
  decodeIntMap,
  decodeMap,
  decodeOptional,
  decodeSet,
  decodeUuid,
  map,
  namedUuid,
  set,
  uuid,
} from "../../src/ovsdb/value.js";

const U1 = "11111111-1111-1111-1111-111111111111";
const U2 = "22222222-2222-2222-2222-222222222222";

describe("wire values", () => {
  test("builders", () => {
    assert.deepEqual(uuid(U1), ["uuid", U1]);
    assert.deepEqual(namedUuid("p0"), ["named-uuid", "p0"]);
    assert.deepEqual(set([1, 2]), ["set", [1, 2]]);
    assert.deepEqual(map({ a: "1", b: 2 }), [
      "map",
      [
        ["a", "1"],
        ["b", 2],
      ],
    ]);
  });

  test("decodeSet: a single atom is a one-element set; uuids become strings", () => {
    assert.deepEqual(decodeSet(["uuid", U1]), [U1]);
    assert.deepEqual(
      decodeSet([
        "set",
        [
          ["uuid", U1],
          ["uuid", U2],
        ],
      ]),
      [U1, U2],
    );
    assert.deepEqual(decodeSet(["set", []]), []);
    assert.deepEqual(decodeSet<number>(5), [5]);
    assert.deepEqual(decodeSet(undefined), []);
  });

  test("decodeMap / decodeIntMap", () => {
    assert.deepEqual(decodeMap(["map", [["a", "x"], ["n", 5] as never]]), { a: "x", n: "5" });
    assert.deepEqual(decodeMap(["map", []]), {});
    assert.deepEqual(decodeIntMap(["map", [["rx_packets", 7]]]), { rx_packets: 7 });
  });

  test("decodeUuid / decodeOptional", () => {
    assert.equal(decodeUuid(["uuid", U1]), U1);
    assert.throws(() => decodeUuid("x"));
    assert.equal(decodeOptional(["set", []]), undefined);
    assert.equal(decodeOptional<number>(100), 100);
    assert.equal(decodeOptional<string>(["set", ["secure"]]), "secure");
  });
});

describe("update2 modify semantics", () => {
  test("set column: the diff toggles elements", () => {
    const old = set([uuid(U1)]);
    assert.deepEqual(applyUpdate2Modify(old, uuid(U2), "set"), ["set", [uuid(U1), uuid(U2)]]);
    assert.deepEqual(applyUpdate2Modify(old, uuid(U1), "set"), ["set", []]);
    // what ovsdb-server 3.1 sent for trunks [1,2,3] -> [2,3,4]
    assert.deepEqual(applyUpdate2Modify(set([1, 2, 3]), set([1, 4]), "set"), ["set", [2, 3, 4]]);
    assert.deepEqual(applyUpdate2Modify(undefined, set([1]), "set"), ["set", [1]]);
  });

  test("map column: insert, delete on same value, replace on another value", () => {
    const old = map({ a: "1", b: "2" });
    // what ovsdb-server 3.1 sent for {a=1,b=2} -> {a=1,b=3,c=4}
    const diff = map({ b: "3", c: "4" });
    assert.deepEqual(decodeMap(applyUpdate2Modify(old, diff, "map")), { a: "1", b: "3", c: "4" });
    assert.deepEqual(applyUpdate2Modify(old, map({ a: "1", b: "2" }), "map"), ["map", []]);
  });

  test("scalar and optional scalar (max 1): the diff is the new value", () => {
    assert.equal(applyUpdate2Modify(7, 9, "scalar"), 9);
    assert.deepEqual(applyUpdate2Modify(7, ["set", []], "scalar"), ["set", []]);
    assert.equal(applyUpdate2Modify(["set", []], 100, "scalar"), 100);
  });

  test("column kinds and defaults from the schema", () => {
    const tag = {
      type: { key: { type: "integer" as const, minInteger: 0, maxInteger: 4095 }, min: 0, max: 1 },
    };
    const ports = { type: { key: { type: "uuid" as const }, min: 0, max: "unlimited" as const } };
    const ids = {
      type: { key: "string" as const, value: "string" as const, min: 0, max: "unlimited" as const },
    };
    const name = { type: "string" as const };
    const cfg = { type: "integer" as const };
    assert.equal(columnKind(tag), "scalar");
    assert.equal(columnKind(ports), "set");
    assert.equal(columnKind(ids), "map");
    assert.equal(columnKind(name), "scalar");
    assert.deepEqual(defaultValue(tag), ["set", []]);
    assert.deepEqual(defaultValue(ports), ["set", []]);
    assert.deepEqual(defaultValue(ids), ["map", []]);
    assert.equal(defaultValue(name), "");
    assert.equal(defaultValue(cfg), 0);
  });
});
