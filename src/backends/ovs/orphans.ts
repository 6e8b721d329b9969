import type { Operation, OvsdbClient } from "../../ovsdb/index.js";
import type { CleanupContext, Orphan } from "../network-backend.js";

// PLACEHOLDER: written by the cleanup work (issue 8).
export async function auditOrphans(
  _client: OvsdbClient,
  _bridge: string,
  _ctx: CleanupContext,
): Promise<Orphan[]> {
  return [];
}

export function removeOrphanOps(
  _client: OvsdbClient,
  _bridge: string,
  _orphans: readonly Orphan[],
): { ops: Operation[]; kernel: string[] } {
  return { ops: [], kernel: [] };
}
