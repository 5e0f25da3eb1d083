import * as fs from "fs";
import { ErrorCodes } from "../../provider/engine";
import { errorOf, tempEngine, ZONE, ZONE_B, OTHER_REGION_ZONE, type TestEngine } from "./helpers";

let t: TestEngine;
beforeEach(() => (t = tempEngine()));
afterEach(() => t.cleanup());

describe("KMS", () => {
  test("O2: creating an encrypted disk fails until KMS is authorized, and changes nothing", () => {
    const err = errorOf(() => t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true }));
    expect(err.code).toBe(ErrorCodes.KmsNotAuthorized);
    expect(err.rule).toBe("O2");
    expect(err.message).toMatch(/authorize/);
    expect(t.engine.listDisks()).toHaveLength(0);
    expect(t.engine.listKeys()).toHaveLength(0);
    t.engine.authorizeKms();
    expect(t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true }).encrypted).toBe(true);
  });

  test("O2: plain disks need no KMS authorization", () => {
    expect(t.engine.createDisk({ zone: ZONE, sizeGb: 10 }).encrypted).toBe(false);
  });

  test("K2: the first encrypted disk in a region creates exactly one CMK there, automatically", () => {
    t.engine.authorizeKms();
    t.engine.createDisk({ zone: ZONE, sizeGb: 10 }); // plain: no key
    expect(t.engine.listKeys()).toHaveLength(0);
    const d1 = t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
    const d2 = t.engine.createDisk({ zone: ZONE_B, sizeGb: 20, encrypt: true }); // same region, other zone
    const keys = t.engine.listKeys("ap-guangzhou");
    expect(keys).toHaveLength(1);
    expect(d1.kmsKeyId).toBe(keys[0].keyId);
    expect(d2.kmsKeyId).toBe(keys[0].keyId);
    expect(keys[0]).toMatchObject({ region: "ap-guangzhou", owner: "CBS", keyState: "Enabled", keyUsage: "ENCRYPT_DECRYPT" });
  });

  test("O1: each region's encrypted disks use that region's own KMS key", () => {
    t.engine.authorizeKms();
    const a = t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
    const b = t.engine.createDisk({ zone: OTHER_REGION_ZONE, sizeGb: 10, encrypt: true });
    expect(a.kmsKeyId).not.toBe(b.kmsKeyId);
    expect(t.engine.describeKey(b.kmsKeyId as string).region).toBe("ap-shanghai");
    expect(t.engine.listKeys()).toHaveLength(2);
  });

  test("K5: the CMK can be listed and described", () => {
    t.engine.authorizeKms();
    const d = t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
    const k = t.engine.describeKey(d.kmsKeyId as string);
    expect(k.keyId).toBe(d.kmsKeyId);
    expect(k.description).toMatch(/cannot be chosen, deleted/);
    expect(errorOf(() => t.engine.describeKey("nope")).code).toBe(ErrorCodes.KeyNotFound);
  });

  test("K5: the CMK cannot be deleted, disabled, rotated by hand or exported", () => {
    t.engine.authorizeKms();
    const d = t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
    const id = d.kmsKeyId as string;
    for (const op of [() => t.engine.deleteKey(id), () => t.engine.disableKey(id), () => t.engine.rotateKey(id), () => t.engine.exportKeyMaterial(id)]) {
      const err = errorOf(op);
      expect(err.code).toBe(ErrorCodes.ServiceManagedKey);
      expect(err.rule).toBe("K5");
    }
    expect(t.engine.describeKey(id).keyState).toBe("Enabled");
  });

  test("O3: the CMK cannot be specified: a create naming a key is refused, and every disk of the region gets the service's key", () => {
    t.engine.authorizeKms();
    const err = errorOf(() => t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true, kmsKeyId: "my-own-key" } as never));
    expect(err).toMatchObject({ code: ErrorCodes.ServiceManagedKey, rule: "O3", property: "kmsKeyId" });
    expect(t.engine.listDisks()).toHaveLength(0);
    const d = t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
    expect(d.kmsKeyId).toBe(t.engine.listKeys("ap-guangzhou")[0].keyId);
  });

  test("K3/K4: the DK is stored only wrapped by the CMK, the CMK only wrapped by a root key kept outside the engine directory", () => {
    t.engine.authorizeKms();
    t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
    expect(fs.existsSync(t.keyFile)).toBe(true);
    expect(t.keyFile.startsWith(t.dir)).toBe(false);
    expect(fs.statSync(t.keyFile).mode & 0o777).toBe(0o600);
    const r = t.engine.verifyNoKeyMaterial();
    expect(r.filesScanned).toBeGreaterThan(0);
    // root key, CMK, DK and the lineage working key were all searched for (raw, hex and base64)
    expect(r.findings).toEqual([]);
  });

  test("a wrong KMS root key gives KmsRootKey.Mismatch and destroys nothing; the right key works again", () => {
    t.engine.authorizeKms();
    const d = t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
    const ins = t.engine.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
    const a = t.engine.attachDisk({ diskId: d.diskId, instanceId: ins.instanceId });
    t.engine.write(a.attachmentId, 0, Buffer.from("hello"));
    const good = fs.readFileSync(t.keyFile);
    fs.writeFileSync(t.keyFile, "ab".repeat(32));
    const e = t.reopen();
    expect(errorOf(() => e.read(a.attachmentId, 0, 5)).code).toBe(ErrorCodes.KmsRootKeyMismatch);
    expect(errorOf(() => e.createDisk({ zone: ZONE_B, sizeGb: 10, encrypt: true })).code).toBe(ErrorCodes.KmsRootKeyMismatch);
    expect(e.listDisks()).toHaveLength(1);
    fs.writeFileSync(t.keyFile, good);
    const e2 = t.reopen();
    expect(e2.read(a.attachmentId, 0, 5).toString()).toBe("hello");
  });

  test("a missing KMS root key gives KmsRootKey.Missing once CMKs exist, and is never silently replaced", () => {
    t.engine.authorizeKms();
    const d = t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
    const saved = fs.readFileSync(t.keyFile);
    fs.rmSync(t.keyFile);
    const e = t.reopen();
    const ins = e.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
    const err = errorOf(() => e.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true }));
    expect([ErrorCodes.KmsRootKeyMissing]).toContain(err.code);
    expect(fs.existsSync(t.keyFile)).toBe(false);
    fs.writeFileSync(t.keyFile, saved, { mode: 0o600 });
    const e2 = t.reopen();
    const a = e2.attachDisk({ diskId: d.diskId, instanceId: ins.instanceId });
    expect(a.encrypted).toBe(true);
  });
});

describe("key lifetime", () => {
  test("K4: a migration zeroes the working keys it derived once it ends", () => {
    const t2 = tempEngine();
    try {
      const e = t2.engine;
      e.authorizeKms();
      const src = e.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
      const kms = (e as unknown as { kms: { lineageKeys: Map<string, Buffer> } }).kms;
      const seen: Buffer[] = [];
      const orig = kms.lineageKeys.set.bind(kms.lineageKeys);
      kms.lineageKeys.set = (k: string, v: Buffer) => (seen.push(v), orig(k, v));
      e.migrateDisk({ sourceDiskId: src.diskId, encrypt: true });
      expect(seen.length).toBeGreaterThan(0);
      expect(kms.lineageKeys.size).toBe(0);
      for (const k of seen) expect(k.equals(Buffer.alloc(32))).toBe(true);
    } finally {
      t2.cleanup();
    }
  });

  test("K4: detaching zeroes the working key the attachment's I/O used", () => {
    const t2 = tempEngine();
    try {
      const e = t2.engine;
      e.authorizeKms();
      const d = e.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
      const ins = e.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
      const a = e.attachDisk({ diskId: d.diskId, instanceId: ins.instanceId });
      e.write(a.attachmentId, 0, Buffer.from("x"));
      const kms = (e as unknown as { kms: { lineageKeys: Map<string, Buffer> } }).kms;
      const [key] = [...kms.lineageKeys.values()];
      expect(key.equals(Buffer.alloc(32))).toBe(false);
      e.detachDisk(a.attachmentId);
      expect(key.equals(Buffer.alloc(32))).toBe(true);
      expect(kms.lineageKeys.size).toBe(0);
    } finally {
      t2.cleanup();
    }
  });
});
