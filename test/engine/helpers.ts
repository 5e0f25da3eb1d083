import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { openEngine, type Engine, type EngineOptions } from "../../provider/engine";

export const ZONE = "ap-guangzhou-3";
export const ZONE_B = "ap-guangzhou-4";
export const OTHER_REGION_ZONE = "ap-shanghai-2";

export interface TestEngine {
  engine: Engine;
  dir: string;
  keyFile: string;
  root: string;
  reopen(extra?: Partial<EngineOptions>): Engine;
  cleanup(): void;
}

/** A fresh engine in a temp dir, with its KMS root key file beside (never inside) the engine dir. */
export function tempEngine(opts: Partial<EngineOptions> = {}): TestEngine {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "encdisk-test-"));
  const dir = path.join(root, "engine");
  const keyFile = path.join(root, "kms-root.key");
  const t: TestEngine = {
    engine: openEngine({ dir, kmsRootKeyFile: keyFile, ...opts }),
    dir,
    keyFile,
    root,
    reopen(extra = {}) {
      t.engine.close();
      t.engine = openEngine({ dir, kmsRootKeyFile: keyFile, ...opts, ...extra });
      return t.engine;
    },
    cleanup() {
      try {
        t.engine.close();
      } finally {
        fs.rmSync(root, { recursive: true, force: true });
      }
    },
  };
  return t;
}

/** Runs `fn` and returns the EngineError it throws (fails the test when it does not throw). */
export function errorOf(fn: () => unknown): { code: string; rule?: string; property?: string; message: string } {
  try {
    fn();
  } catch (e) {
    return e as { code: string; rule?: string; property?: string; message: string };
  }
  throw new Error("expected an EngineError, but the call succeeded");
}

/** Every file under a directory, recursively. */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(full));
    else out.push(full);
  }
  return out;
}

/** True when any file under `dir` contains `needle`. */
export function anyFileContains(dir: string, needle: Buffer): string | null {
  for (const f of filesUnder(dir)) if (fs.readFileSync(f).indexOf(needle) >= 0) return f;
  return null;
}

/** A recognisable plaintext pattern of `n` bytes. */
export function pattern(n: number, label = "PLAINTEXT-PATTERN"): Buffer {
  return Buffer.alloc(n, `${label}-0123456789-`);
}

export function setupEncrypted(e: Engine, sizeGb = 10, zone = ZONE) {
  e.authorizeKms();
  const disk = e.createDisk({ zone, sizeGb, encrypt: true });
  const instance = e.createInstance({ zone, instanceType: "S5.MEDIUM4" });
  const att = e.attachDisk({ diskId: disk.diskId, instanceId: instance.instanceId });
  return { disk, instance, att };
}
