/**
 * Pure statistics helpers for the benchmarks (no I/O, no timing): medians, percentiles and
 * spreads of repeated measurements. Covered by test/bench/stats.test.ts.
 */

/** Sorted copy of finite numbers (NaN and infinities dropped). */
export function sorted(xs: readonly number[]): number[] {
  return xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
}

/** Percentile `p` in [0, 100] with linear interpolation between closest ranks; NaN for no data. */
export function percentile(xs: readonly number[], p: number): number {
  const s = sorted(xs);
  if (s.length === 0) return NaN;
  if (p <= 0) return s[0];
  if (p >= 100) return s[s.length - 1];
  const rank = (p / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return s[lo] + (s[hi] - s[lo]) * (rank - lo);
}

export function median(xs: readonly number[]): number {
  return percentile(xs, 50);
}

export function mean(xs: readonly number[]): number {
  const s = sorted(xs);
  return s.length ? s.reduce((a, b) => a + b, 0) / s.length : NaN;
}

/** Summary of repeated measurements: median, min, max, and the spread (max-min)/median. */
export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
  /** (max - min) / median: 0.1 means the runs differ by 10% of the median. */
  spread: number;
}

export function summarize(xs: readonly number[]): Summary {
  const s = sorted(xs);
  if (s.length === 0) return { n: 0, median: NaN, min: NaN, max: NaN, spread: NaN };
  const med = median(s);
  return { n: s.length, median: med, min: s[0], max: s[s.length - 1], spread: med === 0 ? 0 : (s[s.length - 1] - s[0]) / Math.abs(med) };
}

/** Throughput in MiB/s for `bytes` moved in `ms` milliseconds. */
export function mibPerS(bytes: number, ms: number): number {
  return ms > 0 ? bytes / 1048576 / (ms / 1000) : NaN;
}

/**
 * Pairwise ratios a[i]/b[i] (for example encrypted/plain throughput measured back to back in
 * the same repetition), so machine noise shared by a pair cancels out.
 */
export function pairRatios(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.min(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (b[i] > 0 && Number.isFinite(a[i]) && Number.isFinite(b[i])) out.push(a[i] / b[i]);
  return out;
}

/** Parses `openssl speed -evp <cipher> -bytes N` output: the last number column of the cipher's row, in bytes/s. */
export function parseOpensslSpeed(output: string): number | null {
  for (const line of output.split(/\r?\n/)) {
    const m = /^\s*(aes-\S+|AES-\S+)\s+((?:[\d.]+k\s*)+)$/.exec(line.trim());
    if (m) {
      const cols = m[2].trim().split(/\s+/).map((c) => parseFloat(c.replace(/k$/, "")));
      const last = cols[cols.length - 1];
      if (Number.isFinite(last)) return last * 1000;
    }
  }
  return null;
}

/** Rounds for display: 3 significant digits for small numbers, whole numbers above 1000. */
export function fmt(x: number | null | undefined): string {
  if (x === null || x === undefined || Number.isNaN(x)) return "-";
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toString();
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a >= 1) return x.toFixed(2);
  return x.toFixed(3);
}
