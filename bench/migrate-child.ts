/**
 * Child process of the migration benchmark: opens the engine, migrates one plain disk to a new
 * encrypted disk (M1), and prints one JSON line with its memory high-water marks and timing.
 * Usage: node dist/bench/migrate-child.js <engineDir> <rootKeyFile> <sourceDiskId>
 */
import * as fs from "fs";
import { openEngine } from "../provider/engine";

function status(): { rssKiB: number; hwmKiB: number } {
  const s = fs.readFileSync("/proc/self/status", "utf8");
  const get = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(s)?.[1] ?? NaN);
  return { rssKiB: get("VmRSS"), hwmKiB: get("VmHWM") };
}

const [dir, rootKeyFile, diskId] = process.argv.slice(2);
const engine = openEngine({ dir, kmsRootKeyFile: rootKeyFile });
const before = status();
let copied = 0;
let maxRssKiB = before.rssKiB;
const t0 = process.hrtime.bigint();
const disk = engine.migrateDisk({ sourceDiskId: diskId, encrypt: true }, (p) => {
  copied = p.copiedBytes;
  const s = status();
  if (s.rssKiB > maxRssKiB) maxRssKiB = s.rssKiB;
});
const ms = Number(process.hrtime.bigint() - t0) / 1e6;
const after = status();
engine.close();
process.stdout.write(JSON.stringify({ targetDiskId: disk.diskId, encrypted: disk.encrypted, copiedBytes: copied, ms, before, after, maxRssKiBAtProgress: maxRssKiB }) + "\n");
