import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { AgentError } from "../../src/common/errors.js";
import { JsonStreamSplitter } from "../../src/ovsdb/json-stream.js";

function collect(max?: number) {
  const values: unknown[] = [];
  const errors: AgentError[] = [];
  const s = new JsonStreamSplitter(
    (v) => values.push(v),
    (e) => errors.push(e),
    max,
  );
  return { s, values, errors };
}

describe("JsonStreamSplitter", () => {
  test("splits concatenated values with no delimiter, whitespace allowed between", () => {
    const { s, values, errors } = collect();
    s.push(Buffer.from('{"a":1}[1,2]  \n{"b":{"c":[]}}'));
    assert.deepEqual(values, [{ a: 1 }, [1, 2], { b: { c: [] } }]);
    assert.equal(errors.length, 0);
  });

  test("values split across chunks at every byte position", () => {
    const text = '{"id":1,"result":["x}]\\"{[",{"k":"é ☃ 😀"}],"error":null}{"id":null}';
    const bytes = Buffer.from(text);
    for (let cut = 1; cut < bytes.length; cut++) {
      const { s, values, errors } = collect();
      s.push(bytes.subarray(0, cut));
      s.push(bytes.subarray(cut));
      assert.deepEqual(
        values,
        [JSON.parse(text.slice(0, text.indexOf("}{") + 1)), { id: null }],
        `cut ${cut}`,
      );
      assert.equal(errors.length, 0);
    }
  });

  test("one byte at a time", () => {
    const { s, values } = collect();
    for (const b of Buffer.from('["a\\\\",{"b":"\\\\\\""}]{}')) s.push(Buffer.from([b]));
    assert.deepEqual(values, [["a\\", { b: '\\"' }], {}]);
  });

  test("brackets inside strings do not count", () => {
    const { s, values } = collect();
    s.push(Buffer.from('{"s":"}}}]]]{{{"}'));
    assert.deepEqual(values, [{ s: "}}}]]]{{{" }]);
  });

  test("garbage between values is an error, reported once, then input is ignored", () => {
    const { s, values, errors } = collect();
    s.push(Buffer.from('{"a":1}garbage{"b":2}'));
    s.push(Buffer.from('{"c":3}'));
    assert.deepEqual(values, [{ a: 1 }]);
    assert.equal(errors.length, 1);
    assert.equal(errors[0]!.code, "OVSDB_PROTOCOL");
    assert.ok(s.hasFailed);
  });

  test("malformed JSON with balanced brackets is an error", () => {
    const { s, values, errors } = collect();
    s.push(Buffer.from("{nope: 1}"));
    assert.deepEqual(values, []);
    assert.equal(errors.length, 1);
    assert.match(errors[0]!.message, /malformed JSON/);
  });

  test("a value over the size limit is an error, within one chunk or across chunks", () => {
    const one = collect(16);
    one.s.push(Buffer.from(`{"a":"${"x".repeat(20)}"}`));
    assert.equal(one.errors.length, 1);
    assert.match(one.errors[0]!.message, /exceeds 16 bytes/);

    const many = collect(1024);
    many.s.push(Buffer.from('{"a":"'));
    for (let i = 0; i < 100 && !many.s.hasFailed; i++) many.s.push(Buffer.alloc(100, 0x78));
    assert.equal(many.errors.length, 1);
    assert.equal(many.values.length, 0);

    const exact = collect(9);
    exact.s.push(Buffer.from('{"a":123}'));
    assert.deepEqual(exact.values, [{ a: 123 }]);
  });
});
