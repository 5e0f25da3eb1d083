/**
 * D13 (issue 12): DiskWrite's data never reaches the Pulumi state in plaintext. The resource
 * class registers `text`/`base64` as Pulumi secrets (the state holds them encrypted) and the
 * provider, driven through Pulumi's real dynamic-provider host, keeps only a digest in outputs.
 */
import * as crypto from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as encdisk from "../../provider";
import { DynamicProviderHost, providerStrings, ROOT, urn } from "./host";

type Props = Record<string, unknown>;
const ZONE = "ap-guangzhou-3";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";

describe("D13: the resource class", () => {
  test("D13: DiskWrite registers text and base64 as Pulumi secrets (encrypted in the state), other inputs as they are", async () => {
    const seen: Record<string, Props> = {};
    pulumi.runtime.setMocks({ newResource: (a) => ((seen[a.name] = a.inputs as Props), { id: `write-${a.name}`, state: a.inputs }), call: () => ({}) }, "d13", "test", false);
    const w = new encdisk.DiskWrite("w", { attachmentId: "att-x1", text: "top secret rows", offset: 512 });
    const b = new encdisk.DiskWrite("b", { attachmentId: "att-x1", base64: Buffer.from("more").toString("base64") });
    await Promise.all([w, b].map((r) => new Promise((res) => r.urn.apply(res))));
    const secret = (value: string) => ({ [pulumi.runtime.specialSigKey]: SECRET_SIG, value });
    expect(seen.w).toMatchObject({ attachmentId: "att-x1", offset: 512, text: secret("top secret rows") });
    expect(seen.b).toMatchObject({ attachmentId: "att-x1", base64: secret("bW9yZQ==") });
    expect(seen.b.text).toBeUndefined();
  });
});

describe("D13: through Pulumi's real dynamic-provider host", () => {
  let host: DynamicProviderHost;
  let tmp: string;
  let providers: Record<string, string>;
  beforeAll(async () => {
    providers = await providerStrings();
  });
  beforeEach(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "encdisk-d13-"));
    host = await DynamicProviderHost.start(path.join(ROOT, "examples/basic"), { PATH: process.env.PATH, HOME: tmp });
    await host.configure({ "encdisk:engineDir": path.join(tmp, "engine"), "encdisk:kmsRootKeyFile": path.join(tmp, "kms-root.key") });
  });
  afterEach(async () => {
    await host.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  async function up(type: string, name: string, inputs: Props): Promise<{ id: string; props: Props; urn: string; p: Props }> {
    const u = urn(type, name);
    const p = { __provider: providers[type] };
    const c = await host.check(u, {}, { ...inputs, ...p });
    expect(c.failures).toEqual([]);
    return { ...(await host.create(u, c.inputs)), urn: u, p };
  }

  test("D13: outputs keep the digest and length of the data, never the data; changes are seen by digest; read drops an old echo", async () => {
    await up("KmsAuthorization", "kms", {});
    const ins = await up("Instance", "web", { zone: ZONE, instanceType: "S5.MEDIUM4" });
    const disk = await up("EncryptedDisk", "data", { zone: ZONE, sizeGb: 1 });
    const att = await up("Attachment", "a", { diskId: disk.id, instanceId: ins.id });
    const TEXT = "orders.db: 42 rows, card 4111-1111";
    const w = await up("DiskWrite", "seed", { attachmentId: att.id, text: TEXT, offset: 4096 });
    const sha = crypto.createHash("sha256").update(TEXT).digest("hex");
    expect(w.props).toMatchObject({ attachmentId: att.id, offset: 4096, bytes: Buffer.byteLength(TEXT), sha256: sha });
    expect(Object.keys(w.props)).not.toEqual(expect.arrayContaining(["text"]));
    expect(w.props.base64).toBeUndefined();
    expect(JSON.stringify(w.props)).not.toContain("orders.db");
    const same = { attachmentId: att.id, text: TEXT, offset: 4096 };
    expect(await host.diff(w.urn, w.id, w.props, { ...same, ...w.p })).toMatchObject({ changes: "none" });
    expect(await host.diff(w.urn, w.id, w.props, { ...same, text: `${TEXT}!`, ...w.p })).toMatchObject({ changes: "some", replaces: [] });
    expect(await host.diff(w.urn, w.id, w.props, { attachmentId: att.id, base64: Buffer.from(TEXT).toString("base64"), offset: 4096, ...w.p })).toMatchObject({ changes: "none" });
    const updated = await host.update(w.urn, w.id, w.props, { ...same, text: "new rows", ...w.p });
    expect(updated).toMatchObject({ bytes: 8, sha256: crypto.createHash("sha256").update("new rows").digest("hex") });
    expect(JSON.stringify(updated)).not.toContain("new rows");
    // A state of an older release echoed the data: refresh (Read) and an unchanged update drop it.
    const legacy = { ...updated, text: "new rows" };
    expect((await host.read(w.urn, w.id, legacy)).props.text).toBeUndefined();
    expect((await host.update(w.urn, w.id, legacy, { ...same, text: "new rows", ...w.p })).text).toBeUndefined();
  });
});
