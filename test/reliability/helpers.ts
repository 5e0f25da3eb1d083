/** Shared helpers of the reliability suite: temp engine dirs with their own temp root key file. */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export interface TempEngine {
  root: string;
  dir: string;
  kmsRootKeyFile: string;
  cleanup(): void;
}

/** A fresh temp dir holding the engine dir (not yet created) and a separate dir for the root key file. */
export function tempEngine(tag: string): TempEngine {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `encdisk-rel-${tag}-`));
  return {
    root,
    dir: path.join(root, "engine"),
    kmsRootKeyFile: path.join(root, "keys", "kms-root.key"),
    cleanup: () => fs.rmSync(root, { recursive: true, force: true }),
  };
}

export const repoRoot = path.resolve(__dirname, "..", "..");

let codeCopy: string | undefined;

/**
 * A compiled chaos script (workers run as child processes from compiled JavaScript), from a
 * private copy of dist/ made once per test file: others rebuild dist/ while tests run.
 */
export function distScript(name: string): string {
  const f = path.join(repoRoot, "dist", "scripts", "chaos", name);
  if (!fs.existsSync(f)) throw new Error(`${f} is missing: build first (npx tsc -p tsconfig.json, or npm test which builds)`);
  if (!codeCopy) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { snapshotDist } = require(path.join(repoRoot, "dist", "scripts", "chaos", "common.js")) as typeof import("../../scripts/chaos/common");
    codeCopy = snapshotDist(repoRoot);
    // jest ends its workers without running exit handlers: remove the copy when the file is done.
    const copyRoot = path.resolve(codeCopy, "..", "..", "..");
    if (typeof afterAll === "function") afterAll(() => fs.rmSync(copyRoot, { recursive: true, force: true }));
  }
  return path.join(codeCopy, name);
}
