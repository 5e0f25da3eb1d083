"use strict";
// M1: a plain disk cannot be encrypted in place (L4), so its data moves to a new encrypted
// disk. Step 1 (pulumi up): a plain disk with data on an instance, and the encrypted copy.
// Step 2 (pulumi config set retirePlain true && pulumi up): the plain disk goes away, and
// the encrypted disk is attached in its place; nothing about the encrypted disk changes.
const pulumi = require("@pulumi/pulumi");
const encdisk = require("pulumi-encdisk");

const config = new pulumi.Config();
const zone = config.get("zone") || "ap-guangzhou-3";
const retirePlain = config.getBoolean("retirePlain") || false;

const kms = new encdisk.KmsAuthorization("kms");
const app = new encdisk.Instance("app", { zone, instanceType: "S5.MEDIUM4", name: "app" });

let plain;
let seeded;
if (!retirePlain) {
  plain = new encdisk.EncryptedDisk("legacy", { zone, sizeGb: 10, encrypt: false, name: "legacy" });
  const plainOnApp = new encdisk.Attachment("legacy-on-app", { diskId: plain.diskId, instanceId: app.instanceId });
  // The application's data, written through the attachment as the instance would.
  seeded = new encdisk.DiskWrite("legacy-data", { attachmentId: plainOnApp.attachmentId, text: "orders.db: 42 rows\n" });
}

// The migration: a new disk holding all of the plain disk's data, encrypted. Once the plain
// disk is retired, sourceDiskId is dropped: removing it changes nothing on this disk.
const secure = new encdisk.EncryptedDisk(
  "secure",
  { zone, encrypt: true, name: "secure", kmsAuthorization: kms.accountId, ...(plain ? { sourceDiskId: plain.diskId } : {}) },
  { dependsOn: seeded ? [seeded] : [] },
);

let secureOnApp;
if (retirePlain) secureOnApp = new encdisk.Attachment("secure-on-app", { diskId: secure.diskId, instanceId: app.instanceId });

exports.secureDiskId = secure.diskId;
exports.secureEncrypted = secure.encrypted;
exports.migratedFrom = secure.sourceDiskId;
if (plain) exports.plainDiskId = plain.diskId;
if (seeded) exports.dataSha256 = seeded.sha256;
if (secureOnApp) exports.secureAttachmentId = secureOnApp.attachmentId;
