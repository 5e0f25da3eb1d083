import { spawnSync } from "child_process";
import * as path from "path";
import { ErrorCodes } from "../../provider/engine";
import { anyFileContains, errorOf, pattern, tempEngine, ZONE, type TestEngine } from "./helpers";

let t: TestEngine;
beforeEach(() => {
  t = tempEngine();
  t.engine.authorizeKms();
});
afterEach(() => t.cleanup());

describe("migration", () => {
  test("M1: a plain disk's data is copied onto a new encrypted disk, holes kept as holes, with progress", () => {
    const e = t.engine;
    const plain = e.createDisk({ zone: ZONE, sizeGb: 10, name: "legacy" });
    const ins = e.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
    const a = e.attachDisk({ diskId: plain.diskId, instanceId: ins.instanceId });
    const p = pattern(3 << 20, "MIGRATE-ME");
    e.write(a.attachmentId, 0, p);
    e.write(a.attachmentId, 5 * 1024 ** 3, p);
    const progress: number[] = [];
    const enc = e.migrateDisk({ sourceDiskId: plain.diskId, encrypt: true }, (x) => progress.push(x.copiedBytes));
    expect(enc).toMatchObject({ encrypted: true, sourceDiskId: plain.diskId, sizeGb: 10, name: "legacy-encrypted", usedBytes: 6 << 20 });
    expect(progress[progress.length - 1]).toBe(6 << 20);
    expect(progress.length).toBeGreaterThan(1);
    const ins2 = e.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
    const b = e.attachDisk({ diskId: enc.diskId, instanceId: ins2.instanceId });
    expect(e.read(b.attachmentId, 0, 3 << 20).equals(p)).toBe(true);
    expect(e.read(b.attachmentId, 5 * 1024 ** 3, 3 << 20).equals(p)).toBe(true);
    expect(e.read(b.attachmentId, 4 << 20, 1 << 20).equals(Buffer.alloc(1 << 20))).toBe(true);
    // the source stays readable in plaintext on storage (it is plain), the new disk's blocks do not hold it
    e.detachDisk(a.attachmentId);
    e.deleteDisk(plain.diskId);
    expect(anyFileContains(t.dir, Buffer.from("MIGRATE-ME-0123456789-"))).toBeNull();
    expect(e.check().problems).toEqual([]);
  });

  test("M1: and back: an encrypted disk's data onto a new plain disk", () => {
    const e = t.engine;
    const enc = e.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
    const ins = e.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
    const a = e.attachDisk({ diskId: enc.diskId, instanceId: ins.instanceId });
    e.write(a.attachmentId, 777, Buffer.from("round trip"));
    const plain = e.migrateDisk({ sourceDiskId: enc.diskId, encrypt: false });
    expect(plain.encrypted).toBe(false);
    const b = e.attachDisk({ diskId: plain.diskId, instanceId: ins.instanceId });
    expect(e.read(b.attachmentId, 777, 10).toString()).toBe("round trip");
  });

  test("M1: copying needs a detached target at least as large as the source", () => {
    const e = t.engine;
    const src = e.createDisk({ zone: ZONE, sizeGb: 20 });
    const small = e.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
    expect(errorOf(() => e.copyDiskData(src.diskId, small.diskId)).code).toBe(ErrorCodes.DiskSizeNotMatch);
    const ins = e.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
    const big = e.createDisk({ zone: ZONE, sizeGb: 20, encrypt: true });
    e.attachDisk({ diskId: big.diskId, instanceId: ins.instanceId });
    expect(errorOf(() => e.copyDiskData(src.diskId, big.diskId)).code).toBe(ErrorCodes.Attached);
    expect(errorOf(() => e.migrateDisk({ sourceDiskId: "disk-nothere", encrypt: true })).code).toBe(ErrorCodes.DiskNotFound);
  });

  test("M1: a migration retried with the same clientToken finishes the same target disk", () => {
    const e = t.engine;
    const src = e.createDisk({ zone: ZONE, sizeGb: 10 });
    const first = e.migrateDisk({ sourceDiskId: src.diskId, encrypt: true, clientToken: "m-1" });
    const again = e.migrateDisk({ sourceDiskId: src.diskId, encrypt: true, clientToken: "m-1" });
    expect(again.diskId).toBe(first.diskId);
    expect(e.listDisks()).toHaveLength(2);
  });
});

describe("migration state", () => {
  test("M1: a migration whose copy has not completed shows DUMPING and cannot be attached; finishing it makes the disk usable", () => {
    const t2 = tempEngine();
    try {
      const e = t2.engine;
      e.authorizeKms();
      const src = e.createDisk({ zone: ZONE, sizeGb: 10 });
      const ins = e.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
      const a = e.attachDisk({ diskId: src.diskId, instanceId: ins.instanceId });
      e.write(a.attachmentId, 0, pattern(1 << 20));
      // Interrupt the copy from the progress callback, as a killed process would.
      expect(() =>
        e.migrateDisk({ sourceDiskId: src.diskId, encrypt: false, clientToken: "mig" }, () => {
          throw new Error("interrupted");
        }),
      ).toThrow("interrupted");
      // A failed first attempt leaves nothing behind.
      expect(e.listDisks()).toHaveLength(1);
      expect(errorOf(() => e.migrateDisk({ sourceDiskId: src.diskId, encrypt: false, sizeGb: 5 })).code).toBe(ErrorCodes.DiskSizeNotMatch);
      expect(e.listDisks()).toHaveLength(1);
      // A process killed mid-copy leaves the target DUMPING.
      e.write(a.attachmentId, 8 << 20, pattern(8 << 20));
      const engineJs = path.resolve(__dirname, "../../dist/provider/engine/index.js");
      const child = spawnSync(process.execPath, [
        "-e",
        `const e = require(${JSON.stringify(engineJs)}).openEngine({ dir: ${JSON.stringify(t2.dir)}, kmsRootKeyFile: ${JSON.stringify(t2.keyFile)} });
         e.migrateDisk({ sourceDiskId: ${JSON.stringify(src.diskId)}, encrypt: true, clientToken: "mig-2" }, () => process.kill(process.pid, "SIGKILL"));`,
      ]);
      expect(child.signal).toBe("SIGKILL");
      const e2 = t2.reopen();
      const target = e2.listDisks().find((d) => d.diskId !== src.diskId);
      expect(target?.state).toBe("DUMPING");
      expect(errorOf(() => e2.attachDisk({ diskId: target?.diskId as string, instanceId: ins.instanceId })).code).toBe(ErrorCodes.MigrationIncomplete);
      const done = e2.migrateDisk({ sourceDiskId: src.diskId, encrypt: true, clientToken: "mig-2" });
      expect(done).toMatchObject({ diskId: target?.diskId, state: "UNATTACHED", usedBytes: 9 << 20 });
      expect(e2.check().problems).toEqual([]);
    } finally {
      t2.cleanup();
    }
  });
});
