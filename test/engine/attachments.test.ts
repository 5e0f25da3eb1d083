import * as fs from "fs";
import { ErrorCodes, openEngine } from "../../provider/engine";
import { errorOf, pattern, setupEncrypted, tempEngine, ZONE, ZONE_B, type TestEngine } from "./helpers";

const GiB = 1024 ** 3;
let t: TestEngine;
beforeEach(() => {
  t = tempEngine();
  t.engine.authorizeKms();
});
afterEach(() => t.cleanup());

describe("instances and attachments", () => {
  test("C1: an encrypted disk attaches to an instance in the same zone, and is refused in another zone", () => {
    const d = t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
    const far = t.engine.createInstance({ zone: ZONE_B, instanceType: "S5.MEDIUM4" });
    expect(errorOf(() => t.engine.attachDisk({ diskId: d.diskId, instanceId: far.instanceId }))).toMatchObject({ code: ErrorCodes.ZoneNotMatch, rule: "C1", property: "instanceId" });
    const near = t.engine.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
    const a = t.engine.attachDisk({ diskId: d.diskId, instanceId: near.instanceId });
    expect(t.engine.getDisk(d.diskId)).toMatchObject({ state: "ATTACHED", attachmentId: a.attachmentId, instanceId: near.instanceId });
  });

  test("L7: an encrypted disk cannot be attached to an instance with local storage; a plain disk can", () => {
    const enc = t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
    const plain = t.engine.createDisk({ zone: ZONE, sizeGb: 10 });
    const it5 = t.engine.createInstance({ zone: ZONE, instanceType: "IT5.4XLARGE64" });
    expect(it5.localStorage).toBe(true);
    expect(errorOf(() => t.engine.attachDisk({ diskId: enc.diskId, instanceId: it5.instanceId }))).toMatchObject({ code: ErrorCodes.InstanceLocalStorage, rule: "L7" });
    expect(t.engine.attachDisk({ diskId: plain.diskId, instanceId: it5.instanceId }).encrypted).toBe(false);
    const flagged = t.engine.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4", localStorage: true });
    expect(errorOf(() => t.engine.attachDisk({ diskId: enc.diskId, instanceId: flagged.instanceId })).rule).toBe("L7");
  });

  test("L1: an encrypted disk attaches to every instance type without local storage", () => {
    for (const instanceType of ["S5.MEDIUM4", "SA2.LARGE8", "M5.2XLARGE32", "C5.XLARGE8", "GN7.2XLARGE32"]) {
      const d = t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
      const ins = t.engine.createInstance({ zone: ZONE, instanceType });
      expect(t.engine.attachDisk({ diskId: d.diskId, instanceId: ins.instanceId }).encrypted).toBe(true);
    }
  });

  test("a disk has at most one attachment", () => {
    const { disk } = setupEncrypted(t.engine);
    const other = t.engine.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
    expect(errorOf(() => t.engine.attachDisk({ diskId: disk.diskId, instanceId: other.instanceId })).code).toBe(ErrorCodes.Attached);
    expect(t.engine.listAttachments({ diskId: disk.diskId })).toHaveLength(1);
  });

  test("L6: after growing an attached encrypted disk the instance sees the old capacity until detach and re-attach", () => {
    const { disk, att, instance } = setupEncrypted(t.engine, 10);
    t.engine.resizeDisk(disk.diskId, 20);
    const now = t.engine.getAttachment(att.attachmentId);
    expect(now).toMatchObject({ capacityGb: 10, diskSizeGb: 20, reattachRequired: true });
    expect(errorOf(() => t.engine.write(att.attachmentId, 15 * GiB, Buffer.from("x"))).code).toBe(ErrorCodes.OutOfRange);
    t.engine.detachDisk(att.attachmentId);
    const again = t.engine.attachDisk({ diskId: disk.diskId, instanceId: instance.instanceId });
    expect(again).toMatchObject({ capacityGb: 20, reattachRequired: false });
    t.engine.write(again.attachmentId, 15 * GiB, Buffer.from("x"));
  });

  test("L6: a plain disk grows online (the rule is about encrypted disks)", () => {
    const d = t.engine.createDisk({ zone: ZONE, sizeGb: 10 });
    const ins = t.engine.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
    const a = t.engine.attachDisk({ diskId: d.diskId, instanceId: ins.instanceId });
    t.engine.resizeDisk(d.diskId, 20);
    expect(t.engine.getAttachment(a.attachmentId)).toMatchObject({ capacityGb: 20, reattachRequired: false });
  });

  test("W1: reads return exactly what was written, at any byte offset and length, across unit boundaries", () => {
    const { att } = setupEncrypted(t.engine);
    const a = att.attachmentId;
    const data = Buffer.alloc(300_001);
    for (let i = 0; i < data.length; i++) data[i] = (i * 131 + 7) & 0xff;
    t.engine.write(a, 65_530, data);
    expect(t.engine.read(a, 65_530, data.length).equals(data)).toBe(true);
    t.engine.write(a, 100_000, Buffer.from("overwrite"));
    data.write("overwrite", 100_000 - 65_530);
    expect(t.engine.read(a, 65_530, data.length).equals(data)).toBe(true);
    expect(t.engine.read(a, 0, 65_530).equals(Buffer.alloc(65_530))).toBe(true);
    t.engine.writeZeroes(a, 70_000, 200_000);
    data.fill(0, 70_000 - 65_530, 270_000 - 65_530);
    expect(t.engine.read(a, 65_530, data.length).equals(data)).toBe(true);
    t.engine.flush(a);
    expect(t.engine.check().problems).toEqual([]);
  });

  test("I/O is bounded by the attachment's capacity and refused after detach", () => {
    const { att } = setupEncrypted(t.engine, 1);
    expect(errorOf(() => t.engine.read(att.attachmentId, GiB - 1, 2))).toMatchObject({ code: ErrorCodes.OutOfRange });
    expect(errorOf(() => t.engine.read(att.attachmentId, -1, 2)).code).toBe(ErrorCodes.OutOfRange);
    expect(errorOf(() => t.engine.write(att.attachmentId, 0.5, Buffer.from("x"))).code).toBe(ErrorCodes.OutOfRange);
    t.engine.detachDisk(att.attachmentId);
    expect(errorOf(() => t.engine.read(att.attachmentId, 0, 1)).code).toBe(ErrorCodes.AttachmentNotFound);
  });

  test("W2: every attachment gets its own 0600 TLS pre-shared key file for its NBD export, removed on detach", () => {
    const { att } = setupEncrypted(t.engine);
    expect(att.endpoint).toBe(`nbds://${att.attachmentId}@127.0.0.1:10809/${att.attachmentId}`);
    const text = fs.readFileSync(att.pskFile, "utf8");
    expect(text).toMatch(new RegExp(`^${att.attachmentId}:[0-9a-f]{64}\\n$`));
    expect(fs.statSync(att.pskFile).mode & 0o777).toBe(0o600);
    t.engine.detachDisk(att.attachmentId);
    expect(fs.existsSync(att.pskFile)).toBe(false);
  });

  test("an instance with disks attached cannot be deleted; detach first", () => {
    const { instance, att } = setupEncrypted(t.engine);
    expect(errorOf(() => t.engine.deleteInstance(instance.instanceId)).code).toBe(ErrorCodes.InUse);
    t.engine.detachDisk(att.attachmentId);
    t.engine.deleteInstance(instance.instanceId);
    expect(t.engine.findInstance(instance.instanceId)).toBeNull();
    expect(errorOf(() => t.engine.createInstance({ zone: ZONE, instanceType: "Z9.HUGE" })).property).toBe("instanceType");
  });

  test("patterns written through one attachment survive reopening the engine directory", () => {
    const { att } = setupEncrypted(t.engine);
    t.engine.write(att.attachmentId, 123, pattern(3 << 20));
    const e = t.reopen();
    expect(e.read(att.attachmentId, 123, 3 << 20).equals(pattern(3 << 20))).toBe(true);
  });
});

describe("read cache of decrypted units", () => {
  test("W1: repeated reads are served from the cache and never return stale data after a rewrite, from this or another engine handle", () => {
    const { att } = setupEncrypted(t.engine);
    const a = att.attachmentId;
    t.engine.write(a, 0, pattern(4 << 20, "first"));
    expect(t.engine.read(a, 0, 4 << 20).equals(pattern(4 << 20, "first"))).toBe(true);
    expect(t.engine.read(a, 0, 4 << 20).equals(pattern(4 << 20, "first"))).toBe(true); // cached
    const other = openEngine({ dir: t.dir, kmsRootKeyFile: t.keyFile });
    try {
      other.write(a, 65536 + 10, Buffer.from("changed elsewhere"));
    } finally {
      other.close();
    }
    t.engine.write(a, 3 * 65536, pattern(65536, "second"));
    const expected = pattern(4 << 20, "first");
    expected.write("changed elsewhere", 65536 + 10);
    pattern(65536, "second").copy(expected, 3 * 65536);
    expect(t.engine.read(a, 0, 4 << 20).equals(expected)).toBe(true);
  });

  test("K4: detaching zeroes the plaintext the read cache held", () => {
    const { att } = setupEncrypted(t.engine);
    t.engine.write(att.attachmentId, 0, pattern(1 << 20, "cached"));
    t.engine.read(att.attachmentId, 0, 1 << 20); // a unit enters the cache on its second read
    t.engine.read(att.attachmentId, 0, 1 << 20);
    const blocks = (t.engine as unknown as { blocks: { cache: Map<string, { plain: Buffer }> } }).blocks;
    const held = [...blocks.cache.values()].map((v) => v.plain);
    expect(held.length).toBe(16);
    t.engine.detachDisk(att.attachmentId);
    expect(blocks.cache.size).toBe(0);
    for (const p of held) expect(p.equals(Buffer.alloc(p.length))).toBe(true);
  });

  test("the cache is bounded and can be turned off", () => {
    t.cleanup();
    t = tempEngine({ readCacheMib: 1 });
    t.engine.authorizeKms();
    const { att } = setupEncrypted(t.engine);
    t.engine.write(att.attachmentId, 0, pattern(4 << 20));
    t.engine.read(att.attachmentId, 0, 4 << 20);
    expect((t.engine as unknown as { blocks: { cache: Map<string, unknown> } }).blocks.cache.size).toBe(0); // one pass admits nothing
    t.engine.read(att.attachmentId, 3 << 20, 1 << 20);
    t.engine.read(att.attachmentId, 3 << 20, 1 << 20);
    expect((t.engine as unknown as { blocks: { cache: Map<string, unknown> } }).blocks.cache.size).toBe(16);
    t.cleanup();
    t = tempEngine({ readCacheMib: 0 });
    const s = setupEncrypted(t.engine);
    t.engine.write(s.att.attachmentId, 0, pattern(1 << 20));
    expect(t.engine.read(s.att.attachmentId, 0, 1 << 20).equals(pattern(1 << 20))).toBe(true);
    expect((t.engine as unknown as { blocks: { cache: Map<string, unknown> } }).blocks.cache.size).toBe(0);
  });
});
