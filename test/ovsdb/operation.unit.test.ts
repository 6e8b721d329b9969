import assert from "node:assert/strict";
import { test } from "node:test";
import { eq, eqUuid, includes } from "../../src/ovsdb/condition.js";
import { add, mapDeleteKeys, mapInsert, setDelete, setInsert } from "../../src/ovsdb/mutation.js";
import { comment, del, insert, mutate, select, update, wait } from "../../src/ovsdb/operation.js";
import { map, namedUuid, uuid } from "../../src/ovsdb/value.js";

const U = "11111111-1111-1111-1111-111111111111";

test("operations are the plain RFC 7047 objects", () => {
  assert.deepEqual(insert("Port", { name: "p0", interfaces: namedUuid("i0") }, "p0"), {
    op: "insert",
    table: "Port",
    row: { name: "p0", interfaces: ["named-uuid", "i0"] },
    "uuid-name": "p0",
  });
  assert.deepEqual(insert("Interface", { name: "i" }), {
    op: "insert",
    table: "Interface",
    row: { name: "i" },
  });
  assert.deepEqual(update("Port", [eq("name", "p0")], { tag: 5 }), {
    op: "update",
    table: "Port",
    where: [["name", "==", "p0"]],
    row: { tag: 5 },
  });
  assert.deepEqual(mutate("Open_vSwitch", [], [setInsert("bridges", namedUuid("b")), add("next_cfg", 1)]), {
    op: "mutate",
    table: "Open_vSwitch",
    where: [],
    mutations: [
      ["bridges", "insert", ["named-uuid", "b"]],
      ["next_cfg", "+=", 1],
    ],
  });
  assert.deepEqual(del("Bridge", [eqUuid(U)]), {
    op: "delete",
    table: "Bridge",
    where: [["_uuid", "==", ["uuid", U]]],
  });
  assert.deepEqual(select("Bridge", [includes("ports", uuid(U))], ["name"]), {
    op: "select",
    table: "Bridge",
    where: [["ports", "includes", ["uuid", U]]],
    columns: ["name"],
  });
  assert.deepEqual(wait("Port", [eq("name", "p")], ["tag"], "==", [{ tag: 5 }], 0), {
    op: "wait",
    table: "Port",
    where: [["name", "==", "p"]],
    columns: ["tag"],
    until: "==",
    rows: [{ tag: 5 }],
    timeout: 0,
  });
  assert.deepEqual(comment("hi"), { op: "comment", comment: "hi" });
  assert.deepEqual(setDelete("ports", uuid(U)), ["ports", "delete", ["uuid", U]]);
  assert.deepEqual(mapInsert("external_ids", { a: "1" }), ["external_ids", "insert", map({ a: "1" })]);
  assert.deepEqual(mapDeleteKeys("external_ids", ["a"]), ["external_ids", "delete", ["set", ["a"]]]);
});
