/**
 * End-to-end harness: runs the real Pulumi CLI (built by `npm run pulumi:install` into
 * .tools/pulumi/bin) and the `encdisk` operator CLI against a throw-away world per stack:
 *
 *   <tmp>/project   a copy of the program (examples/basic, examples/migrate or a program under
 *                   test/e2e/programs), with node_modules linked to the repository's, so the
 *                   program and the dynamic-provider host resolve `pulumi-encdisk` by name
 *   <tmp>/state     the file backend (PULUMI_BACKEND_URL=file://...)
 *   <tmp>/pulumi-home, <tmp>/home   PULUMI_HOME and HOME: nothing touches ~/.pulumi,
 *                   ~/.encdisk or ~/.config/encdisk
 *   <tmp>/engine    the engine directory, <tmp>/kms-root.key the KMS root key file
 *
 * Running a copy keeps Pulumi.<stack>.yaml (written by `stack init`) out of the working tree.
 */
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export const ROOT = path.resolve(__dirname, "../..");
export const PULUMI_BIN = path.join(ROOT, ".tools", "pulumi", "bin");
export const ENCDISK_CLI = path.join(ROOT, "bin", "encdisk.js");

/** Keep temp dirs of failed runs for a post-mortem (ENCDISK_E2E_KEEP=1 keeps all). */
const KEEP = process.env.ENCDISK_E2E_KEEP === "1";

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout then stderr: what a user sees. */
  out: string;
  ms: number;
}

export class CommandError extends Error {
  constructor(
    readonly cmd: string,
    readonly result: RunResult,
  ) {
    super(`\`${cmd}\` exited ${result.code}\n--- stdout ---\n${result.stdout}\n--- stderr ---\n${result.stderr}`);
  }
}

export function run(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<RunResult> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 240_000);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr, out: stdout + stderr, ms: Date.now() - start });
    });
  });
}

/** One `pulumi` line of a human-readable output, e.g. ` +- pulumi-nodejs:dynamic/encdisk:Attachment data-on-web replace`. */
export function stepLines(out: string): string[] {
  return out.split("\n").filter((l) => /pulumi-nodejs:dynamic\/encdisk:/.test(l));
}

/** The JSON of `pulumi preview --json`. */
export interface PreviewJson {
  steps: Array<{ op: string; urn: string; diffReasons?: string[]; replaceReasons?: string[]; detailedDiff?: Record<string, { kind: string }> }>;
  changeSummary: Record<string, number>;
  diagnostics?: Array<{ message: string; severity: string; urn?: string }>;
}

/** `name -> op` of the encdisk resources in a preview (the stack itself left out). */
export function opsByName(p: PreviewJson): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of p.steps) {
    if (!s.urn.includes("encdisk:")) continue;
    out[s.urn.split("::").pop() as string] = s.op;
  }
  return out;
}

export class E2EStack {
  readonly tmp: string;
  readonly projectDir: string;
  readonly stateDir: string;
  readonly engineDir: string;
  readonly keyFile: string;
  readonly env: NodeJS.ProcessEnv;
  /** Every command run, with its time: printed on failure and summarised by the tests. */
  readonly log: Array<{ cmd: string; code: number; ms: number }> = [];

  /**
   * @param program directory of the Pulumi program to copy (absolute, or relative to the repo)
   * @param engineVia how the provider learns the engine directory and key file: stack config
   *   (`encdisk:engineDir`, `encdisk:kmsRootKeyFile`) or environment (ENCDISK_DIR,
   *   ENCDISK_KMS_ROOT_KEY_FILE). Either way HOME is a temp dir, so a provider that ignored them
   *   would write into <tmp>/home/.encdisk, never the user's.
   */
  constructor(
    program: string,
    readonly stack: string,
    readonly engineVia: "config" | "env",
  ) {
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), `encdisk-e2e-${stack}-`));
    this.projectDir = path.join(this.tmp, "project");
    this.stateDir = path.join(this.tmp, "state");
    this.engineDir = path.join(this.tmp, "engine");
    this.keyFile = path.join(this.tmp, "kms-root.key");
    const home = path.join(this.tmp, "home");
    const pulumiHome = path.join(this.tmp, "pulumi-home");
    for (const d of [this.projectDir, this.stateDir, home, pulumiHome]) fs.mkdirSync(d, { recursive: true });

    const src = path.resolve(ROOT, program);
    for (const f of fs.readdirSync(src)) {
      if (f === "node_modules" || /^Pulumi\..+\.yaml$/.test(f)) continue; // stack files of someone's own runs
      fs.cpSync(path.join(src, f), path.join(this.projectDir, f), { recursive: true });
    }
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(this.projectDir, "node_modules"), "dir");

    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!/^(PULUMI_|ENCDISK_)/.test(k)) env[k] = v;
    Object.assign(env, {
      PATH: `${PULUMI_BIN}${path.delimiter}${process.env.PATH ?? ""}`,
      HOME: home,
      PULUMI_HOME: pulumiHome,
      PULUMI_BACKEND_URL: `file://${this.stateDir}`,
      PULUMI_CONFIG_PASSPHRASE: "encdisk-e2e",
      PULUMI_SKIP_UPDATE_CHECK: "true",
      PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION: "true",
      PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK: "true",
      PULUMI_SKIP_CONFIRMATIONS: "true",
      NO_COLOR: "1",
    });
    if (engineVia === "env") {
      env.ENCDISK_DIR = this.engineDir;
      env.ENCDISK_KMS_ROOT_KEY_FILE = this.keyFile;
    }
    this.env = env;
  }

  /** `pulumi stack init`, plus the engine config when it goes through stack config. */
  async init(config: Record<string, string> = {}): Promise<void> {
    await this.pulumi(["stack", "init", this.stack]);
    const all: Record<string, string> = { ...config };
    if (this.engineVia === "config") {
      all["encdisk:engineDir"] = this.engineDir;
      all["encdisk:kmsRootKeyFile"] = this.keyFile;
    }
    for (const [k, v] of Object.entries(all)) await this.config(k, v);
  }

  async config(key: string, value: string): Promise<void> {
    await this.pulumi(["config", "set", key, value]);
  }

  async configRm(key: string): Promise<void> {
    await this.pulumi(["config", "rm", key]);
  }

  /** Run `pulumi ARGS` on this stack; throws on a non-zero exit unless `allowFail`. */
  async pulumi(args: string[], opts: { allowFail?: boolean; timeoutMs?: number } = {}): Promise<RunResult> {
    const full = [...args, "--non-interactive", "--color", "never"];
    if (!(args[0] === "stack" && (args[1] === "init" || args[1] === "ls"))) full.push("--stack", this.stack);
    return this.exec(path.join(PULUMI_BIN, "pulumi"), full, opts, `pulumi ${args.join(" ")}`);
  }

  /** `pulumi preview --json`, parsed (throws unless it succeeds). */
  async previewJson(extra: string[] = []): Promise<PreviewJson> {
    const r = await this.pulumi(["preview", "--json", ...extra]);
    return JSON.parse(r.stdout) as PreviewJson;
  }

  async outputs(): Promise<Record<string, unknown>> {
    const r = await this.pulumi(["stack", "output", "--json"]);
    return JSON.parse(r.stdout) as Record<string, unknown>;
  }

  /** The resources in the stack's state, by name (the stack itself and providers left out). */
  async stateResources(): Promise<Record<string, { id?: string; type: string; outputs: Record<string, unknown> }>> {
    const r = await this.pulumi(["stack", "export"]);
    const dep = JSON.parse(r.stdout).deployment as { resources?: Array<{ urn: string; id?: string; type: string; outputs?: Record<string, unknown> }> };
    const out: Record<string, { id?: string; type: string; outputs: Record<string, unknown> }> = {};
    for (const res of dep.resources ?? []) {
      if (!res.type.includes("encdisk:")) continue;
      out[res.urn.split("::").pop() as string] = { id: res.id, type: res.type, outputs: res.outputs ?? {} };
    }
    return out;
  }

  /** The resource changes Pulumi recorded for the last update (`stack history`). */
  async lastChanges(): Promise<Record<string, number>> {
    const r = await this.pulumi(["stack", "history", "--json"]);
    const h = JSON.parse(r.stdout) as Array<{ resourceChanges?: Record<string, number>; kind: string }>;
    return h[0]?.resourceChanges ?? {};
  }

  /** Run `encdisk ARGS` on this stack's engine directory and key file. */
  async encdisk(args: string[], opts: { allowFail?: boolean } = {}): Promise<RunResult> {
    return this.exec(process.execPath, [ENCDISK_CLI, ...args, "--dir", this.engineDir, "--kms-root-key-file", this.keyFile], opts, `encdisk ${args.join(" ")}`);
  }

  /** `encdisk LISTING --json`, parsed. */
  async list<T = Record<string, unknown>>(listing: string, extra: string[] = []): Promise<T[]> {
    const r = await this.encdisk([listing, ...extra, "--json"]);
    return JSON.parse(r.stdout) as T[];
  }

  private async exec(cmd: string, args: string[], opts: { allowFail?: boolean; timeoutMs?: number }, label: string): Promise<RunResult> {
    const r = await run(cmd, args, { cwd: this.projectDir, env: this.env, timeoutMs: opts.timeoutMs });
    this.log.push({ cmd: label, code: r.code, ms: r.ms });
    if (r.code !== 0 && !opts.allowFail) throw new CommandError(label, r);
    return r;
  }

  /** One line per command: what ran, its exit code and time. */
  timings(): string {
    return this.log.map((l) => `${String(l.ms).padStart(6)} ms  rc=${l.code}  ${l.cmd}`).join("\n");
  }

  /** Remove the temp world, unless kept for a post-mortem. */
  cleanup(failed: boolean): void {
    if (KEEP || failed) {
      process.stderr.write(`[e2e] kept ${this.tmp} for a post-mortem\n`);
      return;
    }
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }
}

/** A KMS audit-log entry of `encdisk audit --json`. */
export interface AuditEntry {
  seq: number;
  operation: string;
  resourceId: string;
  kmsApi: string;
  billable: boolean;
  priceMicros: number;
  region: string;
}

/**
 * Steps of one e2e file, run in order on a shared world: `step` is a jest test whose failure marks
 * the file failed, so `failed()` tells the afterAll to keep the world for a post-mortem.
 */
export function stepsOfFile(): { step: (name: string, fn: () => Promise<void>, timeoutMs?: number) => void; failed: () => boolean } {
  let failed = false;
  const step = (name: string, fn: () => Promise<void>, timeoutMs?: number): void =>
    test(
      name,
      async () => {
        try {
          await fn();
        } catch (e) {
          failed = true;
          throw e;
        }
      },
      timeoutMs,
    );
  return { step, failed: () => failed };
}
