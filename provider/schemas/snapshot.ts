import { z } from "zod";
import * as c from "./common";

export const SnapshotInputs = z
  .object({
    diskId: c.diskId.meta({ description: "The disk to snapshot. Changing it replaces the snapshot.", willReplaceOnChanges: true }),
    name: c.name.optional().meta({
      description: "Display name (default: the Pulumi resource name, for a snapshot created without one). Snapshots cannot be renamed: changing it replaces the snapshot (a new one is taken from the disk's current data).",
      willReplaceOnChanges: true,
    }),
    encrypt: z.boolean().optional().meta({
      description: "Optional assertion of the snapshot's encryption, which is always inherited from the disk: a snapshot of a plain disk is never encrypted (S1) and one of an encrypted disk never plain (S2). A value that disagrees is refused at preview.",
    }),
  })
  .strict();

export const SnapshotOutputs = z
  .object({
    snapshotId: c.snapshotId.meta({ description: "Snapshot id (also the resource id)." }),
    diskId: c.diskId.meta({ description: "The disk the snapshot was taken from." }),
    name: z.string().meta({ description: "Display name." }),
    zone: c.zone.meta({ description: "Zone of the source disk." }),
    region: c.region.meta({ description: "Region of the snapshot." }),
    encrypted: z.boolean().meta({ description: "Whether the snapshot is encrypted (inherited from the disk: S1, S2)." }),
    encrypt: z.boolean().optional().meta({ description: "The `encrypt` assertion as stated (absent when omitted)." }),
    kmsKeyId: z.string().optional().meta({ description: "The region's disk-encryption CMK when encrypted (K3)." }),
    sizeGb: c.sizeGb.meta({ description: "Size of the source disk when the snapshot was taken, in GB." }),
    state: z.string().meta({ description: "Snapshot state at the last read." }),
    createdAt: z.string().meta({ description: "Creation time (ISO-8601)." }),
  })
  .strict();

export type SnapshotInputs = z.input<typeof SnapshotInputs>;
export type SnapshotOutputs = z.output<typeof SnapshotOutputs>;

export const SnapshotSchema: c.ResourceSchema = {
  name: "Snapshot",
  description: "A point-in-time snapshot of a disk. It inherits the disk's encryption and key (K3, S1, S2); taking one of an encrypted disk is a billed KMS call (B2).",
  inputs: SnapshotInputs,
  outputs: SnapshotOutputs,
};
