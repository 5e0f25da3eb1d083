/**
 * The provider through Pulumi's real dynamic-provider host: spawned with a stack program's
 * directory as its working directory, configured first, then driven over gRPC with the SDK's
 * provider stubs and the `__provider` text the resource classes really register. A whole
 * lifecycle per resource, refusals at Check included.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { DynamicProviderHost, providerStrings, ROOT, RUNTIME_DIST, urn } from "./host";

const PROGRAM_DIR = path.join(ROOT, "examples/basic");
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
const ZONE = "ap-guangzhou-3";
type Props = Record<string, unknown>;

let providers: Record<string, string>;
let host: DynamicProviderHost;
let tmp: string;

beforeAll(async () => {
  providers = await providerStrings();
});

beforeEach(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "encdisk-host-"));
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: tmp };
  host = await DynamicProviderHost.start(PROGRAM_DIR, env);
  await host.configure({ "encdisk:engineDir": path.join(tmp, "engine"), "encdisk:kmsRootKeyFile": path.join(tmp, "kms-root.key") });
});

afterEach(async () => {
  await host.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Drives one resource type the way the Pulumi engine does. */
function resource(type: string, name: string) {
  const u = urn(type, name);
  const p = () => ({ __provider: providers[type] });
  return {
    urn: u,
    check: (olds: Props, news: Props) => host.check(u, Object.keys(olds).length ? { ...olds, ...p() } : {}, { ...news, ...p() }),
    diff: (id: string, olds: Props, news: Props) => host.diff(u, id, olds, { ...news, ...p() }),
    create: (inputs: Props) => host.create(u, { ...inputs, ...p() }),
    read: (id: string, props: Props) => host.read(u, id, props),
    update: (id: string, olds: Props, news: Props) => host.update(u, id, olds, { ...news, ...p() }),
    delete: (id: string, props: Props) => host.delete(u, id, props),
    /** Check then Create, as `pulumi up` does for a new resource. */
    async up(inputs: Props) {
      const c = await host.check(u, {}, { ...inputs, ...p() });
      expect(c.failures).toEqual([]);
      return host.create(u, c.inputs);
    },
  };
}

const kms = () => resource("KmsAuthorization", "kms");

test("the host resolves the runtime by package name from the program directory", () => {
  expect(fs.realpathSync(require.resolve("pulumi-encdisk/dist/provider/resources/runtime", { paths: [PROGRAM_DIR] }))).toBe(fs.realpathSync(RUNTIME_DIST));
  for (const t of ["EncryptedDisk", "Snapshot", "Instance", "Attachment", "Image", "SnapshotCopy", "KmsAuthorization", "DiskWrite"]) expect(providers[t]).toContain('require("pulumi-encdisk/dist/provider/resources/runtime")');
});

test("O2: KmsAuthorization lifecycle (create, read, no-op diff, delete keeps the grant)", async () => {
  const k = kms();
  const c = await k.up({});
  expect(c.props).toMatchObject({ kmsAuthorized: true, __provider: providers.KmsAuthorization });
  expect((await k.read(c.id, c.props)).props).toMatchObject({ kmsAuthorized: true });
  expect(await k.diff(c.id, c.props, {})).toMatchObject({ changes: "none" });
  expect(await k.update(c.id, c.props, {})).toMatchObject({ kmsAuthorized: true });
  await k.delete(c.id, c.props);
  expect((await k.read(c.id, c.props)).id).toBe(c.id);
});

test("L4, L5: EncryptedDisk: create, read, grow in place, L4, L5 and shrink refused at Check, replace on zone, delete, refresh sees it gone", async () => {
  await kms().up({});
  const disk = resource("EncryptedDisk", "data");
  const inputs = { zone: ZONE, sizeGb: 10, name: "data" };

  // Preview of a new disk: unknown values are skipped.
  expect((await disk.check({}, { ...inputs, snapshotId: UNKNOWN })).failures).toEqual([]);

  const created = await disk.up(inputs);
  expect(created.id).toMatch(/^disk-/);
  expect(created.props).toMatchObject({ diskId: created.id, encrypted: true, sizeGb: 10, zone: ZONE, __provider: providers.EncryptedDisk });
  const read = await disk.read(created.id, created.props);
  expect(read).toMatchObject({ id: created.id, props: { diskId: created.id, encrypted: true } });

  // Grow: an update in place.
  const grown = { ...inputs, sizeGb: 20 };
  const cg = await disk.check(inputs, grown);
  expect(cg.failures).toEqual([]);
  expect(await disk.diff(created.id, read.props, cg.inputs)).toEqual({ changes: "some", replaces: [], deleteBeforeReplace: false });
  const updated = await disk.update(created.id, read.props, cg.inputs);
  expect(updated).toMatchObject({ diskId: created.id, sizeGb: 20, __provider: providers.EncryptedDisk });

  // L5 and shrinking: refused at Check, per property.
  const refused = await disk.check(grown, { ...grown, encrypt: false, sizeGb: 5 });
  expect(refused.failures.map((f) => f.property).sort()).toEqual(["encrypt", "sizeGb"]);
  expect(refused.failures.find((f) => f.property === "encrypt")?.reason).toMatch(/^L5: .*sourceDiskId/);
  expect(refused.failures.find((f) => f.property === "sizeGb")?.reason).toMatch(/only grow/);

  // L4 on a plain disk.
  const plain = resource("EncryptedDisk", "plain");
  const plainInputs = { zone: ZONE, sizeGb: 10, encrypt: false };
  await plain.up(plainInputs);
  const l4 = await plain.check(plainInputs, { ...plainInputs, encrypt: true });
  expect(l4.failures).toHaveLength(1);
  expect(l4.failures[0]).toMatchObject({ property: "encrypt" });
  expect(l4.failures[0].reason).toMatch(/^L4: .*sourceDiskId/);

  // A zone change replaces, and the diff says so.
  expect(await disk.diff(created.id, updated, { ...grown, zone: "ap-guangzhou-4" })).toMatchObject({ changes: "some", replaces: ["zone"], deleteBeforeReplace: false });

  await disk.delete(created.id, updated);
  expect((await disk.read(created.id, updated)).id).toBe("");
});

test("L4: EncryptedDisk: a refusal that reaches Update fails the operation with the rule's message", async () => {
  await kms().up({});
  const disk = resource("EncryptedDisk", "data");
  const c = await disk.up({ zone: ZONE, sizeGb: 10, encrypt: false });
  await expect(disk.update(c.id, c.props, { zone: ZONE, sizeGb: 10, encrypt: true })).rejects.toThrow(/L4/);
});

test("L7: Instance and Attachment: attach, L7 refused at Check, replace with delete-before-replace, detach", async () => {
  await kms().up({});
  const web = await resource("Instance", "web").up({ zone: ZONE, instanceType: "S5.MEDIUM4" });
  const local = await resource("Instance", "local").up({ zone: ZONE, instanceType: "IT5.4XLARGE64" });
  expect(local.props).toMatchObject({ localStorage: true });
  const disk = await resource("EncryptedDisk", "data").up({ zone: ZONE, sizeGb: 10 });

  const att = resource("Attachment", "data-on-web");
  const l7 = await att.check({}, { diskId: disk.id, instanceId: local.id });
  expect(l7.failures[0]).toMatchObject({ property: "instanceId" });
  expect(l7.failures[0].reason).toMatch(/^L7: /);

  const inputs = { diskId: disk.id, instanceId: web.id };
  const a = await att.up(inputs);
  expect(a.props).toMatchObject({ attachmentId: a.id, encrypted: true, capacityGb: 10 });
  expect((await att.read(a.id, a.props)).props).toMatchObject({ diskId: disk.id });
  expect(await att.diff(a.id, a.props, inputs)).toMatchObject({ changes: "none" });
  expect(await att.update(a.id, a.props, inputs)).toMatchObject({ attachmentId: a.id });
  const web2 = await resource("Instance", "web2").up({ zone: ZONE, instanceType: "S5.MEDIUM4" });
  expect(await att.diff(a.id, a.props, { ...inputs, instanceId: web2.id })).toEqual({ changes: "some", replaces: ["instanceId"], deleteBeforeReplace: true });
  // DiskWrite through the attachment: written, rewritten on change, delete keeps the data.
  const write = resource("DiskWrite", "seed");
  const w = await write.up({ attachmentId: a.id, text: "seed" });
  expect(w.props).toMatchObject({ diskId: disk.id, bytes: 4 });
  expect((await write.read(w.id, w.props)).id).toBe(w.id);
  expect(await write.diff(w.id, w.props, { attachmentId: a.id, text: "seed2" })).toMatchObject({ changes: "some", replaces: [] });
  expect(await write.update(w.id, w.props, { attachmentId: a.id, text: "seed2" })).toMatchObject({ bytes: 5 });
  await write.delete(w.id, w.props);

  await att.delete(a.id, a.props);
  expect((await att.read(a.id, a.props)).id).toBe("");

  const ins = resource("Instance", "web");
  expect(await ins.diff(web.id, web.props, { zone: ZONE, instanceType: "S5.LARGE8" })).toMatchObject({ replaces: ["instanceType"] });
  await ins.delete(web.id, web.props);
  expect((await ins.read(web.id, web.props)).id).toBe("");
});

test("C2, S2: Snapshot and a disk from it: inheritance shows no change; S2 refused at Check; delete", async () => {
  await kms().up({});
  const src = await resource("EncryptedDisk", "data").up({ zone: ZONE, sizeGb: 10 });
  const snap = resource("Snapshot", "nightly");
  const s = await snap.up({ diskId: src.id, name: "nightly" });
  expect(s.props).toMatchObject({ snapshotId: s.id, encrypted: true });
  const s2 = await snap.check({ diskId: src.id, name: "nightly" }, { diskId: src.id, name: "nightly", encrypt: false });
  expect(s2.failures[0].reason).toMatch(/^S2: /);
  expect((await snap.read(s.id, s.props)).id).toBe(s.id);
  expect(await snap.update(s.id, s.props, { diskId: src.id, name: "nightly" })).toMatchObject({ snapshotId: s.id });

  const restored = resource("EncryptedDisk", "restored");
  const inputs = { zone: ZONE, snapshotId: s.id };
  const d = await restored.up(inputs);
  expect(d.props).toMatchObject({ encrypted: true, snapshotId: s.id });
  const again = await restored.check(inputs, inputs);
  expect(again.failures).toEqual([]);
  expect(await restored.diff(d.id, d.props, again.inputs)).toMatchObject({ changes: "none", replaces: [] });

  await restored.delete(d.id, d.props);
  await snap.delete(s.id, s.props);
  expect((await snap.read(s.id, s.props)).id).toBe("");
});

test("S4: SnapshotCopy: refused at Check for an encrypted snapshot; a plain one is copied, replaced on change, deleted", async () => {
  await kms().up({});
  const enc = await resource("EncryptedDisk", "enc").up({ zone: ZONE, sizeGb: 10 });
  const encSnap = await resource("Snapshot", "enc-snap").up({ diskId: enc.id });
  const copy = resource("SnapshotCopy", "dr");
  const s4 = await copy.check({}, { sourceSnapshotId: encSnap.id, destinationRegion: "ap-shanghai" });
  expect(s4.failures[0]).toMatchObject({ property: "sourceSnapshotId" });
  expect(s4.failures[0].reason).toMatch(/^S4: /);
  await expect(copy.create({ sourceSnapshotId: encSnap.id, destinationRegion: "ap-shanghai" })).rejects.toThrow(/S4/);

  const plain = await resource("EncryptedDisk", "plain").up({ zone: ZONE, sizeGb: 10, encrypt: false });
  const plainSnap = await resource("Snapshot", "plain-snap").up({ diskId: plain.id });
  const inputs = { sourceSnapshotId: plainSnap.id, destinationRegion: "ap-shanghai" };
  const c = await copy.up(inputs);
  expect(c.props).toMatchObject({ region: "ap-shanghai", encrypted: false });
  expect((await copy.read(c.id, c.props)).id).toBe(c.id);
  expect(await copy.update(c.id, c.props, inputs)).toMatchObject({ snapshotId: c.id });
  expect(await copy.diff(c.id, c.props, { ...inputs, destinationRegion: "ap-beijing" })).toMatchObject({ replaces: ["destinationRegion"] });
  await copy.delete(c.id, c.props);
  expect((await copy.read(c.id, c.props)).id).toBe("");
});

test("S3: Image: refused at Check for encrypted snapshots; a plain image is shared, updated in place, deleted", async () => {
  await kms().up({});
  const enc = await resource("EncryptedDisk", "enc").up({ zone: ZONE, sizeGb: 10 });
  const encSnap = await resource("Snapshot", "enc-snap").up({ diskId: enc.id });
  const img = resource("Image", "img");
  const s3 = await img.check({}, { name: "img", snapshotIds: [encSnap.id], sharedWith: ["200000000002"] });
  expect(s3.failures[0]).toMatchObject({ property: "sharedWith" });
  expect(s3.failures[0].reason).toMatch(/^S3: /);

  const plain = await resource("EncryptedDisk", "plain").up({ zone: ZONE, sizeGb: 10, encrypt: false });
  const plainSnap = await resource("Snapshot", "plain-snap").up({ diskId: plain.id });
  const inputs = { name: "img", snapshotIds: [plainSnap.id], sharedWith: ["200000000002"] };
  const i = await img.up(inputs);
  expect(i.props).toMatchObject({ encrypted: false, sharedWith: ["200000000002"] });
  const more = { ...inputs, sharedWith: ["200000000002", "200000000003"] };
  expect(await img.diff(i.id, i.props, more)).toMatchObject({ changes: "some", replaces: [] });
  expect(await img.update(i.id, i.props, more)).toMatchObject({ sharedWith: ["200000000002", "200000000003"] });
  expect((await img.read(i.id, i.props)).id).toBe(i.id);
  await img.delete(i.id, i.props);
  expect((await img.read(i.id, i.props)).id).toBe("");
});
