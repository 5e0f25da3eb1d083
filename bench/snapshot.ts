/**
 * Snapshot cost vs disk size: an encrypted sparse disk of 1 GiB and one of 1 TiB, the same
 * 64 MiB written to each through an attachment (and flushed), then `reps` times, alternating
 * between the two disks: a snapshot (timed), then a disk from that snapshot (timed). Bytes added = growth of the engine
 * directory's allocated blocks (block files + SQLite state and WAL) across snapshot + clone,
 * measured with st_blocks; the block files' share is reported on its own.
 */
import Database from "better-sqlite3";
import * as path from "path";
import { median, summarize, type Summary } from "./stats";
import { allocatedBytes, freshEngine, INSTANCE_TYPE, log, patternBuffer, timeMs, ZONE, MiB } from "./util";

export interface SnapshotOptions {
  writtenBytes: number;
  reps: number;
  sizesGb: number[];
}

export interface SnapshotSizeResult {
  sizeGb: number;
  snapshotMs: Summary;
  cloneMs: Summary;
  /** Bytes the snapshot and the disk made from it added: block-file blocks + SQLite pages in use. */
  bytesAdded: Summary;
  /** ... of which block files (ciphertext). */
  blockBytesAdded: Summary;
  /** What the engine reports as the snapshot's usedBytes. */
  engineUsedBytes: number;
}

/** Bytes of the engine's SQLite database in use, as a reader sees it (WAL included). */
export function dbUsedBytes(engineDir: string): number {
  const db = new Database(path.join(engineDir, "state.db"), { readonly: true, fileMustExist: true });
  try {
    const n = (p: string) => Number(db.pragma(p, { simple: true }));
    return (n("page_count") - n("freelist_count")) * n("page_size");
  } finally {
    db.close();
  }
}

export function benchSnapshot(base: string, opts: SnapshotOptions): SnapshotSizeResult[] {
  const { engine, dir } = freshEngine(base, "snapshot");
  try {
    const ins = engine.createInstance({ zone: ZONE, instanceType: INSTANCE_TYPE });
    const data = patternBuffer(Math.min(opts.writtenBytes, 64 * MiB), 3);
    const disks = opts.sizesGb.map((sizeGb) => {
      const disk = engine.createDisk({ zone: ZONE, sizeGb, encrypt: true, name: `snap-src-${sizeGb}` });
      const att = engine.attachDisk({ diskId: disk.diskId, instanceId: ins.instanceId });
      for (let off = 0; off < opts.writtenBytes; off += data.length) engine.write(att.attachmentId, off, data.subarray(0, Math.min(data.length, opts.writtenBytes - off)));
      engine.flush(att.attachmentId);
      return { sizeGb, diskId: disk.diskId, snapMs: [] as number[], cloneMs: [] as number[], added: [] as number[], blockAdded: [] as number[], used: 0 };
    });
    // The sizes alternate (and which goes first) so load bursts hit them alike.
    for (let r = 0; r < opts.reps; r++) {
      for (const d of r % 2 === 0 ? disks : [...disks].reverse()) {
        const before = dbUsedBytes(dir);
        const blocksBefore = allocatedBytes(path.join(dir, "blocks"));
        let snapId = "";
        d.snapMs.push(
          timeMs(() => {
            const s = engine.createSnapshot({ diskId: d.diskId, name: `s${r}` });
            snapId = s.snapshotId;
            d.used = s.usedBytes;
          }),
        );
        d.cloneMs.push(timeMs(() => engine.createDisk({ zone: ZONE, sizeGb: d.sizeGb, snapshotId: snapId, name: `clone-${d.sizeGb}-${r}` })));
        const blockDelta = allocatedBytes(path.join(dir, "blocks")) - blocksBefore;
        d.added.push(dbUsedBytes(dir) - before + blockDelta);
        d.blockAdded.push(blockDelta);
      }
    }
    return disks.map((d) => {
      log(`snapshot ${d.sizeGb} GB disk: create ${median(d.snapMs).toFixed(2)} ms, disk from it ${median(d.cloneMs).toFixed(2)} ms, bytes added ${median(d.added)} (block files ${median(d.blockAdded)})`);
      return {
        sizeGb: d.sizeGb,
        snapshotMs: summarize(d.snapMs),
        cloneMs: summarize(d.cloneMs),
        bytesAdded: summarize(d.added),
        blockBytesAdded: summarize(d.blockAdded),
        engineUsedBytes: d.used,
      };
    });
  } finally {
    engine.close();
  }
}
