/**
 * examples/basic through the real Pulumi CLI: preview, up, no-change preview, growth (L6),
 * re-attach (delete-before-replace), refused encryption flip (L5), a disk deleted behind
 * Pulumi's back (refresh), recovery, destroy, and the KMS audit log of all of it (B2).
 *
 * The steps share one stack and run in order; a failed step leaves the later ones failing too
 * (read the first failure). The engine directory and key file reach the provider through
 * stack config (encdisk:engineDir, encdisk:kmsRootKeyFile) with HOME pointing at a temp dir.
 */
import * as fs from "fs";
import * as path from "path";
import { AuditEntry, E2EStack, opsByName, stepLines, stepsOfFile } from "./harness";

interface Disk {
  diskId: string;
  sizeGb: number;
  encrypted: boolean;
  kmsKeyId?: string;
  attachmentId?: string;
  name?: string;
}
interface Attachment {
  attachmentId: string;
  diskId: string;
  capacityGb: number;
  diskSizeGb: number;
  reattachRequired: boolean;
}

let s: E2EStack;
const { step, failed } = stepsOfFile();
/** The KMS calls the operations so far should have made, in order (B2). */
const expectedAudit: Array<[operation: string, resourceId: string, kmsApi: string]> = [];
const ids: Record<string, string> = {};

beforeAll(async () => {
  s = new E2EStack("examples/basic", "basic", "config");
  await s.init();
});

afterAll(() => {
  if (!s) return;
  process.stderr.write(`[e2e] examples/basic commands:\n${s.timings()}\n`);
  s.cleanup(failed());
});

step("P3: preview lists the seven creates and touches nothing", async () => {
  const p = await s.previewJson();
  expect(opsByName(p)).toEqual({
    kms: "create",
    web: "create",
    data: "create",
    "data-on-web": "create",
    "data-snapshot": "create",
    restored: "create",
  });
  expect(p.changeSummary).toEqual({ create: 7 });
  // A preview must not create the engine directory or a root key (check only looks things up).
  expect(fs.existsSync(path.join(s.engineDir, "state.db"))).toBe(false);
  expect(fs.existsSync(s.keyFile)).toBe(false);
});

step("up creates them; K3/C2: the disk restored from the encrypted snapshot is encrypted under the same key", async () => {
  await s.pulumi(["up", "--yes"]);
  expect(await s.lastChanges()).toEqual({ create: 7 });
  const out = await s.outputs();
  expect(out.dataEncrypted).toBe(true);
  expect(out.restoredEncrypted).toBe(true);
  expect(out.capacityGb).toBe(20);
  // create (first in region) GenerateDataKey, attach Decrypt, snapshot Decrypt, create from snapshot Decrypt.
  expect(out.kmsCallsBilled).toBe(4);

  // The provider used the configured engine directory and key file, never $HOME.
  expect(fs.existsSync(path.join(s.engineDir, "state.db"))).toBe(true);
  expect(fs.existsSync(s.keyFile)).toBe(true);
  expect(fs.existsSync(path.join(s.env.HOME as string, ".encdisk"))).toBe(false);

  const disks = await s.list<Disk>("disks");
  expect(disks.map((d) => d.diskId).sort()).toEqual([out.dataDiskId, out.restoredDiskId].sort());
  expect(disks.every((d) => d.encrypted && d.kmsKeyId === out.kmsKeyId)).toBe(true);
  const atts = await s.list<Attachment>("attachments");
  expect(atts).toHaveLength(1);
  Object.assign(ids, {
    data: out.dataDiskId as string,
    restored: out.restoredDiskId as string,
    snapshot: out.snapshotId as string,
    attachment: atts[0].attachmentId,
  });
  expectedAudit.push(
    ["CreateDisk", ids.data, "CreateKey"],
    ["CreateDisk", ids.data, "GenerateDataKey"],
    ["AttachDisk", ids.data, "Decrypt"],
    ["CreateSnapshot", ids.snapshot, "Decrypt"],
    ["CreateDisk", ids.restored, "Decrypt"],
  );
});

step("P3: preview --expect-no-changes passes right after up", async () => {
  const r = await s.pulumi(["preview", "--expect-no-changes"]);
  expect(r.stdout).toMatch(/7 unchanged/);
});

step("L6: growing sizeGb previews and applies as one in-place update; the attachment keeps the old capacity", async () => {
  await s.config("dataSizeGb", "30");
  const p = await s.previewJson();
  // P3: the preview tells the truth: the disk grows in place, nothing is replaced; the
  // attachment's outputs (diskSizeGb, reattachRequired) change with it (issue 13.5), so it is
  // an update too, after the disk.
  expect(opsByName(p)).toEqual({ data: "update", "data-on-web": "update" });
  expect(p.changeSummary).toEqual({ update: 2, same: 5 });
  expect(JSON.stringify(p.diagnostics ?? [])).toMatch(/L6: .*detach and attach/);
  // The CLI names the changed input; the L6 warning sits on the disk's own line.
  const text = await s.pulumi(["preview"]);
  const lines = stepLines(text.stdout).map((l) => l.trim());
  expect(lines.filter((l) => l.startsWith("~ ")).map((l) => l.replace(/; warning: .*/, ""))).toEqual([
    "~  pulumi-nodejs:dynamic/encdisk:EncryptedDisk data update [diff: ~sizeGb]",
    "~  pulumi-nodejs:dynamic/encdisk:Attachment data-on-web update",
  ]);
  expect(lines.filter((l) => /warning: L6: /.test(l)).every((l) => /EncryptedDisk data /.test(l))).toBe(true);
  expect(text.stdout).toMatch(/EncryptedDisk \(data\):\s+warning: L6: /);

  const up = await s.pulumi(["up", "--yes"]);
  expect(up.out).toMatch(/L6: /);
  expect(await s.lastChanges()).toEqual({ update: 2, same: 5 });

  const disk = (await s.list<Disk>("disks")).find((d) => d.diskId === ids.data);
  expect(disk?.sizeGb).toBe(30);
  const [att] = await s.list<Attachment>("attachments");
  expect(att).toMatchObject({ attachmentId: ids.attachment, capacityGb: 20, diskSizeGb: 30, reattachRequired: true });
  expect((await s.outputs()).capacityGb).toBe(20);
});

step("L6: refresh reads the attachment as still 20 GB (re-attach required) and a preview then shows no changes", async () => {
  await s.pulumi(["refresh", "--yes"]);
  const st = await s.stateResources();
  expect(st["data-on-web"].outputs).toMatchObject({ capacityGb: 20, diskSizeGb: 30, reattachRequired: true });
  expect(st.data.outputs).toMatchObject({ sizeGb: 30, reattachRequired: true });
  await s.pulumi(["preview", "--expect-no-changes"]);
});

step("L6: re-attaching (expectedCapacityGb) replaces the attachment delete-before-replace; the instance then sees 30 GB", async () => {
  await s.config("attachedCapacityGb", "30");
  const p = await s.previewJson();
  expect(opsByName(p)).toEqual({ "data-on-web": "replace" });
  expect(p.changeSummary).toEqual({ replace: 1, same: 6 });
  // delete-before-replace (a disk sits on one instance at a time): the JSON preview does not
  // say so, the text preview does, by the order of its lines.
  const text = stepLines((await s.pulumi(["preview"])).stdout).filter((l) => / data-on-web /.test(l));
  expect(text.map((l) => l.trim().split(/\s+/)[0])).toEqual(["--", "+-", "++"]);
  expect(text[0]).toMatch(/delete original/);
  expect(text[2]).toMatch(/create replacement/);

  const up = await s.pulumi(["up", "--yes"]);
  const lines = up.stdout.split("\n");
  const deleted = lines.findIndex((l) => /Attachment data-on-web deleted original/.test(l));
  const created = lines.findIndex((l) => /Attachment data-on-web created replacement/.test(l));
  expect(deleted).toBeGreaterThanOrEqual(0);
  expect(created).toBeGreaterThan(deleted);
  expect(await s.lastChanges()).toEqual({ replace: 1, same: 6 });

  const atts = await s.list<Attachment>("attachments");
  expect(atts).toHaveLength(1);
  expect(atts[0].attachmentId).not.toBe(ids.attachment);
  expect(atts[0]).toMatchObject({ diskId: ids.data, capacityGb: 30, diskSizeGb: 30, reattachRequired: false });
  expect((await s.outputs()).capacityGb).toBe(30);
  ids.attachment = atts[0].attachmentId;
  expectedAudit.push(["DetachDisk", ids.data, "Encrypt"], ["AttachDisk", ids.data, "Decrypt"]);
});

step("L5: flipping encrypt to false is refused at preview and by up, naming L5; nothing changes", async () => {
  const disksBefore = await s.list<Disk>("disks");
  const auditBefore = await s.list<AuditEntry>("audit");
  await s.config("encryptData", "false");

  const p = await s.pulumi(["preview"], { allowFail: true });
  expect(p.code).not.toBe(0);
  expect(p.out).toMatch(/EncryptedDisk resource 'data'.*L5: an encrypted disk cannot be converted into a non-encrypted one/);

  const up = await s.pulumi(["up", "--yes", "--skip-preview"], { allowFail: true });
  expect(up.code).not.toBe(0);
  expect(up.out).toMatch(/L5: /);

  expect(await s.list<Disk>("disks")).toEqual(disksBefore);
  expect(await s.list<AuditEntry>("audit")).toEqual(auditBefore);

  await s.config("encryptData", "true");
  await s.pulumi(["preview", "--expect-no-changes"]);
});

step("refresh: a disk detached and deleted behind Pulumi's back (encdisk CLI) is dropped from the state", async () => {
  await s.encdisk(["detach", ids.data]);
  expectedAudit.push(["DetachDisk", ids.data, "Encrypt"]);
  await s.encdisk(["delete-disk", ids.data]);
  expect((await s.list<Disk>("disks")).map((d) => d.diskId)).toEqual([ids.restored]);

  await s.pulumi(["refresh", "--yes"]);
  expect(await s.lastChanges()).toMatchObject({ delete: 2 });
  const st = await s.stateResources();
  expect(Object.keys(st).sort()).toEqual(["data-snapshot", "kms", "restored", "web"]);
});

step("after the refresh, up recreates the disk and its dependants and converges", async () => {
  const p = await s.previewJson();
  // The snapshot was taken from the deleted disk: one of the new disk replaces it, and so does
  // the disk restored from it.
  expect(opsByName(p)).toEqual({ data: "create", "data-on-web": "create", "data-snapshot": "replace", restored: "replace" });

  await s.pulumi(["up", "--yes"]);
  await s.pulumi(["preview", "--expect-no-changes"]);
  const out = await s.outputs();
  expect(out.dataDiskId).not.toBe(ids.data);
  expect(out.capacityGb).toBe(30);
  const disks = await s.list<Disk>("disks");
  expect(disks.map((d) => d.diskId).sort()).toEqual([out.dataDiskId, out.restoredDiskId].sort());
  expect(await s.list("snapshots")).toHaveLength(1);
  Object.assign(ids, { data: out.dataDiskId as string, restored: out.restoredDiskId as string, snapshot: out.snapshotId as string });
  expectedAudit.push(
    ["CreateDisk", ids.data, "Decrypt"], // the region's DK exists: unwrapping it is the call
    ["AttachDisk", ids.data, "Decrypt"],
    ["CreateSnapshot", ids.snapshot, "Decrypt"],
    ["CreateDisk", ids.restored, "Decrypt"],
  );
});

step("destroy leaves no disks; B2: the audit log holds exactly the KMS calls of the operations above", async () => {
  await s.pulumi(["destroy", "--yes"]);
  expectedAudit.push(["DetachDisk", ids.data, "Encrypt"]);
  expect(await s.list("disks")).toEqual([]);
  expect(await s.list("snapshots")).toEqual([]);
  expect(await s.list("attachments")).toEqual([]);
  expect(await s.list("instances")).toEqual([]);
  expect(Object.keys(await s.stateResources())).toEqual([]);

  const audit = await s.list<AuditEntry>("audit");
  expect(audit.map((a) => [a.operation, a.resourceId, a.kmsApi])).toEqual(expectedAudit);
  // CreateKey (the CMK) is free (B1); every other call is billed at the default price.
  for (const a of audit) expect(a.billable).toBe(a.kmsApi !== "CreateKey");
  const billed = audit.filter((a) => a.billable).length;
  const usage = JSON.parse((await s.encdisk(["usage", "--json"])).stdout) as { usage: Array<{ calls: number; chargedMicros: number }> };
  expect(usage.usage.reduce((n, u) => n + u.calls, 0)).toBe(billed);
  expect(usage.usage.reduce((n, u) => n + u.chargedMicros, 0)).toBe(billed * 6);

  // The engine is consistent and holds no plaintext key material.
  await s.encdisk(["check"]);
  await s.encdisk(["verify"]);
});
