/**
 * Snapshot cost vs disk size: an encrypted sparse disk of 1 GiB and one of 1 TiB, the same
 * 64 MiB written to each through an attachment (and flushed), then `reps` times: a snapshot
 * (timed), then a disk from that snapshot (timed). Bytes added = growth of the engine
 * directory's allocated blocks (block files + SQLite state and WAL) across snapshot + clone,
 * measured with st_blocks; the block files' share is reported on its own.
 */
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
  /** Allocated bytes the snapshot and the disk made from it added to the engine directory. */
  bytesAdded: Summary;
  /** ... of which block files (ciphertext). */
  blockBytesAdded: Summary;
  /** What the engine reports as the snapshot's usedBytes. */
  engineUsedBytes: number;
}

export function benchSnapshot(base: string, opts: SnapshotOptions): SnapshotSizeResult[] {
  const { engine, dir } = freshEngine(base, "snapshot");
  const out: SnapshotSizeResult[] = [];
  try {
    const ins = engine.createInstance({ zone: ZONE, instanceType: INSTANCE_TYPE });
    const data = patternBuffer(Math.min(opts.writtenBytes, 64 * MiB), 3);
    for (const sizeGb of opts.sizesGb) {
      const disk = engine.createDisk({ zone: ZONE, sizeGb, encrypt: true, name: `snap-src-${sizeGb}` });
      const att = engine.attachDisk({ diskId: disk.diskId, instanceId: ins.instanceId });
      for (let off = 0; off < opts.writtenBytes; off += data.length) engine.write(att.attachmentId, off, data.subarray(0, Math.min(data.length, opts.writtenBytes - off)));
      engine.flush(att.attachmentId);
      const snapMs: number[] = [];
      const cloneMs: number[] = [];
      const added: number[] = [];
      const blockAdded: number[] = [];
      let used = 0;
      for (let r = 0; r < opts.reps; r++) {
        const before = allocatedBytes(dir);
        const blocksBefore = allocatedBytes(path.join(dir, "blocks"));
        let snapId = "";
        snapMs.push(
          timeMs(() => {
            const s = engine.createSnapshot({ diskId: disk.diskId, name: `s${r}` });
            snapId = s.snapshotId;
            used = s.usedBytes;
          }),
        );
        cloneMs.push(timeMs(() => engine.createDisk({ zone: ZONE, sizeGb, snapshotId: snapId, name: `clone-${sizeGb}-${r}` })));
        added.push(allocatedBytes(dir) - before);
        blockAdded.push(allocatedBytes(path.join(dir, "blocks")) - blocksBefore);
      }
      const res: SnapshotSizeResult = {
        sizeGb,
        snapshotMs: summarize(snapMs),
        cloneMs: summarize(cloneMs),
        bytesAdded: summarize(added),
        blockBytesAdded: summarize(blockAdded),
        engineUsedBytes: used,
      };
      out.push(res);
      log(`snapshot ${sizeGb} GB disk: create ${median(snapMs).toFixed(1)} ms, disk from it ${median(cloneMs).toFixed(1)} ms, bytes added ${median(added)} (blocks ${median(blockAdded)})`);
    }
  } finally {
    engine.close();
  }
  return out;
}
