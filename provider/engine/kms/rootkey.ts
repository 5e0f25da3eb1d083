/**
 * Where the KMS root secret comes from. The root secret protects (wraps) every region's CMK
 * material at rest; it never lives in the engine directory. Sources, first match wins:
 *   1. the `kmsRootKey` option (32 bytes)
 *   2. ENCDISK_KMS_ROOT_KEY: 64 hex characters
 *   3. the `kmsRootKeyFile` option, then ENCDISK_KMS_ROOT_KEY_FILE
 *   4. ~/.config/encdisk/kms-root.key
 * A key file holds 64 hex characters; it is created (0600, directory 0700) only when the
 * engine has no CMK yet, so a lost or wrong file is reported, never silently replaced.
 */
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { EngineError, ErrorCodes } from "../errors";
import { KEY_BYTES } from "./crypto";
import { hardening } from "./harden";

export interface RootKeySource {
  kmsRootKey?: Buffer;
  kmsRootKeyFile?: string;
  /** The engine directory (resolved): a root key file inside it is refused. */
  engineDir?: string;
}

/**
 * The root key taken from ENCDISK_KMS_ROOT_KEY. The variable is removed from the environment
 * (and its value overwritten in place where the native addon can) the first time it is read,
 * so the key is kept here, in one Buffer, for the life of the process.
 */
let envRootKey: Buffer | null = null;
/** The refusal of an ENCDISK_KMS_ROOT_KEY that was not 64 hex characters (repeated, not forgotten with the variable). */
let envInvalid: EngineError | null = null;

export function defaultRootKeyFile(): string {
  return path.join(os.homedir(), ".config", "encdisk", "kms-root.key");
}

export function rootKeyFileOf(src: RootKeySource): string {
  return src.kmsRootKeyFile ?? process.env.ENCDISK_KMS_ROOT_KEY_FILE ?? defaultRootKeyFile();
}

function nibble(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

const isSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;

/**
 * Parses 64 hex characters (surrounding white space allowed) into a fresh 32-byte Buffer,
 * byte by byte: no JavaScript string of the key is ever made. The caller zeroes `bytes`.
 */
export function parseHexKeyBytes(bytes: Buffer, where: string): Buffer {
  let a = 0;
  let b = bytes.length;
  while (a < b && isSpace(bytes[a])) a++;
  while (b > a && isSpace(bytes[b - 1])) b--;
  const key = Buffer.alloc(KEY_BYTES);
  let ok = b - a === 2 * KEY_BYTES;
  for (let i = 0; ok && i < KEY_BYTES; i++) {
    const hi = nibble(bytes[a + 2 * i]);
    const lo = nibble(bytes[a + 2 * i + 1]);
    if (hi < 0 || lo < 0) ok = false;
    else key[i] = (hi << 4) | lo;
  }
  if (!ok) {
    key.fill(0);
    throw new EngineError(ErrorCodes.KmsRootKeyMissing, `${where} must hold exactly 64 hex characters (a 256-bit key); generate one with: openssl rand -hex 32`);
  }
  return key;
}

/** Lowercase hex of `key` and a newline into a fresh Buffer (no string); the caller zeroes it. */
function hexLine(key: Buffer): Buffer {
  const out = Buffer.alloc(key.length * 2 + 1, 0x0a);
  for (let i = 0; i < key.length; i++) {
    out[2 * i] = "0123456789abcdef".charCodeAt(key[i] >> 4);
    out[2 * i + 1] = "0123456789abcdef".charCodeAt(key[i] & 15);
  }
  return out;
}

/** The nearest existing ancestor of `p`, resolved, with the rest appended: realpath of a path that may not exist yet. */
function realpathOfMaybeMissing(p: string): string {
  const abs = path.resolve(p);
  const rest: string[] = [];
  let cur = abs;
  for (;;) {
    try {
      return path.join(fs.realpathSync(cur), ...rest);
    } catch {
      const up = path.dirname(cur);
      if (up === cur) return abs;
      rest.unshift(path.basename(cur));
      cur = up;
    }
  }
}

/**
 * The root key never lives in the engine directory (a copy of the directory would then hold
 * everything): a key file inside it, symlinks resolved on both sides, is refused.
 */
export function refuseKeyFileInside(file: string, engineDir: string | undefined): void {
  if (!engineDir) return;
  const dir = realpathOfMaybeMissing(engineDir);
  const real = realpathOfMaybeMissing(file);
  const rel = path.relative(dir, real);
  if (rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel))) {
    throw new EngineError(
      ErrorCodes.KmsRootKeyInsideEngineDir,
      `the KMS root key file ${file} lies inside the engine directory ${dir}, where a copy of the directory would carry the key that opens it; move the file outside it (for example to ${defaultRootKeyFile()}) and point ENCDISK_KMS_ROOT_KEY_FILE (or the provider's kmsRootKeyFile) at it. Nothing was changed.`,
      { rule: "K4" },
    );
  }
}

/** Takes the root key out of ENCDISK_KMS_ROOT_KEY once: parsed, the variable wiped and removed. */
function takeEnvKey(): Buffer | null {
  // Set again (by the embedding program) since it was taken: the new value wins.
  let raw: Buffer | null = hardening()?.takeEnvHex("ENCDISK_KMS_ROOT_KEY") ?? null;
  if (raw === null) {
    // Without the addon (or where process.env is not the C environment, as under jest) the
    // variable's JavaScript string cannot be wiped (see the README's threat model).
    const env = process.env.ENCDISK_KMS_ROOT_KEY;
    if (env !== undefined) raw = Buffer.from(env, "latin1");
  }
  delete process.env.ENCDISK_KMS_ROOT_KEY;
  if (raw === null || raw.length === 0) {
    if (envInvalid) throw envInvalid; // a bad value stays an error: never fall through to the key file
    return envRootKey;
  }
  try {
    const key = parseHexKeyBytes(raw, "ENCDISK_KMS_ROOT_KEY");
    envRootKey?.fill(0);
    envRootKey = key;
    envInvalid = null;
  } catch (e) {
    envRootKey?.fill(0);
    envRootKey = null;
    envInvalid = e as EngineError;
    throw e;
  } finally {
    raw.fill(0);
  }
  return envRootKey;
}

/** Zeroes and forgets the root key taken from ENCDISK_KMS_ROOT_KEY (tests, and a process done with keys). */
export function forgetEnvRootKey(): void {
  envRootKey?.fill(0);
  envRootKey = null;
  envInvalid = null;
}

/**
 * Loads the root key. `mayCreate` is true only while the engine holds no wrapped CMK: then a
 * missing key file is created with a fresh random key.
 */
export function loadRootKey(src: RootKeySource, mayCreate: boolean): { key: Buffer; source: string } {
  if (src.kmsRootKey) {
    if (src.kmsRootKey.length !== KEY_BYTES) throw new EngineError(ErrorCodes.KmsRootKeyMissing, "the kmsRootKey option must be 32 bytes");
    return { key: Buffer.from(src.kmsRootKey), source: "option kmsRootKey" };
  }
  const env = takeEnvKey();
  if (env) return { key: Buffer.from(env), source: "ENCDISK_KMS_ROOT_KEY" };
  const file = rootKeyFileOf(src);
  refuseKeyFileInside(file, src.engineDir);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw new EngineError(ErrorCodes.KmsRootKeyMissing, `cannot read the KMS root key file ${file}: ${(e as Error).message}`);
    if (!mayCreate) {
      throw new EngineError(
        ErrorCodes.KmsRootKeyMissing,
        `the KMS root key file ${file} is missing, but this engine directory already holds CMKs wrapped by a root key; restore that file (or set ENCDISK_KMS_ROOT_KEY / ENCDISK_KMS_ROOT_KEY_FILE). Nothing was changed.`,
      );
    }
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const key = crypto.randomBytes(KEY_BYTES);
    // Written whole and durable under a temporary name, then linked into place: a crash never
    // leaves a torn key file, and link() refuses to replace one another process made first.
    const tmp = `${file}.${process.pid}.${crypto.randomBytes(4).toString("hex")}.tmp`;
    try {
      const fd = fs.openSync(tmp, "wx", 0o600);
      const hex = hexLine(key);
      try {
        fs.writeSync(fd, hex);
        fs.fsyncSync(fd);
      } finally {
        hex.fill(0);
        fs.closeSync(fd);
      }
      fs.linkSync(tmp, file);
    } catch (e2) {
      if ((e2 as NodeJS.ErrnoException).code !== "EEXIST") throw e2;
      key.fill(0);
      return loadRootKey(src, false); // another process created it first
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    return { key, source: file };
  }
  try {
    return { key: parseHexKeyBytes(bytes, `the KMS root key file ${file}`), source: file };
  } finally {
    bytes.fill(0);
  }
}
