/**
 * `archnet host check`: can this host run the agent? Local checks only (no agent needed), each
 * with what to do when it fails.
 */
import { execFile } from "node:child_process";
import { accessSync, constants, existsSync } from "node:fs";
import { delimiter, join } from "node:path";
import { CARRIER_HELPER } from "../link/carrier.js";
import { TXOFF_HELPER } from "../link/offload.js";

export interface HostCheck {
  name: string;
  ok: boolean;
  /** A failed required check means the agent cannot run. */
  required: boolean;
  detail: string;
  /** What to do when it failed. */
  fix?: string;
}

/** The full path of an executable on PATH (plus the sbin dirs root has), or undefined. */
export function findExecutable(name: string, path = process.env.PATH ?? ""): string | undefined {
  const dirs = [...path.split(delimiter), "/usr/local/sbin", "/usr/sbin", "/sbin"].filter((d) => d !== "");
  for (const dir of dirs) {
    const file = join(dir, name);
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

function runs(file: string, args: string[], timeoutMs: number): Promise<{ ok: boolean; output: string }> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { timeout: timeoutMs, encoding: "utf8", killSignal: "SIGKILL" },
      (err, stdout, stderr) => {
        const output = `${stderr}${stdout}`.trim().split("\n")[0] ?? "";
        resolve({ ok: !err, output: err?.killed ? `no answer within ${timeoutMs} ms` : output });
      },
    );
  });
}

export async function hostChecks(backend: "ovs" | "local" | "ovn" = "ovs"): Promise<HostCheck[]> {
  const needOvs = backend !== "local";
  const checks: HostCheck[] = [];
  const uid = process.getuid?.();
  checks.push({
    name: "root",
    ok: uid === 0,
    required: true,
    detail: uid === 0 ? "running as root" : `running as uid ${uid ?? "?"}`,
    fix: "run the agent as root (sudo): it creates interfaces and namespaces",
  });
  const tool = (
    name: string,
    pkg: string,
    required: boolean,
    why: string,
    setup = "make setup",
  ): string | undefined => {
    const path = findExecutable(name);
    checks.push({
      name,
      ok: path !== undefined,
      required,
      detail: path ?? "not found",
      fix: `install ${pkg} (${why}); \`${setup}\` does it`,
    });
    return path;
  };
  tool("ip", "iproute2", true, "veth pairs and namespaces");
  tool("nsenter", "util-linux", true, "configuring interfaces inside nodes");
  tool("setpriv", "util-linux", true, "every program the agent runs dies with it");
  const vsctl = tool("ovs-vsctl", "openvswitch-switch", needOvs, "the OVS bridge");
  if (vsctl) {
    const r = await runs(vsctl, ["--timeout=2", "show"], 4000);
    checks.push({
      name: "ovs running",
      ok: r.ok,
      required: needOvs,
      detail: r.ok ? "ovs-vsctl show works" : r.output || "ovs-vsctl show failed",
      fix: "start Open vSwitch: `/usr/share/openvswitch/scripts/ovs-ctl start` or `systemctl start openvswitch-switch`",
    });
  }
  if (backend === "ovn") {
    // ovn-controller runs as the host's service; the central part runs on one host only.
    tool("ovn-controller", "ovn-host", true, "programs this host's OVS for OVN", "make setup-ovn");
    const appctl = findExecutable("ovn-appctl");
    if (appctl) {
      // It answers on its control socket under OVN_RUNDIR (default /var/run/ovn), as ovn-ctl put it.
      const r = await runs(appctl, ["-t", "ovn-controller", "connection-status"], 4000);
      checks.push({
        name: "ovn-controller running",
        ok: r.ok,
        required: true,
        detail: r.ok
          ? `southbound database: ${r.output || "?"} (it connects once the agent has written ovn-remote)`
          : r.output || "no ovn-controller answers",
        fix: "start it as this host's service: `ARCHETYPE_AGENT_BACKEND=ovn make run` or `bash scripts/host-setup.sh --ovn-host`",
      });
    }
    tool(
      "ovn-northd",
      "ovn-central",
      false,
      "only on the one host that runs `archnet central serve`",
      "make setup-ovn",
    );
  }
  const kernel = existsSync("/sys/module/openvswitch");
  checks.push({
    name: "datapath",
    ok: true,
    required: false,
    detail: kernel
      ? "system (openvswitch kernel module loaded)"
      : "netdev (userspace: kernel module not loaded)",
  });
  const helper = (name: string, file: string, why: string) => {
    const ok = existsSync(file);
    checks.push({
      name,
      ok,
      required: true,
      detail: ok ? file : `${file} not built`,
      fix: `run \`npm run build\` or \`make build\` (needs gcc: \`make setup\` installs it): ${why}`,
    });
  };
  helper("carrier helper", CARRIER_HELPER, "carrier up waits with it until the node's end forwards");
  if (needOvs && !kernel)
    helper("offload helper", TXOFF_HELPER, "without it TCP through links stalls on the userspace datapath");
  const docker = tool("docker", "docker", false, "only for the Docker network plugin");
  if (docker) {
    const r = await runs(docker, ["info", "--format", "{{.ServerVersion}} {{json .Runtimes}}"], 5000);
    checks.push({
      name: "docker running",
      ok: r.ok,
      required: false,
      detail: r.ok ? `dockerd ${r.output.split(" ")[0]}` : r.output || "docker info failed",
      fix: "start dockerd (only needed for the Docker network plugin)",
    });
    if (r.ok) {
      const runtime = r.output.includes('"archetype"');
      checks.push({
        name: "docker runtime",
        ok: runtime,
        required: false,
        detail: runtime ? "archetype runtime registered" : "no archetype runtime",
        fix: "without it plugin interfaces get Docker's names: see the README (Docker containers) or run scripts/docker-setup.sh",
      });
    }
  }
  return checks;
}

export const statusOf = (c: HostCheck): "OK" | "MISSING" | "WARN" =>
  c.ok ? "OK" : c.required ? "MISSING" : "WARN";
