/**
 * Median of several bench runs: `node dist/bench/combine.js a.json b.json c.json [--out=F]`
 * prints, for every numeric key, the median across the runs and its min..max, with the floors
 * and goals of issue 6, and writes the medians as one results file when --out is given.
 */
import * as fs from "fs";
import { fmt, median } from "./stats";

const FLOORS: [string, string, number, "floor" | "goal"][] = [
  ["io.seq_read_cold_ratio", ">=", 0.85, "floor"],
  ["io.seq_write_durable_ratio", ">=", 0.6, "floor"],
  ["io.seq_write_buffered_ratio", ">=", 0.5, "floor"],
  ["snapshot.create_1tib_vs_1gib", "<=", 2, "floor"],
  ["migrate.peak_rss_mib", "<", 150, "floor"],
  ["io.seq_write_durable_ratio", ">=", 0.8, "goal"],
  ["io.seq_read_warm_ratio", ">=", 0.9, "goal"],
  ["io.cipher_vs_openssl", ">=", 0.6, "goal"],
];

function main(): void {
  const args = process.argv.slice(2);
  const out = args.find((a) => a.startsWith("--out="))?.slice(6);
  const files = args.filter((a) => !a.startsWith("--"));
  if (files.length === 0) {
    process.stderr.write("usage: node dist/bench/combine.js RESULTS.json... [--out=FILE]\n");
    process.exitCode = 2;
    return;
  }
  const runs = files.map((f) => JSON.parse(fs.readFileSync(f, "utf8")) as Record<string, unknown>);
  const keys = [...new Set(runs.flatMap((r) => Object.keys(r).filter((k) => k.includes(".") && (typeof r[k] === "number" || r[k] === null))))];
  const med: Record<string, number | null> = {};
  const rows: string[][] = [["metric", `median of ${runs.length}`, "min..max", "target"]];
  for (const k of keys) {
    const xs = runs.map((r) => r[k]).filter((x): x is number => typeof x === "number" && Number.isFinite(x));
    med[k] = xs.length ? median(xs) : null;
    const targets = FLOORS.filter((f) => f[0] === k)
      .map(([, op, v, kind]) => {
        const m = med[k];
        const ok = m === null ? null : op === ">=" ? m >= v : op === "<=" ? m <= v : m < v;
        return `${kind} ${op} ${v}${ok === null ? "" : ok ? " ok" : " MISS"}`;
      })
      .join("; ");
    rows.push([k, fmt(med[k]), xs.length > 1 ? `${fmt(Math.min(...xs))}..${fmt(Math.max(...xs))}` : "", targets]);
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r: string[]) => r.map((c, i) => (i === 1 ? c.padStart(w[i]) : c.padEnd(w[i]))).join("  ").trimEnd();
  process.stdout.write([line(rows[0]), w.map((n) => "-".repeat(n)).join("  "), ...rows.slice(1).map(line)].join("\n") + "\n");
  if (out) fs.writeFileSync(out, JSON.stringify({ mode: "median", runs: files, ...med }, null, 2) + "\n");
}

main();
