/**
 * A client for Pulumi's real dynamic-provider host (node_modules/@pulumi/pulumi/cmd/dynamic-provider)
 * over gRPC with the SDK's own stubs, as the Pulumi engine drives it.
 */
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as grpc from "@grpc/grpc-js";
import * as pulumi from "@pulumi/pulumi";
import * as provrpc from "@pulumi/pulumi/proto/provider_grpc_pb";
import * as provproto from "@pulumi/pulumi/proto/provider_pb";
import * as structproto from "google-protobuf/google/protobuf/struct_pb";
import * as encdisk from "../../provider";

export const ROOT = path.resolve(__dirname, "../..");
export const HOST_SCRIPT = path.join(ROOT, "node_modules/@pulumi/pulumi/cmd/dynamic-provider/index.js");
export const RUNTIME_DIST = path.join(ROOT, "dist/provider/resources/runtime.js");

type Props = Record<string, unknown>;

/** Provider sources (outside the engine) newer than the built runtime the host will load. */
function staleSources(): string[] {
  const built = fs.statSync(RUNTIME_DIST).mtimeMs;
  const walk = (d: string): string[] => fs.readdirSync(d, { withFileTypes: true }).flatMap((f) => (f.isDirectory() ? walk(path.join(d, f.name)) : f.name.endsWith(".ts") ? [path.join(d, f.name)] : []));
  const sources = [...walk(path.join(ROOT, "provider/resources")), ...walk(path.join(ROOT, "provider/schemas")), path.join(ROOT, "provider/config.ts")];
  return sources.filter((f) => fs.statSync(f).mtimeMs > built + 1000).map((f) => path.relative(ROOT, f));
}

/** The `__provider` text each resource class really registers, captured under mocks. */
export async function providerStrings(): Promise<Record<string, string>> {
  const seen: Record<string, string> = {};
  pulumi.runtime.setMocks(
    {
      newResource(args) {
        seen[args.type.split(":").pop() as string] = (args.inputs as Props).__provider as string;
        return { id: `${args.name}-id`, state: args.inputs };
      },
      call: () => ({}),
    },
    "encdisk-host",
    "test",
    false,
  );
  const rs = [
    new encdisk.KmsAuthorization("k"),
    new encdisk.Instance("i", { zone: "ap-guangzhou-3", instanceType: "S5.MEDIUM4" }),
    new encdisk.EncryptedDisk("d", { zone: "ap-guangzhou-3", sizeGb: 1 }),
    new encdisk.Attachment("a", { diskId: "disk-x1", instanceId: "ins-x1" }),
    new encdisk.Snapshot("s", { diskId: "disk-x1" }),
    new encdisk.SnapshotCopy("c", { sourceSnapshotId: "snap-x1", destinationRegion: "ap-shanghai" }),
    new encdisk.Image("m", { name: "m", snapshotIds: ["snap-x1"] }),
    new encdisk.DiskWrite("w", { attachmentId: "att-x1", text: "x" }),
  ];
  await Promise.all(rs.map((r) => new Promise((resolve) => r.urn.apply(resolve))));
  return seen;
}

export interface CheckOut {
  inputs: Props;
  failures: { property: string; reason: string }[];
}
export interface DiffOut {
  changes: "none" | "some" | "unknown";
  replaces: string[];
  deleteBeforeReplace: boolean;
}

const s = (o: Props) => structproto.Struct.fromJavaScript(o as Record<string, structproto.JavaScriptValue>);

/** One running host process and a client to it. */
export class DynamicProviderHost {
  private constructor(
    private readonly child: ChildProcess,
    private readonly client: provrpc.ResourceProviderClient,
    readonly stderr: string[],
  ) {}

  /**
   * Spawn the host with `programDir` as its working directory (where `require` is rooted);
   * `engineAddress` is what the Pulumi engine passes (default: nothing listens there).
   */
  static async start(programDir: string, env: NodeJS.ProcessEnv, engineAddress = "127.0.0.1:1"): Promise<DynamicProviderHost> {
    if (!fs.existsSync(RUNTIME_DIST)) throw new Error(`${RUNTIME_DIST} is missing: run npm run build (npm test does) before these tests`);
    const stale = staleSources();
    if (stale.length > 0) throw new Error(`dist/ is older than ${stale.join(", ")}: run npm run build (npm test does); the host runs the built runtime`);
    const child = spawn(process.execPath, [HOST_SCRIPT, engineAddress], { cwd: programDir, env, stdio: ["ignore", "pipe", "pipe"] });
    const stderr: string[] = [];
    child.stderr?.on("data", (d: Buffer) => stderr.push(d.toString()));
    const port = await new Promise<number>((resolve, reject) => {
      let out = "";
      const timer = setTimeout(() => reject(new Error(`host did not print its port; stderr: ${stderr.join("")}`)), 30000);
      child.stdout?.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /^(\d+)\s*$/m.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      child.on("exit", (code) => reject(new Error(`host exited with ${code}; stderr: ${stderr.join("")}`)));
    });
    const client = new provrpc.ResourceProviderClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    return new DynamicProviderHost(child, client, stderr);
  }

  private call<Req, Res>(method: string, req: Req): Promise<Res> {
    return new Promise((resolve, reject) => {
      (this.client as unknown as Record<string, (r: Req, cb: (e: grpc.ServiceError | null, res: Res) => void) => void>)[method](req, (err, res) => (err ? reject(err) : resolve(res)));
    });
  }

  async configure(config: Record<string, string>): Promise<void> {
    const req = new provproto.ConfigureRequest();
    req.setArgs(s(config));
    await this.call("configure", req);
  }

  async check(urn: string, olds: Props, news: Props): Promise<CheckOut> {
    const req = new provproto.CheckRequest();
    req.setUrn(urn);
    req.setOlds(s(olds));
    req.setNews(s(news));
    const res = await this.call<provproto.CheckRequest, provproto.CheckResponse>("check", req);
    return {
      inputs: (res.getInputs()?.toJavaScript() ?? {}) as Props,
      failures: res.getFailuresList().map((f) => ({ property: f.getProperty(), reason: f.getReason() })),
    };
  }

  /** The detailed diff a Diff response carries (property -> PropertyDiff kind), or undefined when it has none. */
  async detailedDiff(urn: string, id: string, olds: Props, news: Props): Promise<Record<string, number> | undefined> {
    const req = new provproto.DiffRequest();
    req.setUrn(urn);
    req.setId(id);
    req.setOlds(s(olds));
    req.setNews(s(news));
    const res = await this.call<provproto.DiffRequest, provproto.DiffResponse>("diff", req);
    if (!res.getHasdetaileddiff()) return undefined;
    const out: Record<string, number> = {};
    res.getDetaileddiffMap().forEach((v, k) => (out[k] = v.getKind()));
    return out;
  }

  async diff(urn: string, id: string, olds: Props, news: Props): Promise<DiffOut> {
    const req = new provproto.DiffRequest();
    req.setUrn(urn);
    req.setId(id);
    req.setOlds(s(olds));
    req.setNews(s(news));
    const res = await this.call<provproto.DiffRequest, provproto.DiffResponse>("diff", req);
    const c = res.getChanges();
    return {
      changes: c === provproto.DiffResponse.DiffChanges.DIFF_SOME ? "some" : c === provproto.DiffResponse.DiffChanges.DIFF_NONE ? "none" : "unknown",
      replaces: res.getReplacesList(),
      deleteBeforeReplace: res.getDeletebeforereplace(),
    };
  }

  async create(urn: string, props: Props): Promise<{ id: string; props: Props }> {
    const req = new provproto.CreateRequest();
    req.setUrn(urn);
    req.setProperties(s(props));
    const res = await this.call<provproto.CreateRequest, provproto.CreateResponse>("create", req);
    return { id: res.getId(), props: (res.getProperties()?.toJavaScript() ?? {}) as Props };
  }

  async read(urn: string, id: string, props: Props): Promise<{ id: string; props: Props }> {
    const req = new provproto.ReadRequest();
    req.setUrn(urn);
    req.setId(id);
    req.setProperties(s(props));
    const res = await this.call<provproto.ReadRequest, provproto.ReadResponse>("read", req);
    return { id: res.getId(), props: (res.getProperties()?.toJavaScript() ?? {}) as Props };
  }

  async update(urn: string, id: string, olds: Props, news: Props): Promise<Props> {
    const req = new provproto.UpdateRequest();
    req.setUrn(urn);
    req.setId(id);
    req.setOlds(s(olds));
    req.setNews(s(news));
    const res = await this.call<provproto.UpdateRequest, provproto.UpdateResponse>("update", req);
    return (res.getProperties()?.toJavaScript() ?? {}) as Props;
  }

  async delete(urn: string, id: string, props: Props): Promise<void> {
    const req = new provproto.DeleteRequest();
    req.setUrn(urn);
    req.setId(id);
    req.setProperties(s(props));
    await this.call("delete", req);
  }

  async stop(): Promise<void> {
    this.client.close();
    if (this.child.exitCode === null) {
      const exited = new Promise((resolve) => this.child.once("exit", resolve));
      this.child.kill("SIGTERM");
      await exited;
    }
  }
}

/** The URN Pulumi would give a resource of this type in a test stack. */
export function urn(type: string, name: string): string {
  return `urn:pulumi:test::encdisk-host::pulumi-nodejs:dynamic/encdisk:${type}::${name}`;
}
