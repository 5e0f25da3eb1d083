/**
 * Provider throughput through Pulumi's real dynamic-provider host: the host program shipped in
 * @pulumi/pulumi (cmd/dynamic-provider, the process `pulumi up` starts for dynamic resources)
 * is spawned, and this process plays the Pulumi engine's part over gRPC: Configure once, then
 * for every resource Check and Create, exactly as `pulumi up` does for a new resource. The
 * `__provider` property is the text the resource classes register (captured by constructing
 * them under Pulumi's mocks), so the host deserializes and runs the same hooks a stack would.
 *
 * Work: an Instance (untimed), then `resources` EncryptedDisks each with an Attachment (disk,
 * then its attachment), `parallel` pairs in flight (Pulumi's default --parallel is unbounded
 * for independent resources; the host serves one call at a time anyway as the engine API is
 * synchronous). resources_per_s = (disks + attachments) / wall time.
 */
import { spawn, type ChildProcess } from "child_process";
import * as path from "path";
import { freshEngine, log, nowMs, ZONE, INSTANCE_TYPE } from "./util";

export interface ProviderOptions {
  resources: number;
  parallel?: number;
}

export interface ProviderResult {
  resourcesPerS: number | null;
  resources?: number;
  ms?: number;
  createMsP50?: number;
  note?: string;
}

/* eslint-disable @typescript-eslint/no-require-imports, @typescript-eslint/no-explicit-any */
type Any = any;

const REPO = path.resolve(__dirname, "..", "..");

function pulumiModule(rel: string): Any {
  return require(require.resolve(`@pulumi/pulumi/${rel}`, { paths: [REPO] }));
}

function grpcModule(): Any {
  const pulumiDir = path.dirname(require.resolve("@pulumi/pulumi/package.json", { paths: [REPO] }));
  return require(require.resolve("@grpc/grpc-js", { paths: [pulumiDir] }));
}

async function startHost(): Promise<{ child: ChildProcess; port: number }> {
  const host = require.resolve("@pulumi/pulumi/cmd/dynamic-provider/index.js", { paths: [REPO] });
  // argv[2] is the engine's address; the host only needs it for logging and never dials it here.
  const child = spawn(process.execPath, [host, "127.0.0.1:1"], { cwd: REPO, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, PULUMI_PROJECT: "encdisk-bench", PULUMI_STACK: "bench" } });
  let err = "";
  child.stderr?.on("data", (d: Buffer) => (err += d.toString("utf8")));
  const port = await new Promise<number>((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`dynamic-provider host did not print its port within 30 s: ${err}`)), 30_000);
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString("utf8");
      const m = /^(\d+)\s*$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`dynamic-provider host exited with ${code}: ${err}`));
    });
  });
  return { child, port };
}

/**
 * The `__provider` text each resource class really registers: the classes (dist/provider) are
 * constructed under Pulumi's mocks and the property is read off the registration, as
 * test/provider/host.ts does.
 */
async function capturedProviderStrings(): Promise<Record<string, string>> {
  const pulumi = require(require.resolve("@pulumi/pulumi", { paths: [REPO] }));
  const encdisk = require(path.join(REPO, "dist", "provider", "index.js"));
  const seen: Record<string, string> = {};
  pulumi.runtime.setMocks(
    {
      newResource(args: Any) {
        seen[String(args.type).split(":").pop() as string] = args.inputs.__provider;
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call: () => ({}),
    },
    "encdisk-bench",
    "bench",
    false,
  );
  const rs = [
    new encdisk.Instance("i", { zone: ZONE, instanceType: INSTANCE_TYPE }),
    new encdisk.EncryptedDisk("d", { zone: ZONE, sizeGb: 1 }),
    new encdisk.Attachment("a", { diskId: "disk-x1", instanceId: "ins-x1" }),
  ];
  await Promise.all(rs.map((r: Any) => new Promise((resolve) => r.urn.apply(resolve))));
  for (const t of ["Instance", "EncryptedDisk", "Attachment"]) if (typeof seen[t] !== "string") throw new Error(`no __provider captured for ${t}`);
  return seen;
}

export async function benchProvider(base: string, opts: ProviderOptions): Promise<ProviderResult> {
  let providerText: Record<string, string>;
  try {
    require.resolve("pulumi-encdisk/dist/provider/resources/runtime", { paths: [REPO] });
    providerText = await capturedProviderStrings();
  } catch (e) {
    return { resourcesPerS: null, note: `provider code not built or not present (dist/provider): ${(e as Error).message.split("\n")[0]}` };
  }
  // Engine directory with KMS authorized up front (a stack would declare a KmsAuthorization).
  const { engine, dir, rootKeyFile } = freshEngine(base, "provider");
  engine.close();

  const grpc = grpcModule();
  const provrpc = pulumiModule("proto/provider_grpc_pb");
  const provproto = pulumiModule("proto/provider_pb");
  const structproto = require(require.resolve("google-protobuf/google/protobuf/struct_pb", { paths: [path.dirname(require.resolve("@pulumi/pulumi/package.json", { paths: [REPO] }))] }));
  const { child, port } = await startHost();
  const client = new provrpc.ResourceProviderClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const call = <T>(method: string, req: unknown): Promise<T> =>
    new Promise((resolve, reject) => client[method](req, (err: Error | null, resp: T) => (err ? reject(err) : resolve(resp))));
  try {
    const conf = new provproto.ConfigureRequest();
    conf.setArgs(structproto.Struct.fromJavaScript({ "encdisk:engineDir": dir, "encdisk:kmsRootKeyFile": rootKeyFile }));
    conf.setAcceptsecrets(true);
    conf.setAcceptresources(true);
    await call("configure", conf);

    const up = async (type: string, name: string, inputs: Record<string, unknown>): Promise<{ id: string; props: Record<string, unknown> }> => {
      const token = `pulumi-nodejs:dynamic/encdisk:${type}`;
      const urn = `urn:pulumi:bench::encdisk-bench::${token}::${name}`;
      const news = { ...inputs, __provider: providerText[type] };
      const ck = new provproto.CheckRequest();
      ck.setUrn(urn);
      ck.setName(name);
      ck.setType(token);
      ck.setOlds(structproto.Struct.fromJavaScript({}));
      ck.setNews(structproto.Struct.fromJavaScript(news));
      const checked: Any = await call("check", ck);
      const failures = checked.getFailuresList();
      if (failures.length) throw new Error(`${type} ${name}: check failed: ${failures.map((f: Any) => `${f.getProperty()}: ${f.getReason()}`).join("; ")}`);
      const cr = new provproto.CreateRequest();
      cr.setUrn(urn);
      cr.setName(name);
      cr.setType(token);
      cr.setProperties(checked.getInputs());
      cr.setTimeout(300);
      const created: Any = await call("create", cr);
      return { id: created.getId(), props: created.getProperties().toJavaScript() };
    };

    const ins = await up("Instance", "bench-instance", { zone: ZONE, instanceType: INSTANCE_TYPE });
    const parallel = opts.parallel ?? 10;
    const lat: number[] = [];
    let next = 0;
    const t0 = nowMs();
    const worker = async (): Promise<void> => {
      for (;;) {
        const i = next++;
        if (i >= opts.resources) return;
        let t = nowMs();
        const disk = await up("EncryptedDisk", `disk-${i}`, { zone: ZONE, sizeGb: 10, encrypt: true });
        lat.push(nowMs() - t);
        t = nowMs();
        await up("Attachment", `att-${i}`, { diskId: disk.id, instanceId: ins.id });
        lat.push(nowMs() - t);
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
    const ms = nowMs() - t0;
    const n = opts.resources * 2;
    const { openEngine } = require("../provider/engine") as typeof import("../provider/engine");
    const check = openEngine({ dir, kmsRootKeyFile: rootKeyFile });
    try {
      const disks = check.listDisks().filter((d) => d.encrypted && d.attachmentId).length;
      if (disks !== opts.resources) throw new Error(`expected ${opts.resources} attached encrypted disks in the engine after the run, found ${disks}`);
    } finally {
      check.close();
    }
    lat.sort((a, b) => a - b);
    const res: ProviderResult = { resourcesPerS: n / (ms / 1000), resources: n, ms, createMsP50: lat[Math.floor(lat.length / 2)] };
    log(`provider: ${opts.resources} EncryptedDisk + ${opts.resources} Attachment through the dynamic-provider host in ${(ms / 1000).toFixed(2)} s: ${res.resourcesPerS?.toFixed(1)} resources/s (check+create p50 ${res.createMsP50?.toFixed(1)} ms, ${parallel} in flight)`);
    return res;
  } finally {
    client.close();
    child.kill();
  }
}
