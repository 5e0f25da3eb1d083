/** The zod schemas: the one source of truth for input validation, TypeScript types and schema.json. */
export * from "./common";
export * from "./encryptedDisk";
export * from "./snapshot";
export * from "./instance";
export * from "./attachment";
export * from "./image";
export * from "./snapshotCopy";
export * from "./kmsAuthorization";
export * from "./diskWrite";
export * from "./config";

import type { ResourceSchema } from "./common";
import { EncryptedDiskSchema } from "./encryptedDisk";
import { SnapshotSchema } from "./snapshot";
import { InstanceSchema } from "./instance";
import { AttachmentSchema } from "./attachment";
import { ImageSchema } from "./image";
import { SnapshotCopySchema } from "./snapshotCopy";
import { KmsAuthorizationSchema } from "./kmsAuthorization";
import { DiskWriteSchema } from "./diskWrite";

/** Every resource, in documentation order. */
export const RESOURCE_SCHEMAS: readonly ResourceSchema[] = [
  KmsAuthorizationSchema,
  InstanceSchema,
  EncryptedDiskSchema,
  AttachmentSchema,
  SnapshotSchema,
  SnapshotCopySchema,
  ImageSchema,
  DiskWriteSchema,
];
