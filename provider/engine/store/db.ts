/**
 * The state store: one SQLite database per engine directory (WAL, numbered migrations).
 * This is the only module that talks to SQLite directly. Every engine operation runs as one
 * IMMEDIATE transaction, so several processes can share a directory: writers queue on
 * SQLite's lock (busy timeout), and a residual SQLITE_BUSY is retried with backoff here,
 * never surfaced to a user. The NBD server's writes take the asynchronous path instead
 * (`immediateNoWait` + `withBusyRetryAsync`): no busy wait, a timer between attempts.
 */
import Database from "better-sqlite3";
import * as fs from "fs";
import * as path from "path";
import { EngineError, ErrorCodes } from "../errors";
import { MIGRATIONS } from "./migrations";

export type Db = Database.Database;
export type Statement = Database.Statement;

const BUSY_CODES = new Set(["SQLITE_BUSY", "SQLITE_BUSY_SNAPSHOT", "SQLITE_BUSY_RECOVERY", "SQLITE_LOCKED"]);
const sleepCell = new Int32Array(new SharedArrayBuffer(4));

/** Synchronous sleep: the engine API is synchronous (better-sqlite3 is), so backoff must be too. */
export function sleepSync(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

export function isBusy(e: unknown): boolean {
  return typeof e === "object" && e !== null && BUSY_CODES.has((e as { code?: string }).code ?? "");
}

/** Jittered exponential backoff before busy retry `attempt` (0-based), in ms: 0.5-1.5 ms up to 100-300 ms. */
function backoffMs(attempt: number): number {
  return Math.min(200, 2 ** Math.min(attempt, 7)) * (0.5 + Math.random());
}

/** What a retry loop throws for `e` once its budget is spent (a busy error becomes ResourceBusy). */
function giveUp(e: unknown, budgetMs: number): unknown {
  if (!isBusy(e)) return e;
  return new EngineError(ErrorCodes.ResourceBusy, `the engine directory stayed locked by another process for ${budgetMs} ms; retry the operation`, { cause: e });
}

/** Runs `fn` with retry and jittered exponential backoff while SQLite reports the database busy. */
export function withBusyRetry<T>(fn: () => T, budgetMs = 60_000): T {
  const deadline = Date.now() + budgetMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return fn();
    } catch (e) {
      if (!isBusy(e) || Date.now() > deadline) throw giveUp(e, budgetMs);
      sleepSync(backoffMs(attempt));
    }
  }
}

/**
 * `withBusyRetry` for an event loop (the NBD server): `fn` must fail at once when the lock is
 * taken (see `immediateNoWait`), and the backoff between attempts is a timer, so the loop keeps
 * serving everything that needs no write lock (reads, handshakes, other exports) meanwhile.
 */
export async function withBusyRetryAsync<T>(fn: () => T, budgetMs = 60_000): Promise<T> {
  const deadline = Date.now() + budgetMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return fn();
    } catch (e) {
      if (!isBusy(e) || Date.now() > deadline) throw giveUp(e, budgetMs);
      await new Promise((resolve) => setTimeout(resolve, backoffMs(attempt)));
    }
  }
}

export function openDb(dir: string): Db {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    fs.chmodSync(dir, 0o700); // whoever created it, and whatever the umask: state and keys live here
  } catch {
    /* not ours to change; `encdisk check` reports modes */
  }
  const file = path.join(dir, "state.db");
  const db = withBusyRetry(() => new Database(file, { timeout: 10_000 }));
  try {
    fs.chmodSync(file, 0o600);
  } catch {
    /* another owner; permissions are checked by `encdisk check` */
  }
  withBusyRetry(() => db.pragma("journal_mode = WAL"));
  db.pragma("synchronous = NORMAL");
  db.pragma("foreign_keys = ON");
  migrate(db);
  for (const f of [file + "-wal", file + "-shm"]) {
    try {
      fs.chmodSync(f, 0o600);
    } catch {
      /* not there yet */
    }
  }
  return db;
}

/** Applies numbered migrations in order, each in its own transaction; safe when several processes race. */
function migrate(db: Db): void {
  db.exec("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)");
  const latest = MIGRATIONS[MIGRATIONS.length - 1].version;
  for (const m of MIGRATIONS) {
    withBusyRetry(() =>
      db.transaction(() => {
        const done = db.prepare("SELECT 1 FROM schema_migrations WHERE version = ?").get(m.version);
        if (done) return;
        db.exec(m.sql);
        db.prepare("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)").run(m.version, new Date().toISOString());
      }).immediate(),
    );
  }
  const row = db.prepare("SELECT MAX(version) AS v FROM schema_migrations").get() as { v: number };
  if (row.v > latest) {
    throw new EngineError(ErrorCodes.EngineVersion, `the engine directory was written by a newer pulumi-encdisk (schema ${row.v} > ${latest}); upgrade pulumi-encdisk to use it`);
  }
}

/** Runs `fn` as one IMMEDIATE transaction (write lock taken up front), retried while busy. */
export function tx<T>(db: Db, fn: () => T): T {
  return withBusyRetry(() => db.transaction(fn).immediate());
}

/**
 * Runs `fn` as one IMMEDIATE transaction without waiting for the write lock: when another
 * connection holds it, BEGIN fails at once with SQLITE_BUSY (busy timeout 0 for that one
 * statement) instead of blocking the thread for up to the busy timeout. For `withBusyRetryAsync`.
 */
export function immediateNoWait<T>(db: Db, fn: () => T): T {
  const timeout = db.pragma("busy_timeout", { simple: true }) as number;
  db.pragma("busy_timeout = 0");
  try {
    db.exec("BEGIN IMMEDIATE");
  } finally {
    db.pragma(`busy_timeout = ${timeout}`);
  }
  try {
    const value = db.transaction(fn)(); // a savepoint inside the transaction just begun
    db.exec("COMMIT");
    return value;
  } catch (e) {
    if (db.inTransaction) db.exec("ROLLBACK");
    throw e;
  }
}

/** Runs `fn` in a read transaction (a consistent snapshot), retried while busy. */
export function readTx<T>(db: Db, fn: () => T): T {
  return withBusyRetry(() => db.transaction(fn).deferred());
}
