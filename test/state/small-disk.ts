import { statfsSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../../src/common/exec.js";

/** A tiny real filesystem (tmpfs) to fill up: disk-full behaviour without touching the host's disks. */
export interface SmallDisk {
  dir: string;
  /** Fills the disk so that exactly `freeBytes` (whole 4 KiB pages) stay free. */
  fill(freeBytes: number): void;
  /** Frees what `fill` took. */
  drain(): void;
  free(): number;
  /** Unmounts and removes the mount point. Safe to call twice. */
  remove(): Promise<void>;
}

export async function mountSmallDisk(sizeKiB = 256): Promise<SmallDisk> {
  const dir = await mkdtemp(join(tmpdir(), "archnet-small-disk-"));
  try {
    await run("mount", ["-t", "tmpfs", "-o", `size=${sizeKiB}k,mode=0700`, "tmpfs", dir]);
  } catch (e) {
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  const filler = join(dir, "filler");
  let removed = false;
  const disk: SmallDisk = {
    dir,
    fill(freeBytes) {
      try {
        writeFileSync(filler, Buffer.alloc(sizeKiB * 1024));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOSPC") throw e;
      }
      // Everything is taken now; give back whole pages.
      truncateSync(filler, statSync(filler).size - freeBytes);
      if (disk.free() !== freeBytes) throw new Error(`${dir}: ${disk.free()} bytes free, not ${freeBytes}`);
    },
    drain() {
      writeFileSync(filler, "");
    },
    free() {
      const s = statfsSync(dir);
      return s.bavail * s.bsize;
    },
    async remove() {
      if (removed) return;
      removed = true;
      await run("umount", [dir]);
      await rm(dir, { recursive: true, force: true });
    },
  };
  return disk;
}
