/**
 * Builds the Pulumi package schema (schema.json) from the zod schemas: one source of truth
 * for validation, TypeScript types and the published schema.
 */
import { z } from "zod";
import { DiskTypeSchema, DiskUsageSchema, ResourceSchema, typeToken } from "./common";
import { CONFIG_KEYS, ConfigKey, ProviderConfig } from "./config";
import { RESOURCE_SCHEMAS } from "./index";

type Json = Record<string, unknown>;

/** Named enum types: the zod `id` meta -> type token in schema.json. */
const NAMED_TYPES: Record<string, z.ZodEnum> = { DiskType: DiskTypeSchema, DiskUsage: DiskUsageSchema };

function fail(where: string, why: string): never {
  throw new Error(`schema generation: ${where}: ${why}`);
}

/** One JSON Schema property (as zod emits it) -> a Pulumi propertySpec/typeSpec. */
function toPropertySpec(js: Json, where: string, top = true): Json {
  const out: Json = {};
  if (typeof js.$ref === "string") {
    const m = /^#\/\$defs\/(\w+)$/.exec(js.$ref);
    if (!m || !NAMED_TYPES[m[1]]) fail(where, `unexpected reference ${js.$ref}`);
    out.$ref = `#/types/${typeToken(m[1])}`;
  } else {
    switch (js.type) {
      case "string":
      case "boolean":
      case "number":
      case "integer":
        out.type = js.type;
        break;
      case "array":
        out.type = "array";
        out.items = toPropertySpec((js.items as Json) ?? fail(where, "array without items"), `${where}[]`, false);
        break;
      case "object":
        out.type = "object";
        if (js.additionalProperties && typeof js.additionalProperties === "object") out.additionalProperties = toPropertySpec(js.additionalProperties as Json, `${where}{}`, false);
        else fail(where, "only maps (records) are supported as object properties");
        break;
      default:
        fail(where, `unsupported type ${JSON.stringify(js.type)}`);
    }
  }
  if (top) {
    if (typeof js.description !== "string" || js.description.length === 0) fail(where, "every property needs a description");
    out.description = js.description;
    if (js.default !== undefined) out.default = js.default;
    if (js.willReplaceOnChanges === true) out.willReplaceOnChanges = true;
  }
  return out;
}

function objectSpec(schema: z.ZodObject, io: "input" | "output", where: string): { properties: Json; required: string[] } {
  const js = z.toJSONSchema(schema, { io, unrepresentable: "throw" }) as Json;
  const props = (js.properties ?? {}) as Record<string, Json>;
  const properties: Json = {};
  for (const [k, v] of Object.entries(props)) properties[k] = toPropertySpec(v, `${where}.${k}`);
  return { properties, required: ((js.required as string[]) ?? []).slice() };
}

function resourceSpec(r: ResourceSchema): Json {
  const inputs = objectSpec(r.inputs, "input", `${r.name} inputs`);
  const outputs = objectSpec(r.outputs, "output", `${r.name} outputs`);
  return {
    description: r.description,
    type: "object",
    properties: outputs.properties,
    required: outputs.required,
    inputProperties: inputs.properties,
    requiredInputs: inputs.required,
  };
}

function enumType(e: z.ZodEnum): Json {
  const desc = (e.meta() as { description?: string } | undefined)?.description ?? "";
  return { description: desc, type: "string", enum: e.options.map((value) => ({ value })) };
}

/** The package schema object, with keys in a stable order. */
export function buildPackageSchema(version: string): Json {
  const cfg = objectSpec(ProviderConfig, "output", "config");
  const variables: Json = {};
  for (const [k, spec] of Object.entries(cfg.properties)) {
    variables[k] = { ...(spec as Json), defaultInfo: { environment: [CONFIG_KEYS[k as ConfigKey].env] } };
  }
  const types: Json = {};
  for (const [id, e] of Object.entries(NAMED_TYPES)) types[typeToken(id)] = enumType(e);
  const resources: Json = {};
  for (const r of RESOURCE_SCHEMAS) resources[typeToken(r.name)] = resourceSpec(r);
  return {
    name: "encdisk",
    displayName: "Encrypted disks (encdisk)",
    version,
    description:
      "Encrypted cloud disks as code: a Pulumi dynamic provider (TypeScript, pulumi.dynamic) over an embedded local cloud engine with KMS, AES-256 encrypted block storage, snapshots, attachments and KMS billing. Resource tokens are the dynamic-provider tokens that appear in URNs (pulumi-nodejs:dynamic/encdisk:<Name>); this schema documents and validates them (dynamic providers have no generated SDKs).",
    keywords: ["pulumi", "encryption", "kms", "disk", "dynamic-provider"],
    license: "Apache-2.0",
    config: { variables, defaults: Object.keys(variables) },
    types,
    resources,
    language: { nodejs: { packageName: "pulumi-encdisk" } },
  };
}

/** schema.json's exact text. */
export function renderPackageSchema(version: string): string {
  return `${JSON.stringify(buildPackageSchema(version), null, 2)}\n`;
}
