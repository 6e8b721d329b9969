import { join } from "node:path";

/**
 * What OVN's central part is, as processes: the northbound and southbound databases (an
 * ovsdb-server each) and ovn-northd, every file of them in one directory. `archnet central serve`
 * runs them as its children; the test harness runs the same ones detached in a namespace. How each
 * is started and stopped (pid files, logs, detaching) is the caller's.
 */
export type CentralDb = "nb" | "sb";

export const CENTRAL_SCHEMA: Readonly<Record<CentralDb, string>> = {
  nb: "/usr/share/ovn/ovn-nb.ovsschema",
  sb: "/usr/share/ovn/ovn-sb.ovsschema",
};

/** The daemons' run, database and log directories: all `dir`, never a packaged OVN's. */
export function centralEnv(dir: string): Record<string, string> {
  return Object.fromEntries(
    ["OVS_RUNDIR", "OVS_DBDIR", "OVS_LOGDIR", "OVN_RUNDIR", "OVN_DBDIR", "OVN_LOGDIR"].map((k) => [k, dir]),
  );
}

/** A database's file in `dir`. */
export function centralDbFile(dir: string, db: CentralDb): string {
  return join(dir, `${db}.db`);
}

function socketPath(dir: string, db: CentralDb): string {
  return join(dir, `${db}.sock`);
}

/** A database's unix-socket remote in `dir` (`unix:DIR/nb.sock`). */
export function centralRemote(dir: string, db: CentralDb): string {
  return `unix:${socketPath(dir, db)}`;
}

/** ovsdb-server's arguments for one database: its file, its socket, `listen` (validated), a control socket. */
export function dbServerArgs(dir: string, db: CentralDb, listen: readonly string[] = []): string[] {
  return [
    centralDbFile(dir, db),
    `--remote=punix:${socketPath(dir, db)}`,
    ...listen.map((l) => `--remote=${l}`),
    `--unixctl=${join(dir, `${db}.ctl`)}`,
  ];
}

/** ovn-northd's arguments: both databases' sockets, a control socket. */
export function northdArgs(dir: string): string[] {
  return [
    `--ovnnb-db=${centralRemote(dir, "nb")}`,
    `--ovnsb-db=${centralRemote(dir, "sb")}`,
    `--unixctl=${join(dir, "northd.ctl")}`,
  ];
}
