/**
 * Memory of an M1 migration: a plain disk with `dataBytes` written (set up in this process,
 * then the engine is closed), migrated to a new encrypted disk by a child process
 * (migrate-child.js). The peak is the child's VmHWM from /proc (its whole life: Node's own
 * baseline plus the migration); the parent also samples the child's VmRSS every 10 ms.
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { freshEngine, INSTANCE_TYPE, log, patternBuffer, ZONE, GiB, MiB } from "./util";

export interface MigrateOptions {
  dataBytes: number;
}

export interface MigrateResult {
  options: MigrateOptions;
  peakRssMiB: number;
  baselineRssMiB: number;
  sampledPeakRssMiB: number;
  ms: number;
  mibs: number;
  copiedBytes: number;
}

function sampleRssKiB(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export async function benchMigrate(base: string, opts: MigrateOptions): Promise<MigrateResult> {
  const { engine, dir, rootKeyFile } = freshEngine(base, "migrate");
  let diskId: string;
  try {
    const ins = engine.createInstance({ zone: ZONE, instanceType: INSTANCE_TYPE });
    const disk = engine.createDisk({ zone: ZONE, sizeGb: Math.ceil(opts.dataBytes / GiB) + 1, encrypt: false, name: "migrate-src" });
    diskId = disk.diskId;
    const att = engine.attachDisk({ diskId, instanceId: ins.instanceId });
    const chunk = patternBuffer(64 * MiB, 9);
    for (let off = 0; off < opts.dataBytes; off += chunk.length) engine.write(att.attachmentId, off, chunk.subarray(0, Math.min(chunk.length, opts.dataBytes - off)));
    engine.flush(att.attachmentId);
    engine.detachDisk(att.attachmentId);
  } finally {
    engine.close();
  }
  const child = spawn(process.execPath, [path.join(__dirname, "migrate-child.js"), dir, rootKeyFile, diskId], { stdio: ["ignore", "pipe", "inherit"] });
  let sampled = 0;
  const timer = setInterval(() => {
    const r = child.pid ? sampleRssKiB(child.pid) : null;
    if (r !== null && r > sampled) sampled = r;
  }, 10);
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString("utf8")));
  const code: number = await new Promise((resolve) => child.on("exit", (c) => resolve(c ?? -1)));
  clearInterval(timer);
  if (code !== 0) throw new Error(`migration child exited with ${code}: ${out.trim()}`);
  const r = JSON.parse(out.trim().split("\n").pop() as string) as {
    copiedBytes: number;
    ms: number;
    before: { rssKiB: number; hwmKiB: number };
    after: { rssKiB: number; hwmKiB: number };
  };
  const res: MigrateResult = {
    options: opts,
    peakRssMiB: r.after.hwmKiB / 1024,
    baselineRssMiB: r.before.rssKiB / 1024,
    sampledPeakRssMiB: sampled / 1024,
    ms: r.ms,
    mibs: r.copiedBytes / MiB / (r.ms / 1000),
    copiedBytes: r.copiedBytes,
  };
  log(`migrate ${(opts.dataBytes / MiB).toFixed(0)} MiB plain -> encrypted: peak RSS ${res.peakRssMiB.toFixed(1)} MiB (baseline ${res.baselineRssMiB.toFixed(1)}), ${res.mibs.toFixed(0)} MiB/s`);
  return res;
}
