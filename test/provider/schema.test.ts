/** schema.json: generated from the zod schemas, committed, valid against Pulumi's package metaschema. */
import * as fs from "fs";
import * as path from "path";
import Ajv2020 from "ajv/dist/2020";
import { renderPackageSchema, buildPackageSchema } from "../../provider/schemas/packageSchema";
import { RESOURCE_SCHEMAS } from "../../provider/schemas";

const root = path.resolve(__dirname, "../..");
// Pulumi's metaschema, kept in the repository (source and licence: test/fixtures/README.md).
const metaschemaFile = path.join(root, "test/fixtures/pulumi-package-metaschema.json");
const version = (JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")) as { version: string }).version;

test("the committed schema.json is what the zod schemas generate (run npm run gen-schema when this fails)", () => {
  const committed = fs.readFileSync(path.join(root, "schema.json"), "utf8");
  expect(committed).toBe(renderPackageSchema(version));
});

test("schema.json validates against Pulumi's package metaschema (JSON Schema 2020-12)", () => {
  expect(fs.existsSync(metaschemaFile)).toBe(true);
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false });
  const validate = ajv.compile(JSON.parse(fs.readFileSync(metaschemaFile, "utf8")));
  const ok = validate(JSON.parse(fs.readFileSync(path.join(root, "schema.json"), "utf8")));
  expect(validate.errors ?? []).toEqual([]);
  expect(ok).toBe(true);
});

test("every resource, with every input and output described, under its URN type token", () => {
  const schema = buildPackageSchema(version) as { resources: Record<string, { inputProperties: Record<string, { description?: string }>; properties: Record<string, { description?: string }> }> };
  expect(Object.keys(schema.resources).sort()).toEqual(RESOURCE_SCHEMAS.map((r) => `pulumi-nodejs:dynamic/encdisk:${r.name}`).sort());
  for (const [token, r] of Object.entries(schema.resources)) {
    for (const [k, p] of [...Object.entries(r.inputProperties), ...Object.entries(r.properties)]) {
      expect(`${token}.${k}: ${typeof p.description}`).toBe(`${token}.${k}: string`);
    }
  }
  const disk = schema.resources["pulumi-nodejs:dynamic/encdisk:EncryptedDisk"] as unknown as { inputProperties: Record<string, { willReplaceOnChanges?: boolean }> };
  const replacing = Object.entries(disk.inputProperties).filter(([, p]) => p.willReplaceOnChanges).map(([k]) => k).sort();
  expect(replacing).toEqual(["adoptDiskId", "diskType", "diskUsage", "snapshotId", "sourceDiskId", "zone"]);
  expect(disk.inputProperties.encrypt.willReplaceOnChanges).toBeUndefined(); // L4/L5: refused, never replaced
});
