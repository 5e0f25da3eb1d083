/**
 * pulumi-encdisk: encrypted cloud disks as code. Each resource is a `pulumi.dynamic.Resource`
 * (type token `pulumi-nodejs:dynamic/encdisk:<Name>`) whose hooks drive the embedded engine
 * in the directory named by the provider configuration (see config.ts).
 */
export { EncryptedDisk, EncryptedDiskArgs, EncryptedDiskOutputs } from "./resources/encryptedDisk";
export { Snapshot, SnapshotArgs, SnapshotOutputs } from "./resources/snapshot";
export { Instance, InstanceArgs, InstanceOutputs } from "./resources/instance";
export { Attachment, AttachmentArgs, AttachmentOutputs } from "./resources/attachment";
export { Image, ImageArgs, ImageOutputs } from "./resources/image";
export { SnapshotCopy, SnapshotCopyArgs, SnapshotCopyOutputs } from "./resources/snapshotCopy";
export { DiskWrite, DiskWriteArgs, DiskWriteOutputs } from "./resources/diskWrite";
export { KmsAuthorization, KmsAuthorizationArgs, KmsAuthorizationOutputs } from "./resources/kmsAuthorization";
export { CONFIG_KEYS, defaultEngineDir, resolveConfig } from "./config";
export type { ProviderConfig, DiskType, DiskUsage } from "./types.generated";
export { getKmsUsage, KmsUsageArgs, KmsUsageResult } from "./usage";
