/**
 * The engine's unit cipher against this CPU's ceiling: BlockStore.prepareWrite of 4 MiB
 * writes (what engine.write runs before its transaction: zero check, random nonces and
 * AES-256-GCM with AAD for each 64 KiB unit, through provider/engine/blockstore/gcm.ts) over
 * `bytes` of in-memory data, vs `openssl speed -evp aes-256-gcm -bytes 65536` (one core, the
 * system's OpenSSL; the engine's cipher is ring's or Node's OpenSSL, see gcm.ts), interleaved
 * in each repetition. Also a bare createCipheriv loop and the
 * decrypt direction, for the report.
 *
 * `openssl speed` divides by the CPU time it used (user time), not wall time, so on a shared
 * machine it is immune to other tenants. The engine side is measured the same way (this
 * process's CPU time, which includes GC and any helper threads) for the ratio; wall-clock
 * throughput and `openssl speed -elapsed` (wall) are reported alongside.
 */
import { execFileSync } from "child_process";
import * as crypto from "crypto";
import * as path from "path";
import { BlockStore, UNIT } from "../provider/engine/blockstore/blockstore";
import { openDb } from "../provider/engine/store/db";
import { mibPerS, pairRatios, parseOpensslSpeed, summarize, type Summary } from "./stats";
import { log, patternBuffer, timeCpu, MiB } from "./util";

export interface CipherOptions {
  bytes: number;
  reps: number;
  opensslSeconds: number;
}

export interface CipherResult {
  options: CipherOptions;
  openssl: { version: string; command: string; mibs: Summary; elapsedMiBs: Summary } | { error: string };
  /** Per CPU-second of this process (comparable with openssl speed's default). */
  engineSealMiBs: Summary;
  engineSealWallMiBs: Summary;
  bareEncryptMiBs: Summary;
  bareDecryptMiBs: Summary;
  /** engine seal MiB per CPU-second / openssl MiB per CPU-second. */
  ratio: Summary | null;
  /** engine seal wall MiB/s / openssl -elapsed MiB/s. */
  ratioWall: Summary | null;
}

export function opensslSpeedMiBs(seconds: number, elapsed = false): number | null {
  const args = ["speed", ...(elapsed ? ["-elapsed"] : []), "-evp", "aes-256-gcm", "-bytes", String(UNIT), "-seconds", String(seconds)];
  const out = execFileSync("openssl", args, {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
  });
  const bps = parseOpensslSpeed(out);
  return bps === null ? null : bps / MiB;
}

export function benchCipher(base: string, opts: CipherOptions): CipherResult {
  const db = openDb(path.join(base, "cipher"));
  const store = new BlockStore(db, path.join(base, "cipher"));
  const key = crypto.randomBytes(32);
  const owner = { ownerId: "disk-bench", lineageId: "lin-bench", key };
  const src = patternBuffer(64 * MiB, 7);
  const unitsPerPass = src.length / UNIT;
  const units = Math.floor(opts.bytes / UNIT);
  const seal: number[] = [];
  const sealWall: number[] = [];
  const osslWall: number[] = [];
  const bare: number[] = [];
  const dec: number[] = [];
  const ossl: number[] = [];
  let opensslError: string | null = null;
  let version = "";
  try {
    version = execFileSync("openssl", ["version"], { encoding: "utf8" }).trim();
  } catch (e) {
    opensslError = `openssl not runnable: ${(e as Error).message}`;
  }
  // one cipher text to decrypt repeatedly
  const nonce = crypto.randomBytes(12);
  const c0 = crypto.createCipheriv("aes-256-gcm", key, nonce);
  const ct = c0.update(src.subarray(0, UNIT));
  c0.final();
  const tag = c0.getAuthTag();
  try {
    for (let r = 0; r < opts.reps; r++) {
      let sink = 0;
      const t = timeCpu(() => {
        // Exactly the write path's cipher step: prepareWrite of a 4 MiB write seals its 64
        // whole units (zero check, random nonces, AES-256-GCM with AAD) in one cipher call
        // into a pooled buffer.
        for (let i = 0; i < units; i += 64) {
          const k = i % unitsPerPass;
          const prepared = store.prepareWrite(owner, i * UNIT, src.subarray(k * UNIT, (k + Math.min(64, units - i)) * UNIT));
          sink += prepared.sealed.length;
          store.release(prepared); // as engine.write does after its commit
        }
      });
      seal.push(mibPerS(units * UNIT, t.cpuMs));
      sealWall.push(mibPerS(units * UNIT, t.wallMs));
      bare.push(
        mibPerS(
          units * UNIT,
          timeCpu(() => {
            for (let i = 0; i < units; i++) {
              const k = i % unitsPerPass;
              const c = crypto.createCipheriv("aes-256-gcm", key, crypto.randomBytes(12));
              sink += c.update(src.subarray(k * UNIT, (k + 1) * UNIT)).length;
              c.final();
              c.getAuthTag();
            }
          }).cpuMs,
        ),
      );
      dec.push(
        mibPerS(
          units * UNIT,
          timeCpu(() => {
            for (let i = 0; i < units; i++) {
              const d = crypto.createDecipheriv("aes-256-gcm", key, nonce);
              d.setAuthTag(tag);
              sink += d.update(ct).length;
              d.final();
            }
          }).cpuMs,
        ),
      );
      if (!opensslError) {
        try {
          const o = opensslSpeedMiBs(opts.opensslSeconds);
          if (o === null) opensslError = "could not parse openssl speed output";
          else ossl.push(o);
          const w = opensslSpeedMiBs(opts.opensslSeconds, true);
          if (w !== null) osslWall.push(w);
        } catch (e) {
          opensslError = `openssl speed failed: ${(e as Error).message}`;
        }
      }
      log(`cipher rep ${r + 1}/${opts.reps}: engine seal ${seal[r].toFixed(0)} MiB/cpu-s (${sealWall[r].toFixed(0)} MiB/s wall), bare ${bare[r].toFixed(0)}, decrypt ${dec[r].toFixed(0)}, openssl ${ossl[r]?.toFixed(0) ?? "-"} MiB/cpu-s (${osslWall[r]?.toFixed(0) ?? "-"} wall) (${sink > 0 ? "ok" : "?"})`);
    }
  } finally {
    store.close();
    db.close();
    key.fill(0);
  }
  return {
    options: opts,
    openssl: opensslError ? { error: opensslError } : { version, command: `openssl speed -evp aes-256-gcm -bytes ${UNIT} -seconds ${opts.opensslSeconds}`, mibs: summarize(ossl), elapsedMiBs: summarize(osslWall) },
    engineSealMiBs: summarize(seal),
    engineSealWallMiBs: summarize(sealWall),
    bareEncryptMiBs: summarize(bare),
    bareDecryptMiBs: summarize(dec),
    ratio: ossl.length ? summarize(pairRatios(seal, ossl)) : null,
    ratioWall: osslWall.length ? summarize(pairRatios(sealWall, osslWall)) : null,
  };
}
