import { z } from "zod";
import * as c from "./common";

export const SnapshotCopyInputs = z
  .object({
    sourceSnapshotId: c.snapshotId.meta({ description: "The snapshot to copy. Encrypted snapshots cannot be copied across regions (S4). Changing it replaces the copy.", willReplaceOnChanges: true }),
    destinationRegion: c.region.meta({ description: "Region to copy into. Changing it replaces the copy.", willReplaceOnChanges: true }),
    name: c.name.optional().meta({ description: "Name of the copy (default: the Pulumi resource name, for a copy created without one). Changing it replaces the copy.", willReplaceOnChanges: true }),
  })
  .strict();

export const SnapshotCopyOutputs = z
  .object({
    snapshotId: c.snapshotId.meta({ description: "Id of the copy (also the resource id)." }),
    sourceSnapshotId: c.snapshotId.meta({ description: "The snapshot copied." }),
    destinationRegion: c.region.meta({ description: "Region of the copy." }),
    name: z.string().meta({ description: "Name of the copy." }),
    region: c.region.meta({ description: "Region of the copy." }),
    encrypted: z.boolean().meta({ description: "Always false: encrypted snapshots are never copied across regions (S4)." }),
    sizeGb: c.sizeGb.meta({ description: "Size in GB." }),
    state: z.string().meta({ description: "Snapshot state at the last read." }),
    createdAt: z.string().meta({ description: "Creation time (ISO-8601)." }),
  })
  .strict();

export type SnapshotCopyInputs = z.input<typeof SnapshotCopyInputs>;
export type SnapshotCopyOutputs = z.output<typeof SnapshotCopyOutputs>;

export const SnapshotCopySchema: c.ResourceSchema = {
  name: "SnapshotCopy",
  description: "A copy of a snapshot in another region. Refused for encrypted snapshots (S4): at preview when the source is known, otherwise at `up` before anything changes.",
  inputs: SnapshotCopyInputs,
  outputs: SnapshotCopyOutputs,
};
