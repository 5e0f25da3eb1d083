/**
 * Default names: a resource with a display name that states none is named after its Pulumi
 * resource when created; an existing resource (created before names defaulted, with an empty
 * name) shows no diff, and an omitted name later keeps the one the resource has.
 */
import { propsWithOutputs, DEFAULT_NAME_KEY } from "../../provider/resources/types";
import { disks, instances, kms, sandbox, Sandbox, snapshotCopies, snapshots, ZONE } from "./helpers";

let sb: Sandbox;
beforeEach(async () => {
  sb = sandbox();
  await kms.create({});
});
afterEach(() => sb.cleanup());

const diskInputs = { zone: ZONE, sizeGb: 10 };

test("the classes send the Pulumi resource name only when no name is stated, cut to the engine's 60 characters", () => {
  // Without the owner URN (its own tests are in issue13.test): only the name keys matter here.
  const props = (args: object, keys: string[], name?: string) => {
    const { __owner: _owner, ...rest } = propsWithOutputs(args, keys, name === undefined ? undefined : { type: "EncryptedDisk", name, named: true });
    return rest;
  };
  expect(props({ zone: ZONE }, ["diskId"], "data")).toEqual({ diskId: undefined, zone: ZONE, [DEFAULT_NAME_KEY]: "data" });
  expect(props({ zone: ZONE, name: "mine" }, ["diskId"], "data")).toEqual({ diskId: undefined, zone: ZONE, name: "mine" });
  expect(props({ zone: ZONE }, ["diskId"])).toEqual({ diskId: undefined, zone: ZONE });
  expect(props({}, [], "x".repeat(80))[DEFAULT_NAME_KEY]).toBe("x".repeat(60));
  // A resource without a name input (an Attachment) gets no default name.
  expect(propsWithOutputs({}, [], { type: "Attachment", name: "a" })[DEFAULT_NAME_KEY]).toBeUndefined();
});

test("a new EncryptedDisk that states no name is named after its resource (check makes it the name input)", async () => {
  const c = await disks.check({}, { ...diskInputs, [DEFAULT_NAME_KEY]: "data" });
  expect(c.failures).toEqual([]);
  expect(c.inputs).toEqual({ ...diskInputs, name: "data" });
  const d = await disks.create(c.inputs);
  expect(sb.engine().getDisk(d.id).name).toBe("data");
  expect(d.outs.name).toBe("data");
  // Next run: the program still states no name; the name it has is kept, nothing diffs.
  const again = await disks.check(c.inputs, { ...diskInputs, [DEFAULT_NAME_KEY]: "data" });
  expect(again.inputs).toEqual({ ...diskInputs, name: "data" });
  expect(await disks.diff(d.id, d.outs, again.inputs)).toMatchObject({ changes: false, replaces: [] });
});

test("a stated name wins over the resource name", async () => {
  const c = await disks.check({}, { ...diskInputs, name: "mine", [DEFAULT_NAME_KEY]: "data" });
  expect(c.inputs).toEqual({ ...diskInputs, name: "mine" });
});

test("an existing disk created before names defaulted (empty name) shows no diff and keeps its name", async () => {
  const olds = { ...diskInputs };
  const d = await disks.up(olds); // as before: no default-name key
  expect(sb.engine().getDisk(d.id).name).toBe("");
  const c = await disks.check(olds, { ...diskInputs, [DEFAULT_NAME_KEY]: "data" });
  expect(c.inputs).toEqual(olds);
  expect(await disks.diff(d.id, d.outs, c.inputs)).toMatchObject({ changes: false, replaces: [] });
});

test("Instance, Snapshot and SnapshotCopy default their names too; an existing one without a name is not replaced", async () => {
  const ci = await instances.check({}, { zone: ZONE, instanceType: "S5.MEDIUM4", [DEFAULT_NAME_KEY]: "web" });
  const i = await instances.create(ci.inputs);
  expect(sb.engine().getInstance(i.id).name).toBe("web");

  const plain = await disks.up({ ...diskInputs, encrypt: false });
  const cs = await snapshots.check({}, { diskId: plain.id, [DEFAULT_NAME_KEY]: "nightly" });
  const s = await snapshots.create(cs.inputs);
  expect(s.outs.name).toBe("nightly");

  const cc = await snapshotCopies.check({}, { sourceSnapshotId: s.id, destinationRegion: "ap-shanghai", [DEFAULT_NAME_KEY]: "offsite" });
  expect(cc.failures).toEqual([]);
  const copy = await snapshotCopies.create(cc.inputs);
  expect(copy.outs.name).toBe("offsite");

  // Created the old way: no name. The default name reaches neither the inputs nor the diff.
  const oldInputs = { zone: ZONE, instanceType: "S5.MEDIUM4" };
  const old = await instances.up(oldInputs);
  const again = await instances.check(oldInputs, { ...oldInputs, [DEFAULT_NAME_KEY]: "legacy" });
  expect(again.inputs).toEqual(oldInputs);
  expect(await instances.diff(old.id, old.outs, again.inputs)).toMatchObject({ changes: false, replaces: [] });
  const oldSnap = await snapshots.up({ diskId: plain.id });
  const snapAgain = await snapshots.check({ diskId: plain.id }, { diskId: plain.id, [DEFAULT_NAME_KEY]: "legacy" });
  expect((await snapshots.diff(oldSnap.id, oldSnap.outs, snapAgain.inputs)).replaces).toEqual([]);
});
