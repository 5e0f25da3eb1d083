/** EncryptedDisk hooks called directly, as the dynamic-provider host calls them. */
import { attachments, disks, instances, kms, reasons, sandbox, Sandbox, snapshots, stderrOf, UNKNOWN, ZONE, OTHER_ZONE } from "./helpers";

let sb: Sandbox;
beforeEach(async () => {
  sb = sandbox();
  await kms.create({});
});
afterEach(() => sb.cleanup());

async function attachedDisk(inputs: Record<string, unknown> = { zone: ZONE, sizeGb: 10 }) {
  const ins = await instances.up({ zone: ZONE, instanceType: "S5.MEDIUM4" });
  const disk = await disks.up(inputs);
  const att = await attachments.up({ diskId: disk.id, instanceId: ins.id });
  return { ins, disk, att };
}

describe("create and read", () => {
  test("C3: a disk is encrypted by default, in its zone's region, under the region's CMK (K2)", async () => {
    const { id, outs } = await disks.up({ zone: ZONE, sizeGb: 10, name: "data", tags: { env: "test" } });
    expect(id).toMatch(/^disk-/);
    expect(outs).toMatchObject({ diskId: id, region: "ap-guangzhou", zone: ZONE, sizeGb: 10, encrypted: true, state: "UNATTACHED", name: "data", tags: { env: "test" }, diskType: "CLOUD_PREMIUM", diskUsage: "DATA_DISK" });
    expect(outs.kmsKeyId).toBe(sb.engine().listKeys("ap-guangzhou")[0].keyId);
    expect(outs).not.toHaveProperty("encrypt"); // not stated, not recorded
  });

  test("encrypt: false creates a plain disk without a KMS key", async () => {
    const { outs } = await disks.up({ zone: ZONE, sizeGb: 10, encrypt: false });
    expect(outs.encrypted).toBe(false);
    expect(outs).not.toHaveProperty("kmsKeyId");
    expect(outs.encrypt).toBe(false);
  });

  test("O2: an encrypted disk fails before KMS is authorized; the error names the code", async () => {
    sb.cleanup();
    sb = sandbox();
    await expect(disks.create({ zone: ZONE, sizeGb: 10 })).rejects.toThrow(/KmsNotAuthorized/);
    expect(sb.engine().listDisks()).toHaveLength(0);
  });

  test("read reflects a resize done outside Pulumi and reports a deleted disk as gone", async () => {
    const { id, outs } = await disks.up({ zone: ZONE, sizeGb: 10 });
    sb.engine().resizeDisk(id, 30);
    expect((await disks.read(id, outs)).props).toMatchObject({ sizeGb: 30 });
    sb.engine().deleteDisk(id);
    expect(await disks.read(id, outs)).toEqual({});
  });

  test("delete removes the disk and succeeds when it is already gone", async () => {
    const { id, outs } = await disks.up({ zone: ZONE, sizeGb: 10 });
    await disks.delete(id, outs);
    expect(sb.engine().findDisk(id)).toBeNull();
    await expect(disks.delete(id, outs)).resolves.toBeUndefined();
  });
});

describe("check", () => {
  test("validates every property and reports each failure on its own property", async () => {
    const c = await disks.check({}, { zone: "nowhere", sizeGb: 0, diskType: "FLOPPY", tags: { k: 3 }, colour: "red" });
    expect(c.failures.map((f) => f.property).sort()).toEqual(["colour", "diskType", "sizeGb", "tags.k", "zone"]);
  });

  test("requires zone and sizeGb for a blank disk", async () => {
    const c = await disks.check({}, {});
    expect(reasons(c, "zone")[0]).toMatch(/required/);
    expect(reasons(c, "sizeGb")[0]).toMatch(/required/);
  });

  test("skips values unknown during preview and validates the rest", async () => {
    const c = await disks.check({}, { zone: ZONE, sizeGb: UNKNOWN, snapshotId: UNKNOWN, tags: { a: UNKNOWN } });
    expect(c.failures).toEqual([]);
    expect(c.inputs).toEqual({ zone: ZONE, sizeGb: UNKNOWN, snapshotId: UNKNOWN, tags: { a: UNKNOWN } });
    const bad = await disks.check({}, { zone: UNKNOWN, sizeGb: -1 });
    expect(bad.failures.map((f) => f.property)).toEqual(["sizeGb"]);
  });

  test("returns the program's inputs unchanged (no defaults written into state)", async () => {
    const c = await disks.check({}, { zone: ZONE, sizeGb: 10, __provider: "x" });
    expect(c.inputs).toEqual({ zone: ZONE, sizeGb: 10 });
  });

  test("L2: a local disk cannot be encrypted (and encrypt defaults to true)", async () => {
    const c = await disks.check({}, { zone: ZONE, sizeGb: 10, diskType: "LOCAL_SSD" });
    expect(reasons(c, "diskType")[0]).toMatch(/^L2: .*encrypt: false/);
    expect((await disks.check({}, { zone: ZONE, sizeGb: 10, diskType: "LOCAL_SSD", encrypt: false })).failures).toEqual([]);
  });

  test("L2: a replacement of an encrypted disk by a local one is refused at check, not planned", async () => {
    const olds = { zone: ZONE, sizeGb: 10 };
    await disks.up(olds);
    const c = await disks.check(olds, { ...olds, diskType: "LOCAL_BASIC" });
    expect(reasons(c, "diskType")[0]).toMatch(/^L2: .*this disk is encrypted/);
    expect(reasons(await disks.check(olds, { ...olds, zone: "ap-guangzhou-99" }), "zone")).toHaveLength(1);
  });

  test("L3: a system disk cannot be encrypted", async () => {
    const c = await disks.check({}, { zone: ZONE, sizeGb: 10, diskUsage: "SYSTEM_DISK", encrypt: true });
    expect(reasons(c, "diskUsage")[0]).toMatch(/^L3: /);
  });

  test("L1: every cloud disk type can be encrypted", async () => {
    for (const diskType of ["CLOUD_BASIC", "CLOUD_PREMIUM", "CLOUD_SSD", "CLOUD_HSSD", "CLOUD_TSSD", "CLOUD_BSSD"]) {
      const { outs } = await disks.up({ zone: ZONE, sizeGb: 10, diskType });
      expect(outs).toMatchObject({ diskType, encrypted: true });
    }
  });

  test("snapshotId, sourceDiskId and adoptDiskId exclude each other", async () => {
    const c = await disks.check({}, { zone: ZONE, snapshotId: "snap-aaaa1111", sourceDiskId: "disk-aaaa1111" });
    expect(reasons(c, "sourceDiskId")[0]).toMatch(/at most one/);
  });
});

describe("encryption never changes (refused at preview, never a replacement)", () => {
  test("L4: check refuses encrypting an existing plain disk and names the migration path", async () => {
    const olds = { zone: ZONE, sizeGb: 10, encrypt: false };
    await disks.up(olds);
    const c = await disks.check(olds, { ...olds, encrypt: true });
    expect(c.failures).toHaveLength(1);
    expect(c.failures[0].property).toBe("encrypt");
    expect(c.failures[0].reason).toMatch(/^L4: /);
    expect(c.failures[0].reason).toMatch(/sourceDiskId/);
    expect(c.failures[0].reason).toMatch(/M1/);
  });

  test("L5: check refuses decrypting an encrypted disk, also when encrypt was omitted (default true)", async () => {
    const olds = { zone: ZONE, sizeGb: 10 };
    await disks.up(olds);
    const c = await disks.check(olds, { ...olds, encrypt: false });
    expect(reasons(c, "encrypt")[0]).toMatch(/^L5: .*sourceDiskId/);
  });

  test("L5: when check cannot tell, diff warns against the real state and update refuses; never a replacement", async () => {
    const { id, outs } = await disks.up({ zone: ZONE, sizeGb: 10 });
    const news = { zone: ZONE, sizeGb: 10, encrypt: false };
    const said = await stderrOf(() => disks.diff(id, outs, news));
    expect(said.result).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
    expect(said.text).toMatch(/will be refused: L5: /);
    await expect(disks.update(id, outs, news)).rejects.toThrow(/L5/);
    expect(sb.engine().getDisk(id).encrypted).toBe(true);
  });

  test("refresh: diff never throws when the engine compares refreshed outputs with the old inputs", async () => {
    const inputs = { zone: ZONE, sizeGb: 10 };
    const { id, outs } = await disks.up(inputs);
    sb.engine().resizeDisk(id, 25);
    const refreshed = (await disks.read(id, outs)).props as Record<string, unknown>;
    const said = await stderrOf(() => disks.diff(id, refreshed, inputs));
    expect(said.result).toMatchObject({ changes: true, replaces: [] });
  });

  test("L4: update refuses through the engine when reached anyway, and changes nothing", async () => {
    const { id, outs } = await disks.up({ zone: ZONE, sizeGb: 10, encrypt: false });
    await expect(disks.update(id, outs, { zone: ZONE, sizeGb: 20, encrypt: true })).rejects.toThrow(/UnsupportedOperation\.DiskEncrypt.*L4/);
    expect(sb.engine().getDisk(id)).toMatchObject({ encrypted: false, sizeGb: 10 });
  });

  test("C2: a disk from an encrypted snapshot is encrypted without saying so, and that is never shown as a change", async () => {
    const src = await disks.up({ zone: ZONE, sizeGb: 10 });
    const snap = await snapshots.up({ diskId: src.id });
    const inputs = { zone: ZONE, snapshotId: snap.id };
    const { id, outs } = await disks.up(inputs);
    expect(outs).toMatchObject({ encrypted: true, sizeGb: 10, snapshotId: snap.id });
    expect(outs).not.toHaveProperty("encrypt");
    expect((await disks.check(inputs, inputs)).failures).toEqual([]);
    expect(await disks.diff(id, outs, inputs)).toMatchObject({ changes: false, replaces: [] });
    // Stating the inherited value is no change either; stating the opposite is L5.
    expect(await disks.diff(id, outs, { ...inputs, encrypt: true })).toMatchObject({ changes: false });
    expect(reasons(await disks.check(inputs, { ...inputs, encrypt: false }), "encrypt")[0]).toMatch(/^L5: /);
  });

  test("S2: creating a plain disk from an encrypted snapshot is refused at check", async () => {
    const src = await disks.up({ zone: ZONE, sizeGb: 10 });
    const snap = await snapshots.up({ diskId: src.id });
    const c = await disks.check({}, { zone: ZONE, snapshotId: snap.id, encrypt: false });
    expect(reasons(c, "encrypt")[0]).toMatch(/^S2: /);
  });
});

describe("size", () => {
  test("growing sizeGb is an in-place update", async () => {
    const olds = { zone: ZONE, sizeGb: 10 };
    const { id, outs } = await disks.up(olds);
    const news = { ...olds, sizeGb: 20 };
    expect((await disks.check(olds, news)).failures).toEqual([]);
    expect(await disks.diff(id, outs, news)).toEqual({ changes: true, replaces: [], deleteBeforeReplace: false });
    const u = await disks.update(id, outs, news);
    expect(u.outs).toMatchObject({ diskId: id, sizeGb: 20, encrypted: true });
  });

  test("shrinking is refused at check, and in diff against a size grown outside Pulumi", async () => {
    const olds = { zone: ZONE, sizeGb: 10 };
    const { id, outs } = await disks.up(olds);
    const c = await disks.check(olds, { ...olds, sizeGb: 5 });
    expect(reasons(c, "sizeGb")[0]).toMatch(/only grow/);
    sb.engine().resizeDisk(id, 40);
    const refreshed = (await disks.read(id, outs)).props as Record<string, unknown>;
    const said = await stderrOf(() => disks.diff(id, refreshed, olds));
    expect(said.text).toMatch(/will be refused: disks can only grow/);
    await expect(disks.update(id, refreshed, { ...olds, name: "renamed" })).rejects.toThrow(/DiskShrink/);
    expect(sb.engine().getDisk(id)).toMatchObject({ sizeGb: 40, name: "" });
  });

  test("L6: growing an attached encrypted disk tells that the instance needs a re-attach", async () => {
    const { disk, att } = await attachedDisk();
    const news = { zone: ZONE, sizeGb: 20 };
    const d = await stderrOf(() => disks.diff(disk.id, disk.outs, news));
    expect(d.result).toMatchObject({ changes: true, replaces: [] });
    expect(d.text).toMatch(/L6: .*detach and attach/);
    const u = await stderrOf(() => disks.update(disk.id, disk.outs, news));
    expect(u.result.outs).toMatchObject({ sizeGb: 20, reattachRequired: true, attachmentId: att.id });
    expect(u.text).toMatch(/L6: .*detach and attach/);
    expect((await attachments.read(att.id, att.outs)).props).toMatchObject({ capacityGb: 10, diskSizeGb: 20, reattachRequired: true });
  });
});

describe("replacements and in-place updates", () => {
  test("zone, diskType, diskUsage and a different snapshotId replace the disk, and the diff says so", async () => {
    const { id, outs } = await disks.up({ zone: ZONE, sizeGb: 10 });
    const base = { zone: ZONE, sizeGb: 10 };
    expect(await disks.diff(id, outs, { ...base, zone: OTHER_ZONE })).toMatchObject({ changes: true, replaces: ["zone"] });
    expect(await disks.diff(id, outs, { ...base, diskType: "CLOUD_SSD" })).toMatchObject({ replaces: ["diskType"] });
    expect(await disks.diff(id, outs, { ...base, diskUsage: "SYSTEM_DISK" })).toMatchObject({ replaces: ["diskUsage"] });
    expect(await disks.diff(id, outs, { ...base, snapshotId: "snap-0000aaaa" })).toMatchObject({ replaces: ["snapshotId"] });
    expect(await disks.diff(id, outs, { ...base, zone: UNKNOWN })).toMatchObject({ replaces: ["zone"] });
    // Stating what the disk already is changes nothing.
    expect(await disks.diff(id, outs, { ...base, diskType: "CLOUD_PREMIUM", diskUsage: "DATA_DISK" })).toMatchObject({ changes: false, replaces: [] });
  });

  test("removing snapshotId after creation changes nothing", async () => {
    const src = await disks.up({ zone: ZONE, sizeGb: 10 });
    const snap = await snapshots.up({ diskId: src.id });
    const { id, outs } = await disks.up({ zone: ZONE, snapshotId: snap.id });
    expect(await disks.diff(id, outs, { zone: ZONE })).toMatchObject({ changes: false, replaces: [] });
  });

  test("name and tags are updated in place", async () => {
    const olds = { zone: ZONE, sizeGb: 10, name: "a" };
    const { id, outs } = await disks.up(olds);
    const news = { ...olds, name: "b", tags: { team: "storage" } };
    expect(await disks.diff(id, outs, news)).toMatchObject({ changes: true, replaces: [] });
    expect((await disks.update(id, outs, news)).outs).toMatchObject({ diskId: id, name: "b", tags: { team: "storage" } });
  });
});

describe("rollback (restoreSnapshotId)", () => {
  test("B2: rolling back restores the snapshot's data on update and is a billed KMS call", async () => {
    const { ins, disk, att } = await attachedDisk();
    const e = sb.engine();
    e.write(att.id, 0, Buffer.from("first"));
    await attachments.delete(att.id, att.outs);
    const snap = await snapshots.up({ diskId: disk.id });
    const att2 = await attachments.up({ diskId: disk.id, instanceId: ins.id });
    e.write(att2.id, 0, Buffer.from("later"));
    await attachments.delete(att2.id, att2.outs);

    const olds = { zone: ZONE, sizeGb: 10 };
    const news = { ...olds, restoreSnapshotId: snap.id };
    expect((await disks.check(olds, news)).failures).toEqual([]);
    expect(await disks.diff(disk.id, disk.outs, news)).toMatchObject({ changes: true, replaces: [] });
    const before = e.auditLog({ resourceId: disk.id }).length;
    const u = await disks.update(disk.id, disk.outs, news);
    expect(u.outs.restoreSnapshotId).toBe(snap.id);
    expect(e.auditLog({ resourceId: disk.id }).slice(before).map((a) => a.operation)).toContain("ApplySnapshot");
    const att3 = await attachments.up({ diskId: disk.id, instanceId: ins.id });
    expect(e.read(att3.id, 0, 5).toString()).toBe("first");
    // The same value again is no change; removing it clears the record (so it can be applied again).
    expect(await disks.diff(disk.id, u.outs, news)).toMatchObject({ changes: false });
    expect(await disks.diff(disk.id, u.outs, olds)).toMatchObject({ changes: true, replaces: [] });
  });

  test("refused at check while the disk is attached", async () => {
    const { disk } = await attachedDisk();
    const snap = await snapshots.up({ diskId: disk.id });
    const olds = { zone: ZONE, sizeGb: 10 };
    const c = await disks.check(olds, { ...olds, restoreSnapshotId: snap.id });
    expect(reasons(c, "restoreSnapshotId")[0]).toMatch(/refused while the disk is attached/);
  });

  test("refused on a new disk, and in diff for another disk's snapshot", async () => {
    const a = await disks.up({ zone: ZONE, sizeGb: 10 });
    const b = await disks.up({ zone: ZONE, sizeGb: 10 });
    const snapOfB = await snapshots.up({ diskId: b.id });
    expect(reasons(await disks.check({}, { zone: ZONE, sizeGb: 10, restoreSnapshotId: snapOfB.id }), "restoreSnapshotId")[0]).toMatch(/use snapshotId/);
    const news = { zone: ZONE, sizeGb: 10, restoreSnapshotId: snapOfB.id };
    expect((await stderrOf(() => disks.diff(a.id, a.outs, news))).text).toMatch(/will be refused: .*own snapshots/);
    await expect(disks.update(a.id, a.outs, news)).rejects.toThrow(/SnapshotNotFromDisk/);
  });
});

describe("migration and adoption", () => {
  test("M1: sourceDiskId creates an encrypted disk holding a plain disk's data", async () => {
    const { ins, disk: plain, att } = await attachedDisk({ zone: ZONE, sizeGb: 10, encrypt: false });
    const e = sb.engine();
    e.write(att.id, 4096, Buffer.from("payload"));
    await attachments.delete(att.id, att.outs);
    const migrated = await disks.up({ sourceDiskId: plain.id, encrypt: true, name: "data-encrypted" });
    expect(migrated.outs).toMatchObject({ encrypted: true, sourceDiskId: plain.id, zone: ZONE, sizeGb: 10, name: "data-encrypted" });
    const att2 = await attachments.up({ diskId: migrated.id, instanceId: ins.id });
    expect(e.read(att2.id, 4096, 7).toString()).toBe("payload");
    // Removing the source (and the input) later changes nothing.
    await disks.delete(plain.id, plain.outs);
    expect(await disks.diff(migrated.id, migrated.outs, { encrypt: true, name: "data-encrypted" })).toMatchObject({ changes: false, replaces: [] });
    expect(await disks.diff(migrated.id, migrated.outs, { sourceDiskId: plain.id, encrypt: true, name: "data-encrypted" })).toMatchObject({ changes: false });
  });

  test("adoptDiskId takes over an existing disk, growing and renaming it as stated", async () => {
    const existing = sb.engine().createDisk({ zone: ZONE, sizeGb: 10, encrypt: true, name: "legacy" });
    const { id, outs } = await disks.up({ adoptDiskId: existing.diskId, sizeGb: 15, name: "adopted" });
    expect(id).toBe(existing.diskId);
    expect(outs).toMatchObject({ adoptDiskId: existing.diskId, sizeGb: 15, name: "adopted", encrypted: true });
    expect(sb.engine().listDisks()).toHaveLength(1);
  });

  test("L4: adopting a plain disk as encrypted is refused at check", async () => {
    const plain = sb.engine().createDisk({ zone: ZONE, sizeGb: 10, encrypt: false });
    const c = await disks.check({}, { adoptDiskId: plain.diskId, encrypt: true });
    expect(reasons(c, "encrypt")[0]).toMatch(/^L4: /);
    const wrongZone = await disks.check({}, { adoptDiskId: plain.diskId, zone: OTHER_ZONE, sizeGb: 5 });
    expect(wrongZone.failures.map((f) => f.property).sort()).toEqual(["sizeGb", "zone"]);
  });

  test("read with only an id (Resource.get) returns the disk", async () => {
    const existing = sb.engine().createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
    expect(await disks.read(existing.diskId, {})).toMatchObject({ id: existing.diskId, props: { diskId: existing.diskId, encrypted: true } });
  });
});
