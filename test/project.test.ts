import * as fs from "fs";
import * as path from "path";

const ROOT = path.resolve(__dirname, "..");

describe("project", () => {
  test("P4: the top level holds provider/, examples/, test/, schema.json, package.json, tsconfig.json, Pulumi.yaml and README.md", () => {
    for (const dir of ["provider", "examples", "test"]) expect([dir, fs.statSync(path.join(ROOT, dir)).isDirectory()]).toEqual([dir, true]);
    for (const file of ["schema.json", "package.json", "tsconfig.json", "Pulumi.yaml", "README.md"]) expect([file, fs.statSync(path.join(ROOT, file)).isFile()]).toEqual([file, true]);
  });

  test("P1: the package exports the dynamic-provider resources EncryptedDisk, Snapshot and Attachment (and what they need), validated with zod", () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const pkg = require(path.join(ROOT, "provider/index.ts")) as Record<string, unknown>;
    for (const name of ["EncryptedDisk", "Snapshot", "Attachment", "Instance", "KmsAuthorization", "Image", "SnapshotCopy"]) expect([name, typeof pkg[name]]).toEqual([name, "function"]);
    const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { name: string; bin: Record<string, string>; dependencies: Record<string, string> };
    expect(manifest.name).toBe("pulumi-encdisk");
    expect(Object.keys(manifest.bin)).toEqual(["encdisk"]);
    expect(Object.keys(manifest.dependencies)).toEqual(expect.arrayContaining(["@pulumi/pulumi", "zod", "better-sqlite3"]));
    const schemas = fs.readdirSync(path.join(ROOT, "provider/schemas")).filter((f) => f.endsWith(".ts"));
    expect(schemas.some((f) => /from "zod"/.test(fs.readFileSync(path.join(ROOT, "provider/schemas", f), "utf8")))).toBe(true);
  });
});
