/**
 * Worker thread of the `parseal` what-if (bench/whatif.ts): seals whole 64 KiB units with
 * AES-256-GCM exactly as BlockStore.seal does (zero units become holes, fresh random nonce,
 * AAD "<lineage>:<idx>"), taking jobs through shared memory so the caller can stay synchronous.
 */
import * as crypto from "crypto";
import { workerData } from "worker_threads";

const UNIT = 64 * 1024;
const { ctrlSab, metaSab, inSab, outSab } = workerData as { ctrlSab: SharedArrayBuffer; metaSab: SharedArrayBuffer; inSab: SharedArrayBuffer; outSab: SharedArrayBuffer };
const ctrl = new Int32Array(ctrlSab);
const meta = Buffer.from(metaSab);
const input = Buffer.from(inSab);
const output = Buffer.from(outSab);
const zero = Buffer.alloc(UNIT);
// meta: [0..32) key, [32..36) n, [36..44) first idx (f64), [44..46) lineage length, [46..302) lineage,
// then per unit: 12 nonce + 16 tag + 1 zero flag, from META_UNITS.
const META_UNITS = 512; // byte offset of the per-unit area in meta
let seen = 0;
for (;;) {
  Atomics.wait(ctrl, 0, seen);
  seen = Atomics.load(ctrl, 0);
  if (seen < 0) break;
  const key = Buffer.from(meta.subarray(0, 32));
  const n = meta.readUInt32LE(32);
  const first = meta.readDoubleLE(36);
  const lineage = meta.toString("utf8", 46, 46 + meta.readUInt16LE(44));
  const nonces = crypto.randomBytes(12 * n);
  for (let k = 0; k < n; k++) {
    const plain = input.subarray(k * UNIT, (k + 1) * UNIT);
    const m = META_UNITS + k * 29;
    if (plain.equals(zero)) {
      meta[m + 28] = 1;
      continue;
    }
    meta[m + 28] = 0;
    const nonce = nonces.subarray(12 * k, 12 * k + 12);
    const c = crypto.createCipheriv("aes-256-gcm", key, nonce);
    c.setAAD(Buffer.from(`${lineage}:${first + k}`, "utf8"));
    c.update(plain).copy(output, k * UNIT);
    c.final();
    nonce.copy(meta, m);
    c.getAuthTag().copy(meta, m + 12);
  }
  key.fill(0);
  Atomics.store(ctrl, 1, seen);
  Atomics.notify(ctrl, 1);
}
