/**
 * Builds provider/types.generated.ts — the public TypeScript types of the package (every
 * resource's Args and Outputs, the enums, the provider configuration) as plain interfaces —
 * from the zod schemas, as packageSchema.ts builds schema.json. The published declarations
 * then expose no zod type: a stack program compiles with any TypeScript the package supports
 * (3.8.3, Pulumi's bundled one, and later), and editors show each property's description.
 */
import { z } from "zod";
import { DiskTypeSchema, DiskUsageSchema, ResourceSchema } from "./common";
import { ProviderConfig } from "./config";
import { RESOURCE_SCHEMAS } from "./index";

type Json = Record<string, unknown>;

/** Named enum types: the zod `id` meta -> a string-literal union type of the same name. */
const NAMED_TYPES: Record<string, z.ZodEnum> = { DiskType: DiskTypeSchema, DiskUsage: DiskUsageSchema };

function fail(where: string, why: string): never {
  throw new Error(`types generation: ${where}: ${why}`);
}

/** A JSDoc block (one paragraph) at `indent`. */
function doc(text: string, indent: string): string {
  const clean = text.replace(/\*\//g, "*\\/").replace(/\s+/g, " ").trim();
  return `${indent}/** ${clean} */\n`;
}

/** One JSON Schema property (as zod emits it) -> a TypeScript type; `input` wraps in pulumi.Input. */
function tsType(js: Json, where: string, input: boolean): string {
  const wrap = (t: string): string => (input ? `pulumi.Input<${t}>` : t);
  if (typeof js.$ref === "string") {
    const m = /^#\/\$defs\/(\w+)$/.exec(js.$ref);
    if (!m || !NAMED_TYPES[m[1]]) fail(where, `unexpected reference ${js.$ref}`);
    return wrap(m[1]);
  }
  switch (js.type) {
    case "string":
    case "boolean":
      return wrap(js.type);
    case "number":
    case "integer":
      return wrap("number");
    case "array":
      return wrap(`${tsType((js.items as Json) ?? fail(where, "array without items"), `${where}[]`, input)}[]`);
    case "object":
      if (js.additionalProperties && typeof js.additionalProperties === "object") {
        return wrap(`{ [key: string]: ${tsType(js.additionalProperties as Json, `${where}{}`, input)} }`);
      }
      return fail(where, "only maps (records) are supported as object properties");
    default:
      return fail(where, `unsupported type ${JSON.stringify(js.type)}`);
  }
}

function iface(name: string, description: string, schema: z.ZodObject, io: "input" | "output"): string {
  const js = z.toJSONSchema(schema, { io, unrepresentable: "throw" }) as Json;
  const props = (js.properties ?? {}) as Record<string, Json>;
  const required = new Set((js.required as string[]) ?? []);
  let out = doc(description, "") + `export interface ${name} {\n`;
  for (const [k, v] of Object.entries(props)) {
    if (typeof v.description !== "string" || v.description.length === 0) fail(`${name}.${k}`, "every property needs a description");
    out += doc(v.description, "  ");
    out += `  ${k}${required.has(k) ? "" : "?"}: ${tsType(v, `${name}.${k}`, io === "input")};\n`;
  }
  return `${out}}\n`;
}

function resourceTypes(r: ResourceSchema): string {
  return [
    iface(`${r.name}Args`, `Arguments of ${r.name}: ${r.description}`, r.inputs, "input"),
    iface(`${r.name}Outputs`, `Output values of ${r.name} (on the resource, each is a \`pulumi.Output\`).`, r.outputs, "output"),
  ].join("\n");
}

function enumType(id: string, e: z.ZodEnum): string {
  const desc = (e.meta() as { description?: string } | undefined)?.description ?? id;
  return doc(desc, "") + `export type ${id} = ${e.options.map((o) => JSON.stringify(o)).join(" | ")};\n`;
}

/** The file's first lines: what it is, and its one import (types only). */
const HEADER =
  "// Generated from the schemas in provider/schemas by scripts/gen-types.ts (npm run gen-types).\n" +
  "// Do not edit: a test fails when this file differs from the generator's output.\n" +
  "// Plain TypeScript (3.8 and later), no schema-library types: the package's public types.\n" +
  'import type * as pulumi from "@pulumi/pulumi";\n';

/** provider/types.generated.ts's exact text. */
export function renderPackageTypes(): string {
  const parts = [
    HEADER,
    ...Object.entries(NAMED_TYPES).map(([id, e]) => enumType(id, e)),
    ...RESOURCE_SCHEMAS.map(resourceTypes),
    iface("ProviderConfig", "Provider settings after choosing stack config (`encdisk:<key>`), environment or default.", ProviderConfig, "output"),
  ];
  return parts.join("\n");
}
