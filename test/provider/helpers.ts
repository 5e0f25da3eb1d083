/** Shared test helpers: a temp engine dir and KMS root key file per test, and the hooks. */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as runtime from "../../provider/resources/runtime";
import { engine } from "../../provider/resources/context";
import type { Engine } from "../../provider/engine/types";

export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
export const ZONE = "ap-guangzhou-3";
export const OTHER_ZONE = "ap-guangzhou-4";

export interface Sandbox {
  dir: string;
  engineDir: string;
  rootKeyFile: string;
  /** Stack-config view handed to configure(). */
  config: Record<string, string>;
  engine(): Engine;
  cleanup(): void;
}

/** A fresh engine directory and root key file under a temp dir, configured as stack config. */
export function sandbox(extra: Record<string, string> = {}): Sandbox {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "encdisk-provider-"));
  const engineDir = path.join(dir, "engine");
  const rootKeyFile = path.join(dir, "kms-root.key");
  const config = { "encdisk:engineDir": engineDir, "encdisk:kmsRootKeyFile": rootKeyFile, ...extra };
  runtime.reset();
  runtime.configure({ get: (k) => config[k as keyof typeof config] });
  return {
    dir,
    engineDir,
    rootKeyFile,
    config,
    engine,
    cleanup() {
      runtime.reset();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

type Props = Record<string, unknown>;
interface CheckResult {
  inputs: Props;
  failures: { property: string; reason: string }[];
}
interface DiffResult {
  changes?: boolean;
  replaces?: string[];
  deleteBeforeReplace?: boolean;
}

/** The hooks of one resource type, called as the dynamic-provider host calls them. */
export function hooks(resource: string) {
  const call = (op: string, ...args: unknown[]) => runtime.hook(resource, op, args);
  return {
    check: (olds: Props, news: Props) => call("check", olds, news) as Promise<CheckResult>,
    diff: (id: string, olds: Props, news: Props) => call("diff", id, olds, news) as Promise<DiffResult>,
    create: (inputs: Props) => call("create", inputs) as Promise<{ id: string; outs: Props }>,
    read: (id: string, props: Props) => call("read", id, props) as Promise<{ id?: string; props?: Props }>,
    update: (id: string, olds: Props, news: Props) => call("update", id, olds, news) as Promise<{ outs: Props }>,
    delete: (id: string, props: Props) => call("delete", id, props) as Promise<void>,
    /** check, then create with the checked inputs (failing on check failures). */
    async up(inputs: Props) {
      const c = await call("check", {}, inputs) as CheckResult;
      if (c.failures.length) throw new Error(`check failed: ${JSON.stringify(c.failures)}`);
      return (await call("create", c.inputs)) as { id: string; outs: Props };
    },
  };
}

export const disks = hooks("EncryptedDisk");
export const snapshots = hooks("Snapshot");
export const instances = hooks("Instance");
export const attachments = hooks("Attachment");
export const images = hooks("Image");
export const snapshotCopies = hooks("SnapshotCopy");
export const kms = hooks("KmsAuthorization");

/** Failure reasons for one property. */
export function reasons(c: CheckResult, property: string): string[] {
  return c.failures.filter((f) => f.property === property).map((f) => f.reason);
}

/** Every 64-hex-digit string in the engine's PSK files and key file (secrets that must not reach state). */
export function secretsOnDisk(sb: Sandbox): string[] {
  const out: string[] = [];
  const nbd = path.join(sb.engineDir, "nbd");
  if (fs.existsSync(nbd)) for (const f of fs.readdirSync(nbd)) out.push(...(fs.readFileSync(path.join(nbd, f), "utf8").match(/[0-9a-f]{64}/g) ?? []));
  if (fs.existsSync(sb.rootKeyFile)) {
    const raw = fs.readFileSync(sb.rootKeyFile);
    out.push(raw.toString("hex"), raw.toString("utf8").trim());
  }
  return out.filter((s) => s.length >= 32);
}

/** Run `fn`, capturing what it writes to stderr (the provider's notices, shown by the Pulumi CLI). */
export async function stderrOf<T>(fn: () => Promise<T>): Promise<{ result: T; text: string }> {
  const chunks: string[] = [];
  const spy = jest.spyOn(process.stderr, "write").mockImplementation((s: string | Uint8Array) => (chunks.push(String(s)), true));
  try {
    return { result: await fn(), text: chunks.join("") };
  } finally {
    spy.mockRestore();
  }
}
