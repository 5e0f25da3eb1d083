/**
 * The provider objects Pulumi serializes into every resource's state (`__provider`).
 *
 * Each hook captures nothing and loads the implementation by package name when called: the
 * dynamic-provider host evaluates this text with `require` rooted at the stack program's
 * directory, so a relative path would fail, and a captured handle would be frozen into the
 * state. The text must stay byte-for-byte stable across releases (a change makes the host
 * treat every resource as changed); test/provider/serialization.test.ts pins it.
 *
 * Do not reformat this file.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
import type * as pulumi from "@pulumi/pulumi";

/** Hooks of EncryptedDisk. */
export const EncryptedDiskProvider: pulumi.dynamic.ResourceProvider = {
  async configure(req) { require("pulumi-encdisk/dist/provider/resources/runtime").configure(req.config); },
  async check(olds, news) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("EncryptedDisk", "check", [olds, news]); },
  async diff(id, olds, news) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("EncryptedDisk", "diff", [id, olds, news]); },
  async create(inputs) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("EncryptedDisk", "create", [inputs]); },
  async read(id, props) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("EncryptedDisk", "read", [id, props]); },
  async update(id, olds, news) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("EncryptedDisk", "update", [id, olds, news]); },
  async delete(id, props) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("EncryptedDisk", "delete", [id, props]); },
};

/** Hooks of Snapshot. */
export const SnapshotProvider: pulumi.dynamic.ResourceProvider = {
  async configure(req) { require("pulumi-encdisk/dist/provider/resources/runtime").configure(req.config); },
  async check(olds, news) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("Snapshot", "check", [olds, news]); },
  async diff(id, olds, news) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("Snapshot", "diff", [id, olds, news]); },
  async create(inputs) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("Snapshot", "create", [inputs]); },
  async read(id, props) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("Snapshot", "read", [id, props]); },
  async update(id, olds, news) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("Snapshot", "update", [id, olds, news]); },
  async delete(id, props) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("Snapshot", "delete", [id, props]); },
};

/** Hooks of Instance. */
export const InstanceProvider: pulumi.dynamic.ResourceProvider = {
  async configure(req) { require("pulumi-encdisk/dist/provider/resources/runtime").configure(req.config); },
  async check(olds, news) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("Instance", "check", [olds, news]); },
  async diff(id, olds, news) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("Instance", "diff", [id, olds, news]); },
  async create(inputs) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("Instance", "create", [inputs]); },
  async read(id, props) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("Instance", "read", [id, props]); },
  async update(id, olds, news) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("Instance", "update", [id, olds, news]); },
  async delete(id, props) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("Instance", "delete", [id, props]); },
};

/** Hooks of Attachment. */
export const AttachmentProvider: pulumi.dynamic.ResourceProvider = {
  async configure(req) { require("pulumi-encdisk/dist/provider/resources/runtime").configure(req.config); },
  async check(olds, news) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("Attachment", "check", [olds, news]); },
  async diff(id, olds, news) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("Attachment", "diff", [id, olds, news]); },
  async create(inputs) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("Attachment", "create", [inputs]); },
  async read(id, props) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("Attachment", "read", [id, props]); },
  async update(id, olds, news) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("Attachment", "update", [id, olds, news]); },
  async delete(id, props) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("Attachment", "delete", [id, props]); },
};

/** Hooks of Image. */
export const ImageProvider: pulumi.dynamic.ResourceProvider = {
  async configure(req) { require("pulumi-encdisk/dist/provider/resources/runtime").configure(req.config); },
  async check(olds, news) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("Image", "check", [olds, news]); },
  async diff(id, olds, news) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("Image", "diff", [id, olds, news]); },
  async create(inputs) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("Image", "create", [inputs]); },
  async read(id, props) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("Image", "read", [id, props]); },
  async update(id, olds, news) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("Image", "update", [id, olds, news]); },
  async delete(id, props) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("Image", "delete", [id, props]); },
};

/** Hooks of SnapshotCopy. */
export const SnapshotCopyProvider: pulumi.dynamic.ResourceProvider = {
  async configure(req) { require("pulumi-encdisk/dist/provider/resources/runtime").configure(req.config); },
  async check(olds, news) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("SnapshotCopy", "check", [olds, news]); },
  async diff(id, olds, news) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("SnapshotCopy", "diff", [id, olds, news]); },
  async create(inputs) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("SnapshotCopy", "create", [inputs]); },
  async read(id, props) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("SnapshotCopy", "read", [id, props]); },
  async update(id, olds, news) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("SnapshotCopy", "update", [id, olds, news]); },
  async delete(id, props) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("SnapshotCopy", "delete", [id, props]); },
};

/** Hooks of KmsAuthorization. */
export const KmsAuthorizationProvider: pulumi.dynamic.ResourceProvider = {
  async configure(req) { require("pulumi-encdisk/dist/provider/resources/runtime").configure(req.config); },
  async check(olds, news) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("KmsAuthorization", "check", [olds, news]); },
  async diff(id, olds, news) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("KmsAuthorization", "diff", [id, olds, news]); },
  async create(inputs) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("KmsAuthorization", "create", [inputs]); },
  async read(id, props) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("KmsAuthorization", "read", [id, props]); },
  async update(id, olds, news) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("KmsAuthorization", "update", [id, olds, news]); },
  async delete(id, props) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("KmsAuthorization", "delete", [id, props]); },
};

/** Hooks of DiskWrite. */
export const DiskWriteProvider: pulumi.dynamic.ResourceProvider = {
  async configure(req) { require("pulumi-encdisk/dist/provider/resources/runtime").configure(req.config); },
  async check(olds, news) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("DiskWrite", "check", [olds, news]); },
  async diff(id, olds, news) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("DiskWrite", "diff", [id, olds, news]); },
  async create(inputs) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("DiskWrite", "create", [inputs]); },
  async read(id, props) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("DiskWrite", "read", [id, props]); },
  async update(id, olds, news) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("DiskWrite", "update", [id, olds, news]); },
  async delete(id, props) { return require("pulumi-encdisk/dist/provider/resources/runtime").hook("DiskWrite", "delete", [id, props]); },
};

/** Every provider object by resource name. */
export const PROVIDERS = {
  EncryptedDisk: EncryptedDiskProvider,
  Snapshot: SnapshotProvider,
  Instance: InstanceProvider,
  Attachment: AttachmentProvider,
  Image: ImageProvider,
  SnapshotCopy: SnapshotCopyProvider,
  KmsAuthorization: KmsAuthorizationProvider,
  DiskWrite: DiskWriteProvider,
} as const;
