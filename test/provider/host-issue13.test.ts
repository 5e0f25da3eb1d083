/**
 * Issue 13 through Pulumi's real dynamic-provider host: warnings reach the Pulumi engine's Log
 * service with the resource's URN (so the CLI prints them on that resource's line), and a
 * replacing diff carries a detailed diff naming its cause.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as grpc from "@grpc/grpc-js";
import * as engrpc from "@pulumi/pulumi/proto/engine_grpc_pb";
import * as engproto from "@pulumi/pulumi/proto/engine_pb";
import * as provproto from "@pulumi/pulumi/proto/provider_pb";
import * as emptyproto from "google-protobuf/google/protobuf/empty_pb";
import { openEngine } from "../../provider/engine";
import { DynamicProviderHost, providerStrings, ROOT, urn } from "./host";

const ZONE = "ap-guangzhou-3";
const logs: Array<{ severity: number; message: string; urn: string }> = [];
let server: grpc.Server;
let host: DynamicProviderHost;
let tmp: string;
let providers: Record<string, string>;

beforeAll(async () => {
  providers = await providerStrings();
  server = new grpc.Server();
  const unimplemented = (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb({ code: grpc.status.UNIMPLEMENTED } as grpc.ServiceError, null);
  server.addService(engrpc.EngineService, {
    log: (call: grpc.ServerUnaryCall<engproto.LogRequest, emptyproto.Empty>, cb: grpc.sendUnaryData<emptyproto.Empty>) => {
      logs.push({ severity: call.request.getSeverity(), message: call.request.getMessage(), urn: call.request.getUrn() });
      cb(null, new emptyproto.Empty());
    },
    getRootResource: unimplemented,
    setRootResource: unimplemented,
    startDebugging: unimplemented,
    requirePulumiVersion: unimplemented,
  } as unknown as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "encdisk-host13-"));
  host = await DynamicProviderHost.start(path.join(ROOT, "examples/basic"), { PATH: process.env.PATH, HOME: tmp }, `127.0.0.1:${port}`);
  await host.configure({ "encdisk:engineDir": path.join(tmp, "engine"), "encdisk:kmsRootKeyFile": path.join(tmp, "kms-root.key") });
});

afterAll(async () => {
  await host?.stop();
  server?.forceShutdown();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test("13.5: L6 and 13.2: the data-loss warning reach the engine's log with the disk's URN; a replacing diff's detailed diff names its cause", async () => {
  const p = (type: string) => ({ __provider: providers[type] });
  const kmsUrn = urn("KmsAuthorization", "kms");
  await host.create(kmsUrn, { ...p("KmsAuthorization") });
  const insUrn = urn("Instance", "web");
  const ins = await host.create(insUrn, { zone: ZONE, instanceType: "S5.MEDIUM4", ...p("Instance") });
  const diskUrn = urn("EncryptedDisk", "data");
  const inputs = { zone: ZONE, sizeGb: 10, __owner: diskUrn, ...p("EncryptedDisk") };
  const disk = await host.create(diskUrn, inputs);
  const att = await host.create(urn("Attachment", "att"), { diskId: disk.id, instanceId: ins.id, ...p("Attachment") });

  await host.diff(diskUrn, disk.id, disk.props, { ...inputs, sizeGb: 20 });
  const l6 = logs.find((l) => /^L6: /.test(l.message));
  expect(l6).toEqual({ severity: engproto.LogSeverity.WARNING, message: expect.stringContaining(disk.id), urn: diskUrn });

  const detailed = await host.detailedDiff(diskUrn, disk.id, disk.props, { ...inputs, diskType: "CLOUD_SSD", sizeGb: 20 });
  expect(detailed).toEqual({ diskType: provproto.PropertyDiff.Kind.UPDATE_REPLACE, sizeGb: provproto.PropertyDiff.Kind.UPDATE });
  // Nothing written yet: no data-loss warning for this disk.
  expect(logs.filter((l) => /REPLACED/.test(l.message))).toEqual([]);
  // An in-place change keeps the host's plain answer.
  expect(await host.detailedDiff(diskUrn, disk.id, disk.props, { ...inputs, sizeGb: 20 })).toBeUndefined();

  // With data written, a replacement warns on the disk's line before anything is lost.
  const e = openEngine({ dir: path.join(tmp, "engine"), kmsRootKeyFile: path.join(tmp, "kms-root.key") });
  try {
    e.write(att.id, 0, Buffer.alloc(65536, 9));
  } finally {
    e.close();
  }
  await host.diff(diskUrn, disk.id, disk.props, { ...inputs, diskType: "CLOUD_SSD" });
  expect(logs.filter((l) => /REPLACED/.test(l.message))).toEqual([
    { severity: engproto.LogSeverity.WARNING, message: expect.stringMatching(new RegExp(`^${disk.id} will be REPLACED \\(diskType changed\\).*64 KiB written.*sourceDiskId`)), urn: diskUrn },
  ]);
});
