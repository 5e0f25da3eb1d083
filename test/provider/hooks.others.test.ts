/** Snapshot, Instance, Attachment, Image, SnapshotCopy, KmsAuthorization and DiskWrite hooks called directly. */
import * as fs from "fs";
import * as path from "path";
import { attachments, disks, hooks, images, instances, kms, reasons, sandbox, Sandbox, secretsOnDisk, snapshotCopies, snapshots, stderrOf, UNKNOWN, ZONE, OTHER_ZONE } from "./helpers";

let sb: Sandbox;
beforeEach(async () => {
  sb = sandbox();
  await kms.create({});
});
afterEach(() => sb.cleanup());

const instance = (extra: Record<string, unknown> = {}) => instances.up({ zone: ZONE, instanceType: "S5.MEDIUM4", ...extra });
const encryptedDisk = (extra: Record<string, unknown> = {}) => disks.up({ zone: ZONE, sizeGb: 10, ...extra });
const plainDisk = (extra: Record<string, unknown> = {}) => disks.up({ zone: ZONE, sizeGb: 10, encrypt: false, ...extra });

describe("Snapshot", () => {
  test("K3: a snapshot of an encrypted disk is encrypted under the same key; read and delete", async () => {
    const d = await encryptedDisk();
    const s = await snapshots.up({ diskId: d.id, name: "nightly" });
    expect(s.outs).toMatchObject({ snapshotId: s.id, diskId: d.id, name: "nightly", encrypted: true, kmsKeyId: d.outs.kmsKeyId, sizeGb: 10, region: "ap-guangzhou" });
    expect((await snapshots.read(s.id, s.outs)).props).toMatchObject({ snapshotId: s.id });
    await snapshots.delete(s.id, s.outs);
    expect(await snapshots.read(s.id, s.outs)).toEqual({});
    await expect(snapshots.delete(s.id, s.outs)).resolves.toBeUndefined();
  });

  test("S1: a snapshot of a plain disk cannot be declared encrypted (check, and create before anything is made)", async () => {
    const d = await plainDisk();
    expect(reasons(await snapshots.check({}, { diskId: d.id, encrypt: true }), "encrypt")[0]).toMatch(/^S1: /);
    await expect(snapshots.create({ diskId: d.id, encrypt: true })).rejects.toThrow(/SnapshotEncrypt.*S1/);
    expect(sb.engine().listSnapshots()).toHaveLength(0);
  });

  test("S2: an existing encrypted snapshot cannot become plain (check; diff warns; update refuses)", async () => {
    const d = await encryptedDisk();
    const olds = { diskId: d.id };
    const s = await snapshots.up(olds);
    expect(reasons(await snapshots.check(olds, { ...olds, encrypt: false }), "encrypt")[0]).toMatch(/^S2: /);
    expect((await stderrOf(() => snapshots.diff(s.id, s.outs, { ...olds, encrypt: false }))).text).toMatch(/will be refused: S2: /);
    await expect(snapshots.update(s.id, s.outs, { ...olds, encrypt: false })).rejects.toThrow(/SnapshotEncrypt.*S2/);
    expect(await snapshots.diff(s.id, s.outs, { ...olds, encrypt: true })).toMatchObject({ changes: true, replaces: [] });
  });

  test("a different disk or name replaces the snapshot", async () => {
    const d = await encryptedDisk();
    const s = await snapshots.up({ diskId: d.id, name: "a" });
    expect(await snapshots.diff(s.id, s.outs, { diskId: "disk-zzzz9999", name: "a" })).toMatchObject({ replaces: ["diskId"] });
    expect(await snapshots.diff(s.id, s.outs, { diskId: d.id, name: "b" })).toMatchObject({ replaces: ["name"] });
    expect(await snapshots.diff(s.id, s.outs, { diskId: d.id, name: "a" })).toMatchObject({ changes: false, replaces: [] });
  });

  test("B2: a snapshot of an encrypted disk is a billed KMS call, one of a plain disk is not", async () => {
    const enc = await encryptedDisk();
    const plain = await plainDisk();
    const calls = () => sb.engine().kmsUsage("ap-guangzhou")[0]?.calls ?? 0;
    const c0 = calls();
    await snapshots.up({ diskId: plain.id });
    expect(calls()).toBe(c0);
    await snapshots.up({ diskId: enc.id });
    expect(calls()).toBe(c0 + 1);
  });
});

describe("Instance", () => {
  test("create, read, delete; every change replaces it", async () => {
    const i = await instance({ name: "web" });
    expect(i.outs).toMatchObject({ instanceId: i.id, zone: ZONE, region: "ap-guangzhou", instanceType: "S5.MEDIUM4", localStorage: false, name: "web" });
    const base = { zone: ZONE, instanceType: "S5.MEDIUM4", name: "web" };
    expect(await instances.diff(i.id, i.outs, base)).toMatchObject({ changes: false });
    expect(await instances.diff(i.id, i.outs, { ...base, instanceType: "S5.LARGE8" })).toMatchObject({ replaces: ["instanceType"] });
    expect(await instances.diff(i.id, i.outs, { ...base, zone: OTHER_ZONE })).toMatchObject({ replaces: ["zone"] });
    expect(await instances.diff(i.id, i.outs, { ...base, localStorage: true })).toMatchObject({ replaces: ["localStorage"] });
    expect((await instances.read(i.id, i.outs)).id).toBe(i.id);
    await instances.delete(i.id, i.outs);
    expect(await instances.read(i.id, i.outs)).toEqual({});
  });

  test("check validates zone and instance type against the modelled cloud", async () => {
    const c = await instances.check({}, { zone: "ap-guangzhou-99", instanceType: "Z9.HUGE" });
    expect(c.failures.map((f) => f.property).sort()).toEqual(["instanceType", "zone"]);
  });

  test("local storage comes from the family unless stated", async () => {
    expect((await instance({ instanceType: "IT5.4XLARGE64" })).outs.localStorage).toBe(true);
  });
});

describe("Attachment", () => {
  test("C1: an encrypted disk attaches to an instance of its zone; the state holds the PSK path, never the key (K4)", async () => {
    const i = await instance();
    const d = await encryptedDisk();
    const a = await attachments.up({ diskId: d.id, instanceId: i.id });
    expect(a.outs).toMatchObject({ attachmentId: a.id, diskId: d.id, instanceId: i.id, encrypted: true, capacityGb: 10, reattachRequired: false, pskIdentity: a.id });
    expect(String(a.outs.endpoint)).toMatch(/^nbds:\/\//);
    const state = JSON.stringify(a.outs);
    const secrets = secretsOnDisk(sb);
    expect(secrets.length).toBeGreaterThan(0);
    for (const s of secrets) expect(state).not.toContain(s);
    await attachments.delete(a.id, a.outs);
    expect(sb.engine().getDisk(d.id).attachmentId).toBeNull();
    await expect(attachments.delete(a.id, a.outs)).resolves.toBeUndefined();
  });

  test("C1: check refuses an instance in another zone", async () => {
    const i = await instance({ zone: OTHER_ZONE });
    const d = await encryptedDisk();
    expect(reasons(await attachments.check({}, { diskId: d.id, instanceId: i.id }), "instanceId")[0]).toMatch(/^C1: /);
  });

  test("L7: check refuses an encrypted disk on an instance with local storage; a plain disk is fine", async () => {
    const i = await instance({ instanceType: "IT5.4XLARGE64" });
    const d = await encryptedDisk();
    expect(reasons(await attachments.check({}, { diskId: d.id, instanceId: i.id }), "instanceId")[0]).toMatch(/^L7: /);
    await expect(attachments.create({ diskId: d.id, instanceId: i.id })).rejects.toThrow(/L7/);
    const p = await plainDisk();
    expect((await attachments.check({}, { diskId: p.id, instanceId: i.id })).failures).toEqual([]);
  });

  test("any change replaces it, deleting first; unknown ids at preview replace too", async () => {
    const i = await instance();
    const d = await encryptedDisk();
    const a = await attachments.up({ diskId: d.id, instanceId: i.id });
    const same = { diskId: d.id, instanceId: i.id };
    expect(await attachments.diff(a.id, a.outs, same)).toEqual({ changes: false, replaces: [], deleteBeforeReplace: false });
    expect(await attachments.diff(a.id, a.outs, { ...same, instanceId: "ins-other001" })).toEqual({ changes: true, replaces: ["instanceId"], deleteBeforeReplace: true });
    expect(await attachments.diff(a.id, a.outs, { ...same, diskId: UNKNOWN })).toMatchObject({ replaces: ["diskId"], deleteBeforeReplace: true });
    expect(await attachments.diff(a.id, a.outs, { ...same, expectedCapacityGb: 20 })).toMatchObject({ replaces: ["expectedCapacityGb"], deleteBeforeReplace: true });
    // Its own disk being attached (by itself) does not fail the check of a replacement.
    const i2 = await instance();
    expect((await attachments.check(same, { diskId: d.id, instanceId: i2.id })).failures).toEqual([]);
  });

  test("check refuses a disk already attached to another instance", async () => {
    const i = await instance();
    const i2 = await instance();
    const d = await encryptedDisk();
    await attachments.up({ diskId: d.id, instanceId: i.id });
    expect(reasons(await attachments.check({}, { diskId: d.id, instanceId: i2.id }), "diskId")[0]).toMatch(/already attached/);
  });

  test("B2: attach and detach of an encrypted disk are billed KMS calls", async () => {
    const i = await instance();
    const d = await encryptedDisk();
    const calls = () => sb.engine().kmsUsage("ap-guangzhou")[0].calls;
    const c0 = calls();
    const a = await attachments.up({ diskId: d.id, instanceId: i.id });
    expect(calls()).toBe(c0 + 1);
    await attachments.delete(a.id, a.outs);
    expect(calls()).toBe(c0 + 2);
  });
});

describe("Image", () => {
  test("S3: sharing an image of encrypted snapshots is refused at check when the snapshots are known", async () => {
    const s = await snapshots.up({ diskId: (await encryptedDisk()).id });
    const c = await images.check({}, { name: "img", snapshotIds: [s.id], sharedWith: ["200000000002"] });
    expect(reasons(c, "sharedWith")[0]).toMatch(/^S3: /);
  });

  test("S3: refused at create when preview could not tell, before any image is made", async () => {
    const s = await snapshots.up({ diskId: (await encryptedDisk()).id });
    expect((await images.check({}, { name: "img", snapshotIds: [UNKNOWN], sharedWith: ["200000000002"] })).failures).toEqual([]);
    await expect(images.create({ name: "img", snapshotIds: [s.id], sharedWith: ["200000000002"] })).rejects.toThrow(/EncryptedImageShare.*S3/);
    expect(sb.engine().listImages()).toHaveLength(0);
  });

  test("a plain image is shared; adding accounts updates it, withdrawing one replaces it", async () => {
    const s = await snapshots.up({ diskId: (await plainDisk()).id });
    const inputs = { name: "img", snapshotIds: [s.id], sharedWith: ["200000000002"] };
    const img = await images.up(inputs);
    expect(img.outs).toMatchObject({ imageId: img.id, encrypted: false, sharedWith: ["200000000002"] });
    const more = { ...inputs, sharedWith: ["200000000002", "200000000003"] };
    expect(await images.diff(img.id, img.outs, more)).toMatchObject({ changes: true, replaces: [] });
    expect((await images.update(img.id, img.outs, more)).outs.sharedWith).toEqual(["200000000002", "200000000003"]);
    expect(await images.diff(img.id, img.outs, { ...inputs, sharedWith: [] })).toMatchObject({ replaces: ["sharedWith"] });
    await images.delete(img.id, img.outs);
    expect(await images.read(img.id, img.outs)).toEqual({});
  });

  test("S4: copying an image of encrypted snapshots to another region is refused at check and at create", async () => {
    const s = await snapshots.up({ diskId: (await encryptedDisk()).id });
    const img = await images.up({ name: "img", snapshotIds: [s.id] });
    const copy = { name: "img-copy", sourceImageId: img.id, destinationRegion: "ap-shanghai" };
    expect(reasons(await images.check({}, copy), "sourceImageId")[0]).toMatch(/^S4: /);
    await expect(images.create(copy)).rejects.toThrow(/S4/);
    expect(sb.engine().listImages()).toHaveLength(1);
  });

  test("a plain image is copied to another region", async () => {
    const s = await snapshots.up({ diskId: (await plainDisk()).id });
    const img = await images.up({ name: "img", snapshotIds: [s.id] });
    const copy = await images.up({ name: "img-copy", sourceImageId: img.id, destinationRegion: "ap-shanghai" });
    expect(copy.outs).toMatchObject({ region: "ap-shanghai", sourceImageId: img.id, encrypted: false });
  });

  test("exactly one of snapshotIds and sourceImageId", async () => {
    expect(reasons(await images.check({}, { name: "x" }), "snapshotIds")[0]).toMatch(/exactly one/);
  });
});

describe("SnapshotCopy", () => {
  test("S4: an encrypted snapshot is refused at check, and at create before anything is made", async () => {
    const s = await snapshots.up({ diskId: (await encryptedDisk()).id });
    const inputs = { sourceSnapshotId: s.id, destinationRegion: "ap-shanghai" };
    expect(reasons(await snapshotCopies.check({}, inputs), "sourceSnapshotId")[0]).toMatch(/^S4: /);
    expect((await snapshotCopies.check({}, { ...inputs, sourceSnapshotId: UNKNOWN })).failures).toEqual([]);
    await expect(snapshotCopies.create(inputs)).rejects.toThrow(/EncryptedCrossRegionCopy.*S4/);
    expect(sb.engine().listSnapshots()).toHaveLength(1);
  });

  test("a plain snapshot is copied; any change replaces the copy; read and delete", async () => {
    const s = await snapshots.up({ diskId: (await plainDisk()).id });
    const inputs = { sourceSnapshotId: s.id, destinationRegion: "ap-shanghai", name: "dr" };
    const c = await snapshotCopies.up(inputs);
    expect(c.outs).toMatchObject({ snapshotId: c.id, sourceSnapshotId: s.id, region: "ap-shanghai", encrypted: false, name: "dr" });
    expect(await snapshotCopies.diff(c.id, c.outs, inputs)).toMatchObject({ changes: false });
    expect(await snapshotCopies.diff(c.id, c.outs, { ...inputs, destinationRegion: "ap-beijing" })).toMatchObject({ replaces: ["destinationRegion"] });
    await snapshotCopies.delete(c.id, c.outs);
    expect(await snapshotCopies.read(c.id, c.outs)).toEqual({});
  });

  test("check refuses an unknown region and a copy into the same region", async () => {
    const s = await snapshots.up({ diskId: (await plainDisk()).id });
    expect(reasons(await snapshotCopies.check({}, { sourceSnapshotId: s.id, destinationRegion: "mars-north" }), "destinationRegion")).toHaveLength(1);
    expect(reasons(await snapshotCopies.check({}, { sourceSnapshotId: s.id, destinationRegion: "ap-guangzhou" }), "destinationRegion")[0]).toMatch(/already in/);
  });
});

describe("KmsAuthorization", () => {
  test("O2: authorizes KMS; read finds it; delete leaves the grant; no inputs accepted", async () => {
    sb.cleanup();
    sb = sandbox({ "encdisk:startingBalanceMicros": "5000", "encdisk:pricePerCallMicros": "7" });
    expect(sb.engine().getAccount().kmsAuthorized).toBe(false);
    const a = await kms.up({});
    expect(a.outs).toMatchObject({ kmsAuthorized: true, balanceMicros: 5000, pricePerCallMicros: 7 });
    expect((await kms.read(a.id, a.outs)).id).toBe(a.id);
    expect(await kms.diff(a.id, a.outs, {})).toMatchObject({ changes: false });
    await kms.delete(a.id, a.outs);
    expect(sb.engine().getAccount().kmsAuthorized).toBe(true);
    expect(reasons(await kms.check({}, { region: "x" }), "region")).toHaveLength(1);
  });

  test("B3: an operation the balance does not cover fails and changes nothing", async () => {
    sb.cleanup();
    sb = sandbox({ "encdisk:startingBalanceMicros": "0" });
    await kms.up({});
    await expect(disks.create({ zone: ZONE, sizeGb: 10 })).rejects.toThrow(/InsufficientBalance/);
    expect(sb.engine().listDisks()).toHaveLength(0);
  });
});

describe("DiskWrite", () => {
  test("W1: writes through an attachment as the instance would; the disk holds it encrypted, readable back", async () => {
    const i = await instance();
    const d = await encryptedDisk();
    const a = await attachments.up({ diskId: d.id, instanceId: i.id });
    const writes = hooks("DiskWrite");
    const w = await writes.up({ attachmentId: a.id, offset: 512, text: "hello disk" });
    expect(w.outs).toMatchObject({ attachmentId: a.id, diskId: d.id, offset: 512, bytes: 10 });
    expect(sb.engine().read(a.id, 512, 10).toString()).toBe("hello disk");
    const news = { attachmentId: a.id, offset: 512, text: "HELLO DISK" };
    expect(await writes.diff(w.id, w.outs, news)).toMatchObject({ changes: true, replaces: [] });
    await writes.update(w.id, w.outs, news);
    expect(sb.engine().read(a.id, 512, 10).toString()).toBe("HELLO DISK");
    expect((await writes.check({}, { attachmentId: a.id })).failures[0].reason).toMatch(/exactly one/);
    expect(reasons(await writes.check({}, { attachmentId: a.id, offset: 10 * 1024 ** 3, base64: "AA==" }), "offset")[0]).toMatch(/past/);
    await writes.delete(w.id, w.outs);
    expect(sb.engine().read(a.id, 512, 10).toString()).toBe("HELLO DISK");
    // At rest the engine's files never hold the plaintext.
    const files = (dir: string): string[] => fs.readdirSync(dir, { withFileTypes: true }).flatMap((f) => (f.isDirectory() ? files(path.join(dir, f.name)) : [path.join(dir, f.name)]));
    for (const f of files(sb.engineDir)) expect(fs.readFileSync(f).includes(Buffer.from("HELLO DISK"))).toBe(false);
  });
});
