import { decodeMap, decodeSet, del, eqUuid, includes, map, type Operation, wait } from "../../ovsdb/index.js";
import { NB_MARK, OWNER_VALUE } from "./marks.js";
import type { RowsOf } from "./nb-model.js";

/**
 * The ovn backend's orphans in the northbound database. NB is its desired state: a lab exists
 * while its lab switch does, so a switch with the agent's marks that no lab holds (a link switch
 * whose lab switch was deleted behind the agent's back, or a marked switch of no known kind) is
 * an orphan; its ports go with it (ovsdb-server collects ports no switch holds). A row without
 * the marks is never one, whatever its name. Pure: reads rows only.
 */
export interface NbOrphan {
  uuid: string;
  name: string;
  /** The lab its marks name ("" when none). */
  lab: string;
  reason: string;
}

function num(v: string | undefined): number {
  const n = Number(v ?? 0);
  return Number.isFinite(n) ? n : 0;
}

/** Marked switches no lab holds; rows made after `graceSince` (ms since epoch) are left alone. */
export function findNbOrphans(rows: RowsOf, graceSince: number): NbOrphan[] {
  const switches = rows("Logical_Switch");
  const ports = rows("Logical_Switch_Port");
  const labs = new Set<string>();
  for (const r of switches.values()) {
    const ids = decodeMap(r.external_ids);
    if (ids[NB_MARK.owner] === OWNER_VALUE && ids[NB_MARK.kind] === "lab") labs.add(ids[NB_MARK.lab] ?? "");
  }
  const out: NbOrphan[] = [];
  for (const [uuid, r] of switches) {
    const ids = decodeMap(r.external_ids);
    // A host's Docker slots are its agent's to keep and remove.
    if (ids[NB_MARK.owner] !== OWNER_VALUE || ids[NB_MARK.kind] === "lab" || ids[NB_MARK.kind] === "docker")
      continue;
    const lab = ids[NB_MARK.lab] ?? "";
    const name = typeof r.name === "string" ? r.name : uuid;
    let reason: string;
    if (ids[NB_MARK.kind] === "link" && lab !== "") {
      if (labs.has(lab)) continue;
      reason = `switch of link ${ids[NB_MARK.link] ?? "?"} of lab ${lab}, whose lab switch is gone from NB`;
    } else {
      reason = "marked as the agent's, but neither a lab's nor a link's switch";
    }
    // Age: the switch's own mark, else its newest port's (link switches carry none themselves).
    let created = num(ids[NB_MARK.created]);
    for (const p of decodeSet(r.ports)) {
      created = Math.max(created, num(decodeMap(ports.get(p)?.external_ids)[NB_MARK.created]));
    }
    if (created > graceSince) continue;
    out.push({ uuid, name, lab, reason });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * Removes one orphan, guarded: the row must still carry the agent's mark and, for a link switch,
 * no lab switch of its lab may exist at commit (another agent may have made the lab again
 * meanwhile; the transaction then fails and nothing is removed).
 */
export function removeOrphanOps(o: NbOrphan): Operation[] {
  const ops: Operation[] = [];
  if (o.lab !== "") {
    ops.push(
      wait(
        "Logical_Switch",
        [
          includes(
            "external_ids",
            map({ [NB_MARK.owner]: OWNER_VALUE, [NB_MARK.kind]: "lab", [NB_MARK.lab]: o.lab }),
          ),
        ],
        ["name"],
        "==",
        [],
        0,
      ),
    );
  }
  ops.push(
    del("Logical_Switch", [eqUuid(o.uuid), includes("external_ids", map({ [NB_MARK.owner]: OWNER_VALUE }))]),
  );
  return ops;
}
