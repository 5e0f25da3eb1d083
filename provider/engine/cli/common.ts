/** What `encdisk` and `encdisk serve` share: the error line, the engine open, the version, the tool lookup. */
import * as fs from "fs";
import * as path from "path";
import { toEngineError } from "../errors";
import { openEngine } from "../engine";
import type { Engine, EngineOptions } from "../types";
import { nativeCipherWarning } from "../blockstore/gcm";

/**
 * One line on stderr: `<prefix>: [Code] message` (any error, mapped by toEngineError), with
 * `usage` appended when the message does not already carry it.
 */
export function printError(prefix: string, e: unknown, where?: string, usage?: string): void {
  let message = toEngineError(e, where).message.replace(/\s*\n\s*/g, "; ").trim();
  if (usage && !message.includes("usage: ")) message += `; usage: ${usage}`;
  process.stderr.write(`${prefix}: ${message}\n`);
}

let warned = false;

/** openEngine, then (once per process) the warning when the fast native cipher is missing. */
export function openCliEngine(opts: EngineOptions): Engine {
  const engine = openEngine(opts);
  const w = nativeCipherWarning();
  if (w && !warned) {
    warned = true;
    process.stderr.write(`encdisk: ${w}\n`);
  }
  return engine;
}

/** This package's package.json version (found from source and from dist/). */
export function packageVersion(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const f = path.join(dir, "package.json");
    try {
      const p = JSON.parse(fs.readFileSync(f, "utf8")) as { name?: string; version?: string };
      if (p.name === "pulumi-encdisk" && p.version) return p.version;
    } catch {
      /* keep looking */
    }
    if (path.dirname(dir) === dir) return "unknown";
  }
}

/** The executable `name` on PATH (plus the sbin directories, for mkfs.ext4), or undefined. */
export function findTool(name: string, envPath = process.env.PATH ?? ""): string | undefined {
  for (const d of [...envPath.split(path.delimiter), "/usr/sbin", "/sbin"].filter(Boolean)) {
    const f = path.join(d, name);
    try {
      fs.accessSync(f, fs.constants.X_OK);
      if (fs.statSync(f).isFile()) return f;
    } catch {
      /* not here */
    }
  }
  return undefined;
}
