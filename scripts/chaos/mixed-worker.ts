/**
 * Concurrency worker (issue 7, part 2): one of N processes sharing an engine directory.
 * Modes:
 *  - mixed: create / attach / write+read-back / snapshot / rollback / migrate / detach / delete /
 *    flush on its own resources for `durationMs`, counting the billable KMS calls it caused;
 *  - shared-writer: writes its own 4 KiB sectors of units that other writers also write
 *    (partial-unit writes to one disk from several processes: lost-update check);
 *  - token-race: waits for `startAt`, then creates a disk with a shared clientToken;
 *  - migrator: migrates a disk another process is writing;
 *  - unit-writer / unit-reader: whole-unit rewrites of units 0-15 of one disk, each unit always
 *    filled with its own index, while readers check every read returns that unit's own bytes.
 * Prints `ready`, then one line `result <json>`.
 */
import * as fs from "fs";
import { isEngineError, openEngine } from "../../provider/engine";
import { pattern, rng, whichGen, ZONE, INSTANCE_TYPE } from "./common";

export interface MixedConfig {
  dir: string;
  kmsRootKeyFile: string;
  mode: "mixed" | "shared-writer" | "token-race" | "migrator" | "unit-writer" | "unit-reader";
  worker: number;
  durationMs: number;
  seed: number;
  /** shared-writer/migrator: the shared attachment and disk. */
  attachmentId?: string;
  diskId?: string;
  workers?: number;
  token?: string;
  /** token-race: created by the harness once every racer is ready. */
  goFile?: string;
}

export interface MixedResult {
  worker: number;
  ops: Record<string, number>;
  billable: number;
  errors: string[];
  /** shared-writer: sector index -> last acknowledged generation. */
  sectors?: Record<string, string>;
  /** mixed: attached disks and what their slots must hold. */
  disks?: { diskId: string; attachmentId: string; gens: Record<string, string> }[];
  diskId?: string;
}

const SLOT = 50_000;
const SLOTS = 8;
const slotOffset = (w: number, s: number) => s * 70_000 + w * 13;

function main(): void {
  const cfg = JSON.parse(process.argv[2]) as MixedConfig;
  const e = openEngine({ dir: cfg.dir, kmsRootKeyFile: cfg.kmsRootKeyFile });
  const rand = rng(cfg.seed);
  const res: MixedResult = { worker: cfg.worker, ops: {}, billable: 0, errors: [] };
  const count = (k: string) => (res.ops[k] = (res.ops[k] ?? 0) + 1);
  const errText = (err: unknown) => (isEngineError(err) ? `${err.code}: ${err.message}` : `${(err as Error)?.name}: ${(err as Error)?.message ?? String(err)}`);
  process.stdout.write("ready\n");
  const deadline = Date.now() + cfg.durationMs;
  // Never outlive the harness.
  const ppid = process.ppid;
  setInterval(() => process.ppid !== ppid && process.exit(4), 1000).unref();

  if (cfg.mode === "token-race") {
    const cell = new Int32Array(new SharedArrayBuffer(4));
    while (!fs.existsSync(cfg.goFile as string)) Atomics.wait(cell, 0, 0, 1); // line the racers up
    try {
      res.diskId = e.createDisk({ zone: ZONE, sizeGb: 5, encrypt: true, clientToken: cfg.token }).diskId;
      count("createDisk");
    } catch (err) {
      res.errors.push(errText(err));
    }
  } else if (cfg.mode === "shared-writer") {
    // Sector k of this writer: 4 KiB at unit (k) offset w*4096: every unit is shared by all writers.
    const sectors: Record<string, string> = {};
    for (let n = 0; Date.now() < deadline; n++) {
      const k = Math.floor(rand() * 16);
      const gen = `w${cfg.worker}.${n}`;
      try {
        e.write(cfg.attachmentId as string, k * 65536 + cfg.worker * 4096, pattern(gen, 4096));
        sectors[k] = gen;
        count("write");
      } catch (err) {
        res.errors.push(errText(err));
      }
    }
    res.sectors = sectors;
  } else if (cfg.mode === "unit-writer" || cfg.mode === "unit-reader") {
    const unitFill = (k: number) => Buffer.from(`unit-${String(k).padStart(2, "0")}|`);
    for (let n = 0; Date.now() < deadline; n++) {
      const k = Math.floor(rand() * 16);
      try {
        if (cfg.mode === "unit-writer") {
          const buf = Buffer.alloc(65536, unitFill(k));
          buf.writeUInt32BE(n, 0); // a new generation each time, same unit identity
          e.write(cfg.attachmentId as string, k * 65536, buf);
          count("write");
        } else {
          const got = e.read(cfg.attachmentId as string, k * 65536 + 4096, 8192);
          count("read");
          const want = Buffer.alloc(8192 + 4096, unitFill(k)).subarray(4096);
          if (!got.equals(want)) res.errors.push(`read of unit ${k} returned bytes of ${/unit-\d\d/.exec(got.toString("latin1"))?.[0] ?? (got.every((b) => b === 0) ? "zeros" : "unknown data")}`);
        }
      } catch (err) {
        res.errors.push(errText(err));
      }
      if (res.errors.length > 20) break;
    }
  } else if (cfg.mode === "migrator") {
    for (let n = 0; Date.now() < deadline; n++) {
      try {
        const d = e.migrateDisk({ sourceDiskId: cfg.diskId as string, encrypt: n % 2 === 0 });
        e.deleteDisk(d.diskId);
        count("migrate");
      } catch (err) {
        res.errors.push(errText(err));
      }
    }
  } else {
    mixed(cfg, e, rand, res, count, errText, deadline);
  }
  process.stdout.write(`result ${JSON.stringify(res)}\n`);
  e.close();
}

interface MyDisk {
  diskId: string;
  enc: boolean;
  att: string | null;
  gens: Record<string, string>;
  snaps: { id: string; gens: Record<string, string> }[];
}

function mixed(cfg: MixedConfig, e: ReturnType<typeof openEngine>, rand: () => number, res: MixedResult, count: (k: string) => void, errText: (e: unknown) => string, deadline: number): void {
  const w = cfg.worker;
  const instanceId = e.createInstance({ zone: ZONE, instanceType: INSTANCE_TYPE, clientToken: `ins-${cfg.seed}-${w}` }).instanceId;
  const disks: MyDisk[] = [];
  let n = 0;
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
  const verify = (d: MyDisk, slot: string) => {
    const got = e.read(d.att as string, slotOffset(w, Number(slot)), SLOT);
    if (whichGen(got, [d.gens[slot]]) === undefined) res.errors.push(`lost update: ${d.diskId} slot ${slot} does not hold acknowledged ${d.gens[slot]}`);
  };
  while (Date.now() < deadline) {
    n++;
    const attached = disks.filter((d) => d.att);
    const free = disks.filter((d) => !d.att);
    const r = rand();
    try {
      if (disks.length < 3 || (r < 0.06 && disks.length < 6)) {
        const enc = rand() < 0.6;
        const d = e.createDisk({ zone: ZONE, sizeGb: 1, encrypt: enc, clientToken: `c-${cfg.seed}-${w}-${n}` });
        disks.push({ diskId: d.diskId, enc, att: null, gens: {}, snaps: [] });
        if (enc) res.billable++;
        count("createDisk");
      } else if (r < 0.18 && free.length) {
        const d = pick(free);
        d.att = e.attachDisk({ diskId: d.diskId, instanceId }).attachmentId;
        if (d.enc) res.billable++;
        count("attachDisk");
        for (const s of Object.keys(d.gens)) verify(d, s);
      } else if (r < 0.5 && attached.length) {
        const d = pick(attached);
        const slot = String(Math.floor(rand() * SLOTS));
        const gen = `${w}.${n}`;
        e.write(d.att as string, slotOffset(w, Number(slot)), pattern(gen, SLOT));
        d.gens[slot] = gen;
        count("write");
        verify(d, slot);
        count("read");
      } else if (r < 0.58 && disks.length) {
        const d = pick(disks);
        const s = e.createSnapshot({ diskId: d.diskId, clientToken: `s-${cfg.seed}-${w}-${n}` });
        d.snaps.push({ id: s.snapshotId, gens: { ...d.gens } });
        if (d.enc) res.billable++;
        count("createSnapshot");
      } else if (r < 0.64 && free.some((d) => d.snaps.length)) {
        const d = pick(free.filter((x) => x.snaps.length));
        const s = d.snaps[d.snaps.length - 1];
        e.applySnapshot(s.id, d.diskId);
        d.gens = { ...s.gens };
        if (d.enc) res.billable++;
        count("applySnapshot");
      } else if (r < 0.67 && free.length) {
        const d = pick(free);
        const m = e.migrateDisk({ sourceDiskId: d.diskId, encrypt: !d.enc, clientToken: `m-${cfg.seed}-${w}-${n}` });
        disks.push({ diskId: m.diskId, enc: !d.enc, att: null, gens: { ...d.gens }, snaps: [] });
        if (!d.enc) res.billable++;
        count("migrateDisk");
      } else if (r < 0.82 && attached.length) {
        const d = pick(attached);
        e.detachDisk(d.att as string);
        d.att = null;
        if (d.enc) res.billable++;
        count("detachDisk");
      } else if (r < 0.9 && free.length > 2) {
        const d = pick(free);
        for (const s of d.snaps) e.deleteSnapshot(s.id);
        e.deleteDisk(d.diskId);
        disks.splice(disks.indexOf(d), 1);
        count("deleteDisk");
      } else if (attached.length) {
        e.flush(pick(attached).att as string);
        count("flush");
      }
    } catch (err) {
      res.errors.push(errText(err));
      if (res.errors.length > 50) break;
    }
  }
  for (const d of disks.filter((x) => x.att)) for (const s of Object.keys(d.gens)) verify(d, s);
  res.disks = disks.filter((d) => d.att).map((d) => ({ diskId: d.diskId, attachmentId: d.att as string, gens: d.gens }));
}

try {
  main();
} catch (err) {
  process.stdout.write(`result ${JSON.stringify({ worker: -1, ops: {}, billable: 0, errors: [`worker crashed: ${(err as Error)?.stack ?? String(err)}`] })}\n`);
}
