/** Shared bits of the chaos harnesses: data patterns, journals, temp engines, child processes. */
import { spawn, type ChildProcess } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export const ZONE = "ap-guangzhou-3";
export const INSTANCE_TYPE = "S5.MEDIUM4";

/** Deterministic, recognisable content for generation `gen` of a write: a 32-byte digest repeated. */
export function pattern(gen: number | string, length: number): Buffer {
  return Buffer.alloc(length, patternSeed(gen));
}

export function patternSeed(gen: number | string): Buffer {
  return crypto.createHash("sha256").update(`encdisk-chaos:${gen}`).digest();
}

/** Which known generation (or zeros) `data` is, or null if none matches. */
export function whichGen(data: Buffer, candidates: (number | string | null)[]): number | string | null | undefined {
  for (const c of candidates) {
    if (c === null) {
      if (data.every((b) => b === 0)) return null;
    } else if (data.equals(pattern(c, data.length))) return c;
  }
  return undefined;
}

export interface TempEngineDir {
  root: string;
  dir: string;
  kmsRootKeyFile: string;
  cleanup(): void;
}

export function tempEngineDir(tag: string): TempEngineDir {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `encdisk-chaos-${tag}-`));
  return { root, dir: path.join(root, "engine"), kmsRootKeyFile: path.join(root, "keys", "kms-root.key"), cleanup: () => fs.rmSync(root, { recursive: true, force: true }) };
}

/** Journal of a worker: one JSON object per line, appended with write(2) so a SIGKILL loses nothing acknowledged. */
export class Journal {
  private readonly fd: number;
  constructor(readonly file: string) {
    this.fd = fs.openSync(file, "a", 0o600);
  }
  log(entry: Record<string, unknown>): void {
    fs.writeSync(this.fd, JSON.stringify(entry) + "\n");
  }
  static read(file: string): Record<string, unknown>[] {
    if (!fs.existsSync(file)) return [];
    const out: Record<string, unknown>[] = [];
    for (const line of fs.readFileSync(file, "utf8").split("\n")) {
      if (!line) continue;
      try {
        out.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        /* a torn last line: the worker died mid-append */
      }
    }
    return out;
  }
}

/** Begun-but-unacknowledged operation of a journal, and the acknowledged ones. */
export function splitJournal(entries: Record<string, unknown>[]): { acked: Record<string, unknown>[]; inflight: Record<string, unknown> | null } {
  const begun = new Map<number, Record<string, unknown>>();
  const acked: Record<string, unknown>[] = [];
  for (const e of entries) {
    if (e.t === "b") begun.set(e.i as number, e);
    else if (e.t === "a") {
      const b = begun.get(e.i as number);
      begun.delete(e.i as number);
      acked.push({ ...b, ...e });
    }
  }
  const left = [...begun.values()];
  return { acked, inflight: left.length ? left[left.length - 1] : null };
}

export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

/** Spawns `node script args...`; resolves with the child once it printed `ready` on stdout. */
export function spawnWorker(script: string, args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; ready: Promise<void>; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string }> } {
  const child = spawn(process.execPath, [script, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
  let stdout = "";
  let stderr = "";
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((res) => (onReady = res));
  child.stdout?.on("data", (d: Buffer) => {
    stdout += d.toString();
    if (stdout.includes("ready\n")) onReady();
  });
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string }>((res) => child.on("exit", (code, signal) => res({ code, signal, stderr, stdout })));
  void exited.then(() => onReady());
  return { child, ready, exited };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Copies the compiled engine, provider and chaos scripts (dist/provider, dist/scripts/chaos) to a
 * private temp dir and returns the copy's chaos directory. Others rebuild dist/ while a long run
 * is going: without the copy, workers spawned later would run other (even half-written) code
 * than the harness that verifies them. node_modules resolves through a symlink to the repo's.
 */
export function snapshotDist(repoRoot: string): string {
  // Copies left by processes that died without their exit handler (jest kills its workers).
  for (const f of fs.readdirSync(os.tmpdir())) {
    const full = path.join(os.tmpdir(), f);
    try {
      if (f.startsWith("encdisk-chaos-code-") && Date.now() - fs.statSync(full).mtimeMs > 3 * 3600_000) fs.rmSync(full, { recursive: true, force: true });
    } catch {
      /* another process removed it */
    }
  }
  const snap = fs.mkdtempSync(path.join(os.tmpdir(), "encdisk-chaos-code-"));
  for (const sub of [path.join("dist", "provider"), path.join("dist", "scripts", "chaos")]) {
    fs.cpSync(path.join(repoRoot, sub), path.join(snap, sub), { recursive: true });
  }
  fs.symlinkSync(path.join(repoRoot, "node_modules"), path.join(snap, "node_modules"), "dir");
  process.on("exit", () => fs.rmSync(snap, { recursive: true, force: true }));
  return path.join(snap, "dist", "scripts", "chaos");
}
