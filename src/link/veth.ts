import { AgentError } from "../common/errors.js";
import { validateIfName } from "../model/names.js";
import { IpBatchError, ipBatch } from "./ip.js";
import { mapLimit } from "./limit.js";
import { deleteLinks } from "./link-ops.js";
import { getLink, listLinks } from "./links.js";
import {
  describeNetns,
  type NetnsIdentity,
  type NetnsRef,
  netnsArg,
  netnsLost,
  netnsNotFound,
  netnsPath,
} from "./netns.js";
import { validateAlias, validateGroup, validateMtu, validateUnicastMac } from "./values.js";

/** A veth pair: `host` stays in the agent's namespace, `peer` is created in `netns` under its final name. */
export interface VethSpec {
  host: string;
  peer: string;
  netns: NetnsRef;
  /** The namespace `netns` must still be (see netnsLost): nothing is made in another one. */
  netnsId?: NetnsIdentity | undefined;
  mtu?: number;
  group?: number;
  /** ifalias set on both ends; it survives moves and identifies the interface inside the node. */
  alias?: string;
  /** The node end's MAC address (unicast); absent: the kernel picks a random one. */
  mac?: string;
}

/** A veth pair with both ends in the agent's namespace (the Docker plugin hands the peer to Docker). */
export interface HostVethSpec {
  host: string;
  peer: string;
  mtu?: number;
  group?: number;
  alias?: string;
}

/** Namespaces given aliases in parallel; each is one nsenter+ip process. */
const PEER_CONCURRENCY = 8;

/**
 * Creates veth pairs in one `ip -batch` run here, with no process per namespace: the node's end
 * is the device being added (`link add name PEER netns NS up`), so it appears in the namespace under its
 * final name and up; our end is its veth peer. (The other way round the kernel refuses `up` on a
 * peer in another namespace: ENOTCONN.) Only aliases need one batch per namespace (8 in parallel).
 * All or nothing: on any failure what was created is deleted before the error is thrown.
 */
export async function createVeths(specs: readonly VethSpec[], opts: HostSide = {}): Promise<void> {
  if (specs.length === 0) return;
  const paths = validateSpecs(specs);
  requireNamespaces(specs, paths);

  const lines: string[][] = [];
  const owner: number[] = [];
  specs.forEach((s, i) => {
    const mtu = s.mtu === undefined ? [] : ["mtu", String(s.mtu)];
    const group = s.group === undefined ? [] : ["group", String(s.group)];
    const alias = s.alias === undefined ? [] : ["alias", s.alias];
    const mac = s.mac === undefined ? [] : ["address", s.mac];
    lines.push([
      "link",
      "add",
      "name",
      s.peer,
      "netns",
      netnsArg(s.netns),
      ...mtu,
      ...mac,
      "up",
      "type",
      "veth",
    ]);
    lines[lines.length - 1]!.push("peer", "name", s.host, ...mtu, ...group);
    lines.push(["link", "set", "dev", s.host, "up", ...alias]);
    owner.push(i, i);
  });
  try {
    await ipBatch(lines, { netns: opts.netns });
  } catch (e) {
    throw await failHostBatch(e, specs, owner, opts.netns);
  }

  // ifalias cannot be given at creation (the kernel ignores it there): set it from inside.
  const byNetns = new Map<string, VethSpec[]>();
  specs.forEach((s, i) => {
    if (s.alias === undefined) return;
    const list = byNetns.get(paths[i]!) ?? [];
    list.push(s);
    byNetns.set(paths[i]!, list);
  });
  try {
    await mapLimit([...byNetns.values()], PEER_CONCURRENCY, (group) =>
      ipBatch(
        group.map((s) => ["link", "set", "dev", s.peer, "alias", s.alias!]),
        { netns: group[0]!.netns },
      ),
    );
  } catch (e) {
    const cleanup = await rollback(
      specs.map((s) => s.host),
      opts.netns,
    );
    throw wrap(e, `setting aliases on veth peers failed${cleanup}`);
  }
}

/**
 * Creates veth pairs whose peer stays down in the agent's own namespace (the Docker plugin hands
 * it to Docker) and whose host end is up where the switch is (`opts.netns`, default here).
 */
export async function createVethsInHost(specs: readonly HostVethSpec[], opts: HostSide = {}): Promise<void> {
  if (specs.length === 0) return;
  const seen = new Set<string>();
  for (const s of specs) {
    for (const [name, what] of [
      [s.host, "host interface"],
      [s.peer, "peer interface"],
    ] as const) {
      validateIfName(name, what);
      if (seen.has(name))
        throw new AgentError("BAD_REQUEST", `interface name ${name} is used twice in one request`);
      seen.add(name);
    }
    validateCommon(s);
  }
  // One batch where the switch is: the pair, both aliases (they survive a move), the host end
  // up, then the peer moved to the agent's own namespace when the switch runs elsewhere.
  const own = netnsArg({ pid: process.pid });
  const lines: string[][] = [];
  const owner: number[] = [];
  specs.forEach((s, i) => {
    const mtu = s.mtu === undefined ? [] : ["mtu", String(s.mtu)];
    const group = s.group === undefined ? [] : ["group", String(s.group)];
    const alias = s.alias === undefined ? [] : ["alias", s.alias];
    lines.push([
      "link",
      "add",
      "name",
      s.host,
      ...mtu,
      ...group,
      "type",
      "veth",
      "peer",
      "name",
      s.peer,
      ...mtu,
    ]);
    lines.push(["link", "set", "dev", s.host, "up", ...alias]);
    owner.push(i, i);
    if (s.alias !== undefined) {
      lines.push(["link", "set", "dev", s.peer, ...alias]);
      owner.push(i);
    }
    if (opts.netns !== undefined) {
      lines.push(["link", "set", "dev", s.peer, "netns", own]);
      owner.push(i);
    }
  });
  try {
    await ipBatch(lines, { netns: opts.netns });
  } catch (e) {
    throw await failHostBatch(e, specs, owner, opts.netns);
  }
}

/** Where the host ends live: the switch's namespace, by default the agent's own. */
export interface HostSide {
  netns?: NetnsRef | undefined;
}

function validateCommon(s: HostVethSpec): void {
  if (s.mtu !== undefined) validateMtu(s.mtu);
  if (s.group !== undefined) validateGroup(s.group);
  if (s.alias !== undefined) validateAlias(s.alias);
}

/** Validates everything before any process runs; returns each spec's namespace path. */
function validateSpecs(specs: readonly VethSpec[]): string[] {
  const hosts = new Set<string>();
  const peers = new Set<string>();
  return specs.map((s) => {
    validateIfName(s.host, "host interface");
    validateIfName(s.peer, "peer interface");
    validateCommon(s);
    if (s.mac !== undefined) validateUnicastMac(s.mac);
    const path = netnsPath(s.netns);
    if (hosts.has(s.host))
      throw new AgentError("BAD_REQUEST", `host interface ${s.host} is used twice in one request`);
    const peerKey = `${path}\0${s.peer}`;
    if (peers.has(peerKey)) {
      throw new AgentError(
        "BAD_REQUEST",
        `peer ${s.peer} in ${describeNetns(s.netns)} is used twice in one request`,
      );
    }
    hosts.add(s.host);
    peers.add(peerKey);
    return path;
  });
}

/** Every namespace is there and still the one the spec was made for, before any process runs. */
function requireNamespaces(specs: readonly VethSpec[], paths: string[]): void {
  const seen = new Set<string>();
  specs.forEach((s, i) => {
    const key = `${paths[i]}\0${s.netnsId?.dev}:${s.netnsId?.ino}`;
    if (seen.has(key)) return;
    seen.add(key);
    const lost = netnsLost(s.netns, s.netnsId);
    if (lost)
      throw new AgentError(
        "NETNS_NOT_FOUND",
        `cannot create veth ${s.host}: ${lost}`,
        netnsNotFound(s.netns).hint,
      );
  });
}

/** Undoes what the host batch created, then says which veth failed and why. */
async function failHostBatch(
  e: unknown,
  specs: readonly (HostVethSpec & { netns?: NetnsRef })[],
  owner: number[],
  hostNetns: NetnsRef | undefined,
): Promise<AgentError> {
  const failed = e instanceof IpBatchError ? e.failedLine : undefined;
  // Lines before the failing one ran; an alias line's failure means its veth exists.
  const created =
    failed === undefined
      ? await existingPrefix(specs, hostNetns)
      : [...new Set(owner.slice(0, failed))].map((i) => specs[i]!.host);
  const cleanup = await rollback(created, hostNetns);
  if (!(e instanceof IpBatchError) || failed === undefined) return wrap(e, `creating veths failed${cleanup}`);
  const spec = specs[owner[failed]!]!;
  const where = spec.netns ? ` in ${describeNetns(spec.netns)}` : "";
  const what = `cannot create veth ${spec.host} <-> ${spec.peer}${where}`;
  const reason = e.failures[0]?.message ?? "failed";
  if (/File exists/.test(reason)) {
    const hostTaken = (await getLink(spec.host, hostNetns).catch(() => undefined)) !== undefined;
    const taken = hostTaken ? spec.host : `${spec.peer}${where || " here"}`;
    return new AgentError(
      "CONFLICT",
      `${what}: an interface named ${taken} already exists${cleanup}`,
      "choose another name or delete the old interface",
      { cause: e },
    );
  }
  if (spec.netns && /No such process|Invalid "netns" value/.test(reason)) {
    const nf = netnsNotFound(spec.netns);
    return new AgentError("NETNS_NOT_FOUND", `${what}: ${nf.message}${cleanup}`, nf.hint, { cause: e });
  }
  return new AgentError("COMMAND_FAILED", `${what}: ${reason}${cleanup}`, undefined, { cause: e });
}

/**
 * ip gave no line number (killed, or exited while parsing): lines run in order and stop at the
 * failure, so what we created is the longest prefix of hosts that now exist as veths.
 */
async function existingPrefix(
  specs: readonly HostVethSpec[],
  hostNetns: NetnsRef | undefined,
): Promise<string[]> {
  const links = new Map((await listLinks(hostNetns).catch(() => [])).map((l) => [l.name, l]));
  const out: string[] = [];
  for (const s of specs) {
    if (links.get(s.host)?.kind !== "veth") break;
    out.push(s.host);
  }
  return out;
}

/** Deletes host ends (peers go with them); returns a note for the error message when that fails too. */
async function rollback(hosts: string[], netns: NetnsRef | undefined): Promise<string> {
  if (hosts.length === 0) return "; nothing was left behind";
  try {
    await deleteLinks(hosts, { ignoreMissing: true, netns });
    return `; the ${hosts.length} veth(s) created before it were deleted again`;
  } catch (e) {
    return `; deleting the ${hosts.length} veth(s) created before it also failed (${(e as Error).message})`;
  }
}

function wrap(e: unknown, context: string): AgentError {
  if (e instanceof AgentError)
    return new AgentError(e.code, `${context}: ${e.message}`, e.hint, { cause: e });
  return new AgentError("COMMAND_FAILED", `${context}: ${String(e)}`, undefined, { cause: e });
}
