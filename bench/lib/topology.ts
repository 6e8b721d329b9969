import type { LabSpec } from "../../src/model/views.js";
import { NetnsPool } from "../../test/harness/netns.js";
import { onCleanup } from "./cleanup.js";

/**
 * A lab of `links` point-to-point links: 2*links interfaces spread over namespaces of `perNode`
 * interfaces each (eth1..), link i joins interfaces 2i and 2i+1 (always two nodes).
 */
export interface Topology {
  namespaces: string[];
  ifaces: { node: string; netns: string; name: string }[];
  /** Index pairs into `ifaces`. */
  links: [number, number][];
  spec: LabSpec;
}

/** Creates the namespaces (registered for cleanup) and the lab spec over them. */
export async function makeTopology(links: number, prefix: string, perNode = 4): Promise<Topology> {
  const nodes = Math.max(2, Math.ceil((2 * links) / perNode));
  const pool = new NetnsPool(prefix);
  onCleanup(`namespaces ${prefix}*`, () => pool.destroyAll());
  const namespaces = await pool.create(nodes);
  const ifaces = Array.from({ length: 2 * links }, (_, j) => ({
    node: `n${j % nodes}`,
    netns: namespaces[j % nodes]!,
    name: `eth${Math.floor(j / nodes) + 1}`,
  }));
  const pairs = Array.from({ length: links }, (_, i) => [2 * i, 2 * i + 1] as [number, number]);
  const spec: LabSpec = {
    nodes: namespaces.map((ns, k) => ({
      name: `n${k}`,
      netns: ns,
      interfaces: ifaces.filter((f) => f.netns === ns).map((f) => ({ name: f.name })),
    })),
    links: pairs.map(([a, b]) => ({
      a: `${ifaces[a]!.node}:${ifaces[a]!.name}`,
      b: `${ifaces[b]!.node}:${ifaces[b]!.name}`,
      id: `l${a / 2}`,
    })),
  };
  return { namespaces, ifaces, links: pairs, spec };
}

/** Short unique host-side names for the baseline and floor (`PREFIX` + index, at most 15 chars). */
export function hostNames(prefix: string, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}${i}`);
}
