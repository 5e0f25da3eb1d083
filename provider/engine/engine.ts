/**
 * The engine facade: the local cloud's API. Handlers validate, look state up and call the
 * parts (KMS, block store, billing); each public operation is one transaction that either
 * completes or changes nothing.
 */
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { BlockStore, StaleRead, UNIT, type Owner } from "./blockstore/blockstore";
import { EngineError, ErrorCodes, isDiskFull, needs, Refusals, type RuleId } from "./errors";
import { show } from "./format";
import { assertRegion, instanceFamily, listRegions, regionOfZone } from "./geography";
import { newId, nowIso } from "./ids";
import { Integrity } from "./kms/integrity";
import { keyMeta, Kms } from "./kms/kms";
import { zero } from "./kms/crypto";
import { scrubStack } from "./kms/harden";
import { immediateNoWait, openDb, readTx, tx, withBusyRetry, withBusyRetryAsync, type Db, type Statement } from "./store/db";
import {
  CLOUD_DISK_TYPES,
  DISK_SIZE_LIMITS,
  DISK_TYPES,
  DISK_USAGES,
  type Account,
  type Attachment,
  type AuditEntry,
  type CreateDiskInput,
  type Disk,
  type DiskState,
  type DiskType,
  type DiskUsage,
  type Engine,
  type EngineOptions,
  type Image,
  type Instance,
  type KmsKey,
  type KmsUsage,
  type MigrateProgress,
  type OwnedResource,
  type Region,
  type Snapshot,
} from "./types";

const GiB = 1024 ** 3;
/** Largest single read or write through an attachment (a payload; writeZeroes / trim carry none and may cover the whole device). */
export const MAX_IO_BYTES = 64 * 1024 * 1024;
/**
 * Written units one transaction of a writeZeroes / trim unmaps at most: a larger range is
 * applied in several transactions (bounded transaction size and memory), each atomic.
 */
export const ZERO_BATCH_UNITS = 4096;
export const DEFAULT_PRICE_PER_CALL_MICROS = 6; // 0.06 per 10,000 calls
export const DEFAULT_STARTING_BALANCE_MICROS = 100_000_000; // 100.00
/**
 * Largest account balance (B3), in micro-units: 1,000,000,000.000000. Every amount stays an
 * exact integer well inside 2^53 (JavaScript numbers) and 2^63 (SQLite); a top-up past it is
 * refused with `LimitExceeded.AccountBalance`.
 */
export const MAX_BALANCE_MICROS = 1_000_000_000_000_000;
const ACCOUNT_ID = "100000000001";
/**
 * D9: bytes kept preallocated in `<dir>/reserve` and released when a freeing operation (delete,
 * detach) cannot commit because the file system is full, so space can always be freed through
 * the engine; re-created once there is room again.
 */
export const RESERVE_BYTES = 8 * 1024 * 1024;

/** Files younger than this are never swept as orphans: another process may be mid-operation. */
const ORPHAN_GRACE_MS = 60_000;

/** True for a file modified within the grace period (or gone meanwhile: nothing to remove). */
function isYoung(file: string, now: number): boolean {
  try {
    return now - fs.statSync(file).mtimeMs <= ORPHAN_GRACE_MS;
  } catch {
    return true;
  }
}

/** Default bound of the decrypted-unit read cache, in MiB (ENCDISK_READ_CACHE_MIB overrides; 0 disables). */
export const DEFAULT_READ_CACHE_MIB = 1024;

function readCacheMib(opts: EngineOptions): number {
  const v = opts.readCacheMib ?? (process.env.ENCDISK_READ_CACHE_MIB !== undefined ? Number(process.env.ENCDISK_READ_CACHE_MIB) : DEFAULT_READ_CACHE_MIB);
  needs(Number.isFinite(v) && v >= 0, ErrorCodes.InvalidParameterValue, `the read cache size must be a non-negative number of MiB, got ${show(v)}`, { property: "readCacheMib" });
  return v;
}

/** The engine directory used when none is given: ENCDISK_DIR, else ~/.encdisk. */
export function resolveEngineDir(explicit?: string): string {
  return path.resolve(explicit || process.env.ENCDISK_DIR || path.join(os.homedir(), ".encdisk"));
}

/** Opens (creating if needed) the engine in `opts.dir`. Several processes may open one directory at once. */
export function openEngine(opts: EngineOptions): Engine {
  return new LocalEngine(opts);
}

interface DiskRow {
  disk_id: string;
  name: string;
  zone: string;
  region: string;
  disk_type: DiskType;
  disk_usage: DiskUsage;
  size_gb: number;
  encrypted: number;
  kms_key_id: string | null;
  state: DiskState;
  snapshot_id: string | null;
  source_disk_id: string | null;
  lineage_id: string;
  tags: string;
  client_token: string | null;
  migrated_at: string | null;
  created_at: string;
  attachment_id: string | null;
  instance_id: string | null;
  units: number;
}

interface SnapshotRow {
  snapshot_id: string;
  name: string;
  disk_id: string;
  zone: string;
  region: string;
  encrypted: number;
  kms_key_id: string | null;
  size_gb: number;
  state: Snapshot["state"];
  lineage_id: string;
  copied_from: string | null;
  created_at: string;
  units: number;
}

interface InstanceRow {
  instance_id: string;
  name: string;
  zone: string;
  region: string;
  instance_type: string;
  local_storage: number;
  created_at: string;
}

interface AttachmentRow {
  attachment_id: string;
  disk_id: string;
  instance_id: string;
  capacity_bytes: number;
  psk_file: string;
  attached_at: string;
  zone: string;
  encrypted: number;
  size_gb: number;
  lineage_id: string;
  region: string;
  map_mac: Buffer | null;
}

interface ImageRow {
  image_id: string;
  name: string;
  region: string;
  snapshot_ids: string;
  encrypted: number;
  shared_with: string;
  copied_from: string | null;
  created_at: string;
}

const DISK_SELECT = `SELECT d.*, a.attachment_id, a.instance_id, (SELECT COUNT(*) FROM units u WHERE u.owner_id = d.disk_id) AS units
  FROM disks d LEFT JOIN attachments a ON a.disk_id = d.disk_id`;
const SNAPSHOT_SELECT = `SELECT s.*, (SELECT COUNT(*) FROM units u WHERE u.owner_id = s.snapshot_id) AS units FROM snapshots s`;
const ATTACHMENT_SELECT = `SELECT a.*, d.zone, d.encrypted, d.size_gb, d.lineage_id, d.region, d.map_mac FROM attachments a JOIN disks d ON d.disk_id = a.disk_id`;

/** Precondition: an input that must be an object (not null, not an array). */
function checkInput(input: unknown, what: string): void {
  needs(typeof input === "object" && input !== null && !Array.isArray(input), ErrorCodes.InvalidParameter, `${what} needs an input object, got ${show(input)}`);
}

function checkToken(token: unknown): string | undefined {
  if (token === undefined || token === null) return undefined;
  needs(typeof token === "string" && token.length > 0 && token.length <= 128, ErrorCodes.InvalidParameterValue, `clientToken must be a string of 1 to 128 characters, got ${show(token)}`, { property: "clientToken" });
  return token;
}

/**
 * A list call's filter: an object (or omitted) whose only keys are `keys`; every value a
 * non-empty string (an id, zone or region), except `sinceSeq`: a non-negative whole number.
 * Anything else is refused naming the property, never matched as "nothing".
 */
function checkFilter(filter: unknown, keys: string[]): Record<string, string | number | undefined> {
  if (filter === undefined) return {};
  needs(typeof filter === "object" && filter !== null && !Array.isArray(filter), ErrorCodes.InvalidParameter, `a filter must be an object (or omitted), got ${show(filter)}`);
  const f = filter as Record<string, unknown>;
  for (const k of Object.keys(f)) {
    needs(keys.includes(k), ErrorCodes.UnknownParameter, `unknown filter ${show(k)}; this list filters by ${keys.join(", ")}`, { property: k });
  }
  for (const k of keys) {
    const v = f[k];
    if (v === undefined) continue;
    if (k === "sinceSeq") {
      needs(typeof v === "number" && Number.isSafeInteger(v) && v >= 0, ErrorCodes.InvalidParameterValue, `filter sinceSeq must be a non-negative whole number (an audit sequence number), got ${show(v)}`, { property: k });
    } else {
      needs(typeof v === "string" && v.length > 0 && v.length <= 128, ErrorCodes.InvalidParameterValue, `filter ${k} must be a non-empty string of at most 128 characters, got ${show(v)}`, { property: k });
    }
  }
  return f as Record<string, string | number | undefined>;
}

/** Fingerprint of a request's parameters, to tell a retry from a different request with the same token. */
function fingerprint(params: Record<string, unknown>): string {
  const norm = (v: unknown): unknown =>
    v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.keys(v as object).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined).map((k) => [k, norm((v as Record<string, unknown>)[k])])) : v;
  return crypto.createHash("sha256").update(JSON.stringify(norm(params), (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v))).digest("hex");
}

function checkName(name: unknown, property = "name"): string {
  if (name === undefined || name === null) return "";
  needs(typeof name === "string" && name.length <= 60 && !/[\u0000-\u001f]/.test(name), ErrorCodes.InvalidParameterValue, `${property} must be a string of at most 60 characters without control characters, got ${show(name)}`, { property });
  return name;
}

function checkTags(tags: unknown): Record<string, string> {
  if (tags === undefined || tags === null) return {};
  needs(typeof tags === "object" && !Array.isArray(tags), ErrorCodes.InvalidParameterValue, "tags must be an object of string keys to string values", { property: "tags" });
  const entries = Object.entries(tags as Record<string, unknown>);
  needs(entries.length <= 50, ErrorCodes.InvalidParameterValue, "at most 50 tags are allowed", { property: "tags" });
  for (const [k, v] of entries) {
    needs(k.length > 0 && k.length <= 127 && typeof v === "string" && v.length <= 255, ErrorCodes.InvalidParameterValue, `tag ${show(k)}: keys are 1-127 characters and values strings of at most 255`, { property: "tags" });
  }
  return { ...(tags as Record<string, string>) };
}

function checkId(id: unknown, prefix: string, property: string, code: (typeof ErrorCodes)[keyof typeof ErrorCodes]): string {
  needs(typeof id === "string" && id.startsWith(`${prefix}-`), code, `${property} must be an id of the form ${prefix}-xxxxxxxx, got ${show(id)}`, { property });
  return id;
}

function checkSize(sizeGb: unknown, usage: DiskUsage, property = "sizeGb"): number {
  const lim = DISK_SIZE_LIMITS[usage];
  needs(
    typeof sizeGb === "number" && Number.isInteger(sizeGb) && sizeGb >= lim.min && sizeGb <= lim.max,
    ErrorCodes.DiskSize,
    `${property} must be a whole number of GB from ${lim.min} to ${lim.max} for a ${usage}, got ${show(sizeGb)}`,
    { property },
  );
  return sizeGb;
}

/** `maxLength`: MAX_IO_BYTES for calls that carry the data (read, write), none for writeZeroes / trim. */
function checkRange(offset: unknown, length: unknown, capacity: number, maxLength: number | null = MAX_IO_BYTES): void {
  needs(typeof offset === "number" && Number.isSafeInteger(offset) && offset >= 0, ErrorCodes.OutOfRange, `offset must be a non-negative integer, got ${show(offset)}`, { property: "offset" });
  needs(
    typeof length === "number" && Number.isSafeInteger(length) && length >= 0 && (maxLength === null || length <= maxLength),
    ErrorCodes.OutOfRange,
    maxLength === null ? `length must be a non-negative integer, got ${show(length)}` : `length must be an integer from 0 to ${maxLength} per call, got ${show(length)}`,
    { property: "length" },
  );
  needs(offset + length <= capacity, ErrorCodes.OutOfRange, `bytes ${offset}..${offset + length} lie past the end of the device (${capacity} bytes, the capacity the instance sees)`, { property: "offset" });
}

/** A snapshot may be copied to `destinationRegion` (S4: plain ones only, to another region). */
function checkCopy(s: { snapshot_id: string; region: string; encrypted: number }, destinationRegion: string): void {
  needs(destinationRegion !== s.region, ErrorCodes.InvalidParameter, `snapshot ${s.snapshot_id} is already in ${s.region}; choose another destinationRegion`, { property: "destinationRegion" });
  needs(!s.encrypted, ErrorCodes.EncryptedCrossRegionCopy, `snapshot ${s.snapshot_id} is encrypted, and encrypted snapshots cannot be copied across regions (its key belongs to ${s.region}'s KMS). Copy a plain snapshot instead, or recreate the data in ${destinationRegion}. Nothing was changed.`, { rule: "S4", property: "snapshotId" });
}

class LocalEngine implements Engine {
  readonly dir: string;
  private readonly db: Db;
  private readonly statements = new Map<string, Statement>();
  private readonly blocks: BlockStore;
  private readonly kms: Kms;
  private readonly integrity: Integrity;
  /** Whether this process has tried to seal the whole directory (once, see Integrity.sealAll). */
  private sealTried = false;
  private readonly nbdAddress: string;
  private closed = false;
  private depth = 0;
  private afterCommit: (() => void)[] = [];
  private onRollback: (() => void)[] = [];

  constructor(opts: EngineOptions) {
    needs(typeof opts?.dir === "string" && opts.dir.length > 0, ErrorCodes.InvalidParameter, "openEngine needs { dir }: the engine directory", { property: "dir" });
    // Resolved once (D4): opened through a symlink or after a move, every path below is the
    // directory's real one, and the state stores paths relative to it.
    fs.mkdirSync(path.resolve(opts.dir), { recursive: true, mode: 0o700 });
    this.dir = fs.realpathSync(path.resolve(opts.dir));
    this.db = openDb(this.dir);
    this.kms = new Kms(this.db, { kmsRootKey: opts.kmsRootKey, kmsRootKeyFile: opts.kmsRootKeyFile, engineDir: this.dir });
    this.integrity = new Integrity(this.db, this.kms);
    this.blocks = new BlockStore(this.db, this.dir, Math.floor(readCacheMib(opts) * 16), this.integrity); // 16 units of 64 KiB per MiB
    this.nbdAddress = opts.nbdAddress ?? process.env.ENCDISK_NBD_ADDRESS ?? "127.0.0.1:10809";
    this.run(() => {
      const price = opts.pricePerCallMicros ?? DEFAULT_PRICE_PER_CALL_MICROS;
      const opening = opts.startingBalanceMicros ?? DEFAULT_STARTING_BALANCE_MICROS;
      needs(Number.isSafeInteger(opening) && opening >= 0 && opening <= MAX_BALANCE_MICROS, ErrorCodes.InvalidParameterValue, `the starting balance must be a whole number of micro-units from 0 to ${MAX_BALANCE_MICROS}, got ${show(opening)}`, { property: "startingBalanceMicros" });
      needs(Number.isSafeInteger(price) && price >= 0 && price <= MAX_BALANCE_MICROS, ErrorCodes.InvalidParameterValue, `the price per KMS call must be a whole number of micro-units from 0 to ${MAX_BALANCE_MICROS}, got ${show(price)}`, { property: "pricePerCallMicros" });
      const made = this.sql("INSERT OR IGNORE INTO account (id, account_id, kms_authorized, price_micros, created_at, balance_micros) VALUES (1, ?, 0, ?, ?, 0)").run(ACCOUNT_ID, price, nowIso());
      if (made.changes) this.ledger("opening", opening);
      this.sql("INSERT OR IGNORE INTO meta (k, v) VALUES ('engine_id', ?)").run(crypto.randomUUID());
    });
    this.wrapLegacyPskSecret();
    this.sweepOrphans();
    this.ensureReserve();
  }

  /**
   * D6: a directory of an older release holds the NBD PSK secret in plaintext (meta
   * nbd_psk_secret). Wrapped under the root key on the first open that has the key (else at
   * the next use of the secret), with SQLite's secure_delete on so the old value is
   * overwritten, and the WAL truncated so no old frame keeps it.
   */
  private wrapLegacyPskSecret(): void {
    if (!this.sql("SELECT 1 FROM meta WHERE k = 'nbd_psk_secret'").get()) return;
    this.db.pragma("secure_delete = ON");
    try {
      this.run(() => zero(this.kms.nbdPskSecret(this.engineId()).secret));
    } catch (e) {
      if (!(e instanceof EngineError && (e.code === ErrorCodes.KmsRootKeyMissing || e.code === ErrorCodes.KmsRootKeyMismatch))) throw e;
      return; // no root key in this process: wrapped by the next one that has it
    } finally {
      this.db.pragma("secure_delete = OFF");
    }
    this.purgeWal();
  }

  /** Checkpoints and truncates the WAL (best effort: a reader of another process may hold it). */
  private purgeWal(): void {
    try {
      this.db.pragma("wal_checkpoint(TRUNCATE)");
    } catch {
      /* busy: the frames are overwritten by later transactions */
    }
  }

  private engineId(): string {
    return (this.sql("SELECT v FROM meta WHERE k = 'engine_id'").get() as { v: string }).v;
  }

  /** An attachment's key file: psk_file is relative to the engine directory (D4). */
  private pskPath(pskFile: string): string {
    return path.resolve(this.dir, pskFile);
  }

  // ---- plumbing ---------------------------------------------------------------------------

  /**
   * One transaction; nested calls join the outer one. File side effects run after commit.
   * `exec` runs the transaction (default: `tx`, which waits for the write lock).
   */
  private run<T>(fn: () => T, exec: (db: Db, fn: () => T) => T = tx): T {
    needs(!this.closed, ErrorCodes.InvalidParameter, "the engine was closed");
    if (this.depth > 0) return fn();
    this.depth++;
    let result: T;
    try {
      result = exec(this.db, fn);
    } catch (e) {
      const undo = this.onRollback;
      this.afterCommit = [];
      this.onRollback = [];
      for (const f of undo) f();
      throw this.diskFull(e);
    } finally {
      this.depth--;
    }
    const done = this.afterCommit;
    this.afterCommit = [];
    this.onRollback = [];
    try {
      for (const f of done) f();
    } catch (e) {
      throw this.diskFull(e);
    }
    return result;
  }

  /**
   * `run` that never blocks the thread on the write lock (D3): each attempt takes it without
   * waiting (`immediateNoWait`) and, while another connection or process holds it, the next
   * attempt comes after a timer (`withBusyRetryAsync`), so an event loop keeps serving reads and
   * handshakes meanwhile. `fn` runs synchronously inside one attempt, as in `run`.
   */
  private runAsync<T>(fn: () => T, durable = false): Promise<T> {
    return withBusyRetryAsync(() => {
      // durable: this commit fsyncs the WAL (synchronous=FULL), for flush; set around one attempt only.
      if (durable) this.db.pragma("synchronous = FULL");
      try {
        return this.run(fn, immediateNoWait);
      } finally {
        if (durable) this.db.pragma("synchronous = NORMAL");
      }
    });
  }

  /**
   * A prepared statement, compiled once per engine: statements run on every I/O call
   * (the attachment lookup) would otherwise be re-parsed each time.
   */
  private sql(text: string): Statement {
    let st = this.statements.get(text);
    if (!st) {
      st = this.db.prepare(text);
      this.statements.set(text, st);
    }
    return st;
  }

  /** A consistent read of state (joins the current transaction when there is one). */
  private view<T>(fn: () => T): T {
    needs(!this.closed, ErrorCodes.InvalidParameter, "the engine was closed");
    return this.depth > 0 ? fn() : readTx(this.db, fn);
  }

  /** D9: a full file system as a typed error (anything else unchanged). */
  private diskFull(e: unknown): unknown {
    if (!isDiskFull(e) || (e instanceof EngineError && e.code === ErrorCodes.DiskFull)) return e;
    return new EngineError(
      ErrorCodes.DiskFull,
      `the file system holding the engine directory ${this.dir} is full (${(e as { code: string }).code}); nothing was changed. Free space: delete disks or snapshots you no longer need (deleting and detaching work on a full disk), or grow the file system`,
      { cause: e },
    );
  }

  private reservePath(): string {
    return path.join(this.dir, "reserve");
  }

  /** Preallocates the reserve (real zeros, not a sparse file) when missing; best effort. */
  private ensureReserve(): void {
    const file = this.reservePath();
    try {
      if (fs.statSync(file).size >= RESERVE_BYTES) return;
    } catch {
      /* missing: make it */
    }
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      const fd = fs.openSync(tmp, "w", 0o600);
      try {
        const zeros = Buffer.alloc(1024 * 1024);
        for (let at = 0; at < RESERVE_BYTES; at += zeros.length) fs.writeSync(fd, zeros, 0, zeros.length, at);
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
      fs.renameSync(tmp, file);
    } catch {
      fs.rmSync(tmp, { force: true }); // no room for it now: the next freeing operation tries again
    }
  }

  /**
   * D9: runs an operation that frees space. When the file system is too full for it to commit,
   * the reserve is released and it runs once more; afterwards the reserve is made again.
   */
  private freeing<T>(fn: () => T): T {
    let result: T;
    try {
      result = fn();
    } catch (e) {
      if (!(e instanceof EngineError && e.code === ErrorCodes.DiskFull)) throw e;
      fs.rmSync(this.reservePath(), { force: true });
      result = fn();
    }
    this.ensureReserve();
    return result;
  }

  close(): void {
    if (this.closed) return;
    this.kms.release();
    this.integrity.release();
    this.blocks.close();
    this.db.close();
    this.closed = true;
  }

  releaseKeys(attachmentId?: string): void {
    if (attachmentId === undefined) {
      this.kms.release();
      this.integrity.release();
      this.blocks.dropCache();
      return;
    }
    const r = this.view(() => this.attachmentRow(attachmentId));
    if (!r) return; // detached: detach released them
    this.kms.releaseLineage(r.lineage_id);
    this.blocks.dropCache(r.lineage_id);
  }

  private removeDeadLineage(lineageId: string): void {
    this.blocks.forget(lineageId);
    fs.rmSync(this.blocks.blockFile(lineageId), { force: true });
    withBusyRetry(() => this.sql("DELETE FROM dead_lineages WHERE lineage_id = ?").run(lineageId));
  }

  /**
   * Repairs what a killed process can leave behind: block files of deleted lineages, key files
   * of attachments that are gone (or missing for attachments that exist), and block files of
   * lineages that never committed (only once older than a grace period: another process may be
   * inside that very transaction).
   */
  private sweepOrphans(): void {
    // Zeroings cut between two steps by a crash (D1): rolled forward before anything reads them.
    for (const r of this.sql("SELECT k FROM meta WHERE k LIKE 'zeroing:%'").all() as { k: string }[]) {
      try {
        this.run(() => this.finishZeroing(r.k.slice("zeroing:".length)));
      } catch {
        /* no key to keep the map's MAC (or busy): the next open, or the next zeroing of the disk; check reports it */
      }
    }
    // Snapshot copies whose process stopped beating (killed mid-copy, see copySnapshotsStaged).
    for (const r of this.sql("SELECT k, v FROM meta WHERE k LIKE 'copying:%'").all() as { k: string; v: string }[]) {
      const { owner, beat } = JSON.parse(r.v) as { owner: string; beat: number };
      if (Date.now() - beat > ORPHAN_GRACE_MS) this.run(() => this.dropStaged(r.k.slice("copying:".length), owner));
    }
    for (const r of this.sql("SELECT lineage_id FROM dead_lineages").all() as { lineage_id: string }[]) this.removeDeadLineage(r.lineage_id);
    for (const a of this.sql("SELECT attachment_id, psk_file FROM attachments").all() as { attachment_id: string; psk_file: string }[]) {
      const file = this.pskPath(a.psk_file);
      if (!this.insideDir(file)) continue; // written by nothing here; `check` reports it
      if (!fs.existsSync(file)) {
        try {
          this.writePskFile(a.attachment_id, file, this.run(() => this.pskOf(a.attachment_id)));
        } catch (e) {
          if (!(e instanceof EngineError && (e.code === ErrorCodes.KmsRootKeyMissing || e.code === ErrorCodes.KmsRootKeyMismatch))) throw e;
          // without the root key no PSK can be computed: `check` reports the missing file
        }
      }
    }
    for (const f of this.orphanFiles(Date.now())) fs.rmSync(f, { force: true });
  }

  /**
   * Files nothing in the state explains (block files of unknown lineages only once older than
   * the grace period). Directories are listed before the state is read: a key file is written
   * only after its attachment committed, so a file listed here whose attachment the later
   * query does not see really is an orphan.
   */
  private orphanFiles(now: number): string[] {
    const list = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir).map((f) => path.join(dir, f)) : []);
    const blockFiles = list(path.join(this.dir, "blocks"));
    const keyFiles = list(path.join(this.dir, "nbd"));
    const ids = (sql: string) => new Set((this.sql(sql).all() as { v: string }[]).map((r) => r.v));
    const { lineages, dead, psk } = readTx(this.db, () => ({
      lineages: ids("SELECT lineage_id AS v FROM lineages"),
      dead: ids("SELECT lineage_id AS v FROM dead_lineages"),
      psk: new Set([...ids("SELECT psk_file AS v FROM attachments")].map((f) => this.pskPath(f))),
    }));
    const out: string[] = [];
    for (const full of blockFiles) {
      const f = path.basename(full);
      const id = f.endsWith(".dat") ? f.slice(0, -4) : null;
      if (id && lineages.has(id)) continue;
      if ((id && dead.has(id)) || !isYoung(full, now)) out.push(full);
    }
    // a ".tmp" is a key file being written right now by some process; older ones are leftovers
    for (const full of keyFiles) if (!psk.has(full) && !(full.endsWith(".tmp") && isYoung(full, now))) out.push(full);
    return out;
  }

  /** Whether `file` (absolute) lies inside the engine directory. */
  private insideDir(file: string): boolean {
    const rel = path.relative(this.dir, file);
    return rel !== "" && !rel.startsWith("..") && !path.isAbsolute(rel);
  }

  // ---- geography ----------------------------------------------------------------------------

  listRegions(): Region[] {
    return listRegions();
  }

  regionOfZone(zone: string): string {
    return regionOfZone(zone);
  }

  // ---- account, billing ---------------------------------------------------------------------

  getAccount(): Account {
    return this.view(() => {
      const a = this.sql("SELECT account_id, kms_authorized, price_micros FROM account WHERE id = 1").get() as { account_id: string; kms_authorized: number; price_micros: number };
      return { accountId: a.account_id, kmsAuthorized: !!a.kms_authorized, balanceMicros: this.balance(), pricePerCallMicros: a.price_micros };
    });
  }

  /** The running balance of the account row (kept by `ledger`), not a sum over the ledger. */
  private balance(): number {
    return (this.sql("SELECT balance_micros AS b FROM account WHERE id = 1").get() as { b: number }).b;
  }

  /**
   * Appends one ledger entry and moves the running balance with it, in the caller's
   * transaction; nothing raises the balance past MAX_BALANCE_MICROS (B3, D14).
   */
  private ledger(kind: "opening" | "topup" | "charge", amountMicros: number, auditSeq: number | bigint | null = null): void {
    const after = this.balance() + amountMicros;
    needs(
      amountMicros <= 0 || after <= MAX_BALANCE_MICROS, // a charge always goes through (B3 checks it is covered)
      ErrorCodes.BalanceLimit,
      `the account balance may hold at most ${MAX_BALANCE_MICROS} micro-units (${MAX_BALANCE_MICROS / 1e6}); it is ${this.balance()}, so at most ${MAX_BALANCE_MICROS - this.balance()} can be added. Nothing was changed.`,
      { rule: "B3", property: "amount" },
    );
    this.sql("INSERT INTO ledger (time, kind, amount_micros, audit_seq) VALUES (?, ?, ?, ?)").run(nowIso(), kind, amountMicros, auditSeq);
    this.sql("UPDATE account SET balance_micros = ? WHERE id = 1").run(after);
  }

  authorizeKms(): Account {
    this.run(() => this.sql("UPDATE account SET kms_authorized = 1 WHERE id = 1").run());
    return this.getAccount();
  }

  topUp(amountMicros: number): Account {
    needs(Number.isSafeInteger(amountMicros) && amountMicros > 0, ErrorCodes.InvalidParameterValue, `a top-up must be a positive whole number of micro-units, got ${show(amountMicros)}`, { property: "amount" });
    this.run(() => this.ledger("topup", amountMicros));
    return this.getAccount();
  }

  setPricePerCall(priceMicros: number): Account {
    needs(Number.isSafeInteger(priceMicros) && priceMicros >= 0 && priceMicros <= MAX_BALANCE_MICROS, ErrorCodes.InvalidParameterValue, `the price per KMS call must be a whole number of micro-units from 0 to ${MAX_BALANCE_MICROS}, got ${show(priceMicros)}`, { property: "pricePerCall" });
    this.run(() => this.sql("UPDATE account SET price_micros = ? WHERE id = 1").run(priceMicros));
    return this.getAccount();
  }

  /** O2: encrypted disks need KMS authorized for the account. */
  private requireKmsAuthorized(): void {
    const a = this.sql("SELECT kms_authorized FROM account WHERE id = 1").get() as { kms_authorized: number };
    needs(a.kms_authorized, ErrorCodes.KmsNotAuthorized, Refusals.kmsNotAuthorized, { rule: "O2" });
  }

  /** B2/B3: records one KMS call in the audit log and charges it; refuses (changing nothing) when the balance does not cover it. */
  private kmsCall(region: string, operation: string, resourceId: string, kmsApi: string, billable = true): void {
    const price = billable ? (this.sql("SELECT price_micros FROM account WHERE id = 1").get() as { price_micros: number }).price_micros : 0;
    if (billable) {
      const balance = this.balance();
      needs(
        balance >= price,
        ErrorCodes.InsufficientBalance,
        `${operation} on an encrypted disk makes a billable KMS call (${kmsApi}, ${price} micro-units) but the account balance is ${balance}; top up (encdisk top-up) and retry. Nothing was changed.`,
        { rule: "B3" },
      );
    }
    // The call is real: Decrypt/Encrypt unwrap the region's key chain, so a wrong root key fails here.
    if (kmsApi === "Decrypt" || kmsApi === "Encrypt") this.kms.checkRegionKey(region);
    const audit = this.sql("INSERT INTO audit (time, region, operation, resource_id, kms_api, billable, price_micros) VALUES (?, ?, ?, ?, ?, ?, ?)")
      .run(nowIso(), region, operation, resourceId, kmsApi, billable ? 1 : 0, price);
    if (billable) this.ledger("charge", -price, audit.lastInsertRowid);
  }

  /**
   * Idempotent create (inside the caller's transaction): a token seen before with the same
   * operation and parameters returns what the first call made (if it still exists); with other
   * parameters it is refused, so a reused token never returns a resource the caller did not ask for.
   */
  private idempotent<T>(token: string | undefined, operation: string, params: Record<string, unknown>, find: (id: string) => T | null, make: () => { id: string; value: T }): T {
    if (token === undefined) return make().value;
    const fp = fingerprint(params);
    const row = this.sql("SELECT operation, fingerprint, resource_id FROM client_tokens WHERE token = ?").get(token) as { operation: string; fingerprint: string; resource_id: string } | undefined;
    if (row) {
      needs(
        row.operation === operation && row.fingerprint === fp,
        ErrorCodes.IdempotentParameterMismatch,
        `clientToken ${show(token)} was already used by a ${row.operation} with other parameters (it made ${row.resource_id}); use a new token for a different request`,
        { property: "clientToken" },
      );
      const existing = find(row.resource_id);
      if (existing !== null) return existing;
      this.sql("DELETE FROM client_tokens WHERE token = ?").run(token); // what it made is gone: make it anew
    }
    const made = make();
    this.sql("INSERT INTO client_tokens (token, operation, fingerprint, resource_id, created_at) VALUES (?, ?, ?, ?, ?)").run(token, operation, fp, made.id, nowIso());
    return made.value;
  }

  // ---- KMS ------------------------------------------------------------------------------------

  listKeys(region?: string): KmsKey[] {
    if (region !== undefined) assertRegion(region);
    return this.view(() => {
      const rows = this.sql(`SELECT key_id, region, alias, description, created_at FROM kms_keys ${region ? "WHERE region = ?" : ""} ORDER BY region`).all(...(region ? [region] : [])) as Parameters<typeof keyMeta>[0][];
      return rows.map(keyMeta);
    });
  }

  describeKey(keyId: string): KmsKey {
    needs(typeof keyId === "string", ErrorCodes.KeyNotFound, `keyId must be a KMS key id (a UUID), got ${show(keyId)}`, { property: "keyId" });
    const k = this.view(() => this.sql("SELECT key_id, region, alias, description, created_at FROM kms_keys WHERE key_id = ?").get(keyId) as Parameters<typeof keyMeta>[0] | undefined);
    needs(k, ErrorCodes.KeyNotFound, `KMS key ${show(keyId)} does not exist; list keys with: encdisk keys`, { property: "keyId" });
    return keyMeta(k);
  }

  private refuseKeyChange(keyId: string, what: string): never {
    this.describeKey(keyId);
    throw new EngineError(ErrorCodes.ServiceManagedKey, `the disk-encryption CMK ${keyId} is created and managed by the disk service: it can be listed and described, but not ${what}. Nothing was changed.`, { rule: "K5" });
  }

  deleteKey(keyId: string): never {
    return this.refuseKeyChange(keyId, "deleted or scheduled for deletion");
  }
  disableKey(keyId: string): never {
    return this.refuseKeyChange(keyId, "disabled");
  }
  rotateKey(keyId: string): never {
    return this.refuseKeyChange(keyId, "rotated or replaced by hand");
  }
  exportKeyMaterial(keyId: string): never {
    return this.refuseKeyChange(keyId, "exported");
  }

  kmsUsage(region?: string): KmsUsage[] {
    if (region !== undefined) assertRegion(region);
    return this.view(() => {
      const rows = this.sql(`SELECT region, SUM(billable) AS calls, SUM(price_micros) AS charged FROM audit ${region ? "WHERE region = ?" : ""} GROUP BY region ORDER BY region`)
        .all(...(region ? [region] : [])) as { region: string; calls: number; charged: number }[];
      const out = rows.map((r) => ({ region: r.region, calls: r.calls, chargedMicros: r.charged }));
      if (region && out.length === 0) out.push({ region, calls: 0, chargedMicros: 0 });
      return out;
    });
  }

  auditLog(filterIn: { region?: string; resourceId?: string; sinceSeq?: number } = {}): AuditEntry[] {
    const filter = checkFilter(filterIn, ["region", "resourceId", "sinceSeq"]) as { region?: string; resourceId?: string; sinceSeq?: number };
    return this.view(() => {
      const where: string[] = [];
      const args: (string | number)[] = [];
      if (filter.region) (where.push("region = ?"), args.push(filter.region));
      if (filter.resourceId) (where.push("resource_id = ?"), args.push(filter.resourceId));
      if (filter.sinceSeq !== undefined) (where.push("seq > ?"), args.push(filter.sinceSeq));
      const rows = this.sql(`SELECT * FROM audit ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY seq`).all(...args) as {
        seq: number;
        time: string;
        region: string;
        operation: string;
        resource_id: string;
        kms_api: string;
        billable: number;
        price_micros: number;
      }[];
      return rows.map((r) => ({ seq: r.seq, time: r.time, region: r.region, operation: r.operation, resourceId: r.resource_id, kmsApi: r.kms_api, billable: !!r.billable, priceMicros: r.price_micros }));
    });
  }

  // ---- disks ---------------------------------------------------------------------------------

  private toDisk(r: DiskRow): Disk {
    return {
      diskId: r.disk_id,
      name: r.name,
      zone: r.zone,
      region: r.region,
      diskType: r.disk_type,
      diskUsage: r.disk_usage,
      sizeGb: r.size_gb,
      encrypted: !!r.encrypted,
      kmsKeyId: r.kms_key_id,
      state: r.attachment_id ? "ATTACHED" : r.source_disk_id && !r.migrated_at ? "DUMPING" : r.state,
      snapshotId: r.snapshot_id,
      sourceDiskId: r.source_disk_id,
      attachmentId: r.attachment_id,
      instanceId: r.instance_id,
      tags: JSON.parse(r.tags) as Record<string, string>,
      createdAt: r.created_at,
      usedBytes: r.units * UNIT,
    };
  }

  private diskRow(diskId: string): DiskRow | undefined {
    if (typeof diskId !== "string") return undefined;
    return this.sql(`${DISK_SELECT} WHERE d.disk_id = ?`).get(diskId) as DiskRow | undefined;
  }

  private mustDisk(diskId: string, property = "diskId"): DiskRow {
    checkId(diskId, "disk", property, ErrorCodes.DiskNotFound);
    const r = this.diskRow(diskId);
    needs(r, ErrorCodes.DiskNotFound, `disk ${diskId} does not exist (deleted, or never created here); list disks with: encdisk disks`, { property });
    return r;
  }

  /**
   * D7/D10: an owner is opened for I/O only when its lineage's seal and its block map's MAC
   * hold (verified once per process, again when the row changed behind this process); the
   * first open with a root key after an upgrade seals the whole directory.
   */
  private openOwner(ownerId: string, seen?: { lineage_id: string; region: string; encrypted: number; map_mac: Buffer | null }): void {
    if (seen && this.integrity.lineageVerified(seen.lineage_id, seen.encrypted, seen.region) && this.integrity.mapVerified(ownerId, seen.map_mac)) return;
    // Verifying writes nothing when the directory, the lineage and the map are sealed (the usual
    // case): then a read transaction does, which never waits for another process's write lock
    // (D3: a server's first read of an export). Only sealing (after an upgrade) needs a write.
    const sealed = this.view(() => {
      const r = (ownerId.startsWith("snap-") ? this.sql("SELECT s.map_mac AS m, l.mac AS l FROM snapshots s JOIN lineages l ON l.lineage_id = s.lineage_id WHERE s.snapshot_id = ?") : this.sql("SELECT d.map_mac AS m, l.mac AS l FROM disks d JOIN lineages l ON l.lineage_id = d.lineage_id WHERE d.disk_id = ?")).get(ownerId) as
        | { m: Buffer | null; l: Buffer | null }
        | undefined;
      return !!r?.m && !!r?.l && !!this.sql("SELECT 1 FROM meta WHERE k = 'integrity_sealed'").get();
    });
    (sealed ? this.view.bind(this) : this.run.bind(this))(() => {
      if (!sealed && !this.sealTried) {
        this.integrity.sealAll(this.allLineages(), this.allOwners());
        this.afterCommit.push(() => (this.sealTried = true));
      }
      const r = (ownerId.startsWith("snap-") ? this.sql("SELECT lineage_id, region, encrypted FROM snapshots WHERE snapshot_id = ?") : this.sql("SELECT lineage_id, region, encrypted FROM disks WHERE disk_id = ?")).get(ownerId) as
        | { lineage_id: string; region: string; encrypted: number }
        | undefined;
      if (!r) return; // gone meanwhile: the caller's own lookup reports it
      this.integrity.openLineage(r.lineage_id, { ownerId, encrypted: r.encrypted, region: r.region });
      this.integrity.openMap(ownerId, r.lineage_id);
    });
  }

  private allLineages(): string[] {
    return (this.sql("SELECT lineage_id FROM lineages ORDER BY lineage_id").all() as { lineage_id: string }[]).map((r) => r.lineage_id);
  }

  private allOwners(): { ownerId: string; lineageId: string }[] {
    return this.sql("SELECT disk_id AS ownerId, lineage_id AS lineageId FROM disks UNION ALL SELECT snapshot_id, lineage_id FROM snapshots ORDER BY 1").all() as { ownerId: string; lineageId: string }[];
  }

  private owner(ownerId: string, r: { lineage_id: string; region: string; encrypted: number }): Owner {
    return {
      ownerId,
      lineageId: r.lineage_id,
      key: r.encrypted ? this.kms.lineageKey(r.region, r.lineage_id) : null,
    };
  }

  findDisk(diskId: string): Disk | null {
    const r = this.view(() => this.diskRow(diskId));
    return r ? this.toDisk(r) : null;
  }

  getDisk(diskId: string): Disk {
    return this.toDisk(this.view(() => this.mustDisk(diskId)));
  }

  listDisks(filterIn: { zone?: string; region?: string } = {}): Disk[] {
    const filter = checkFilter(filterIn, ["zone", "region"]) as { zone?: string; region?: string };
    return this.view(() => {
      const where: string[] = [];
      const args: string[] = [];
      if (filter.zone) (where.push("d.zone = ?"), args.push(filter.zone));
      if (filter.region) (where.push("d.region = ?"), args.push(filter.region));
      return (this.sql(`${DISK_SELECT} ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY d.created_at, d.disk_id`).all(...args) as DiskRow[]).map((r) => this.toDisk(r));
    });
  }

  createDisk(input: CreateDiskInput): Disk {
    checkInput(input, "createDisk");
    const token = checkToken(input.clientToken);
    const region = regionOfZone(input.zone);
    const diskType = input.diskType ?? "CLOUD_PREMIUM";
    needs((DISK_TYPES as readonly string[]).includes(diskType), ErrorCodes.InvalidDiskType, `diskType must be one of ${DISK_TYPES.join(", ")}, got ${show(diskType)}`, { property: "diskType" });
    const diskUsage = input.diskUsage ?? "DATA_DISK";
    needs((DISK_USAGES as readonly string[]).includes(diskUsage), ErrorCodes.InvalidDiskUsage, `diskUsage must be DATA_DISK or SYSTEM_DISK, got ${show(diskUsage)}`, { property: "diskUsage" });
    const sizeGb = checkSize(input.sizeGb, diskUsage);
    needs(input.encrypt === undefined || typeof input.encrypt === "boolean", ErrorCodes.InvalidParameterValue, "encrypt must be true or false", { property: "encrypt" });
    const name = checkName(input.name);
    const tags = checkTags(input.tags);
    needs(
      (input as { kmsKeyId?: unknown }).kmsKeyId === undefined,
      ErrorCodes.ServiceManagedKey,
      Refusals.cmkNotChoosable,
      { rule: "O3", property: "kmsKeyId" },
    );
    if (input.snapshotId !== undefined && input.snapshotId !== null) checkId(input.snapshotId, "snap", "snapshotId", ErrorCodes.SnapshotNotFound);
    // Defaults spelled out or omitted are the same request: fingerprint the normalized values.
    const params = { zone: input.zone, sizeGb, diskType, diskUsage, encrypt: input.snapshotId ? input.encrypt : input.encrypt === true, snapshotId: input.snapshotId ?? undefined, name, tags };
    return this.run(() =>
      this.idempotent(token, "CreateDisk", params, (id) => { const r = this.diskRow(id); return r ? this.toDisk(r) : null; }, () => {
        const d = this.createDiskTx({ ...input, zone: input.zone, sizeGb, diskType, diskUsage, name, tags }, region);
        return { id: d.diskId, value: d };
      }),
    );
  }

  /** The body of createDisk, inside its transaction, on validated input. */
  private createDiskTx(input: CreateDiskInput & { sizeGb: number; diskType: DiskType; diskUsage: DiskUsage; name: string; tags: Record<string, string> }, region: string): Disk {
    const { sizeGb, diskType, diskUsage, name, tags } = input;
    {
      const diskId = newId("disk");
      let encrypted = input.encrypt === true;
      let lineageId: string;
      let snap: SnapshotRow | undefined;
      if (input.snapshotId) {
        snap = this.mustSnapshot(input.snapshotId);
        needs(snap.region === region, ErrorCodes.InvalidParameter, `snapshot ${snap.snapshot_id} is in ${snap.region}, but zone ${input.zone} is in ${region}; create the disk in a zone of ${snap.region}, or copy the snapshot to ${region} first (encrypted snapshots cannot be copied across regions, S4)`, { property: "snapshotId" });
        needs(sizeGb >= snap.size_gb, ErrorCodes.DiskSizeNotMatch, `a disk made from snapshot ${snap.snapshot_id} must be at least the snapshot's ${snap.size_gb} GB, got ${sizeGb}`, { property: "sizeGb" });
        // C2/C3: encryption is inherited from the snapshot; an explicit opposite is a conversion.
        needs(!(snap.encrypted && input.encrypt === false), ErrorCodes.SnapshotEncryptConversion, `snapshot ${snap.snapshot_id} is encrypted, so a disk made from it is encrypted too; its data cannot become plain. Omit encrypt (or set it true); to get a plain copy, copy the data onto a new plain disk (M1: migrateDisk / sourceDiskId)`, { rule: "S2", property: "encrypt" });
        needs(!(!snap.encrypted && input.encrypt === true), ErrorCodes.SnapshotEncryptConversion, `snapshot ${snap.snapshot_id} is not encrypted and cannot be turned into encrypted data; create the disk from it without encrypt, then copy its data onto a new encrypted disk (M1: migrateDisk / sourceDiskId)`, { rule: "S1", property: "encrypt" });
        encrypted = !!snap.encrypted;
        lineageId = snap.lineage_id;
      } else {
        lineageId = newId("lin");
      }
      if (encrypted) this.checkEncryptable(diskType, diskUsage);
      let kmsKeyId: string | null = null;
      if (encrypted) {
        this.requireKmsAuthorized();
        const { key, created } = this.kms.ensureRegionKey(region);
        kmsKeyId = key.keyId;
        if (created) this.kmsCall(region, "CreateDisk", diskId, "CreateKey", false);
        this.kmsCall(region, "CreateDisk", diskId, created ? "GenerateDataKey" : "Decrypt");
      }
      const now = nowIso();
      if (!snap) {
        this.sql("INSERT INTO lineages (lineage_id, region, encrypted, next_slot, created_at) VALUES (?, ?, ?, 0, ?)").run(lineageId, region, encrypted ? 1 : 0, now);
        this.integrity.sealLineage(lineageId);
      }
      this.sql(
        `INSERT INTO disks (disk_id, name, zone, region, disk_type, disk_usage, size_gb, encrypted, kms_key_id, state, snapshot_id, source_disk_id, lineage_id, tags, client_token, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'UNATTACHED', ?, NULL, ?, ?, ?, ?)`,
      ).run(diskId, name, input.zone, region, diskType, diskUsage, sizeGb, encrypted ? 1 : 0, kmsKeyId, snap?.snapshot_id ?? null, lineageId, JSON.stringify(tags), null, now);
      if (snap) this.blocks.shareMap(snap.snapshot_id, diskId);
      else this.integrity.onEmpty(diskId);
      return this.toDisk(this.diskRow(diskId) as DiskRow);
    }
  }

  /** L1-L3: every cloud disk type can be encrypted; local disks and system disks cannot. */
  private checkEncryptable(diskType: DiskType, diskUsage: DiskUsage): void {
    needs((CLOUD_DISK_TYPES as readonly string[]).includes(diskType), ErrorCodes.LocalDiskEncrypt, `${diskType} is a local disk, and only cloud disks can be encrypted; choose a cloud type (${CLOUD_DISK_TYPES.join(", ")}) or set encrypt to false`, { rule: "L2", property: "diskType" });
    needs(diskUsage === "DATA_DISK", ErrorCodes.SystemDiskEncrypt, "only data disks can be encrypted, not system disks; use diskUsage DATA_DISK or set encrypt to false", { rule: "L3", property: "diskUsage" });
  }

  resizeDisk(diskId: string, sizeGb: number): Disk {
    return this.run(() => {
      const d = this.mustDisk(diskId);
      checkSize(sizeGb, d.disk_usage);
      needs(sizeGb >= d.size_gb, ErrorCodes.DiskShrink, `disk ${diskId} is ${d.size_gb} GB and disks only grow; ${sizeGb} GB would lose data. Create a smaller disk and copy the data (M1) if you need one`, { property: "sizeGb" });
      if (sizeGb === d.size_gb) return this.toDisk(d);
      this.sql("UPDATE disks SET size_gb = ? WHERE disk_id = ?").run(sizeGb, diskId);
      // L6: an attached encrypted disk keeps the capacity it had at attach time; a plain one grows online.
      if (d.attachment_id && !d.encrypted) this.sql("UPDATE attachments SET capacity_bytes = ? WHERE attachment_id = ?").run(sizeGb * GiB, d.attachment_id);
      return this.toDisk(this.diskRow(diskId) as DiskRow);
    });
  }

  renameDisk(diskId: string, name: string, tags?: Record<string, string>): Disk {
    const n = checkName(name);
    const t = tags === undefined ? undefined : checkTags(tags);
    return this.run(() => {
      this.mustDisk(diskId);
      this.sql("UPDATE disks SET name = ? WHERE disk_id = ?").run(n, diskId);
      if (t) this.sql("UPDATE disks SET tags = ? WHERE disk_id = ?").run(JSON.stringify(t), diskId);
      return this.toDisk(this.diskRow(diskId) as DiskRow);
    });
  }

  setDiskEncryption(diskId: string, encrypt: boolean): never {
    const d = this.view(() => this.mustDisk(diskId));
    if (!!d.encrypted === encrypt) {
      throw new EngineError(ErrorCodes.DiskEncryptConversion, `disk ${diskId} is already ${encrypt ? "encrypted" : "plain"}; there is no encryption change to make`, { rule: encrypt ? "L4" : "L5", property: "encrypt" });
    }
    const rule: RuleId = encrypt ? "L4" : "L5";
    throw new EngineError(
      ErrorCodes.DiskEncryptConversion,
      encrypt
        ? `disk ${diskId} is not encrypted and an existing plain disk cannot be converted into an encrypted one. Create a new encrypted disk with this disk's data instead (M1: migrateDisk, or an EncryptedDisk with sourceDiskId = ${diskId}), then move to it. Nothing was changed.`
        : `disk ${diskId} is encrypted and an encrypted disk cannot be converted into a plain one. Create a new plain disk with this disk's data instead (M1: migrateDisk with encrypt false, or an EncryptedDisk with encrypt = false and sourceDiskId = ${diskId}). Nothing was changed.`,
      { rule, property: "encrypt" },
    );
  }

  deleteDisk(diskId: string): void {
    this.freeing(() => this.run(() => {
      const d = this.mustDisk(diskId);
      needs(!d.attachment_id, ErrorCodes.Attached, `disk ${diskId} is attached to ${d.instance_id}; detach it first`, { property: "diskId" });
      this.blocks.dropMap(diskId, true);
      this.sql("DELETE FROM disks WHERE disk_id = ?").run(diskId);
      this.dropLineageIfUnused(d.lineage_id);
    }));
  }

  /** Deletes a lineage (and, after commit, its block file) once no disk or snapshot uses it. */
  private dropLineageIfUnused(lineageId: string): void {
    const used = this.sql("SELECT 1 FROM disks WHERE lineage_id = ? UNION ALL SELECT 1 FROM snapshots WHERE lineage_id = ? LIMIT 1").get(lineageId, lineageId);
    if (used) return;
    this.sql("DELETE FROM free_slots WHERE lineage_id = ?").run(lineageId);
    this.sql("DELETE FROM lineages WHERE lineage_id = ?").run(lineageId);
    this.sql("INSERT OR IGNORE INTO dead_lineages (lineage_id, deleted_at) VALUES (?, ?)").run(lineageId, nowIso());
    this.afterCommit.push(() => {
      this.kms.releaseLineage(lineageId);
      this.removeDeadLineage(lineageId);
    });
  }

  copyDiskData(sourceDiskId: string, targetDiskId: string, onProgress?: (p: MigrateProgress) => void): MigrateProgress {
    const [src, dst] = this.view(() => [this.mustDisk(sourceDiskId, "sourceDiskId"), this.mustDisk(targetDiskId, "targetDiskId")]);
    needs(src.disk_id !== dst.disk_id, ErrorCodes.InvalidParameter, "source and target disks must differ", { property: "targetDiskId" });
    needs(!dst.attachment_id, ErrorCodes.Attached, `target disk ${targetDiskId} is attached to ${dst.instance_id}; detach it before copying data onto it`, { property: "targetDiskId" });
    needs(dst.size_gb >= src.size_gb, ErrorCodes.DiskSizeNotMatch, `target disk ${targetDiskId} (${dst.size_gb} GB) is smaller than source ${sourceDiskId} (${src.size_gb} GB)`, { property: "sizeGb" });
    this.openOwner(src.disk_id);
    this.openOwner(dst.disk_id);
    // Keys this call derives only for the copy are zeroed when it ends (K4: in memory only while served).
    const transient = [src.lineage_id, dst.lineage_id].filter((l) => !this.kms.holds(l));
    try {
      return this.copyUnits(src, dst, onProgress);
    } finally {
      for (const l of transient) this.kms.releaseLineage(l);
    }
  }

  private copyUnits(src: DiskRow, dst: DiskRow, onProgress?: (p: MigrateProgress) => void): MigrateProgress {
    const targetDiskId = dst.disk_id;
    const total = src.units * UNIT;
    const progress: MigrateProgress = { copiedBytes: 0, totalBytes: total, skippedBytes: src.size_gb * GiB - total };
    // The target becomes an exact copy: whatever it held is dropped first.
    this.run(() => this.blocks.dropMap(dst.disk_id));
    this.blocks.copyAll(
      this.owner(src.disk_id, src),
      this.owner(dst.disk_id, dst),
      (fn) => this.run(() => {
        needs(this.diskRow(dst.disk_id), ErrorCodes.DiskNotFound, `target disk ${targetDiskId} was deleted during the copy`);
        fn();
      }),
      (n) => {
        progress.copiedBytes += n * UNIT;
        onProgress?.({ ...progress });
      },
    );
    progress.totalBytes = Math.max(total, progress.copiedBytes);
    return progress;
  }

  migrateDisk(
    input: { sourceDiskId: string; encrypt: boolean; zone?: string; diskType?: DiskType; sizeGb?: number; name?: string; tags?: Record<string, string>; clientToken?: string; owner?: string },
    onProgress?: (p: MigrateProgress) => void,
  ): Disk {
    checkInput(input, "migrateDisk");
    const token = checkToken(input.clientToken);
    if (input.owner !== undefined) checkOwner(input.owner);
    needs(typeof input.encrypt === "boolean", ErrorCodes.InvalidParameterValue, "encrypt must be true or false: the encryption of the new disk", { property: "encrypt" });
    const src = this.view(() => this.mustDisk(input.sourceDiskId, "sourceDiskId"));
    if (input.zone !== undefined) {
      const region = regionOfZone(input.zone);
      needs(
        region === src.region,
        ErrorCodes.InvalidParameter,
        `migration copies data between two disks attached in one place, so the new disk must be in the source's region ${src.region}, not ${region}${src.encrypted ? " (encrypted data cannot leave its region's KMS, S4)" : "; to move plain data to another region, copy a snapshot (copySnapshot)"}`,
        { property: "zone", rule: src.encrypted ? "S4" : undefined },
      );
    }
    needs(input.sizeGb === undefined || (typeof input.sizeGb === "number" && input.sizeGb >= src.size_gb), ErrorCodes.DiskSizeNotMatch, `the new disk must be at least the source's ${src.size_gb} GB, got ${show(input.sizeGb)}`, { property: "sizeGb" });
    const params = { sourceDiskId: src.disk_id, encrypt: input.encrypt, zone: input.zone, diskType: input.diskType, sizeGb: input.sizeGb, name: input.name, tags: input.tags };
    let made = false;
    // Phase 1: the target disk, marked as a migration in progress (source_disk_id set, migrated_at null).
    const target = this.run(() =>
      this.idempotent(token, "MigrateDisk", params, (id) => this.diskRow(id) ?? null, () => {
        const d = this.createDisk({
          zone: input.zone ?? src.zone,
          sizeGb: input.sizeGb ?? src.size_gb,
          diskType: input.diskType ?? src.disk_type,
          diskUsage: "DATA_DISK",
          encrypt: input.encrypt,
          name: input.name ?? (src.name ? `${src.name}-${input.encrypt ? "encrypted" : "plain"}` : ""),
          tags: input.tags,
        });
        this.sql("UPDATE disks SET source_disk_id = ? WHERE disk_id = ?").run(src.disk_id, d.diskId);
        // Tagged with the DUMPING disk itself: a migration killed mid-copy still lists as its owner's.
        if (input.owner !== undefined) this.recordOwner(d.diskId, input.owner);
        made = true;
        return { id: d.diskId, value: this.diskRow(d.diskId) as DiskRow };
      }),
    );
    if (target.migrated_at) return this.toDisk(target);
    // Phase 2: the copy (a retry with the same token, or resumeMigration, redoes it from the
    // start), then the mark. Until then the disk is DUMPING and cannot be attached.
    try {
      return this.finishMigration(src, target, onProgress);
    } catch (e) {
      if (made) {
        try {
          this.deleteDisk(target.disk_id); // nothing half-made stays behind a failed first attempt
        } catch {
          /* it stays DUMPING; a retry or a delete resolves it */
        }
      }
      throw e;
    }
  }

  /** Phase 2 of a migration: the whole copy onto the DUMPING target, then the mark that ends DUMPING. */
  private finishMigration(src: DiskRow, target: DiskRow, onProgress?: (p: MigrateProgress) => void): Disk {
    this.copyDiskData(src.disk_id, target.disk_id, onProgress);
    this.run(() => {
      needs(this.diskRow(src.disk_id), ErrorCodes.DiskNotFound, `source disk ${src.disk_id} was deleted during the copy; delete ${target.disk_id}`, { property: "sourceDiskId" });
      this.sql("UPDATE disks SET migrated_at = ? WHERE disk_id = ?").run(nowIso(), target.disk_id);
    });
    return this.getDisk(target.disk_id);
  }

  resumeMigration(targetDiskId: string, onProgress?: (p: MigrateProgress) => void): Disk {
    const target = this.view(() => this.mustDisk(targetDiskId));
    needs(target.source_disk_id && !target.migrated_at, ErrorCodes.InvalidParameter, `disk ${targetDiskId} is not DUMPING: it is no interrupted migration target${target.source_disk_id ? ` (its migration from ${target.source_disk_id} completed)` : ""}; nothing to resume`, { property: "diskId" });
    const src = this.view(() => this.diskRow(target.source_disk_id as string));
    needs(src, ErrorCodes.DiskNotFound, `disk ${targetDiskId} was receiving the data of ${target.source_disk_id}, which no longer exists, so its migration cannot be resumed; delete it (encdisk delete-disk ${targetDiskId})`, { property: "sourceDiskId" });
    return this.finishMigration(src, target, onProgress);
  }

  // ---- snapshots -------------------------------------------------------------------------------

  private toSnapshot(r: SnapshotRow): Snapshot {
    return {
      snapshotId: r.snapshot_id,
      name: r.name,
      diskId: r.disk_id,
      zone: r.zone,
      region: r.region,
      encrypted: !!r.encrypted,
      kmsKeyId: r.kms_key_id,
      sizeGb: r.size_gb,
      state: r.state,
      copiedFromSnapshotId: r.copied_from,
      createdAt: r.created_at,
      usedBytes: r.units * UNIT,
    };
  }

  private snapshotRow(snapshotId: string): SnapshotRow | undefined {
    if (typeof snapshotId !== "string") return undefined;
    return this.sql(`${SNAPSHOT_SELECT} WHERE s.snapshot_id = ?`).get(snapshotId) as SnapshotRow | undefined;
  }

  private mustSnapshot(snapshotId: string, property = "snapshotId"): SnapshotRow {
    checkId(snapshotId, "snap", property, ErrorCodes.SnapshotNotFound);
    const r = this.snapshotRow(snapshotId);
    needs(r, ErrorCodes.SnapshotNotFound, `snapshot ${snapshotId} does not exist (deleted, or never created here); list snapshots with: encdisk snapshots`, { property });
    return r;
  }

  createSnapshot(input: { diskId: string; name?: string; clientToken?: string }): Snapshot {
    checkInput(input, "createSnapshot");
    const token = checkToken(input.clientToken);
    const name = checkName(input.name);
    return this.run(() =>
      this.idempotent(token, "CreateSnapshot", { diskId: input.diskId, name }, (id) => { const r = this.snapshotRow(id); return r ? this.toSnapshot(r) : null; }, () => {
        const d = this.mustDisk(input.diskId);
        const snapshotId = newId("snap");
        // S1/S2, K3, W2: a snapshot shares the disk's units, so it has the disk's encryption and key.
        if (d.encrypted) this.kmsCall(d.region, "CreateSnapshot", snapshotId, "Decrypt");
        this.sql(
          `INSERT INTO snapshots (snapshot_id, name, disk_id, zone, region, encrypted, kms_key_id, size_gb, state, lineage_id, copied_from, client_token, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'NORMAL', ?, NULL, NULL, ?)`,
        ).run(snapshotId, name, d.disk_id, d.zone, d.region, d.encrypted, d.kms_key_id, d.size_gb, d.lineage_id, nowIso());
        this.blocks.shareMap(d.disk_id, snapshotId);
        return { id: snapshotId, value: this.toSnapshot(this.snapshotRow(snapshotId) as SnapshotRow) };
      }),
    );
  }

  getSnapshot(snapshotId: string): Snapshot {
    return this.toSnapshot(this.view(() => this.mustSnapshot(snapshotId)));
  }

  findSnapshot(snapshotId: string): Snapshot | null {
    const r = this.view(() => this.snapshotRow(snapshotId));
    return r ? this.toSnapshot(r) : null;
  }

  listSnapshots(filterIn: { diskId?: string; region?: string } = {}): Snapshot[] {
    const filter = checkFilter(filterIn, ["diskId", "region"]) as { diskId?: string; region?: string };
    return this.view(() => {
      const where: string[] = [];
      const args: string[] = [];
      if (filter.diskId) (where.push("s.disk_id = ?"), args.push(filter.diskId));
      if (filter.region) (where.push("s.region = ?"), args.push(filter.region));
      return (this.sql(`${SNAPSHOT_SELECT} ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY s.created_at, s.snapshot_id`).all(...args) as SnapshotRow[]).map((r) => this.toSnapshot(r));
    });
  }

  setSnapshotEncryption(snapshotId: string, encrypt: boolean): never {
    const s = this.view(() => this.mustSnapshot(snapshotId));
    const rule: RuleId = s.encrypted ? "S2" : "S1";
    throw new EngineError(
      ErrorCodes.SnapshotEncryptConversion,
      s.encrypted
        ? `snapshot ${snapshotId} is encrypted and cannot be converted into a non-encrypted snapshot${encrypt ? " (it is already encrypted)" : ""}; create a disk from it, copy the data onto a new plain disk (M1), and snapshot that. Nothing was changed.`
        : `snapshot ${snapshotId} is not encrypted and cannot be converted into an encrypted snapshot${encrypt ? "" : " (it is already plain)"}; create a disk from it, copy the data onto a new encrypted disk (M1), and snapshot that. Nothing was changed.`,
      { rule, property: "encrypt" },
    );
  }

  deleteSnapshot(snapshotId: string): void {
    this.freeing(() => this.run(() => {
      const s = this.mustSnapshot(snapshotId);
      const images = (this.sql("SELECT image_id, snapshot_ids FROM images").all() as { image_id: string; snapshot_ids: string }[]).filter((i) => (JSON.parse(i.snapshot_ids) as string[]).includes(snapshotId));
      needs(images.length === 0, ErrorCodes.InUse, `snapshot ${snapshotId} is used by image ${images.map((i) => i.image_id).join(", ")}; delete the image first`, { property: "snapshotId" });
      this.blocks.dropMap(snapshotId, true);
      this.sql("DELETE FROM snapshots WHERE snapshot_id = ?").run(snapshotId);
      this.dropLineageIfUnused(s.lineage_id);
    }));
  }

  applySnapshot(snapshotId: string, diskId: string): Disk {
    return this.run(() => {
      const s = this.mustSnapshot(snapshotId);
      const d = this.mustDisk(diskId);
      needs(s.disk_id === d.disk_id, ErrorCodes.SnapshotNotFromDisk, `snapshot ${snapshotId} was taken from ${s.disk_id}, not ${diskId}; a snapshot rolls back only onto its own disk. To get its data on another disk, create a disk from the snapshot`, { property: "snapshotId" });
      // A cross-region copy keeps its source's disk id but has its own lineage (and region): it is not a snapshot of this disk's blocks.
      needs(s.lineage_id === d.lineage_id, ErrorCodes.SnapshotNotFromDisk, `snapshot ${snapshotId} is a copy in ${s.region} of a snapshot of ${diskId} (in ${d.region}); a disk rolls back only to its own snapshots. To get its data, create a disk from the copy in ${s.region}`, { property: "snapshotId" });
      needs(!d.attachment_id, ErrorCodes.Attached, `disk ${diskId} is attached to ${d.instance_id}; detach it before rolling back to ${snapshotId}`, { property: "diskId" });
      if (d.encrypted) this.kmsCall(d.region, "ApplySnapshot", diskId, "Decrypt");
      this.blocks.dropMap(diskId);
      this.blocks.shareMap(snapshotId, diskId);
      return this.toDisk(this.diskRow(diskId) as DiskRow);
    });
  }

  copySnapshot(input: { snapshotId: string; destinationRegion: string; name?: string; owner?: string }): Snapshot {
    checkInput(input, "copySnapshot");
    const name = checkName(input.name);
    if (input.owner !== undefined) checkOwner(input.owner);
    assertRegion(input.destinationRegion, "destinationRegion");
    const s = this.view(() => this.mustSnapshot(input.snapshotId));
    checkCopy(s, input.destinationRegion);
    return this.copySnapshotsStaged([s], input.destinationRegion, [name || s.name], ([id]) => {
      if (input.owner !== undefined) this.recordOwner(id, input.owner); // tagged with the copy, atomically
      return this.toSnapshot(this.snapshotRow(id) as SnapshotRow);
    });
  }

  /**
   * Copies plain snapshots to another region without holding the write lock for the copy (D3):
   * 1. one short transaction creates each copy's lineage, marked as a copy in progress
   *    (`meta` key `copying:<lineage>`, with a heartbeat);
   * 2. the units are copied in batches (`copyAll`, 64 units per transaction), under the copy's
   *    future snapshot id, which no snapshot row names yet: nothing of it is visible;
   * 3. one last transaction checks every source still exists (snapshots never change, so one
   *    that still exists was copied whole), inserts the snapshot rows, clears the marks and
   *    runs `commit` (copyImage inserts its image there): the copy appears all at once.
   * A failure drops what was staged; a killed copy leaves a mark whose heartbeat stops, and
   * `sweepOrphans` drops it once older than ORPHAN_GRACE_MS.
   */
  private copySnapshotsStaged<T>(sources: SnapshotRow[], destinationRegion: string, names: string[], commit: (snapshotIds: string[]) => T): T {
    /* Precondition: not inside another transaction, which would hold the write lock for the whole copy (D3). */
    needs(this.depth === 0, ErrorCodes.InvalidParameter, "a snapshot copy runs its own short transactions and cannot join another one; pass its owner in the input instead of wrapping it in owned()");
    const staged = sources.map(() => ({ snapshotId: newId("snap"), lineageId: newId("lin") }));
    for (const s of sources) this.openOwner(s.snapshot_id); // D7/D10: the source's seal and map hold
    const beat = (st: { snapshotId: string; lineageId: string }) =>
      this.sql("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v").run(`copying:${st.lineageId}`, JSON.stringify({ owner: st.snapshotId, beat: Date.now() }));
    const stillThere = (s: SnapshotRow) => needs(this.snapshotRow(s.snapshot_id), ErrorCodes.SnapshotNotFound, `snapshot ${s.snapshot_id} was deleted during the copy; nothing was copied`, { property: "snapshotId" });
    this.run(() => {
      for (const st of staged) {
        this.sql("INSERT INTO lineages (lineage_id, region, encrypted, next_slot, created_at) VALUES (?, ?, 0, 0, ?)").run(st.lineageId, destinationRegion, nowIso());
        this.integrity.sealLineage(st.lineageId); // D7
        beat(st);
      }
    });
    try {
      sources.forEach((s, i) => {
        const st = staged[i];
        const batch = (fn: () => void) =>
          this.run(() => {
            stillThere(s);
            beat(st);
            fn();
          });
        this.blocks.copyAll(this.owner(s.snapshot_id, s), { ownerId: st.snapshotId, lineageId: st.lineageId, key: null }, batch, () => undefined);
      });
      return this.run(() => {
        const now = nowIso();
        const zone = `${destinationRegion}-${listRegions().find((r) => r.region === destinationRegion)?.zones[0].split("-").pop()}`;
        sources.forEach((s, i) => {
          stillThere(s);
          // Not swept meanwhile (a copier stalled past the grace period loses its staging): nothing is published.
          needs(this.sql("SELECT 1 FROM meta WHERE k = ?").get(`copying:${staged[i].lineageId}`) && this.sql("SELECT 1 FROM lineages WHERE lineage_id = ?").get(staged[i].lineageId), ErrorCodes.ResourceBusy, `the copy of ${s.snapshot_id} stalled past ${ORPHAN_GRACE_MS} ms and its staging was swept; nothing was copied, retry the copy`);
          this.sql(
            `INSERT INTO snapshots (snapshot_id, name, disk_id, zone, region, encrypted, kms_key_id, size_gb, state, lineage_id, copied_from, client_token, created_at)
             VALUES (?, ?, ?, ?, ?, 0, NULL, ?, 'NORMAL', ?, ?, NULL, ?)`,
          ).run(staged[i].snapshotId, names[i], s.disk_id, zone, destinationRegion, s.size_gb, staged[i].lineageId, s.snapshot_id, now);
          this.integrity.sealMap(staged[i].snapshotId, staged[i].lineageId); // D10: the staged map, now owned
          this.sql("DELETE FROM meta WHERE k = ?").run(`copying:${staged[i].lineageId}`);
        });
        return commit(staged.map((st) => st.snapshotId));
      });
    } catch (e) {
      try {
        this.run(() => staged.forEach((st) => this.dropStaged(st.lineageId, st.snapshotId)));
      } catch {
        /* sweepOrphans drops it once its heartbeat is stale */
      }
      throw e;
    }
  }

  /** Drops a staged copy (inside the caller's transaction): its units, its lineage, its mark; the block file after commit. */
  private dropStaged(lineageId: string, ownerId: string): void {
    this.blocks.dropMap(ownerId);
    this.sql("DELETE FROM meta WHERE k = ?").run(`copying:${lineageId}`);
    this.dropLineageIfUnused(lineageId);
  }

  // ---- instances -------------------------------------------------------------------------------

  private toInstance(r: InstanceRow): Instance {
    return { instanceId: r.instance_id, name: r.name, zone: r.zone, region: r.region, instanceType: r.instance_type, localStorage: !!r.local_storage, createdAt: r.created_at };
  }

  private mustInstance(instanceId: string): InstanceRow {
    checkId(instanceId, "ins", "instanceId", ErrorCodes.InstanceNotFound);
    const r = this.sql("SELECT * FROM instances WHERE instance_id = ?").get(instanceId) as InstanceRow | undefined;
    needs(r, ErrorCodes.InstanceNotFound, `instance ${instanceId} does not exist; list instances with: encdisk instances`, { property: "instanceId" });
    return r;
  }

  createInstance(input: { zone: string; instanceType: string; localStorage?: boolean; name?: string; clientToken?: string }): Instance {
    checkInput(input, "createInstance");
    const token = checkToken(input.clientToken);
    const region = regionOfZone(input.zone);
    const fam = instanceFamily(input.instanceType);
    needs(input.localStorage === undefined || typeof input.localStorage === "boolean", ErrorCodes.InvalidParameterValue, "localStorage must be true or false", { property: "localStorage" });
    needs(
      !(fam.localStorage && input.localStorage === false),
      ErrorCodes.InvalidParameterValue,
      `${fam.family} instances come with local storage; localStorage cannot be false for ${show(input.instanceType)} (omit it, or choose a family without local storage)`,
      { property: "localStorage" },
    );
    const localStorage = input.localStorage ?? fam.localStorage;
    const name = checkName(input.name);
    return this.run(() =>
      this.idempotent(token, "CreateInstance", { zone: input.zone, instanceType: input.instanceType, localStorage, name }, (id) => { const r = this.sql("SELECT * FROM instances WHERE instance_id = ?").get(id) as InstanceRow | undefined; return r ? this.toInstance(r) : null; }, () => {
        const instanceId = newId("ins");
        this.sql("INSERT INTO instances (instance_id, name, zone, region, instance_type, local_storage, client_token, created_at) VALUES (?, ?, ?, ?, ?, ?, NULL, ?)")
          .run(instanceId, name, input.zone, region, input.instanceType, localStorage ? 1 : 0, nowIso());
        return { id: instanceId, value: this.toInstance(this.mustInstance(instanceId)) };
      }),
    );
  }

  getInstance(instanceId: string): Instance {
    return this.toInstance(this.view(() => this.mustInstance(instanceId)));
  }

  findInstance(instanceId: string): Instance | null {
    const r = this.view(() => this.sql("SELECT * FROM instances WHERE instance_id = ?").get(instanceId) as InstanceRow | undefined);
    return r ? this.toInstance(r) : null;
  }

  listInstances(): Instance[] {
    return this.view(() => (this.sql("SELECT * FROM instances ORDER BY created_at, instance_id").all() as InstanceRow[]).map((r) => this.toInstance(r)));
  }

  deleteInstance(instanceId: string): void {
    this.run(() => {
      this.mustInstance(instanceId);
      const att = this.sql("SELECT disk_id FROM attachments WHERE instance_id = ?").all(instanceId) as { disk_id: string }[];
      needs(att.length === 0, ErrorCodes.InUse, `instance ${instanceId} still has disks attached (${att.map((a) => a.disk_id).join(", ")}); detach them first`, { property: "instanceId" });
      this.sql("DELETE FROM instances WHERE instance_id = ?").run(instanceId);
    });
  }

  // ---- attachments -----------------------------------------------------------------------------

  private toAttachment(r: AttachmentRow): Attachment {
    const diskBytes = r.size_gb * GiB;
    return {
      attachmentId: r.attachment_id,
      diskId: r.disk_id,
      instanceId: r.instance_id,
      zone: r.zone,
      encrypted: !!r.encrypted,
      capacityBytes: r.capacity_bytes,
      capacityGb: r.capacity_bytes / GiB,
      diskSizeGb: r.size_gb,
      reattachRequired: diskBytes !== r.capacity_bytes,
      attachedAt: r.attached_at,
      endpoint: `nbds://${r.attachment_id}@${this.nbdAddress}/${r.attachment_id}`,
      pskIdentity: r.attachment_id,
      pskFile: this.pskPath(r.psk_file),
    };
  }

  private attachmentRow(attachmentId: string): AttachmentRow | undefined {
    if (typeof attachmentId !== "string") return undefined;
    return this.sql(`${ATTACHMENT_SELECT} WHERE a.attachment_id = ?`).get(attachmentId) as AttachmentRow | undefined;
  }

  private mustAttachment(attachmentId: string): AttachmentRow {
    const r = this.attachmentRow(attachmentId);
    needs(r, ErrorCodes.AttachmentNotFound, `attachment ${show(attachmentId)} does not exist (the disk was detached); list attachments with: encdisk attachments`, { property: "attachmentId" });
    return r;
  }

  attachDisk(input: { diskId: string; instanceId: string }): Attachment {
    checkInput(input, "attachDisk");
    return this.run(() => {
      const d = this.mustDisk(input.diskId);
      const ins = this.mustInstance(input.instanceId);
      if (d.attachment_id && d.instance_id === ins.instance_id) return this.toAttachment(this.mustAttachment(d.attachment_id));
      needs(!d.attachment_id, ErrorCodes.Attached, `disk ${d.disk_id} is already attached to ${d.instance_id}; a disk has at most one attachment, detach it first`, { property: "diskId" });
      needs(!(d.source_disk_id && !d.migrated_at), ErrorCodes.MigrationIncomplete, `disk ${d.disk_id} is DUMPING: it is still receiving the data of ${d.source_disk_id} (M1), or that copy was interrupted; rerun the migration (same clientToken) to finish it, or delete the disk`, { property: "diskId" });
      needs(d.zone === ins.zone, ErrorCodes.ZoneNotMatch, `disk ${d.disk_id} is in ${d.zone} but instance ${ins.instance_id} is in ${ins.zone}; a disk attaches only to an instance in its own availability zone`, { rule: "C1", property: "instanceId" });
      needs(!(d.encrypted && ins.local_storage), ErrorCodes.InstanceLocalStorage, `disk ${d.disk_id} is encrypted and instance ${ins.instance_id} (${ins.instance_type}) has local storage; encrypted disks cannot be attached to instances with local storage. Use an instance without local storage, or a plain disk`, { rule: "L7", property: "instanceId" });
      const attachmentId = newId("att");
      if (d.encrypted) {
        this.kmsCall(d.region, "AttachDisk", d.disk_id, "Decrypt");
      }
      const psk = this.newPsk(attachmentId);
      this.sql("INSERT INTO attachments (attachment_id, disk_id, instance_id, capacity_bytes, psk_file, psk_key, attached_at) VALUES (?, ?, ?, ?, ?, NULL, ?)")
        .run(attachmentId, d.disk_id, ins.instance_id, d.size_gb * GiB, psk.file, nowIso());
      this.afterCommit.push(() => this.writePskFile(attachmentId, this.pskPath(psk.file), psk.key));
      return this.toAttachment(this.mustAttachment(attachmentId));
    });
  }

  /**
   * W2: each attachment's NBD export needs TLS with its own random pre-shared key. The key is
   * kept with the attachment and its psktool-format file (`identity:hexkey`, 0600) is written
   * after commit, so a rolled-back or killed attach leaves no file; `sweepOrphans` rewrites a
   * file a killed process did not get to write.
   */
  private newPsk(attachmentId: string): { file: string; key: string } {
    return { file: path.join("nbd", `${attachmentId}.psk`), key: this.pskOf(attachmentId) };
  }

  /**
   * An attachment's PSK: HMAC-SHA256 of its id under a random per-engine secret, which the
   * state holds only wrapped by the KMS root key (D6, `Kms.nbdPskSecret`). Nothing
   * per-attachment is stored, so no key outlives its attachment in the state; attachment ids
   * are never reused, so the key of a detached attachment opens nothing.
   */
  private pskOf(attachmentId: string): string {
    const { secret, migrated } = this.kms.nbdPskSecret(this.engineId());
    if (migrated) this.afterCommit.push(() => this.purgeWal());
    try {
      return crypto.createHmac("sha256", secret).update(`encdisk/nbd-psk/v1|${attachmentId}`).digest("hex");
    } finally {
      zero(secret);
      scrubStack();
    }
  }

  private writePskFile(attachmentId: string, file: string, key: string): void {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, `${attachmentId}:${key}\n`, { mode: 0o600 });
    fs.renameSync(tmp, file);
  }

  detachDisk(attachmentIdOrDiskId: string): void {
    const id = attachmentIdOrDiskId;
    needs(typeof id === "string", ErrorCodes.AttachmentNotFound, `detach needs an attachment id (att-...) or a disk id (disk-...), got ${show(id)}`, { property: "attachmentId" });
    this.freeing(() => this.run(() => {
      const a = typeof id === "string" && id.startsWith("disk-") ? (this.sql(`${ATTACHMENT_SELECT} WHERE a.disk_id = ?`).get(id) as AttachmentRow | undefined) : this.attachmentRow(id);
      if (typeof id === "string" && id.startsWith("disk-")) {
        this.mustDisk(id);
        needs(a, ErrorCodes.NotAttached, `disk ${id} is not attached`, { property: "diskId" });
      }
      needs(a, ErrorCodes.AttachmentNotFound, `attachment ${id} does not exist (already detached?); list attachments with: encdisk attachments`, { property: "attachmentId" });
      if (a.encrypted) this.kmsCall(a.region, "DetachDisk", a.disk_id, "Encrypt");
      this.sql("DELETE FROM attachments WHERE attachment_id = ?").run(a.attachment_id);
      this.afterCommit.push(() => {
        fs.rmSync(this.pskPath(a.psk_file), { force: true });
        this.kms.releaseLineage(a.lineage_id);
        this.blocks.dropCache(a.lineage_id);
      });
    }));
  }

  getAttachment(attachmentId: string): Attachment {
    return this.toAttachment(this.view(() => this.mustAttachment(attachmentId)));
  }

  findAttachment(attachmentId: string): Attachment | null {
    const r = this.view(() => this.attachmentRow(attachmentId));
    return r ? this.toAttachment(r) : null;
  }

  listAttachments(filterIn: { instanceId?: string; diskId?: string } = {}): Attachment[] {
    const filter = checkFilter(filterIn, ["instanceId", "diskId"]) as { instanceId?: string; diskId?: string };
    return this.view(() => {
      const where: string[] = [];
      const args: string[] = [];
      if (filter.instanceId) (where.push("a.instance_id = ?"), args.push(filter.instanceId));
      if (filter.diskId) (where.push("a.disk_id = ?"), args.push(filter.diskId));
      return (this.sql(`${ATTACHMENT_SELECT} ${where.length ? "WHERE " + where.join(" AND ") : ""} ORDER BY a.attached_at, a.attachment_id`).all(...args) as AttachmentRow[]).map((r) => this.toAttachment(r));
    });
  }

  // ---- I/O through an attachment (W1) --------------------------------------------------------

  private ioTarget(attachmentId: string, offset: number, length: number, maxLength: number | null = MAX_IO_BYTES): { a: AttachmentRow; owner: Owner } {
    const a = this.view(() => this.mustAttachment(attachmentId));
    checkRange(offset, length, a.capacity_bytes, maxLength);
    this.openOwner(a.disk_id, a);
    return { a, owner: this.owner(a.disk_id, a) };
  }

  read(attachmentId: string, offset: number, length: number): Buffer {
    // A retry looks the attachment up again: a disk detached (or deleted) by the process that
    // moved units under the read is then reported, never read as zeros.
    for (let attempt = 0; ; attempt++) {
      const { owner } = this.ioTarget(attachmentId, offset, length);
      try {
        return this.blocks.read(owner, offset, length);
      } catch (e) {
        if (!(e instanceof StaleRead)) throw e;
        needs(attempt < 5, ErrorCodes.ResourceBusy, `${owner.ownerId} is being rewritten by another process; retry the read`);
      }
    }
  }

  /**
   * `read` for servers that keep several requests in flight: the engine's work is the same
   * (an asynchronous pipeline measured slower here, see docs/bench.md); a failure rejects.
   */
  async readAsync(attachmentId: string, offset: number, length: number): Promise<Buffer> {
    return this.read(attachmentId, offset, length);
  }

  /** `fn` inside a transaction that first checks the attachment still holds `diskId`. */
  private ioTx<T>(attachmentId: string, diskId: string, fn: () => T): () => T {
    return () => {
      const now = this.attachmentRow(attachmentId);
      needs(now && now.disk_id === diskId, ErrorCodes.NotAttached, `attachment ${attachmentId} was detached during the write; nothing was written`, { property: "attachmentId" });
      return fn();
    };
  }

  private commitIo(attachmentId: string, diskId: string, fn: () => void, lineageId?: string): void {
    try {
      this.run(this.ioTx(attachmentId, diskId, fn));
    } catch (e) {
      this.giveBackSpace(e, lineageId);
      throw e;
    }
  }

  /** D9: a write that failed on a full file system gives back the space its uncommitted slots took at the file's end. */
  private giveBackSpace(e: unknown, lineageId: string | undefined): void {
    if (!lineageId || !(e instanceof EngineError && e.code === ErrorCodes.DiskFull)) return;
    try {
      this.run(() => this.blocks.trimTail(lineageId));
    } catch {
      /* the next failed write, or check, tries again */
    }
  }

  /** A write's checks and its sealing, outside any transaction (the same for `write` and `writeAsync`). */
  private prepareIo(attachmentId: string, offset: number, data: Buffer): { a: AttachmentRow; owner: Owner; prepared: ReturnType<BlockStore["prepareWrite"]> } {
    const raw: unknown = data;
    needs(raw instanceof Uint8Array, ErrorCodes.InvalidParameterValue, "data must be a Buffer", { property: "data" });
    const buf = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    const { a, owner } = this.ioTarget(attachmentId, offset, buf.length);
    return { a, owner, prepared: this.blocks.prepareWrite(owner, offset, buf) };
  }

  write(attachmentId: string, offset: number, data: Buffer): void {
    const { a, owner, prepared } = this.prepareIo(attachmentId, offset, data);
    try {
      this.commitIo(attachmentId, a.disk_id, () => this.blocks.commitWrite(owner, prepared), a.lineage_id);
    } finally {
      this.blocks.release(prepared);
    }
  }

  /**
   * `write` for servers that keep several requests in flight: sealed outside the transaction
   * as `write`, committed through `runAsync` (D3), so waiting for another process's write lock
   * never blocks the caller's event loop.
   */
  async writeAsync(attachmentId: string, offset: number, data: Buffer): Promise<void> {
    const { a, owner, prepared } = this.prepareIo(attachmentId, offset, data);
    try {
      await this.runAsync(this.ioTx(attachmentId, a.disk_id, () => this.blocks.commitWrite(owner, prepared)));
    } catch (e) {
      this.giveBackSpace(e, a.lineage_id);
      throw e;
    } finally {
      this.blocks.release(prepared);
    }
  }

  /**
   * The transactions of one writeZeroes / trim (D1): a zeroing carries no payload, so it may
   * cover the whole device. Its cost is proportional to the units written in the range, not
   * to the range (only map rows that exist are visited), and it is applied in transactions of
   * at most ZERO_BATCH_UNITS units each (bounded transaction and memory): the first one also
   * zeroes the partial head and tail units. Each step is atomic, and the call returns (the NBD
   * reply goes out) only after the last one committed. A range that needs more than one step is
   * journaled: each step records, in its own transaction, where the zeroing continues (`meta`
   * `zeroing:<disk>`), and the last one clears it. A crash between two steps leaves the journal,
   * and the next engine open (or the next zeroing of that disk) rolls it forward to the end, so
   * no half-applied range stays visible after a crash. See docs/nbd.md.
   */
  private zeroSteps(attachmentId: string, offset: number, length: number): { start: number; lineageId: string; step: (from: number, first: boolean) => () => number | null } {
    const { a, owner } = this.ioTarget(attachmentId, offset, length, null);
    const plan = this.blocks.prepareZero(owner, offset, length);
    const step = (from: number, first: boolean) =>
      this.ioTx(attachmentId, a.disk_id, () => {
        if (first) {
          this.finishZeroing(a.disk_id); // an earlier zeroing of this disk cut by a crash, first
          this.blocks.commitWrite(owner, plan.ends);
        }
        const next = this.blocks.zeroUnits(owner, from, plan.last, ZERO_BATCH_UNITS);
        this.journalZeroing(a.disk_id, next === null ? null : { from: next, last: plan.last });
        return next;
      });
    return { start: plan.first, lineageId: a.lineage_id, step };
  }

  /** Records where a multi-step zeroing of `diskId` continues, or clears it (inside the step's transaction). */
  private journalZeroing(diskId: string, at: { from: number; last: number } | null): void {
    if (at) this.sql("INSERT INTO meta (k, v) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v").run(`zeroing:${diskId}`, JSON.stringify(at));
    else this.sql("DELETE FROM meta WHERE k = ?").run(`zeroing:${diskId}`);
  }

  /**
   * Rolls a journaled zeroing of `diskId` forward to its end (inside the caller's transaction):
   * what a crash between two steps left. Unmapping needs no key, only the map (and its MAC).
   */
  private finishZeroing(diskId: string): void {
    const m = this.sql("SELECT v FROM meta WHERE k = ?").get(`zeroing:${diskId}`) as { v: string } | undefined;
    if (!m) return;
    const d = this.diskRow(diskId);
    if (d) {
      const at = JSON.parse(m.v) as { from: number; last: number };
      const owner: Owner = { ownerId: diskId, lineageId: d.lineage_id, key: null };
      for (let from: number | null = at.from; from !== null; ) from = this.blocks.zeroUnits(owner, from, at.last, ZERO_BATCH_UNITS);
    }
    this.journalZeroing(diskId, null);
  }

  writeZeroes(attachmentId: string, offset: number, length: number): void {
    const { start, lineageId, step } = this.zeroSteps(attachmentId, offset, length);
    try {
      // `from` advances only once a step committed: a retried step redoes exactly its own work.
      for (let from: number | null = start, first = true; from !== null; first = false) from = this.run(step(from, first));
    } catch (e) {
      this.giveBackSpace(e, lineageId); // D9: the partial head and tail units of the first step
      throw e;
    }
  }

  /** `writeZeroes` through `runAsync` (D3): the event loop runs between steps and while the lock is taken. */
  async writeZeroesAsync(attachmentId: string, offset: number, length: number): Promise<void> {
    const { start, lineageId, step } = this.zeroSteps(attachmentId, offset, length);
    try {
      for (let from: number | null = start, first = true; from !== null; first = false) from = await this.runAsync(step(from, first));
    } catch (e) {
      this.giveBackSpace(e, lineageId);
      throw e;
    }
  }

  trim(attachmentId: string, offset: number, length: number): void {
    this.writeZeroes(attachmentId, offset, length);
  }

  trimAsync(attachmentId: string, offset: number, length: number): Promise<void> {
    return this.writeZeroesAsync(attachmentId, offset, length);
  }

  /** The flush's commit: with synchronous=FULL it fsyncs the WAL, making every earlier commit durable too. */
  private flushMark(): void {
    this.sql("INSERT INTO meta (k, v) VALUES ('last_flush', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v").run(nowIso());
  }

  /** fdatasync of the disk's block file; a full file system (ENOSPC, EDQUOT on thin or network storage) is DiskFull (D9). */
  private syncDisk(lineageId: string): void {
    try {
      this.blocks.syncDirty(lineageId); // this disk's writes, not every disk's of the process
    } catch (e) {
      throw this.diskFull(e);
    }
  }

  flush(attachmentId: string): void {
    const a = this.view(() => this.mustAttachment(attachmentId));
    this.syncDisk(a.lineage_id);
    this.db.pragma("synchronous = FULL");
    try {
      this.run(() => this.flushMark());
    } finally {
      this.db.pragma("synchronous = NORMAL");
    }
  }

  /** `flush` through `runAsync` (D3). */
  async flushAsync(attachmentId: string): Promise<void> {
    const a = this.view(() => this.mustAttachment(attachmentId));
    this.syncDisk(a.lineage_id);
    await this.runAsync(() => this.flushMark(), true);
  }

  // ---- images -------------------------------------------------------------------------------------

  private toImage(r: ImageRow): Image {
    return {
      imageId: r.image_id,
      name: r.name,
      region: r.region,
      snapshotIds: JSON.parse(r.snapshot_ids) as string[],
      encrypted: !!r.encrypted,
      sharedWith: JSON.parse(r.shared_with) as string[],
      copiedFromImageId: r.copied_from,
      createdAt: r.created_at,
    };
  }

  private mustImage(imageId: string): ImageRow {
    checkId(imageId, "img", "imageId", ErrorCodes.ImageNotFound);
    const r = this.sql("SELECT * FROM images WHERE image_id = ?").get(imageId) as ImageRow | undefined;
    needs(r, ErrorCodes.ImageNotFound, `image ${imageId} does not exist; list images with: encdisk images`, { property: "imageId" });
    return r;
  }

  createImage(input: { name: string; snapshotIds: string[]; clientToken?: string }): Image {
    checkInput(input, "createImage");
    const token = checkToken(input.clientToken);
    const name = checkName(input.name);
    needs(Array.isArray(input.snapshotIds) && input.snapshotIds.length > 0 && input.snapshotIds.length <= 16, ErrorCodes.InvalidParameterValue, "snapshotIds must list 1 to 16 snapshots", { property: "snapshotIds" });
    for (const id of input.snapshotIds) checkId(id, "snap", "snapshotIds", ErrorCodes.SnapshotNotFound);
    return this.run(() =>
      this.idempotent(token, "CreateImage", { name, snapshotIds: input.snapshotIds }, (id) => { const r = this.sql("SELECT * FROM images WHERE image_id = ?").get(id) as ImageRow | undefined; return r ? this.toImage(r) : null; }, () => {
        const snaps = input.snapshotIds.map((id) => this.mustSnapshot(id, "snapshotIds"));
        const region = snaps[0].region;
        needs(snaps.every((s) => s.region === region), ErrorCodes.InvalidParameter, `all snapshots of an image must be in one region; got ${[...new Set(snaps.map((s) => s.region))].join(", ")}`, { property: "snapshotIds" });
        const imageId = newId("img");
        this.sql("INSERT INTO images (image_id, name, region, snapshot_ids, encrypted, shared_with, copied_from, client_token, created_at) VALUES (?, ?, ?, ?, ?, '[]', NULL, NULL, ?)")
          .run(imageId, name, region, JSON.stringify(snaps.map((s) => s.snapshot_id)), snaps.some((s) => s.encrypted) ? 1 : 0, nowIso());
        return { id: imageId, value: this.toImage(this.mustImage(imageId)) };
      }),
    );
  }

  getImage(imageId: string): Image {
    return this.toImage(this.view(() => this.mustImage(imageId)));
  }

  findImage(imageId: string): Image | null {
    const r = this.view(() => this.sql("SELECT * FROM images WHERE image_id = ?").get(imageId) as ImageRow | undefined);
    return r ? this.toImage(r) : null;
  }

  listImages(): Image[] {
    return this.view(() => (this.sql("SELECT * FROM images ORDER BY created_at, image_id").all() as ImageRow[]).map((r) => this.toImage(r)));
  }

  shareImage(imageId: string, accountIds: string[]): Image {
    needs(Array.isArray(accountIds) && accountIds.length > 0 && accountIds.every((a) => typeof a === "string" && /^\d{5,20}$/.test(a)), ErrorCodes.InvalidParameterValue, "accountIds must list account ids (5 to 20 digits)", { property: "accountIds" });
    return this.run(() => {
      const img = this.mustImage(imageId);
      needs(!img.encrypted, ErrorCodes.EncryptedImageShare, `image ${imageId} contains encrypted snapshots, and an image with encrypted snapshots cannot be shared; build the image from plain snapshots to share it. Nothing was changed.`, { rule: "S3", property: "accountIds" });
      needs(!accountIds.includes(ACCOUNT_ID), ErrorCodes.InvalidParameterValue, `account ${ACCOUNT_ID} owns the image; share with other accounts`, { property: "accountIds" });
      const shared = [...new Set([...(JSON.parse(img.shared_with) as string[]), ...accountIds])].sort();
      this.sql("UPDATE images SET shared_with = ? WHERE image_id = ?").run(JSON.stringify(shared), imageId);
      return this.toImage(this.mustImage(imageId));
    });
  }

  copyImage(input: { imageId: string; destinationRegion: string; name?: string; owner?: string }): Image {
    checkInput(input, "copyImage");
    const name = checkName(input.name);
    if (input.owner !== undefined) checkOwner(input.owner);
    assertRegion(input.destinationRegion, "destinationRegion");
    const { img, sources } = this.view(() => {
      const img = this.mustImage(input.imageId);
      needs(!img.encrypted, ErrorCodes.EncryptedCrossRegionCopy, `image ${img.image_id} was created from encrypted snapshots, and such images cannot be copied across regions. Nothing was changed.`, { rule: "S4", property: "imageId" });
      needs(input.destinationRegion !== img.region, ErrorCodes.InvalidParameter, `image ${img.image_id} is already in ${img.region}; choose another destinationRegion`, { property: "destinationRegion" });
      return { img, sources: (JSON.parse(img.snapshot_ids) as string[]).map((id) => this.mustSnapshot(id)) };
    });
    for (const s of sources) checkCopy(s, input.destinationRegion);
    // The snapshots are copied in short transactions; the image and its copies appear in one (D3).
    return this.copySnapshotsStaged(sources, input.destinationRegion, sources.map((s) => `${s.snapshot_id}-copy`), (copies) => {
      needs(this.sql("SELECT 1 FROM images WHERE image_id = ?").get(img.image_id), ErrorCodes.ImageNotFound, `image ${img.image_id} was deleted during the copy; nothing was copied`, { property: "imageId" });
      const imageId = newId("img");
      this.sql("INSERT INTO images (image_id, name, region, snapshot_ids, encrypted, shared_with, copied_from, client_token, created_at) VALUES (?, ?, ?, ?, 0, '[]', ?, NULL, ?)")
        .run(imageId, name || img.name, input.destinationRegion, JSON.stringify(copies), img.image_id, nowIso());
      if (input.owner !== undefined) for (const id of [imageId, ...copies]) this.recordOwner(id, input.owner); // tagged with the copy, atomically
      return this.toImage(this.mustImage(imageId));
    });
  }

  deleteImage(imageId: string): void {
    this.run(() => {
      this.mustImage(imageId);
      this.sql("DELETE FROM images WHERE image_id = ?").run(imageId);
    });
  }

  // ---- verification -------------------------------------------------------------------------------

  // ---- owners (tags naming who created a resource, as real clouds carry them) ------------

  owned<T>(owner: string, make: () => T, idOf: (made: T) => string): T {
    checkOwner(owner);
    return this.run(() => {
      const made = make();
      this.recordOwner(idOf(made), owner);
      return made;
    });
  }

  setOwner(resourceId: string, owner: string): void {
    checkOwner(owner);
    this.run(() => this.recordOwner(resourceId, owner));
  }

  private recordOwner(resourceId: string, owner: string): void {
    this.sql("INSERT OR REPLACE INTO owners (resource_id, owner, created_at) VALUES (?, ?, ?)").run(resourceId, owner, nowIso());
  }

  listOwned(ownerPrefix = ""): OwnedResource[] {
    needs(typeof ownerPrefix === "string" && ownerPrefix.length <= 1024, ErrorCodes.InvalidParameterValue, `an owner prefix is a string of at most 1024 characters, got ${show(ownerPrefix)}`, { property: "ownerPrefix" });
    return this.view(() => {
      const rows = this.sql("SELECT resource_id, owner, created_at FROM owners WHERE substr(owner, 1, ?) = ? ORDER BY created_at, resource_id").all(ownerPrefix.length, ownerPrefix) as Array<{ resource_id: string; owner: string; created_at: string }>;
      const exists: Record<OwnedResource["kind"], (id: string) => boolean> = {
        disk: (id) => this.sql("SELECT 1 FROM disks WHERE disk_id = ?").get(id) !== undefined,
        snapshot: (id) => this.sql("SELECT 1 FROM snapshots WHERE snapshot_id = ?").get(id) !== undefined,
        instance: (id) => this.sql("SELECT 1 FROM instances WHERE instance_id = ?").get(id) !== undefined,
        attachment: (id) => this.sql("SELECT 1 FROM attachments WHERE attachment_id = ?").get(id) !== undefined,
        image: (id) => this.sql("SELECT 1 FROM images WHERE image_id = ?").get(id) !== undefined,
      };
      const out: OwnedResource[] = [];
      for (const r of rows) {
        const kind = kindOfId(r.resource_id);
        if (kind && exists[kind](r.resource_id)) out.push({ resourceId: r.resource_id, kind, owner: r.owner, createdAt: r.created_at });
      }
      return out;
    });
  }

  verifyNoKeyMaterial(): { filesScanned: number; bytesScanned: number; findings: string[] } {
    const lineages = this.view(() => this.sql("SELECT lineage_id, region, encrypted FROM lineages").all() as { lineage_id: string; region: string; encrypted: number }[]);
    const secrets = this.kms.allSecrets(lineages);
    const findings: string[] = [];
    let filesScanned = 0;
    let bytesScanned = 0;
    try {
      const walk = (dir: string): void => {
        for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
          const full = path.join(dir, e.name);
          if (e.isDirectory()) walk(full);
          else if (e.isFile()) {
            filesScanned++;
            bytesScanned += scanFile(full, secrets, findings);
          }
        }
      };
      walk(this.dir);
    } finally {
      for (const s of secrets) zero(s.bytes);
    }
    return { filesScanned, bytesScanned, findings };
  }

  check(): { problems: string[]; disks: number; snapshots: number; units: number } {
    // First remove what killed processes may leave and is safe to remove (see sweepOrphans):
    // those are expected leftovers, not broken invariants. What remains is a real problem.
    this.sweepOrphans();
    // D7/D10: every lineage's seal and every block map's MAC (sealing them first where a root
    // key is there and the directory is not sealed yet).
    const sealProblems = this.run(() => {
      const found = new Set<string>();
      try {
        for (const x of this.integrity.sealAll(this.allLineages(), this.allOwners())) found.add(x);
        if (this.integrity.key(false)) {
          for (const l of this.allLineages()) {
            const x = this.integrity.lineageProblem(l);
            if (x) found.add(x);
          }
          for (const o of this.allOwners()) {
            const x = this.integrity.mapProblem(o.ownerId, o.lineageId);
            if (x) found.add(x);
          }
        }
      } catch (e) {
        found.add((e as Error).message);
      }
      return [...found];
    });
    return this.view(() => {
      const p: string[] = [...sealProblems];
      const q = <T>(sql: string, ...args: unknown[]) => this.sql(sql).all(...args) as T[];
      for (const r of q<{ owner_id: string; idx: number }>(
        "SELECT owner_id, idx FROM units u WHERE NOT EXISTS (SELECT 1 FROM disks d WHERE d.disk_id = u.owner_id AND d.lineage_id = u.lineage_id) AND NOT EXISTS (SELECT 1 FROM snapshots s WHERE s.snapshot_id = u.owner_id AND s.lineage_id = u.lineage_id) AND NOT EXISTS (SELECT 1 FROM meta m WHERE m.k = 'copying:' || u.lineage_id)",
      ))
        p.push(`unit ${r.idx} of ${r.owner_id} belongs to no disk or snapshot of its lineage`);
      for (const r of q<{ owner_id: string; idx: number; slot: number }>("SELECT u.owner_id, u.idx, u.slot FROM units u JOIN lineages l ON l.lineage_id = u.lineage_id WHERE u.slot >= l.next_slot OR u.slot < 0"))
        p.push(`unit ${r.idx} of ${r.owner_id} points at slot ${r.slot}, past its lineage's allocated slots`);
      for (const r of q<{ owner_id: string }>("SELECT DISTINCT owner_id FROM units u WHERE NOT EXISTS (SELECT 1 FROM lineages l WHERE l.lineage_id = u.lineage_id)")) p.push(`units of ${r.owner_id} name a missing lineage`);
      for (const r of q<{ lineage_id: string; slot: number }>("SELECT f.lineage_id, f.slot FROM free_slots f WHERE EXISTS (SELECT 1 FROM units u WHERE u.lineage_id = f.lineage_id AND u.slot = f.slot)"))
        p.push(`slot ${r.slot} of ${r.lineage_id} is both free and in use`);
      for (const r of q<{ lineage_id: string; next_slot: number; used: number; free: number }>(
        "SELECT l.lineage_id, l.next_slot, (SELECT COUNT(DISTINCT slot) FROM units u WHERE u.lineage_id = l.lineage_id) AS used, (SELECT COUNT(*) FROM free_slots f WHERE f.lineage_id = l.lineage_id AND f.slot < l.next_slot) AS free FROM lineages l",
      )) {
        if (r.used + r.free !== r.next_slot) p.push(`lineage ${r.lineage_id}: ${r.next_slot} slots allocated but ${r.used} in use and ${r.free} free (${r.next_slot - r.used - r.free} leaked)`);
        if (r.used > 0) {
          const file = this.blocks.blockFile(r.lineage_id);
          const maxSlot = (this.sql("SELECT MAX(slot) AS m FROM units WHERE lineage_id = ?").get(r.lineage_id) as { m: number }).m;
          const size = fs.existsSync(file) ? fs.statSync(file).size : -1;
          if (size < (maxSlot + 1) * UNIT) p.push(`block file of ${r.lineage_id} is ${size < 0 ? "missing" : `${size} bytes, shorter than its units need`}`);
        }
      }
      for (const r of q<{ lineage_id: string }>("SELECT lineage_id FROM lineages l WHERE NOT EXISTS (SELECT 1 FROM disks d WHERE d.lineage_id = l.lineage_id) AND NOT EXISTS (SELECT 1 FROM snapshots s WHERE s.lineage_id = l.lineage_id) AND NOT EXISTS (SELECT 1 FROM meta m WHERE m.k = 'copying:' || l.lineage_id)"))
        p.push(`lineage ${r.lineage_id} is used by no disk or snapshot`);
      for (const r of q<{ owner_id: string; n: number }>(
        "SELECT u.owner_id, COUNT(*) AS n FROM units u JOIN disks d ON d.disk_id = u.owner_id WHERE u.idx * 65536 >= d.size_gb * 1073741824 GROUP BY u.owner_id",
      ))
        p.push(`disk ${r.owner_id} has ${r.n} units past its size`);
      for (const r of q<{ owner_id: string }>("SELECT DISTINCT u.owner_id FROM units u JOIN lineages l ON l.lineage_id = u.lineage_id WHERE l.encrypted = 1 AND (u.nonce IS NULL OR u.tag IS NULL)"))
        p.push(`encrypted ${r.owner_id} has units without nonce or tag`);
      for (const r of q<{ owner_id: string }>("SELECT DISTINCT owner_id FROM units u JOIN lineages l ON l.lineage_id = u.lineage_id WHERE l.encrypted = 0 AND (u.nonce IS NOT NULL OR u.tag IS NOT NULL)"))
        p.push(`plain ${r.owner_id} has units with nonces or tags: they are ciphertext, so its encryption flag was cleared behind the engine`);
      for (const r of q<{ id: string; encrypted: number }>(
        "SELECT disk_id AS id, encrypted FROM disks o WHERE (o.encrypted = 1 AND o.kms_key_id IS NOT (SELECT key_id FROM data_keys k WHERE k.region = o.region)) OR (o.encrypted = 0 AND o.kms_key_id IS NOT NULL) UNION ALL SELECT snapshot_id, encrypted FROM snapshots o WHERE (o.encrypted = 1 AND o.kms_key_id IS NOT (SELECT key_id FROM data_keys k WHERE k.region = o.region)) OR (o.encrypted = 0 AND o.kms_key_id IS NOT NULL)",
      ))
        p.push(`${r.id} (${r.encrypted ? "encrypted" : "plain"}) names ${r.encrypted ? "a key id that is not its region's CMK" : "a KMS key id although it is plain"}`);
      for (const r of q<{ snapshot_id: string }>("SELECT s.snapshot_id FROM snapshots s JOIN lineages l ON l.lineage_id = s.lineage_id WHERE l.encrypted <> s.encrypted OR l.region <> s.region"))
        p.push(`snapshot ${r.snapshot_id} disagrees with its lineage on encryption or region`);
      for (const r of q<{ disk_id: string }>("SELECT disk_id FROM disks WHERE encrypted = 1 AND (kms_key_id IS NULL OR NOT EXISTS (SELECT 1 FROM data_keys k WHERE k.region = disks.region))"))
        p.push(`encrypted disk ${r.disk_id} has no key in its region`);
      for (const r of q<{ disk_id: string }>("SELECT d.disk_id FROM disks d JOIN lineages l ON l.lineage_id = d.lineage_id WHERE l.encrypted <> d.encrypted OR l.region <> d.region"))
        p.push(`disk ${r.disk_id} disagrees with its lineage on encryption or region`);
      for (const r of q<{ attachment_id: string }>("SELECT attachment_id FROM attachments a WHERE NOT EXISTS (SELECT 1 FROM instances i WHERE i.instance_id = a.instance_id)")) p.push(`attachment ${r.attachment_id} names a missing instance`);
      for (const r of q<{ attachment_id: string; psk_file: string }>("SELECT attachment_id, psk_file FROM attachments")) {
        const file = this.pskPath(r.psk_file);
        if (!this.insideDir(file)) p.push(`attachment ${r.attachment_id} names a key file outside the engine directory (${file}); key files live in ${path.join(this.dir, "nbd")}: detach and re-attach it`);
        else if (!fs.existsSync(file)) p.push(`attachment ${r.attachment_id} has no key file ${file}`);
      }
      for (const r of q<{ disk_id: string; state: string }>("SELECT disk_id, state FROM disks WHERE state <> 'UNATTACHED'")) p.push(`disk ${r.disk_id} is stuck in state ${r.state}`);
      for (const r of q<{ k: string }>("SELECT k FROM meta WHERE k LIKE 'zeroing:%'")) p.push(`disk ${r.k.slice("zeroing:".length)} has a zeroing cut by a crash that could not be finished (the root key is needed to keep its block map's MAC); reopen with the root key, or zero the range again`);
      for (const r of q<{ disk_id: string; source_disk_id: string; encrypted: number }>("SELECT disk_id, source_disk_id, encrypted FROM disks WHERE source_disk_id IS NOT NULL AND migrated_at IS NULL"))
        p.push(`disk ${r.disk_id} is DUMPING: its migration from ${r.source_disk_id} did not complete (interrupted, or still running in another process); resume it with: encdisk migrate ${r.source_disk_id} ${r.encrypted ? "--encrypt" : "--plain"} (or delete it)`);
      const billing = this.sql("SELECT (SELECT COALESCE(SUM(price_micros), 0) FROM audit WHERE billable = 1) AS audited, (SELECT COALESCE(-SUM(amount_micros), 0) FROM ledger WHERE kind = 'charge') AS charged, (SELECT COUNT(*) FROM audit a WHERE billable = 1 AND NOT EXISTS (SELECT 1 FROM ledger l WHERE l.audit_seq = a.seq)) AS unbilled")
        .get() as { audited: number; charged: number; unbilled: number };
      if (billing.audited !== billing.charged || billing.unbilled) p.push(`billing: the audit log bills ${billing.audited} but the ledger charged ${billing.charged} (${billing.unbilled} calls without a charge)`);
      const bal = this.sql("SELECT (SELECT balance_micros FROM account WHERE id = 1) AS running, (SELECT TOTAL(amount_micros) FROM ledger) AS summed").get() as { running: number | null; summed: number };
      if (bal.running !== bal.summed || bal.summed < 0 || bal.summed > MAX_BALANCE_MICROS) p.push(`billing: the account balance is ${bal.running} but the ledger sums to ${bal.summed} (allowed: 0 to ${MAX_BALANCE_MICROS})`);
      for (const f of this.orphanFiles(Date.now())) p.push(`orphan file ${f}`);

      const count = (sql: string) => (this.sql(sql).get() as { n: number }).n;
      return { problems: p, disks: count("SELECT COUNT(*) AS n FROM disks"), snapshots: count("SELECT COUNT(*) AS n FROM snapshots"), units: count("SELECT COUNT(*) AS n FROM units") };
    });
  }
}

/** Searches one file for any secret, in overlapping chunks; returns the bytes scanned. */
function scanFile(file: string, secrets: { label: string; bytes: Buffer }[], findings: string[]): number {
  if (secrets.length === 0) return fs.statSync(file).size;
  // Every encoding a key is commonly written in (D11): raw, hex in either case, base64 and
  // base64url (both also without padding, as a prefix of the padded form).
  const probes = secrets.map((s) => {
    const hex = s.bytes.toString("hex");
    const b64 = s.bytes.toString("base64").replace(/=+$/, "");
    const b64url = s.bytes.toString("base64url");
    return { label: s.label, list: [s.bytes, ...[hex, hex.toUpperCase(), b64, ...(b64url === b64 ? [] : [b64url])].map((t) => Buffer.from(t))] };
  });
  const fd = fs.openSync(file, "r");
  const CHUNK = 8 * 1024 * 1024;
  const overlap = 64;
  const buf = Buffer.allocUnsafe(CHUNK + overlap);
  let pos = 0;
  let carry = 0;
  let total = 0;
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, carry, CHUNK, pos);
      if (n <= 0) break;
      const view = buf.subarray(0, carry + n);
      for (const s of probes) {
        for (const [i, probe] of s.list.entries()) {
          if (view.indexOf(probe) >= 0) findings.push(`${file}: contains ${s.label}${i === 0 ? "" : ` (${["hex", "upper-case hex", "base64", "base64url"][i - 1]})`}`);
        }
      }
      total += n;
      pos += n;
      carry = Math.min(overlap, view.length);
      view.copy(buf, 0, view.length - carry);
    }
  } finally {
    fs.closeSync(fd);
    for (const s of probes) zero(...s.list.slice(1)); // the encodings; the raw secrets are the caller's
  }
  return total;
}

const ID_KINDS: Record<string, OwnedResource["kind"]> = { disk: "disk", snap: "snapshot", ins: "instance", att: "attachment", img: "image" };

function kindOfId(id: string): OwnedResource["kind"] | undefined {
  return ID_KINDS[id.slice(0, id.indexOf("-"))];
}

function checkOwner(owner: unknown): void {
  needs(typeof owner === "string" && owner.length > 0 && owner.length <= 1024, ErrorCodes.InvalidParameterValue, `an owner is a string of 1 to 1024 characters (e.g. a Pulumi URN), got ${show(owner)}`, { property: "owner" });
}
