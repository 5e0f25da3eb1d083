/**
 * Seals of the state that unit ciphertext does not cover (D7, D10), under a key derived from
 * the KMS root key (`Kms.integrityKey`), so plain lineages are covered too.
 *
 * - Lineage seal (`lineages.mac`): HMAC over a lineage's id, region and encryption, and for an
 *   encrypted lineage its region's key id. Clearing (or setting) the encryption flag in the
 *   state, or pointing a lineage at another region or key, breaks it: I/O is refused with
 *   `DataCorruption.LineageSeal`.
 * - Block map MAC (`disks.map_mac`, `snapshots.map_mac`, 16 bytes): base(owner) XOR the term
 *   of every unit row, term = AES-256 CBC-MAC (fixed length, three blocks) under a per-lineage
 *   key over (idx, slot, nonce, tag). Order-independent and incremental: a write updates it in
 *   O(units written), in the same transaction; a snapshot's MAC follows from its disk's in
 *   O(1) (the terms do not name the owner, base does). A unit rolled back to an older row,
 *   moved, or deleted (reading as zeros) breaks it: `DataCorruption.BlockMap`.
 * - The directory marker (`meta.integrity_sealed`): written once every lineage and map is
 *   sealed; from then on an unsealed lineage or map is tampering, not a legacy row.
 *
 * A directory without any root key (plain-only use, no key file) stays unsealed: there is no
 * key to seal with, and nothing is created behind the user's back. Verified seals are cached
 * per process; a changed row is verified again.
 */
import * as crypto from "crypto";
import { EngineError, ErrorCodes } from "../errors";
import type { Db, Statement } from "../store/db";
import { zero } from "./crypto";
import type { Kms } from "./kms";

export const MAP_MAC_BYTES = 16;

export interface MapRow {
  idx: number;
  slot: number;
  nonce: Buffer | null;
  tag: Buffer | null;
}

interface LineageRow {
  lineage_id: string;
  region: string;
  encrypted: number;
  mac: Buffer | null;
}

export class Integrity {
  private k: Buffer | null = null;
  private readonly mapKeys = new Map<string, Buffer>();
  /** lineage id -> "encrypted|region" of a seal verified by this process */
  private readonly lineagesOk = new Map<string, string>();
  /** owner id -> the map MAC this process verified or wrote */
  private readonly mapsOk = new Map<string, Buffer>();
  private readonly st: Record<string, Statement>;

  constructor(
    private readonly db: Db,
    private readonly kms: Kms,
  ) {
    this.st = {
      lineage: db.prepare("SELECT lineage_id, region, encrypted, mac FROM lineages WHERE lineage_id = ?"),
      setLineage: db.prepare("UPDATE lineages SET mac = ? WHERE lineage_id = ?"),
      keyId: db.prepare("SELECT key_id FROM data_keys WHERE region = ?"),
      hasKeys: db.prepare("SELECT 1 FROM kms_keys LIMIT 1"),
      marker: db.prepare("SELECT v FROM meta WHERE k = 'integrity_sealed'"),
      setMarker: db.prepare("INSERT INTO meta (k, v) VALUES ('integrity_sealed', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v"),
      engineId: db.prepare("SELECT v FROM meta WHERE k = 'engine_id'"),
      rows: db.prepare("SELECT idx, slot, nonce, tag FROM units WHERE owner_id = ?"),
      diskMac: db.prepare("SELECT map_mac AS m FROM disks WHERE disk_id = ?"),
      snapMac: db.prepare("SELECT map_mac AS m FROM snapshots WHERE snapshot_id = ?"),
      setDiskMac: db.prepare("UPDATE disks SET map_mac = ? WHERE disk_id = ?"),
      setSnapMac: db.prepare("UPDATE snapshots SET map_mac = ? WHERE snapshot_id = ?"),
      cipherUnits: db.prepare("SELECT 1 FROM units WHERE lineage_id = ? AND (nonce IS NOT NULL OR tag IS NOT NULL) LIMIT 1"),
      bareUnits: db.prepare("SELECT 1 FROM units WHERE lineage_id = ? AND (nonce IS NULL OR tag IS NULL) LIMIT 1"),
    };
  }

  /** Zeroes every key held (after `releaseKeys`, on close); seals verified stay cached. */
  release(): void {
    zero(this.k);
    this.k = null;
    for (const k of this.mapKeys.values()) zero(k);
    this.mapKeys.clear();
  }

  /** Whether every lineage and map of the directory must be sealed (a root key is known). */
  private mustBeSealed(): boolean {
    return !!this.st.hasKeys.get() || !!this.st.marker.get();
  }

  /** The integrity key; null only while the directory has no root key (plain-only use). */
  key(required = false): Buffer | null {
    if (!this.k) this.k = this.kms.integrityKey(required || this.mustBeSealed());
    return this.k;
  }

  private hmac(k: Buffer, text: string): Buffer {
    return crypto.createHmac("sha256", k).update(text, "utf8").digest();
  }

  // ---- lineages (D7) ------------------------------------------------------------------------

  private lineageMac(k: Buffer, l: { lineage_id: string; region: string; encrypted: number }): Buffer {
    const keyId = l.encrypted ? ((this.st.keyId.get(l.region) as { key_id: string } | undefined)?.key_id ?? "none") : "";
    return this.hmac(k, `encdisk/lineage/v1|${l.lineage_id}|${l.region}|${l.encrypted ? `encrypted|${keyId}` : "plain"}`);
  }

  /** Seals a lineage just created (inside its transaction). */
  sealLineage(lineageId: string): void {
    const l = this.st.lineage.get(lineageId) as LineageRow;
    const k = this.key(!!l.encrypted);
    if (k) this.st.setLineage.run(this.lineageMac(k, l), lineageId);
  }

  /**
   * Why a lineage's seal does not hold, or null when it does (sealing an unsealed one when a
   * key is there and the directory is not yet marked sealed). Inside a write transaction.
   */
  lineageProblem(lineageId: string): string | null {
    const l = this.st.lineage.get(lineageId) as LineageRow | undefined;
    if (!l) return `lineage ${lineageId} is missing from the state`;
    const kind = l.encrypted ? "encrypted" : "plain";
    if (l.mac) {
      const k = this.key(true) as Buffer;
      if (!crypto.timingSafeEqual(l.mac.length === 32 ? l.mac : Buffer.alloc(32), this.lineageMac(k, l)) || l.mac.length !== 32) {
        return `the seal of lineage ${lineageId} does not match its state (${kind}, region ${l.region}${l.encrypted ? ", its region's key id" : ""}): its encryption flag, key or region was changed behind the engine`;
      }
      return null;
    }
    if (this.markerValid()) return `lineage ${lineageId} (${kind}) has no seal although every lineage of this directory was sealed: its seal was removed behind the engine`;
    // Unsealed (made before seals existed, or without a root key): its units must agree with its flag.
    if (!l.encrypted && this.st.cipherUnits.get(lineageId)) return `plain lineage ${lineageId} has units with nonces and tags: it was encrypted and its encryption flag was cleared behind the engine`;
    if (l.encrypted && this.st.bareUnits.get(lineageId)) return `encrypted lineage ${lineageId} has units without nonce or tag`;
    const k = this.key(!!l.encrypted);
    if (k) this.st.setLineage.run(this.lineageMac(k, l), lineageId);
    return null;
  }

  /**
   * D7: refuses I/O on a lineage whose seal does not hold, or whose owner row (`disks`,
   * `snapshots`: encrypted, region) disagrees with it. Inside a write transaction.
   */
  openLineage(lineageId: string, owner: { ownerId: string; encrypted: number; region: string }): void {
    const l = this.st.lineage.get(lineageId) as LineageRow | undefined;
    const problem = !l
      ? `lineage ${lineageId} is missing from the state`
      : l.encrypted !== owner.encrypted || l.region !== owner.region
        ? `${owner.ownerId} says ${owner.encrypted ? "encrypted" : "plain"} in ${owner.region} but its lineage ${lineageId} says ${l.encrypted ? "encrypted" : "plain"} in ${l.region}: the state was changed behind the engine`
        : this.lineageProblem(lineageId);
    if (problem) {
      this.lineagesOk.delete(lineageId);
      throw new EngineError(ErrorCodes.LineageTampered, `${problem}. No data was read or written; restore state.db from a backup, and run: encdisk check`);
    }
    this.lineagesOk.set(lineageId, `${owner.encrypted}|${owner.region}`);
  }

  /** Whether this process verified the lineage's seal for exactly this flag and region. */
  lineageVerified(lineageId: string, encrypted: number, region: string): boolean {
    return this.lineagesOk.get(lineageId) === `${encrypted}|${region}`;
  }

  private markerValue(k: Buffer): string {
    const id = (this.st.engineId.get() as { v: string } | undefined)?.v ?? "";
    return this.hmac(k, `encdisk/sealed/v1|${id}`).toString("hex");
  }

  /** Whether the directory is marked sealed (a marker that does not verify is tampering). */
  markerValid(): boolean {
    const m = this.st.marker.get() as { v: string } | undefined;
    if (!m) return false;
    const k = this.key(true) as Buffer;
    if (m.v !== this.markerValue(k)) throw new EngineError(ErrorCodes.LineageTampered, "the integrity marker of this engine directory does not verify under its KMS root key: state.db was changed behind the engine or comes from another directory; run: encdisk check");
    return true;
  }

  /**
   * Seals every unsealed lineage and block map, then marks the directory sealed (once, at the
   * first open with a root key after an upgrade). Returns the problems that kept it from
   * sealing; inside a write transaction.
   */
  sealAll(lineages: string[], owners: { ownerId: string; lineageId: string }[]): string[] {
    if (!this.key(false) || this.markerValid()) return [];
    const problems: string[] = [];
    for (const l of lineages) {
      const p = this.lineageProblem(l);
      if (p) problems.push(p);
    }
    for (const o of owners) {
      const p = this.mapProblem(o.ownerId, o.lineageId);
      if (p) problems.push(p);
    }
    if (problems.length === 0) this.st.setMarker.run(this.markerValue(this.key(true) as Buffer));
    return problems;
  }

  // ---- block maps (D10) ------------------------------------------------------------------------

  private mapKey(k: Buffer, lineageId: string): Buffer {
    let mk = this.mapKeys.get(lineageId);
    if (!mk) {
      mk = this.hmac(k, `encdisk/map-key/v1|${lineageId}`);
      this.mapKeys.set(lineageId, mk);
    }
    return mk;
  }

  /** base(owner): the MAC of an empty map. */
  private base(k: Buffer, ownerId: string): Buffer {
    return this.hmac(k, `encdisk/map-owner/v1|${ownerId}`).subarray(0, MAP_MAC_BYTES);
  }

  /**
   * XORs the terms of `rows` into `acc`: per row a CBC-MAC of three fixed blocks
   * [idx, slot, kind | nonce, tag[0..4) | tag[4..16), 0], computed for all rows at once with
   * one AES-256-ECB pass per block (a fixed-length CBC-MAC is a PRF).
   */
  private xorTerms(mk: Buffer, rows: MapRow[], acc: Buffer): void {
    const n = rows.length;
    if (n === 0) return;
    const b1 = Buffer.alloc(16 * n);
    const b2 = Buffer.alloc(16 * n);
    const b3 = Buffer.alloc(16 * n);
    for (let i = 0; i < n; i++) {
      const r = rows[i];
      const o = 16 * i;
      b1.writeUIntBE(r.idx, o, 6);
      b1.writeUIntBE(r.slot, o + 6, 6);
      b1.writeUInt32BE(r.nonce ? 1 : 0, o + 12);
      if (r.nonce) r.nonce.copy(b2, o, 0, 12);
      if (r.tag) {
        r.tag.copy(b2, o + 12, 0, 4);
        r.tag.copy(b3, o, 4, 16);
      }
    }
    const c = crypto.createCipheriv("aes-256-ecb", mk, null);
    c.setAutoPadding(false);
    const x1 = c.update(b1);
    for (let i = 0; i < x1.length; i++) x1[i] ^= b2[i];
    const x2 = c.update(x1);
    for (let i = 0; i < x2.length; i++) x2[i] ^= b3[i];
    const x3 = c.update(x2);
    for (let i = 0; i < n; i++) for (let j = 0; j < MAP_MAC_BYTES; j++) acc[j] ^= x3[16 * i + j];
  }

  private getMac(ownerId: string): Buffer | null {
    const r = (ownerId.startsWith("snap-") ? this.st.snapMac : this.st.diskMac).get(ownerId) as { m: Buffer | null } | undefined;
    return r?.m ?? null;
  }

  private setMac(ownerId: string, mac: Buffer | null): void {
    (ownerId.startsWith("snap-") ? this.st.setSnapMac : this.st.setDiskMac).run(mac, ownerId);
    if (mac) this.mapsOk.set(ownerId, Buffer.from(mac));
    else this.mapsOk.delete(ownerId);
  }

  /** The map MAC of `rows` for an owner. */
  private compute(k: Buffer, ownerId: string, lineageId: string, rows: MapRow[]): Buffer {
    const acc = Buffer.from(this.base(k, ownerId));
    this.xorTerms(this.mapKey(k, lineageId), rows, acc);
    return acc;
  }

  /** A write replaced `removed` rows by `added` ones (inside its transaction): O(rows). */
  onCommit(ownerId: string, lineageId: string, removed: MapRow[], added: MapRow[]): void {
    const mac = this.getMac(ownerId);
    if (!mac) return; // unsealed: sealed whole at the next open with a key
    const k = this.key(true) as Buffer;
    const mk = this.mapKey(k, lineageId);
    const known = this.mapsOk.get(ownerId);
    const fresh = Buffer.from(mac);
    this.xorTerms(mk, removed, fresh);
    this.xorTerms(mk, added, fresh);
    (ownerId.startsWith("snap-") ? this.st.setSnapMac : this.st.setDiskMac).run(fresh, ownerId);
    // Only a MAC this process knew to be good stays known good after its own change.
    if (known && known.equals(mac)) this.mapsOk.set(ownerId, fresh);
    else this.mapsOk.delete(ownerId);
  }

  /** An owner row inserted over a map written before it existed (a staged copy): its MAC over all its rows, O(units). */
  sealMap(ownerId: string, lineageId: string): void {
    const k = this.key(false);
    this.setMac(ownerId, k ? this.compute(k, ownerId, lineageId, this.st.rows.all(ownerId) as MapRow[]) : null);
  }

  /** A new, empty owner (a disk made empty, or a map just dropped). */
  onEmpty(ownerId: string): void {
    const k = this.key(false);
    this.setMac(ownerId, k ? this.base(k, ownerId) : null);
  }

  /** `toOwner` now shares every unit of `fromOwner` (its map was empty): O(1). */
  onShare(fromOwnerId: string, toOwnerId: string): void {
    const from = this.getMac(fromOwnerId);
    const k = from ? this.key(true) : null;
    if (!from || !k) return this.setMac(toOwnerId, null);
    const mac = Buffer.from(from);
    const a = this.base(k, fromOwnerId);
    const b = this.base(k, toOwnerId);
    for (let j = 0; j < MAP_MAC_BYTES; j++) mac[j] ^= a[j] ^ b[j];
    this.setMac(toOwnerId, mac);
  }

  /** Whether this process verified (or wrote) exactly this map MAC. */
  mapVerified(ownerId: string, mac: Buffer | null): boolean {
    const ok = this.mapsOk.get(ownerId);
    return !!ok && (mac ? ok.equals(mac) : ok.length === 0);
  }

  /**
   * Why an owner's block map does not match its MAC, or null when it does (an unsealed map is
   * sealed when a key is there and the directory is not yet marked sealed). O(units of the
   * owner); inside a transaction.
   */
  mapProblem(ownerId: string, lineageId: string): string | null {
    const mac = this.getMac(ownerId);
    const rows = this.st.rows.all(ownerId) as MapRow[];
    if (!mac) {
      if (this.markerValid()) return `the block map of ${ownerId} has no MAC although every map of this directory was sealed: it was removed behind the engine`;
      const k = this.key(false);
      if (k) this.setMac(ownerId, this.compute(k, ownerId, lineageId, rows));
      else this.mapsOk.set(ownerId, Buffer.alloc(0)); // no key to seal with: known unsealed
      return null;
    }
    const k = this.key(true) as Buffer;
    const want = this.compute(k, ownerId, lineageId, rows);
    if (!want.equals(mac)) {
      this.mapsOk.delete(ownerId);
      return `the block map of ${ownerId} (${rows.length} units) does not match its MAC: a unit was rolled back to an older version, moved, added or deleted behind the engine`;
    }
    this.mapsOk.set(ownerId, Buffer.from(mac));
    return null;
  }

  /** D10: refuses I/O on an owner whose block map does not match its MAC. */
  openMap(ownerId: string, lineageId: string): void {
    const p = this.mapProblem(ownerId, lineageId);
    if (p) throw new EngineError(ErrorCodes.BlockMapTampered, `${p}. No data was read or written; restore state.db from a backup (or the disk from a snapshot), and run: encdisk check`);
  }
}
