/**
 * `archnet link impair`, `link ls` with counters, `link watch` and `archnet capture` against the
 * real agent over HTTP.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { run } from "../../src/common/exec.js";
import { netemMissing } from "../../src/link/tc.js";
import type { ImpairmentView, LinkView } from "../../src/model/views.js";
import { addAddress, nsExec } from "../harness/netns.js";
import { icmpEcho, parsePcap } from "../harness/pcap.js";
import { type RealAgentFixture, realAgentTarget } from "../harness/real-agent-fixture.js";
import { expectPing } from "../harness/traffic.js";
import { type CliResult, type CliTarget, runCli } from "./target.js";

const LAB = "clit";
let target: CliTarget;
let n1: string;
let n2: string;
let dir: string;
const cli = (...args: string[]): Promise<CliResult> => runCli(["--url", target.url, ...args]);
const ok = (r: CliResult) => assert.equal(r.code, 0, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);

before(async () => {
  target = await realAgentTarget({});
  const fx = target.fixture as RealAgentFixture;
  n1 = (await fx.nodeRef("a")).netns;
  n2 = (await fx.nodeRef("b")).netns;
  await fx.services.labs.putLab(LAB, {
    nodes: [
      { name: "a", netns: n1, interfaces: [{ name: "eth1", mtu: 1500 }] },
      { name: "b", netns: n2, interfaces: [{ name: "eth1", mtu: 1500 }] },
    ],
    links: [{ a: "a:eth1", b: "b:eth1", id: "l1" }],
  });
  await addAddress(n1, "eth1", "198.18.51.1/24");
  await addAddress(n2, "eth1", "198.18.51.2/24");
  await expectPing(n1, "198.18.51.2");
  dir = mkdtempSync(join(tmpdir(), "archnet-cli-cap-"));
});
after(async () => {
  rmSync(dir, { recursive: true, force: true });
  await target?.close();
});

describe("archnet link impair / ls / watch and capture (real agent)", () => {
  it("link impair sets a direction, keeps the other, shows and clears it", async () => {
    const set = await cli("link", "impair", LAB, "l1", "--rate", "10mbit", "--direction", "a-b");
    ok(set);
    assert.match(set.stdout, /a:eth1 -> b:eth1: rate 10Mbit\n/);
    assert.match(set.stdout, /b:eth1 -> a:eth1: none/);
    ok(await cli("link", "impair", LAB, "l1", "--rate", "2000kbit", "--direction", "b-a"));
    const show = await cli("--json", "link", "impair", LAB, "l1");
    ok(show);
    const v = JSON.parse(show.stdout) as ImpairmentView;
    assert.deepEqual([v.a_to_b, v.b_to_a], [{ rate_kbit: 10_000 }, { rate_kbit: 2000 }]);
    assert.deepEqual(v.applied, { a_to_b: { rate_kbit: 10_000 }, b_to_a: { rate_kbit: 2000 } });
    const ls = await cli("link", "ls", LAB);
    ok(ls);
    assert.match(ls.stdout, /a>b rate 10Mbit; b>a rate 2Mbit/);
    // Errors: the agent's (exit 1) and the command line's (exit 2).
    const tooMuch = await cli("link", "impair", LAB, "l1", "--loss", "200%");
    assert.equal(tooMuch.code, 1, tooMuch.stderr);
    assert.match(tooMuch.stderr, /loss_pct/);
    const badUnit = await cli("link", "impair", LAB, "l1", "--delay", "20 parsecs");
    assert.equal(badUnit.code, 2, badUnit.stderr);
    if (netemMissing()) {
      const delay = await cli("link", "impair", LAB, "l1", "--delay", "20ms", "--loss", "1%");
      assert.equal(delay.code, 1);
      assert.match(delay.stderr, /^error: .*netem/);
    }
    const clearOne = await cli("link", "impair", LAB, "l1", "--clear", "--direction", "b-a");
    ok(clearOne);
    assert.match(clearOne.stdout, /a:eth1 -> b:eth1: rate 10Mbit\n.*b:eth1 -> a:eth1: none/s);
    const clear = await cli("link", "impair", LAB, "l1", "--clear");
    ok(clear);
    assert.match(clear.stdout, /a:eth1 -> b:eth1: none\n.*b:eth1 -> a:eth1: none/s);
  });

  it("link ls carries both ends' counters; link watch prints refreshed rate tables", async () => {
    await nsExec(n1, ["ping", "-n", "-q", "-c", "10", "-i", "0.01", "198.18.51.2"]);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const j = JSON.parse((await cli("--json", "link", "ls", LAB)).stdout) as LinkView[];
      if ((j[0]?.counters?.a?.tx_packets ?? 0) >= 10) break;
      assert.ok(Date.now() < deadline, JSON.stringify(j));
      await new Promise((r) => setTimeout(r, 250));
    }
    const ls = await cli("link", "ls", LAB);
    ok(ls);
    const row = ls.stdout.split("\n").find((l) => l.startsWith("l1 "));
    assert.match(row ?? "", /^l1\s+a:eth1\s+b:eth1\s+vlan\s+\d+\s+up\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+/);
    const watch = await cli("link", "watch", LAB, "--count", "2", "--interval", "0.2");
    ok(watch);
    const heads = watch.stdout.match(/^lab clit at .*/gm) ?? [];
    assert.equal(heads.length, 2, watch.stdout);
    assert.match(watch.stdout, /ID\s+A\s+B\s+STATE\s+A RX\s+A TX\s+B RX\s+B TX\s+DROPS\/S/);
    const lines = (await cli("--json", "link", "watch", LAB, "--count", "2", "--interval", "0.1")).stdout
      .trim()
      .split("\n");
    assert.equal(lines.length, 2);
    assert.equal((JSON.parse(lines[0]!) as { links: LinkView[] }).links[0]?.id, "l1");
  });

  it("capture -w FILE -c N writes what crossed the link, both directions; a bad filter exits 1", async () => {
    const file = join(dir, "l1.pcap");
    const hostA = (target.fixture as RealAgentFixture).test.agent.store.lab(LAB)!.nodes.a!.interfaces.eth1!
      .hostPort;
    const capturing = cli("capture", LAB, "l1", "-c", "4", "-w", file, "icmp");
    // It listens once its tcpdump runs.
    const deadline = Date.now() + 20_000;
    while ((await run("pgrep", ["-f", `tcpdump .*-i ${hostA}( |$)`], { okCodes: [1] })).code !== 0) {
      assert.ok(Date.now() < deadline, "the capture did not start");
      await new Promise((r) => setTimeout(r, 50));
    }
    // Its process runs a little before it listens: pings until it has its 4 packets.
    let done = false;
    void capturing.finally(() => {
      done = true;
    });
    for (let seq = 1; !done; seq++) {
      await nsExec(n1, ["ping", "-n", "-q", "-c", "1", "-W", "1", "198.18.51.2"], { okCodes: [1] });
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(seq < 200, "the capture never ended");
    }
    const r = await capturing;
    ok(r);
    assert.match(r.stderr, /wrote \d+ bytes of pcap/);
    const echoes = parsePcap(readFileSync(file)).frames.map((f) => icmpEcho(f.data));
    assert.deepEqual(
      echoes.map((e) => `${e?.type} ${e?.src}`),
      ["8 198.18.51.1", "0 198.18.51.2", "8 198.18.51.1", "0 198.18.51.2"],
    );
    const bad = await cli("capture", LAB, "l1", "-c", "1", "icmp", "and", "nonsense(");
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^error: filter .* is not a BPF expression/);
    const badTarget = await cli("capture", LAB, "a:", "-c", "1");
    assert.equal(badTarget.code, 2);
  });
});
