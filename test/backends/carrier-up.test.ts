import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { test } from "node:test";
import { ipBatch, ipJson, untilCarrier } from "../../src/link/index.js";
import { startTestAgent } from "../harness/agent.js";
import { addAddress, NetnsPool, nsExec, withNetns } from "../harness/netns.js";
import { expectPing, ping } from "../harness/traffic.js";

/**
 * `carrier up` answers only once the link carries traffic again: a ping sent right after the
 * answer passes, cycle after cycle, on both backends (interface carrier and whole-link carrier).
 */
const CYCLES = 50;
const A = "198.18.30.1";
const B = "198.18.30.2";

/**
 * A process inside the node that sends one Ethernet frame out of `dev` per request and says
 * whether the kernel took it. Started once, so a send follows the agent's answer within
 * microseconds, not a process start later: a queue the kernel has not brought back into
 * service yet refuses the frame (ENOBUFS).
 */
async function framer(ns: string, dev: string): Promise<{ send(): Promise<string>; close(): void }> {
  const py = [
    "import socket,sys",
    "s=socket.socket(socket.AF_PACKET,socket.SOCK_RAW)",
    "s.bind((sys.argv[1],0))",
    "src=bytes.fromhex(open('/sys/class/net/'+sys.argv[1]+'/address').read().strip().replace(':',''))",
    // broadcast, ethertype 0x88b5 (IEEE local experimental): nobody answers it
    "f=b'\\xff'*6+src+b'\\x88\\xb5'+bytes(46)",
    "print('ready',flush=True)",
    "for _ in sys.stdin:",
    "  try:",
    "    s.send(f); print('sent',flush=True)",
    "  except OSError as e:",
    "    print(e.strerror,flush=True)",
  ].join("\n");
  const child = spawn("ip", ["netns", "exec", ns, "python3", "-c", py, dev], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async () => {
    const r = await lines.next();
    if (r.done) throw new Error(`the frame sender in ${ns} exited`);
    return r.value;
  };
  const close = () => {
    child.stdin.end();
    child.kill();
  };
  try {
    await Promise.race([
      next().then((l) => assert.equal(l, "ready")),
      once(child, "error").then(([e]) => {
        throw e;
      }),
    ]);
  } catch (e) {
    close();
    throw e;
  }
  return {
    send: () => {
      child.stdin.write("\n");
      return next();
    },
    close,
  };
}

for (const backend of ["ovs", "local"] as const) {
  test(`${backend}: ${CYCLES} times carrier down then up, and right after the answer the link carries traffic`, async (t) => {
    const pool = new NetnsPool("cup");
    const agent = await startTestAgent({ backend });
    let frames: Awaited<ReturnType<typeof framer>> | undefined;
    t.after(async () => {
      frames?.close();
      await agent.agent.labs.deleteLab("cup").catch(() => undefined);
      await pool.destroyAll();
      await agent.close();
    });
    const [a, b] = (await pool.create(2)) as [string, string];
    const labs = agent.agent.labs;
    await labs.putLab("cup", {
      nodes: [
        { name: "n0", netns: a, interfaces: [{ name: "eth1" }] },
        { name: "n1", netns: b, interfaces: [{ name: "eth1" }] },
      ],
      links: [{ a: "n0:eth1", b: "n1:eth1", id: "l" }],
    });
    await addAddress(a, "eth1", `${A}/24`);
    await addAddress(b, "eth1", `${B}/24`);
    // The nodes retry an unresolved ARP lookup every 3 s instead of the kernel's 1 s (ping's own
    // deadline, which would make a stale lookup fail the next ping only now and then).
    for (const ns of [a, b])
      await nsExec(ns, ["sysctl", "-q", "-w", "net.ipv4.neigh.eth1.retrans_time_ms=3000"]);
    await expectPing(a, B);
    frames = await framer(a, "eth1");

    const failures: string[] = [];
    for (let i = 0; i < CYCLES; i++) {
      // Even cycles pull n0's cable, odd ones the whole link (then n1 pings, the other way).
      const whole = i % 2 === 1;
      const carrier = (state: "up" | "down") =>
        whole ? labs.setLinkCarrier("cup", "l", state) : labs.setCarrier("cup", "n0", "eth1", state);
      const [from, to] = whole ? [b, A] : [a, B];
      await carrier("down");
      // Reading the link also makes the kernel finish its pending link-watch work for it (which
      // flushes the node's neighbours): the outage is complete before the ping below.
      const [link] = await ipJson<{ flags: string[] }[]>(["link", "show", "dev", "eth1"], { name: from });
      assert.ok(!link?.flags.includes("LOWER_UP"), `cycle ${i}: flags ${link?.flags}`);
      // A ping during the outage: the node starts an ARP lookup that cannot be answered.
      assert.equal(
        await ping(from, to, { timeoutS: 0.2 }),
        false,
        `cycle ${i}: a ping passed with the cable out`,
      );
      await carrier("up");
      const sent = await frames.send();
      const answered = await ping(from, to);
      if (sent !== "sent" || !answered)
        failures.push(
          `cycle ${i} (${whole ? "link" : "interface"}): frame ${sent}, ping ${answered ? "passed" : "failed"}`,
        );
    }
    assert.deepEqual(failures, [], `${failures.length} of ${CYCLES} cycles failed`);
  });
}

test("the carrier wait: reports an interface still without carrier at the deadline or missing, skips one the node keeps down", async () => {
  await withNetns(
    2,
    async ([a, b]) => {
      const [na, nb] = [{ name: a! }, { name: b! }];
      await ipBatch([["link", "add", "va", "netns", a!, "type", "veth", "peer", "name", "vb", "netns", b!]]);
      await ipBatch([["link", "set", "dev", "va", "up"]], { netns: na });
      // vb is down: va has no carrier, and the node keeps vb down itself.
      const late = await untilCarrier(
        [
          { dev: "va", netns: na },
          { dev: "vb", netns: nb },
          { dev: "nope", netns: nb },
        ],
        200,
      );
      assert.equal(late.length, 2, late.join("\n"));
      assert.match(late[0]!, /va: no carrier after 200 ms$/);
      assert.match(late[1]!, /nope: No such device$/);
      await ipBatch([["link", "set", "dev", "vb", "up"]], { netns: nb });
      assert.deepEqual(await untilCarrier([{ dev: "va", netns: na }], 3000), []);
      const [va] = await ipJson<{ operstate: string }[]>(["link", "show", "dev", "va"], na);
      assert.equal(va?.operstate, "UP");
    },
    "cuw",
  );
});
