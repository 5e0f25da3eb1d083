/**
 * The examples with the real Pulumi CLI on a local file backend: preview, up, change, preview
 * again, refresh, destroy, counting what each preview plans. Runs when the CLI and its Node.js
 * language host are installed (npm run pulumi:install puts them in .tools/pulumi/bin);
 * otherwise it is skipped with a note (the gRPC host tests cover the provider either way).
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { recordSkip } from "../support/requireTools";

const ROOT = path.resolve(__dirname, "../..");
const BIN = path.join(ROOT, ".tools/pulumi/bin");
const haveCli = fs.existsSync(path.join(BIN, "pulumi")) && fs.existsSync(path.join(BIN, "pulumi-language-nodejs")) && fs.existsSync(path.join(ROOT, "dist/provider/resources/runtime.js"));
const maybe = haveCli ? describe : describe.skip;
if (!haveCli) recordSkip({ testFile: __filename, suite: "examples with the Pulumi CLI", missing: [".tools/pulumi/bin/pulumi + pulumi-language-nodejs, or dist/"], setup: "npm run pulumi:install && npm run build" });

// Each test runs a dozen CLI commands; on a loaded two-core machine that takes minutes.
jest.setTimeout(15 * 60 * 1000);

let tmp: string;
let env: NodeJS.ProcessEnv;

beforeAll(() => {
  if (!haveCli) return;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "encdisk-cli-"));
  env = {
    PATH: `${BIN}:${process.env.PATH}`,
    HOME: tmp,
    PULUMI_HOME: path.join(tmp, "pulumi-home"),
    PULUMI_BACKEND_URL: `file://${path.join(tmp, "state")}`,
    PULUMI_CONFIG_PASSPHRASE: "encdisk-test",
    PULUMI_SKIP_UPDATE_CHECK: "true",
    PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
    PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK: "true",
    PULUMI_SKIP_CONFIRMATIONS: "true",
    ENCDISK_DIR: path.join(tmp, "engine"),
    ENCDISK_KMS_ROOT_KEY_FILE: path.join(tmp, "kms-root.key"),
  };
  fs.mkdirSync(path.join(tmp, "state"), { recursive: true });
  fs.mkdirSync(env.PULUMI_HOME as string, { recursive: true });
});
afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function pulumi(dir: string, args: string[], allowFail = false): { code: number; out: string } {
  try {
    const out = execFileSync(path.join(BIN, "pulumi"), [...args, "--non-interactive"], { cwd: dir, env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 240000, maxBuffer: 64 << 20 });
    return { code: 0, out };
  } catch (e) {
    const err = e as { status?: number; stdout?: string; stderr?: string };
    if (!allowFail) throw new Error(`pulumi ${args.join(" ")} failed (${err.status}):\n${err.stdout}\n${err.stderr}`);
    return { code: err.status ?? 1, out: `${err.stdout ?? ""}${err.stderr ?? ""}` };
  }
}

/** What a preview plans (changes only), by operation, for the resources of this package. */
function plan(dir: string): Record<string, string[]> {
  const json = JSON.parse(pulumi(dir, ["preview", "--json"]).out) as { steps?: { op: string; urn: string }[] };
  const ops: Record<string, string[]> = {};
  for (const s of json.steps ?? []) {
    if (!s.urn.includes("dynamic/encdisk")) continue;
    (ops[s.op] ??= []).push(s.urn.split("::").pop() as string);
  }
  for (const k of Object.keys(ops)) ops[k].sort();
  return ops;
}

maybe("examples with the Pulumi CLI", () => {
  test("L5: examples/basic: up creates six resources; a grow previews and applies as an in-place update (the disk, and its attachment's outputs); encryptData false is refused at preview; refresh and destroy", () => {
    const dir = path.join(ROOT, "examples/basic");
    pulumi(dir, ["stack", "init", "cli-basic"]);
    try {
      expect(plan(dir)).toEqual({ create: ["data", "data-on-web", "data-snapshot", "kms", "restored", "web"] });
      pulumi(dir, ["up", "--yes"]);
      const outs = JSON.parse(pulumi(dir, ["stack", "output", "--json"]).out) as Record<string, unknown>;
      expect(outs).toMatchObject({ dataEncrypted: true, restoredEncrypted: true });
      expect(outs.kmsCallsBilled).toBeGreaterThan(0);
      expect(plan(dir)).toEqual({}); // nothing to do (unchanged resources are not listed as steps)

      pulumi(dir, ["config", "set", "dataSizeGb", "30"]);
      const grow = plan(dir);
      // The disk grows in place; its attachment's outputs (diskSizeGb, reattachRequired) change with it (issue 13.5).
      expect(grow.update).toEqual(["data", "data-on-web"]);
      expect(grow.replace ?? []).toEqual([]);
      pulumi(dir, ["up", "--yes"]);
      expect(plan(dir).update ?? []).toEqual([]);

      pulumi(dir, ["config", "set", "encryptData", "false"]);
      const refused = pulumi(dir, ["preview"], true);
      expect(refused.code).not.toBe(0);
      expect(refused.out).toMatch(/property encrypt value \{false\} has a problem: L5: /);
      pulumi(dir, ["config", "set", "encryptData", "true"]);

      pulumi(dir, ["refresh", "--yes"]);
      pulumi(dir, ["destroy", "--yes"]);
    } finally {
      pulumi(dir, ["stack", "rm", "--yes", "--force", "cli-basic"], true);
    }
  });

  test("M1: examples/migrate: the encrypted copy is made in the first up; retiring the plain disk leaves it unchanged", () => {
    const dir = path.join(ROOT, "examples/migrate");
    pulumi(dir, ["stack", "init", "cli-migrate"]);
    // This stack names its engine through stack config instead of the environment.
    const engineDir = path.join(tmp, "engine-from-config");
    const saved = env.ENCDISK_DIR;
    delete env.ENCDISK_DIR;
    try {
      pulumi(dir, ["config", "set", "encdisk:engineDir", engineDir]);
      pulumi(dir, ["up", "--yes"]);
      expect(fs.existsSync(engineDir)).toBe(true);
      const outs = JSON.parse(pulumi(dir, ["stack", "output", "--json"]).out) as Record<string, unknown>;
      expect(outs).toMatchObject({ secureEncrypted: true, migratedFrom: outs.plainDiskId });
      pulumi(dir, ["config", "set", "retirePlain", "true"]);
      expect(plan(dir)).toEqual({ create: ["secure-on-app"], delete: ["legacy", "legacy-data", "legacy-on-app"] });
      pulumi(dir, ["up", "--yes"]);
      pulumi(dir, ["destroy", "--yes"]);
    } finally {
      pulumi(dir, ["stack", "rm", "--yes", "--force", "cli-migrate"], true);
      env.ENCDISK_DIR = saved;
    }
  });
});
