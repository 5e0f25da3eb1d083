/**
 * Process hardening for processes that hold key material (K4, issue 12 D5): no core file and
 * no ptrace/`/proc/<pid>/mem` access by other processes of the same user once the KMS first
 * unwraps a key. Done by native/gcm.c (`harden`: prctl(PR_SET_DUMPABLE, 0) and RLIMIT_CORE
 * 0/0), whichever of its builds exists, independent of the cipher ENCDISK_NATIVE picks.
 * Without the addon Node cannot clear the dumpable flag; the core limit is then set to 0 with
 * util-linux `prlimit` on this process, when installed (see the README's threat model).
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

export interface HardeningState {
  /** prctl(PR_GET_DUMPABLE): 0 once hardened; -1 when unknown (no addon). */
  dumpable: number;
  /** RLIMIT_CORE soft and hard limit in bytes (-1: unlimited or unknown). */
  coreSoft: number;
  coreHard: number;
  /** "native" (the addon did it), "prlimit" (core limit only) or "none". */
  via: "native" | "prlimit" | "none";
}

interface Addon {
  harden(): Omit<HardeningState, "via">;
  hardening(): Omit<HardeningState, "via">;
  takeEnvHex(name: string): Buffer | null;
  scrubStack(): void;
}

let addon: Addon | null | undefined;

/** The addon's hardening functions, or null when no build of native/gcm.c loads. */
export function hardening(): Addon | null {
  if (addon !== undefined) return addon;
  addon = null;
  for (const impl of ["ring", "openssl"]) {
    for (const up of ["../../..", "../../../.."]) {
      const file = path.resolve(__dirname, up, "native", "build", `gcm-${impl}.node`);
      if (!fs.existsSync(file)) continue;
      try {
        const a = require(file) as Partial<Addon>;
        if (typeof a.harden === "function" && typeof a.takeEnvHex === "function" && typeof a.scrubStack === "function") return (addon = a as Addon);
      } catch {
        /* the next build, else the fallback */
      }
    }
  }
  return addon;
}

let done: HardeningState | null = null;

/** Hardens this process once (idempotent); returns what was achieved. */
export function hardenProcess(): HardeningState {
  if (done) return done;
  const a = hardening();
  if (a) return (done = { ...a.harden(), via: "native" });
  try {
    execFileSync("prlimit", ["--pid", String(process.pid), "--core=0:0"], { stdio: "ignore", timeout: 5000 });
    return (done = { dumpable: -1, coreSoft: 0, coreHard: 0, via: "prlimit" });
  } catch {
    return (done = { dumpable: -1, coreSoft: -1, coreHard: -1, via: "none" });
  }
}

/**
 * Zeroes the stack below the caller once a key operation of node:crypto returned: OpenSSL's
 * HKDF/HMAC/GCM leave copies of keys in stack buffers they do not cleanse, which would stay in
 * memory long after the key was zeroed. A no-op without the addon (see the threat model).
 */
export function scrubStack(): void {
  hardening()?.scrubStack();
}
