/**
 * The example programs under pulumi.runtime.setMocks: what they declare and how it is wired
 * (real runs with the Pulumi CLI are in docs/provider.md). Mocks call no hook.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";

// getKmsUsage in the basic example opens the engine the environment names: a temp one here.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "encdisk-examples-"));
const saved = { dir: process.env.ENCDISK_DIR, key: process.env.ENCDISK_KMS_ROOT_KEY_FILE };
process.env.ENCDISK_DIR = path.join(tmp, "engine");
process.env.ENCDISK_KMS_ROOT_KEY_FILE = path.join(tmp, "kms-root.key");
afterAll(() => {
  // Jest reuses worker processes: leave the environment as it was found.
  for (const [k, v] of [["ENCDISK_DIR", saved.dir], ["ENCDISK_KMS_ROOT_KEY_FILE", saved.key]] as const) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

interface Registered {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}
const ID_KEYS: Record<string, string> = { EncryptedDisk: "disk", Instance: "ins", Snapshot: "snap", Attachment: "att", KmsAuthorization: "acct", DiskWrite: "write" };

function mock(project: string, config: Record<string, string> = {}): Registered[] {
  const registered: Registered[] = [];
  pulumi.runtime.setMocks(
    {
      newResource(args) {
        const short = args.type.split(":").pop() as string;
        registered.push({ type: short, name: args.name, inputs: args.inputs as Record<string, unknown> });
        const id = `${ID_KEYS[short] ?? "x"}-${args.name.replace(/[^a-z0-9]/g, "")}`;
        const extra: Record<string, unknown> = { encrypted: args.inputs.encrypt ?? true, sha256: "00", calls: 0 };
        return { id, state: { ...args.inputs, ...extra } };
      },
      call: () => ({}),
    },
    project,
    "test",
    false,
  );
  for (const [k, v] of Object.entries(config)) pulumi.runtime.setConfig(`${project}:${k}`, v);
  return registered;
}

function value<T>(o: pulumi.Output<T> | undefined): Promise<T | undefined> {
  return o === undefined ? Promise.resolve(undefined) : new Promise((resolve) => o.apply((v) => (resolve(v), v)));
}

test("examples/basic: KMS authorization, an instance, an encrypted disk attached to it, a snapshot and a disk from it", async () => {
  const registered = mock("encdisk-basic");
  let program: Record<string, pulumi.Output<unknown>> = {};
  jest.isolateModules(() => {
    program = require(path.resolve(__dirname, "../../examples/basic/index.js"));
  });
  expect(await value(program.restoredDiskId)).toBe("disk-restored");
  expect(registered.map((r) => `${r.type}:${r.name}`)).toEqual([
    "KmsAuthorization:kms",
    "Instance:web",
    "EncryptedDisk:data",
    "Attachment:data-on-web",
    "Snapshot:data-snapshot",
    "EncryptedDisk:restored",
  ]);
  const by = (name: string) => (registered.find((r) => r.name === name) as Registered).inputs;
  expect(by("data")).toMatchObject({ zone: "ap-guangzhou-3", sizeGb: 20, encrypt: true });
  expect(by("data-on-web")).toMatchObject({ diskId: "disk-data", instanceId: "ins-web" });
  expect(by("restored")).toMatchObject({ snapshotId: "snap-datasnapshot" });
  expect(by("restored")).not.toHaveProperty("encrypt"); // C2: inherited
  expect(Object.keys(program)).toEqual(expect.arrayContaining(["kmsCallsBilled", "kmsChargedMicros", "dataDiskId", "restoredEncrypted"]));
});

test("M1: examples/migrate: a plain disk with data, then an encrypted disk made from it; retiring the plain disk keeps the encrypted one", async () => {
  let registered = mock("encdisk-migrate");
  let program: Record<string, pulumi.Output<unknown>> = {};
  jest.isolateModules(() => {
    program = require(path.resolve(__dirname, "../../examples/migrate/index.js"));
  });
  expect(await value(program.secureDiskId)).toBe("disk-secure");
  const by = (name: string) => (registered.find((r) => r.name === name) as Registered).inputs;
  expect(by("legacy")).toMatchObject({ encrypt: false, sizeGb: 10 });
  // D13: the seeded data is registered as a Pulumi secret (encrypted in the state)
  expect(by("legacy-data")).toMatchObject({ attachmentId: "att-legacyonapp", text: { [pulumi.runtime.specialSigKey]: "1b47061264138c4ac30d75fd1eb44270", value: expect.stringContaining("orders.db") } });
  expect(by("secure")).toMatchObject({ encrypt: true, sourceDiskId: "disk-legacy" });

  registered = mock("encdisk-migrate", { retirePlain: "true" });
  jest.isolateModules(() => {
    program = require(path.resolve(__dirname, "../../examples/migrate/index.js"));
  });
  expect(await value(program.secureAttachmentId)).toBe("att-secureonapp");
  expect(registered.map((r) => r.name).sort()).toEqual(["app", "kms", "secure", "secure-on-app"]);
  expect(by("secure")).toEqual(expect.not.objectContaining({ sourceDiskId: expect.anything() }));
});
