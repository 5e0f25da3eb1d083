/**
 * The package's public TypeScript types: plain interfaces generated from the zod schemas
 * (provider/types.generated.ts), declarations free of zod, and a stack program compiling
 * against the built declarations (dist/) with the TypeScript Pulumi bundles (3.8.3, run
 * through ts-node: diagnostics of the program's own files) and with this repository's 5.x
 * (a full `tsc` check). TypeScript 4.9.5 and a real `pulumi up` of a .ts stack from the npm
 * tarball are in test/e2e/package.e2e.ts.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import type { z } from "zod";
import { renderPackageTypes } from "../../provider/schemas/packageTypes";
import type * as gen from "../../provider/types.generated";
import type * as s from "../../provider/schemas";

const root = path.resolve(__dirname, "../..");

test("the committed provider/types.generated.ts is what the zod schemas generate (run npm run gen-types when this fails)", () => {
  expect(fs.readFileSync(path.join(root, "provider", "types.generated.ts"), "utf8")).toBe(renderPackageTypes());
});

// Compile-time agreement of the generated interfaces with the zod types (ts-jest type-checks
// this file: a mismatch fails the suite). Outputs must be equal; Args are the zod inputs with
// each value allowed as a pulumi.Input.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Plain<T> = { [K in keyof T]: T[K] };
const outputsAgree: [
  Same<Plain<gen.EncryptedDiskOutputs>, z.output<typeof s.EncryptedDiskOutputs>>,
  Same<Plain<gen.SnapshotOutputs>, z.output<typeof s.SnapshotOutputs>>,
  Same<Plain<gen.InstanceOutputs>, z.output<typeof s.InstanceOutputs>>,
  Same<Plain<gen.AttachmentOutputs>, z.output<typeof s.AttachmentOutputs>>,
  Same<Plain<gen.ImageOutputs>, z.output<typeof s.ImageOutputs>>,
  Same<Plain<gen.SnapshotCopyOutputs>, z.output<typeof s.SnapshotCopyOutputs>>,
  Same<Plain<gen.DiskWriteOutputs>, z.output<typeof s.DiskWriteOutputs>>,
  Same<Plain<gen.KmsAuthorizationOutputs>, z.output<typeof s.KmsAuthorizationOutputs>>,
  Same<Plain<gen.ProviderConfig>, z.output<typeof s.ProviderConfig>>,
] = [true, true, true, true, true, true, true, true, true];
const argsAgree: [
  Same<keyof gen.EncryptedDiskArgs, keyof z.input<typeof s.EncryptedDiskInputs>>,
  Same<keyof gen.SnapshotArgs, keyof z.input<typeof s.SnapshotInputs>>,
  Same<keyof gen.InstanceArgs, keyof z.input<typeof s.InstanceInputs>>,
  Same<keyof gen.AttachmentArgs, keyof z.input<typeof s.AttachmentInputs>>,
  Same<keyof gen.ImageArgs, keyof z.input<typeof s.ImageInputs>>,
  Same<keyof gen.SnapshotCopyArgs, keyof z.input<typeof s.SnapshotCopyInputs>>,
  Same<keyof gen.DiskWriteArgs, keyof z.input<typeof s.DiskWriteInputs>>,
  // KmsAuthorization takes no input: its Args interface is empty.
  keyof gen.KmsAuthorizationArgs extends never ? true : false,
  // A plain value of every zod input is a valid Args value (Args only widen to pulumi.Input).
  z.input<typeof s.EncryptedDiskInputs> extends gen.EncryptedDiskArgs ? true : false,
  z.input<typeof s.ImageInputs> extends gen.ImageArgs ? true : false,
  z.input<typeof s.DiskWriteInputs> extends gen.DiskWriteArgs ? true : false,
] = [true, true, true, true, true, true, true, true, true, true, true];

test("the generated interfaces agree with the zod types (checked at compile time)", () => {
  expect(outputsAgree.every(Boolean) && argsAgree.every(Boolean)).toBe(true);
});

test("every generated property carries its schema description as JSDoc", () => {
  const text = renderPackageTypes();
  const props = [...text.matchAll(/^ {2}(\w+)\??: /gm)];
  expect(props.length).toBeGreaterThan(100);
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (/^ {2}\w+\??: /.test(lines[i])) expect(lines[i - 1]).toMatch(/^ {2}\/\*\* \S.* \*\/$/);
  }
  expect(text).toContain("  /** Size in GB (1 GB = 2^30 bytes).");
  expect(text).not.toMatch(/zod|\bz\./);
});

/** Every declaration file dist/provider/index.d.ts reaches through relative imports. */
function reachableDeclarations(entry: string): string[] {
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const f = queue.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    for (const m of fs.readFileSync(f, "utf8").matchAll(/(?:from|import)\s*\(?\s*["'](\.[^"']+)["']/g)) {
      const base = path.resolve(path.dirname(f), m[1]);
      const hit = [`${base}.d.ts`, path.join(base, "index.d.ts")].find((c) => fs.existsSync(c));
      if (hit) queue.push(hit);
    }
  }
  return [...seen];
}

test("the public declarations (dist/provider/index.d.ts and all it reaches) mention no zod", () => {
  const files = reachableDeclarations(path.join(root, "dist", "provider", "index.d.ts"));
  expect(files.map((f) => path.relative(root, f))).toEqual(expect.arrayContaining(["dist/provider/types.generated.d.ts", "dist/provider/resources/encryptedDisk.d.ts"]));
  const withZod = files.filter((f) => /zod/i.test(fs.readFileSync(f, "utf8"))).map((f) => path.relative(root, f));
  expect(withZod).toEqual([]);
});

describe("a TypeScript stack program against the built declarations", () => {
  const program = `import * as pulumi from "@pulumi/pulumi";
import * as encdisk from "pulumi-encdisk";

const kms = new encdisk.KmsAuthorization("kms");
const web = new encdisk.Instance("web", { zone: "ap-guangzhou-3", instanceType: "S5.MEDIUM4" });
const data = new encdisk.EncryptedDisk("data", { zone: "ap-guangzhou-3", sizeGb: 20, tags: { team: "a" } }, { dependsOn: [kms] });
const att = new encdisk.Attachment("att", { diskId: data.diskId, instanceId: web.instanceId });
const snap = new encdisk.Snapshot("snap", { diskId: data.diskId });
const args: encdisk.EncryptedDiskArgs = { snapshotId: snap.snapshotId, diskType: "CLOUD_SSD" };
new encdisk.EncryptedDisk("restored", args);
new encdisk.Image("img", { name: "img", snapshotIds: [snap.snapshotId] });
const size: pulumi.Output<number> = data.sizeGb;
const key: pulumi.Output<string | undefined> = data.kmsKeyId;
const t: encdisk.DiskType = "CLOUD_PREMIUM";
export const endpoint = att.endpoint;
export const calls = encdisk.getKmsUsage({ after: [data, snap] }).calls;
export { size, key, t };
`;
  // Three mistakes the types must catch: a string size, an unknown disk type, a missing zone.
  const wrong = `import * as encdisk from "pulumi-encdisk";
new encdisk.EncryptedDisk("a", { sizeGb: "20" });
new encdisk.EncryptedDisk("b", { diskType: "FLOPPY" });
new encdisk.Instance("c", { instanceType: "S5.MEDIUM4" });
`;
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "encdisk-ts-"));
    fs.mkdirSync(path.join(dir, "node_modules", "@pulumi"), { recursive: true });
    fs.symlinkSync(root, path.join(dir, "node_modules", "pulumi-encdisk"), "dir");
    fs.symlinkSync(path.join(root, "node_modules", "@pulumi", "pulumi"), path.join(dir, "node_modules", "@pulumi", "pulumi"), "dir");
    fs.writeFileSync(path.join(dir, "index.ts"), program);
    fs.writeFileSync(path.join(dir, "wrong.ts"), wrong);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  type Ts = typeof import("typescript");
  /** Diagnostics of `file` only (what ts-node reports), or of the whole program (`tsc`). */
  function diagnostics(ts: Ts, file: string, whole: boolean): string[] {
    const f = path.join(dir, file);
    const p = ts.createProgram([f], {
      strict: true,
      noEmit: true,
      target: ts.ScriptTarget.ES2020,
      module: ts.ModuleKind.CommonJS,
      moduleResolution: ts.ModuleResolutionKind.NodeJs,
      types: [],
    });
    const sf = p.getSourceFile(f)!;
    const d = whole ? ts.getPreEmitDiagnostics(p) : [...p.getSyntacticDiagnostics(sf), ...p.getSemanticDiagnostics(sf)];
    return d.map((x) => `${x.file ? path.basename(x.file.fileName) : ""}: ${ts.flattenDiagnosticMessageText(x.messageText, " ")}`);
  }

  const vendored = path.join(root, "node_modules", "@pulumi", "pulumi", "vendor", "typescript@3.8.3", "typescript.js");
  test("TypeScript 3.8.3 (Pulumi's bundled one, as its ts-node checks a program) compiles it with no error and catches three mistakes", () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const ts = require(vendored) as Ts;
    expect(ts.version).toBe("3.8.3");
    expect(diagnostics(ts, "index.ts", false)).toEqual([]);
    expect(diagnostics(ts, "wrong.ts", false)).toHaveLength(3);
  });

  test("TypeScript 5.x (this repository's) compiles it with no error in any file, declarations included", () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const ts = require("typescript") as Ts;
    expect(ts.version).toMatch(/^5\./);
    expect(diagnostics(ts, "index.ts", true)).toEqual([]);
    expect(diagnostics(ts, "wrong.ts", false)).toHaveLength(3);
  });
});
