import { existsSync, readFileSync } from "node:fs";
import { createConnection } from "node:net";
import { join } from "node:path";
import { answerDeadline } from "../../../common/answer-deadline.js";
import { AgentError } from "../../../common/errors.js";

const CALL_TIMEOUT_MS = 5000;

/**
 * ovs-vswitchd's control socket (what `ovs-appctl` speaks: one JSON-RPC request per connection),
 * found in OVS's run directory: `ovs-vswitchd.<pid>.ctl`, or `ovs-vswitchd.ctl` where it was
 * started with that name. Looked up again on every call, since a restarted ovs-vswitchd has a new
 * pid. Used for what OpenFlow cannot say, with no process started.
 */
export class VswitchdCtl {
  constructor(private readonly rundir: string | undefined) {}

  /**
   * Removes every datapath flow (`revalidator/purge`), answering once they are gone: the next
   * packet of each flow is translated against the OpenFlow tables as they are now. A flow change
   * alone is only seen by the datapath once the revalidators ran, which a packet sent right
   * after the barrier reply can overtake.
   */
  purgeDatapathFlows(): Promise<void> {
    return this.call("revalidator/purge").then(() => undefined);
  }

  private socketPath(): string | undefined {
    if (this.rundir === undefined) return undefined;
    try {
      const pid = readFileSync(join(this.rundir, "ovs-vswitchd.pid"), "utf8").trim();
      const byPid = join(this.rundir, `ovs-vswitchd.${pid}.ctl`);
      if (/^\d+$/.test(pid) && existsSync(byPid)) return byPid;
    } catch {
      // no pidfile: the fixed name below, if it is there
    }
    const fixed = join(this.rundir, "ovs-vswitchd.ctl");
    return existsSync(fixed) ? fixed : undefined;
  }

  private call(method: string, params: readonly string[] = []): Promise<unknown> {
    const path = this.socketPath();
    if (path === undefined)
      return Promise.reject(
        new AgentError(
          "OVS_UNREACHABLE",
          `no ovs-vswitchd control socket in ${this.rundir ?? "(no run directory)"}`,
        ),
      );
    return new Promise((resolve, reject) => {
      let text = "";
      const socket = createConnection(path);
      let done = false;
      const fail = (why: string) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.destroy();
        reject(new AgentError("OVS_UNREACHABLE", `ovs-vswitchd ${method} at ${path}: ${why}`));
      };
      const timer = answerDeadline(CALL_TIMEOUT_MS, () => fail(`no answer within ${CALL_TIMEOUT_MS} ms`));
      socket.on("connect", () => socket.write(JSON.stringify({ id: 0, method, params })));
      socket.on("data", (chunk: Buffer) => {
        text += chunk.toString("utf8");
        let reply: { result?: unknown; error?: unknown };
        try {
          reply = JSON.parse(text);
        } catch {
          return; // not the whole reply yet
        }
        done = true;
        clearTimeout(timer);
        socket.end();
        if (reply.error !== null && reply.error !== undefined)
          reject(new AgentError("INTERNAL", `ovs-vswitchd refused ${method}: ${String(reply.error)}`));
        else resolve(reply.result);
      });
      socket.on("error", (e) => fail(e.message));
      socket.on("close", () => fail("the connection closed before an answer"));
    });
  }
}
