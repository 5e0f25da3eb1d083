/**
 * Jest reporter: at the end of a run, a loud block listing every suite that skipped because a
 * real client or tool was missing (recorded by test/support/requireTools.ts), with the missing
 * tools and the command that installs them. Under CI=true such a skip fails the run.
 *
 * The records travel through the directory named by ENCDISK_SKIP_LOG, which this reporter
 * creates when it is constructed (before jest starts its workers, which inherit it).
 */
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");

/** Reads the skip records of a run (one JSON file each), deduplicated by file + suite. */
function readSkips(dir) {
  if (!dir || !fs.existsSync(dir)) return [];
  const seen = new Map();
  for (const f of fs.readdirSync(dir).sort()) {
    if (!f.endsWith(".json")) continue;
    try {
      const r = JSON.parse(fs.readFileSync(path.join(dir, f), "utf8"));
      seen.set(`${r.testFile}\0${r.suite}`, r);
    } catch {
      /* a torn record: ignore */
    }
  }
  return [...seen.values()];
}

const isCi = (env) => env.CI === "true" || env.CI === "1";

/**
 * The block to print and whether the run fails, from the skip records and jest's aggregated
 * results (for the number of tests each skipped file did not run).
 */
function summarize(records, results, env, rootDir) {
  if (!records.length) return { text: "", fail: false };
  const pendingByFile = new Map((results && results.testResults ? results.testResults : []).map((t) => [t.testFilePath, t.numPendingTests || 0]));
  const ci = isCi(env);
  const bar = "=".repeat(78);
  const lines = [bar, `SKIPPED REAL-CLIENT SUITES: ${records.length} (these tests did not run)`];
  for (const r of records) {
    const rel = rootDir ? path.relative(rootDir, r.testFile) : r.testFile;
    const n = pendingByFile.get(r.testFile);
    lines.push(`  ${rel}: ${r.suite}${n ? ` (${n} tests skipped in this file)` : ""}`);
    lines.push(`      missing: ${r.missing.join(", ")}`);
    lines.push(`      fix:     ${r.setup}`);
  }
  lines.push(ci ? "CI=true: a skipped real-client suite fails the run." : "Install the tools above and run again; under CI=true this fails the run.");
  lines.push(bar);
  return { text: lines.join("\n") + "\n", fail: ci };
}

class SkipReporter {
  constructor(globalConfig) {
    this._rootDir = globalConfig && globalConfig.rootDir;
    this._owned = !process.env.ENCDISK_SKIP_LOG;
    if (this._owned) process.env.ENCDISK_SKIP_LOG = fs.mkdtempSync(path.join(os.tmpdir(), "encdisk-skips-"));
    this._dir = process.env.ENCDISK_SKIP_LOG;
    this._error = undefined;
  }

  onRunComplete(_contexts, results) {
    const { text, fail } = summarize(readSkips(this._dir), results, process.env, this._rootDir);
    if (text) process.stderr.write(`\n${text}`);
    if (fail) {
      this._error = new Error("real-client suites were skipped under CI=true");
      process.exitCode = 1;
    }
    if (this._owned) fs.rmSync(this._dir, { recursive: true, force: true });
  }

  getLastError() {
    return this._error;
  }
}

module.exports = SkipReporter;
module.exports.summarize = summarize;
module.exports.readSkips = readSkips;
