/** AES-256-GCM wrapping and HKDF derivation: the only cipher primitives the engine uses. */
import * as crypto from "crypto";
import { EngineError, ErrorCodes } from "../errors";

export const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** Wraps `plain` under `key` with AES-256-GCM; `aad` binds the encryption context. Layout: nonce | tag | ciphertext. */
export function wrap(key: Buffer, plain: Buffer, aad: string): Buffer {
  const nonce = crypto.randomBytes(NONCE_BYTES);
  const c = crypto.createCipheriv("aes-256-gcm", key, nonce);
  c.setAAD(Buffer.from(aad, "utf8"));
  const ct = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([nonce, c.getAuthTag(), ct]);
}

/** Unwraps a blob made by `wrap`; a wrong key, a changed context or a flipped bit all fail. */
export function unwrap(key: Buffer, blob: Buffer, aad: string, what: string): Buffer {
  if (blob.length < NONCE_BYTES + TAG_BYTES) throw new EngineError(ErrorCodes.KeyMaterialCorrupt, `${what} is truncated`);
  const d = crypto.createDecipheriv("aes-256-gcm", key, blob.subarray(0, NONCE_BYTES));
  d.setAAD(Buffer.from(aad, "utf8"));
  d.setAuthTag(blob.subarray(NONCE_BYTES, NONCE_BYTES + TAG_BYTES));
  // Into one buffer the caller owns (and zeroes); the cipher's own output buffers are zeroed
  // here, also when authentication fails (they then hold unauthenticated plaintext).
  const ct = blob.subarray(NONCE_BYTES + TAG_BYTES);
  const out = Buffer.alloc(ct.length);
  const part = d.update(ct);
  try {
    part.copy(out);
    const last = d.final();
    last.copy(out, part.length);
    zero(last);
    return out;
  } catch (e) {
    zero(out);
    throw new EngineError(ErrorCodes.KeyMaterialCorrupt, `${what} failed authentication: the KMS root key is not the one it was wrapped with, or the stored key was altered`, { cause: e });
  } finally {
    zero(part);
  }
}

/** HKDF-SHA256 into a fresh 32-byte Buffer (the caller zeroes it when done). */
export function hkdf(ikm: Buffer, salt: string, info: string): Buffer {
  return Buffer.from(crypto.hkdfSync("sha256", ikm, Buffer.from(salt, "utf8"), Buffer.from(info, "utf8"), KEY_BYTES));
}

/** Key check value: lets a wrong root key be detected without storing anything derived reversibly from it. */
export function keyCheckValue(key: Buffer): string {
  return crypto.createHmac("sha256", key).update("encdisk root key check v1").digest("hex");
}

export function zero(...bufs: (Buffer | undefined | null)[]): void {
  for (const b of bufs) b?.fill(0);
}
