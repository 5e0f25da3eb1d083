/** Hook implementations by resource name (the name each serialized hook passes to runtime.hook). */
import { Attachment } from "./attachment";
import { DiskWrite } from "./diskWrite";
import { EncryptedDisk } from "./encryptedDisk";
import { Image } from "./image";
import { Instance } from "./instance";
import { KmsAuthorization } from "./kmsAuthorization";
import { Snapshot } from "./snapshot";
import { SnapshotCopy } from "./snapshotCopy";

export const IMPLEMENTATIONS = { EncryptedDisk, Snapshot, Instance, Attachment, Image, SnapshotCopy, KmsAuthorization, DiskWrite } as const;
export type ResourceName = keyof typeof IMPLEMENTATIONS;
export type Op = "check" | "diff" | "create" | "read" | "update" | "delete";
