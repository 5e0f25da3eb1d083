/**
 * Field schemas shared by the resources. Schemas here feed `schema.json` through
 * `z.toJSONSchema`, so they hold no transforms, no dates and no defaults that change values:
 * validation, the TypeScript types and the package schema read the same definitions.
 *
 * Metadata keys understood by the schema generator (scripts/gen-schema.ts):
 * - `description`: required on every property.
 * - `default`: the value used at creation when the input is omitted (documentation only;
 *   `check` never rewrites inputs).
 * - `willReplaceOnChanges`: a change of this input replaces the resource.
 */
import { z } from "zod";
import { CLOUD_DISK_TYPES, DISK_TYPES, DISK_USAGES } from "../engine/types";

/** Enum types, named as they appear under `types` in schema.json. */
export const DiskTypeSchema = z.enum(DISK_TYPES).meta({
  id: "DiskType",
  description: `Disk medium. Cloud disks (${CLOUD_DISK_TYPES.join(", ")}) can be encrypted (L1); local disks (LOCAL_BASIC, LOCAL_SSD) cannot (L2).`,
});
export const DiskUsageSchema = z.enum(DISK_USAGES).meta({
  id: "DiskUsage",
  description: "What the disk is for. Only data disks can be encrypted (L3).",
});

export const zone = z.string().regex(/^[a-z]+(-[a-z0-9]+)+$/, "a zone looks like ap-guangzhou-3");
export const region = z.string().regex(/^[a-z]+(-[a-z0-9]+)+$/, "a region looks like ap-guangzhou");
export const diskId = z.string().regex(/^disk-[0-9a-z]+$/, "a disk id looks like disk-1a2b3c4d");
export const snapshotId = z.string().regex(/^snap-[0-9a-z]+$/, "a snapshot id looks like snap-1a2b3c4d");
export const instanceId = z.string().regex(/^ins-[0-9a-z]+$/, "an instance id looks like ins-1a2b3c4d");
export const imageId = z.string().regex(/^img-[0-9a-z]+$/, "an image id looks like img-1a2b3c4d");
export const name = z.string().min(1).max(60);
export const tags = z.record(z.string().min(1).max(127), z.string().max(255));
export const sizeGb = z.number().int().min(1).max(32000);
export const accountId = z.string().regex(/^\d{5,20}$/, "an account id is 5 to 20 digits");

/** The string Pulumi sends for values not known during preview. */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** What every resource's schema module exports. */
export interface ResourceSchema {
  /** Short name: the last part of the type token. */
  name: string;
  description: string;
  inputs: z.ZodObject;
  outputs: z.ZodObject;
}

/** Type token of a resource as it appears in URNs (`pulumi.dynamic.Resource` builds it). */
export function typeToken(resourceName: string): string {
  return `pulumi-nodejs:dynamic/encdisk:${resourceName}`;
}
