import * as crypto from "crypto";

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";

/** A resource id in the cloud's style: prefix, dash, 8 lowercase alphanumerics (e.g. disk-7k2m9q4x). */
export function newId(prefix: string): string {
  const bytes = crypto.randomBytes(8);
  let s = "";
  for (const b of bytes) s += ALPHABET[b % ALPHABET.length];
  return `${prefix}-${s}`;
}

export function nowIso(): string {
  return new Date().toISOString();
}
