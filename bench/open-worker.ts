/**
 * Worker thread of the `paropen` what-if (bench/whatif.ts): decrypts and authenticates whole
 * 64 KiB units with AES-256-GCM as BlockStore.open does, taking jobs through shared memory so
 * the caller stays synchronous. A unit that fails authentication is flagged, not thrown: the
 * caller re-opens it itself to raise the engine's own error.
 */
import * as crypto from "crypto";
import { workerData } from "worker_threads";

const UNIT = 64 * 1024;
const { ctrlSab, metaSab, inSab, outSab } = workerData as { ctrlSab: SharedArrayBuffer; metaSab: SharedArrayBuffer; inSab: SharedArrayBuffer; outSab: SharedArrayBuffer };
const ctrl = new Int32Array(ctrlSab);
const meta = Buffer.from(metaSab);
const input = Buffer.from(inSab);
const output = Buffer.from(outSab);
// meta: [0..32) key, [32..36) n, [36..38) lineage length, [38..294) lineage; per unit from
// byte 512: 12 nonce + 16 tag + 8 idx (f64) + 1 ok flag = 37 bytes.
const PER = 37;
let seen = 0;
for (;;) {
  Atomics.wait(ctrl, 0, seen);
  seen = Atomics.load(ctrl, 0);
  if (seen < 0) break;
  const key = Buffer.from(meta.subarray(0, 32));
  const n = meta.readUInt32LE(32);
  const lineage = meta.toString("utf8", 38, 38 + meta.readUInt16LE(36));
  for (let k = 0; k < n; k++) {
    const m = 512 + k * PER;
    const d = crypto.createDecipheriv("aes-256-gcm", key, meta.subarray(m, m + 12));
    d.setAAD(Buffer.from(`${lineage}:${meta.readDoubleLE(m + 28)}`, "utf8"));
    d.setAuthTag(meta.subarray(m + 12, m + 28));
    try {
      d.update(input.subarray(k * UNIT, (k + 1) * UNIT)).copy(output, k * UNIT);
      d.final();
      meta[m + 36] = 1;
    } catch {
      meta[m + 36] = 0;
    }
  }
  key.fill(0);
  Atomics.store(ctrl, 1, seen);
  Atomics.notify(ctrl, 1);
}
