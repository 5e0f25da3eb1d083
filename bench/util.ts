/** Shared plumbing for the benchmark sections: timers, machine load, page cache, temp engines. */
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { openEngine, type Engine } from "../provider/engine";

export const KiB = 1024;
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
export const ZONE = "ap-guangzhou-3";
export const INSTANCE_TYPE = "S5.MEDIUM4";

export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Runs `fn` and returns its duration in milliseconds. */
export function timeMs(fn: () => void): number {
  const t = nowMs();
  fn();
  return nowMs() - t;
}

/** Runs `fn` and returns wall-clock and this process's CPU time (user + system, all threads) in ms. */
export function timeCpu(fn: () => void): { wallMs: number; cpuMs: number } {
  const c0 = process.cpuUsage();
  const t = nowMs();
  fn();
  const wallMs = nowMs() - t;
  const c = process.cpuUsage(c0);
  return { wallMs, cpuMs: (c.user + c.system) / 1000 };
}

export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

// ---- machine load --------------------------------------------------------------------------

interface CpuTimes {
  busy: number;
  total: number;
}

function cpuTimes(): CpuTimes | null {
  try {
    const line = fs.readFileSync("/proc/stat", "utf8").split("\n")[0];
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = v[3] + (v[4] || 0);
    const total = v.reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

/** What the machine was doing while a section ran: load averages, and CPU used by everyone vs by us. */
export interface LoadSample {
  section: string;
  loadavgStart: number[];
  loadavgEnd: number[];
  /** Fraction of all CPUs busy during the section (all processes). */
  machineBusy: number | null;
  /** Fraction of all CPUs this process (and its waited-for children) used. */
  ownBusy: number;
  /** machineBusy - ownBusy: roughly what other tenants took. */
  othersBusy: number | null;
  cpus: number;
  wallMs: number;
}

export class LoadMeter {
  readonly samples: LoadSample[] = [];

  async measure<T>(section: string, fn: () => Promise<T> | T): Promise<T> {
    const la0 = os.loadavg();
    const c0 = cpuTimes();
    const own0 = process.cpuUsage();
    const ch0 = childCpuSeconds();
    const t0 = nowMs();
    try {
      return await fn();
    } finally {
      const wallMs = nowMs() - t0;
      const c1 = cpuTimes();
      const own = process.cpuUsage(own0);
      const ch1 = childCpuSeconds();
      const cpus = os.cpus().length || 1;
      const ownSec = (own.user + own.system) / 1e6 + Math.max(0, ch1 - ch0);
      const ownBusy = wallMs > 0 ? ownSec / (wallMs / 1000) / cpus : 0;
      const machineBusy = c0 && c1 && c1.total > c0.total ? (c1.busy - c0.busy) / (c1.total - c0.total) : null;
      this.samples.push({
        section,
        loadavgStart: la0.map((x) => round(x, 2)),
        loadavgEnd: os.loadavg().map((x) => round(x, 2)),
        machineBusy: machineBusy === null ? null : round(machineBusy, 3),
        ownBusy: round(ownBusy, 3),
        othersBusy: machineBusy === null ? null : round(Math.max(0, machineBusy - ownBusy), 3),
        cpus,
        wallMs: Math.round(wallMs),
      });
    }
  }
}

/** CPU seconds of terminated, waited-for children (from /proc/self/stat cutime+cstime). */
function childCpuSeconds(): number {
  try {
    const stat = fs.readFileSync("/proc/self/stat", "utf8");
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // fields after the command: state(3) ... cutime is field 16, cstime 17 (1-based); rest[0] is field 3
    const cutime = Number(rest[16 - 3]);
    const cstime = Number(rest[17 - 3]);
    return (cutime + cstime) / 100;
  } catch {
    return 0;
  }
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

// ---- page cache ----------------------------------------------------------------------------

let dropWorks: boolean | null = null;

/**
 * Drops the page cache (sync, then `3` into /proc/sys/vm/drop_caches). Needs root and a
 * writable /proc/sys (true in our containers/VMs); returns false when not permitted.
 */
export function dropCaches(): boolean {
  if (dropWorks === false) return false;
  try {
    require("child_process").execFileSync("sync");
    fs.writeFileSync("/proc/sys/vm/drop_caches", "3\n");
    dropWorks = true;
  } catch {
    dropWorks = false;
  }
  return dropWorks;
}

/** Bytes of a file currently in the page cache is not observable from Node; this reports the machine's "Cached:" in MiB. */
export function pageCacheMiB(): number | null {
  try {
    const m = /^Cached:\s+(\d+) kB/m.exec(fs.readFileSync("/proc/meminfo", "utf8"));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

// ---- engines in temporary directories ----------------------------------------------------

export interface BenchEngine {
  engine: Engine;
  dir: string;
  rootKeyFile: string;
}

/** A fresh engine in its own temporary directory, KMS authorized, with a balance that never runs out. */
export function freshEngine(base: string, name: string): BenchEngine {
  const dir = path.join(base, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const rootKeyFile = path.join(base, `${name}.root.key`);
  if (!fs.existsSync(rootKeyFile)) fs.writeFileSync(rootKeyFile, crypto.randomBytes(32).toString("hex") + "\n", { mode: 0o600 });
  const engine = openEngine({ dir: path.join(dir, "engine"), kmsRootKeyFile: rootKeyFile, startingBalanceMicros: 1e15 });
  engine.authorizeKms();
  return { engine, dir: path.join(dir, "engine"), rootKeyFile };
}

/** Sum of allocated bytes (st_blocks * 512) of every file under `dir`. */
export function allocatedBytes(dir: string): number {
  let total = 0;
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.isFile()) {
        try {
          total += fs.statSync(full).blocks * 512;
        } catch {
          /* vanished */
        }
      }
    }
  };
  walk(dir);
  return total;
}

/** A buffer of random data (never an all-zero unit, so no unit is stored as a hole). */
export function patternBuffer(bytes: number, seed = 1): Buffer {
  const b = crypto.randomBytes(bytes);
  for (let i = 0; i < bytes; i += 64 * KiB) b[i] = (seed & 0xff) | 1;
  return b;
}

export function benchBaseDir(explicit?: string): string {
  const base = explicit ? path.resolve(explicit) : fs.mkdtempSync(path.join(os.tmpdir(), "encdisk-bench-"));
  fs.mkdirSync(base, { recursive: true, mode: 0o700 });
  return base;
}
