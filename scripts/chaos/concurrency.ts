/**
 * Concurrency harness (issue 7, part 2): N processes on one engine directory.
 */
import * as fs from "fs";
import * as path from "path";
import { openEngine, type Engine } from "../../provider/engine";
import { INSTANCE_TYPE, pattern, spawnWorker, tempEngineDir, whichGen, ZONE } from "./common";
import type { MixedConfig, MixedResult } from "./mixed-worker";

const workerScript = () => path.join(__dirname, "mixed-worker.js");

function parseResult(stdout: string): MixedResult {
  const line = stdout.split("\n").find((l) => l.startsWith("result "));
  if (!line) return { worker: -1, ops: {}, billable: 0, errors: [`no result line; stdout: ${stdout.slice(-300)}`] };
  return JSON.parse(line.slice(7)) as MixedResult;
}

async function runWorkers(cfgs: MixedConfig[], goFile?: string): Promise<MixedResult[]> {
  const ws = cfgs.map((c) => spawnWorker(workerScript(), [JSON.stringify(c)]));
  if (goFile) {
    await Promise.all(ws.map((w) => w.ready));
    fs.writeFileSync(goFile, "go");
  }
  const exits = await Promise.all(ws.map((w) => w.exited));
  return exits.map((x) => {
    const r = parseResult(x.stdout);
    if (x.code !== 0) r.errors.push(`exit ${x.code} ${x.signal ?? ""}: ${x.stderr.slice(-500)}`);
    return r;
  });
}

function billableCalls(e: Engine): number {
  return e.auditLog().filter((a) => a.billable).length;
}

export interface MixedRunResult {
  workers: number;
  durationMs: number;
  operations: number;
  ops: Record<string, number>;
  errors: string[];
  billing: { workersCounted: number; audited: number; kmsUsageCalls: number };
  problems: string[];
  findings: string[];
}

/** `workers` processes doing mixed operations on their own resources in one directory. */
export async function runMixed(opts: { workers: number; durationMs: number; seed?: number }): Promise<MixedRunResult> {
  const te = tempEngineDir("mixed");
  try {
    let e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    e.authorizeKms();
    // The region's CMK exists before the race (its creation is a free, non-billable call anyway).
    e.createDisk({ zone: ZONE, sizeGb: 1, encrypt: true, clientToken: "warm" });
    const before = billableCalls(e);
    e.close();
    const seed = opts.seed ?? 1;
    const results = await runWorkers(
      Array.from({ length: opts.workers }, (_, w) => ({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile, mode: "mixed" as const, worker: w, durationMs: opts.durationMs, seed })),
    );
    e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    const out: MixedRunResult = { workers: opts.workers, durationMs: opts.durationMs, operations: 0, ops: {}, errors: [], billing: { workersCounted: 0, audited: 0, kmsUsageCalls: 0 }, problems: [], findings: [] };
    try {
      for (const r of results) {
        for (const [k, v] of Object.entries(r.ops)) {
          out.ops[k] = (out.ops[k] ?? 0) + v;
          out.operations += v;
        }
        out.errors.push(...r.errors.map((x) => `worker ${r.worker}: ${x}`));
        out.billing.workersCounted += r.billable;
        // Acknowledged writes still there after every process finished.
        for (const d of r.disks ?? []) {
          for (const [slot, gen] of Object.entries(d.gens)) {
            const got = e.read(d.attachmentId, Number(slot) * 70_000 + r.worker * 13, 50_000);
            if (whichGen(got, [gen]) === undefined) out.errors.push(`worker ${r.worker}: lost update on ${d.diskId} slot ${slot}`);
          }
        }
      }
      out.billing.audited = billableCalls(e) - before;
      out.billing.kmsUsageCalls = e.kmsUsage().reduce((a, u) => a + u.calls, 0) - before;
      out.problems = e.check().problems;
      out.findings = e.verifyNoKeyMaterial().findings;
    } finally {
      e.close();
    }
    return out;
  } finally {
    te.cleanup();
  }
}

export interface SharedRunResult {
  writes: number;
  errors: string[];
  lost: string[];
  problems: string[];
}

/** `workers` processes writing disjoint 4 KiB sectors of the same 64 KiB units of one disk. */
export async function runSharedUnits(opts: { workers: number; durationMs: number; encrypt: boolean }): Promise<SharedRunResult> {
  const te = tempEngineDir("shared");
  try {
    let e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    e.authorizeKms();
    const ins = e.createInstance({ zone: ZONE, instanceType: INSTANCE_TYPE });
    const d = e.createDisk({ zone: ZONE, sizeGb: 1, encrypt: opts.encrypt });
    const att = e.attachDisk({ diskId: d.diskId, instanceId: ins.instanceId }).attachmentId;
    e.close();
    const results = await runWorkers(
      Array.from({ length: opts.workers }, (_, w) => ({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile, mode: "shared-writer" as const, worker: w, durationMs: opts.durationMs, seed: w + 1, attachmentId: att })),
    );
    e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    const out: SharedRunResult = { writes: 0, errors: [], lost: [], problems: [] };
    try {
      for (const r of results) {
        out.writes += r.ops.write ?? 0;
        out.errors.push(...r.errors.map((x) => `worker ${r.worker}: ${x}`));
        for (const [k, gen] of Object.entries(r.sectors ?? {})) {
          const got = e.read(att, Number(k) * 65536 + r.worker * 4096, 4096);
          if (whichGen(got, [gen]) === undefined) out.lost.push(`worker ${r.worker} sector ${k}: acknowledged ${gen} lost (now ${got.every((b) => b === 0) ? "zeros" : "other data"})`);
        }
      }
      out.problems = e.check().problems;
    } finally {
      e.close();
    }
    return out;
  } finally {
    te.cleanup();
  }
}

/** `workers` processes create a disk with one clientToken at the same instant. */
export async function runTokenRace(opts: { workers: number }): Promise<{ diskIds: string[]; errors: string[]; disks: number }> {
  const te = tempEngineDir("token");
  try {
    let e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    e.authorizeKms();
    e.createDisk({ zone: ZONE, sizeGb: 1, encrypt: true }); // region key exists
    e.close();
    const goFile = path.join(te.root, "go");
    const results = await runWorkers(
      Array.from({ length: opts.workers }, (_, w) => ({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile, mode: "token-race" as const, worker: w, durationMs: 0, seed: w + 1, token: "same-token", goFile })),
      goFile,
    );
    e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    try {
      return { diskIds: results.map((r) => r.diskId ?? "-"), errors: results.flatMap((r) => r.errors), disks: e.listDisks().length - 1 };
    } finally {
      e.close();
    }
  } finally {
    te.cleanup();
  }
}

/** One process writes an attached encrypted disk while another migrates it. */
export async function runMigrateWhileWriting(opts: { durationMs: number }): Promise<{ migrations: number; writes: number; errors: string[]; problems: string[] }> {
  const te = tempEngineDir("migwrite");
  try {
    let e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    e.authorizeKms();
    const ins = e.createInstance({ zone: ZONE, instanceType: INSTANCE_TYPE });
    const d = e.createDisk({ zone: ZONE, sizeGb: 1, encrypt: true });
    const att = e.attachDisk({ diskId: d.diskId, instanceId: ins.instanceId }).attachmentId;
    e.write(att, 0, pattern("seed", 16 * 65536));
    e.close();
    const base = { dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile, durationMs: opts.durationMs, attachmentId: att, diskId: d.diskId };
    const results = await runWorkers([
      { ...base, mode: "shared-writer", worker: 0, seed: 1 },
      { ...base, mode: "shared-writer", worker: 1, seed: 2 },
      { ...base, mode: "migrator", worker: 2, seed: 3 },
    ]);
    e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    try {
      return {
        migrations: results[2].ops.migrate ?? 0,
        writes: (results[0].ops.write ?? 0) + (results[1].ops.write ?? 0),
        errors: results.flatMap((r) => r.errors.map((x) => `worker ${r.worker}: ${x}`)),
        problems: e.check().problems,
      };
    } finally {
      e.close();
    }
  } finally {
    te.cleanup();
  }
}

/** Writers rewrite whole units while readers check each read returns the unit it asked for. */
export async function runUnitReaders(opts: { writers: number; readers: number; durationMs: number; encrypt: boolean }): Promise<{ reads: number; writes: number; errors: string[]; problems: string[] }> {
  const te = tempEngineDir("unitread");
  try {
    let e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    e.authorizeKms();
    const ins = e.createInstance({ zone: ZONE, instanceType: INSTANCE_TYPE });
    const d = e.createDisk({ zone: ZONE, sizeGb: 1, encrypt: opts.encrypt });
    const att = e.attachDisk({ diskId: d.diskId, instanceId: ins.instanceId }).attachmentId;
    for (let k = 0; k < 16; k++) e.write(att, k * 65536, Buffer.alloc(65536, Buffer.from(`unit-${String(k).padStart(2, "0")}|`)));
    e.close();
    const base = { dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile, durationMs: opts.durationMs, attachmentId: att };
    const results = await runWorkers([
      ...Array.from({ length: opts.writers }, (_, w) => ({ ...base, mode: "unit-writer" as const, worker: w, seed: w + 1 })),
      ...Array.from({ length: opts.readers }, (_, r) => ({ ...base, mode: "unit-reader" as const, worker: opts.writers + r, seed: 100 + r })),
    ]);
    e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    try {
      return {
        reads: results.reduce((a, r) => a + (r.ops.read ?? 0), 0),
        writes: results.reduce((a, r) => a + (r.ops.write ?? 0), 0),
        errors: results.flatMap((r) => r.errors.map((x) => `worker ${r.worker}: ${x}`)),
        problems: e.check().problems,
      };
    } finally {
      e.close();
    }
  } finally {
    te.cleanup();
  }
}

/** Two (or more) `pulumi up`/`destroy` provider sessions on one engine directory. */
export async function runProviderSessions(opts: { sessions: number; durationMs: number }): Promise<{ cycles: number; hookCalls: number; errors: string[]; problems: string[]; leftovers: number }> {
  const te = tempEngineDir("sessions");
  try {
    const script = path.join(__dirname, "provider-worker.js");
    const ws = Array.from({ length: opts.sessions }, (_, w) => spawnWorker(script, [JSON.stringify({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile, worker: w, durationMs: opts.durationMs })]));
    const exits = await Promise.all(ws.map((w) => w.exited));
    const results = exits.map((x) => {
      const line = x.stdout.split("\n").find((l) => l.startsWith("result "));
      const r = line ? (JSON.parse(line.slice(7)) as { cycles: number; ops: Record<string, number>; errors: string[] }) : { cycles: 0, ops: {}, errors: [`no result (exit ${x.code}): ${x.stderr.slice(-400)}`] };
      return r;
    });
    const e = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
    try {
      return {
        cycles: results.reduce((a, r) => a + r.cycles, 0),
        hookCalls: results.reduce((a, r) => a + Object.values(r.ops).reduce((x, y) => x + y, 0), 0),
        errors: results.flatMap((r, i) => r.errors.map((x) => `session ${i}: ${x}`)),
        problems: e.check().problems,
        leftovers: e.listDisks().length + e.listSnapshots().length + e.listAttachments().length + e.listInstances().length,
      };
    } finally {
      e.close();
    }
  } finally {
    te.cleanup();
  }
}
