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

export interface RootKeySource {
  kmsRootKey?: Buffer;
  kmsRootKeyFile?: string;
}

export function defaultRootKeyFile(): string {
  return path.join(os.homedir(), ".config", "encdisk", "kms-root.key");
}

export function rootKeyFileOf(src: RootKeySource): string {
  return src.kmsRootKeyFile ?? process.env.ENCDISK_KMS_ROOT_KEY_FILE ?? defaultRootKeyFile();
}

function parseHexKey(text: string, where: string): Buffer {
  const hex = text.trim();
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw new EngineError(ErrorCodes.KmsRootKeyMissing, `${where} must hold exactly 64 hex characters (a 256-bit key); generate one with: openssl rand -hex 32`);
  }
  return Buffer.from(hex, "hex");
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
  const env = process.env.ENCDISK_KMS_ROOT_KEY;
  if (env) return { key: parseHexKey(env, "ENCDISK_KMS_ROOT_KEY"), source: "ENCDISK_KMS_ROOT_KEY" };
  const file = rootKeyFileOf(src);
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
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
      try {
        fs.writeSync(fd, key.toString("hex") + "\n");
        fs.fsyncSync(fd);
      } finally {
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
  return { key: parseHexKey(text, `the KMS root key file ${file}`), source: file };
}
