/** The skip reporter: the loud block at the end of a run, and CI=true turning a skip into a failure. */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { missingTools, requireTools } from "./requireTools";

// eslint-disable-next-line @typescript-eslint/no-var-requires
const SkipReporter = require("./skip-reporter.js") as {
  new (cfg: { rootDir: string }): { onRunComplete(c: unknown, r: unknown): void; getLastError(): Error | undefined };
  summarize(records: unknown[], results: unknown, env: NodeJS.ProcessEnv, rootDir?: string): { text: string; fail: boolean };
  readSkips(dir: string): unknown[];
};

const root = path.resolve(__dirname, "../..");
const rec = { testFile: path.join(root, "test/nbd/clients.test.ts"), suite: "real-client NBD tests", missing: ["nbdcopy", "qemu-io"], setup: "npm run setup" };
const fakeResults = { testResults: [{ testFilePath: rec.testFile, numPendingTests: 9 }] };

test("a skipped real-client suite is listed with the missing tools, the setup command and the count of tests not run", () => {
  const { text, fail } = SkipReporter.summarize([rec], fakeResults, {}, root);
  expect(text).toMatch(/SKIPPED REAL-CLIENT SUITES: 1/);
  expect(text).toContain("test/nbd/clients.test.ts: real-client NBD tests (9 tests skipped in this file)");
  expect(text).toContain("missing: nbdcopy, qemu-io");
  expect(text).toContain("fix:     npm run setup");
  expect(fail).toBe(false);
});

test("under CI=true a skip fails the run; with no skips nothing is printed and nothing fails", () => {
  expect(SkipReporter.summarize([rec], fakeResults, { CI: "true" }, root)).toMatchObject({ fail: true, text: expect.stringMatching(/CI=true: a skipped real-client suite fails the run/) });
  expect(SkipReporter.summarize([], fakeResults, { CI: "true" }, root)).toEqual({ text: "", fail: false });
});

test("the reporter reads what requireTools recorded and reports an error to jest under CI=true", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "encdisk-skips-test-"));
  const savedDir = process.env.ENCDISK_SKIP_LOG;
  const savedCi = process.env.CI;
  const savedExit = process.exitCode;
  const err = jest.spyOn(process.stderr, "write").mockImplementation(() => true);
  const warn = jest.spyOn(console, "warn").mockImplementation(() => undefined);
  try {
    process.env.ENCDISK_SKIP_LOG = dir;
    const check = requireTools(["encdisk-no-such-tool-xyz", "sh"], "a fake suite");
    expect(check).toMatchObject({ ok: false, missing: ["encdisk-no-such-tool-xyz"] });
    expect(check.describe).toBe(describe.skip);
    expect(requireTools(["sh"], "present").ok).toBe(true);
    expect(SkipReporter.readSkips(dir)).toEqual([expect.objectContaining({ suite: "a fake suite", missing: ["encdisk-no-such-tool-xyz"], testFile: __filename })]);

    process.env.CI = "true";
    const reporter = new SkipReporter({ rootDir: root });
    reporter.onRunComplete([], { testResults: [] });
    expect(reporter.getLastError()).toBeInstanceOf(Error);
    expect(err.mock.calls.map((c) => String(c[0])).join("")).toContain("a fake suite");
  } finally {
    process.exitCode = savedExit;
    err.mockRestore();
    warn.mockRestore();
    if (savedDir === undefined) delete process.env.ENCDISK_SKIP_LOG;
    else process.env.ENCDISK_SKIP_LOG = savedDir;
    if (savedCi === undefined) delete process.env.CI;
    else process.env.CI = savedCi;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("missingTools looks on PATH only", () => {
  expect(missingTools(["sh", "encdisk-no-such-tool-xyz"])).toEqual(["encdisk-no-such-tool-xyz"]);
  expect(missingTools(["sh"], "/nonexistent-dir")).toEqual(["sh"]);
});
