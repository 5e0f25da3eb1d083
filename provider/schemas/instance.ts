import { z } from "zod";
import * as c from "./common";

export const InstanceInputs = z
  .object({
    zone: c.zone.meta({ description: "Availability zone. Disks attach only to instances in their own zone (C1). Changing it replaces the instance.", willReplaceOnChanges: true }),
    instanceType: z.string().min(1).max(32).meta({ description: "Instance type FAMILY.SIZE, e.g. `S5.MEDIUM4` (families S5, S6, SA2, SA3, SA5, M5, M6, C5, C6, GN7; with local storage: IT3, IT5, D3). Changing it replaces the instance.", willReplaceOnChanges: true }),
    localStorage: z.boolean().optional().meta({
      description: "Whether the instance has local storage (default: as its family has: IT3, IT5 and D3 do). Encrypted disks cannot be attached to such an instance (L7). Changing it replaces the instance.",
      willReplaceOnChanges: true,
    }),
    name: c.name.optional().meta({ description: "Display name (default: the Pulumi resource name, for an instance created without one). Instances cannot be renamed here: changing it replaces the instance.", willReplaceOnChanges: true }),
  })
  .strict();

export const InstanceOutputs = z
  .object({
    instanceId: c.instanceId.meta({ description: "Instance id (also the resource id): what attachments attach to." }),
    name: z.string().meta({ description: "Display name." }),
    zone: c.zone.meta({ description: "Availability zone." }),
    region: c.region.meta({ description: "Region." }),
    instanceType: z.string().meta({ description: "Instance type." }),
    localStorage: z.boolean().meta({ description: "Whether the instance has local storage (L7)." }),
    createdAt: z.string().meta({ description: "Creation time (ISO-8601)." }),
  })
  .strict();

export type InstanceInputs = z.input<typeof InstanceInputs>;
export type InstanceOutputs = z.output<typeof InstanceOutputs>;

export const InstanceSchema: c.ResourceSchema = {
  name: "Instance",
  description: "A compute instance that disks attach to.",
  inputs: InstanceInputs,
  outputs: InstanceOutputs,
};
