/**
 * Stack programs under pulumi.runtime.setMocks: wiring and serialization only (mocks call no
 * hook). Checks type tokens, the inputs each resource registers (including the serialized
 * provider), typed outputs, and Resource.get.
 */
import * as pulumi from "@pulumi/pulumi";
import * as encdisk from "../../provider";
import { PROVIDERS } from "../../provider/resources/providers";

interface Registered {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
  id?: string;
}
const registered: Registered[] = [];
const reads: Registered[] = [];

pulumi.runtime.setMocks(
  {
    newResource(args) {
      const inputs = args.inputs as Record<string, unknown>;
      registered.push({ type: args.type, name: args.name, inputs });
      const short = args.type.split(":").pop() as string;
      const id = `${short.toLowerCase()}-${args.name}`;
      if (args.id) reads.push({ type: args.type, name: args.name, inputs, id: args.id });
      const outs: Record<string, unknown> = { ...inputs };
      if (short === "EncryptedDisk") Object.assign(outs, { diskId: args.id || "disk-mock0001", encrypted: inputs.encrypt ?? true, region: "ap-guangzhou", reattachRequired: false });
      if (short === "Instance") Object.assign(outs, { instanceId: "ins-mock0001" });
      if (short === "Snapshot") Object.assign(outs, { snapshotId: "snap-mock0001", encrypted: true });
      if (short === "Attachment") Object.assign(outs, { attachmentId: "att-mock0001", capacityGb: 20 });
      const idKey: Record<string, string> = { EncryptedDisk: "diskId", Instance: "instanceId", Snapshot: "snapshotId", Attachment: "attachmentId" };
      const ownId = idKey[short] ? (outs[idKey[short]] as string) : undefined;
      return { id: args.id || ownId || id, state: outs };
    },
    call() {
      return {};
    },
  },
  "encdisk-mocks",
  "test",
  false,
);

function value<T>(o: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => o.apply((v) => (resolve(v), v)));
}

async function serialized(provider: object): Promise<string> {
  return (await pulumi.runtime.serializeFunction(() => provider, { allowSecrets: true })).text;
}

describe("a stack program under mocks", () => {
  const auth = new encdisk.KmsAuthorization("kms");
  const web = new encdisk.Instance("web", { zone: "ap-guangzhou-3", instanceType: "S5.MEDIUM4" });
  const data = new encdisk.EncryptedDisk("data", { zone: "ap-guangzhou-3", sizeGb: 20, tags: { env: pulumi.output("test") } }, { dependsOn: [auth] });
  const att = new encdisk.Attachment("data-on-web", { diskId: data.diskId, instanceId: web.instanceId, expectedCapacityGb: 20 });
  const snap = new encdisk.Snapshot("nightly", { diskId: data.diskId });
  const restored = new encdisk.EncryptedDisk("restored", { zone: "ap-guangzhou-3", snapshotId: snap.snapshotId });

  test("every resource registers under pulumi-nodejs:dynamic/encdisk:<Name>", async () => {
    const urns = await Promise.all([auth, web, data, att, snap, restored].map((r) => value(r.urn)));
    expect(urns.map((u) => u.split("::")[2])).toEqual([
      "pulumi-nodejs:dynamic/encdisk:KmsAuthorization",
      "pulumi-nodejs:dynamic/encdisk:Instance",
      "pulumi-nodejs:dynamic/encdisk:EncryptedDisk",
      "pulumi-nodejs:dynamic/encdisk:Attachment",
      "pulumi-nodejs:dynamic/encdisk:Snapshot",
      "pulumi-nodejs:dynamic/encdisk:EncryptedDisk",
    ]);
  });

  test("inputs arrive as written (outputs of other resources resolved), outputs are typed", async () => {
    expect(await value(att.capacityGb)).toBe(20);
    const reg = (name: string) => registered.find((r) => r.name === name) as Registered;
    expect(reg("data").inputs).toMatchObject({ zone: "ap-guangzhou-3", sizeGb: 20, tags: { env: "test" } });
    expect(reg("data").inputs).not.toHaveProperty("encrypt");
    expect(reg("data-on-web").inputs).toMatchObject({ diskId: "disk-mock0001", instanceId: "ins-mock0001", expectedCapacityGb: 20 });
    expect(reg("restored").inputs).toMatchObject({ snapshotId: "snap-mock0001" });
    const encrypted: boolean = await value(data.encrypted);
    expect(encrypted).toBe(true);
  });

  test("each resource carries the serialized provider of its own type", async () => {
    await value(restored.urn);
    for (const [name, provider] of Object.entries(PROVIDERS)) {
      const text = await serialized(provider);
      const mine = registered.filter((r) => r.type === `pulumi-nodejs:dynamic/encdisk:${name}`);
      for (const r of mine) expect(r.inputs.__provider).toBe(text);
    }
  });

  test("the id-valued outputs come from the resource id, which Pulumi keeps known while previewing an update", async () => {
    expect(await value(data.diskId)).toBe(await value(data.id));
    expect(await value(web.instanceId)).toBe("ins-mock0001");
    expect(await value(snap.snapshotId)).toBe("snap-mock0001");
  });

  test("Resource.get reads an existing disk by id without managing it", async () => {
    const got = encdisk.EncryptedDisk.get("existing", "disk-abcd1234");
    expect(await value(got.diskId)).toBe("disk-abcd1234");
    expect(reads.map((r) => r.id)).toContain("disk-abcd1234");
  });
});

describe("resources inside a component", () => {
  const urnOf = (r: pulumi.Resource) => new Promise<string>((resolve) => r.urn.apply((u) => resolve(u)));

  test("two resources under one ComponentResource resolve (the owner URN does not make siblings wait for each other) and each owns its own URN", async () => {
    const comp = new pulumi.ComponentResource("encdisk:test:Group", "group", {});
    const a = new encdisk.Instance("web-a", { zone: "ap-guangzhou-3", instanceType: "S5.MEDIUM4" }, { parent: comp });
    const b = new encdisk.Instance("web-b", { zone: "ap-guangzhou-3", instanceType: "S5.MEDIUM4" }, { parent: comp });
    const timeout = new Promise<string[]>((_, reject) => setTimeout(() => reject(new Error("the children's URNs never resolved")), 10_000));
    const urns = await Promise.race([Promise.all([urnOf(a), urnOf(b)]), timeout]);
    expect(urns[0]).toMatch(/encdisk:test:Group\$pulumi-nodejs:dynamic\/encdisk:Instance::web-a$/);
    await new Promise((r) => setTimeout(r, 50));
    const owner = registered.find((r) => r.name === "web-b")?.inputs.__owner;
    expect(owner).toBe(urns[1]);
  });

  test("an adopted disk gets no default name (the disk keeps the name it has)", async () => {
    const d = new encdisk.EncryptedDisk("legacy", { adoptDiskId: "disk-abcd1234" });
    await new Promise<string>((resolve) => d.urn.apply((u) => resolve(u)));
    await new Promise((r) => setTimeout(r, 50));
    const inputs = registered.find((r) => r.name === "legacy")?.inputs ?? {};
    expect(inputs.__defaultName).toBeUndefined();
    expect(inputs.adoptDiskId).toBe("disk-abcd1234");
  });
});
