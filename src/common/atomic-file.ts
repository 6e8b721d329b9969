import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { open, rename } from "node:fs/promises";
import { dirname } from "node:path";
import { AgentError } from "./errors.js";

/**
 * How long a change must last. `power-loss`: flushed to disk (the file, then its directory)
 * before the promise resolves; milliseconds, spent off the event loop. `crash`: in the kernel's
 * page cache, which outlives the agent (`kill -9`) but not the machine; for records of what does
 * not outlive the machine either (a veth). Without flushes a write costs microseconds, less than
 * a trip through Node's thread pool, so it is done at once.
 */
export type Durability = "power-loss" | "crash";

/**
 * Whole-file replacement that survives `kill -9`, and power loss when `durability` says so, at
 * any moment: the new content goes to a temporary file in the same directory and is renamed over
 * the old one; for power loss the file is flushed before the rename and the directory after it,
 * so that the rename itself is on disk.
 * A reader sees either the old or the new document, never a torn one. A failed write (full disk,
 * I/O error) removes its temporary file, leaves the old document as it was and throws
 * STATE_WRITE_FAILED. One write per path at a time (the temporary file's name is the path's).
 */
export async function writeAtomic(
  path: string,
  content: string,
  durability: Durability = "power-loss",
): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    if (durability === "crash") {
      writeFileSync(tmp, content, { mode: 0o600 });
      renameSync(tmp, path);
      return;
    }
    const file = await open(tmp, "w", 0o600);
    try {
      await file.writeFile(content); // writes it all, or throws (a disk filling up)
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, path);
    await syncDir(dirname(path));
  } catch (e) {
    rmSync(tmp, { force: true });
    throw writeFailed(path, e);
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function writeFailed(path: string, e: unknown): AgentError {
  const dir = dirname(path);
  const code = (e as NodeJS.ErrnoException).code;
  const hint =
    code === "ENOSPC" || code === "EDQUOT"
      ? `free space in ${dir} (or raise its quota), then repeat the request`
      : code === "EIO"
        ? `the disk holding ${dir} reports I/O errors: check it (dmesg), then repeat the request`
        : `check that ${dir} exists and the agent may write there, then repeat the request`;
  return new AgentError(
    "STATE_WRITE_FAILED",
    `cannot store the agent's state in ${dir} (${(e as Error).message}): the change was not made`,
    hint,
    { cause: e },
  );
}

/** The parsed document at `path`, `undefined` when there is none; throws SyntaxError when it is not JSON. */
export function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw e;
  }
  return JSON.parse(text);
}

/** Moves a damaged file out of the way (`NAME.corrupt-TIME`, kept for inspection); returns its new path. */
export function setAside(path: string): string {
  const to = `${path}.corrupt-${new Date().toISOString().replace(/[-:.]/g, "")}`;
  renameSync(path, to);
  return to;
}

/** Removes a document as durably as `writeAtomic` writes one (power loss: the directory is flushed). */
export async function removeFile(path: string, durability: Durability = "power-loss"): Promise<void> {
  try {
    rmSync(path, { force: true });
    if (durability === "power-loss") await syncDir(dirname(path));
  } catch (e) {
    throw writeFailed(path, e);
  }
}
