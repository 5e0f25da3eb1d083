// Generated from the schemas in provider/schemas by scripts/gen-types.ts (npm run gen-types).
// Do not edit: a test fails when this file differs from the generator's output.
// Plain TypeScript (3.8 and later), no schema-library types: the package's public types.
import type * as pulumi from "@pulumi/pulumi";

/** Disk medium. Cloud disks (CLOUD_BASIC, CLOUD_PREMIUM, CLOUD_SSD, CLOUD_HSSD, CLOUD_TSSD, CLOUD_BSSD) can be encrypted (L1); local disks (LOCAL_BASIC, LOCAL_SSD) cannot (L2). */
export type DiskType = "CLOUD_BASIC" | "CLOUD_PREMIUM" | "CLOUD_SSD" | "CLOUD_HSSD" | "CLOUD_TSSD" | "CLOUD_BSSD" | "LOCAL_BASIC" | "LOCAL_SSD";

/** What the disk is for. Only data disks can be encrypted (L3). */
export type DiskUsage = "DATA_DISK" | "SYSTEM_DISK";

/** Arguments of KmsAuthorization: Authorizes the disk service to use KMS (O2): required before the first encrypted disk of the account. Make encrypted disks depend on it (`dependsOn`). Deleting the resource leaves the authorization in place (the account-level grant cannot be revoked while encrypted disks may exist). */
export interface KmsAuthorizationArgs {
}

/** Output values of KmsAuthorization (on the resource, each is a `pulumi.Output`). */
export interface KmsAuthorizationOutputs {
  /** The account (also the resource id). */
  accountId: string;
  /** Always true once created (O2). */
  kmsAuthorized: boolean;
  /** Account balance at the last create or refresh, in micro-units (B3). */
  balanceMicros: number;
  /** Price of one billed KMS call, in micro-units (B2). */
  pricePerCallMicros: number;
}

/** Arguments of Instance: A compute instance that disks attach to. */
export interface InstanceArgs {
  /** Availability zone. Disks attach only to instances in their own zone (C1). Changing it replaces the instance. */
  zone: pulumi.Input<string>;
  /** Instance type FAMILY.SIZE, e.g. `S5.MEDIUM4` (families S5, S6, SA2, SA3, SA5, M5, M6, C5, C6, GN7; with local storage: IT3, IT5, D3). Changing it replaces the instance. */
  instanceType: pulumi.Input<string>;
  /** Whether the instance has local storage (default: as its family has: IT3, IT5 and D3 do). Encrypted disks cannot be attached to such an instance (L7). Changing it replaces the instance. */
  localStorage?: pulumi.Input<boolean>;
  /** Display name (default: the Pulumi resource name, for an instance created without one). Instances cannot be renamed here: changing it replaces the instance. */
  name?: pulumi.Input<string>;
}

/** Output values of Instance (on the resource, each is a `pulumi.Output`). */
export interface InstanceOutputs {
  /** Instance id (also the resource id): what attachments attach to. */
  instanceId: string;
  /** Display name. */
  name: string;
  /** Availability zone. */
  zone: string;
  /** Region. */
  region: string;
  /** Instance type. */
  instanceType: string;
  /** Whether the instance has local storage (L7). */
  localStorage: boolean;
  /** Creation time (ISO-8601). */
  createdAt: string;
}

/** Arguments of EncryptedDisk: A cloud data disk, encrypted by default with AES-256 under its region's KMS-protected data key. Encryption is fixed at creation (L4, L5): the provider refuses a change at preview instead of replacing the disk. Grow in place, roll back to a snapshot, or migrate a plain disk's data (M1) declaratively. */
export interface EncryptedDiskArgs {
  /** Availability zone, e.g. `ap-guangzhou-3`. Required unless `sourceDiskId` or `adoptDiskId` is set (then it defaults to that disk's zone). Changing it replaces the disk. */
  zone?: pulumi.Input<string>;
  /** Size in GB (1 GB = 2^30 bytes). Required unless created from `snapshotId`, `sourceDiskId` or `adoptDiskId` (then the snapshot's or disk's size). Growing is an in-place update; an attached encrypted disk shows the new size to its instance only after a detach and attach (L6). Shrinking is refused. */
  sizeGb?: pulumi.Input<number>;
  /** Disk medium (default CLOUD_PREMIUM at creation). Changing it replaces the disk. */
  diskType?: pulumi.Input<DiskType>;
  /** DATA_DISK (default at creation) or SYSTEM_DISK. System disks cannot be encrypted (L3). Changing it replaces the disk. */
  diskUsage?: pulumi.Input<DiskUsage>;
  /** Encrypt the disk (AES-256 under the region's KMS-protected data key). Default at creation: true, or inherited from `snapshotId` (C2). Fixed for the life of the disk: changing it is refused at preview (L4, L5); to move data between kinds, create a new disk with `sourceDiskId` (M1). */
  encrypt?: pulumi.Input<boolean>;
  /** Create the disk from this snapshot (C2, C3): it holds the snapshot's data and inherits its encryption. Changing it to another snapshot replaces the disk; removing it later changes nothing. */
  snapshotId?: pulumi.Input<string>;
  /** Migration (M1): create this disk holding a copy of all data of an existing disk of the other encryption kind (typically plain -> encrypted). The source must be unattached and is left untouched; delete it yourself once done. Changing it to another disk replaces this disk; removing it later changes nothing. */
  sourceDiskId?: pulumi.Input<string>;
  /** Adopt an existing disk instead of creating one (`pulumi import` does not work for dynamic providers). The stated inputs must match the disk (encryption, zone, type, usage); a larger `sizeGb` grows it and `name`/`tags` are applied. Once adopted, Pulumi owns it: deleting the resource deletes the disk (use the `retainOnDelete` option to keep it). Changing it to another disk replaces this resource; removing it later changes nothing. */
  adoptDiskId?: pulumi.Input<string>;
  /** Roll the disk back to this snapshot of itself (ApplySnapshot). Applied whenever the value changes on an existing disk; refused while the disk is attached (detach it first) and when the snapshot was taken from another disk. Not accepted on a new disk: use `snapshotId` to create a disk from a snapshot. Removing it changes nothing; to roll back to the same snapshot again, remove it, `pulumi up`, then set it again. */
  restoreSnapshotId?: pulumi.Input<string>;
  /** The account id of a KmsAuthorization (`kms.accountId`): passing it makes Pulumi create the authorization before this disk (O2: encrypted disks need KMS authorized), with no `dependsOn`. Only orders the deployment; changing or removing it changes nothing. */
  kmsAuthorization?: pulumi.Input<string>;
  /** Display name of the disk (default: the Pulumi resource name, for a disk created without one). Changing it is an in-place update. */
  name?: pulumi.Input<string>;
  /** Key/value tags. Changing them is an in-place update. */
  tags?: pulumi.Input<{ [key: string]: pulumi.Input<string> }>;
}

/** Output values of EncryptedDisk (on the resource, each is a `pulumi.Output`). */
export interface EncryptedDiskOutputs {
  /** Disk id (also the resource id). */
  diskId: string;
  /** Region of the disk's zone; its KMS protects the disk's key (O1). */
  region: string;
  /** Availability zone. */
  zone: string;
  /** Current size in GB. */
  sizeGb: number;
  /** Disk medium. */
  diskType: DiskType;
  /** DATA_DISK or SYSTEM_DISK. */
  diskUsage: DiskUsage;
  /** Whether the disk is encrypted (stated or inherited from its snapshot). */
  encrypted: boolean;
  /** The region's disk-encryption CMK when encrypted (K2; visible, never chosen: K5). */
  kmsKeyId?: string;
  /** Disk state at the last create, update or refresh (UNATTACHED, ATTACHED, ...). */
  state: string;
  /** Display name. */
  name: string;
  /** Tags. */
  tags: { [key: string]: string };
  /** The snapshot the disk was created from, if any. */
  snapshotId?: string;
  /** The disk whose data this disk received at creation (M1), if any. */
  sourceDiskId?: string;
  /** The adopted disk id, when the resource adopted an existing disk. */
  adoptDiskId?: string;
  /** The snapshot last rolled back to through `restoreSnapshotId`. */
  restoreSnapshotId?: string;
  /** The `encrypt` input as stated (absent when omitted). */
  encrypt?: boolean;
  /** Current attachment id at the last read, if attached. */
  attachmentId?: string;
  /** Instance the disk was attached to at the last read, if any. */
  instanceId?: string;
  /** L6: true when the disk grew while attached and encrypted: the instance sees the new size only after a detach and attach. */
  reattachRequired: boolean;
  /** Creation time (ISO-8601). */
  createdAt: string;
}

/** Arguments of Attachment: Attaches a disk to an instance. Attaching or detaching an encrypted disk is a billed KMS call (B2). Any change replaces the attachment with delete-before-replace. */
export interface AttachmentArgs {
  /** The disk to attach. Changing it replaces the attachment, detaching first (a disk sits on one instance at a time). */
  diskId: pulumi.Input<string>;
  /** The instance to attach to, in the disk's zone (C1), without local storage when the disk is encrypted (L7). Changing it replaces the attachment, detaching first. */
  instanceId: pulumi.Input<string>;
  /** Optional: the capacity the instance should see. When it changes the attachment is replaced (detach, then attach), which is how an instance sees a grown encrypted disk (L6). Pass the same value as the disk's `sizeGb`. */
  expectedCapacityGb?: pulumi.Input<number>;
}

/** Output values of Attachment (on the resource, each is a `pulumi.Output`). */
export interface AttachmentOutputs {
  /** Attachment id (also the resource id). */
  attachmentId: string;
  /** The attached disk. */
  diskId: string;
  /** The instance. */
  instanceId: string;
  /** The `expectedCapacityGb` input as stated. */
  expectedCapacityGb?: number;
  /** Zone of the disk and instance. */
  zone: string;
  /** Whether the attached disk is encrypted (data in transit to the instance is then encrypted too: W2). */
  encrypted: boolean;
  /** Capacity the instance sees, in GB, fixed at attach time for encrypted disks (L6). */
  capacityGb: number;
  /** Capacity the instance sees, in bytes. */
  capacityBytes: number;
  /** The disk's size at the last read, in GB. */
  diskSizeGb: number;
  /** L6: true when the disk grew since attach and the instance needs a detach and attach to see it. */
  reattachRequired: boolean;
  /** Attach time (ISO-8601). */
  attachedAt: string;
  /** NBD-over-TLS URI where `encdisk serve` exposes the attachment (W2). */
  endpoint: string;
  /** TLS-PSK identity for the endpoint. */
  pskIdentity: string;
  /** Path of the 0600 key file holding the PSK (the key itself never enters Pulumi state). */
  pskFile: string;
}

/** Arguments of Snapshot: A point-in-time snapshot of a disk. It inherits the disk's encryption and key (K3, S1, S2); taking one of an encrypted disk is a billed KMS call (B2). */
export interface SnapshotArgs {
  /** The disk to snapshot. Changing it replaces the snapshot. */
  diskId: pulumi.Input<string>;
  /** Display name (default: the Pulumi resource name, for a snapshot created without one). Snapshots cannot be renamed: changing it replaces the snapshot (a new one is taken from the disk's current data). */
  name?: pulumi.Input<string>;
  /** Optional assertion of the snapshot's encryption, which is always inherited from the disk: a snapshot of a plain disk is never encrypted (S1) and one of an encrypted disk never plain (S2). A value that disagrees is refused at preview. */
  encrypt?: pulumi.Input<boolean>;
}

/** Output values of Snapshot (on the resource, each is a `pulumi.Output`). */
export interface SnapshotOutputs {
  /** Snapshot id (also the resource id). */
  snapshotId: string;
  /** The disk the snapshot was taken from. */
  diskId: string;
  /** Display name. */
  name: string;
  /** Zone of the source disk. */
  zone: string;
  /** Region of the snapshot. */
  region: string;
  /** Whether the snapshot is encrypted (inherited from the disk: S1, S2). */
  encrypted: boolean;
  /** The `encrypt` assertion as stated (absent when omitted). */
  encrypt?: boolean;
  /** The region's disk-encryption CMK when encrypted (K3). */
  kmsKeyId?: string;
  /** Size of the source disk when the snapshot was taken, in GB. */
  sizeGb: number;
  /** Snapshot state at the last read. */
  state: string;
  /** Creation time (ISO-8601). */
  createdAt: string;
}

/** Arguments of SnapshotCopy: A copy of a snapshot in another region. Refused for encrypted snapshots (S4): at preview when the source is known, otherwise at `up` before anything changes. */
export interface SnapshotCopyArgs {
  /** The snapshot to copy. Encrypted snapshots cannot be copied across regions (S4). Changing it replaces the copy. */
  sourceSnapshotId: pulumi.Input<string>;
  /** Region to copy into. Changing it replaces the copy. */
  destinationRegion: pulumi.Input<string>;
  /** Name of the copy (default: the Pulumi resource name, for a copy created without one). Changing it replaces the copy. */
  name?: pulumi.Input<string>;
}

/** Output values of SnapshotCopy (on the resource, each is a `pulumi.Output`). */
export interface SnapshotCopyOutputs {
  /** Id of the copy (also the resource id). */
  snapshotId: string;
  /** The snapshot copied. */
  sourceSnapshotId: string;
  /** Region of the copy. */
  destinationRegion: string;
  /** Name of the copy. */
  name: string;
  /** Region of the copy. */
  region: string;
  /** Always false: encrypted snapshots are never copied across regions (S4). */
  encrypted: boolean;
  /** Size in GB. */
  sizeGb: number;
  /** Snapshot state at the last read. */
  state: string;
  /** Creation time (ISO-8601). */
  createdAt: string;
}

/** Arguments of Image: An image made of snapshots, or a copy of an image in another region, optionally shared with other accounts. Images containing encrypted snapshots cannot be shared (S3) or copied across regions (S4): refused at preview when the inputs show it, otherwise at `up` before anything changes. */
export interface ImageArgs {
  /** Image name. Changing it replaces the image. */
  name: pulumi.Input<string>;
  /** Create the image from these snapshots. Set this or `sourceImageId`. Changing it replaces the image. */
  snapshotIds?: pulumi.Input<pulumi.Input<string>[]>;
  /** Create the image as a copy of this image in `destinationRegion`. Refused for images of encrypted snapshots (S4). Changing it replaces the image. */
  sourceImageId?: pulumi.Input<string>;
  /** Region of the copy; required with `sourceImageId`. Changing it replaces the image. */
  destinationRegion?: pulumi.Input<string>;
  /** Account ids to share the image with. Refused when the image contains encrypted snapshots (S3). Adding accounts is an in-place update; withdrawing one replaces the image (sharing cannot be revoked). */
  sharedWith?: pulumi.Input<pulumi.Input<string>[]>;
}

/** Output values of Image (on the resource, each is a `pulumi.Output`). */
export interface ImageOutputs {
  /** Image id (also the resource id). */
  imageId: string;
  /** Image name. */
  name: string;
  /** Region of the image. */
  region: string;
  /** Snapshots in the image. */
  snapshotIds: string[];
  /** The image this one was copied from, if a copy. */
  sourceImageId?: string;
  /** The `destinationRegion` input as stated. */
  destinationRegion?: string;
  /** Whether the image contains encrypted snapshots (then it can be neither shared (S3) nor copied across regions (S4)). */
  encrypted: boolean;
  /** Accounts the image is shared with. */
  sharedWith: string[];
  /** Creation time (ISO-8601). */
  createdAt: string;
}

/** Arguments of DiskWrite: Writes a small piece of data onto a disk through an attachment, as the instance would: a way for a stack program to seed a disk (e.g. before a migration, M1). Changing the data or offset writes again; deleting the resource leaves the data on the disk. */
export interface DiskWriteArgs {
  /** The attachment to write through, as the instance would (the data lands on the attached disk, encrypted when the disk is). */
  attachmentId: pulumi.Input<string>;
  /** Byte offset on the disk (default 0). Changing it writes again. */
  offset?: pulumi.Input<number>;
  /** Data to write, as UTF-8 text (at most 1 MiB). Set this or `base64`. Changing it writes again. Kept in the Pulumi state only as a secret (encrypted); outputs hold its digest. */
  text?: pulumi.Input<string>;
  /** Data to write, base64-encoded (at most 1 MiB). Set this or `text`. Changing it writes again. Kept in the Pulumi state only as a secret (encrypted); outputs hold its digest. */
  base64?: pulumi.Input<string>;
}

/** Output values of DiskWrite (on the resource, each is a `pulumi.Output`). */
export interface DiskWriteOutputs {
  /** The attachment written through. */
  attachmentId: string;
  /** The disk written to. */
  diskId: string;
  /** Byte offset written at. */
  offset: number;
  /** Number of bytes written. */
  bytes: number;
  /** SHA-256 of the bytes written (hex): what tells a change of the data, which the state does not keep. */
  sha256: string;
}

/** Provider settings after choosing stack config (`encdisk:<key>`), environment or default. */
export interface ProviderConfig {
  /** Engine directory (state database and encrypted block files). Default `~/.encdisk`. A relative path is resolved against the stack program's directory. */
  engineDir: string;
  /** File holding the 32-byte KMS root secret that protects CMK material at rest. Default: the engine's (`ENCDISK_KMS_ROOT_KEY` as hex if set, else `~/.config/encdisk/kms-root.key`, created 0600 on first use). */
  kmsRootKeyFile?: string;
  /** Price of one billed KMS API call in micro-units (B2). Applied when the engine's account is first created. */
  pricePerCallMicros?: number;
  /** Starting account balance in micro-units (B3). Applied when the engine's account is first created. */
  startingBalanceMicros?: number;
  /** host:port that `encdisk serve` listens on, used in attachment endpoints. Default 127.0.0.1:10809. */
  nbdAddress?: string;
}
