/**
 * The KMS of every region: one service-managed CMK per region for disk encryption (K2, K5),
 * one 256-bit data key (DK) per region wrapped by that CMK (K3, K4), and the root secret that
 * protects CMK material at rest. Key metadata (`kms_keys` columns) is kept apart from key
 * material (the wrapped blobs), and plaintext material lives only in this object's memory.
 *
 * Wrapping: root --AES-256-GCM(aad "encdisk/cmk/v1|region|keyId")--> CMK
 *           CMK  --AES-256-GCM(aad "encdisk/dk/v1|region|keyId|cbs-disk-encryption")--> DK
 *           DK   --HKDF-SHA256(salt lineageId, info "encdisk/unit-key/v1")--> lineage working key
 *           root --AES-256-GCM(aad "encdisk/nbd-psk-secret/v1|engineId")--> NBD PSK secret
 */
import * as crypto from "crypto";
import { EngineError, ErrorCodes } from "../errors";
import { nowIso } from "../ids";
import type { Db } from "../store/db";
import type { KmsKey } from "../types";
import { hkdf, KEY_BYTES, keyCheckValue, unwrap, wrap, zero } from "./crypto";
import { hardenProcess, scrubStack } from "./harden";
import { loadRootKey, type RootKeySource } from "./rootkey";

interface KeyRow {
  key_id: string;
  region: string;
  alias: string;
  description: string;
  wrapped_material: Buffer;
  created_at: string;
}

const cmkAad = (region: string, keyId: string) => `encdisk/cmk/v1|${region}|${keyId}`;
const dkAad = (region: string, keyId: string) => `encdisk/dk/v1|${region}|${keyId}|cbs-disk-encryption`;
const pskSecretAad = (engineId: string) => `encdisk/nbd-psk-secret/v1|${engineId}`;

export function keyMeta(r: Omit<KeyRow, "wrapped_material">): KmsKey {
  return {
    keyId: r.key_id,
    region: r.region,
    alias: r.alias,
    description: r.description,
    keyUsage: "ENCRYPT_DECRYPT",
    keyState: "Enabled",
    owner: "CBS",
    origin: "TENCENT_KMS",
    createdAt: r.created_at,
  };
}

export class Kms {
  private readonly lineageKeys = new Map<string, Buffer>();

  constructor(
    private readonly db: Db,
    private readonly src: RootKeySource,
  ) {}

  /**
   * Loads the root key for one use; the caller zeroes it. Nothing keeps it: the root key is
   * in memory only during a KMS operation.
   */
  private rootKey(mayCreate?: boolean): Buffer {
    // Before any key material is in memory: no core file, no ptrace by other processes (D5).
    hardenProcess();
    const hasKeys = this.holdsWrappedKeys();
    const { key, source } = loadRootKey(this.src, mayCreate ?? !hasKeys);
    const kcv = keyCheckValue(key);
    // Written once; read afterwards without a write statement, so unwrapping a key (a server's
    // first read of a disk) never waits for another process's write lock (D3).
    const get = () => (this.db.prepare("SELECT v FROM meta WHERE k = 'kms_root_kcv'").get() as { v: string } | undefined)?.v;
    let stored = get();
    if (stored === undefined) {
      this.db.prepare("INSERT OR IGNORE INTO meta (k, v) VALUES ('kms_root_kcv', ?)").run(kcv);
      stored = get() as string;
    }
    if (stored !== kcv) {
      zero(key);
      throw new EngineError(
        ErrorCodes.KmsRootKeyMismatch,
        `the KMS root key from ${source} is not the one that protects this engine directory's CMKs; point ENCDISK_KMS_ROOT_KEY_FILE (or the provider's kmsRootKeyFile) at the original key file. Nothing was changed.`,
      );
    }
    return key;
  }

  /**
   * D7/D10: the key that seals the state the ciphertext does not cover (lineage flags, block
   * maps), derived from the root key (which is zeroed at once); the caller keeps and zeroes
   * it. Never creates a root key: with `required` false, a directory that has no root key
   * yet (plain-only use, no key file) gets null and stays unsealed.
   */
  integrityKey(required: boolean): Buffer | null {
    let root: Buffer;
    try {
      root = this.rootKey(false);
    } catch (e) {
      if (!required && (e as { code?: string }).code === ErrorCodes.KmsRootKeyMissing) return null;
      throw e;
    }
    try {
      return hkdf(root, "encdisk", "encdisk/state-integrity/v1");
    } finally {
      zero(root);
    }
  }

  /** Whether anything in the state is wrapped by the root key (then a missing key file is never re-created). */
  private holdsWrappedKeys(): boolean {
    return !!this.db.prepare("SELECT 1 FROM kms_keys UNION ALL SELECT 1 FROM meta WHERE k = 'nbd_psk_secret_wrapped' LIMIT 1").get();
  }

  /** The region's CMK metadata, or null before the first encrypted use there. */
  regionKey(region: string): KmsKey | null {
    const r = this.db.prepare("SELECT key_id, region, alias, description, created_at FROM kms_keys WHERE region = ?").get(region) as KeyRow | undefined;
    return r ? keyMeta(r) : null;
  }

  /**
   * K2: makes sure the region has its CMK and DK (inside the caller's transaction). Returns
   * the key and whether this call created them (first encrypted use in the region).
   */
  ensureRegionKey(region: string): { key: KmsKey; created: boolean } {
    const existing = this.regionKey(region);
    if (existing) return { key: existing, created: false };
    const root = this.rootKey();
    const keyId = crypto.randomUUID();
    const cmk = crypto.randomBytes(KEY_BYTES);
    const dk = crypto.randomBytes(KEY_BYTES);
    try {
      const now = nowIso();
      this.db
        .prepare("INSERT INTO kms_keys (key_id, region, alias, description, wrapped_material, created_at) VALUES (?, ?, ?, ?, ?, ?)")
        .run(keyId, region, `cbs-disk-encryption/${region}`, `Created by CBS for disk encryption in ${region}. Managed by the service: it cannot be chosen, deleted, disabled or changed.`, wrap(root, cmk, cmkAad(region, keyId)), now);
      this.db.prepare("INSERT INTO data_keys (region, key_id, wrapped_dk, created_at) VALUES (?, ?, ?, ?)").run(region, keyId, wrap(cmk, dk, dkAad(region, keyId)), now);
    } finally {
      zero(root, cmk, dk);
      scrubStack();
    }
    return { key: this.regionKey(region) as KmsKey, created: true };
  }

  /** Unwraps the region's DK (root -> CMK -> DK) into a fresh buffer; the caller zeroes it. */
  private regionDk(region: string): Buffer {
    const row = this.db.prepare("SELECT d.key_id, d.wrapped_dk, k.wrapped_material FROM data_keys d JOIN kms_keys k ON k.key_id = d.key_id WHERE d.region = ?").get(region) as
      | { key_id: string; wrapped_dk: Buffer; wrapped_material: Buffer }
      | undefined;
    if (!row) throw new EngineError(ErrorCodes.KeyNotFound, `region ${region} has no disk-encryption key although an encrypted disk needs it; run: encdisk check`);
    const root = this.rootKey();
    let cmk: Buffer | undefined;
    try {
      cmk = unwrap(root, row.wrapped_material, cmkAad(region, row.key_id), `the CMK of ${region}`);
      return unwrap(cmk, row.wrapped_dk, dkAad(region, row.key_id), `the data key of ${region}`);
    } finally {
      zero(root, cmk);
      scrubStack();
    }
  }

  /** Proves the region's key chain unwraps (the work of a KMS Decrypt/Encrypt call); keeps nothing. */
  checkRegionKey(region: string): void {
    zero(this.regionDk(region));
  }

  /**
   * K3/K4: the working key of a lineage, derived from the region DK (which is zeroed at once).
   * Held in memory while the lineage's disk is served, until `releaseLineage`/`release`.
   */
  lineageKey(region: string, lineageId: string): Buffer {
    let k = this.lineageKeys.get(lineageId);
    if (!k) {
      const dk = this.regionDk(region);
      try {
        k = hkdf(dk, lineageId, "encdisk/unit-key/v1");
      } finally {
        zero(dk);
        scrubStack();
      }
      this.lineageKeys.set(lineageId, k);
    }
    return k;
  }

  /**
   * The per-engine NBD PSK secret (attachment PSKs are HMACs of their ids under it), stored
   * only wrapped by the root key (meta nbd_psk_secret_wrapped, AAD bound to the engine id) so a
   * copy of state.db alone computes no PSK (D6). Made on first use; a plaintext secret of an
   * older release (meta nbd_psk_secret) is wrapped and removed, keeping every attachment's PSK.
   * Inside the caller's transaction; the caller zeroes the result. `migrated` says a legacy
   * plaintext secret was removed (the caller then purges its old copies from the WAL).
   */
  nbdPskSecret(engineId: string): { secret: Buffer; migrated: boolean } {
    const get = (k: string) => (this.db.prepare("SELECT v FROM meta WHERE k = ?").get(k) as { v: string } | undefined)?.v;
    const aad = pskSecretAad(engineId);
    const root = this.rootKey();
    try {
      const wrapped = get("nbd_psk_secret_wrapped");
      const legacy = get("nbd_psk_secret");
      if (wrapped) {
        if (legacy !== undefined) this.db.prepare("DELETE FROM meta WHERE k = 'nbd_psk_secret'").run();
        return { secret: unwrap(root, Buffer.from(wrapped, "hex"), aad, "the NBD PSK secret"), migrated: legacy !== undefined };
      }
      const secret = legacy !== undefined ? Buffer.from(legacy, "hex") : crypto.randomBytes(KEY_BYTES);
      try {
        this.db.prepare("INSERT INTO meta (k, v) VALUES ('nbd_psk_secret_wrapped', ?)").run(wrap(root, secret, aad).toString("hex"));
        this.db.prepare("DELETE FROM meta WHERE k = 'nbd_psk_secret'").run();
      } catch (e) {
        zero(secret);
        throw e;
      }
      return { secret, migrated: legacy !== undefined };
    } finally {
      zero(root);
      scrubStack();
    }
  }

  /** Whether this process currently holds the working key of a lineage. */
  holds(lineageId: string): boolean {
    return this.lineageKeys.has(lineageId);
  }

  releaseLineage(lineageId: string): void {
    const k = this.lineageKeys.get(lineageId);
    if (k) {
      zero(k);
      this.lineageKeys.delete(lineageId);
    }
  }

  /** Zeroes every plaintext key this process holds. */
  release(): void {
    for (const k of this.lineageKeys.values()) zero(k);
    this.lineageKeys.clear();
  }

  /**
   * Every plaintext secret that must never reach storage: root key, CMKs, DKs and lineage
   * keys. For `verifyNoKeyMaterial` only; the caller zeroes the returned buffers.
   */
  allSecrets(lineages: { lineage_id: string; region: string; encrypted: number }[]): { label: string; bytes: Buffer }[] {
    const out: { label: string; bytes: Buffer }[] = [];
    if (!this.holdsWrappedKeys()) return out;
    const root = this.rootKey();
    out.push({ label: "KMS root key", bytes: root });
    out.push({ label: "state integrity key", bytes: this.integrityKey(true) as Buffer });
    const engineId = (this.db.prepare("SELECT v FROM meta WHERE k = 'engine_id'").get() as { v: string } | undefined)?.v;
    const psk = (this.db.prepare("SELECT v FROM meta WHERE k = 'nbd_psk_secret_wrapped'").get() as { v: string } | undefined)?.v;
    if (psk && engineId) out.push({ label: "NBD PSK secret", bytes: unwrap(root, Buffer.from(psk, "hex"), pskSecretAad(engineId), "the NBD PSK secret") });
    for (const r of this.db.prepare("SELECT key_id, region, wrapped_material FROM kms_keys").all() as KeyRow[]) {
      out.push({ label: `CMK ${r.key_id} (${r.region})`, bytes: unwrap(root, r.wrapped_material, cmkAad(r.region, r.key_id), `the CMK of ${r.region}`) });
      out.push({ label: `DK of ${r.region}`, bytes: this.regionDk(r.region) });
    }
    for (const l of lineages) {
      if (!l.encrypted) continue;
      const dk = this.regionDk(l.region);
      out.push({ label: `working key of ${l.lineage_id}`, bytes: hkdf(dk, l.lineage_id, "encdisk/unit-key/v1") });
      zero(dk);
    }
    return out;
  }
}
