import { randomBytes } from "node:crypto";
import { type ExecOptions, type ExecResult, run } from "../../src/common/exec.js";
import { addNetns, deleteNetns, ipBatch, ipJson } from "../../src/link/index.js";

/**
 * Throw-away network namespaces for integration tests: real kernel, cheap, always deleted.
 * Test traffic must stay in 198.18.0.0/15 (RFC 2544 benchmarking range) and inside these namespaces.
 */

/** prefix + random base36, at most 15 characters: fits interface and namespace names alike. */
export function uniqueName(prefix: string): string {
  if (prefix.length > 11) throw new Error(`uniqueName prefix "${prefix}" is too long (max 11 characters)`);
  const alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";
  const bytes = randomBytes(15 - prefix.length);
  return prefix + Array.from(bytes, (b) => alphabet[b % 36]).join("");
}

export class NetnsPool {
  readonly names: string[] = [];
  constructor(private readonly prefix = "tns") {}

  /** Creates `n` named namespaces (one `ip -batch`), each with lo up unless `loUp: false`. */
  async create(n: number, opts: { loUp?: boolean } = {}): Promise<string[]> {
    const names = Array.from({ length: n }, () => uniqueName(this.prefix));
    this.names.push(...names); // recorded first so destroyAll also removes half-made ones
    await addNetns(names);
    // `netns exec` inside one batch forks ip per namespace: ~6 ms each, vs ~15 ms per nsenter from node.
    if (opts.loUp ?? true)
      await ipBatch(names.map((ns) => ["netns", "exec", ns, "ip", "link", "set", "lo", "up"]));
    return names;
  }

  /** Deletes every namespace this pool made (their veths go with them). */
  async destroyAll(): Promise<void> {
    const names = this.names.splice(0);
    if (names.length > 0) await deleteNetns(names, { ignoreMissing: true });
  }
}

/** Runs `fn` with `count` fresh namespaces and deletes them afterwards, even when it throws. */
export async function withNetns<T>(
  count: number,
  fn: (names: string[]) => Promise<T>,
  prefix = "tns",
): Promise<T> {
  const pool = new NetnsPool(prefix);
  try {
    return await fn(await pool.create(count));
  } finally {
    await pool.destroyAll();
  }
}

/** `ip netns exec NS ARGS...` (no shell). */
export function nsExec(ns: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return run("ip", ["netns", "exec", ns, ...args], opts);
}

/** Refuses test addresses outside 198.18.0.0/15 so tests can never talk to real networks. */
export function assertTestAddress(ipOrCidr: string): void {
  const ip = ipOrCidr.split("/")[0] ?? "";
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
  const ok =
    m !== null &&
    m[1] === "198" &&
    (m[2] === "18" || m[2] === "19") &&
    Number(m[3]) < 256 &&
    Number(m[4]) < 256;
  if (!ok)
    throw new Error(`test address ${ipOrCidr} is outside 198.18.0.0/15: tests may only use that range`);
}

export async function addAddress(ns: string, dev: string, cidr: string): Promise<void> {
  assertTestAddress(cidr);
  await ipBatch([["addr", "add", cidr, "dev", dev]], { netns: { name: ns } });
}

export async function setUp(ns: string, dev: string): Promise<void> {
  await ipBatch([["link", "set", "dev", dev, "up"]], { netns: { name: ns } });
}

export async function ifindex(ns: string, dev: string): Promise<number> {
  const [link] = await ipJson<{ ifindex: number }[]>(["link", "show", "dev", dev], { name: ns });
  if (!link) throw new Error(`no interface ${dev} in netns ${ns}`);
  return link.ifindex;
}
