/**
 * Issue 13 at the hook and CLI level (the e2e suite, test/e2e/provider.e2e.ts, runs each item
 * under the real Pulumi CLI): owner tags and `encdisk orphans`, the attachment a replacement
 * check must recognise as its own, refusals a dependent makes, KMS ordering, kmsKeyId.
 */
import * as fs from "fs";
import * as path from "path";
import { main } from "../../provider/engine/cli/main";
import { ErrorCodes, Refusals } from "../../provider/engine";
import { attachments, disks, images, instances, kms, reasons, sandbox, Sandbox, snapshotCopies, snapshots, stderrOf, UNKNOWN, ZONE, OTHER_ZONE } from "./helpers";

let sb: Sandbox;
beforeEach(() => {
  sb = sandbox();
});
afterEach(() => sb.cleanup());

const urn = (name: string, type = "EncryptedDisk", stack = "dev", project = "shop") => `urn:pulumi:${stack}::${project}::pulumi-nodejs:dynamic/encdisk:${type}::${name}`;

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  const chunks: string[] = [];
  const spy = jest.spyOn(process.stdout, "write").mockImplementation((s: string | Uint8Array) => (chunks.push(String(s)), true));
  const err = jest.spyOn(process.stderr, "write").mockImplementation(() => true);
  try {
    const code = await main([...args, "--dir", sb.engineDir, "--kms-root-key-file", sb.rootKeyFile]);
    return { code, out: chunks.join("") };
  } finally {
    spy.mockRestore();
    err.mockRestore();
  }
}

function exportOf(resources: Array<{ urn: string; id?: string }>, pending: Array<{ urn: string; id?: string }> = []): string {
  const file = path.join(sb.dir, `export-${Math.random().toString(36).slice(2)}.json`);
  const pending_operations = pending.map((resource) => ({ type: "creating", resource }));
  fs.writeFileSync(file, JSON.stringify({ version: 3, deployment: { resources: [{ urn: "urn:pulumi:dev::shop::pulumi:pulumi:Stack::shop-dev" }, ...resources], pending_operations } }));
  return file;
}

test("13.3: a create tags what it makes with the resource's URN in the same transaction; a refused create tags nothing", async () => {
  await kms.create({});
  const d = await disks.up({ zone: ZONE, sizeGb: 10, __owner: urn("data") });
  expect(sb.engine().listOwned()).toEqual([expect.objectContaining({ resourceId: d.id, kind: "disk", owner: urn("data") })]);
  // The engine refuses (C1): no disk, no attachment, no tag.
  const west = await instances.up({ zone: OTHER_ZONE, instanceType: "S5.MEDIUM4", __owner: urn("west", "Instance") });
  await expect(attachments.create({ diskId: d.id, instanceId: west.id, __owner: urn("att", "Attachment") })).rejects.toThrow(/C1/);
  expect(sb.engine().listOwned().map((o) => o.resourceId)).toEqual([d.id, west.id]);
  // State written before owners existed has no __owner: nothing is tagged, nothing breaks.
  const old = await disks.up({ zone: ZONE, sizeGb: 10 });
  expect(sb.engine().listOwned().map((o) => o.resourceId)).not.toContain(old.id);
});

test("13.3: encdisk orphans lists what a stack owns that its export does not hold, never another stack's or project's (same names), and --delete removes it dependents first", async () => {
  await kms.create({});
  const mk = async (stack: string, project: string) => {
    const i = await instances.up({ zone: ZONE, instanceType: "S5.MEDIUM4", __owner: urn("web", "Instance", stack, project) });
    const d = await disks.up({ zone: ZONE, sizeGb: 10, __owner: urn("data", "EncryptedDisk", stack, project) });
    const a = await attachments.up({ diskId: d.id, instanceId: i.id, __owner: urn("att", "Attachment", stack, project) });
    return { i: i.id, d: d.id, a: a.id };
  };
  const mine = await mk("dev", "shop");
  const lost = await mk("dev", "shop"); // what a killed up left: same URNs, not in the state
  const otherStack = await mk("prod", "shop");
  const otherProject = await mk("dev", "blog");
  // A killed up's pending creates may carry ids; Pulumi does not manage them: still orphans.
  const file = exportOf(
    [
      { urn: urn("web", "Instance"), id: mine.i },
      { urn: urn("data"), id: mine.d },
      { urn: urn("att", "Attachment"), id: mine.a },
    ],
    [{ urn: urn("data"), id: lost.d }],
  );
  const listed = JSON.parse((await cli(["orphans", "--stack-export", file, "--json"])).out) as Array<{ resourceId: string }>;
  expect(listed.map((o) => o.resourceId).sort()).toEqual([lost.i, lost.d, lost.a].sort());

  expect((await cli(["orphans", "--stack-export", file, "--delete"])).code).toBe(0);
  const e = sb.engine();
  expect(e.findAttachment(lost.a)).toBeNull();
  expect(e.findDisk(lost.d)).toBeNull();
  expect(e.findInstance(lost.i)).toBeNull();
  for (const kept of [mine, otherStack, otherProject]) {
    expect(e.findAttachment(kept.a)).not.toBeNull();
    expect(e.findDisk(kept.d)).not.toBeNull();
  }
  expect(JSON.parse((await cli(["orphans", "--stack-export", file, "--json"])).out)).toEqual([]);
  // An export with no resources (after destroy) names the stack by flags.
  const empty = path.join(sb.dir, "empty.json");
  fs.writeFileSync(empty, JSON.stringify({ version: 3, deployment: {} }));
  expect((await cli(["orphans", "--stack-export", empty])).code).toBe(1);
  const prod = JSON.parse((await cli(["orphans", "--stack-export", empty, "--project", "shop", "--stack", "prod", "--json"])).out) as Array<{ resourceId: string }>;
  expect(prod.map((o) => o.resourceId).sort()).toEqual([otherStack.i, otherStack.d, otherStack.a].sort());
});

test("13.1: an Attachment checked again without its old inputs (a planned replacement) recognises its own attachment by its owner tag", async () => {
  await kms.create({});
  const web1 = await instances.up({ zone: ZONE, instanceType: "S5.MEDIUM4" });
  const web2 = await instances.up({ zone: ZONE, instanceType: "S5.MEDIUM4" });
  const d = await disks.up({ zone: ZONE, sizeGb: 10 });
  await attachments.up({ diskId: d.id, instanceId: web1.id, __owner: urn("att", "Attachment") });
  // Pulumi 3.248's second check of a replacement: no olds.
  expect((await attachments.check({}, { diskId: d.id, instanceId: web2.id, __owner: urn("att", "Attachment") })).failures).toEqual([]);
  // Another resource moving the same disk is still refused.
  expect(reasons(await attachments.check({}, { diskId: d.id, instanceId: web2.id, __owner: urn("att2", "Attachment") }), "diskId")[0]).toMatch(/already attached/);
});

test("13.2: when a disk's diff replaces it into another zone, its Attachment's check refuses staying on an instance of the old zone (C1), and allows one of the new zone", async () => {
  await kms.create({});
  const web = await instances.up({ zone: ZONE, instanceType: "S5.MEDIUM4" });
  const west = await instances.up({ zone: OTHER_ZONE, instanceType: "S5.MEDIUM4" });
  const d = await disks.up({ zone: ZONE, sizeGb: 10, __owner: urn("data") });
  const a = await attachments.up({ diskId: d.id, instanceId: web.id });
  sb.engine().write(a.id, 0, Buffer.alloc(100_000, 1));
  const { result, text } = await stderrOf(() => disks.diff(d.id, d.outs, { zone: OTHER_ZONE, sizeGb: 10, __owner: urn("data") }));
  expect(result.replaces).toEqual(["zone"]);
  // Outside the host there is no engine to log to: the warning goes to stderr.
  expect(text).toMatch(new RegExp(`${d.id} will be REPLACED \\(zone changed\\).*128 KiB written.*sourceDiskId: "${d.id}".*M1`));
  const olds = { diskId: d.id, instanceId: web.id };
  expect(reasons(await attachments.check(olds, { diskId: UNKNOWN, instanceId: web.id }), "diskId")[0]).toMatch(new RegExp(`^C1: ${d.id} would be replaced by a disk in ${OTHER_ZONE}`));
  expect((await attachments.check(olds, { diskId: UNKNOWN, instanceId: west.id })).failures).toEqual([]);
});

test("13.5: an attached disk that grows makes its Attachment's diff an update, whose outputs then say reattachRequired (L6)", async () => {
  await kms.create({});
  const web = await instances.up({ zone: ZONE, instanceType: "S5.MEDIUM4" });
  const d = await disks.up({ zone: ZONE, sizeGb: 10 });
  const a = await attachments.up({ diskId: d.id, instanceId: web.id });
  const news = { diskId: d.id, instanceId: web.id };
  expect((await attachments.diff(a.id, a.outs, news)).changes).toBe(false);
  await stderrOf(() => disks.diff(d.id, d.outs, { zone: ZONE, sizeGb: 20 }));
  expect(await attachments.diff(a.id, a.outs, news)).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
  await stderrOf(() => disks.update(d.id, d.outs, { zone: ZONE, sizeGb: 20 }));
  expect((await attachments.update(a.id, a.outs, news)).outs).toMatchObject({ diskSizeGb: 20, capacityGb: 10, reattachRequired: true });
});

test("13.4: an EncryptedDisk takes the KmsAuthorization's id as kmsAuthorization (orders it, changes nothing); O2's refusal says so", async () => {
  const c = await disks.check({}, { zone: ZONE, sizeGb: 10, kmsAuthorization: UNKNOWN });
  expect(c.failures).toEqual([]);
  await expect(disks.create({ zone: ZONE, sizeGb: 10, kmsAuthorization: "100000000001" })).rejects.toThrow(Refusals.kmsNotAuthorized);
  expect(Refusals.kmsNotAuthorized).toMatch(/kmsAuthorization: kms\.accountId/);
  const k = await kms.create({});
  const d = await disks.up({ zone: ZONE, sizeGb: 10, kmsAuthorization: k.id });
  expect((await disks.diff(d.id, d.outs, { zone: ZONE, sizeGb: 10, kmsAuthorization: "100000000002" })).changes).toBe(false);
});

test("13.5: K5/O3: a kmsKeyId input is refused with the engine's words: the CMK is service-managed and cannot be chosen", async () => {
  const c = await disks.check({}, { zone: ZONE, sizeGb: 10, kmsKeyId: "my-key" });
  expect(reasons(c, "kmsKeyId")).toEqual([Refusals.cmkNotChoosable]);
  expect(Refusals.cmkNotChoosable).toMatch(/service-managed.*K5\/O3/);
  await kms.create({});
  expect(() => sb.engine().createDisk({ zone: ZONE, sizeGb: 10, kmsKeyId: "my-key" } as never)).toThrow(expect.objectContaining({ code: ErrorCodes.ServiceManagedKey, message: expect.stringContaining(Refusals.cmkNotChoosable) }));
});

test("13.2: a disk replaced into another region replaces its snapshot there: an Image mixing regions and a SnapshotCopy into that region are refused at check", async () => {
  const a = await disks.up({ zone: ZONE, sizeGb: 10, encrypt: false });
  const b = await disks.up({ zone: ZONE, sizeGb: 10, encrypt: false });
  const sa = await snapshots.up({ diskId: a.id });
  const sb2 = await snapshots.up({ diskId: b.id });
  const imageInputs = { name: "both", snapshotIds: [sa.id, sb2.id] };
  const copyInputs = { sourceSnapshotId: sa.id, destinationRegion: "ap-shanghai" };
  // Nothing planned yet: both fine.
  expect((await images.check(imageInputs, { name: "both", snapshotIds: [UNKNOWN, sb2.id] })).failures).toEqual([]);
  expect((await snapshotCopies.check(copyInputs, { ...copyInputs, sourceSnapshotId: UNKNOWN })).failures).toEqual([]);

  expect((await disks.diff(a.id, a.outs, { zone: "ap-shanghai-2", sizeGb: 10, encrypt: false })).replaces).toEqual(["zone"]);
  expect((await snapshots.diff(sa.id, sa.outs, { diskId: UNKNOWN })).replaces).toEqual(["diskId"]);
  expect(reasons(await images.check(imageInputs, { name: "both", snapshotIds: [UNKNOWN, sb2.id] }), "snapshotIds")[0]).toMatch(/ap-guangzhou and ap-shanghai.*one region only/);
  expect(reasons(await snapshotCopies.check(copyInputs, { ...copyInputs, sourceSnapshotId: UNKNOWN }), "destinationRegion")[0]).toMatch(new RegExp(`${sa.id} would be replaced by a snapshot in ap-shanghai`));
  // A copy elsewhere stays possible.
  expect((await snapshotCopies.check({ ...copyInputs, destinationRegion: "ap-guangzhou" }, { sourceSnapshotId: UNKNOWN, destinationRegion: "ap-guangzhou" })).failures).toEqual([]);
});
