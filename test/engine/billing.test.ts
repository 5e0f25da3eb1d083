import { ErrorCodes } from "../../provider/engine";
import { errorOf, pattern, tempEngine, ZONE, type TestEngine } from "./helpers";

let t: TestEngine;
afterEach(() => t.cleanup());

function lifecycle(encrypt: boolean) {
  const e = t.engine;
  const d = e.createDisk({ zone: ZONE, sizeGb: 10, encrypt });
  const ins = e.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
  const a = e.attachDisk({ diskId: d.diskId, instanceId: ins.instanceId });
  e.write(a.attachmentId, 0, pattern(1 << 20));
  e.read(a.attachmentId, 0, 1 << 20);
  const s = e.createSnapshot({ diskId: d.diskId });
  e.detachDisk(a.attachmentId);
  e.applySnapshot(s.snapshotId, d.diskId);
  e.resizeDisk(d.diskId, 20);
  return d;
}

describe("billing", () => {
  test("B2: create, attach, detach, snapshot and roll back of an encrypted disk each make one billed KMS call, recorded in the audit log", () => {
    t = tempEngine({ pricePerCallMicros: 10 });
    t.engine.authorizeKms();
    const d = lifecycle(true);
    const audit = t.engine.auditLog({ region: "ap-guangzhou" });
    expect(audit.map((x) => [x.operation, x.kmsApi, x.billable])).toEqual([
      ["CreateDisk", "CreateKey", false],
      ["CreateDisk", "GenerateDataKey", true],
      ["AttachDisk", "Decrypt", true],
      ["CreateSnapshot", "Decrypt", true],
      ["DetachDisk", "Encrypt", true],
      ["ApplySnapshot", "Decrypt", true],
    ]);
    expect(audit.find((x) => x.operation === "AttachDisk")?.resourceId).toBe(d.diskId);
    expect(t.engine.kmsUsage("ap-guangzhou")).toEqual([{ region: "ap-guangzhou", calls: 5, chargedMicros: 50 }]);
    // a second encrypted disk in the region: one Decrypt, no new key
    t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
    expect(t.engine.auditLog({ sinceSeq: audit[audit.length - 1].seq }).map((x) => x.kmsApi)).toEqual(["Decrypt"]);
  });

  test("B2: operations on plain disks make no KMS calls", () => {
    t = tempEngine();
    lifecycle(false);
    expect(t.engine.auditLog()).toEqual([]);
    expect(t.engine.kmsUsage()).toEqual([]);
  });

  test("B1: the CMK, encryption and reading/writing cost nothing extra", () => {
    t = tempEngine({ pricePerCallMicros: 10, startingBalanceMicros: 1000 });
    t.engine.authorizeKms();
    lifecycle(true);
    const billed = t.engine.kmsUsage("ap-guangzhou")[0].chargedMicros;
    expect(t.engine.getAccount().balanceMicros).toBe(1000 - billed);
    expect(t.engine.auditLog().find((x) => x.kmsApi === "CreateKey")?.priceMicros).toBe(0);
    const a = t.engine.listAttachments()[0] ?? t.engine.attachDisk({ diskId: t.engine.listDisks()[0].diskId, instanceId: t.engine.listInstances()[0].instanceId });
    const before = t.engine.getAccount().balanceMicros;
    for (let i = 0; i < 20; i++) t.engine.write(a.attachmentId, i * 65536, pattern(65536));
    t.engine.read(a.attachmentId, 0, 20 * 65536);
    expect(t.engine.getAccount().balanceMicros).toBe(before);
  });

  test("B3: an operation the balance cannot cover fails and changes nothing", () => {
    t = tempEngine({ pricePerCallMicros: 10, startingBalanceMicros: 25 });
    t.engine.authorizeKms();
    const d = t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true }); // 15 left
    const ins = t.engine.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
    const a = t.engine.attachDisk({ diskId: d.diskId, instanceId: ins.instanceId }); // 5 left
    const auditBefore = t.engine.auditLog().length;
    expect(errorOf(() => t.engine.createSnapshot({ diskId: d.diskId }))).toMatchObject({ code: ErrorCodes.InsufficientBalance, rule: "B3" });
    expect(errorOf(() => t.engine.detachDisk(a.attachmentId)).code).toBe(ErrorCodes.InsufficientBalance);
    expect(errorOf(() => t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true })).code).toBe(ErrorCodes.InsufficientBalance);
    expect(t.engine.listSnapshots()).toHaveLength(0);
    expect(t.engine.listDisks()).toHaveLength(1);
    expect(t.engine.getAttachment(a.attachmentId).diskId).toBe(d.diskId);
    expect(t.engine.auditLog()).toHaveLength(auditBefore);
    expect(t.engine.getAccount().balanceMicros).toBe(5);
    // plain operations still work with no balance
    expect(t.engine.createDisk({ zone: ZONE, sizeGb: 10 }).encrypted).toBe(false);
    t.engine.topUp(100);
    expect(t.engine.createSnapshot({ diskId: d.diskId }).encrypted).toBe(true);
    expect(t.engine.getAccount().balanceMicros).toBe(95);
    expect(t.engine.check().problems).toEqual([]);
  });

  test("B3: the first encrypted disk of a region that the balance cannot cover leaves no CMK behind", () => {
    t = tempEngine({ pricePerCallMicros: 10, startingBalanceMicros: 0 });
    t.engine.authorizeKms();
    expect(errorOf(() => t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true })).rule).toBe("B3");
    expect(t.engine.listKeys()).toEqual([]);
    expect(t.engine.auditLog()).toEqual([]);
  });
});
