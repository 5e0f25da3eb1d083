/**
 * The engine's public API: the local cloud the provider drives. Every method is synchronous
 * (SQLite through better-sqlite3 is), runs as one transaction, and either completes or changes
 * nothing. Errors are `EngineError`s with stable codes (see errors.ts).
 *
 * Sizes are in GB as the real API counts them (1 GB = 2^30 bytes); byte offsets are numbers
 * (safe up to 2^53, far beyond the largest disk).
 */

export const CLOUD_DISK_TYPES = ["CLOUD_BASIC", "CLOUD_PREMIUM", "CLOUD_SSD", "CLOUD_HSSD", "CLOUD_TSSD", "CLOUD_BSSD"] as const;
export const LOCAL_DISK_TYPES = ["LOCAL_BASIC", "LOCAL_SSD"] as const;
export const DISK_TYPES = [...CLOUD_DISK_TYPES, ...LOCAL_DISK_TYPES] as const;
export type DiskType = (typeof DISK_TYPES)[number];
export const DISK_USAGES = ["DATA_DISK", "SYSTEM_DISK"] as const;
export type DiskUsage = (typeof DISK_USAGES)[number];

/** Disk states, named as the real API names them. */
/** `DUMPING` (the real API's "copying disk") marks a migration target whose data copy (M1) has not completed. */
export type DiskState = "UNATTACHED" | "ATTACHING" | "ATTACHED" | "DETACHING" | "EXPANDING" | "ROLLBACKING" | "TORECYCLE" | "DUMPING";
export type SnapshotState = "NORMAL" | "CREATING" | "ROLLBACKING" | "COPYING_FROM_REMOTE";

/** Smallest and largest disk sizes accepted, in GB. */
export const DISK_SIZE_LIMITS = { DATA_DISK: { min: 1, max: 32000 }, SYSTEM_DISK: { min: 1, max: 1024 } } as const;

export interface Disk {
  diskId: string; // "disk-xxxxxxxx"
  name: string;
  zone: string;
  region: string;
  diskType: DiskType;
  diskUsage: DiskUsage;
  sizeGb: number;
  encrypted: boolean;
  /** The region's disk-encryption CMK when encrypted, else null. */
  kmsKeyId: string | null;
  state: DiskState;
  /** The snapshot this disk was created from, if any. */
  snapshotId: string | null;
  /** The disk whose data this disk received at creation (M1 migration), if any. */
  sourceDiskId: string | null;
  /** Id of the current attachment, or null. */
  attachmentId: string | null;
  instanceId: string | null;
  tags: Record<string, string>;
  createdAt: string; // ISO-8601
  /** Bytes of storage the disk's own written units occupy (shared units counted once per owner). */
  usedBytes: number;
}

export interface CreateDiskInput {
  zone: string;
  sizeGb: number;
  diskType?: DiskType; // default CLOUD_PREMIUM
  diskUsage?: DiskUsage; // default DATA_DISK
  /** Omitted: inherited from the snapshot (C2), else false. */
  encrypt?: boolean;
  snapshotId?: string;
  name?: string;
  tags?: Record<string, string>;
  /**
   * Idempotency token: a second create with the same token returns the disk the first one
   * made instead of making another (a retried `pulumi up` after a crash converges).
   */
  clientToken?: string;
}

export interface Snapshot {
  snapshotId: string; // "snap-xxxxxxxx"
  name: string;
  diskId: string; // the source disk (may since have been deleted)
  zone: string;
  region: string;
  encrypted: boolean;
  kmsKeyId: string | null;
  sizeGb: number;
  state: SnapshotState;
  /** Set when this snapshot is a cross-region copy. */
  copiedFromSnapshotId: string | null;
  createdAt: string;
  /**
   * Bytes of written data the snapshot references. They are shared copy-on-write with its disk
   * (and other snapshots): taking a snapshot copies no data, only block-map rows.
   */
  usedBytes: number;
}

export interface Instance {
  instanceId: string; // "ins-xxxxxxxx"
  name: string;
  zone: string;
  region: string;
  instanceType: string;
  localStorage: boolean;
  createdAt: string;
}

export interface Attachment {
  attachmentId: string; // "att-xxxxxxxx"
  diskId: string;
  instanceId: string;
  zone: string;
  encrypted: boolean;
  /** Capacity the instance sees, fixed at attach time for encrypted disks (L6). */
  capacityBytes: number;
  capacityGb: number;
  /** The disk's current size; differs from capacityGb after growing an attached encrypted disk (L6). */
  diskSizeGb: number;
  /** True when the disk grew since attach and the instance needs a detach + re-attach to see it (L6). */
  reattachRequired: boolean;
  attachedAt: string;
  /**
   * Where `encdisk serve` exposes this attachment as an NBD export with TLS required (W2):
   * `nbds://<attachmentId>@HOST:PORT/<attachmentId>`: the export name is the attachment id, and the
   * user part is the TLS-PSK identity (libnbd takes the TLS username from it).
   */
  endpoint: string;
  /** TLS-PSK identity for the export (equals the attachment id). */
  pskIdentity: string;
  /** Path of the 0600 key file in psktool format (`identity:hexkey`), removed on detach. */
  pskFile: string;
}

export interface Image {
  imageId: string; // "img-xxxxxxxx"
  name: string;
  region: string;
  snapshotIds: string[];
  encrypted: boolean;
  sharedWith: string[];
  copiedFromImageId: string | null;
  createdAt: string;
}

export interface KmsKey {
  keyId: string; // UUID
  region: string;
  alias: string;
  description: string;
  keyUsage: "ENCRYPT_DECRYPT";
  keyState: "Enabled";
  /** Always "CBS": created and owned by the disk service; a user cannot choose, delete or change it (K5). */
  owner: "CBS";
  origin: "TENCENT_KMS";
  createdAt: string;
}

export interface Region {
  region: string;
  zones: string[];
}

export interface KmsUsage {
  region: string;
  /** Billable KMS API calls made in the region (B2). */
  calls: number;
  /** Sum charged for them, in micro-units of the account currency. */
  chargedMicros: number;
}

export interface AuditEntry {
  seq: number;
  time: string;
  region: string;
  /** The management operation: CreateDisk, AttachDisk, DetachDisk, CreateSnapshot, ApplySnapshot, ... */
  operation: string;
  resourceId: string;
  /** The KMS API called: GenerateDataKey, Decrypt, Encrypt, CreateKey, ... */
  kmsApi: string;
  billable: boolean;
  priceMicros: number;
}

export interface Account {
  accountId: string;
  kmsAuthorized: boolean;
  balanceMicros: number;
  pricePerCallMicros: number;
}

export interface MigrateProgress {
  copiedBytes: number;
  totalBytes: number;
  /** Units skipped because they were never written (holes stay holes). */
  skippedBytes: number;
}

export interface EngineOptions {
  /** Engine directory (state database and block files). */
  dir: string;
  /**
   * KMS root secret protecting CMK material at rest: 32 bytes. When omitted it comes from
   * ENCDISK_KMS_ROOT_KEY (hex), else the file at `kmsRootKeyFile`, else
   * ENCDISK_KMS_ROOT_KEY_FILE, else ~/.config/encdisk/kms-root.key (created 0600 on first use).
   */
  kmsRootKey?: Buffer;
  kmsRootKeyFile?: string;
  /** Price of one KMS API call, in micro-units; applied when the account is first created. */
  pricePerCallMicros?: number;
  /** Starting balance, in micro-units; applied when the account is first created. */
  startingBalanceMicros?: number;
  /**
   * Bound of the in-memory cache of decrypted units read through attachments, in MiB (default
   * ENCDISK_READ_CACHE_MIB, else 1024; 0 disables). Plaintext lives there only while served:
   * it is zeroed on eviction, detach, releaseKeys() and close().
   */
  readCacheMib?: number;
  /** host:port that `encdisk serve` listens on, used in attachment endpoints. Default ENCDISK_NBD_ADDRESS or 127.0.0.1:10809. */
  nbdAddress?: string;
}

/** A resource with an owner tag (see Engine.owned). */
export interface OwnedResource {
  resourceId: string;
  kind: "disk" | "snapshot" | "instance" | "attachment" | "image";
  /** Who created it: for the Pulumi provider, the resource's URN. */
  owner: string;
  createdAt: string;
}

export interface Engine {
  readonly dir: string;
  close(): void;

  // Geography
  listRegions(): Region[];
  regionOfZone(zone: string): string;

  // Account, KMS authorization (O2), balance (B3)
  getAccount(): Account;
  authorizeKms(): Account;
  topUp(amountMicros: number): Account;
  setPricePerCall(priceMicros: number): Account;

  // KMS (K2, K5)
  listKeys(region?: string): KmsKey[];
  describeKey(keyId: string): KmsKey;
  /** Always refused (K5): the disk-encryption CMK is managed by the service. */
  deleteKey(keyId: string): never;
  disableKey(keyId: string): never;
  rotateKey(keyId: string): never;
  exportKeyMaterial(keyId: string): never;
  kmsUsage(region?: string): KmsUsage[];
  auditLog(filter?: { region?: string; resourceId?: string; sinceSeq?: number }): AuditEntry[];

  // Disks
  createDisk(input: CreateDiskInput): Disk;
  getDisk(diskId: string): Disk;
  findDisk(diskId: string): Disk | null;
  listDisks(filter?: { zone?: string; region?: string }): Disk[];
  resizeDisk(diskId: string, sizeGb: number): Disk;
  renameDisk(diskId: string, name: string, tags?: Record<string, string>): Disk;
  /** Always refused (L4/L5): there is no in-place conversion of encryption state. */
  setDiskEncryption(diskId: string, encrypt: boolean): never;
  deleteDisk(diskId: string): void;
  /** M1: copy all data of `sourceDiskId` onto `targetDiskId` (unattached, size >= source), holes kept. */
  copyDiskData(sourceDiskId: string, targetDiskId: string, onProgress?: (p: MigrateProgress) => void): MigrateProgress;
  /** M1: create a disk of the other encryption kind holding the source's data. */
  /** `owner`: tag the new disk with it in the transaction that creates it (before the copy). */
  migrateDisk(input: { sourceDiskId: string; encrypt: boolean; zone?: string; diskType?: DiskType; sizeGb?: number; name?: string; tags?: Record<string, string>; clientToken?: string; owner?: string }, onProgress?: (p: MigrateProgress) => void): Disk;
  /** M1: finishes an interrupted migration onto a DUMPING disk (copies the source again, then marks it done). */
  resumeMigration(targetDiskId: string, onProgress?: (p: MigrateProgress) => void): Disk;

  // Snapshots
  createSnapshot(input: { diskId: string; name?: string; clientToken?: string }): Snapshot;
  getSnapshot(snapshotId: string): Snapshot;
  findSnapshot(snapshotId: string): Snapshot | null;
  listSnapshots(filter?: { diskId?: string; region?: string }): Snapshot[];
  /** Always refused (S1/S2). */
  setSnapshotEncryption(snapshotId: string, encrypt: boolean): never;
  deleteSnapshot(snapshotId: string): void;
  /** Roll back (ApplySnapshot): only onto the snapshot's own disk, only while unattached. */
  applySnapshot(snapshotId: string, diskId: string): Disk;
  /** Copy to another region (S4: refused for encrypted snapshots). */
  /** `owner`: tag the copy with it in the transaction that publishes it (as `owned` does for one-transaction creates). */
  copySnapshot(input: { snapshotId: string; destinationRegion: string; name?: string; owner?: string }): Snapshot;

  // Instances
  createInstance(input: { zone: string; instanceType: string; localStorage?: boolean; name?: string; clientToken?: string }): Instance;
  getInstance(instanceId: string): Instance;
  findInstance(instanceId: string): Instance | null;
  listInstances(): Instance[];
  deleteInstance(instanceId: string): void;

  // Attachments (C1, L6, L7)
  attachDisk(input: { diskId: string; instanceId: string }): Attachment;
  detachDisk(attachmentIdOrDiskId: string): void;
  getAttachment(attachmentId: string): Attachment;
  findAttachment(attachmentId: string): Attachment | null;
  listAttachments(filter?: { instanceId?: string; diskId?: string }): Attachment[];

  /** Read `length` bytes at `offset` through an attachment, as the instance would (bounded by its capacity). */
  read(attachmentId: string, offset: number, length: number): Buffer;
  /** Write `data` at `offset` through an attachment. Durable against a process kill when it returns. */
  write(attachmentId: string, offset: number, data: Buffer): void;
  /** `read` as a Promise, for servers that keep several requests in flight (the NBD server). */
  readAsync(attachmentId: string, offset: number, length: number): Promise<Buffer>;
  /** `write` as a Promise, for servers that keep several requests in flight; a failed write changes nothing. */
  writeAsync(attachmentId: string, offset: number, data: Buffer): Promise<void>;
  /** Zero a range (unmaps whole units; partial units are written as zeros). No 64 MiB limit: it may cover the whole device, applied in bounded steps. */
  writeZeroes(attachmentId: string, offset: number, length: number): void;
  /** Discard a range (same effect as writeZeroes here: discarded ranges read as zeros). */
  trim(attachmentId: string, offset: number, length: number): void;
  /** Make everything written so far durable against power loss (fsync data and state). */
  flush(attachmentId: string): void;
  /** `writeZeroes` / `trim` / `flush` as Promises that never block the event loop on another process's write lock (the NBD server). */
  writeZeroesAsync(attachmentId: string, offset: number, length: number): Promise<void>;
  trimAsync(attachmentId: string, offset: number, length: number): Promise<void>;
  flushAsync(attachmentId: string): Promise<void>;
  /**
   * Release (zero) every working key and cached plaintext this process holds, or only those of
   * one attachment's lineage (derived again on its next I/O). Called by servers when the last
   * client leaves, and per export when its last client left (after a grace period).
   */
  releaseKeys(attachmentId?: string): void;

  // Owner tags
  /** Runs `make` (a create) and tags what it made with `owner`, in one transaction: both or neither. */
  owned<T>(owner: string, make: () => T, idOf: (made: T) => string): T;
  /** Tags an existing resource with `owner` (for creates that run several transactions, e.g. migrateDisk). */
  setOwner(resourceId: string, owner: string): void;
  /** Existing resources whose owner starts with `ownerPrefix`, oldest first. */
  listOwned(ownerPrefix?: string): OwnedResource[];

  // Images (S3, S4)
  createImage(input: { name: string; snapshotIds: string[]; clientToken?: string }): Image;
  getImage(imageId: string): Image;
  findImage(imageId: string): Image | null;
  listImages(): Image[];
  shareImage(imageId: string, accountIds: string[]): Image;
  /** `owner`: tag the image and its snapshot copies with it in the transaction that publishes them. */
  copyImage(input: { imageId: string; destinationRegion: string; name?: string; owner?: string }): Image;
  deleteImage(imageId: string): void;

  /** Scan the engine directory for plaintext key material (DK, CMK, root key); returns findings. */
  verifyNoKeyMaterial(): { filesScanned: number; bytesScanned: number; findings: string[] };
  /** Structural invariant check of the state and block files; returns problems found (empty = healthy). */
  check(): { problems: string[]; disks: number; snapshots: number; units: number };
}
