import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isAgentError } from "../../src/common/errors.js";
import {
  ipBatch,
  netnsPath,
  parseNetnsRef,
  validateIfName,
  validateNetnsName,
} from "../../src/link/index.js";
import { parseBatchFailures } from "../../src/link/ip.js";

const code = (c: string) => (e: unknown) => isAgentError(e) && e.code === c;

describe("interface and namespace names", () => {
  it("accepts kernel-valid interface names", () => {
    for (const n of ["eth1", "a", "x".repeat(15), "veth-a1_b2.3", "Eth0"]) assert.equal(validateIfName(n), n);
  });

  it("rejects names the kernel or ip -batch cannot take, naming the value and the rule", () => {
    const bad = [
      "",
      "x".repeat(16),
      ".",
      "..",
      "a/b",
      "a:b",
      "a b",
      "a\tb",
      "eth%d",
      'a"b',
      "a'b",
      "a\\b",
      "é",
    ];
    for (const n of bad) assert.throws(() => validateIfName(n, "peer interface"), code("INVALID_NAME"), n);
    assert.throws(
      () => validateIfName("x".repeat(16)),
      /"x{16}" is not valid: it must be at most 15 characters/,
    );
    assert.throws(() => validateIfName("a/b", "host interface"), /^AgentError: host interface "a\/b"/);
  });

  it("validates netns names", () => {
    assert.equal(validateNetnsName("lab1-r1_a.b"), "lab1-r1_a.b");
    for (const n of ["", "a/b", "..", "a b", "x".repeat(65), "ä"]) {
      assert.throws(() => validateNetnsName(n), code("INVALID_NAME"), n);
    }
  });
});

describe("netns references", () => {
  it("maps names, pids and paths to the namespace file", () => {
    assert.equal(netnsPath({ name: "r1" }), "/var/run/netns/r1");
    assert.equal(netnsPath({ pid: 42 }), "/proc/42/ns/net");
    assert.equal(netnsPath({ path: "/proc/1/ns/net" }), "/proc/1/ns/net");
  });

  it("rejects bad pids and paths", () => {
    for (const pid of [0, -1, 1.5, Number.NaN]) assert.throws(() => netnsPath({ pid }), code("BAD_REQUEST"));
    for (const path of ["relative/x", "/var/run/netns/../x", ""]) {
      assert.throws(() => netnsPath({ path }), code("BAD_REQUEST"), path);
    }
    assert.throws(() => netnsPath({ name: "../etc" }), code("INVALID_NAME"));
  });

  it("parses API input: a leading / is a path, otherwise a name; exactly one of netns and pid", () => {
    assert.deepEqual(parseNetnsRef({ netns: "r1" }), { name: "r1" });
    assert.deepEqual(parseNetnsRef({ netns: "/proc/7/ns/net" }), { path: "/proc/7/ns/net" });
    assert.deepEqual(parseNetnsRef({ pid: 7 }), { pid: 7 });
    assert.throws(() => parseNetnsRef({}), code("BAD_REQUEST"));
    assert.throws(() => parseNetnsRef({ netns: "r1", pid: 7 }), code("BAD_REQUEST"));
  });
});

describe("ip -batch", () => {
  it("refuses arguments that would change how ip splits the line, before running anything", async () => {
    for (const arg of ["a b", "a\nb", 'a"', "'", "x\\", "", "#c"]) {
      await assert.rejects(
        ipBatch([
          ["link", "show"],
          ["link", "set", "dev", arg, "up"],
        ]),
        code("BAD_REQUEST"),
      );
    }
  });

  it("reads which lines failed from ip's stderr", () => {
    const stderr =
      'Cannot find device "a"\nCommand failed -:1\nRTNETLINK answers: File exists\nCommand failed -:3\n';
    assert.deepEqual(parseBatchFailures(stderr), [
      { line: 0, message: 'Cannot find device "a"' },
      { line: 2, message: "RTNETLINK answers: File exists" },
    ]);
  });
});
