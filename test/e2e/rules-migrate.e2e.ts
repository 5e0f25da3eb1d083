/**
 * Through the real Pulumi CLI:
 * - examples/migrate (M1): up, the data read back from the new encrypted disk equals what was
 *   written to the plain one, the plain disk retired, destroy;
 * - test/e2e/programs/rules: the refusals a preview must make against disks that exist
 *   (L4: a plain disk turned encrypted; L7: an encrypted disk onto a local-storage instance),
 *   and L7 when everything is new in one up (the refusal then comes from up).
 * - the main job (scripts/up.sh behind npm run up/preview/destroy/pulumi) on temp state.
 * These get their engine directory and key file through the environment (ENCDISK_DIR,
 * ENCDISK_KMS_ROOT_KEY_FILE); the basic suite uses stack config.
 */
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { AuditEntry, E2EStack, ENCDISK_CLI, ROOT, opsByName, run } from "./harness";

interface Disk {
  diskId: string;
  sizeGb: number;
  encrypted: boolean;
  name?: string;
  attachmentId?: string;
}
interface Attachment {
  attachmentId: string;
  diskId: string;
  instanceId: string;
}

/** Steps of one stack, run in order; a failure keeps the stack's temp dir. */
function scenario(title: string, make: () => E2EStack, body: (s: () => E2EStack, step: (name: string, fn: () => Promise<void>) => void) => void): void {
  describe(title, () => {
    let s: E2EStack;
    let failed = false;
    beforeAll(async () => {
      s = make();
      await s.init();
    });
    afterAll(() => {
      if (!s) return;
      process.stderr.write(`[e2e] ${title} commands:\n${s.timings()}\n`);
      s.cleanup(failed);
    });
    body(
      () => s,
      (name, fn) =>
        test(name, async () => {
          try {
            await fn();
          } catch (e) {
            failed = true;
            throw e;
          }
        }),
    );
  });
}

const SEED = "orders.db: 42 rows\n";

scenario("examples/migrate through the Pulumi CLI (M1)", () => new E2EStack("examples/migrate", "migrate", "env"), (stack, step) => {
  const ids: Record<string, string> = {};
  let sha256 = "";

  step("M1: up creates the plain disk with data and its encrypted copy", async () => {
    const s = stack();
    const p = await s.previewJson();
    expect(opsByName(p)).toEqual({ kms: "create", app: "create", legacy: "create", "legacy-on-app": "create", "legacy-data": "create", secure: "create" });

    await s.pulumi(["up", "--yes"]);
    const out = await s.outputs();
    expect(out.secureEncrypted).toBe(true);
    expect(out.migratedFrom).toBe(out.plainDiskId);
    sha256 = out.dataSha256 as string;
    expect(sha256).toBe(createHash("sha256").update(SEED).digest("hex"));
    Object.assign(ids, { plain: out.plainDiskId as string, secure: out.secureDiskId as string });
    // D13: the stack's state holds the seeded data only as an encrypted secret.
    const exported = (await s.pulumi(["stack", "export"])).stdout;
    expect(exported).toContain("legacy-data");
    expect(exported).toContain(sha256);
    for (const needle of ["orders.db", Buffer.from(SEED).toString("base64")]) expect(exported).not.toContain(needle);

    const disks = await s.list<Disk>("disks");
    expect(disks.find((d) => d.diskId === ids.plain)).toMatchObject({ encrypted: false });
    expect(disks.find((d) => d.diskId === ids.secure)).toMatchObject({ encrypted: true });
    // The engine lives where ENCDISK_DIR says, never under HOME.
    expect(fs.existsSync(path.join(s.engineDir, "state.db"))).toBe(true);
    expect(fs.existsSync(path.join(s.env.HOME as string, ".encdisk"))).toBe(false);
    await s.pulumi(["preview", "--expect-no-changes"]);
  });

  step("M1: retiring the plain disk leaves the encrypted disk untouched; attached, it reads back the plain disk's data", async () => {
    const s = stack();
    await s.config("retirePlain", "true");
    const p = await s.previewJson();
    // P3: the encrypted disk is not touched (dropping sourceDiskId changes nothing).
    expect(opsByName(p)).toEqual({ legacy: "delete", "legacy-on-app": "delete", "legacy-data": "delete", "secure-on-app": "create" });

    await s.pulumi(["up", "--yes"]);
    await s.pulumi(["preview", "--expect-no-changes"]);
    const out = await s.outputs();
    expect(out.secureDiskId).toBe(ids.secure);
    const disks = await s.list<Disk>("disks");
    expect(disks.map((d) => [d.diskId, d.encrypted])).toEqual([[ids.secure, true]]);

    const file = path.join(s.tmp, "readback.bin");
    await s.encdisk(["read", out.secureAttachmentId as string, "--length", String(SEED.length), "--out", file]);
    const back = fs.readFileSync(file);
    expect(back.toString("utf8")).toBe(SEED);
    expect(createHash("sha256").update(back).digest("hex")).toBe(sha256);
  });

  step("destroy leaves no disks; B2: the plain disk made no KMS calls, the encrypted one exactly its own", async () => {
    const s = stack();
    await s.pulumi(["destroy", "--yes"]);
    expect(await s.list("disks")).toEqual([]);
    expect(await s.list("attachments")).toEqual([]);
    expect(await s.list("instances")).toEqual([]);
    const audit = await s.list<AuditEntry>("audit");
    expect(audit.filter((a) => a.resourceId === ids.plain)).toEqual([]);
    expect(audit.map((a) => [a.operation, a.resourceId, a.kmsApi])).toEqual([
      ["CreateDisk", ids.secure, "CreateKey"], // the migration creates the disk: first encrypted one in the region
      ["CreateDisk", ids.secure, "GenerateDataKey"],
      ["AttachDisk", ids.secure, "Decrypt"],
      ["DetachDisk", ids.secure, "Encrypt"],
    ]);
    await s.encdisk(["check"]);
    await s.encdisk(["verify"]);
  });
});

scenario("refusals at preview through the Pulumi CLI (L4, L7)", () => new E2EStack("test/e2e/programs/rules", "rules", "env"), (stack, step) => {
  let disksBefore: Disk[] = [];
  let attsBefore: Attachment[] = [];
  let auditBefore: AuditEntry[] = [];
  let plainId = "";

  step("up: a plain disk on an instance with local storage, an encrypted disk beside it", async () => {
    const s = stack();
    await s.pulumi(["up", "--yes"]);
    const out = await s.outputs();
    expect(out.localStorage).toBe(true);
    plainId = out.plainDiskId as string;
    disksBefore = await s.list<Disk>("disks");
    attsBefore = await s.list<Attachment>("attachments");
    auditBefore = await s.list<AuditEntry>("audit");
    expect(attsBefore.map((a) => a.diskId)).toEqual([plainId]);
    // B2: creating and attaching the plain disk called no KMS.
    expect(auditBefore.filter((a) => a.resourceId === plainId)).toEqual([]);
  });

  async function expectNothingChanged(s: E2EStack): Promise<void> {
    expect(await s.list<Disk>("disks")).toEqual(disksBefore);
    // Compared by what the engine stores (endpoint text is derived at listing time).
    const key = (as: Attachment[]) => as.map((a) => [a.attachmentId, a.diskId, a.instanceId]);
    expect(key(await s.list<Attachment>("attachments"))).toEqual(key(attsBefore));
    expect(await s.list<AuditEntry>("audit")).toEqual(auditBefore);
  }

  step("L4: turning the plain disk into an encrypted one is refused at preview and by up, naming L4; nothing changes", async () => {
    const s = stack();
    await s.config("plainEncrypt", "true");
    const p = await s.pulumi(["preview"], { allowFail: true });
    expect(p.code).not.toBe(0);
    expect(p.out).toMatch(/EncryptedDisk resource 'plain'.*L4: an existing non-encrypted disk cannot be converted into an encrypted one/);
    const up = await s.pulumi(["up", "--yes", "--skip-preview"], { allowFail: true });
    expect(up.code).not.toBe(0);
    expect(up.out).toMatch(/L4: /);
    await expectNothingChanged(s);
    await s.config("plainEncrypt", "false");
  });

  step("rollback: restoreSnapshotId previews as an update of the encrypted disk and up rolls it back with one KMS Decrypt", async () => {
    const s = stack();
    const out = await s.outputs();
    await s.config("restoreSnapshotId", out.secretSnapshotId as string);
    const p = await s.previewJson();
    expect(opsByName(p)).toEqual({ secret: "update" });
    await s.pulumi(["up", "--yes"]);
    await s.pulumi(["preview", "--expect-no-changes"]);
    const audit = await s.list<AuditEntry>("audit");
    expect(audit.slice(auditBefore.length).map((a) => [a.operation, a.resourceId, a.kmsApi])).toEqual([["ApplySnapshot", out.secretDiskId, "Decrypt"]]);
    // Forgetting the rollback is a change of the record only: no engine operation, no KMS call.
    await s.configRm("restoreSnapshotId");
    await s.pulumi(["up", "--yes"]);
    await s.pulumi(["preview", "--expect-no-changes"]);
    expect(await s.list<AuditEntry>("audit")).toEqual(audit);
    disksBefore = await s.list<Disk>("disks");
    auditBefore = audit;
  });

  step("L7: attaching the existing encrypted disk to the local-storage instance is refused at preview, naming L7; nothing changes", async () => {
    const s = stack();
    await s.config("attachSecret", "true");
    const p = await s.pulumi(["preview"], { allowFail: true });
    expect(p.code).not.toBe(0);
    expect(p.out).toMatch(/Attachment resource 'secret-on-local'.*L7: /);
    const up = await s.pulumi(["up", "--yes"], { allowFail: true });
    expect(up.code).not.toBe(0);
    expect(up.out).toMatch(/L7: /);
    await expectNothingChanged(s);
  });

  step("L7: with disk, instance and attachment all new in one up, up refuses the attachment naming L7", async () => {
    const s = stack();
    await s.pulumi(["destroy", "--yes"]);
    expect(await s.list("disks")).toEqual([]);
    // attachSecret is still true: everything is created in this one run. The preview cannot see
    // the refusal (the disk and instance ids are unknown until created); up must stop at it.
    const up = await s.pulumi(["up", "--yes"], { allowFail: true });
    expect(up.code).not.toBe(0);
    expect(up.out).toMatch(/secret-on-local.*\n?.*L7: /);
    const disks = await s.list<Disk>("disks");
    const secret = disks.find((d) => d.name === "secret");
    expect(secret).toMatchObject({ encrypted: true });
    expect((await s.list<Attachment>("attachments")).some((a) => a.diskId === secret?.diskId)).toBe(false);
  });

  step("destroy leaves no disks", async () => {
    const s = stack();
    await s.pulumi(["destroy", "--yes"]);
    expect(await s.list("disks")).toEqual([]);
    expect(await s.list("attachments")).toEqual([]);
    expect(await s.list("instances")).toEqual([]);
    await s.encdisk(["check"]);
  });
});

describe("the main job: npm run up / npm run destroy (scripts/up.sh) of the repository's Pulumi.yaml", () => {
  let tmp = "";
  const env: NodeJS.ProcessEnv = {};
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "encdisk-e2e-main-"));
    for (const [k, v] of Object.entries(process.env)) if (!/^(PULUMI_|ENCDISK_)/.test(k)) env[k] = v;
    Object.assign(env, {
      HOME: path.join(tmp, "home"),
      ENCDISK_PULUMI_STATE_DIR: path.join(tmp, "state"),
      ENCDISK_STACK: "e2e-main",
      ENCDISK_DIR: path.join(tmp, "engine"),
      ENCDISK_KMS_ROOT_KEY_FILE: path.join(tmp, "kms-root.key"),
      NO_COLOR: "1",
    });
    fs.mkdirSync(env.HOME as string);
  });
  let failed = false;
  const sh = async (args: string[]) => {
    const r = await run("bash", [path.join(ROOT, "scripts/up.sh"), ...args], { cwd: ROOT, env });
    if (r.code !== 0) {
      failed = true;
      throw new Error(`scripts/up.sh ${args.join(" ")} exited ${r.code}\n${r.out}`);
    }
    return r;
  };
  const disks = async () => JSON.parse((await run(process.execPath, [ENCDISK_CLI, "disks", "--json", "--dir", env.ENCDISK_DIR as string, "--kms-root-key-file", env.ENCDISK_KMS_ROOT_KEY_FILE as string], { cwd: ROOT, env })).stdout) as Disk[];
  afterAll(() => {
    if (!tmp) return;
    if (failed) process.stderr.write(`[e2e] kept ${tmp} for a post-mortem\n`);
    else fs.rmSync(tmp, { recursive: true, force: true });
  });

  test("up runs examples/basic on a file backend, keeps the stack file out of the working tree; destroy empties the engine", async () => {
    const up = await sh(["up"]);
    expect(up.stdout).toMatch(/\+ 7 created/);
    // stack init writes Pulumi.<stack>.yaml next to Pulumi.yaml; up.sh keeps it with the state.
    expect(fs.existsSync(path.join(ROOT, "Pulumi.e2e-main.yaml"))).toBe(false);
    expect(fs.existsSync(path.join(tmp, "state", "Pulumi.e2e-main.yaml"))).toBe(true);
    const out = JSON.parse((await sh(["pulumi", "stack", "output", "--json"])).stdout) as Record<string, unknown>;
    expect(out.dataEncrypted).toBe(true);
    expect((await disks()).map((d) => d.diskId).sort()).toEqual([out.dataDiskId, out.restoredDiskId].sort());
    expect(fs.existsSync(path.join(env.HOME as string, ".encdisk"))).toBe(false);

    await sh(["pulumi", "config", "set", "dataSizeGb", "25"]);
    const prev = await sh(["preview"]);
    expect(prev.stdout).toMatch(/EncryptedDisk data update \[diff: ~sizeGb\]/);

    await sh(["destroy"]);
    expect(await disks()).toEqual([]);
  });
});
