/**
 * The `archnet` CLI end to end: a real process talking HTTP to an agent API (parameterized by
 * the target factory): tables, --json, exit codes, errors with hints.
 */
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { LabView } from "../../src/model/views.js";
import { type CliResult, type CliTarget, type CliTargetFactory, runCli } from "./target.js";

function assertOk(r: CliResult): void {
  assert.equal(r.code, 0, `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const addr = srv.address();
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return typeof addr === "object" && addr !== null ? addr.port : 1;
}

export function cliSuite(name: string, factory: CliTargetFactory): void {
  describe(`archnet CLI (${name})`, () => {
    let target: CliTarget;
    let cli: (...args: string[]) => Promise<CliResult>;
    const lab = "cli-lab";

    before(async () => {
      target = await factory({});
      cli = (...args) => runCli(["--url", target.url, ...args]);
    });
    after(async () => {
      await cli("lab", "rm", lab);
      await target.close();
    });

    it("--version and --help exit 0; usage errors exit 2", async () => {
      const [v, h, bad, noEnd, badState] = await Promise.all([
        runCli(["--version"]),
        runCli(["--help"]),
        runCli(["frobnicate"]),
        cli("link", "add", lab, "r1eth1", "r2:eth1"),
        cli("carrier", lab, "r1:eth1", "sideways"),
      ]);
      assertOk(v);
      assert.match(v.stdout, /^\d+\.\d+\.\d+/);
      assertOk(h);
      for (const verb of [
        "serve",
        "status",
        "host",
        "lab",
        "link",
        "carrier",
        "capture",
        "overlay",
        "cleanup",
      ]) {
        assert.match(h.stdout, new RegExp(`\\b${verb}\\b`), verb);
      }
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /unknown command/);
      assert.equal(noEnd.code, 2, noEnd.stderr);
      assert.match(noEnd.stderr, /^error: "r1eth1" is not NODE:IF\nhint: /);
      assert.equal(badState.code, 2);
    });

    it("lab ls with no labs", async () => {
      const r = await cli("lab", "ls");
      assertOk(r);
      assert.equal(r.stdout.trim(), "no labs");
      const j = await cli("--json", "lab", "ls");
      assert.deepEqual(JSON.parse(j.stdout), []);
    });

    it("lab apply LAB - (stdin) converges and prints the changes", async () => {
      const node = async (n: string) => ({ name: n, ...(await target.fixture.nodeRef(n)) });
      const spec = {
        nodes: [
          { ...(await node("r1")), interfaces: [{ name: "eth1" }, { name: "eth2" }] },
          { ...(await node("r2")), interfaces: [{ name: "eth1" }, { name: "eth2" }] },
          { ...(await node("router-long-name")), interfaces: [{ name: "eth1" }] },
        ],
        links: [{ a: "r1:eth1", b: "r2:eth1", id: "l1" }],
      };
      const r = await runCli(["--url", target.url, "lab", "apply", lab, "-"], {
        input: JSON.stringify(spec),
      });
      assertOk(r);
      assert.match(r.stdout, /nodes added: r1, r2, router-long-name/);
      assert.match(r.stdout, /links added: l1/);
      const again = await runCli(["--url", target.url, "lab", "apply", lab, "-"], {
        input: JSON.stringify(spec),
      });
      assertOk(again);
      assert.match(again.stdout, /^no changes/);
      const bad = await runCli(["--url", target.url, "lab", "apply", lab, "-"], { input: "{nope" });
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /^error: stdin is not JSON/);
    });

    it("lab ls and lab show print aligned tables", async () => {
      const [ls, show] = await Promise.all([cli("lab", "ls"), cli("lab", "show", lab)]);
      assertOk(ls);
      const lines = ls.stdout.trimEnd().split("\n");
      assert.match(lines[0] ?? "", /^LAB\s+NODES\s+LINKS$/);
      assert.match(lines[1] ?? "", new RegExp(`^${lab}\\s+3\\s+1$`));
      assert.equal((lines[1] ?? "").indexOf(" 3 ") + 1, (lines[0] ?? "").indexOf("NODES"), "columns aligned");

      assertOk(show);
      const out = show.stdout.split("\n");
      const header = out.find((l) => l.startsWith("NODE"));
      assert.ok(header, show.stdout);
      assert.match(header, /^NODE\s+NETNS\s+INTERFACE\s+HOST PORT\s+MTU\s+VLAN\s+CARRIER\s+LINK$/);
      const linkCol = header.indexOf("LINK");
      const r1 = out.find((l) => l.startsWith("r1 ") && l.includes("eth1"));
      assert.ok(r1);
      assert.equal(r1.slice(linkCol).trim(), "l1");
      const longRow = out.find((l) => l.startsWith("router-long-name"));
      assert.ok(longRow);
      assert.equal(
        header.indexOf("NETNS"),
        "router-long-name".length + 2,
        "NODE column as wide as its widest cell",
      );
      const linksHeader = out.find((l) => l.startsWith("ID"));
      assert.match(linksHeader ?? "", /^ID\s+A\s+B\s+MODE\s+VLAN\s+STATE$/);
      assert.ok(
        out.some((l) => /^l1\s+r1:eth1\s+r2:eth1\s+vlan\s+\d+\s+up$/.test(l)),
        show.stdout,
      );
    });

    it("--json prints the agent's raw answer", async () => {
      const [r, after] = await Promise.all([
        cli("--json", "lab", "show", lab),
        runCli(["lab", "show", lab, "--json", "--url", target.url]),
      ]);
      assertOk(r);
      const view = JSON.parse(r.stdout) as LabView;
      assert.equal(view.lab, lab);
      assert.deepEqual(
        view.nodes.map((n) => n.name),
        ["r1", "r2", "router-long-name"],
      );
      assert.deepEqual(JSON.parse(after.stdout), view, "global options work after the verb too");
    });

    it("link add / ls / rm, and a conflict exits 1 with the agent's hint", async () => {
      const add = await cli("link", "add", lab, "r1:eth2", "r2:eth2", "--id", "l2");
      assertOk(add);
      assert.match(add.stdout, /^linked r1:eth2 <-> r2:eth2 as l2 \(vlan \d+, up\)/);
      const ls = await cli("link", "ls", lab);
      assertOk(ls);
      assert.match(
        ls.stdout,
        /^ID\s+A\s+B\s+MODE\s+VLAN\s+STATE\s+A RX\s+A TX\s+B RX\s+B TX\s+DROPS\s+ERRORS\s+IMPAIRMENT\n/,
      );
      assert.match(ls.stdout, /\nl2\s+r1:eth2\s+r2:eth2\s+vlan\s+\d+\s+up\b/);
      const dup = await cli("link", "add", lab, "r1:eth2", "router-long-name:eth1");
      assert.equal(dup.code, 1);
      assert.match(dup.stderr, /^error: .*r1:eth2.*\nhint: .+/);
      const rm = await cli("link", "rm", lab, "l2");
      assertOk(rm);
      const wire = await cli("link", "add", lab, "r1:eth2", "r2:eth2", "--id", "l2", "--wire");
      assertOk(wire);
      assert.match(wire.stdout, /^linked r1:eth2 <-> r2:eth2 as l2 \(wire, up\)/);
      assert.match((await cli("link", "ls", lab)).stdout, /\nl2\s+r1:eth2\s+r2:eth2\s+wire\s+-?\s+up\b/);
      assertOk(await cli("link", "rm", lab, "l2"));
      const again = await cli("link", "rm", lab, "l2");
      assert.equal(again.code, 1);
      assert.match(again.stderr, /^error: .*l2/);
      const j = await cli("--json", "link", "ls", lab);
      assert.deepEqual(
        (JSON.parse(j.stdout) as { id: string }[]).map((l) => l.id),
        ["l1"],
      );
    });

    it("carrier LAB NODE:IF up|down", async () => {
      const down = await cli("carrier", lab, "r1:eth1", "down");
      assertOk(down);
      assert.equal(down.stdout.trim(), "r1:eth1 carrier down");
      const show = await cli("--json", "lab", "show", lab);
      const iface = (JSON.parse(show.stdout) as LabView).nodes[0]?.interfaces.find((i) => i.name === "eth1");
      assert.equal(iface?.carrier, "down");
      assertOk(await cli("carrier", lab, "r1:eth1", "up"));
      const missing = await cli("carrier", lab, "r1:eth9", "up");
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /^error: /);
    });

    it("overlay add / ls / rm", async () => {
      const add = await cli(
        "overlay",
        "add",
        lab,
        "ov1",
        "router-long-name:eth1",
        "--vni",
        "5005",
        "--local-ip",
        "198.18.0.1",
        "--remote-ip",
        "198.18.0.2",
      );
      assertOk(add);
      const ls = await cli("overlay", "ls");
      assertOk(ls);
      assert.match(ls.stdout, /^LAB\s+LINK\s+END\s+VNI/);
      assert.match(ls.stdout, new RegExp(`\\n${lab}\\s+ov1\\s+router-long-name:eth1\\s+5005\\s`));
      const ips = ["--local-ip", "198.18.0.1", "--remote-ip", "198.18.0.3"];
      const [badVni, tooBig] = await Promise.all([
        cli("overlay", "add", lab, "ov2", "r1:eth2", "--vni", "x", ...ips),
        cli("overlay", "add", lab, "ov2", "r1:eth2", "--vni", "16777216", ...ips),
      ]);
      assert.equal(badVni.code, 2);
      assert.equal(tooBig.code, 1);
      assert.match(tooBig.stderr, /^error: body\.vni/);
      assertOk(await cli("overlay", "rm", lab, "ov1"));
      const empty = await cli("overlay", "ls");
      assert.equal(empty.stdout.trim(), "no overlay links");
    });

    it("cleanup --dry-run lists, cleanup removes", async (t) => {
      const plant = target.fixture.setOrphans;
      if (!plant) return t.skip("needs a stub to plant orphans");
      plant([{ kind: "port", name: "vs404", reason: "no interface record" }]);
      const dry = await cli("cleanup", "--dry-run");
      assertOk(dry);
      assert.match(dry.stdout, /dry run/);
      assert.match(dry.stdout, /\nport\s+vs404\s+no interface record/);
      const run = await cli("cleanup");
      assertOk(run);
      assert.match(run.stdout, /^removed 1:/);
      const none = await cli("cleanup", "--dry-run");
      assert.equal(none.stdout.trim(), "nothing is orphaned");
    });

    it("status summarizes health and the switch", async () => {
      const [r, js] = await Promise.all([cli("status"), cli("--json", "status")]);
      assertOk(r);
      assert.match(r.stdout, /^agent\s+http:\/\/127\.0\.0\.1:\d+ \(version .+, ok\)/);
      assert.match(r.stdout, /\nbackend\s+\S+/);
      assert.match(r.stdout, /\nports\s+\d+/);
      const j = JSON.parse(js.stdout) as { health: { status: string } };
      assert.equal(j.health.status, "ok");
    });

    it("lab rm, then lab show exits 1 with the agent's error", async () => {
      assertOk(await cli("lab", "rm", lab));
      const r = await cli("lab", "show", lab);
      assert.equal(r.code, 1);
      assert.match(r.stderr, new RegExp(`^error: .*${lab}`));
    });

    it("a stopped agent: 'the agent is not running' with how to start it", async () => {
      const url = `http://127.0.0.1:${await closedPort()}`;
      const r = await runCli(["lab", "ls"], { env: { ARCHETYPE_AGENT_URL: url } });
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        new RegExp(
          `^error: the agent is not running at ${url}: start it with \`archnet serve\` or \`make run\``,
        ),
      );
    });

    it("host check runs locally and prints a table", async () => {
      const [r, js] = await Promise.all([runCli(["host", "check"]), runCli(["--json", "host", "check"])]);
      assert.ok(r.code === 0 || r.code === 1, `exit ${r.code}: ${r.stderr}`);
      assert.match(r.stdout, /^CHECK\s+STATUS\s+DETAIL\s+WHAT TO DO\n/);
      for (const c of ["root", "ip", "nsenter", "ovs-vsctl", "datapath"]) {
        assert.match(r.stdout, new RegExp(`\\n${c}\\s+(OK|MISSING|WARN)\\s`), c);
      }
      const j = JSON.parse(js.stdout) as { ok: boolean; checks: unknown[] };
      assert.equal(j.ok, r.code === 0);
    });

    it("host check for the ovn backend also looks for ovn-controller (required) and ovn-northd", async () => {
      const r = await runCli(["--json", "host", "check", "--backend", "ovn"]);
      const j = JSON.parse(r.stdout) as { checks: { name: string; required: boolean }[] };
      const of = (n: string) => j.checks.find((c) => c.name === n);
      assert.equal(of("ovn-controller")?.required, true);
      assert.equal(of("ovn-northd")?.required, false);
      assert.equal(of("ovs running")?.required, true);
    });

    it("serve refuses a bad setting with exit 2, naming it", async () => {
      const r = await runCli(["serve", "--listen", "nowhere"]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^error: ARCHETYPE_AGENT_LISTEN: "nowhere" is not HOST:PORT\nhint: /);
    });
  });

  describe(`archnet CLI with auth (${name})`, () => {
    let target: CliTarget;
    const secret = "cli-secret";
    let dir: string;
    /** A file holding `text`, with this mode. */
    const file = (name: string, text: string, mode: number): string => {
      const path = join(dir, name);
      writeFileSync(path, text);
      chmodSync(path, mode);
      return path;
    };
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), "archnet-cli-token-"));
      target = await factory({ secret });
    });
    after(async () => {
      rmSync(dir, { recursive: true, force: true });
      await target.close();
    });

    it("no token: 401 with a hint; --token or ARCHETYPE_AGENT_SECRET pass", async () => {
      const [none, flag, env, wrong] = await Promise.all([
        runCli(["--url", target.url, "lab", "ls"]),
        runCli(["--url", target.url, "--token", secret, "lab", "ls"]),
        runCli(["--url", target.url, "lab", "ls"], { env: { ARCHETYPE_AGENT_SECRET: secret } }),
        runCli(["--url", target.url, "--token", "nope", "lab", "ls"]),
      ]);
      assert.equal(none.code, 1);
      assert.match(none.stderr, /^error: .*token.*\nhint: .*--token/);
      assertOk(flag);
      assertOk(env);
      assert.equal(wrong.code, 1);
    });

    it("the token from a file: --token-file or ARCHETYPE_AGENT_SECRET_FILE (never in argv)", async () => {
      const own = file("token", `${secret}\n`, 0o600);
      const [flag, env, shared] = await Promise.all([
        runCli(["--url", target.url, "--token-file", own, "lab", "ls"]),
        runCli(["--url", target.url, "lab", "ls"], { env: { ARCHETYPE_AGENT_SECRET_FILE: own } }),
        runCli(["--url", target.url, "--token-file", file("token-640", secret, 0o640), "lab", "ls"]),
      ]);
      assertOk(flag);
      assertOk(env);
      assertOk(shared);
      const wrong = await runCli([
        "--url",
        target.url,
        "--token-file",
        file("wrong", "nope", 0o600),
        "lab",
        "ls",
      ]);
      assert.equal(wrong.code, 1);
      assert.match(wrong.stderr, /^error: the bearer token is wrong/);
    });

    it("a token file others may read, a missing one, or two secrets: exit 2, nothing sent", async () => {
      const open = file("token-644", secret, 0o644);
      const own = file("token-own", secret, 0o600);
      const [readable, missing, both] = await Promise.all([
        runCli(["--url", target.url, "--token-file", open, "lab", "ls"]),
        runCli(["--url", target.url, "--token-file", join(dir, "nope"), "lab", "ls"]),
        runCli(["--url", target.url, "--token-file", own, "lab", "ls"], {
          env: { ARCHETYPE_AGENT_SECRET: secret },
        }),
      ]);
      assert.equal(readable.code, 2, readable.stderr);
      assert.match(
        readable.stderr,
        new RegExp(
          `^error: --token-file: ${open} is open to every user \\(mode 0644\\)\nhint: chmod 600 ${open}`,
        ),
      );
      assert.equal(missing.code, 2, missing.stderr);
      assert.match(missing.stderr, /^error: --token-file: .* does not exist/);
      assert.equal(both.code, 2, both.stderr);
      assert.match(both.stderr, /^error: the secret is given twice.*\nhint: pass one of them/);
    });
  });
}
