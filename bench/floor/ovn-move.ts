import {
  decodeOptional,
  eq,
  eqUuid,
  mutate,
  OvsdbClient,
  type Row,
  setDelete,
  setInsert,
  update,
  uuid,
} from "../../src/ovsdb/index.js";

/**
 * The floor of a cross-host rewire: OVN's own path with nothing of the agent's, on the
 * project's OVSDB client. One NB transaction moves a port between two logical switches (bumping
 * nb_cfg); once SB shows the port's new binding claimed, a second nb_cfg; done when every chassis
 * reported it in SB Chassis_Private and the binding is up. The same waits as the agent's
 * (OvnBackend.commit), without validation, planning, marks, locks or views.
 */
export class OvnMoveFloor {
  private constructor(
    private readonly nb: OvsdbClient,
    private readonly sb: OvsdbClient,
  ) {}

  static async connect(nbRemote: string, sbRemote: string): Promise<OvnMoveFloor> {
    const nb = await OvsdbClient.connect({
      remote: nbRemote,
      database: "OVN_Northbound",
      monitor: { Logical_Switch: ["name", "ports"], Logical_Switch_Port: ["name"] },
    });
    const sb = await OvsdbClient.connect({
      remote: sbRemote,
      database: "OVN_Southbound",
      applied: null,
      monitor: {
        SB_Global: ["nb_cfg"],
        Port_Binding: ["logical_port", "chassis", "up"],
        Chassis_Private: ["name", "nb_cfg"],
      },
    }).catch(async (e: unknown) => {
      await nb.close();
      throw e;
    });
    return new OvnMoveFloor(nb, sb);
  }

  /**
   * Moves `inPort` from `inFrom` into `link`, and `outPort` from `link` to `outTo`, enabling the
   * one and disabling the other (what the agent's rewire writes); resolves once `chassis` all
   * applied it and `inPort` is bound and up.
   */
  async move(
    m: { link: string; inPort: string; inFrom: string; outPort: string; outTo: string },
    chassis: readonly string[],
  ): Promise<void> {
    const ls = (name: string) => this.uuidOf(this.nb, "Logical_Switch", name);
    const lsp = (name: string) => uuid(this.uuidOf(this.nb, "Logical_Switch_Port", name));
    const ports = (sw: string, op: typeof setInsert, port: string) =>
      mutate("Logical_Switch", [eqUuid(ls(sw))], [op("ports", lsp(port))]);
    const first = await this.nb.transactCommitted([
      ports(m.link, setDelete, m.outPort),
      ports(m.outTo, setInsert, m.outPort),
      ports(m.inFrom, setDelete, m.inPort),
      ports(m.link, setInsert, m.inPort),
      update("Logical_Switch_Port", [eq("name", m.outPort)], { enabled: false }),
      update("Logical_Switch_Port", [eq("name", m.inPort)], { enabled: true }),
    ]);
    // NB's own hv_cfg waits (`applied`) are not used: SB is watched directly, as the agent does.
    first.applied.catch(() => undefined);
    await this.until(() => this.sbCfg() >= first.target && this.binding(m.inPort)?.chassis !== undefined);
    const second = await this.nb.transactCommitted([]);
    second.applied.catch(() => undefined);
    await this.until(
      () =>
        chassis.every((c) => (this.chassisCfg(c) ?? -1) >= second.target) &&
        this.binding(m.inPort)?.up === true,
    );
  }

  async close(): Promise<void> {
    await Promise.all([this.nb.close(), this.sb.close()]);
  }

  private uuidOf(db: OvsdbClient, table: string, name: string): string {
    for (const [id, r] of db.rawRows(table)) if (r.name === name) return id;
    throw new Error(`no ${table} named ${name}`);
  }

  private sbCfg(): number {
    const v = this.first("SB_Global")?.nb_cfg;
    return typeof v === "number" ? v : -1;
  }

  private first(table: string): Row | undefined {
    return this.sb.rawRows(table).values().next().value;
  }

  private chassisCfg(name: string): number | undefined {
    for (const r of this.sb.rawRows("Chassis_Private").values())
      if (r.name === name && typeof r.nb_cfg === "number") return r.nb_cfg;
    return undefined;
  }

  private binding(port: string): { chassis: string | undefined; up: boolean } | undefined {
    for (const r of this.sb.rawRows("Port_Binding").values()) {
      if (r.logical_port !== port) continue;
      const chassis = decodeOptional(r.chassis);
      return { chassis, up: decodeOptional<boolean>(r.up) === true };
    }
    return undefined;
  }

  /** Resolves once `ok` holds on SB's cache (checked on every change, no polling). */
  private async until(ok: () => boolean, timeoutMs = 10_000): Promise<void> {
    if (!(await this.sb.until(ok, timeoutMs)))
      throw new Error(`floor: OVN did not apply the move within ${timeoutMs} ms`);
  }
}
