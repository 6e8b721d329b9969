import assert from "node:assert/strict";
import { test } from "node:test";
import { type CacheChange, TableCache } from "../../src/ovsdb/cache.js";
import { DecodedView } from "../../src/ovsdb/decoded-view.js";
import { decodePort, type PortRow } from "../../src/ovsdb/models.js";
import type { DatabaseSchema } from "../../src/ovsdb/schema.js";

const schema: DatabaseSchema = {
  name: "Open_vSwitch",
  version: "test",
  tables: {
    Port: {
      columns: {
        name: { type: "string" },
        interfaces: { type: { key: { type: "uuid" }, min: 1, max: "unlimited" } },
        tag: { type: { key: { type: "integer" }, min: 0, max: 1 } },
        external_ids: { type: { key: "string", value: "string", min: 0, max: "unlimited" } },
        other_config: { type: { key: "string", value: "string", min: 0, max: "unlimited" } },
      },
    },
  },
};
const COLUMNS = { Port: ["name", "interfaces", "tag", "external_ids", "other_config"] };
const P = "aaaaaaaa-0000-0000-0000-000000000001";
const P2 = "aaaaaaaa-0000-0000-0000-000000000002";
const I1 = "bbbbbbbb-0000-0000-0000-000000000001";

test("cache applies initial/insert/modify/delete and fills defaults omitted by the server", () => {
  const cache = new TableCache(schema, COLUMNS);
  const view = new DecodedView<PortRow>(decodePort);
  const feed = (changes: CacheChange[]) => {
    for (const c of changes) view.apply(c);
    return changes;
  };

  feed(cache.apply({ Port: { [P]: { initial: { name: "p0", interfaces: ["uuid", I1] } } } }));
  assert.deepEqual(cache.row("Port", P), {
    _uuid: P,
    name: "p0",
    interfaces: ["uuid", I1],
    tag: ["set", []],
    external_ids: ["map", []],
    other_config: ["map", []],
  });
  assert.deepEqual(view.getByName("p0"), {
    uuid: P,
    name: "p0",
    interfaces: [I1],
    external_ids: {},
    other_config: {},
  });

  const [m] = feed(
    cache.apply({ Port: { [P]: { modify: { tag: 100, external_ids: ["map", [["k", "v"]]] } } } }),
  );
  assert.equal(m!.kind, "modify");
  assert.deepEqual(m!.old?.tag, ["set", []]);
  assert.equal(m!.new?.tag, 100);
  assert.equal(view.getByName("p0")?.tag, 100);
  assert.deepEqual(view.getByName("p0")?.external_ids, { k: "v" });

  feed(cache.apply({ Port: { [P]: { modify: { tag: ["set", []] } } } }));
  assert.equal(view.getByName("p0")?.tag, undefined);

  // a rename in one update: the new row with the old name arrives before the old row's delete
  feed(cache.apply({ Port: { [P2]: { insert: { name: "p0" } }, [P]: { delete: null } } }));
  assert.equal(view.getByName("p0")?.uuid, P2);
  assert.equal(view.size, 1);
  const [d] = feed(cache.apply({ Port: { [P2]: { delete: null } } }));
  assert.equal(d!.kind, "delete");
  assert.equal(view.getByName("p0"), undefined);
  assert.equal(cache.table("Port").size, 0);
});
