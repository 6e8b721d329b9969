import { validateNetnsName } from "../model/names.js";
import { ipBatch } from "./ip.js";

/** Creates named namespaces in one `ip -batch` (tests and benches; the agent uses the node's). */
export async function addNetns(names: string[]): Promise<void> {
  await ipBatch(names.map((n) => ["netns", "add", validateNetnsName(n)]));
}

/** Deletes named namespaces in one `ip -batch`; missing ones are skipped when asked. */
export async function deleteNetns(names: string[], opts: { ignoreMissing?: boolean } = {}): Promise<void> {
  const lines = names.map((n) => ["netns", "delete", validateNetnsName(n)]);
  if (!opts.ignoreMissing) return ipBatch(lines);
  await ipBatch(lines, { force: true, ignore: /No such file or directory|Cannot remove namespace file/ });
}
