/**
 * provider/engine/blockstore/gcm.ts, the block store's cipher: the two native addons
 * (native/gcm.c over ring or over OpenSSL) and the node:crypto fallback must all be plain
 * AES-256-GCM with the AAD `${lineage}:${idx}`, byte for byte what node:crypto produces unit by
 * unit, so a disk written by one reads with the others and with any AES-GCM implementation.
 */
import * as crypto from "crypto";
import * as path from "path";
import { Worker } from "worker_threads";

type Gcm = typeof import("../../provider/engine/blockstore/gcm");
const U = 64 * 1024;

/** gcm.ts loaded afresh under the given environment (the backend is chosen at load). */
function load(env: Record<string, string | undefined>): Gcm {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k];
  try {
    let mod: Gcm | undefined;
    jest.isolateModules(() => {
      mod = require("../../provider/engine/blockstore/gcm") as Gcm;
    });
    return mod as Gcm;
  } finally {
    process.env = saved;
  }
}

const backends: [string, Gcm][] = [
  ["ring, 2 threads", load({ ENCDISK_NATIVE: "ring", ENCDISK_CIPHER_THREADS: "2" })],
  ["ring, 1 thread", load({ ENCDISK_NATIVE: "ring", ENCDISK_CIPHER_THREADS: "1" })],
  ["openssl, 2 threads", load({ ENCDISK_NATIVE: "openssl", ENCDISK_CIPHER_THREADS: "2" })],
  ["openssl, 1 thread", load({ ENCDISK_NATIVE: "openssl", ENCDISK_CIPHER_THREADS: "1" })],
  ["node:crypto", load({ ENCDISK_NATIVE: "0" })],
];

/** The reference: one node:crypto cipher per unit, as the block store did before gcm.ts. */
function reference(key: Buffer, prefix: string, idxs: number[], src: Buffer, nonces: Buffer): { ct: Buffer; tags: Buffer } {
  const ct = Buffer.alloc(src.length);
  const tags = Buffer.alloc(16 * idxs.length);
  idxs.forEach((idx, k) => {
    const c = crypto.createCipheriv("aes-256-gcm", key, nonces.subarray(12 * k, 12 * k + 12));
    c.setAAD(Buffer.from(`${prefix}${idx}`, "utf8"));
    c.update(src.subarray(k * U, (k + 1) * U)).copy(ct, k * U);
    c.final();
    c.getAuthTag().copy(tags, 16 * k);
  });
  return { ct, tags };
}

function fixture(n: number) {
  const key = crypto.randomBytes(32);
  const prefix = "lin-0123456789abcdef:";
  const idxs = Array.from({ length: n }, (_, k) => (k % 3 === 0 ? 2 ** 40 + k : 7 * k)); // not consecutive, some beyond 2^32
  const src = crypto.randomBytes(n * U);
  const nonces = crypto.randomBytes(12 * n);
  return { key, prefix, idxs, src, nonces, ...reference(key, prefix, idxs, src, nonces) };
}

/** Tests of the addons themselves; ENCDISK_NATIVE=0 runs (the fallback's CI pass) skip them. */
const withAddon = process.env.ENCDISK_NATIVE === "0" ? test.skip : test;

withAddon("both native addons are built in this checkout and ring is the default (npm run build builds them; ENCDISK_NATIVE picks one)", () => {
  expect(load({ ENCDISK_NATIVE: undefined }).cipherBackend.name).toBe("ring");
  expect(backends.map(([, b]) => [b.cipherBackend.name, b.cipherBackend.threads])).toEqual([
    ["ring", 2],
    ["ring", 1],
    ["openssl", 2],
    ["openssl", 1],
    ["node", 1],
  ]);
});

describe.each(backends)("%s", (_name, gcm) => {
  test("K1: seals each unit exactly as AES-256-GCM with its nonce and AAD, and opens it back", () => {
    const f = fixture(37);
    const ct = Buffer.alloc(f.src.length);
    const tags = Buffer.alloc(16 * 37);
    gcm.sealUnits(f.key, f.prefix, f.idxs, f.src, ct, f.nonces, tags);
    expect(ct.equals(f.ct)).toBe(true);
    expect(tags.equals(f.tags)).toBe(true);
    const plain = Buffer.alloc(f.src.length);
    expect(gcm.openUnits(f.key, f.prefix, f.idxs, ct, plain, f.nonces, tags)).toBe(-1);
    expect(plain.equals(f.src)).toBe(true);
  });

  test("K1: works in place (dst is src) both ways", () => {
    const f = fixture(8);
    const buf = Buffer.from(f.src);
    const tags = Buffer.alloc(16 * 8);
    gcm.sealUnits(f.key, f.prefix, f.idxs, buf, buf, f.nonces, tags);
    expect(buf.equals(f.ct)).toBe(true);
    expect(gcm.openUnits(f.key, f.prefix, f.idxs, buf, buf, f.nonces, tags)).toBe(-1);
    expect(buf.equals(f.src)).toBe(true);
  });

  test("DataIntegrity: a flipped bit, a wrong tag, a unit moved to another index or lineage, or another key fails at that unit", () => {
    const f = fixture(16);
    const out = Buffer.alloc(f.src.length);
    const flipped = Buffer.from(f.ct);
    flipped[11 * U + 100] ^= 1;
    expect(gcm.openUnits(f.key, f.prefix, f.idxs, flipped, out, f.nonces, f.tags)).toBe(11);
    const badTags = Buffer.from(f.tags);
    badTags[16 * 3] ^= 0x80;
    expect(gcm.openUnits(f.key, f.prefix, f.idxs, f.ct, out, f.nonces, badTags)).toBe(3);
    const moved = [...f.idxs];
    moved[9] += 1;
    expect(gcm.openUnits(f.key, f.prefix, moved, f.ct, out, f.nonces, f.tags)).toBe(9);
    expect(gcm.openUnits(f.key, "lin-other:", f.idxs, f.ct, out, f.nonces, f.tags)).toBe(0);
    expect(gcm.openUnits(crypto.randomBytes(32), f.prefix, f.idxs, f.ct, out, f.nonces, f.tags)).toBe(0);
  });

  test("one unit and no units", () => {
    const f = fixture(1);
    const ct = Buffer.alloc(U);
    const tags = Buffer.alloc(16);
    gcm.sealUnits(f.key, f.prefix, f.idxs, f.src, ct, f.nonces, tags);
    expect(ct.equals(f.ct) && tags.equals(f.tags)).toBe(true);
    expect(gcm.openUnits(f.key, f.prefix, [], Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0), Buffer.alloc(0))).toBe(-1);
  });

  test("buffers of the wrong size are refused before any work", () => {
    const f = fixture(4);
    const tags = Buffer.alloc(16 * 4);
    expect(() => gcm.sealUnits(f.key, f.prefix, f.idxs, f.src, Buffer.alloc(3 * U), f.nonces, tags)).toThrow(RangeError);
    expect(() => gcm.sealUnits(f.key, f.prefix, f.idxs, f.src, Buffer.alloc(4 * U), f.nonces.subarray(12), tags)).toThrow(RangeError);
    expect(() => gcm.openUnits(f.key, f.prefix, f.idxs, f.src.subarray(1), Buffer.alloc(4 * U - 1), f.nonces, tags)).toThrow(RangeError);
  });
});

withAddon.each(["ring", "openssl"])("the %s addon is safe from several threads at once (one helper thread, shared by turns)", async (impl) => {
  const addon = path.resolve(__dirname, `../../native/build/gcm-${impl}.node`);
  // Each worker seals and opens with the addon and checks every unit against node:crypto.
  const code = `
    const { parentPort, workerData } = require("worker_threads");
    const crypto = require("crypto");
    const { gcm } = require(workerData.addon);
    const U = 65536, n = 16;
    let checked = 0;
    for (let r = 0; r < workerData.rounds; r++) {
      const key = crypto.randomBytes(32), src = crypto.randomBytes(n * U), nonces = crypto.randomBytes(12 * n);
      const idxs = Float64Array.from({ length: n }, (_, k) => r * n + k), prefix = Buffer.from("w" + workerData.id + ":");
      const ct = Buffer.alloc(n * U), tags = Buffer.alloc(16 * n), back = Buffer.alloc(n * U);
      if (gcm(true, key, src, ct, U, nonces, tags, prefix, idxs, 2) !== -1) throw new Error("seal failed");
      for (let k = 0; k < n; k++) {
        const c = crypto.createCipheriv("aes-256-gcm", key, nonces.subarray(12 * k, 12 * k + 12));
        c.setAAD(Buffer.from("w" + workerData.id + ":" + (r * n + k)));
        const want = c.update(src.subarray(k * U, (k + 1) * U)); c.final();
        if (!want.equals(ct.subarray(k * U, (k + 1) * U)) || !c.getAuthTag().equals(tags.subarray(16 * k, 16 * k + 16))) throw new Error("unit " + k + " differs");
      }
      if (gcm(false, key, ct, back, U, nonces, tags, prefix, idxs, 2) !== -1 || !back.equals(src)) throw new Error("open failed");
      checked += n;
    }
    parentPort.postMessage(checked);
  `;
  const runs = [0, 1, 2].map(
    (id) =>
      new Promise<number>((resolve, reject) => {
        const w = new Worker(code, { eval: true, workerData: { addon, id, rounds: 40 } });
        w.once("message", resolve);
        w.once("error", reject);
      }),
  );
  await expect(Promise.all(runs)).resolves.toEqual([640, 640, 640]);
});
