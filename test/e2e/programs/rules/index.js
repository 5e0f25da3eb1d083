"use strict";
// E2E program (test/e2e/rules-migrate.e2e.ts): a plain disk and an encrypted disk next to an
// instance with local storage. Config flips what a preview must refuse:
//   plainEncrypt=true   turn the plain disk into an encrypted one (L4)
//   attachSecret=true   attach the encrypted disk to the local-storage instance (L7)
//   restoreSnapshotId   roll the encrypted disk back to its snapshot (ApplySnapshot: a KMS Decrypt)
const pulumi = require("@pulumi/pulumi");
const encdisk = require("pulumi-encdisk");

const config = new pulumi.Config();
const zone = "ap-guangzhou-3";
const plainEncrypt = config.getBoolean("plainEncrypt") ?? false;
const attachSecret = config.getBoolean("attachSecret") ?? false;

const kms = new encdisk.KmsAuthorization("kms");
// IT5 instances have local storage.
const local = new encdisk.Instance("local", { zone, instanceType: "IT5.4XLARGE64", name: "local" });

const plain = new encdisk.EncryptedDisk("plain", { zone, sizeGb: 10, encrypt: plainEncrypt, name: "plain" });
const restoreSnapshotId = config.get("restoreSnapshotId");
const secret = new encdisk.EncryptedDisk(
  "secret",
  { zone, sizeGb: 10, encrypt: true, name: "secret", ...(restoreSnapshotId ? { restoreSnapshotId } : {}) },
  { dependsOn: [kms] },
);
const secretSnap = new encdisk.Snapshot("secret-snap", { diskId: secret.diskId, name: "secret-snap" });

// A plain disk may sit on a local-storage instance; L7 forbids only encrypted ones.
const plainOnLocal = new encdisk.Attachment("plain-on-local", { diskId: plain.diskId, instanceId: local.instanceId });
if (attachSecret) new encdisk.Attachment("secret-on-local", { diskId: secret.diskId, instanceId: local.instanceId });

exports.localInstanceId = local.instanceId;
exports.localStorage = local.localStorage;
exports.plainDiskId = plain.diskId;
exports.secretDiskId = secret.diskId;
exports.secretSnapshotId = secretSnap.snapshotId;
exports.plainAttachmentId = plainOnLocal.attachmentId;
