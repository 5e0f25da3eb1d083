import { ErrorCodes } from "../../provider/engine";
import { errorOf, pattern, tempEngine, ZONE, type TestEngine } from "./helpers";

let t: TestEngine;
beforeEach(() => {
  t = tempEngine();
  t.engine.authorizeKms();
});
afterEach(() => t.cleanup());

function snapshotOf(encrypt: boolean, data?: Buffer) {
  const d = t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt });
  if (data) {
    const ins = t.engine.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
    const a = t.engine.attachDisk({ diskId: d.diskId, instanceId: ins.instanceId });
    t.engine.write(a.attachmentId, 0, data);
  }
  return t.engine.createSnapshot({ diskId: d.diskId });
}

describe("images and cross-region copies", () => {
  test("S3: an image that contains encrypted snapshots cannot be shared", () => {
    const img = t.engine.createImage({ name: "mixed", snapshotIds: [snapshotOf(false).snapshotId, snapshotOf(true).snapshotId] });
    expect(img.encrypted).toBe(true);
    expect(errorOf(() => t.engine.shareImage(img.imageId, ["200000000002"]))).toMatchObject({ code: ErrorCodes.EncryptedImageShare, rule: "S3" });
    expect(t.engine.getImage(img.imageId).sharedWith).toEqual([]);
  });

  test("S3: an image of plain snapshots can be shared", () => {
    const img = t.engine.createImage({ name: "plain", snapshotIds: [snapshotOf(false).snapshotId] });
    expect(t.engine.shareImage(img.imageId, ["200000000002", "300000000003"]).sharedWith).toEqual(["200000000002", "300000000003"]);
    expect(errorOf(() => t.engine.shareImage(img.imageId, ["not-an-account"])).property).toBe("accountIds");
  });

  test("S4: encrypted snapshots cannot be copied across regions", () => {
    const s = snapshotOf(true);
    expect(errorOf(() => t.engine.copySnapshot({ snapshotId: s.snapshotId, destinationRegion: "ap-shanghai" }))).toMatchObject({ code: ErrorCodes.EncryptedCrossRegionCopy, rule: "S4" });
    expect(t.engine.listSnapshots({ region: "ap-shanghai" })).toHaveLength(0);
  });

  test("S4: images created from encrypted snapshots cannot be copied across regions", () => {
    const img = t.engine.createImage({ name: "enc", snapshotIds: [snapshotOf(true).snapshotId] });
    expect(errorOf(() => t.engine.copyImage({ imageId: img.imageId, destinationRegion: "ap-shanghai" }))).toMatchObject({ code: ErrorCodes.EncryptedCrossRegionCopy, rule: "S4" });
    expect(t.engine.listImages()).toHaveLength(1);
  });

  test("S4: plain snapshots and images copy across regions with their data", () => {
    const s = snapshotOf(false, pattern(200_000));
    const copy = t.engine.copySnapshot({ snapshotId: s.snapshotId, destinationRegion: "ap-shanghai" });
    expect(copy).toMatchObject({ region: "ap-shanghai", encrypted: false, copiedFromSnapshotId: s.snapshotId, usedBytes: s.usedBytes });
    const d = t.engine.createDisk({ zone: "ap-shanghai-2", sizeGb: 10, snapshotId: copy.snapshotId });
    const ins = t.engine.createInstance({ zone: "ap-shanghai-2", instanceType: "S5.MEDIUM4" });
    const a = t.engine.attachDisk({ diskId: d.diskId, instanceId: ins.instanceId });
    expect(t.engine.read(a.attachmentId, 0, 200_000).equals(pattern(200_000))).toBe(true);
    const img = t.engine.createImage({ name: "plain", snapshotIds: [s.snapshotId] });
    const imgCopy = t.engine.copyImage({ imageId: img.imageId, destinationRegion: "ap-beijing" });
    expect(imgCopy).toMatchObject({ region: "ap-beijing", encrypted: false, copiedFromImageId: img.imageId });
    expect(t.engine.check().problems).toEqual([]);
  });

  test("a snapshot used by an image cannot be deleted until the image is", () => {
    const s = snapshotOf(false);
    const img = t.engine.createImage({ name: "x", snapshotIds: [s.snapshotId] });
    expect(errorOf(() => t.engine.deleteSnapshot(s.snapshotId)).code).toBe(ErrorCodes.InUse);
    t.engine.deleteImage(img.imageId);
    t.engine.deleteSnapshot(s.snapshotId);
    expect(t.engine.findSnapshot(s.snapshotId)).toBeNull();
  });
});
