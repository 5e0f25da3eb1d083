// The basic stack in TypeScript: every Args and output is typed (see provider/types.generated.ts),
// and each property's description shows on hover in an editor.
import * as pulumi from "@pulumi/pulumi";
import * as encdisk from "pulumi-encdisk";

const config = new pulumi.Config();
const zone = config.get("zone") ?? "ap-guangzhou-3";
const dataSizeGb = config.getNumber("dataSizeGb") ?? 20;

// O2: the disk service may use KMS (once per account).
const kms = new encdisk.KmsAuthorization("kms");

const web = new encdisk.Instance("web", { zone, instanceType: "S5.MEDIUM4" });

// No `name`: the disk is named after the resource ("data" in `encdisk disks`).
const dataArgs: encdisk.EncryptedDiskArgs = { zone, sizeGb: dataSizeGb, diskType: "CLOUD_PREMIUM", tags: { app: "web" } };
const data = new encdisk.EncryptedDisk("data", dataArgs, { dependsOn: [kms] });

const attachment = new encdisk.Attachment("data-on-web", { diskId: data.diskId, instanceId: web.instanceId });
const nightly = new encdisk.Snapshot("nightly", { diskId: data.diskId });

// Created from an encrypted snapshot: encrypted too (C2).
const restored = new encdisk.EncryptedDisk("restored", { zone, snapshotId: nightly.snapshotId });

export const dataDiskId: pulumi.Output<string> = data.diskId;
export const dataEncrypted: pulumi.Output<boolean> = data.encrypted;
export const kmsKeyId: pulumi.Output<string | undefined> = data.kmsKeyId;
export const endpoint: pulumi.Output<string> = attachment.endpoint;
export const restoredEncrypted: pulumi.Output<boolean> = restored.encrypted;
export const kmsCallsBilled: pulumi.Output<number> = encdisk.getKmsUsage({ after: [data, attachment, nightly, restored] }).calls;
