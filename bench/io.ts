/**
 * Sequential I/O through the attachment path (engine.write / engine.read), encrypted disk vs
 * plain disk of the same engine, measured back to back in every repetition (the order
 * alternates so neither kind always runs first on a warmer machine).
 *
 * The machines are shared and noisy (other tenants often take most of both CPUs), so the two
 * kinds are interleaved finely: within every phase the work alternates between the plain and
 * the encrypted disk every `sliceBytes` (32 MiB), and each kind's time is summed separately, so
 * a burst of load hits both kinds alike.
 *
 * Per repetition: a fresh plain and a fresh encrypted disk are attached; the page cache is
 * dropped; `dataBytes` are written sequentially to each in `chunkBytes` calls (buffered write:
 * time in write calls), then flush() each (durable write: write time + flush time, the flush
 * being fdatasync of the block file and an fsync'd SQLite commit); the page cache is dropped
 * again and both read back (cold read); then read again `warmReps` times with the block files
 * in the page cache (warm read, median). Ratios are encrypted/plain within each repetition;
 * the reported ratio is the median over repetitions.
 *
 * Cold reads drop the page cache by writing 3 to /proc/sys/vm/drop_caches after `sync` (root;
 * checked at run time: if it is not permitted the cold read is reported as null, because a file
 * larger than the page cache cannot be made on these 24 GiB machines within the time budget).
 */
import { pairRatios, summarize, mibPerS, median, type Summary } from "./stats";
import { dropCaches, freshEngine, INSTANCE_TYPE, log, patternBuffer, timeCpu, timeMs, ZONE, GiB, MiB } from "./util";

export interface IoOptions {
  dataBytes: number;
  chunkBytes: number;
  /** Plain and encrypted alternate every `sliceBytes` within each phase. */
  sliceBytes: number;
  reps: number;
  warmReps: number;
}

export interface IoKindRun {
  bufferedMiBs: number;
  durableMiBs: number;
  coldMiBs: number | null;
  warmMiBs: number;
}

export interface IoResult {
  options: IoOptions;
  coldMethod: string;
  plain: IoKindRun[];
  encrypted: IoKindRun[];
  mibs: Record<string, { plain: Summary; encrypted: Summary }>;
  ratios: Record<string, Summary>;
  /**
   * Load-independent view: CPU time this process spent per byte on the plain disk divided by
   * the same for the encrypted disk (1.0 = encryption costs no CPU), summed over all reps.
   * Flush time (mostly waiting for the device) is not in it.
   */
  cpuRatios: Record<string, number>;
}

const METRICS = ["buffered", "durable", "cold", "warm"] as const;

type Kind = "plain" | "encrypted";
const KINDS: Kind[] = ["plain", "encrypted"];

export function benchIo(base: string, opts: IoOptions): IoResult {
  const { engine } = freshEngine(base, "io");
  const ins = engine.createInstance({ zone: ZONE, instanceType: INSTANCE_TYPE });
  const pattern = patternBuffer(Math.max(opts.chunkBytes, 64 * MiB), 42);
  const chunks = Math.ceil(opts.dataBytes / opts.chunkBytes);
  const perSlice = Math.max(1, Math.floor(opts.sliceBytes / opts.chunkBytes));
  const sizeGb = Math.ceil(opts.dataBytes / GiB) + 1;
  const runs: Record<Kind, IoKindRun[]> = { plain: [], encrypted: [] };
  let coldOk = true;
  const len = (i: number) => Math.min(opts.chunkBytes, opts.dataBytes - i * opts.chunkBytes);
  /**
   * Runs `op` over every chunk of both disks, alternating kinds every slice (and which kind
   * goes first), so both see the same machine conditions; returns ms spent per kind.
   */
  const cpu: Record<string, Record<Kind, number>> = {};
  const interleaved = (phase: string, op: (kind: Kind, chunk: number) => void): Record<Kind, number> => {
    const ms: Record<Kind, number> = { plain: 0, encrypted: 0 };
    const c = (cpu[phase] ??= { plain: 0, encrypted: 0 });
    for (let s = 0, first = 0; first < chunks; s++, first += perSlice) {
      const order = s % 2 === 0 ? KINDS : [...KINDS].reverse();
      for (const kind of order) {
        const t = timeCpu(() => {
          for (let i = first; i < Math.min(chunks, first + perSlice); i++) op(kind, i);
        });
        ms[kind] += t.wallMs;
        c[kind] += t.cpuMs;
      }
    }
    return ms;
  };
  try {
    for (let r = 0; r < opts.reps; r++) {
      const att = {} as Record<Kind, string>;
      const disks = {} as Record<Kind, string>;
      for (const kind of KINDS) {
        disks[kind] = engine.createDisk({ zone: ZONE, sizeGb, encrypt: kind === "encrypted", name: `io-${kind}-${r}` }).diskId;
        att[kind] = engine.attachDisk({ diskId: disks[kind], instanceId: ins.instanceId }).attachmentId;
      }
      dropCaches();
      const writeMs = interleaved("buffered", (kind, i) => {
        const p = (i * opts.chunkBytes) % (pattern.length - opts.chunkBytes + 1);
        engine.write(att[kind], i * opts.chunkBytes, pattern.subarray(p, p + len(i)));
      });
      const flushMs = { plain: 0, encrypted: 0 };
      for (const kind of r % 2 === 0 ? KINDS : [...KINDS].reverse()) flushMs[kind] = timeMs(() => engine.flush(att[kind]));
      const readAll = (phase: string) => interleaved(phase, (kind, i) => engine.read(att[kind], i * opts.chunkBytes, len(i)));
      const expected = (i: number) => {
        const p = (i * opts.chunkBytes) % (pattern.length - opts.chunkBytes + 1);
        return pattern.subarray(p, p + len(i));
      };
      let coldMs: Record<Kind, number> | null = null;
      if (coldOk && dropCaches()) coldMs = readAll("cold");
      else coldOk = false;
      // Untimed pass: every page cached (also after a failed drop), and the data checked.
      interleaved("prewarm", (kind, i) => {
        if (!engine.read(att[kind], i * opts.chunkBytes, len(i)).equals(expected(i))) throw new Error(`io: ${kind} disk returned wrong data at chunk ${i}`);
      });
      const warm: Record<Kind, number[]> = { plain: [], encrypted: [] };
      for (let w = 0; w < opts.warmReps; w++) {
        const m = readAll("warm");
        for (const kind of KINDS) warm[kind].push(m[kind]);
      }
      for (const kind of KINDS) {
        const run: IoKindRun = {
          bufferedMiBs: mibPerS(opts.dataBytes, writeMs[kind]),
          durableMiBs: mibPerS(opts.dataBytes, writeMs[kind] + flushMs[kind]),
          coldMiBs: coldMs === null ? null : mibPerS(opts.dataBytes, coldMs[kind]),
          warmMiBs: mibPerS(opts.dataBytes, median(warm[kind])),
        };
        runs[kind].push(run);
        log(
          `io rep ${r + 1}/${opts.reps} ${kind.padEnd(9)} buffered ${run.bufferedMiBs.toFixed(0)} durable ${run.durableMiBs.toFixed(0)} cold ${run.coldMiBs?.toFixed(0) ?? "-"} warm ${run.warmMiBs.toFixed(0)} MiB/s`,
        );
        engine.detachDisk(att[kind]);
        engine.deleteDisk(disks[kind]);
      }
    }
  } finally {
    engine.close();
  }
  const cpuRatios: Record<string, number> = {};
  for (const [phase, c] of Object.entries(cpu)) if (phase !== "prewarm" && c.encrypted > 0) cpuRatios[phase] = c.plain / c.encrypted;
  const pick = (k: (typeof METRICS)[number], xs: IoKindRun[]): number[] => xs.map((x) => (k === "cold" ? (x.coldMiBs ?? NaN) : x[`${k}MiBs`]));
  const mibs: IoResult["mibs"] = {};
  const ratios: IoResult["ratios"] = {};
  for (const k of METRICS) {
    mibs[k] = { plain: summarize(pick(k, runs.plain)), encrypted: summarize(pick(k, runs.encrypted)) };
    ratios[k] = summarize(pairRatios(pick(k, runs.encrypted), pick(k, runs.plain)));
  }
  return {
    options: opts,
    coldMethod: coldOk ? "sync + echo 3 > /proc/sys/vm/drop_caches before the read (root)" : "drop_caches not permitted: cold read not measured",
    plain: runs.plain,
    encrypted: runs.encrypted,
    mibs,
    ratios,
    cpuRatios,
  };
}
