import { ErrorCodes } from "../../provider/engine";
import { anyFileContains, errorOf, pattern, setupEncrypted, tempEngine, ZONE, OTHER_REGION_ZONE, type TestEngine } from "./helpers";

let t: TestEngine;
beforeEach(() => {
  t = tempEngine();
  t.engine.authorizeKms();
});
afterEach(() => t.cleanup());

describe("snapshots", () => {
  test("K3: snapshots of an encrypted disk, and disks created from them, stay associated with the region's key", () => {
    const { disk, att } = setupEncrypted(t.engine);
    t.engine.write(att.attachmentId, 0, pattern(200_000));
    const snap = t.engine.createSnapshot({ diskId: disk.diskId });
    const clone = t.engine.createDisk({ zone: ZONE, sizeGb: 10, snapshotId: snap.snapshotId });
    expect(snap.kmsKeyId).toBe(disk.kmsKeyId);
    expect(clone.kmsKeyId).toBe(disk.kmsKeyId);
    const ins = t.engine.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
    const a2 = t.engine.attachDisk({ diskId: clone.diskId, instanceId: ins.instanceId });
    expect(t.engine.read(a2.attachmentId, 0, 200_000).equals(pattern(200_000))).toBe(true);
  });

  test("W2: every snapshot of an encrypted disk is encrypted, and its data is ciphertext on storage", () => {
    const { disk, att } = setupEncrypted(t.engine);
    const p = pattern(1 << 20, "SNAPSHOT-SECRET");
    t.engine.write(att.attachmentId, 0, p);
    const snap = t.engine.createSnapshot({ diskId: disk.diskId });
    expect(snap.encrypted).toBe(true);
    t.engine.write(att.attachmentId, 0, Buffer.alloc(1 << 20, 7)); // the disk moves on; the snapshot keeps the old units
    expect(anyFileContains(t.dir, Buffer.from("SNAPSHOT-SECRET-0123456789-"))).toBeNull();
  });

  test("S1: a snapshot of a plain disk is plain and cannot be converted into an encrypted snapshot", () => {
    const d = t.engine.createDisk({ zone: ZONE, sizeGb: 10 });
    const s = t.engine.createSnapshot({ diskId: d.diskId });
    expect(s.encrypted).toBe(false);
    expect(errorOf(() => t.engine.setSnapshotEncryption(s.snapshotId, true))).toMatchObject({ code: ErrorCodes.SnapshotEncryptConversion, rule: "S1" });
    // nor by creating an encrypted disk from it
    expect(errorOf(() => t.engine.createDisk({ zone: ZONE, sizeGb: 10, snapshotId: s.snapshotId, encrypt: true }))).toMatchObject({ rule: "S1", property: "encrypt" });
    expect(t.engine.getSnapshot(s.snapshotId).encrypted).toBe(false);
  });

  test("S2: an encrypted snapshot cannot be converted into a plain snapshot, nor give a plain disk", () => {
    const { disk } = setupEncrypted(t.engine);
    const s = t.engine.createSnapshot({ diskId: disk.diskId });
    expect(errorOf(() => t.engine.setSnapshotEncryption(s.snapshotId, false))).toMatchObject({ code: ErrorCodes.SnapshotEncryptConversion, rule: "S2" });
    expect(errorOf(() => t.engine.createDisk({ zone: ZONE, sizeGb: 10, snapshotId: s.snapshotId, encrypt: false }))).toMatchObject({ rule: "S2", property: "encrypt" });
    expect(t.engine.listDisks()).toHaveLength(1);
  });

  test("C2: a disk created from an encrypted snapshot is encrypted without asking and holds the snapshot's data", () => {
    const { disk, att } = setupEncrypted(t.engine);
    t.engine.write(att.attachmentId, 5000, Buffer.from("snapshot data"));
    const s = t.engine.createSnapshot({ diskId: disk.diskId });
    const d2 = t.engine.createDisk({ zone: ZONE, sizeGb: 20, snapshotId: s.snapshotId });
    expect(d2).toMatchObject({ encrypted: true, snapshotId: s.snapshotId, sizeGb: 20 });
    const ins = t.engine.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
    const a2 = t.engine.attachDisk({ diskId: d2.diskId, instanceId: ins.instanceId });
    expect(t.engine.read(a2.attachmentId, 5000, 13).toString()).toBe("snapshot data");
  });

  test("C3: a disk from a snapshot must be at least the snapshot's size and in its region", () => {
    const d = t.engine.createDisk({ zone: ZONE, sizeGb: 20, encrypt: true });
    const s = t.engine.createSnapshot({ diskId: d.diskId });
    expect(errorOf(() => t.engine.createDisk({ zone: ZONE, sizeGb: 10, snapshotId: s.snapshotId }))).toMatchObject({ code: ErrorCodes.DiskSizeNotMatch, property: "sizeGb" });
    expect(errorOf(() => t.engine.createDisk({ zone: OTHER_REGION_ZONE, sizeGb: 20, snapshotId: s.snapshotId })).property).toBe("snapshotId");
    expect(errorOf(() => t.engine.createDisk({ zone: ZONE, sizeGb: 20, snapshotId: "snap-00000000" })).code).toBe(ErrorCodes.SnapshotNotFound);
  });

  test("snapshots are point in time and cheap: they share units, and their cost does not grow with disk size", () => {
    const small = t.engine.createDisk({ zone: ZONE, sizeGb: 1, encrypt: true });
    const big = t.engine.createDisk({ zone: ZONE, sizeGb: 1024, encrypt: true });
    const ins = t.engine.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
    const sa = t.engine.attachDisk({ diskId: small.diskId, instanceId: ins.instanceId });
    const ba = t.engine.attachDisk({ diskId: big.diskId, instanceId: ins.instanceId });
    t.engine.write(sa.attachmentId, 0, pattern(4 << 20));
    t.engine.write(ba.attachmentId, 0, pattern(4 << 20));
    const s1 = t.engine.createSnapshot({ diskId: small.diskId });
    const s2 = t.engine.createSnapshot({ diskId: big.diskId });
    expect(s1.usedBytes).toBe(4 << 20);
    expect(s2.usedBytes).toBe(4 << 20);
    const before = t.engine.check();
    expect(before.problems).toEqual([]);
    // point in time: later writes do not show in the snapshot
    t.engine.write(ba.attachmentId, 0, Buffer.from("changed"));
    const clone = t.engine.createDisk({ zone: ZONE, sizeGb: 1024, snapshotId: s2.snapshotId });
    const ins2 = t.engine.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
    const ca = t.engine.attachDisk({ diskId: clone.diskId, instanceId: ins2.instanceId });
    expect(t.engine.read(ca.attachmentId, 0, 7).equals(pattern(7))).toBe(true);
    expect(t.engine.read(ba.attachmentId, 0, 7).toString()).toBe("changed");
  });

  test("deleting a disk keeps its snapshots; deleting a snapshot frees only units nothing else uses", () => {
    const { disk, att, instance } = setupEncrypted(t.engine);
    t.engine.write(att.attachmentId, 0, pattern(1 << 20));
    const s = t.engine.createSnapshot({ diskId: disk.diskId });
    t.engine.detachDisk(att.attachmentId);
    t.engine.deleteDisk(disk.diskId);
    expect(t.engine.getSnapshot(s.snapshotId).usedBytes).toBe(1 << 20);
    const d2 = t.engine.createDisk({ zone: ZONE, sizeGb: 10, snapshotId: s.snapshotId });
    t.engine.deleteSnapshot(s.snapshotId);
    const a2 = t.engine.attachDisk({ diskId: d2.diskId, instanceId: instance.instanceId });
    expect(t.engine.read(a2.attachmentId, 0, 1 << 20).equals(pattern(1 << 20))).toBe(true);
    expect(t.engine.check().problems).toEqual([]);
    t.engine.detachDisk(a2.attachmentId);
    t.engine.deleteDisk(d2.diskId);
    expect(t.engine.check()).toMatchObject({ problems: [], units: 0 });
  });

  test("roll back (ApplySnapshot): restores the snapshot's data, only onto its own disk, only while unattached", () => {
    const { disk, att, instance } = setupEncrypted(t.engine);
    t.engine.write(att.attachmentId, 0, Buffer.from("version-1"));
    const s = t.engine.createSnapshot({ diskId: disk.diskId });
    t.engine.write(att.attachmentId, 0, Buffer.from("version-2"));
    expect(errorOf(() => t.engine.applySnapshot(s.snapshotId, disk.diskId))).toMatchObject({ code: ErrorCodes.Attached });
    const other = t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
    expect(errorOf(() => t.engine.applySnapshot(s.snapshotId, other.diskId))).toMatchObject({ code: ErrorCodes.SnapshotNotFromDisk });
    t.engine.detachDisk(att.attachmentId);
    t.engine.applySnapshot(s.snapshotId, disk.diskId);
    const a2 = t.engine.attachDisk({ diskId: disk.diskId, instanceId: instance.instanceId });
    expect(t.engine.read(a2.attachmentId, 0, 9).toString()).toBe("version-1");
    expect(t.engine.check().problems).toEqual([]);
  });
});
