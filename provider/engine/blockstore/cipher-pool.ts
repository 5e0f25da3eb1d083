/**
 * Worker threads that seal and open 64 KiB units for the asynchronous I/O path, so that AES-GCM
 * runs on more than one core: Node's AES-256-GCM does about 2.2 GiB per CPU-second, slower than
 * the page cache or the disk on these machines, so one thread of cipher work caps encrypted
 * I/O well below plain I/O.
 *
 * Messages carry a piece of up to a few MiB: its buffer is transferred (not copied) each way;
 * the key travels as a KeyObject (cloned into the worker's memory for the call and freed with
 * it). A worker is referenced (keeps the process alive) only while it has work.
 */
import * as crypto from "crypto";
import * as os from "os";
import { Worker } from "worker_threads";

/** The worker's source, run with `eval` so it works the same from `dist/` and under ts-jest. */
const WORKER_SOURCE = `
const { parentPort } = require("worker_threads");
const crypto = require("crypto");
const UNIT = ${64 * 1024};
// Each unit is transformed in place in the transferred buffer, which goes back as the result.
parentPort.on("message", (m) => {
  try {
    const buf = Buffer.from(m.buf);
    if (m.op === "seal") {
      const tags = Buffer.alloc(16 * m.idx.length);
      for (let k = 0; k < m.idx.length; k++) {
        const c = crypto.createCipheriv("aes-256-gcm", m.key, m.nonces.subarray(12 * k, 12 * k + 12));
        c.setAAD(Buffer.from(m.lineage + ":" + m.idx[k], "utf8"));
        c.update(buf.subarray(k * UNIT, (k + 1) * UNIT)).copy(buf, k * UNIT);
        c.final();
        c.getAuthTag().copy(tags, 16 * k);
      }
      parentPort.postMessage({ id: m.id, tags, buf: m.buf }, [m.buf]);
    } else {
      for (let k = 0; k < m.idx.length; k++) {
        const d = crypto.createDecipheriv("aes-256-gcm", m.key, m.nonces.subarray(12 * k, 12 * k + 12));
        d.setAAD(Buffer.from(m.lineage + ":" + m.idx[k], "utf8"));
        d.setAuthTag(m.tags.subarray(16 * k, 16 * k + 16));
        const p = d.update(buf.subarray(k * UNIT, (k + 1) * UNIT));
        try {
          d.final();
        } catch {
          p.fill(0);
          buf.fill(0, 0, k * UNIT);
          parentPort.postMessage({ id: m.id, failed: k, buf: m.buf }, [m.buf]);
          return;
        }
        p.copy(buf, k * UNIT);
        p.fill(0);
      }
      parentPort.postMessage({ id: m.id, buf: m.buf }, [m.buf]);
    }
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: String(e && e.stack || e) });
  }
});
`;

export interface SealResult {
  /** The transferred buffer, now holding the units' ciphertext in place of their plaintext. */
  buf: ArrayBuffer;
  /** 16-byte tags, one per unit, back to back. */
  tags: Buffer;
}

/** `buf` holds the plaintext in place of the ciphertext, or (failed) nothing readable. */
export type OpenResult = { buf: ArrayBuffer } | { failed: number; buf: ArrayBuffer };

interface Pending {
  resolve: (m: Record<string, unknown>) => void;
  reject: (e: Error) => void;
}

/** Worker threads to use by default: every core but the one the calling thread runs on, at most 3. */
export function defaultCipherThreads(): number {
  const env = process.env.ENCDISK_CIPHER_THREADS;
  if (env !== undefined && env !== "" && Number.isInteger(Number(env)) && Number(env) >= 0) return Math.min(Number(env), 16);
  const cores = typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
  return Math.max(0, Math.min(3, cores - 1));
}

export class CipherPool {
  private readonly workers: { w: Worker; pending: Map<number, Pending> }[] = [];
  private seq = 0;
  private closed = false;
  /** Pieces handed to workers so far (for tests and benchmarks). */
  readonly handed = { seal: 0, open: 0 };

  constructor(readonly size: number) {}

  private worker(): { w: Worker; pending: Map<number, Pending> } | null {
    if (this.closed || this.size === 0) return null;
    // The least busy worker; start another while below the pool size and all are busy.
    let best = this.workers[0];
    for (const x of this.workers) if (x.pending.size < best.pending.size) best = x;
    if (best && (best.pending.size === 0 || this.workers.length >= this.size)) return best;
    const w = new Worker(WORKER_SOURCE, { eval: true });
    const entry = { w, pending: new Map<number, Pending>() };
    w.unref();
    w.on("message", (m: Record<string, unknown>) => {
      const p = entry.pending.get(m.id as number);
      if (!p) return;
      entry.pending.delete(m.id as number);
      if (entry.pending.size === 0) w.unref();
      if (typeof m.error === "string") p.reject(new Error(`cipher worker: ${m.error}`));
      else p.resolve(m);
    });
    const fail = (e: Error): void => {
      for (const p of entry.pending.values()) p.reject(e);
      entry.pending.clear();
      const i = this.workers.indexOf(entry);
      if (i >= 0) this.workers.splice(i, 1);
    };
    w.on("error", fail);
    w.on("exit", () => fail(new Error("cipher worker exited")));
    this.workers.push(entry);
    return entry;
  }

  /** Pieces queued on the workers (so a caller can do the next piece itself instead). */
  get queued(): number {
    let n = 0;
    for (const x of this.workers) n += x.pending.size;
    return n;
  }

  /** True when a worker could start on another piece now (fewer than two queued per worker). */
  get canTake(): boolean {
    return !this.closed && this.size > 0 && this.queued < 2 * this.size;
  }

  private send(msg: Record<string, unknown>, transfer: ArrayBuffer[]): Promise<Record<string, unknown>> {
    const entry = this.worker();
    if (!entry) return Promise.reject(new Error("the cipher pool is closed"));
    const id = ++this.seq;
    return new Promise((resolve, reject) => {
      entry.pending.set(id, { resolve, reject });
      entry.w.ref();
      entry.w.postMessage({ ...msg, id }, transfer);
    });
  }

  /**
   * Seals `idx.length` whole units held back to back in `buf`, in place. `buf` is transferred:
   * the caller must not touch it until it comes back in the result.
   */
  async seal(key: crypto.KeyObject, lineage: string, idx: number[], nonces: Buffer, buf: ArrayBuffer): Promise<SealResult> {
    this.handed.seal++;
    const m = await this.send({ op: "seal", key, lineage, idx, nonces, buf }, [buf]);
    const tags = m.tags as Uint8Array;
    return { buf: m.buf as ArrayBuffer, tags: Buffer.from(tags.buffer, tags.byteOffset, tags.byteLength) };
  }

  /** Opens units held back to back in `buf` (transferred), in place; `failed` names the first unit that failed authentication. */
  async open(key: crypto.KeyObject, lineage: string, idx: number[], nonces: Buffer, tags: Buffer, buf: ArrayBuffer): Promise<OpenResult> {
    this.handed.open++;
    const m = await this.send({ op: "open", key, lineage, idx, nonces, tags, buf }, [buf]);
    return typeof m.failed === "number" ? { failed: m.failed, buf: m.buf as ArrayBuffer } : { buf: m.buf as ArrayBuffer };
  }

  close(): void {
    this.closed = true;
    for (const x of this.workers.splice(0)) void x.w.terminate();
  }
}
