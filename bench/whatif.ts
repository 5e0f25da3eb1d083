/**
 * What-if prototypes of engine changes, applied by patching BlockStore.prototype at run time
 * (`npm run bench -- --whatif=readpath,cache,prefetch`), so the proposals in docs/bench.md come
 * with numbers measured through the real engine API. Nothing here is used unless asked for;
 * results of a what-if run carry `"whatif": [...]` in results.json and must not be read as the
 * engine's own numbers.
 *
 * - readpath: the read path without avoidable work: the output buffer is allocUnsafe (holes are
 *   zeroed explicitly instead of zero-filling everything first), one scratch buffer per store is
 *   reused for runs (instead of a fresh 4 MiB allocation per run: mmap + page faults on every
 *   call), and plain whole-unit runs are read straight into the output (no copy).
 * - cache: a bounded ring of decrypted units (preallocated 64 MiB chunks, FIFO reuse) found by
 *   (lineage, slot) and checked against the row's nonce: a unit is
 *   never rewritten in place (copy-on-write gives every write a fresh slot and nonce), so a key
 *   names one immutable plaintext and needs no invalidation. Only the attachment read path
 *   fills it (migration's copyAll does not, so its memory stays flat). Plaintext data only,
 *   never keys (K4 is about keys); a real version would drop a lineage's entries in forget()
 *   and everything in close()/releaseKeys().
 * - prefetch: after a read, the next range's runs are read asynchronously on the libuv thread
 *   pool into a throwaway buffer, so the device works while this thread decrypts (the engine
 *   API stays synchronous; the async read only warms the page cache).
 * - parseal: (see parallelSeal below) seals the units of a write on the main thread and one
 *   worker thread at once, handing work over through SharedArrayBuffer + Atomics.wait so the
 *   write stays synchronous.
 */
import * as fs from "fs";
import { BlockStore, UNIT } from "../provider/engine/blockstore/blockstore";

/* eslint-disable @typescript-eslint/no-explicit-any */
type Any = any;

const MAX_RUN = 64;

export interface WhatIf {
  readpath?: boolean;
  cacheBytes?: number;
  prefetch?: boolean;
}

export interface WhatIfStats {
  cacheHits: number;
  cacheMisses: number;
  cacheBytes: number;
  prefetchedBytes: number;
}

export const stats: WhatIfStats = { cacheHits: 0, cacheMisses: 0, cacheBytes: 0, prefetchedBytes: 0 };

let applied = false;

export function applyWhatIf(w: WhatIf): void {
  if (applied) throw new Error("what-if patches are already applied");
  applied = true;
  const proto = BlockStore.prototype as Any;
  const cacheLimit = w.cacheBytes ?? 0;
  // Per lineage: slot -> { nonce, pool index }. A hit needs the row's nonce to match (12
  // bytes). Plaintext lives in a ring of preallocated 64 MiB chunks (copied in on a miss), so
  // the decipher's output buffers are freed and reused instead of retained one by one.
  const cache = new Map<string, Map<number, { nonce: Buffer; at: number }>>();
  const CHUNK_UNITS = 1024;
  const poolUnits = Math.floor(cacheLimit / UNIT);
  const chunks: Buffer[] = [];
  const owners: ({ lineage: string; slot: number } | undefined)[] = [];
  let ring = 0;
  const unitAt = (at: number): Buffer => {
    const c = Math.floor(at / CHUNK_UNITS);
    chunks[c] ??= Buffer.allocUnsafe(Math.min(CHUNK_UNITS, poolUnits - c * CHUNK_UNITS) * UNIT);
    const o = (at % CHUNK_UNITS) * UNIT;
    return chunks[c].subarray(o, o + UNIT);
  };
  const cacheGet = (lineageId: string, row: Any): Buffer | undefined => {
    const e = cache.get(lineageId)?.get(row.slot);
    return e && row.nonce && e.nonce.equals(row.nonce) ? unitAt(e.at) : undefined;
  };
  const cacheDrop = (lineageId: string, row: Any): void => {
    const m = cache.get(lineageId);
    const e = m?.get(row.slot);
    if (e) {
      m?.delete(row.slot);
      owners[e.at] = undefined;
    }
  };
  const scratch = new WeakMap<object, Buffer>();
  const scratchOf = (store: object, bytes: number): Buffer => {
    let b = scratch.get(store);
    if (!b || b.length < bytes) {
      b = Buffer.allocUnsafe(Math.max(bytes, MAX_RUN * UNIT));
      scratch.set(store, b);
    }
    return b;
  };
  const remember = (lineageId: string, row: Any, plain: Buffer): void => {
    if (poolUnits <= 0 || !row.nonce) return;
    let m = cache.get(lineageId);
    if (!m) cache.set(lineageId, (m = new Map()));
    let e = m.get(row.slot);
    if (!e) {
      const at = ring;
      ring = (ring + 1) % poolUnits;
      const prev = owners[at];
      if (prev) cache.get(prev.lineage)?.delete(prev.slot);
      else stats.cacheBytes += UNIT;
      owners[at] = { lineage: lineageId, slot: row.slot };
      e = { nonce: row.nonce, at };
      m.set(row.slot, e);
    }
    e.nonce = row.nonce;
    plain.copy(unitAt(e.at));
  };
  const inflight: Buffer[] = [];
  const prefetch = (store: Any, owner: Any, offset: number, length: number): void => {
    const first = Math.floor(offset / UNIT);
    const last = Math.floor((offset + length - 1) / UNIT);
    const rows = store.st.range.all(owner.ownerId, first, last) as Any[];
    const fd = store.fd(owner.lineageId);
    let i = 0;
    while (i < rows.length) {
      let j = i + 1;
      while (j < rows.length && j - i < MAX_RUN && rows[j].slot === rows[j - 1].slot + 1) j++;
      if (!(owner.key && cacheLimit > 0 && cacheGet(owner.lineageId, rows[i]))) {
        const buf = inflight.pop() ?? Buffer.allocUnsafe(MAX_RUN * UNIT);
        const n = (j - i) * UNIT;
        stats.prefetchedBytes += n;
        fs.read(fd, buf, 0, n, rows[i].slot * UNIT, () => inflight.push(buf));
      }
      i = j;
    }
  };

  if (!w.readpath && !cacheLimit && !w.prefetch) return;
  proto.read = function read(this: Any, owner: Any, offset: number, length: number): Buffer {
    const out = Buffer.allocUnsafe(length);
    if (length === 0) return out;
    const end = offset + length;
    const first = Math.floor(offset / UNIT);
    const last = Math.floor((end - 1) / UNIT);
    const rows = this.st.range.all(owner.ownerId, first, last) as Any[];
    let covered = offset;
    const place = (row: Any, plain: Buffer): void => {
      const unitStart = row.idx * UNIT;
      const s = Math.max(offset, unitStart);
      const e = Math.min(end, unitStart + UNIT);
      if (s > covered) out.fill(0, covered - offset, s - offset);
      plain.copy(out, s - offset, s - unitStart, e - unitStart);
      covered = e;
    };
    const useCache = !!owner.key && cacheLimit > 0;
    let i = 0;
    while (i < rows.length) {
      if (useCache) {
        const hit = cacheGet(owner.lineageId, rows[i]);
        if (hit) {
          stats.cacheHits++;
          place(rows[i], hit);
          i++;
          continue;
        }
      }
      let j = i + 1;
      while (j < rows.length && j - i < MAX_RUN && rows[j].slot === rows[j - 1].slot + 1 && !(useCache && cacheGet(owner.lineageId, rows[j]))) j++;
      const n = j - i;
      const fd = this.fd(owner.lineageId);
      const runStart = rows[i].idx * UNIT;
      if (!owner.key && w.readpath && rows[j - 1].idx - rows[i].idx === n - 1 && runStart >= offset && runStart + n * UNIT <= end) {
        if (runStart > covered) out.fill(0, covered - offset, runStart - offset);
        const got = fs.readSync(fd, out, runStart - offset, n * UNIT, rows[i].slot * UNIT);
        if (got < n * UNIT) out.fill(0, runStart - offset + got, runStart - offset + n * UNIT);
        covered = runStart + n * UNIT;
      } else {
        const buf = w.readpath ? scratchOf(this, n * UNIT) : Buffer.allocUnsafe(n * UNIT);
        const got = fs.readSync(fd, buf, 0, n * UNIT, rows[i].slot * UNIT);
        if (got < n * UNIT) buf.fill(0, got, n * UNIT);
        for (let k = 0; k < n; k++) {
          const row = rows[i + k];
          const stored = buf.subarray(k * UNIT, (k + 1) * UNIT);
          const plain = owner.key ? (this.open(owner, row, stored) as Buffer) : stored;
          if (useCache) {
            stats.cacheMisses++;
            remember(owner.lineageId, row, plain);
          }
          place(row, plain);
        }
      }
      i = j;
    }
    if (covered < end) out.fill(0, covered - offset);
    // Same guard as the engine's own read: the map must not have moved under us.
    if (rows.length && typeof this.sameMap === "function" && !this.sameMap(rows, this.st.range.all(owner.ownerId, first, last))) {
      for (const r of rows) if (useCache) cacheDrop(owner.lineageId, r);
      return read.call(this, owner, offset, length);
    }
    if (w.prefetch && length >= UNIT) prefetch(this, owner, end, length);
    return out;
  };
}

/**
 * parseal: whole-unit encrypted writes of 8 units or more are split in two; the upper half is
 * copied into shared memory and sealed by a worker thread while this thread seals the lower
 * half, then this thread waits (Atomics.wait) for the worker. The write stays synchronous.
 */
export function applyParallelSeal(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Worker } = require("worker_threads") as typeof import("worker_threads");
  const path = require("path") as typeof import("path"); // eslint-disable-line @typescript-eslint/no-require-imports
  const MAX_UNITS = 512; // the worker's half of a 64 MiB write
  const ctrlSab = new SharedArrayBuffer(8);
  const metaSab = new SharedArrayBuffer(512 + MAX_UNITS * 29);
  const inSab = new SharedArrayBuffer(MAX_UNITS * UNIT);
  const outSab = new SharedArrayBuffer(MAX_UNITS * UNIT);
  const ctrl = new Int32Array(ctrlSab);
  const meta = Buffer.from(metaSab);
  const input = Buffer.from(inSab);
  const output = Buffer.from(outSab);
  const worker = new Worker(path.join(__dirname, "seal-worker.js"), { workerData: { ctrlSab, metaSab, inSab, outSab } });
  worker.unref();
  let seq = 0;
  const proto = BlockStore.prototype as Any;
  const orig = proto.prepareWrite as (owner: Any, offset: number, data: Buffer) => Any;
  proto.prepareWrite = function prepareWrite(this: Any, owner: Any, offset: number, data: Buffer): Any {
    const n = data.length / UNIT;
    if (!owner.key || offset % UNIT !== 0 || data.length % UNIT !== 0 || n < 8) return orig.call(this, owner, offset, data);
    const first = offset / UNIT;
    const mine = Math.ceil(n / 2);
    const theirs = n - mine;
    // hand the upper half to the worker
    owner.key.copy(meta, 0);
    meta.writeUInt32LE(theirs, 32);
    meta.writeDoubleLE(first + mine, 36);
    const lin = Buffer.from(owner.lineageId, "utf8");
    meta.writeUInt16LE(lin.length, 44);
    lin.copy(meta, 46);
    data.copy(input, 0, mine * UNIT, n * UNIT);
    seq++;
    Atomics.store(ctrl, 0, seq);
    Atomics.notify(ctrl, 0);
    const out: Any[] = [];
    const nonces = (require("crypto") as typeof import("crypto")).randomBytes(12 * mine); // eslint-disable-line @typescript-eslint/no-require-imports
    for (let k = 0; k < mine; k++) out.push(this.seal(owner, first + k, data.subarray(k * UNIT, (k + 1) * UNIT), nonces.subarray(12 * k, 12 * k + 12)));
    while (Atomics.load(ctrl, 1) !== seq) Atomics.wait(ctrl, 1, Atomics.load(ctrl, 1), 1000);
    meta.fill(0, 0, 32);
    for (let k = 0; k < theirs; k++) {
      const m = 512 + k * 29;
      if (meta[m + 28] === 1) out.push({ idx: first + mine + k, data: null, nonce: null, tag: null });
      else out.push({ idx: first + mine + k, data: output.subarray(k * UNIT, (k + 1) * UNIT), nonce: Buffer.from(meta.subarray(m, m + 12)), tag: Buffer.from(meta.subarray(m + 12, m + 28)) });
    }
    // The engine's PreparedWrite (since caa2d94): sealed whole units, partial ends merged later.
    return { sealed: out, partial: [] };
  };
}

/**
 * paropen: runs of 8 or more encrypted units (attachment reads and migration's copyAll both
 * go through forEachRun) are decrypted in two halves at once: the upper half's ciphertext is
 * copied into shared memory and opened by a worker thread while this thread opens the lower
 * half; this thread then waits (Atomics.wait). A unit the worker cannot authenticate is
 * re-opened here so the engine's own error (or stale-read retry) is raised.
 */
export function applyParallelOpen(): void {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { Worker } = require("worker_threads") as typeof import("worker_threads");
  const path = require("path") as typeof import("path"); // eslint-disable-line @typescript-eslint/no-require-imports
  const HALF = 32; // MAX_RUN / 2
  const PER = 37;
  const ctrlSab = new SharedArrayBuffer(8);
  const metaSab = new SharedArrayBuffer(512 + HALF * PER);
  const inSab = new SharedArrayBuffer(HALF * UNIT);
  const outSab = new SharedArrayBuffer(HALF * UNIT);
  const ctrl = new Int32Array(ctrlSab);
  const meta = Buffer.from(metaSab);
  const input = Buffer.from(inSab);
  const output = Buffer.from(outSab);
  const worker = new Worker(path.join(__dirname, "open-worker.js"), { workerData: { ctrlSab, metaSab, inSab, outSab } });
  worker.unref();
  let seq = 0;
  const proto = BlockStore.prototype as Any;
  const orig = proto.forEachRun as (owner: Any, rows: Any[], fn: (row: Any, plain: Buffer) => void) => void;
  proto.forEachRun = function forEachRun(this: Any, owner: Any, rows: Any[], fn: (row: Any, plain: Buffer) => void): void {
    if (!owner.key) return orig.call(this, owner, rows, fn);
    let i = 0;
    while (i < rows.length) {
      let j = i + 1;
      while (j < rows.length && j - i < MAX_RUN && rows[j].slot === rows[j - 1].slot + 1) j++;
      const n = j - i;
      if (n < 8) {
        orig.call(this, owner, rows.slice(i, j), fn);
        i = j;
        continue;
      }
      const buf = Buffer.allocUnsafe(n * UNIT);
      const got = fs.readSync(this.fd(owner.lineageId), buf, 0, n * UNIT, rows[i].slot * UNIT);
      if (got < n * UNIT) buf.fill(0, got);
      const mine = Math.ceil(n / 2);
      const theirs = n - mine;
      owner.key.copy(meta, 0);
      meta.writeUInt32LE(theirs, 32);
      const lin = Buffer.from(owner.lineageId, "utf8");
      meta.writeUInt16LE(lin.length, 36);
      lin.copy(meta, 38);
      for (let k = 0; k < theirs; k++) {
        const row = rows[i + mine + k];
        const m = 512 + k * PER;
        if (!row.nonce || !row.tag) throw new Error(`unit ${row.idx} has no nonce or tag`);
        row.nonce.copy(meta, m);
        row.tag.copy(meta, m + 12);
        meta.writeDoubleLE(row.idx, m + 28);
      }
      buf.copy(input, 0, mine * UNIT, n * UNIT);
      seq++;
      Atomics.store(ctrl, 0, seq);
      Atomics.notify(ctrl, 0);
      for (let k = 0; k < mine; k++) fn(rows[i + k], this.open(owner, rows[i + k], buf.subarray(k * UNIT, (k + 1) * UNIT)) as Buffer);
      while (Atomics.load(ctrl, 1) !== seq) Atomics.wait(ctrl, 1, Atomics.load(ctrl, 1), 1000);
      meta.fill(0, 0, 32);
      for (let k = 0; k < theirs; k++) {
        const row = rows[i + mine + k];
        const ok = meta[512 + k * PER + 36] === 1;
        fn(row, ok ? output.subarray(k * UNIT, (k + 1) * UNIT) : (this.open(owner, row, buf.subarray((mine + k) * UNIT, (mine + k + 1) * UNIT)) as Buffer));
      }
      i = j;
    }
  };
}
