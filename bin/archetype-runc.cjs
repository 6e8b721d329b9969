#!/usr/bin/env node
// archetype-runc.cjs: the work of the OCI runtime wrapper `archetype-runc` for Docker (`dockerd --add-runtime archetype=PATH`).
//
// Docker ignores the interface name a network plugin asks for: it names moved interfaces
// DstPrefix + a counter, in the order of the networks' names. The archetype-ovs plugin gives the
// container end of each veth the ifalias `archetype:<wanted name>`. On `create`, this wrapper
// appends a prestart hook to the bundle's config.json, after libnetwork's own hook (which moves
// the interfaces in), then hands over to the real runc. The hook renames every interface whose
// ifalias is `archetype:NAME` to NAME, in two phases through temporary names so swaps cannot
// collide, before the container's first process runs.
//
// Self-contained on purpose (no dependencies): it is copied with archetype-runc to a stable path
// (/usr/local/lib/archetype-network/archetype-runc by scripts/docker-setup.sh).
// Environment: ARCHETYPE_RUNC = the real runc (default: the first runc found in the usual dirs).

const ALIAS_PREFIX = "archetype:";
const TMP_PREFIX = "arctmp";
const DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"];
/** runc's global flags that take no value (all others take one). */
const BOOL_FLAGS = new Set(["--debug", "--systemd-cgroup", "--help", "-h", "--version", "-v"]);

main().catch((e) => {
  process.stderr.write(`archetype-runc: ${e && e.message ? e.message : e}\n`);
  process.exit(1);
});

async function main() {
  const fs = await import("node:fs");
  const cp = await import("node:child_process");
  const args = process.argv.slice(2);
  if (args[0] === "hook") return hook(fs, cp);

  const self = fs.realpathSync(process.argv[1]);
  const runc = process.env.ARCHETYPE_RUNC || findExe(fs, "runc", self);
  if (!runc) throw new Error("the real runc was not found; set ARCHETYPE_RUNC");
  const cmd = subcommand(args);
  if (cmd && (args[cmd.index] === "create" || args[cmd.index] === "run")) {
    addHook(fs, bundleOf(args.slice(cmd.index + 1)), self);
  }
  const r = cp.spawnSync(runc, args, { stdio: "inherit" });
  if (r.error) throw r.error;
  if (r.signal) process.kill(process.pid, r.signal);
  process.exit(r.status === null ? 1 : r.status);
}

function subcommand(args) {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith("-")) return { index: i };
    if (a.includes("=") || BOOL_FLAGS.has(a)) continue;
    i++; // the flag's value
  }
  return undefined;
}

function bundleOf(rest) {
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (a === "--bundle" || a === "-b") return rest[i + 1];
    if (a.startsWith("--bundle=")) return a.slice("--bundle=".length);
    if (a.startsWith("-b=")) return a.slice(3);
  }
  return process.cwd();
}

function findExe(fs, name, self) {
  for (const d of DIRS) {
    const p = `${d}/${name}`;
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.realpathSync(p) !== self) return p;
    } catch {}
  }
  return undefined;
}

/** Appends the rename hook after the existing prestart hooks (libnetwork's among them). */
function addHook(fs, bundle, self) {
  const file = `${bundle}/config.json`;
  const spec = JSON.parse(fs.readFileSync(file, "utf8"));
  const ns = spec.linux && Array.isArray(spec.linux.namespaces) ? spec.linux.namespaces : [];
  const net = ns.find((n) => n.type === "network");
  if (!net || net.path) return; // no own network namespace: Docker moves nothing in
  spec.hooks = spec.hooks || {};
  const prestart = spec.hooks.prestart || [];
  if (prestart.some((h) => Array.isArray(h.args) && h.args.includes(self))) return;
  prestart.push({ path: process.execPath, args: [process.execPath, self, "hook"], timeout: 10 });
  spec.hooks.prestart = prestart;
  fs.writeFileSync(file, JSON.stringify(spec));
}

/** The prestart hook: OCI state on stdin; renames in the container's network namespace. */
async function hook(fs, cp) {
  const state = JSON.parse(fs.readFileSync(0, "utf8"));
  if (!Number.isInteger(state.pid) || state.pid <= 0) throw new Error("hook: no pid in the OCI state");
  const nsenter = findExe(fs, "nsenter", "");
  const ip = findExe(fs, "ip", "");
  if (!nsenter || !ip) throw new Error("hook: nsenter and ip (iproute2) are required");
  const inNs = [`--net=/proc/${state.pid}/ns/net`, ip];
  const out = cp.execFileSync(nsenter, [...inNs, "-j", "link", "show"], { encoding: "utf8", timeout: 5000 });
  const links = JSON.parse(out);
  const batch = renamePlan(links);
  if (batch.length === 0) return;
  const r = cp.spawnSync(nsenter, [...inNs, "-batch", "-"], {
    input: `${batch.join("\n")}\n`,
    encoding: "utf8",
    timeout: 5000,
  });
  if (r.status !== 0) throw new Error(`hook: renaming interfaces failed: ${r.stderr || r.error}`);
}

/** `ip -batch` lines giving every `archetype:NAME` interface its NAME (empty when all are right). */
function renamePlan(links) {
  const names = new Set(links.map((l) => l.ifname));
  const want = new Map(); // current name -> wanted name
  const claimed = new Map(); // wanted name -> current name
  for (const l of links) {
    const alias = l.ifalias || "";
    if (!alias.startsWith(ALIAS_PREFIX)) continue;
    const target = alias.slice(ALIAS_PREFIX.length);
    if (!/^[^\s/:]{1,15}$/.test(target)) throw new Error(`hook: ${l.ifname} asks for invalid name ${target}`);
    if (claimed.has(target)) {
      throw new Error(`hook: ${claimed.get(target)} and ${l.ifname} both ask to be named ${target}`);
    }
    claimed.set(target, l.ifname);
    want.set(l.ifname, target);
  }
  const moving = [...want].filter(([cur, target]) => cur !== target);
  if (moving.length === 0) return [];
  // An interface that is not ours but holds a wanted name moves to a free ethN.
  for (const l of links) {
    if (want.has(l.ifname) || !claimed.has(l.ifname)) continue;
    let n = 0;
    while (names.has(`eth${n}`) || claimed.has(`eth${n}`)) n++;
    names.add(`eth${n}`);
    moving.push([l.ifname, `eth${n}`]);
  }
  const up = new Set(links.filter((l) => (l.flags || []).includes("UP")).map((l) => l.ifname));
  const first = [];
  const second = [];
  moving.forEach(([cur, target], i) => {
    const tmp = `${TMP_PREFIX}${process.pid % 10000}x${i}`;
    if (up.has(cur)) first.push(`link set dev ${cur} down`);
    first.push(`link set dev ${cur} name ${tmp}`);
    second.push(`link set dev ${tmp} name ${target}`);
    if (up.has(cur)) second.push(`link set dev ${target} up`);
  });
  return [...first, ...second];
}
