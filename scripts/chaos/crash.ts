/**
 * Crash-injection harness (issue 7, part 1). For one operation kind: set up an engine
 * directory, then for each round spawn a worker that loops that operation, SIGKILL it at a
 * random moment, reopen the directory in this process and check:
 *  - `engine.check()` reports no problem (maps, slots, lineages, files, billing);
 *  - every acknowledged write reads back intact (the in-flight one may or may not have landed);
 *  - retrying the interrupted operation (same clientToken) converges: no duplicate resource,
 *    no double charge, no leaked unit;
 *  - the KMS bill equals the audit log.
 */
import Database from "better-sqlite3";
import * as fs from "fs";
import * as path from "path";
import { isEngineError, openEngine, type Engine } from "../../provider/engine";
import { INSTANCE_TYPE, Journal, pattern, rng, sleep, spawnWorker, splitJournal, tempEngineDir, whichGen, ZONE } from "./common";
import type { CrashKind, Setup, WorkerConfig } from "./crash-worker";

export const CRASH_KINDS: CrashKind[] = ["create", "attach", "write-small", "write-large", "snapshot", "rollback", "migrate", "delete"];

/** Problem texts of engine defects already reported (docs/reliability.md); counted apart, not failed on. */
// Empty: D4, D5 (caa2d94) and D19 (9d13e18) were fixed in the engine; their deterministic
// reproductions stay in test/reliability/defects.test.ts as regression tests.
export const KNOWN_CRASH_DEFECTS: { id: string; match: RegExp }[] = [];

export interface CrashResult {
  kind: CrashKind;
  rounds: number;
  /** Rounds whose worker died of our SIGKILL (not of exhaustion or an error). */
  kills: number;
  /** Kills that landed while an operation was in flight (begun, not acknowledged). */
  midOpKills: number;
  /** Which operation each kill interrupted ("-" = between journaled operations). */
  killedDuring: Record<string, number>;
  /** Acknowledged writes (or acked creates) verified after kills. */
  verified: number;
  /** Interrupted migrations shown as such right after the kill (check() problem, or state DUMPING), then retried. */
  halfMadeReported: number;
  /** Rounds with at least one failure. */
  failedRounds?: number;
  /** Failures of the checks (the first 50): empty means every kill was survived. */
  failures: string[];
  /** Rounds whose check found a problem matching a reported defect (by defect id). */
  known: Record<string, number>;
  ms: number;
}

export interface CrashOptions {
  kind: CrashKind;
  kills: number;
  seed?: number;
  /** Upper bound of the random kill delay after the worker is ready. */
  maxDelayMs?: number;
  log?: (s: string) => void;
  keepDir?: boolean;
}

const DEFAULT_DELAY: Record<CrashKind, number> = {
  create: 250,
  attach: 250,
  "write-small": 300,
  "write-large": 500,
  snapshot: 300,
  rollback: 400,
  migrate: 600,
  delete: 50,
};

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

interface KindState {
  lastGen: Map<number, string | null>;
  expectAudit: Map<string, number>;
  rollbackGen: string;
}

function setupKind(e: Engine, kind: CrashKind): Setup {
  e.authorizeKms();
  const instanceId = e.createInstance({ zone: ZONE, instanceType: INSTANCE_TYPE }).instanceId;
  const disk = (sizeGb: number, encrypt: boolean) => e.createDisk({ zone: ZONE, sizeGb, encrypt }).diskId;
  const attach = (d: string) => e.attachDisk({ diskId: d, instanceId }).attachmentId;
  switch (kind) {
    case "create":
    case "delete":
      return { instanceId, disks: [], attachments: [] };
    case "attach":
      return { instanceId, disks: [disk(1, true), disk(1, true), disk(1, true), disk(1, true), disk(1, false), disk(1, false)], attachments: [] };
    case "write-small": {
      const disks = [disk(1, true), disk(1, false)];
      const slots = Array.from({ length: 48 }, (_, k) => ({ att: k % 2, offset: 123 + k * 4000, length: 3000 }));
      return { instanceId, disks, attachments: disks.map(attach), slots };
    }
    case "write-large": {
      const disks = [disk(2, true)];
      const slots = Array.from({ length: 10 }, (_, k) => ({ att: 0, offset: k * 4 * MiB + 1000 + k * 7, length: MiB + k * 300_001 }));
      return { instanceId, disks, attachments: disks.map(attach), slots };
    }
    case "snapshot": {
      const disks = [disk(1, true)];
      return { instanceId, disks, attachments: disks.map(attach) };
    }
    case "rollback": {
      const d = disk(1, true);
      const a = attach(d);
      e.write(a, 5000, pattern("base", 150_000));
      e.detachDisk(a);
      const snapshotId = e.createSnapshot({ diskId: d }).snapshotId;
      return { instanceId, disks: [d], attachments: [], snapshotId };
    }
    case "migrate": {
      const d = disk(2, true);
      const a = attach(d);
      for (const [gen, off, len] of MIGRATE_DATA) e.write(a, off, pattern(gen, len));
      e.detachDisk(a);
      return { instanceId, disks: [d], attachments: [] };
    }
  }
}

const MIGRATE_DATA: [string, number, number][] = [
  ["m0", 0, MiB],
  ["m1", 700 * MiB + 3, 2 * MiB],
  ["m2", 2 * GiB - 70_000, 70_000],
];

/** Disks with data, their snapshots and clones (sharing units) for the delete worker. */
function prepareDeletes(e: Engine, instanceId: string, round: number): { disk: string; snap: string; clone: string }[] {
  return Array.from({ length: 10 }, (_, k) => {
    const d = e.createDisk({ zone: ZONE, sizeGb: 2, encrypt: k % 2 === 0 }).diskId;
    const a = e.attachDisk({ diskId: d, instanceId }).attachmentId;
    e.write(a, 3000 + k * 70_000, pattern(`del-${round}-${k}`, 300_000));
    e.detachDisk(a);
    const snap = e.createSnapshot({ diskId: d }).snapshotId;
    const clone = e.createDisk({ zone: ZONE, sizeGb: 2, snapshotId: snap }).diskId;
    const ca = e.attachDisk({ diskId: clone, instanceId }).attachmentId;
    e.write(ca, 0, pattern(`clone-${round}-${k}`, 100_000)); // the clone diverges: its own units too
    e.detachDisk(ca);
    return { disk: d, snap, clone };
  });
}

/** Reads a detached disk through a temporary attachment. */
function readDisk(e: Engine, instanceId: string, diskId: string, offset: number, length: number): Buffer {
  const existing = e.listAttachments({ diskId })[0];
  const a = existing ?? e.attachDisk({ diskId, instanceId });
  try {
    return e.read(a.attachmentId, offset, length);
  } finally {
    if (!existing) e.detachDisk(a.attachmentId);
  }
}

function swallowNotFound(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if (!(isEngineError(err) && (err.code.endsWith(".NotFound") || err.code === "ResourceUnavailable.NotAttached"))) throw err;
  }
}

export async function runCrashCampaign(opts: CrashOptions): Promise<CrashResult> {
  const t0 = Date.now();
  const kind = opts.kind;
  const seed = opts.seed ?? 1;
  const rand = rng(seed * 7919 + kind.length);
  const maxDelay = opts.maxDelayMs ?? DEFAULT_DELAY[kind];
  const log = opts.log ?? (() => undefined);
  const te = tempEngineDir(`crash-${kind}`);
  const workerScript = path.join(__dirname, "crash-worker.js");
  const result: CrashResult = { kind, rounds: 0, kills: 0, midOpKills: 0, killedDuring: {}, halfMadeReported: 0, verified: 0, failures: [], known: {}, ms: 0 };
  const knownRounds = new Set<string>();
  const failedRounds = new Set<number>();
  const fail = (round: number, msg: string) => {
    const k = KNOWN_CRASH_DEFECTS.find((d) => d.match.test(msg));
    if (k) {
      if (!knownRounds.has(`${round}:${k.id}`)) result.known[k.id] = (result.known[k.id] ?? 0) + 1;
      knownRounds.add(`${round}:${k.id}`);
    } else {
      result.failedRounds = (result.failedRounds ?? 0) + (failedRounds.has(round) ? 0 : 1);
      failedRounds.add(round);
      if (result.failures.length < 50) result.failures.push(`[${kind} round ${round}] ${msg}`);
    }
  };
  const st: KindState = { lastGen: new Map(), expectAudit: new Map(), rollbackGen: "base" };

  let setup: Setup;
  {
    const e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    setup = setupKind(e, kind);
    e.close();
  }

  try {
    // Rounds continue until `kills` workers died of our SIGKILL (a worker that finished its work
    // before the kill still gets its round verified, it just does not count as a kill). On a
    // quiet machine a delete worker often finishes its ten deletions before the kill lands, so
    // the round budget is generous: it bounds a broken harness, not a fast machine.
    for (let round = 0; result.kills < opts.kills && round < opts.kills * 10; round++) {
      result.rounds++;
      const journal = path.join(te.root, `journal-${round}.log`);
      if (kind === "delete") {
        // The worker only deletes: what it deletes is made here, so kills land in deletions.
        const e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
        setup = { ...setup, groups: prepareDeletes(e, setup.instanceId, round) };
        e.close();
      }
      const cfg: WorkerConfig = { dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile, kind, seed: seed * 100_000 + round, round, journal, setup, maxOps: kind === "create" ? 3000 : 1_000_000 };
      const w = spawnWorker(workerScript, [JSON.stringify(cfg)]);
      await w.ready;
      await sleep(Math.floor(rand() * maxDelay));
      w.child.kill("SIGKILL");
      const ex = await w.exited;
      if (ex.signal === "SIGKILL") result.kills++;
      else if (ex.code !== 0) fail(round, `worker failed before the kill (exit ${ex.code}): ${ex.stderr.trim().slice(0, 400)}`);
      const { acked, inflight } = splitJournal(Journal.read(journal));
      if (inflight && ex.signal === "SIGKILL") result.midOpKills++;
      if (ex.signal === "SIGKILL") {
        const during = inflight ? String(inflight.op) : "-";
        result.killedDuring[during] = (result.killedDuring[during] ?? 0) + 1;
      }

      // SQLite's own view first, through a separate read-only connection: tables and indexes agree.
      for (const p of sqliteIntegrity(te.dir)) fail(round, `sqlite integrity_check after kill${inflight ? ` during ${String(inflight.op)}` : ""}: ${p}`);
      const e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
      try {
        for (const p of e.check().problems) {
          // An interrupted migration reported as such is a clear state (D13); the retry must resolve it.
          if (inflight?.op === "migrate" && /migration from .* did not complete/.test(p)) result.halfMadeReported++;
          else fail(round, `check after kill${inflight ? ` during ${String(inflight.op)}` : ""}: ${p}`);
        }
        // The clear state of a half-made disk since b6c07cb: DUMPING (the real API's copying state).
        result.halfMadeReported += e.listDisks().filter((d) => (d.state as string) === "DUMPING").length;
        verifyKind(e, kind, setup, st, acked, inflight, (m) => fail(round, m), () => result.verified++);
        for (const p of e.check().problems) fail(round, `check after retry/cleanup${inflight ? ` of ${String(inflight.op)}` : ""}: ${p}`);
        for (const d of e.listDisks()) if (d.state !== "UNATTACHED" && d.state !== "ATTACHED") fail(round, `disk ${d.diskId} is left in state ${d.state} after retry/cleanup`);
        verifyBilling(e, (m) => fail(round, m));
      } catch (err) {
        fail(round, `verification threw: ${isEngineError(err) ? JSON.stringify(err.toJSON()) : (err as Error)?.stack ?? String(err)}`);
      } finally {
        e.close();
      }
      fs.rmSync(journal, { force: true });
      if (result.kills % 20 === 0 && ex.signal === "SIGKILL") log(`${kind}: ${result.kills}/${opts.kills} kills in ${round + 1} rounds (${result.midOpKills} mid-operation), ${result.failures.length} failures`);
    }
  } finally {
    if (opts.keepDir || result.failures.length) log(`${kind}: engine dir kept for inspection: ${te.root}`);
    else te.cleanup();
  }
  result.ms = Date.now() - t0;
  return result;
}

/** `PRAGMA integrity_check` of the state database (indexes match tables, no torn pages). */
export function sqliteIntegrity(dir: string): string[] {
  const db = new Database(path.join(dir, "state.db"), { readonly: true, fileMustExist: true, timeout: 10_000 });
  try {
    const rows = db.pragma("integrity_check") as { integrity_check: string }[];
    return rows.map((r) => r.integrity_check).filter((x) => x !== "ok");
  } finally {
    db.close();
  }
}

/** The KMS bill equals the audit log; creates are charged at most once per resource. */
function verifyBilling(e: Engine, fail: (m: string) => void): void {
  const audit = e.auditLog();
  const billable = audit.filter((a) => a.billable);
  const usage = e.kmsUsage();
  const calls = usage.reduce((a, u) => a + u.calls, 0);
  const charged = usage.reduce((a, u) => a + u.chargedMicros, 0);
  if (calls !== billable.length) fail(`billing: kmsUsage counts ${calls} calls but the audit log has ${billable.length} billable entries`);
  const auditCharged = billable.reduce((a, x) => a + x.priceMicros, 0);
  if (charged !== auditCharged) fail(`billing: kmsUsage charged ${charged} but the audit log prices sum to ${auditCharged}`);
  const acct = e.getAccount();
  if (acct.balanceMicros !== 100_000_000 - auditCharged) fail(`billing: balance ${acct.balanceMicros} != opening 100000000 - audited ${auditCharged}`);
  const seen = new Set<string>();
  for (const a of billable) {
    if (a.operation !== "CreateDisk" && a.operation !== "CreateSnapshot") continue;
    const k = `${a.operation}:${a.resourceId}`;
    if (seen.has(k)) fail(`billing: ${a.operation} of ${a.resourceId} charged twice`);
    seen.add(k);
  }
}

function verifyKind(
  e: Engine,
  kind: CrashKind,
  s: Setup,
  st: KindState,
  acked: Record<string, unknown>[],
  inflight: Record<string, unknown> | null,
  fail: (m: string) => void,
  ok: () => void,
): void {
  switch (kind) {
    case "create": {
      for (const a of acked) {
        const again = e.createDisk({ zone: ZONE, sizeGb: 10, encrypt: a.encrypt as boolean, clientToken: a.token as string, name: a.token as string });
        if (again.diskId !== a.diskId) fail(`retrying acknowledged create ${String(a.token)} made ${again.diskId}, not ${String(a.diskId)}`);
        else ok();
      }
      const before = e.listDisks().length;
      if (inflight) {
        const d1 = e.createDisk({ zone: ZONE, sizeGb: 10, encrypt: inflight.encrypt as boolean, clientToken: inflight.token as string, name: inflight.token as string });
        const d2 = e.createDisk({ zone: ZONE, sizeGb: 10, encrypt: inflight.encrypt as boolean, clientToken: inflight.token as string, name: inflight.token as string });
        if (d1.diskId !== d2.diskId) fail(`two retries of the interrupted create ${String(inflight.token)} made two disks`);
      }
      const disks = e.listDisks();
      const expected = acked.length + (inflight ? 1 : 0);
      if (disks.length !== expected) fail(`${disks.length} disks exist for ${expected} create tokens (before retry: ${before})`);
      const names = new Set(disks.map((d) => d.name));
      if (names.size !== disks.length) fail(`duplicate disks for one clientToken: ${disks.map((d) => d.name).join(",")}`);
      const encCreates = e.auditLog().filter((a) => a.billable && a.operation === "CreateDisk");
      const encDisks = disks.filter((d) => d.encrypted).map((d) => d.diskId);
      for (const d of encDisks) if (!encCreates.some((a) => a.resourceId === d)) fail(`encrypted disk ${d} was never charged`);
      for (const d of disks) e.deleteDisk(d.diskId);
      return;
    }
    case "attach": {
      const bump = (k: string) => st.expectAudit.set(k, (st.expectAudit.get(k) ?? 0) + 1);
      const enc = new Set(e.listDisks().filter((d) => d.encrypted).map((d) => d.diskId));
      for (const a of acked) if (enc.has(a.diskId as string)) bump(`${a.op === "attach" ? "AttachDisk" : "DetachDisk"}:${String(a.diskId)}`);
      if (inflight) {
        const diskId = inflight.diskId as string;
        if (inflight.op === "attach") {
          const a1 = e.attachDisk({ diskId, instanceId: s.instanceId });
          const a2 = e.attachDisk({ diskId, instanceId: s.instanceId });
          if (a1.attachmentId !== a2.attachmentId) fail(`retried attach of ${diskId} made two attachments`);
          if (e.listAttachments({ diskId }).length !== 1) fail(`disk ${diskId} has ${e.listAttachments({ diskId }).length} attachments after retried attach`);
        } else {
          swallowNotFound(() => e.detachDisk(diskId));
          if (e.listAttachments({ diskId }).length !== 0) fail(`disk ${diskId} still attached after retried detach`);
        }
        if (enc.has(diskId)) bump(`${inflight.op === "attach" ? "AttachDisk" : "DetachDisk"}:${diskId}`);
      }
      const audit = e.auditLog().filter((a) => a.billable);
      for (const d of s.disks) {
        for (const op of ["AttachDisk", "DetachDisk"]) {
          const n = audit.filter((a) => a.operation === op && a.resourceId === d).length;
          const want = st.expectAudit.get(`${op}:${d}`) ?? 0;
          if (n !== want) fail(`billing: ${op} of ${d} audited ${n} times, expected ${want} (completed operations, retries included)`);
        }
      }
      ok();
      return;
    }
    case "write-small":
    case "write-large": {
      const slots = s.slots as NonNullable<Setup["slots"]>;
      for (const a of acked) if (a.op === "write") st.lastGen.set(a.slot as number, a.gen as string);
      const inflightSlot = inflight?.op === "write" ? (inflight.slot as number) : -1;
      for (let k = 0; k < slots.length; k++) {
        const sl = slots[k];
        const last = st.lastGen.get(k) ?? null;
        const candidates: (string | null)[] = [last];
        if (k === inflightSlot) candidates.push(inflight?.gen as string);
        const data = e.read(s.attachments[sl.att], sl.offset, sl.length);
        const got = whichGen(data, candidates);
        if (got === undefined) {
          const expected = last === null ? Buffer.alloc(sl.length) : pattern(last, sl.length);
          const firstBad = data.findIndex((b, i) => b !== expected[i]);
          fail(`slot ${k} (${sl.length} bytes at ${sl.offset}, attachment ${sl.att}) holds neither the acknowledged write ${String(last)} nor the in-flight one${k === inflightSlot ? ` ${String(inflight?.gen)}` : ""} (first byte differing from the acknowledged data: ${firstBad})`);
        } else {
          st.lastGen.set(k, got as string | null);
          ok();
        }
      }
      return;
    }
    case "snapshot": {
      const diskId = s.disks[0];
      const snapAudit = e.auditLog().filter((a) => a.billable && a.operation === "CreateSnapshot");
      const live = e.listSnapshots({ diskId });
      if (inflight?.op === "snapshot") {
        const r1 = e.createSnapshot({ diskId, clientToken: inflight.token as string });
        const r2 = e.createSnapshot({ diskId, clientToken: inflight.token as string });
        if (r1.snapshotId !== r2.snapshotId) fail(`two retries of snapshot ${String(inflight.token)} made two snapshots`);
        const after = e.listSnapshots({ diskId });
        if (after.length > live.length + 1) fail(`retrying the interrupted snapshot made ${after.length - live.length} snapshots`);
        e.deleteSnapshot(r1.snapshotId);
      }
      if (inflight?.op === "deleteSnapshot") swallowNotFound(() => e.deleteSnapshot(inflight.snapshotId as string));
      for (const a of snapAudit) {
        if (snapAudit.filter((x) => x.resourceId === a.resourceId).length > 1) fail(`snapshot ${a.resourceId} charged more than once`);
      }
      // The newest acknowledged snapshot that still exists holds the data written before it.
      const newest = [...acked].reverse().find((a) => a.op === "snapshot" && e.findSnapshot(a.snapshotId as string));
      if (newest) {
        const clone = e.createDisk({ zone: ZONE, sizeGb: 1, snapshotId: newest.snapshotId as string });
        const data = readDisk(e, s.instanceId, clone.diskId, 1000, 200_000);
        if (whichGen(data, [newest.gen as string]) === undefined) fail(`snapshot ${String(newest.snapshotId)} does not hold write ${String(newest.gen)} acknowledged before it`);
        else ok();
        e.deleteDisk(clone.diskId);
      }
      // Acknowledged data on the disk itself.
      const lastWrite = [...acked].reverse().find((a) => a.op === "write");
      if (lastWrite) {
        const cands = [lastWrite.gen as string];
        if (inflight?.op === "write") cands.push(inflight.gen as string);
        if (whichGen(e.read(s.attachments[0], 1000, 200_000), cands) === undefined) fail(`disk lost acknowledged write ${String(lastWrite.gen)}`);
        else ok();
      }
      for (const sn of e.listSnapshots({ diskId }).slice(0, -3)) e.deleteSnapshot(sn.snapshotId);
      return;
    }
    case "rollback": {
      const diskId = s.disks[0];
      for (const a of acked) st.rollbackGen = a.op === "write" ? (a.gen as string) : "base";
      const cands = [st.rollbackGen];
      if (inflight) cands.push(inflight.op === "write" ? (inflight.gen as string) : "base");
      for (const a of e.listAttachments({ diskId })) e.detachDisk(a.attachmentId); // a write op killed while attached
      const got = whichGen(readDisk(e, s.instanceId, diskId, 5000, 150_000), cands);
      if (got === undefined) fail(`disk holds neither acknowledged state ${st.rollbackGen} nor the in-flight ${inflight ? String(inflight.op) : "-"}`);
      else {
        st.rollbackGen = got as string;
        ok();
      }
      if (inflight?.op === "rollback") {
        e.applySnapshot(s.snapshotId as string, diskId);
        st.rollbackGen = "base";
        if (whichGen(readDisk(e, s.instanceId, diskId, 5000, 150_000), ["base"]) === undefined) fail("retried rollback did not restore the snapshot's data");
      }
      return;
    }
    case "migrate": {
      const src = s.disks[0];
      if (inflight?.op === "migrate") {
        const t = inflight.token as string;
        const d1 = e.migrateDisk({ sourceDiskId: src, encrypt: inflight.encrypt as boolean, clientToken: t });
        const d2 = e.migrateDisk({ sourceDiskId: src, encrypt: inflight.encrypt as boolean, clientToken: t });
        if (d1.diskId !== d2.diskId) fail(`two retries of migration ${t} made two disks`);
        if (d1.encrypted !== inflight.encrypt) fail(`retried migration ${t} made a disk with encrypted=${d1.encrypted}`);
        for (const [gen, off, len] of MIGRATE_DATA) {
          if (whichGen(readDisk(e, s.instanceId, d1.diskId, off, len), [gen]) === undefined) fail(`retried migration ${t}: ${gen} (${len} bytes at ${off}) was not copied intact`);
          else ok();
        }
        const holes = readDisk(e, s.instanceId, d1.diskId, 300 * MiB, 65536);
        if (!holes.every((b) => b === 0)) fail(`retried migration ${t}: a hole of the source is not zeros on the target`);
        if (d1.usedBytes !== e.getDisk(src).usedBytes) fail(`retried migration ${t}: target uses ${d1.usedBytes} bytes, source ${e.getDisk(src).usedBytes}`);
      }
      if (inflight?.op === "delete") swallowNotFound(() => e.deleteDisk(inflight.diskId as string));
      for (const d of e.listDisks()) if (d.diskId !== src) e.deleteDisk(d.diskId);
      for (const [gen, off, len] of MIGRATE_DATA) if (whichGen(readDisk(e, s.instanceId, src, off, len), [gen]) === undefined) fail(`the migration source lost ${gen}`);
      return;
    }
    case "delete": {
      if (inflight?.op === "deleteDisk") swallowNotFound(() => e.deleteDisk(inflight.id as string));
      if (inflight?.op === "deleteSnapshot") swallowNotFound(() => e.deleteSnapshot(inflight.id as string));
      for (const a of acked) {
        if (a.op === "deleteDisk" && e.findDisk(a.id as string)) fail(`acknowledged delete of ${String(a.id)} was undone`);
        if (a.op === "deleteSnapshot" && e.findSnapshot(a.id as string)) fail(`acknowledged delete of ${String(a.id)} was undone`);
        if (String(a.op).startsWith("delete")) ok();
      }
      // Clean up what the killed iteration left; then nothing may remain.
      for (const a of e.listAttachments()) e.detachDisk(a.attachmentId);
      for (const sn of e.listSnapshots()) e.deleteSnapshot(sn.snapshotId);
      for (const d of e.listDisks()) e.deleteDisk(d.diskId);
      const c = e.check();
      if (c.units !== 0) fail(`${c.units} units remain after every disk and snapshot was deleted`);
      const blocks = path.join(e.dir, "blocks");
      const left = fs.existsSync(blocks) ? fs.readdirSync(blocks) : [];
      if (left.length) fail(`block files remain after every disk and snapshot was deleted: ${left.join(", ")}`);
      return;
    }
  }
}
