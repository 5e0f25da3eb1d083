/**
 * The one place a suite decides to skip because a real client or tool is missing. Each skip is
 * printed and recorded (suite, missing tools, the command that installs them) in the directory
 * `ENCDISK_SKIP_LOG` that test/support/skip-reporter.js creates for the run; the reporter lists
 * every such skip loudly at the end and fails the run under CI=true.
 */
import * as fs from "fs";
import * as path from "path";

/** How to get the tools the suites need (scripts/setup.sh holds the package list). */
export const SETUP_COMMAND = "npm run setup (as root: installs the Debian packages of scripts/setup.sh; otherwise prints the apt-get command)";

export interface ToolCheck {
  ok: boolean;
  missing: string[];
  /** `describe` when every tool is there, else `describe.skip` (and the skip is recorded). */
  describe: jest.Describe;
  /** `test` when every tool is there, else `test.skip` (and the skip is recorded). */
  test: jest.It;
}

/** Which of `names` are not executable on PATH. */
export function missingTools(names: string[], envPath = process.env.PATH ?? ""): string[] {
  const dirs = envPath.split(path.delimiter).filter(Boolean);
  return names.filter(
    (n) =>
      !dirs.some((d) => {
        try {
          fs.accessSync(path.join(d, n), fs.constants.X_OK);
          return true;
        } catch {
          return false;
        }
      }),
  );
}

export interface SkipRecord {
  testFile: string;
  suite: string;
  missing: string[];
  setup: string;
}

/** Writes one skip record where the reporter collects them (no-op outside a reporter's run). */
export function recordSkip(rec: SkipRecord): void {
  // eslint-disable-next-line no-console
  console.warn(`SKIPPED ${rec.suite} (${path.basename(rec.testFile)}): missing ${rec.missing.join(", ")}; ${rec.setup}`);
  const dir = process.env.ENCDISK_SKIP_LOG;
  if (!dir) return;
  try {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.json`), JSON.stringify(rec));
  } catch {
    /* the console line above still says it */
  }
}

/**
 * `requireTools(["nbdinfo", "nbdcopy"], "real-client NBD tests")`: the suite runs when every
 * tool is on PATH; otherwise it is skipped and the skip recorded with its reason.
 */
export function requireTools(names: string[], suite: string, opts: { setup?: string; paths?: string } = {}): ToolCheck {
  const missing = missingTools(names, opts.paths);
  const ok = missing.length === 0;
  if (!ok) {
    const testFile = (typeof expect !== "undefined" && expect.getState().testPath) || "(unknown test file)";
    recordSkip({ testFile, suite, missing, setup: opts.setup ?? SETUP_COMMAND });
  }
  return { ok, missing, describe: ok ? describe : describe.skip, test: ok ? test : test.skip };
}
