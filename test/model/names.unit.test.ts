import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { UsageError } from "../../src/cli/client.js";
import { parseEnd as cliParseEnd } from "../../src/cli/context.js";
import { isAgentError } from "../../src/common/errors.js";
import { loadConfig } from "../../src/config/config.js";
import {
  ipBatch,
  netnsPath,
  parseNetnsRef,
  validateIfName,
  validateNetnsName,
  validateUnicastMac,
} from "../../src/link/index.js";
import { parseBatchFailures } from "../../src/link/ip.js";
import { nodeMac } from "../../src/model/derived-names.js";
import {
  END_PATTERN,
  formatEnd,
  ID_PATTERN,
  IFNAME_PATTERN,
  parseEnd,
  validateId,
} from "../../src/model/names.js";

const code = (c: string) => (e: unknown) => isAgentError(e) && e.code === c;

describe("interface and namespace names", () => {
  it("accepts kernel-valid interface names, ip keywords among them", () => {
    const ok = [
      "eth1",
      "a",
      "x".repeat(15),
      "veth-a1_b2.3",
      "Eth0",
      "up",
      "help",
      "dev",
      "type",
      "Ethernet1_1",
    ];
    for (const n of ok) assert.equal(validateIfName(n), n);
  });

  it("one rule: the validator and the API's pattern agree on every ASCII character", () => {
    const pattern = new RegExp(IFNAME_PATTERN, "u");
    const refused = new Set([..."#%\"'\\/:"]);
    for (let c = 0; c < 128; c++) {
      const ch = String.fromCharCode(c);
      const name = `a${ch}b`;
      const want = c > 0x20 && c < 0x7f && !refused.has(ch);
      let took = true;
      try {
        validateIfName(name);
      } catch (e) {
        assert.ok(isAgentError(e) && e.code === "INVALID_NAME");
        took = false;
      }
      assert.equal(took, want, `validator on ${JSON.stringify(name)}`);
      assert.equal(pattern.test(name), want, `pattern on ${JSON.stringify(name)}`);
    }
    for (const n of [".", "..", "all", "default", "", "x".repeat(16)]) {
      assert.equal(pattern.test(n), false, n);
      assert.throws(() => validateIfName(n), code("INVALID_NAME"), n);
    }
  });

  it("ids and NODE:IF ends: the validators and the API's patterns agree", () => {
    const id = new RegExp(ID_PATTERN, "u");
    const end = new RegExp(END_PATTERN, "u");
    const ids = [
      "r1",
      "R",
      "lab-1.a_b",
      "9",
      "x".repeat(63),
      "",
      "-x",
      ".x",
      "_x",
      "x".repeat(64),
      "a b",
      "a:b",
      "a#b",
      "é",
    ];
    for (const v of ids) {
      const took = (() => {
        try {
          return validateId(v, "node") === v;
        } catch {
          return false;
        }
      })();
      assert.equal(id.test(v), took, v);
    }
    for (const text of [
      "r1:eth1",
      "r1:up",
      "r1:eth#1",
      "r1eth1",
      "r1:",
      ":eth1",
      "r1:a:b",
      "-r:eth1",
      "r1:all",
    ]) {
      const took = (() => {
        try {
          return formatEnd(parseEnd(text)) === text;
        } catch (e) {
          assert.ok(isAgentError(e) && e.code === "INVALID_NAME", text);
          return false;
        }
      })();
      assert.equal(end.test(text), took, text);
    }
  });

  it("eth#1 is refused with INVALID_NAME saying why (ip -batch would read eth and a comment)", () => {
    assert.throws(
      () => validateIfName("eth#1"),
      (e: unknown) => {
        assert.ok(isAgentError(e));
        assert.equal(e.code, "INVALID_NAME");
        assert.match(e.message, /interface name "eth#1" is not valid: .*#.*comment/);
        assert.ok(e.hint);
        return true;
      },
    );
  });

  it("the agent's settings that are names follow the same rules", () => {
    for (const [name, value] of [
      ["ARCHETYPE_AGENT_BRIDGE", "br#0"],
      ["ARCHETYPE_AGENT_UNDERLAY_BRIDGE", "all"],
      ["ARCHETYPE_AGENT_UNDERLAY_INTERFACE", "eth 0"],
      ["ARCHETYPE_AGENT_SWITCH_NETNS", "a b"],
      ["ARCHETYPE_AGENT_SWITCH_NETNS", "/run/netns/../x"],
    ] as const) {
      assert.throws(
        () => loadConfig({ env: { [name]: value } }),
        (e: unknown) => isAgentError(e) && e.code === "INVALID_CONFIG" && e.message.startsWith(name),
        `${name}=${value}`,
      );
    }
    const ok = loadConfig({
      env: { ARCHETYPE_AGENT_BRIDGE: "up", ARCHETYPE_AGENT_SWITCH_NETNS: "/proc/1/ns/net" },
    });
    assert.equal(ok.bridge, "up");
  });

  it("the CLI parses NODE:IF by the same rule: a bad end is a usage error before any request", () => {
    assert.deepEqual(cliParseEnd("r1:eth1"), { node: "r1", iface: "eth1" });
    for (const text of ["r1:eth#1", "r1eth1", "r1:a b", "-r:eth1", "r1:"]) {
      assert.throws(
        () => cliParseEnd(text),
        (e: unknown) => e instanceof UsageError,
        text,
      );
    }
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
      "eth#1",
      "#c",
      "a%b",
      "all",
      "default",
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

describe("node interface MACs", () => {
  it("are derived from lab, node and interface: the same each time, locally administered unicast", () => {
    const mac = nodeMac("lab1", "r1", "eth1");
    assert.equal(mac, nodeMac("lab1", "r1", "eth1"));
    assert.match(mac, /^02(:[0-9a-f]{2}){5}$/);
    assert.equal(validateUnicastMac(mac), mac);
    const others = [
      nodeMac("lab2", "r1", "eth1"),
      nodeMac("lab1", "r2", "eth1"),
      nodeMac("lab1", "r1", "eth2"),
    ];
    assert.equal(new Set([mac, ...others]).size, 4);
    // The parts are separated: "a"+"bc" is not "ab"+"c".
    assert.notEqual(nodeMac("a", "bc", "eth1"), nodeMac("ab", "c", "eth1"));
  });

  it("refuses what ip would not take as a unicast address", () => {
    for (const bad of [
      "01:00:5e:00:00:01",
      "02:00:00:00:00",
      "02:00:00:00:00:0G",
      "02-00-00-00-00-01",
      "AA:00:00:00:00:01",
      "",
    ]) {
      assert.throws(
        () => validateUnicastMac(bad),
        (e: unknown) => isAgentError(e) && e.code === "BAD_REQUEST",
        bad,
      );
    }
  });
});
