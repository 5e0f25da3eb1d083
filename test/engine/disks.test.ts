import { CLOUD_DISK_TYPES, ErrorCodes, LOCAL_DISK_TYPES } from "../../provider/engine";
import { errorOf, tempEngine, ZONE, type TestEngine } from "./helpers";

let t: TestEngine;
beforeEach(() => {
  t = tempEngine();
  t.engine.authorizeKms();
});
afterEach(() => t.cleanup());

describe("disks", () => {
  test("L1: every cloud disk type can be encrypted", () => {
    for (const diskType of CLOUD_DISK_TYPES) {
      const d = t.engine.createDisk({ zone: ZONE, sizeGb: 10, diskType, encrypt: true });
      expect(d).toMatchObject({ diskType, encrypted: true });
    }
  });

  test("L2: local disks cannot be encrypted (plain local disks can be created)", () => {
    for (const diskType of LOCAL_DISK_TYPES) {
      const err = errorOf(() => t.engine.createDisk({ zone: ZONE, sizeGb: 10, diskType, encrypt: true }));
      expect(err).toMatchObject({ code: ErrorCodes.LocalDiskEncrypt, rule: "L2", property: "diskType" });
      expect(t.engine.createDisk({ zone: ZONE, sizeGb: 10, diskType }).encrypted).toBe(false);
    }
    expect(t.engine.listDisks().filter((d) => d.encrypted)).toHaveLength(0);
  });

  test("L3: system disks cannot be encrypted, data disks can", () => {
    const err = errorOf(() => t.engine.createDisk({ zone: ZONE, sizeGb: 50, diskUsage: "SYSTEM_DISK", encrypt: true }));
    expect(err).toMatchObject({ code: ErrorCodes.SystemDiskEncrypt, rule: "L3", property: "diskUsage" });
    expect(t.engine.createDisk({ zone: ZONE, sizeGb: 50, diskUsage: "SYSTEM_DISK" }).encrypted).toBe(false);
    expect(t.engine.createDisk({ zone: ZONE, sizeGb: 50, diskUsage: "DATA_DISK", encrypt: true }).encrypted).toBe(true);
  });

  test("L4: an existing plain disk cannot be converted into an encrypted one", () => {
    const d = t.engine.createDisk({ zone: ZONE, sizeGb: 10 });
    const err = errorOf(() => t.engine.setDiskEncryption(d.diskId, true));
    expect(err).toMatchObject({ code: ErrorCodes.DiskEncryptConversion, rule: "L4", property: "encrypt" });
    expect(err.message).toMatch(/sourceDiskId|migrateDisk/);
    expect(t.engine.getDisk(d.diskId).encrypted).toBe(false);
  });

  test("L5: an encrypted disk cannot be converted into a plain one", () => {
    const d = t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
    const err = errorOf(() => t.engine.setDiskEncryption(d.diskId, false));
    expect(err).toMatchObject({ code: ErrorCodes.DiskEncryptConversion, rule: "L5" });
    expect(t.engine.getDisk(d.diskId).encrypted).toBe(true);
  });

  test("C1: a new encrypted disk starts unattached", () => {
    const d = t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
    expect(d.state).toBe("UNATTACHED");
    expect(d.attachmentId).toBeNull();
  });

  test("C3: Encrypt = true creates an encrypted disk; omitted or false creates a plain one", () => {
    expect(t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true }).encrypted).toBe(true);
    expect(t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: false }).encrypted).toBe(false);
    expect(t.engine.createDisk({ zone: ZONE, sizeGb: 10 }).encrypted).toBe(false);
  });

  test("regions come from zones; unknown zones, types, usages and sizes are refused naming the property", () => {
    expect(t.engine.createDisk({ zone: "ap-shanghai-2", sizeGb: 10 }).region).toBe("ap-shanghai");
    expect(errorOf(() => t.engine.createDisk({ zone: "ap-guangzhou-99", sizeGb: 10 }))).toMatchObject({ code: ErrorCodes.InvalidZone, property: "zone" });
    expect(errorOf(() => t.engine.createDisk({ zone: ZONE, sizeGb: 10, diskType: "FLOPPY" as never }))).toMatchObject({ code: ErrorCodes.InvalidDiskType, property: "diskType" });
    expect(errorOf(() => t.engine.createDisk({ zone: ZONE, sizeGb: 10, diskUsage: "BOOT" as never }))).toMatchObject({ code: ErrorCodes.InvalidDiskUsage, property: "diskUsage" });
    for (const sizeGb of [0, -1, 1.5, 32001, Number.NaN, "10" as never]) {
      expect(errorOf(() => t.engine.createDisk({ zone: ZONE, sizeGb }))).toMatchObject({ code: ErrorCodes.DiskSize, property: "sizeGb" });
    }
    expect(t.engine.listDisks()).toHaveLength(1);
  });

  test("resize grows only; growing keeps data; shrinking is refused", () => {
    const d = t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
    expect(t.engine.resizeDisk(d.diskId, 20).sizeGb).toBe(20);
    expect(t.engine.resizeDisk(d.diskId, 20).sizeGb).toBe(20);
    expect(errorOf(() => t.engine.resizeDisk(d.diskId, 15))).toMatchObject({ code: ErrorCodes.DiskShrink, property: "sizeGb" });
    expect(t.engine.getDisk(d.diskId).sizeGb).toBe(20);
  });

  test("a 16 TiB disk costs nothing until written", () => {
    const d = t.engine.createDisk({ zone: ZONE, sizeGb: 16384, encrypt: true });
    expect(d.usedBytes).toBe(0);
    const ins = t.engine.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
    const a = t.engine.attachDisk({ diskId: d.diskId, instanceId: ins.instanceId });
    const end = 16384 * 1024 ** 3;
    t.engine.write(a.attachmentId, end - 5, Buffer.from("tail!"));
    expect(t.engine.read(a.attachmentId, end - 5, 5).toString()).toBe("tail!");
    expect(t.engine.read(a.attachmentId, 1024 ** 4, 4096).equals(Buffer.alloc(4096))).toBe(true);
    expect(t.engine.getDisk(d.diskId).usedBytes).toBe(64 * 1024);
  });

  test("terminating a disk: attached disks are refused, detached ones go, unknown ids say NotFound", () => {
    const d = t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
    const ins = t.engine.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
    t.engine.attachDisk({ diskId: d.diskId, instanceId: ins.instanceId });
    expect(errorOf(() => t.engine.deleteDisk(d.diskId)).code).toBe(ErrorCodes.Attached);
    t.engine.detachDisk(d.diskId);
    t.engine.deleteDisk(d.diskId);
    expect(t.engine.findDisk(d.diskId)).toBeNull();
    expect(errorOf(() => t.engine.deleteDisk(d.diskId)).code).toBe(ErrorCodes.DiskNotFound);
    expect(errorOf(() => t.engine.getDisk("snap-12345678")).code).toBe(ErrorCodes.DiskNotFound);
  });

  test("a clientToken makes a retried create return the first disk instead of a duplicate", () => {
    const a = t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true, clientToken: "tok-1" });
    const b = t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true, clientToken: "tok-1" });
    expect(b.diskId).toBe(a.diskId);
    expect(t.engine.listDisks()).toHaveLength(1);
    expect(t.engine.kmsUsage("ap-guangzhou")[0].calls).toBe(1);
  });

  test("state survives closing and reopening the engine directory", () => {
    const d = t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true, name: "keep", tags: { team: "storage" } });
    const e = t.reopen();
    expect(e.getDisk(d.diskId)).toEqual(d);
    expect(e.getAccount().kmsAuthorized).toBe(true);
  });
});
