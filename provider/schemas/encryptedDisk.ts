import { z } from "zod";
import * as c from "./common";

/**
 * Inputs of EncryptedDisk. An omitted optional input keeps the disk's current value after
 * creation (it is "optional and computed"): only inputs the program states are compared.
 */
export const EncryptedDiskInputs = z
  .object({
    zone: c.zone.optional().meta({
      description: "Availability zone, e.g. `ap-guangzhou-3`. Required unless `sourceDiskId` or `adoptDiskId` is set (then it defaults to that disk's zone). Changing it replaces the disk.",
      willReplaceOnChanges: true,
    }),
    sizeGb: c.sizeGb.optional().meta({
      description: "Size in GB (1 GB = 2^30 bytes). Required unless created from `snapshotId`, `sourceDiskId` or `adoptDiskId` (then the snapshot's or disk's size). Growing is an in-place update; an attached encrypted disk shows the new size to its instance only after a detach and attach (L6). Shrinking is refused.",
    }),
    diskType: c.DiskTypeSchema.optional().meta({
      description: "Disk medium (default CLOUD_PREMIUM at creation). Changing it replaces the disk.",
      default: "CLOUD_PREMIUM",
      willReplaceOnChanges: true,
    }),
    diskUsage: c.DiskUsageSchema.optional().meta({
      description: "DATA_DISK (default at creation) or SYSTEM_DISK. System disks cannot be encrypted (L3). Changing it replaces the disk.",
      default: "DATA_DISK",
      willReplaceOnChanges: true,
    }),
    encrypt: z.boolean().optional().meta({
      description: "Encrypt the disk (AES-256 under the region's KMS-protected data key). Default at creation: true, or inherited from `snapshotId` (C2). Fixed for the life of the disk: changing it is refused at preview (L4, L5); to move data between kinds, create a new disk with `sourceDiskId` (M1).",
      default: true,
    }),
    snapshotId: c.snapshotId.optional().meta({
      description: "Create the disk from this snapshot (C2, C3): it holds the snapshot's data and inherits its encryption. Changing it to another snapshot replaces the disk; removing it later changes nothing.",
      willReplaceOnChanges: true,
    }),
    sourceDiskId: c.diskId.optional().meta({
      description: "Migration (M1): create this disk holding a copy of all data of an existing disk of the other encryption kind (typically plain -> encrypted). The source must be unattached and is left untouched; delete it yourself once done. Changing it to another disk replaces this disk; removing it later changes nothing.",
      willReplaceOnChanges: true,
    }),
    adoptDiskId: c.diskId.optional().meta({
      description: "Adopt an existing disk instead of creating one (`pulumi import` does not work for dynamic providers). The stated inputs must match the disk (encryption, zone, type, usage); a larger `sizeGb` grows it and `name`/`tags` are applied. Once adopted, Pulumi owns it: deleting the resource deletes the disk (use the `retainOnDelete` option to keep it). Changing it to another disk replaces this resource; removing it later changes nothing.",
      willReplaceOnChanges: true,
    }),
    restoreSnapshotId: c.snapshotId.optional().meta({
      description: "Roll the disk back to this snapshot of itself (ApplySnapshot). Applied whenever the value changes on an existing disk; refused while the disk is attached (detach it first) and when the snapshot was taken from another disk. Not accepted on a new disk: use `snapshotId` to create a disk from a snapshot. Removing it changes nothing; to roll back to the same snapshot again, remove it, `pulumi up`, then set it again.",
    }),
    kmsAuthorization: c.accountId.optional().meta({
      description: "The account id of a KmsAuthorization (`kms.accountId`): passing it makes Pulumi create the authorization before this disk (O2: encrypted disks need KMS authorized), with no `dependsOn`. Only orders the deployment; changing or removing it changes nothing.",
    }),
    name: c.name.optional().meta({ description: "Display name of the disk (default: the Pulumi resource name, for a disk created without one). Changing it is an in-place update." }),
    tags: c.tags.optional().meta({ description: "Key/value tags. Changing them is an in-place update." }),
  })
  .strict();

export const EncryptedDiskOutputs = z
  .object({
    diskId: c.diskId.meta({ description: "Disk id (also the resource id)." }),
    region: c.region.meta({ description: "Region of the disk's zone; its KMS protects the disk's key (O1)." }),
    zone: c.zone.meta({ description: "Availability zone." }),
    sizeGb: c.sizeGb.meta({ description: "Current size in GB." }),
    diskType: c.DiskTypeSchema.meta({ description: "Disk medium." }),
    diskUsage: c.DiskUsageSchema.meta({ description: "DATA_DISK or SYSTEM_DISK." }),
    encrypted: z.boolean().meta({ description: "Whether the disk is encrypted (stated or inherited from its snapshot)." }),
    kmsKeyId: z.string().optional().meta({ description: "The region's disk-encryption CMK when encrypted (K2; visible, never chosen: K5)." }),
    state: z.string().meta({ description: "Disk state at the last create, update or refresh (UNATTACHED, ATTACHED, ...)." }),
    name: z.string().meta({ description: "Display name." }),
    tags: c.tags.meta({ description: "Tags." }),
    snapshotId: c.snapshotId.optional().meta({ description: "The snapshot the disk was created from, if any." }),
    sourceDiskId: c.diskId.optional().meta({ description: "The disk whose data this disk received at creation (M1), if any." }),
    adoptDiskId: c.diskId.optional().meta({ description: "The adopted disk id, when the resource adopted an existing disk." }),
    restoreSnapshotId: c.snapshotId.optional().meta({ description: "The snapshot last rolled back to through `restoreSnapshotId`." }),
    encrypt: z.boolean().optional().meta({ description: "The `encrypt` input as stated (absent when omitted)." }),
    attachmentId: z.string().optional().meta({ description: "Current attachment id at the last read, if attached." }),
    instanceId: c.instanceId.optional().meta({ description: "Instance the disk was attached to at the last read, if any." }),
    reattachRequired: z.boolean().meta({ description: "L6: true when the disk grew while attached and encrypted: the instance sees the new size only after a detach and attach." }),
    createdAt: z.string().meta({ description: "Creation time (ISO-8601)." }),
  })
  .strict();

export type EncryptedDiskInputs = z.input<typeof EncryptedDiskInputs>;
export type EncryptedDiskOutputs = z.output<typeof EncryptedDiskOutputs>;

export const EncryptedDiskSchema: c.ResourceSchema = {
  name: "EncryptedDisk",
  description:
    "A cloud data disk, encrypted by default with AES-256 under its region's KMS-protected data key. Encryption is fixed at creation (L4, L5): the provider refuses a change at preview instead of replacing the disk. Grow in place, roll back to a snapshot, or migrate a plain disk's data (M1) declaratively.",
  inputs: EncryptedDiskInputs,
  outputs: EncryptedDiskOutputs,
};
