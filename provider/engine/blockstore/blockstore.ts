/**
 * The block store: disk and snapshot contents as 64 KiB units in one sparse block file per
 * lineage (the disk a chain of snapshots and clones started from), with the block map in
 * SQLite.
 *
 * Invariants:
 * - A slot of a block file is named by at least one `units` row, listed in `free_slots`, or
 *   reserved in `slot_reservations` by an asynchronous write in flight: exactly one of these.
 *   Slots >= `lineages.next_slot` were never handed out.
 * - A slot named by a committed row is never overwritten: every write goes to a fresh slot and
 *   the map flips to it in the same transaction that frees the old one (copy-on-write). A
 *   process killed mid-write therefore leaves the old data readable, never a torn unit.
 * - Slots freed by a transaction are not reused by that same transaction.
 * - Encrypted units are AES-256-GCM under the lineage's working key with a fresh random
 *   96-bit nonce per write; nonce and tag live in the map; the AAD binds lineage and unit
 *   index, so a unit cannot be moved to another place or disk unnoticed.
 * - Unwritten units and units written as all zeros have no row and read as zeros with no
 *   cipher work.
 *
 * Two I/O paths: the synchronous one (`read`, `prepareWrite` + `commitWrite`) does its file
 * I/O inside the caller's transaction; the asynchronous one (`readAsync`, `writeAsync`) hands
 * file I/O to libuv's thread pool in pieces of `PIECE_UNITS` units, so AES-GCM on the calling
 * thread overlaps the device or page-cache work on another core (calls under two pieces run as
 * the synchronous path does). Its writes reserve their slots in one short transaction, write
 * the data with no lock held, and flip the map in a second transaction; a process killed in
 * between leaves only reservations, which are freed once its pid is gone (`sweepReservations`).
 */
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { EngineError, ErrorCodes } from "../errors";
import type { Db } from "../store/db";

/** Size of one data unit: the cipher and allocation granularity. */
export const UNIT = 64 * 1024;
const ZERO_UNIT = Buffer.alloc(UNIT);
/** Longest run of units read or written with one system call. */
const MAX_RUN = 64;
/**
 * Units per hand-off between the main thread (cipher) and the thread pool (file I/O) on the
 * asynchronous path: small enough that the pipeline fills quickly within one 4 MiB request,
 * large enough that a hand-off (about 20-50 us) is a small part of the piece's I/O.
 */
const PIECE_UNITS = 8;
/** Pieces read ahead, and pieces sealed or being written, at once on the asynchronous path. */
const READ_DEPTH = 3;
const WRITE_DEPTH = 4;

interface UnitRow {
  idx: number;
  slot: number;
  nonce: Buffer | null;
  tag: Buffer | null;
}

/** A write split into sealed whole units and partial units still to merge with stored data. */
export interface PreparedWrite {
  sealed: SealedUnit[];
  partial: { idx: number; from: number; bytes: Buffer }[];
}

/** A unit ready to be stored: ciphertext (or plaintext for plain disks), or null for a hole. */
interface SealedUnit {
  idx: number;
  data: Buffer | null;
  nonce: Buffer | null;
  tag: Buffer | null;
  /** A slot already reserved for this unit and holding its data (asynchronous writes). */
  slot?: number;
}

export interface Owner {
  /** disk or snapshot id */
  ownerId: string;
  lineageId: string;
  /** The lineage's working key, or null for a plain disk. */
  key: Buffer | null;
}

function aad(lineageId: string, idx: number): Buffer {
  return Buffer.from(`${lineageId}:${idx}`, "utf8");
}

/** Reads `buf.length` bytes at `pos` on the thread pool; bytes past the end of the file read as zeros. */
function preadAsync(fd: number, buf: Buffer, pos: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = 0;
    const step = (): void => {
      fs.read(fd, buf, done, buf.length - done, pos + done, (err, n) => {
        if (err) return reject(err);
        done += n;
        if (n === 0 || done >= buf.length) {
          if (done < buf.length) buf.fill(0, done);
          return resolve();
        }
        step();
      });
    };
    step();
  });
}

/** Writes `bufs` back to back at `pos` on the thread pool, all of them. */
function pwritevAsync(fd: number, bufs: Buffer[], pos: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const total = bufs.reduce((n, b) => n + b.length, 0);
    let done = 0;
    const step = (list: Buffer[]): void => {
      fs.writev(fd, list, pos + done, (err, n) => {
        if (err) return reject(err);
        done += n;
        if (done >= total) return resolve();
        step([Buffer.concat(bufs).subarray(done)]);
      });
    };
    step(bufs);
  });
}

/**
 * Marks a promise as handled (it is awaited later, in order): one of several in flight may
 * fail while an earlier one is awaited, which must not count as an unhandled rejection.
 */
function later<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

export class BlockStore {
  private readonly fds = new Map<string, number>();
  /**
   * Decrypted units recently read through `read`, keyed by lineage and slot and valid only for
   * the nonce they were sealed with: every write goes to a fresh slot with a fresh nonce, so an
   * entry can never serve stale data. Bounded (`readCacheUnits`, LRU by Map order); entries are
   * zeroed when evicted, when their lineage is forgotten and on close. Plain units are not
   * cached: the page cache already holds them.
   */
  private readonly cache = new Map<string, { nonce: Buffer; plain: Buffer }>();
  /**
   * Units read once (key -> nonce): a unit is admitted to the cache on its second read, so one
   * sequential pass over a disk (a backup, a cold scan) neither pays for filling the cache nor
   * evicts what is read repeatedly.
   */
  private readonly seen = new Map<string, Buffer>();
  private readonly dirty = new Set<string>();
  /** In-flight asynchronous operations per descriptor: `forget` defers closing a pinned one. */
  private readonly pins = new Map<number, number>();
  private readonly closing = new Set<number>();
  /**
   * Bumped when a lineage's cached plaintext is dropped (detach, release): an asynchronous read
   * that started before does not put what it decrypted into the cache.
   */
  private readonly generations = new Map<string, number>();
  private generation = 0;
  /**
   * Piece-sized buffers the asynchronous read path reads ciphertext into, reused: a fresh
   * allocation of this size is new memory every time, and its page faults cost about as much
   * as the read. They only ever hold ciphertext.
   */
  private readonly scratch: Buffer[] = [];
  private readonly st;

  constructor(
    private readonly db: Db,
    readonly dir: string,
    private readonly readCacheUnits = 0,
  ) {
    fs.mkdirSync(path.join(dir, "blocks"), { recursive: true, mode: 0o700 });
    this.st = {
      range: db.prepare("SELECT idx, slot, nonce, tag FROM units WHERE owner_id = ? AND idx BETWEEN ? AND ? ORDER BY idx"),
      row: db.prepare("SELECT idx, slot, nonce, tag FROM units WHERE owner_id = ? AND idx = ?"),
      upsert: db.prepare(
        "INSERT INTO units (owner_id, idx, lineage_id, slot, nonce, tag) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (owner_id, idx) DO UPDATE SET lineage_id = excluded.lineage_id, slot = excluded.slot, nonce = excluded.nonce, tag = excluded.tag",
      ),
      del: db.prepare("DELETE FROM units WHERE owner_id = ? AND idx = ?"),
      referenced: db.prepare("SELECT 1 FROM units WHERE lineage_id = ? AND slot = ? LIMIT 1"),
      free: db.prepare("INSERT OR IGNORE INTO free_slots (lineage_id, slot) VALUES (?, ?)"),
      takeFree: db.prepare("SELECT slot FROM free_slots WHERE lineage_id = ? ORDER BY slot LIMIT ?"),
      unfree: db.prepare("DELETE FROM free_slots WHERE lineage_id = ? AND slot = ?"),
      bump: db.prepare("UPDATE lineages SET next_slot = next_slot + ? WHERE lineage_id = ? RETURNING next_slot"),
      copyMap: db.prepare("INSERT INTO units (owner_id, idx, lineage_id, slot, nonce, tag) SELECT ?, idx, lineage_id, slot, nonce, tag FROM units WHERE owner_id = ?"),
      freeOwner: db.prepare(
        "INSERT OR IGNORE INTO free_slots (lineage_id, slot) SELECT u.lineage_id, u.slot FROM units u WHERE u.owner_id = ? AND NOT EXISTS (SELECT 1 FROM units v WHERE v.lineage_id = u.lineage_id AND v.slot = u.slot AND v.owner_id <> u.owner_id)",
      ),
      dropOwner: db.prepare("DELETE FROM units WHERE owner_id = ?"),
      batch: db.prepare("SELECT idx, slot, nonce, tag FROM units WHERE owner_id = ? AND idx > ? ORDER BY idx LIMIT ?"),
      reserve: db.prepare("INSERT INTO slot_reservations (lineage_id, slot, pid, created_at) VALUES (?, ?, ?, ?)"),
      unreserve: db.prepare("DELETE FROM slot_reservations WHERE lineage_id = ? AND slot = ?"),
      lineageExists: db.prepare("SELECT 1 FROM lineages WHERE lineage_id = ?"),
      reservationPids: db.prepare("SELECT DISTINCT pid FROM slot_reservations"),
      freeReservations: db.prepare(
        "INSERT OR IGNORE INTO free_slots (lineage_id, slot) SELECT r.lineage_id, r.slot FROM slot_reservations r WHERE r.pid = ? AND EXISTS (SELECT 1 FROM lineages l WHERE l.lineage_id = r.lineage_id)",
      ),
      dropReservations: db.prepare("DELETE FROM slot_reservations WHERE pid = ?"),
    };
  }

  blockFile(lineageId: string): string {
    return path.join(this.dir, "blocks", `${lineageId}.dat`);
  }

  private fd(lineageId: string): number {
    let fd = this.fds.get(lineageId);
    if (fd === undefined) {
      fd = fs.openSync(this.blockFile(lineageId), fs.constants.O_RDWR | fs.constants.O_CREAT, 0o600);
      this.fds.set(lineageId, fd);
    }
    return fd;
  }

  /** The block file's descriptor, kept open until `unpin` even if the lineage is forgotten meanwhile. */
  private pin(lineageId: string): number {
    const fd = this.fd(lineageId);
    this.pins.set(fd, (this.pins.get(fd) ?? 0) + 1);
    return fd;
  }

  private unpin(fd: number): void {
    const n = (this.pins.get(fd) ?? 1) - 1;
    if (n > 0) return void this.pins.set(fd, n);
    this.pins.delete(fd);
    if (this.closing.delete(fd)) fs.closeSync(fd);
  }

  /** Closes the block file of a lineage (after it was deleted, or to release descriptors). */
  forget(lineageId: string): void {
    const fd = this.fds.get(lineageId);
    if (fd !== undefined) {
      // An asynchronous read or write still uses it: closing now could let the number be
      // reused by another file under that operation's feet.
      if (this.pins.has(fd)) this.closing.add(fd);
      else fs.closeSync(fd);
      this.fds.delete(lineageId);
    }
    this.dirty.delete(lineageId);
    this.dropCache(lineageId);
  }

  close(): void {
    for (const id of [...this.fds.keys()]) this.forget(id);
    this.dropCache();
  }

  /** Zeroes and drops cached plaintext (of one lineage, or all). */
  dropCache(lineageId?: string): void {
    if (lineageId === undefined) this.generation++;
    else this.generations.set(lineageId, (this.generations.get(lineageId) ?? 0) + 1);
    for (const [k, v] of this.cache) {
      if (lineageId === undefined || k.startsWith(`${lineageId}:`)) {
        v.plain.fill(0);
        this.cache.delete(k);
      }
    }
    for (const k of this.seen.keys()) if (lineageId === undefined || k.startsWith(`${lineageId}:`)) this.seen.delete(k);
  }

  private cacheGet(owner: Owner, row: UnitRow): Buffer | null {
    const k = `${owner.lineageId}:${row.slot}`;
    const hit = this.cache.get(k);
    if (!hit || !row.nonce || !hit.nonce.equals(row.nonce)) return null;
    this.cache.delete(k); // most recently used goes last
    this.cache.set(k, hit);
    return hit.plain;
  }

  private cachePut(owner: Owner, row: UnitRow, plain: Buffer): void {
    const k = `${owner.lineageId}:${row.slot}`;
    const nonce = row.nonce as Buffer;
    const before = this.seen.get(k);
    if (!before || !before.equals(nonce)) {
      this.seen.delete(k);
      this.seen.set(k, Buffer.from(nonce));
      if (this.seen.size > this.readCacheUnits) this.seen.delete(this.seen.keys().next().value as string);
      return;
    }
    this.seen.delete(k);
    const old = this.cache.get(k);
    if (old) old.plain.fill(0);
    this.cache.delete(k);
    this.cache.set(k, { nonce: Buffer.from(nonce), plain });
    while (this.cache.size > this.readCacheUnits) {
      const [oldest, v] = this.cache.entries().next().value as [string, { plain: Buffer }];
      v.plain.fill(0);
      this.cache.delete(oldest);
    }
  }

  // ---- reads ------------------------------------------------------------------------------

  /** Reads `length` bytes at byte `offset` of an owner; unwritten ranges are zeros. */
  read(owner: Owner, offset: number, length: number): Buffer {
    const out = Buffer.alloc(length);
    if (length === 0) return out;
    const first = Math.floor(offset / UNIT);
    const last = Math.floor((offset + length - 1) / UNIT);
    const rows = this.st.range.all(owner.ownerId, first, last) as UnitRow[];
    this.forEachRun(
      owner,
      rows,
      (row, plain) => {
        const unitStart = row.idx * UNIT;
        const s = Math.max(offset, unitStart);
        const e = Math.min(offset + length, unitStart + UNIT);
        plain.copy(out, s - offset, s - unitStart, e - unitStart);
      },
      this.readCacheUnits > 0 && owner.key !== null,
    );
    // Another process may have moved a unit and handed its old slot to another unit while we
    // read: a plain unit cannot tell, so the map must still say what it said when we looked it
    // up, or the read starts over. An encrypted unit that authenticated under the nonce, tag
    // and AAD we looked up is exactly the data the map named then (one that does not goes
    // through `authFailed`), so encrypted reads skip the second lookup.
    if (!owner.key && rows.length && !this.sameMap(rows, this.st.range.all(owner.ownerId, first, last) as UnitRow[])) throw new StaleRead();
    return out;
  }

  private sameMap(a: UnitRow[], b: UnitRow[]): boolean {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) {
      if (a[i].idx !== b[i].idx || a[i].slot !== b[i].slot) return false;
      const na = a[i].nonce;
      const nb = b[i].nonce;
      if (na === null ? nb !== null : nb === null || !na.equals(nb)) return false;
    }
    return true;
  }

  /**
   * Reads the given rows in runs of consecutive slots and hands each unit's plaintext to `fn`
   * (which must not keep or change it). With `cached`, decrypted units come from and go to the
   * read cache.
   */
  private forEachRun(owner: Owner, allRows: UnitRow[], fn: (row: UnitRow, plain: Buffer) => void, cached = false): void {
    let rows = allRows;
    if (cached) {
      rows = [];
      for (const row of allRows) {
        const hit = this.cacheGet(owner, row);
        if (hit) fn(row, hit);
        else rows.push(row);
      }
    }
    // One key object per call: createDecipheriv with a raw key imports it again for every unit.
    const key = owner.key && rows.length ? crypto.createSecretKey(owner.key) : null;
    let i = 0;
    while (i < rows.length) {
      let j = i + 1;
      while (j < rows.length && j - i < MAX_RUN && rows[j].slot === rows[j - 1].slot + 1) j++;
      const n = j - i;
      const buf = Buffer.allocUnsafe(n * UNIT);
      const got = fs.readSync(this.fd(owner.lineageId), buf, 0, n * UNIT, rows[i].slot * UNIT);
      if (got < n * UNIT) buf.fill(0, got);
      for (let k = 0; k < n; k++) {
        const row = rows[i + k];
        const stored = buf.subarray(k * UNIT, (k + 1) * UNIT);
        const plain = key ? this.open(owner, row, stored, key) : stored;
        if (cached) this.cachePut(owner, row, plain);
        fn(row, plain);
      }
      i = j;
    }
  }

  private open(owner: Owner, row: UnitRow, stored: Buffer, key: crypto.KeyObject | Buffer | null = owner.key): Buffer {
    if (!row.nonce || !row.tag || !key) {
      throw new EngineError(ErrorCodes.StateCorrupt, `unit ${row.idx} of ${owner.ownerId} has no nonce or tag although its disk is encrypted; run: encdisk check`);
    }
    const d = crypto.createDecipheriv("aes-256-gcm", key, row.nonce);
    d.setAAD(aad(owner.lineageId, row.idx));
    d.setAuthTag(row.tag);
    const plain = d.update(stored);
    try {
      d.final();
    } catch {
      plain.fill(0);
      this.authFailed(owner, row);
    }
    return plain;
  }

  /** A unit failed authentication: a stale read if the map moved, else corrupted data. */
  private authFailed(owner: Owner, row: UnitRow): never {
    // A concurrent writer in another process may have moved this unit and reused its slot
    // between our map lookup and our read: if the map changed, the caller's retry reads anew.
    const now = this.st.row.get(owner.ownerId, row.idx) as UnitRow | undefined;
    if (!now || now.slot !== row.slot || !row.nonce || !now.nonce?.equals(row.nonce)) throw new StaleRead();
    throw new EngineError(
      ErrorCodes.DataIntegrity,
      `unit ${row.idx} (bytes ${row.idx * UNIT}-${(row.idx + 1) * UNIT - 1}) of ${owner.ownerId} failed authentication: its stored ciphertext was altered or corrupted. The data of this unit cannot be trusted; restore it from a snapshot (ApplySnapshot) or rewrite it.`,
    );
  }

  private giveScratch(p: { scratch: Buffer | null }): void {
    if (p.scratch && this.scratch.length < 2 * READ_DEPTH + 2) this.scratch.push(p.scratch);
    p.scratch = null;
  }

  /** A token that changes whenever the lineage's cached plaintext is dropped. */
  private cacheEpoch(lineageId: string): string {
    return `${this.generation}:${this.generations.get(lineageId) ?? 0}`;
  }

  /**
   * `read` on the asynchronous path: runs of consecutive slots are read on the thread pool,
   * `READ_DEPTH` pieces ahead, while this thread decrypts the pieces that arrived. Whole plain
   * units are read straight into the result. Throws `StaleRead` like `read`.
   */
  async readAsync(shared: Owner, offset: number, length: number): Promise<Buffer> {
    // Under two pieces there is nothing to overlap, and the hop to the thread pool and back
    // costs more than it saves (256 KiB reads: 1100 -> 700 MiB/s): read on this thread.
    if (length < 2 * PIECE_UNITS * UNIT) return this.read(shared, offset, length);
    const { own: owner, key, done } = this.ownCopy(shared);
    try {
      return await this.readPieces(owner, key, offset, length);
    } finally {
      done();
    }
  }

  private async readPieces(owner: Owner, key: crypto.KeyObject | null, offset: number, length: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(length);
    if (length === 0) return out;
    const first = Math.floor(offset / UNIT);
    const last = Math.floor((offset + length - 1) / UNIT);
    const end = offset + length;
    const rows = this.st.range.all(owner.ownerId, first, last) as UnitRow[];
    // Holes read as zeros: zero what no row covers.
    let covered = offset;
    for (const r of rows) {
      const s = Math.max(offset, r.idx * UNIT);
      if (s > covered) out.fill(0, covered - offset, s - offset);
      covered = Math.min(end, (r.idx + 1) * UNIT);
    }
    if (covered < end) out.fill(0, covered - offset);
    const place = (row: UnitRow, plain: Buffer): void => {
      const unitStart = row.idx * UNIT;
      const s = Math.max(offset, unitStart);
      const e = Math.min(end, unitStart + UNIT);
      plain.copy(out, s - offset, s - unitStart, e - unitStart);
    };
    const cached = this.readCacheUnits > 0 && owner.key !== null;
    const epoch = this.cacheEpoch(owner.lineageId);
    let todo = rows;
    if (cached) {
      todo = [];
      for (const row of rows) {
        const hit = this.cacheGet(owner, row);
        if (hit) place(row, hit);
        else todo.push(row);
      }
    }
    // Pieces: runs of consecutive slots, at most PIECE_UNITS units when there is cipher work
    // to overlap (a plain run is one system call, at most MAX_RUN units).
    const maxPiece = owner.key ? PIECE_UNITS : MAX_RUN;
    const pieces: { rows: UnitRow[]; buf: Buffer; inPlace: boolean; scratch: Buffer | null }[] = [];
    for (let i = 0; i < todo.length; ) {
      let j = i + 1;
      while (j < todo.length && j - i < maxPiece && todo[j].slot === todo[j - 1].slot + 1) j++;
      const n = j - i;
      const firstStart = todo[i].idx * UNIT;
      // A plain piece lying wholly inside the range on consecutive units is read in place.
      const inPlace = !owner.key && firstStart >= offset && (todo[j - 1].idx + 1) * UNIT <= end && todo[j - 1].idx - todo[i].idx === n - 1;
      pieces.push({ rows: todo.slice(i, j), buf: inPlace ? out.subarray(firstStart - offset, firstStart - offset + n * UNIT) : Buffer.alloc(0), inPlace, scratch: null });
      i = j;
    }
    if (pieces.length) {
      const fd = this.pin(owner.lineageId);
      const inflight: Promise<void>[] = [];
      let next = 0;
      const start = (): void => {
        const p = pieces[next++];
        if (!p.inPlace) {
          // Encrypted pieces (at most PIECE_UNITS) use the reusable buffers; a plain piece
          // lands here only for a partial head or tail unit.
          p.scratch = p.rows.length <= PIECE_UNITS ? (this.scratch.pop() ?? Buffer.allocUnsafeSlow(PIECE_UNITS * UNIT)) : null;
          p.buf = p.scratch ? p.scratch.subarray(0, p.rows.length * UNIT) : Buffer.allocUnsafe(p.rows.length * UNIT);
        }
        inflight.push(later(preadAsync(fd, p.buf, p.rows[0].slot * UNIT)));
      };
      try {
        while (next < pieces.length && inflight.length < READ_DEPTH) start();
        for (const p of pieces) {
          await inflight[0];
          inflight.shift();
          if (next < pieces.length) start();
          if (p.inPlace) continue;
          for (let k = 0; k < p.rows.length; k++) {
            const row = p.rows[k];
            const stored = p.buf.subarray(k * UNIT, (k + 1) * UNIT);
            // Plain units are copied out of the scratch buffer: they must not alias it.
            const plain = key ? this.open(owner, row, stored, key) : stored;
            if (cached && this.cacheEpoch(owner.lineageId) === epoch) this.cachePut(owner, row, plain);
            place(row, plain);
          }
          this.giveScratch(p);
        }
      } finally {
        await Promise.allSettled(inflight);
        this.unpin(fd);
        for (const p of pieces) this.giveScratch(p);
      }
    }
    if (!owner.key && rows.length && !this.sameMap(rows, this.st.range.all(owner.ownerId, first, last) as UnitRow[])) throw new StaleRead();
    return out;
  }

  /**
   * A byte-range write on the asynchronous path. Whole non-zero units of an encrypted owner get
   * slots reserved in one short transaction (`inTx`); they are sealed a piece at a time on this
   * thread while earlier pieces are written on the thread pool, with no lock held; then
   * `commit` (the
   * caller's checks plus the map flip, in one transaction) makes the write visible, merging
   * partial head and tail units under its lock as `commitWrite` does. If anything fails, the
   * reservations are freed once no I/O into them is in flight.
   */
  async writeAsync(shared: Owner, offset: number, data: Buffer, inTx: (fn: () => void) => void, commit: (fn: () => void) => void): Promise<void> {
    if (data.length === 0) return;
    const { own: owner, key, done } = this.ownCopy(shared);
    try {
      await this.writePieces(owner, key, offset, data, inTx, commit);
    } finally {
      done();
    }
  }

  private async writePieces(owner: Owner, key: crypto.KeyObject | null, offset: number, data: Buffer, inTx: (fn: () => void) => void, commit: (fn: () => void) => void): Promise<void> {
    const first = Math.floor(offset / UNIT);
    const last = Math.floor((offset + data.length - 1) / UNIT);
    const holes: SealedUnit[] = [];
    const partial: PreparedWrite["partial"] = [];
    const whole: { idx: number; plain: Buffer }[] = [];
    for (let idx = first; idx <= last; idx++) {
      const unitStart = idx * UNIT;
      const s = Math.max(offset, unitStart);
      const e = Math.min(offset + data.length, unitStart + UNIT);
      const bytes = data.subarray(s - offset, e - offset);
      if (s !== unitStart || e !== unitStart + UNIT) partial.push({ idx, from: s - unitStart, bytes });
      else if (bytes.equals(ZERO_UNIT)) holes.push({ idx, data: null, nonce: null, tag: null });
      else whole.push({ idx, plain: bytes });
    }
    // Plain data has no cipher work to overlap, and a write into the page cache from this
    // thread measured faster than a hand-off to the thread pool; a write of less than two
    // pieces has little to overlap and would pay a second transaction (256 KiB NBD writes went
    // 650 -> 430 MiB/s): one transaction, as `write`.
    if (!key || whole.length < 2 * PIECE_UNITS) return commit(() => this.commitWrite(owner, this.prepareWrite(owner, offset, data)));
    let slots: number[] = [];
    inTx(() => {
      slots = this.allocate(owner.lineageId, whole.length);
      const now = new Date().toISOString();
      for (const slot of slots) this.st.reserve.run(owner.lineageId, slot, process.pid, now);
    });
    const nonces = crypto.randomBytes(12 * whole.length);
    const sealed: SealedUnit[] = [];
    const fd = this.pin(owner.lineageId);
    const inflight: Promise<void>[] = [];
    let committed = false;
    try {
      for (let i = 0; i < whole.length; ) {
        let j = i + 1;
        while (j < whole.length && j - i < PIECE_UNITS && slots[j] === slots[j - 1] + 1) j++;
        if (inflight.length >= WRITE_DEPTH) await inflight.shift();
        const bufs: Buffer[] = [];
        for (let k = i; k < j; k++) {
          const u = this.encrypt(owner, whole[k].idx, whole[k].plain, nonces.subarray(12 * k, 12 * k + 12), key);
          u.slot = slots[k];
          sealed.push(u);
          bufs.push(u.data as Buffer);
        }
        inflight.push(later(pwritevAsync(fd, bufs, slots[i] * UNIT)));
        i = j;
      }
      while (inflight.length) await inflight.shift();
      this.dirty.add(owner.lineageId);
      commit(() => this.commitWrite(owner, { sealed: [...sealed, ...holes], partial }));
      committed = true;
    } finally {
      await Promise.allSettled(inflight);
      this.unpin(fd);
      if (!committed) {
        try {
          inTx(() => {
            const live = !!this.st.lineageExists.get(owner.lineageId);
            for (const slot of slots) {
              this.st.unreserve.run(owner.lineageId, slot);
              if (live) this.st.free.run(owner.lineageId, slot);
            }
          });
        } catch {
          // The engine was closed or the state is unreachable: the reservations stay until this
          // process has exited, when the next open or check frees them.
        }
      }
    }
  }

  /**
   * Frees the slots reserved by asynchronous writes of processes that no longer run (killed
   * between reserving and committing). Runs in the caller's transaction.
   */
  sweepReservations(): number {
    let n = 0;
    for (const { pid } of this.st.reservationPids.all() as { pid: number }[]) {
      if (pid === process.pid || pidAlive(pid)) continue;
      this.st.freeReservations.run(pid);
      n += this.st.dropReservations.run(pid).changes;
    }
    return n;
  }

  // ---- writes -----------------------------------------------------------------------------

  /**
   * Encrypts (when keyed) one plaintext unit; all-zero units become holes. `nonce`, when
   * given, is 12 fresh random bytes (callers sealing many units draw them in one call).
   */
  seal(owner: Owner, idx: number, plain: Buffer, nonce?: Buffer, key: crypto.KeyObject | Buffer | null = owner.key): SealedUnit {
    if (plain.equals(ZERO_UNIT)) return { idx, data: null, nonce: null, tag: null };
    if (!key) return { idx, data: plain, nonce: null, tag: null };
    return this.encrypt(owner, idx, plain, nonce ?? crypto.randomBytes(12), key);
  }

  /** AES-256-GCM of one non-zero unit. */
  private encrypt(owner: Owner, idx: number, plain: Buffer, nonce: Buffer, key: crypto.KeyObject | Buffer): SealedUnit {
    const c = crypto.createCipheriv("aes-256-gcm", key, nonce);
    c.setAAD(aad(owner.lineageId, idx));
    const data = c.update(plain);
    c.final();
    return { idx, data, nonce, tag: c.getAuthTag() };
  }

  /**
   * The owner an asynchronous operation works with: its own copy of the working key (zeroed by
   * `done`), so a detach or `releaseKeys` zeroing the shared key while the operation awaits
   * cannot make it decrypt or seal with a zeroed key.
   */
  private ownCopy(owner: Owner): { own: Owner; key: crypto.KeyObject | null; done: () => void } {
    const copy = owner.key ? Buffer.from(owner.key) : null;
    return { own: { ...owner, key: copy }, key: copy ? crypto.createSecretKey(copy) : null, done: () => copy?.fill(0) };
  }

  /**
   * Seals the whole units of a byte-range write. Runs outside the transaction, so cipher work
   * holds no lock; partial head/tail units are merged later, under the lock (`commitWrite`),
   * so a concurrent writer of the unit's other bytes in another process is never lost.
   */
  prepareWrite(owner: Owner, offset: number, data: Buffer): PreparedWrite {
    const prepared: PreparedWrite = { sealed: [], partial: [] };
    if (data.length === 0) return prepared;
    const first = Math.floor(offset / UNIT);
    const last = Math.floor((offset + data.length - 1) / UNIT);
    const nonces = owner.key ? crypto.randomBytes(12 * (last - first + 1)) : null;
    const key = owner.key && last > first ? crypto.createSecretKey(owner.key) : owner.key;
    for (let idx = first; idx <= last; idx++) {
      const unitStart = idx * UNIT;
      const s = Math.max(offset, unitStart);
      const e = Math.min(offset + data.length, unitStart + UNIT);
      if (s === unitStart && e === unitStart + UNIT) {
        prepared.sealed.push(this.seal(owner, idx, data.subarray(s - offset, e - offset), nonces?.subarray(12 * (idx - first), 12 * (idx - first + 1)), key));
      } else {
        prepared.partial.push({ idx, from: s - unitStart, bytes: data.subarray(s - offset, e - offset) });
      }
    }
    return prepared;
  }

  /** Whole-unit holes for [offset, offset+length); partial ends are zeroed under the lock. */
  prepareZero(owner: Owner, offset: number, length: number): PreparedWrite {
    const prepared: PreparedWrite = { sealed: [], partial: [] };
    if (length === 0) return prepared;
    const first = Math.floor(offset / UNIT);
    const last = Math.floor((offset + length - 1) / UNIT);
    for (let idx = first; idx <= last; idx++) {
      const unitStart = idx * UNIT;
      const s = Math.max(offset, unitStart);
      const e = Math.min(offset + length, unitStart + UNIT);
      if (s === unitStart && e === unitStart + UNIT) prepared.sealed.push({ idx, data: null, nonce: null, tag: null });
      else prepared.partial.push({ idx, from: s - unitStart, bytes: Buffer.alloc(e - s) });
    }
    return prepared;
  }

  /** Stores a prepared write: MUST run inside the caller's (IMMEDIATE) transaction. */
  commitWrite(owner: Owner, prepared: PreparedWrite): void {
    const units = prepared.sealed.slice();
    for (const p of prepared.partial) {
      const plain = this.read(owner, p.idx * UNIT, UNIT);
      p.bytes.copy(plain, p.from);
      units.push(this.seal(owner, p.idx, plain));
    }
    this.commitUnits(owner, units);
  }

  /**
   * Stores sealed units: MUST run inside the caller's transaction. Allocates fresh slots,
   * writes the data, flips the map, then frees the slots nothing references any more.
   */
  private commitUnits(owner: Owner, units: SealedUnit[]): void {
    const withData = units.filter((u) => u.data !== null && u.slot === undefined);
    const slots = this.allocate(owner.lineageId, withData.length);
    // Write runs of consecutive slots with one system call each.
    const fd = withData.length ? this.fd(owner.lineageId) : -1;
    let i = 0;
    while (i < withData.length) {
      let j = i + 1;
      while (j < withData.length && j - i < MAX_RUN && slots[j] === slots[j - 1] + 1) j++;
      const bufs = withData.slice(i, j).map((u) => u.data as Buffer);
      let pos = slots[i] * UNIT;
      let written = 0;
      const total = (j - i) * UNIT;
      while (written < total) {
        const n = fs.writevSync(fd, written === 0 ? bufs : [Buffer.concat(bufs).subarray(written)], pos);
        written += n;
        pos += n;
      }
      i = j;
    }
    if (withData.length) this.dirty.add(owner.lineageId);
    const freed: number[] = [];
    let k = 0;
    for (const u of units) {
      const old = this.st.row.get(owner.ownerId, u.idx) as UnitRow | undefined;
      if (u.data === null) {
        if (old) this.st.del.run(owner.ownerId, u.idx);
      } else if (u.slot !== undefined) {
        this.st.upsert.run(owner.ownerId, u.idx, owner.lineageId, u.slot, u.nonce, u.tag);
        this.st.unreserve.run(owner.lineageId, u.slot);
      } else {
        this.st.upsert.run(owner.ownerId, u.idx, owner.lineageId, slots[k++], u.nonce, u.tag);
      }
      if (old) freed.push(old.slot);
    }
    for (const slot of freed) {
      if (!this.st.referenced.get(owner.lineageId, slot)) this.st.free.run(owner.lineageId, slot);
    }
  }

  /** Hands out `n` slots: lowest free ones first, then fresh ones past the high-water mark. */
  private allocate(lineageId: string, n: number): number[] {
    if (n === 0) return [];
    const slots = (this.st.takeFree.all(lineageId, n) as { slot: number }[]).map((r) => r.slot);
    for (const s of slots) this.st.unfree.run(lineageId, s);
    const fresh = n - slots.length;
    if (fresh > 0) {
      const row = this.st.bump.get(fresh, lineageId) as { next_slot: number } | undefined;
      if (!row) throw new EngineError(ErrorCodes.StateCorrupt, `lineage ${lineageId} is missing; run: encdisk check`);
      for (let s = row.next_slot - fresh; s < row.next_slot; s++) slots.push(s);
    }
    return slots;
  }

  // ---- whole-owner operations (inside the caller's transaction) ------------------------

  /** Shares every unit of `fromOwner` with `toOwner` (a snapshot, or a disk made from one): no data is copied. */
  shareMap(fromOwnerId: string, toOwnerId: string): void {
    this.st.copyMap.run(toOwnerId, fromOwnerId);
  }

  /** Drops an owner's map, freeing the slots nothing else references. */
  dropMap(ownerId: string): void {
    this.st.freeOwner.run(ownerId);
    this.st.dropOwner.run(ownerId);
  }

  /**
   * Streams every written unit of `src` into `dst` (another lineage, possibly another key),
   * `batchUnits` at a time, each batch read and written inside its own transaction via
   * `inTx` (so a concurrent writer of the source cannot move units under the copy). Holes
   * stay holes.
   */
  copyAll(src: Owner, dst: Owner, inTx: (fn: () => void) => void, onBatch: (units: number) => void, batchUnits = MAX_RUN): void {
    let after = -1;
    for (;;) {
      let n = 0;
      inTx(() => {
        const rows = this.st.batch.all(src.ownerId, after, batchUnits) as UnitRow[];
        n = rows.length;
        if (n === 0) return;
        const sealed: SealedUnit[] = [];
        this.forEachRun(src, rows, (row, plain) => sealed.push(this.seal(dst, row.idx, plain)));
        this.commitUnits(dst, sealed);
        after = rows[n - 1].idx;
      });
      if (n === 0) return;
      onBatch(n);
    }
  }

  /** fsyncs every block file written by this process since the last flush. */
  syncDirty(): void {
    for (const id of [...this.dirty]) {
      const fd = this.fds.get(id);
      if (fd !== undefined) fs.fdatasyncSync(fd);
      this.dirty.delete(id);
    }
  }
}

/** The map changed under a read: the caller retries it (looking the owner up again). */
export class StaleRead extends Error {}
