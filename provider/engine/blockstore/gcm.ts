/**
 * AES-256-GCM over runs of data units, into buffers the caller owns: the block store's only
 * cipher. Unit k of a run is sealed under nonces[12k, 12k+12) with the AAD
 * `${aadPrefix}${idxs[k]}`, and its 16-byte tag goes to (or is checked from) tags[16k, 16k+16).
 *
 * Three backends with the same output, byte for byte (test/engine/gcm.test.ts checks it),
 * the first that is built being used:
 * - ring: native/gcm.c over ring's AES-GCM (native/ring, Rust, BoringSSL's VAES/AVX2 code):
 *   ~6.5 GiB/s per core on this machine's CPU.
 * - openssl: native/gcm.c over the OpenSSL that Node itself links (the EVP code node:crypto
 *   uses): ~4 GiB/s per core here.
 * - node: node:crypto, ~2.4 GiB/s per core here: Cipher.update allocates and copies per call.
 * Both addons (scripts/build-native.js, run at install and build) work into the caller's
 * buffers and split a run over two threads. ENCDISK_NATIVE=ring|openssl picks one addon,
 * ENCDISK_NATIVE=0 node:crypto.
 */
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

type NativeGcm = (
  encrypt: boolean,
  key: Buffer,
  src: Buffer,
  dst: Buffer,
  unitSize: number,
  nonces: Buffer,
  tags: Buffer,
  aadPrefix: Buffer,
  idxs: Float64Array,
  threads: number,
) => number;

type Impl = "ring" | "openssl";

/** The addon, looked for in <package root>/native/build (from source and from dist/). */
function loadNative(): { fn: NativeGcm | null; impl?: Impl; why: string } {
  const env = process.env.ENCDISK_NATIVE;
  if (env === "0") return { fn: null, why: "ENCDISK_NATIVE=0" };
  const want = env === "ring" || env === "openssl" ? env : undefined; // anything else: the best built
  const why: string[] = [];
  for (const impl of ["ring", "openssl"] as const) {
    if (want && want !== impl) continue;
    for (const up of ["../../..", "../../../.."]) {
      const file = path.resolve(__dirname, up, "native", "build", `gcm-${impl}.node`);
      if (!fs.existsSync(file)) continue;
      try {
        return { fn: (require(file) as { gcm: NativeGcm }).gcm, impl, why: "" };
      } catch (e) {
        why.push(`${file} did not load: ${(e as Error).message}`);
      }
    }
  }
  return { fn: null, why: why.join("; ") || `native/build/gcm-${want || "*"}.node is not built (npm run build builds it; it needs a C compiler, and cargo for ring)` };
}

const native = loadNative();
/** Threads a run is split over: 2 on a machine with 2+ CPUs, or ENCDISK_CIPHER_THREADS. */
const THREADS = Math.max(1, Math.min(2, Number(process.env.ENCDISK_CIPHER_THREADS) || os.availableParallelism()));

/** Which implementation this process uses, for benchmarks and diagnostics. */
export const cipherBackend: { name: Impl | "node"; threads: number; detail: string } = native.fn
  ? { name: native.impl as Impl, threads: THREADS, detail: `${native.impl === "ring" ? "ring (native/ring)" : "OpenSSL EVP"} through native/gcm.c, ${THREADS} thread(s)` }
  : { name: "node", threads: 1, detail: `node:crypto (${native.why})` };

function nodeGcm(encrypt: boolean, key: Buffer, src: Buffer, dst: Buffer, unit: number, nonces: Buffer, tags: Buffer, aadPrefix: Buffer, idxs: Float64Array): number {
  const k = crypto.createSecretKey(key); // one key import per run, not per unit
  for (let i = 0; i < idxs.length; i++) {
    const nonce = nonces.subarray(12 * i, 12 * i + 12);
    const aad = Buffer.concat([aadPrefix, Buffer.from(String(idxs[i]))]);
    const from = src.subarray(i * unit, (i + 1) * unit);
    if (encrypt) {
      const c = crypto.createCipheriv("aes-256-gcm", k, nonce);
      c.setAAD(aad);
      c.update(from).copy(dst, i * unit);
      c.final();
      c.getAuthTag().copy(tags, 16 * i);
    } else {
      const d = crypto.createDecipheriv("aes-256-gcm", k, nonce);
      d.setAAD(aad);
      d.setAuthTag(tags.subarray(16 * i, 16 * i + 16));
      const plain = d.update(from);
      try {
        d.final();
      } catch {
        return i;
      }
      plain.copy(dst, i * unit);
    }
  }
  return -1;
}

function run(encrypt: boolean, key: Buffer, aadPrefix: string, idxs: ArrayLike<number>, src: Buffer, dst: Buffer, nonces: Buffer, tags: Buffer): number {
  const n = idxs.length;
  const unit = n ? src.length / n : 0;
  if (!Number.isInteger(unit) || dst.length !== src.length || nonces.length !== 12 * n || tags.length !== 16 * n) {
    throw new RangeError(`gcm: ${n} units need src and dst of n equal units, 12n nonce and 16n tag bytes`);
  }
  if (n === 0) return -1;
  const ix = idxs instanceof Float64Array ? idxs : Float64Array.from(idxs);
  const prefix = Buffer.from(aadPrefix, "utf8");
  return native.fn ? native.fn(encrypt, key, src, dst, unit, nonces, tags, prefix, ix, THREADS) : nodeGcm(encrypt, key, src, dst, unit, nonces, tags, prefix, ix);
}

/** Encrypts the units of `src` into `dst` (which may be `src`), writing their tags. */
export function sealUnits(key: Buffer, aadPrefix: string, idxs: ArrayLike<number>, src: Buffer, dst: Buffer, nonces: Buffer, tags: Buffer): void {
  const failed = run(true, key, aadPrefix, idxs, src, dst, nonces, tags);
  if (failed >= 0) throw new Error(`gcm: OpenSSL could not encrypt unit ${idxs[failed]}`);
}

/**
 * Decrypts and authenticates the units of `src` into `dst` (which may be `src`). Returns -1,
 * or the position in `idxs` of the first unit that failed authentication: `dst` then holds
 * nothing trustworthy for that unit or any after it.
 */
export function openUnits(key: Buffer, aadPrefix: string, idxs: ArrayLike<number>, src: Buffer, dst: Buffer, nonces: Buffer, tags: Buffer): number {
  return run(false, key, aadPrefix, idxs, src, dst, nonces, tags);
}

/**
 * The operator's warning when no native addon is built and the engine falls back to
 * node:crypto (about 2.4 GiB/s instead of 4-6.5): undefined when an addon is in use or
 * ENCDISK_NATIVE=0 chose node:crypto on purpose.
 */
export function nativeCipherWarning(): string | undefined {
  if (cipherBackend.name !== "node" || process.env.ENCDISK_NATIVE === "0") return undefined;
  return `warning: the native AES-GCM addon is not built, so the engine encrypts with node:crypto (slower: ~2.4 GiB/s per core instead of ~4-6.5); build it with \`npm rebuild pulumi-encdisk\` in a project that installed the package, or \`npm run build:native\` in its repository (needs a C compiler; cargo adds the faster ring backend). Detail: ${native.why}`;
}
