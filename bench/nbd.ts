/**
 * NBD benchmark (issue 5, W1/W2): sequential write and read MiB/s with `nbdcopy` over NBD+TLS-PSK
 * into an encrypted disk served by the engine's NBD server, side by side with `nbdkit memory`
 * over TLS-PSK on the same machine in the same run.
 *
 *   node dist/bench/nbd.js            (after `npm run build`)
 *
 * Environment: ENCDISK_BENCH_NBD_MIB (image size, default 1024, rounded up to whole GiB for the
 * disk), ENCDISK_BENCH_NBD_RUNS (default 3; the median run is reported),
 * ENCDISK_BENCH_NBD_REQUEST_SIZE (bytes per nbdcopy request, passed as --request-size; default:
 * nbdcopy's, 256 KiB).
 *
 * Both servers get the same work: `nbdcopy --flush FILE URI` (write, flushed at the end) and
 * `nbdcopy URI null:` (read everything back), with nbdcopy's defaults (multi-conn with up to 4
 * connections, one per core, so 2 on a 2-core machine; 64 requests of 256 KiB in flight per
 * connection, of which our server takes up to 16 at once). nbdkit's memory plugin keeps data
 * in RAM and does no encryption at rest; ours encrypts every 64 KiB unit with AES-256-GCM and
 * commits the block map to SQLite per request.
 */
import { spawn } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { openEngine } from "../provider/engine";
import { EngineBackend } from "../provider/engine/nbd/engine-backend";
import { NbdServer } from "../provider/engine/nbd/server";
import { freePort, waitForPort } from "../test/nbd/helpers";
import { median } from "./stats";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export interface NbdBenchResult {
  nbd: {
    write_mibs: number | null;
    read_mibs: number | null;
    nbdkit_write_mibs: number | null;
    nbdkit_read_mibs: number | null;
    size_mib: number;
    runs: number;
    /** nbdcopy --request-size, or null for nbdcopy's default (256 KiB). */
    request_size: number | null;
    tls: string | null;
    samples: { server: "encdisk" | "nbdkit"; op: "write" | "read"; mibs: number }[];
    skipped?: string;
  };
}

function which(cmd: string): boolean {
  return (process.env.PATH ?? "").split(path.delimiter).some((d) => {
    try {
      fs.accessSync(path.join(d, cmd), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function exec(cmd: string, args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    child.once("error", (e) => resolve({ code: 127, stderr: String(e) }));
    child.once("exit", (code) => resolve({ code: code ?? 1, stderr }));
  });
}

async function timed(cmd: string, args: string[], bytes: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = await exec(cmd, args);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
  return bytes / MiB / secs;
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

export async function benchNbd(opts: { sizeMib?: number; runs?: number; requestSize?: number; log?: (s: string) => void } = {}): Promise<NbdBenchResult> {
  const sizeMib = opts.sizeMib ?? Number(process.env.ENCDISK_BENCH_NBD_MIB || 1024);
  const runs = opts.runs ?? Number(process.env.ENCDISK_BENCH_NBD_RUNS || 3);
  const requestSize = opts.requestSize ?? (process.env.ENCDISK_BENCH_NBD_REQUEST_SIZE ? Number(process.env.ENCDISK_BENCH_NBD_REQUEST_SIZE) : null);
  const sizeArgs = requestSize ? [`--request-size=${requestSize}`] : [];
  const log = opts.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const empty: NbdBenchResult = { nbd: { write_mibs: null, read_mibs: null, nbdkit_write_mibs: null, nbdkit_read_mibs: null, size_mib: sizeMib, runs, request_size: requestSize, tls: null, samples: [] } };
  const missing = ["nbdcopy", "nbdkit"].filter((t) => !which(t));
  if (missing.length) {
    empty.nbd.skipped = `missing ${missing.join(", ")} (apt-get install -y libnbd-bin nbdkit)`;
    log(`nbd bench skipped: ${empty.nbd.skipped}`);
    return empty;
  }

  const bytes = sizeMib * MiB;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "encdisk-nbd-bench-"));
  const src = path.join(work, "image.raw");
  let server: NbdServer | null = null;
  let kit: ReturnType<typeof spawn> | null = null;
  try {
    log(`nbd bench: ${sizeMib} MiB random image, ${runs} run(s) per server${requestSize ? `, ${requestSize}-byte requests` : ""}`);
    const fd = fs.openSync(src, "w");
    for (let off = 0; off < bytes; off += 16 * MiB) fs.writeSync(fd, crypto.randomBytes(Math.min(16 * MiB, bytes - off)));
    fs.closeSync(fd);

    // Our server: an encrypted disk of the engine, served in-process as `encdisk serve` does.
    const dir = path.join(work, "engine");
    const rootKey = crypto.randomBytes(32);
    const mgmt = openEngine({ dir, kmsRootKey: rootKey });
    mgmt.authorizeKms();
    const zone = "ap-guangzhou-3";
    const ins = mgmt.createInstance({ zone, instanceType: "S5.MEDIUM4" });
    const disk = mgmt.createDisk({ zone, sizeGb: Math.ceil(bytes / GiB), encrypt: true, name: "nbd-bench" });
    const att = mgmt.attachDisk({ diskId: disk.diskId, instanceId: ins.instanceId });
    mgmt.close();
    let tls: string | null = null;
    server = new NbdServer({
      backend: new EngineBackend(openEngine({ dir, kmsRootKey: rootKey })),
      port: 0,
      log: (l) => {
        const m = / TLS (TLSv\S+ \S+) as /.exec(l);
        if (m) tls = m[1];
        if (/failed|error/i.test(l)) log(l);
      },
    });
    const ours = await server.listen();
    const ourUri = `nbds://${att.attachmentId}@127.0.0.1:${ours.port}/${att.attachmentId}?tls-psk-file=${att.pskFile}`;
    const diskBytes = att.capacityBytes;

    // nbdkit memory over TLS-PSK, same size as the disk.
    const kitPsk = path.join(work, "nbdkit.psk");
    fs.writeFileSync(kitPsk, `bench:${crypto.randomBytes(32).toString("hex")}\n`, { mode: 0o600 });
    const kitPort = await freePort();
    kit = spawn("nbdkit", ["-f", "--exit-with-parent", "-i", "127.0.0.1", "-p", String(kitPort), "--tls=require", `--tls-psk=${kitPsk}`, "memory", String(diskBytes)], { stdio: "ignore" });
    await waitForPort(kitPort);
    const kitUri = `nbds://bench@127.0.0.1:${kitPort}/?tls-psk-file=${kitPsk}`;

    const samples: NbdBenchResult["nbd"]["samples"] = [];
    for (let i = 0; i < runs; i++) {
      for (const [name, uri] of [["encdisk", ourUri], ["nbdkit", kitUri]] as const) {
        const w = await timed("nbdcopy", [...sizeArgs, "--flush", src, uri], bytes);
        // Reads cover the whole export; it equals the image size when the size is whole GiB.
        const r = await timed("nbdcopy", [...sizeArgs, uri, "null:"], diskBytes);
        samples.push({ server: name, op: "write", mibs: round1(w) }, { server: name, op: "read", mibs: round1(r) });
        log(`  run ${i + 1}: ${name.padEnd(7)} write ${w.toFixed(1)} MiB/s, read ${r.toFixed(1)} MiB/s`);
      }
    }
    const pick = (s: string, op: string): number => round1(median(samples.filter((x) => x.server === s && x.op === op).map((x) => x.mibs)));
    return {
      nbd: {
        write_mibs: pick("encdisk", "write"),
        read_mibs: pick("encdisk", "read"),
        nbdkit_write_mibs: pick("nbdkit", "write"),
        nbdkit_read_mibs: pick("nbdkit", "read"),
        size_mib: sizeMib,
        runs,
        request_size: requestSize,
        tls,
        samples,
      },
    };
  } finally {
    if (kit && kit.exitCode === null) kit.kill("SIGTERM");
    if (server) await server.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

export function formatNbdTable(r: NbdBenchResult): string {
  const n = r.nbd;
  if (n.skipped) return `NBD benchmark skipped: ${n.skipped}`;
  const f = (x: number | null): string => (x === null ? "-" : x.toFixed(1)).padStart(12);
  return [
    `NBD over TLS-PSK, nbdcopy${n.request_size ? ` --request-size=${n.request_size}` : ""}, ${n.size_mib} MiB sequential, median of ${n.runs} (${n.tls ?? "TLS ?"})`,
    `${"server".padEnd(34)}${"write MiB/s".padStart(12)}${"read MiB/s".padStart(12)}`,
    `${"encdisk serve (AES-256 encrypted)".padEnd(34)}${f(n.write_mibs)}${f(n.read_mibs)}`,
    `${"nbdkit memory".padEnd(34)}${f(n.nbdkit_write_mibs)}${f(n.nbdkit_read_mibs)}`,
  ].join("\n");
}

if (require.main === module) {
  benchNbd().then(
    (r) => {
      process.stdout.write(`${formatNbdTable(r)}\n${JSON.stringify(r)}\n`);
    },
    (e) => {
      process.stderr.write(`nbd bench failed: ${e instanceof Error ? e.stack : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
