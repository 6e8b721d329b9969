import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { AgentError } from "./errors.js";

/**
 * Whole-file replacement that survives `kill -9` and power loss at any moment: the new content
 * goes to a temporary file in the same directory, is flushed to disk and renamed over the old
 * one, then the directory is flushed so that the rename itself is on disk. A reader sees either
 * the old or the new document, never a torn one. A failed write (full disk, I/O error) removes
 * its temporary file, leaves the old document as it was and throws STATE_WRITE_FAILED.
 */
export function writeAtomic(path: string, content: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    const fd = openSync(tmp, "w", 0o600);
    try {
      writeAll(fd, Buffer.from(content));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    syncDir(dirname(path));
  } catch (e) {
    rmSync(tmp, { force: true });
    throw writeFailed(path, e);
  }
}

/** writeSync may write less than asked (a disk filling up): the rest is written or the error seen. */
function writeAll(fd: number, data: Buffer): void {
  for (let done = 0; done < data.length; ) {
    const n = writeSync(fd, data, done, data.length - done);
    if (n <= 0) throw Object.assign(new Error("write made no progress"), { code: "EIO" });
    done += n;
  }
}

function syncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
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

/** Removes a document durably (the directory is flushed), like `writeAtomic` writes one. */
export function removeFile(path: string): void {
  try {
    rmSync(path, { force: true });
    syncDir(dirname(path));
  } catch (e) {
    throw writeFailed(path, e);
  }
}
