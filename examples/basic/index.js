"use strict";
// An instance with an encrypted data disk attached, a snapshot of the disk and a second disk
// restored from it, on the local encdisk engine. Outputs include the KMS calls billed (B2).
const pulumi = require("@pulumi/pulumi");
const encdisk = require("pulumi-encdisk");

const config = new pulumi.Config();
const zone = config.get("zone") || "ap-guangzhou-3";
const dataSizeGb = config.getNumber("dataSizeGb") || 20;
// Try `pulumi config set encryptData false` after the first up: the preview refuses it (L5).
const encryptData = config.getBoolean("encryptData") ?? true;

// O2: KMS must be authorized before the account's first encrypted disk. Passing its id as the
// disk's `kmsAuthorization` input makes Pulumi create it first (no dependsOn needed).
const kms = new encdisk.KmsAuthorization("kms");

const web = new encdisk.Instance("web", { zone, instanceType: "S5.MEDIUM4", name: "web" });

// Encrypted (the default too). Growing dataSizeGb later is an in-place update; changing
// encryptData on the existing disk is refused at preview (L4/L5), never a replacement.
const data = new encdisk.EncryptedDisk("data", { zone, sizeGb: dataSizeGb, encrypt: encryptData, name: "data", tags: { app: "basic" }, kmsAuthorization: kms.accountId });

// L6: after the disk grows, the instance keeps seeing the old capacity (output capacityGb,
// `encdisk attachments`: REATTACH) until the disk is detached and attached again. To re-attach,
// `pulumi config set attachedCapacityGb <new size>`: a changed expectedCapacityGb replaces the
// attachment (detach, then attach). Unset, the attachment is left alone when the disk grows.
const attachedCapacityGb = config.getNumber("attachedCapacityGb");
const attachment = new encdisk.Attachment("data-on-web", {
  diskId: data.diskId,
  instanceId: web.instanceId,
  ...(attachedCapacityGb !== undefined ? { expectedCapacityGb: attachedCapacityGb } : {}),
});

const snapshot = new encdisk.Snapshot("data-snapshot", { diskId: data.diskId, name: "data-snapshot" }, { dependsOn: [attachment] });

// C2: created from an encrypted snapshot, so encrypted without saying so.
const restored = new encdisk.EncryptedDisk("restored", { zone, snapshotId: snapshot.snapshotId, name: "restored" });

const usage = encdisk.getKmsUsage({ after: [kms, web, data, attachment, snapshot, restored] });

exports.instanceId = web.instanceId;
exports.dataDiskId = data.diskId;
exports.dataEncrypted = data.encrypted;
exports.kmsKeyId = data.kmsKeyId;
exports.attachmentEndpoint = attachment.endpoint;
exports.capacityGb = attachment.capacityGb;
exports.snapshotId = snapshot.snapshotId;
exports.restoredDiskId = restored.diskId;
exports.restoredEncrypted = restored.encrypted;
exports.kmsCallsBilled = usage.calls;
exports.kmsChargedMicros = usage.chargedMicros;
exports.balanceMicros = usage.balanceMicros;
