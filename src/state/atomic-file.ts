import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { AgentError } from "../common/errors.js";

/**
 * Whole-file replacement that survives `kill -9` at any moment: the new content goes to a
 * temporary file in the same directory and is renamed over the old one, so a reader sees
 * either the old or the new document, never a torn one. `fsync` adds power-loss safety at
 * the cost of a disk flush per write.
 */
export function writeAtomic(path: string, content: string, fsync: boolean): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeSync(fd, content);
    if (fsync) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export function readJson<T>(path: string): T | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new AgentError(
      "INTERNAL",
      `state file ${path} is not valid JSON: ${(e as Error).message}`,
      "move the file away and restart the agent: it reconciles from OVS and the remaining state",
    );
  }
}

export function removeFile(path: string): void {
  rmSync(path, { force: true });
}
