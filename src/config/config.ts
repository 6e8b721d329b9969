import { closeSync, existsSync, fstatSync, openSync, readFileSync } from "node:fs";
import { isIP } from "node:net";
import { hostname } from "node:os";
import { AgentError, isAgentError } from "../common/errors.js";
import { parseNetnsRef } from "../link/netns.js";
import { validateIfName } from "../model/names.js";
import { LINK_MODES, type LinkMode } from "../model/records.js";
import { formatRange, parseVlanRange, rangesOverlap, type VlanRange } from "./vlan-range.js";

export type Datapath = "auto" | "system" | "netdev";
export type BackendName = "ovs" | "local" | "ovn";

/** The agent's whole configuration: one typed, validated object. */
export interface AgentConfig {
  listen: { host: string; port: number };
  /**
   * Names (lowercase, no port) a request's Host header may carry besides the listen address and
   * the loopback names: anything else is refused, which defeats DNS rebinding.
   */
  allowedHosts: string[];
  secret: string | undefined;
  ovsdb: string;
  /** Inactivity probe of a `tcp:` OVSDB remote in ms (0: none); `unix:` remotes need none. */
  ovsdbProbeMs: number;
  bridge: string;
  /**
   * The bridge's OpenFlow target (wires, carrier's PORT_MOD); undefined: `<bridge>.mgmt` beside
   * a unix: OVSDB socket (none for a tcp: remote unless set).
   */
  openflow: string | undefined;
  /** Mode of a link whose request names none. */
  linkMode: LinkMode;
  /**
   * vlan: every unlinked port in a VLAN of its own (the isolated range bounds the interfaces per
   * host); shared: all in one parking VLAN with a drop flow each (no bound but the switch's).
   */
  isolation: "vlan" | "shared";
  datapath: Datapath;
  stateDir: string;
  pluginSocket: string | undefined;
  /**
   * Pre-made veth + port per Docker plugin network, so CreateEndpoint (on Docker's critical
   * path while a container starts) only claims one instead of spawning processes.
   */
  pluginSpares: number;
  backend: BackendName;
  /**
   * Network namespace (name or path) where ovs-vswitchd runs and the host ends of veths live;
   * undefined: the agent's own. With the userspace datapath the switch opens ports by name in
   * its own namespace, so the two must agree.
   */
  switchNetns: string | undefined;
  vlan: { local: VlanRange; isolated: VlanRange; overlay: VlanRange };
  /** MTU of node interfaces on local links. */
  localMtu: number;
  /** MTU of node interfaces on overlay links (underlay MTU - 50 for IPv4 VXLAN). */
  overlayMtu: number;
  /** Optional: the agent builds the VXLAN underlay bridge itself (userspace datapath needs it). */
  underlay: { bridge: string; interface: string | undefined; localIp: string | undefined };
  cleanupIntervalS: number;
  /**
   * Multiplies the hang guards of waits on ovs-vswitchd (a transaction applied, a barrier, ports
   * closed): for switches far slower than a plain host, e.g. an emulated CPU.
   */
  switchTimeoutScale: number;
  cleanupGraceS: number;
  /** Packet captures running at once (a tcpdump each); more are 429. */
  maxCaptures: number;
  logLevel: string;
  /**
   * The ovn backend: the OVN databases (remotes), this host's chassis name, and its Geneve
   * endpoint. The agent writes them into this host's Open_vSwitch external_ids for
   * ovn-controller (`ovn-remote` is the SB remote as given).
   */
  ovn: {
    nb: string;
    sb: string;
    hostId: string;
    encapIp: string | undefined;
    /** Seconds a chassis may leave a sync unanswered before its host is shown not answering. */
    hostTimeoutS: number;
  };
}

/** Setting name (environment variable) -> how to apply its text to the config. */
interface Setting {
  env: string;
  /** The `archnet serve` flag; none for secrets (`ps` shows a process's arguments). */
  flag?: string;
  describe: string;
  apply: (cfg: AgentConfig, text: string) => void;
}

const intIn =
  (setting: string, min: number, max: number) =>
  (text: string): number => {
    const n = Number(text);
    if (!/^\d+$/.test(text.trim()) || n < min || n > max) {
      throw new AgentError(
        "INVALID_CONFIG",
        `${setting}: "${text}" is not a whole number from ${min} to ${max}`,
      );
    }
    return n;
  };

function parseListen(text: string, setting: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[2]) : Number.NaN;
  const host = m?.[1]?.replace(/^\[|\]$/g, "") ?? "";
  if (!m || port < 1 || port > 65535 || (isIP(host) === 0 && host !== "localhost")) {
    throw new AgentError("INVALID_CONFIG", `${setting}: "${text}" is not HOST:PORT`, "e.g. 127.0.0.1:8001");
  }
  return { host, port };
}

/** unix:PATH or tcp:HOST:PORT, as OVS's own tools write a remote. */
function parseSocketTarget(text: string, setting: string, what: string, hint: string): string {
  if (/^unix:\/.+/.test(text) || /^tcp:[^:]+:\d{1,5}$/.test(text)) return text;
  throw new AgentError("INVALID_CONFIG", `${setting}: "${text}" is not ${what}`, hint);
}

function parseOvsdbRemote(text: string, setting: string): string {
  return parseSocketTarget(
    text,
    setting,
    "an OVSDB remote",
    "use unix:/var/run/openvswitch/db.sock or tcp:HOST:PORT",
  );
}

function parseOpenflowTarget(text: string, setting: string): string {
  return parseSocketTarget(
    text,
    setting,
    "an OpenFlow target",
    "use unix:/var/run/openvswitch/BRIDGE.mgmt or tcp:HOST:PORT (a ptcp: listener of the bridge)",
  );
}

/** A refusal of the name rules (src/model/names.ts) as a config error naming the setting. */
function byNameRule<T>(setting: string, check: () => T): T {
  try {
    return check();
  } catch (e) {
    if (!isAgentError(e)) throw e;
    throw new AgentError("INVALID_CONFIG", `${setting}: ${e.message}`, e.hint);
  }
}

function parseBridgeName(text: string, setting: string): string {
  return byNameRule(setting, () => validateIfName(text, "bridge name"));
}

function parseHostList(text: string, setting: string): string[] {
  const names = text
    .split(",")
    .map((n) =>
      n
        .trim()
        .toLowerCase()
        .replace(/^\[(.*)\]$/, "$1"),
    )
    .filter((n) => n !== "");
  for (const n of names) {
    if (
      isIP(n) === 0 &&
      !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/.test(n)
    ) {
      throw new AgentError(
        "INVALID_CONFIG",
        `${setting}: "${n}" is not a host name or IP address`,
        "list names without scheme or port, e.g. agent.lab.example,198.18.0.5",
      );
    }
  }
  return names;
}

/**
 * The secret in a file (one line; surrounding whitespace dropped). Refused when other users may
 * read or write it: the file would then give the secret away, or let them choose it.
 */
export function readSecretFile(path: string, setting: string): string {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new AgentError(
      "INVALID_CONFIG",
      `${setting}: ${path} ${code === "ENOENT" ? "does not exist" : `cannot be read (${code})`}`,
    );
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new AgentError("INVALID_CONFIG", `${setting}: ${path} is not a regular file`);
    if ((st.mode & 0o007) !== 0) {
      throw new AgentError(
        "INVALID_CONFIG",
        `${setting}: ${path} is open to every user (mode ${(st.mode & 0o777).toString(8).padStart(4, "0")})`,
        `chmod 600 ${path} (or 640 to share it with a group)`,
      );
    }
    const secret = readFileSync(fd, "utf8").trim();
    if (secret === "" || /[\r\n]/.test(secret)) {
      throw new AgentError("INVALID_CONFIG", `${setting}: ${path} must hold the secret on one line`);
    }
    return secret;
  } finally {
    closeSync(fd);
  }
}

function oneOf<T extends string>(text: string, setting: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(text)) return text as T;
  throw new AgentError("INVALID_CONFIG", `${setting}: "${text}" must be one of ${allowed.join(", ")}`);
}

export const SETTINGS: readonly Setting[] = [
  {
    env: "ARCHETYPE_AGENT_LISTEN",
    flag: "listen",
    describe: "HTTP API address HOST:PORT",
    apply: (c, t) => {
      c.listen = parseListen(t, "ARCHETYPE_AGENT_LISTEN");
    },
  },
  {
    env: "ARCHETYPE_AGENT_SECRET",
    describe: "bearer token required by every route but /health",
    apply: (c, t) => {
      c.secret = t === "" ? undefined : t;
    },
  },
  // after ARCHETYPE_AGENT_SECRET: settings apply in this order, so a secret from both is seen here
  {
    env: "ARCHETYPE_AGENT_SECRET_FILE",
    flag: "secret-file",
    describe: "file holding the bearer token (not readable by other users)",
    apply: (c, t) => {
      if (t === "") return;
      if (!t.startsWith("/")) {
        throw new AgentError(
          "INVALID_CONFIG",
          `ARCHETYPE_AGENT_SECRET_FILE: "${t}" must be an absolute path`,
        );
      }
      if (c.secret !== undefined) {
        throw new AgentError(
          "INVALID_CONFIG",
          "ARCHETYPE_AGENT_SECRET_FILE: the secret is also set by ARCHETYPE_AGENT_SECRET",
          "set one of the two",
        );
      }
      c.secret = readSecretFile(t, "ARCHETYPE_AGENT_SECRET_FILE");
    },
  },
  {
    env: "ARCHETYPE_AGENT_ALLOWED_HOSTS",
    flag: "allowed-hosts",
    describe: "comma-separated host names the API answers to besides its listen address and localhost",
    apply: (c, t) => {
      c.allowedHosts = parseHostList(t, "ARCHETYPE_AGENT_ALLOWED_HOSTS");
    },
  },
  {
    env: "ARCHETYPE_AGENT_OVSDB",
    flag: "ovsdb",
    describe: "OVSDB remote (unix:PATH or tcp:HOST:PORT)",
    apply: (c, t) => {
      c.ovsdb = parseOvsdbRemote(t, "ARCHETYPE_AGENT_OVSDB");
    },
  },
  {
    env: "ARCHETYPE_AGENT_OVSDB_PROBE_MS",
    flag: "ovsdb-probe-ms",
    describe:
      "ms without traffic after which a tcp: OVSDB connection is probed (echo), and dropped when no answer comes within as long again (0 disables)",
    apply: (c, t) => {
      c.ovsdbProbeMs = intIn("ARCHETYPE_AGENT_OVSDB_PROBE_MS", 0, 3_600_000)(t);
    },
  },
  {
    env: "ARCHETYPE_AGENT_BRIDGE",
    flag: "bridge",
    describe: "the OVS bridge",
    apply: (c, t) => {
      c.bridge = parseBridgeName(t, "ARCHETYPE_AGENT_BRIDGE");
    },
  },
  {
    env: "ARCHETYPE_AGENT_OPENFLOW",
    flag: "openflow",
    describe:
      "OpenFlow target of the bridge (unix:PATH or tcp:HOST:PORT); default: BRIDGE.mgmt beside a unix: OVSDB socket",
    apply: (c, t) => {
      c.openflow = t === "" ? undefined : parseOpenflowTarget(t, "ARCHETYPE_AGENT_OPENFLOW");
    },
  },
  {
    env: "ARCHETYPE_AGENT_LINK_MODE",
    flag: "link-mode",
    describe: "mode of links that name none: vlan (a shared VLAN) or wire (a cable: tagged frames cross)",
    apply: (c, t) => {
      c.linkMode = oneOf(t, "ARCHETYPE_AGENT_LINK_MODE", LINK_MODES);
    },
  },
  {
    env: "ARCHETYPE_AGENT_ISOLATION",
    flag: "isolation",
    describe:
      "how unlinked interfaces are kept apart: vlan (a VLAN each, from the isolated range) or shared (one parking VLAN, a drop flow each: more interfaces than VLANs)",
    apply: (c, t) => {
      c.isolation = oneOf(t, "ARCHETYPE_AGENT_ISOLATION", ["vlan", "shared"] as const);
    },
  },
  {
    env: "ARCHETYPE_AGENT_DATAPATH",
    flag: "datapath",
    describe: "auto, system or netdev",
    apply: (c, t) => {
      c.datapath = oneOf(t, "ARCHETYPE_AGENT_DATAPATH", ["auto", "system", "netdev"] as const);
    },
  },
  {
    env: "ARCHETYPE_AGENT_STATE_DIR",
    flag: "state-dir",
    describe: "durable state directory",
    apply: (c, t) => {
      if (!t.startsWith("/")) {
        throw new AgentError("INVALID_CONFIG", `ARCHETYPE_AGENT_STATE_DIR: "${t}" must be an absolute path`);
      }
      c.stateDir = t;
    },
  },
  {
    env: "ARCHETYPE_AGENT_PLUGIN_SOCKET",
    flag: "plugin-socket",
    describe: "Docker plugin socket; empty disables the plugin",
    apply: (c, t) => {
      if (t !== "" && !t.startsWith("/")) {
        throw new AgentError(
          "INVALID_CONFIG",
          `ARCHETYPE_AGENT_PLUGIN_SOCKET: "${t}" must be an absolute path`,
        );
      }
      c.pluginSocket = t === "" ? undefined : t;
    },
  },
  {
    env: "ARCHETYPE_AGENT_BACKEND",
    flag: "backend",
    describe: "ovs, local or ovn",
    apply: (c, t) => {
      c.backend = oneOf(t, "ARCHETYPE_AGENT_BACKEND", ["ovs", "local", "ovn"] as const);
    },
  },
  {
    env: "ARCHETYPE_AGENT_OVN_NB",
    flag: "ovn-nb",
    describe: "ovn backend: OVN northbound database remote (unix:PATH or tcp:HOST:PORT)",
    apply: (c, t) => {
      c.ovn.nb = parseOvsdbRemote(t, "ARCHETYPE_AGENT_OVN_NB");
    },
  },
  {
    env: "ARCHETYPE_AGENT_OVN_SB",
    flag: "ovn-sb",
    describe: "ovn backend: OVN southbound database remote (also ovn-controller's ovn-remote)",
    apply: (c, t) => {
      c.ovn.sb = parseOvsdbRemote(t, "ARCHETYPE_AGENT_OVN_SB");
    },
  },
  {
    env: "ARCHETYPE_AGENT_HOST_ID",
    flag: "host-id",
    describe: "ovn backend: this host's chassis name (default: the hostname)",
    apply: (c, t) => {
      if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(t)) {
        throw new AgentError(
          "INVALID_CONFIG",
          `ARCHETYPE_AGENT_HOST_ID: "${t}" is not 1-63 characters from A-Z a-z 0-9 _ . - starting with a letter or digit`,
        );
      }
      c.ovn.hostId = t;
    },
  },
  {
    env: "ARCHETYPE_AGENT_OVN_ENCAP_IP",
    flag: "ovn-encap-ip",
    describe: "ovn backend: this host's Geneve tunnel endpoint IPv4 address",
    apply: (c, t) => {
      if (t !== "" && isIP(t) !== 4) {
        throw new AgentError("INVALID_CONFIG", `ARCHETYPE_AGENT_OVN_ENCAP_IP: "${t}" is not an IPv4 address`);
      }
      c.ovn.encapIp = t === "" ? undefined : t;
    },
  },
  {
    env: "ARCHETYPE_AGENT_OVN_HOST_TIMEOUT",
    flag: "ovn-host-timeout",
    describe: "ovn backend: seconds a host's ovn-controller may not answer before its links show down",
    apply: (c, t) => {
      c.ovn.hostTimeoutS = intIn("ARCHETYPE_AGENT_OVN_HOST_TIMEOUT", 3, 3600)(t);
    },
  },
  {
    env: "ARCHETYPE_AGENT_SWITCH_NETNS",
    flag: "switch-netns",
    describe:
      "netns (name or /path) where ovs-vswitchd runs and host-side ports live; default: the agent's own",
    apply: (c, t) => {
      if (t !== "") byNameRule("ARCHETYPE_AGENT_SWITCH_NETNS", () => parseNetnsRef({ netns: t }));
      c.switchNetns = t === "" ? undefined : t;
    },
  },
  {
    env: "ARCHETYPE_AGENT_VLAN_RANGE",
    flag: "vlan-range",
    describe: "VLANs for local links",
    apply: (c, t) => {
      c.vlan.local = parseVlanRange(t, "ARCHETYPE_AGENT_VLAN_RANGE");
    },
  },
  {
    env: "ARCHETYPE_AGENT_ISOLATED_VLAN_RANGE",
    flag: "isolated-vlan-range",
    describe: "VLANs that keep unlinked interfaces isolated (one each)",
    apply: (c, t) => {
      c.vlan.isolated = parseVlanRange(t, "ARCHETYPE_AGENT_ISOLATED_VLAN_RANGE");
    },
  },
  {
    env: "ARCHETYPE_AGENT_OVERLAY_VLAN_RANGE",
    flag: "overlay-vlan-range",
    describe: "VLANs for cross-host overlay links",
    apply: (c, t) => {
      c.vlan.overlay = parseVlanRange(t, "ARCHETYPE_AGENT_OVERLAY_VLAN_RANGE");
    },
  },
  {
    env: "ARCHETYPE_AGENT_LOCAL_MTU",
    flag: "local-mtu",
    describe: "MTU of node interfaces on local links",
    apply: (c, t) => {
      c.localMtu = intIn("ARCHETYPE_AGENT_LOCAL_MTU", 68, 65535)(t);
    },
  },
  {
    env: "ARCHETYPE_AGENT_OVERLAY_MTU",
    flag: "overlay-mtu",
    describe: "MTU of node interfaces on overlay links (underlay MTU - 50)",
    apply: (c, t) => {
      c.overlayMtu = intIn("ARCHETYPE_AGENT_OVERLAY_MTU", 68, 65485)(t);
    },
  },
  {
    env: "ARCHETYPE_AGENT_UNDERLAY_BRIDGE",
    flag: "underlay-bridge",
    describe: "OVS bridge holding the VXLAN underlay (userspace datapath)",
    apply: (c, t) => {
      c.underlay.bridge = parseBridgeName(t, "ARCHETYPE_AGENT_UNDERLAY_BRIDGE");
    },
  },
  {
    env: "ARCHETYPE_AGENT_UNDERLAY_INTERFACE",
    flag: "underlay-interface",
    describe: "NIC the agent puts on the underlay bridge (optional)",
    apply: (c, t) => {
      if (t !== "") byNameRule("ARCHETYPE_AGENT_UNDERLAY_INTERFACE", () => validateIfName(t));
      c.underlay.interface = t === "" ? undefined : t;
    },
  },
  {
    env: "ARCHETYPE_AGENT_UNDERLAY_IP",
    flag: "underlay-ip",
    describe: "local tunnel IP/prefix the agent puts on the underlay bridge, e.g. 198.18.0.1/24 (optional)",
    apply: (c, t) => {
      const [ip, prefix, ...rest] = t.split("/");
      const ok =
        rest.length === 0 && isIP(ip ?? "") === 4 && (prefix === undefined || /^\d{1,2}$/.test(prefix));
      if (t !== "" && !ok) {
        throw new AgentError("INVALID_CONFIG", `ARCHETYPE_AGENT_UNDERLAY_IP: "${t}" is not IPv4[/PREFIX]`);
      }
      c.underlay.localIp = t === "" ? undefined : t;
    },
  },
  {
    env: "ARCHETYPE_AGENT_PLUGIN_SPARES",
    flag: "plugin-spares",
    describe: "pre-made interfaces per Docker plugin network (faster container start; 0 disables)",
    apply: (c, t) => {
      c.pluginSpares = intIn("ARCHETYPE_AGENT_PLUGIN_SPARES", 0, 64)(t);
    },
  },
  {
    env: "ARCHETYPE_AGENT_CLEANUP_INTERVAL",
    flag: "cleanup-interval",
    describe: "seconds between orphan cleanup passes (0 disables the timer)",
    apply: (c, t) => {
      c.cleanupIntervalS = intIn("ARCHETYPE_AGENT_CLEANUP_INTERVAL", 0, 86400)(t);
    },
  },
  {
    env: "ARCHETYPE_AGENT_SWITCH_TIMEOUT_SCALE",
    flag: "switch-timeout-scale",
    describe: "multiplies how long ovs-vswitchd may take before a change fails (slow or emulated hosts)",
    apply: (c, t) => {
      c.switchTimeoutScale = intIn("ARCHETYPE_AGENT_SWITCH_TIMEOUT_SCALE", 1, 100)(t);
    },
  },
  {
    env: "ARCHETYPE_AGENT_CLEANUP_GRACE",
    flag: "cleanup-grace",
    describe: "seconds a new resource is safe from cleanup",
    apply: (c, t) => {
      c.cleanupGraceS = intIn("ARCHETYPE_AGENT_CLEANUP_GRACE", 0, 3600)(t);
    },
  },
  {
    env: "ARCHETYPE_AGENT_MAX_CAPTURES",
    flag: "max-captures",
    describe: "packet captures running at once (one tcpdump each); more are refused (429)",
    apply: (c, t) => {
      c.maxCaptures = intIn("ARCHETYPE_AGENT_MAX_CAPTURES", 0, 256)(t);
    },
  },
  {
    env: "ARCHETYPE_LOG_LEVEL",
    flag: "log-level",
    describe: "trace, debug, info, warn, error",
    apply: (c, t) => {
      c.logLevel = oneOf(t, "ARCHETYPE_LOG_LEVEL", [
        "trace",
        "debug",
        "info",
        "warn",
        "error",
        "silent",
      ] as const);
    },
  },
];

export function defaultConfig(): AgentConfig {
  return {
    listen: { host: "127.0.0.1", port: 8001 },
    allowedHosts: [],
    secret: undefined,
    ovsdb: "unix:/var/run/openvswitch/db.sock",
    ovsdbProbeMs: 5000,
    bridge: "arch-ovs",
    openflow: undefined,
    linkMode: "vlan",
    isolation: "vlan",
    datapath: "auto",
    stateDir: "/var/lib/archetype-network",
    pluginSocket: "/run/docker/plugins/archetype-ovs.sock",
    pluginSpares: 1,
    backend: "ovs",
    switchNetns: undefined,
    vlan: {
      local: { min: 100, max: 999 },
      isolated: { min: 1000, max: 2999 },
      overlay: { min: 3000, max: 4000 },
    },
    localMtu: 9000,
    overlayMtu: 1450,
    underlay: { bridge: "br-phy", interface: undefined, localIp: undefined },
    cleanupIntervalS: 60,
    switchTimeoutScale: 1,
    cleanupGraceS: 10,
    maxCaptures: 8,
    logLevel: "info",
    ovn: {
      nb: "unix:/var/run/ovn/ovnnb_db.sock",
      sb: "unix:/var/run/ovn/ovnsb_db.sock",
      hostId: defaultHostId(),
      encapIp: undefined,
      hostTimeoutS: 15,
    },
  };
}

export interface ConfigSources {
  /** Path of an optional JSON file of {"ARCHETYPE_AGENT_…": "value"} pairs. */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** CLI flags keyed by Setting.flag. */
  flags?: Record<string, string | undefined>;
}

/** defaults < config file < environment < CLI flags; throws INVALID_CONFIG naming the setting. */
export function loadConfig(sources: ConfigSources = {}): AgentConfig {
  const cfg = defaultConfig();
  const env = sources.env ?? process.env;
  const fileValues = sources.file ? readConfigFile(sources.file) : {};
  for (const s of SETTINGS) {
    const fromFlag = s.flag === undefined ? undefined : sources.flags?.[s.flag];
    const value = fromFlag ?? env[s.env] ?? fileValues[s.env];
    if (value !== undefined) s.apply(cfg, String(value));
  }
  checkConsistency(cfg);
  return cfg;
}

/** The hostname as a chassis name: its first label, when it is a valid one. */
function defaultHostId(): string {
  const h = hostname().split(".")[0] ?? "";
  return /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(h) ? h : "localhost";
}

function readConfigFile(path: string): Record<string, string> {
  if (!existsSync(path)) {
    throw new AgentError("INVALID_CONFIG", `config file ${path} does not exist`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new AgentError("INVALID_CONFIG", `config file ${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new AgentError("INVALID_CONFIG", `config file ${path} must hold one JSON object of settings`);
  }
  const known = new Set(SETTINGS.map((s) => s.env));
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(parsed)) {
    if (!known.has(k)) {
      throw new AgentError(
        "INVALID_CONFIG",
        `config file ${path}: unknown setting ${k}`,
        `known: ${[...known].join(", ")}`,
      );
    }
    out[k] = String(v);
  }
  return out;
}

function checkConsistency(cfg: AgentConfig): void {
  const { local, isolated, overlay } = cfg.vlan;
  const pairs: [string, VlanRange, string, VlanRange][] = [
    ["local", local, "isolated", isolated],
    ["local", local, "overlay", overlay],
    ["isolated", isolated, "overlay", overlay],
  ];
  for (const [an, a, bn, b] of pairs) {
    if (rangesOverlap(a, b)) {
      throw new AgentError(
        "INVALID_CONFIG",
        `the ${an} VLAN range ${formatRange(a)} overlaps the ${bn} range ${formatRange(b)}`,
        "VLAN ranges must be disjoint: set ARCHETYPE_AGENT_*VLAN_RANGE",
      );
    }
  }
  if (cfg.backend === "ovn" && cfg.ovn.encapIp === undefined) {
    throw new AgentError(
      "INVALID_CONFIG",
      "the ovn backend needs this host's Geneve tunnel endpoint",
      "set ARCHETYPE_AGENT_OVN_ENCAP_IP to this host's underlay IPv4 address",
    );
  }
  const loopback =
    cfg.listen.host === "localhost" || cfg.listen.host.startsWith("127.") || cfg.listen.host === "::1";
  if (!loopback && !cfg.secret) {
    throw new AgentError(
      "INVALID_CONFIG",
      `ARCHETYPE_AGENT_LISTEN: refusing to serve on ${cfg.listen.host} without a secret`,
      "set ARCHETYPE_AGENT_SECRET_FILE (or ARCHETYPE_AGENT_SECRET), or listen on 127.0.0.1",
    );
  }
}
