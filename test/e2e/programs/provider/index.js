"use strict";
// E2E program (test/e2e/provider.e2e.ts). No dependsOn anywhere: encrypted disks are ordered
// after the KMS authorization through their `kmsAuthorization` input (issue 13.4).
//   attInstance  web1 | web2 | west     the instance the attachment `att` is on
//   attDisk      data | other           the disk it attaches
//   dataZone     zone of the `data` disk (default ap-guangzhou-3)
//   dataType     diskType of the `data` disk (default CLOUD_PREMIUM)
//   dataSizeGb   size of the `data` disk (default 10)
//   bulk         number of extra encrypted disks `bulk-N` (default 0)
//   kmsKeyId     passed to `other` as is (refused: K5/O3)
const pulumi = require("@pulumi/pulumi");
const encdisk = require("pulumi-encdisk");

const config = new pulumi.Config();
const zone = "ap-guangzhou-3";
const kms = new encdisk.KmsAuthorization("kms");
const auth = kms.accountId;

const instances = {
  web1: new encdisk.Instance("web1", { zone, instanceType: "S5.MEDIUM4", name: "web1" }),
  web2: new encdisk.Instance("web2", { zone, instanceType: "S5.MEDIUM4", name: "web2" }),
  west: new encdisk.Instance("west", { zone: "ap-guangzhou-4", instanceType: "S5.MEDIUM4", name: "west" }),
};
const data = new encdisk.EncryptedDisk("data", {
  zone: config.get("dataZone") ?? zone,
  diskType: config.get("dataType") ?? "CLOUD_PREMIUM",
  sizeGb: config.getNumber("dataSizeGb") ?? 10,
  name: "data",
  kmsAuthorization: auth,
});
const kmsKeyId = config.get("kmsKeyId");
const other = new encdisk.EncryptedDisk("other", { zone, sizeGb: 10, name: "other", kmsAuthorization: auth, ...(kmsKeyId ? { kmsKeyId } : {}) });
const disks = { data, other };

const att = new encdisk.Attachment("att", {
  diskId: disks[config.get("attDisk") ?? "data"].diskId,
  instanceId: instances[config.get("attInstance") ?? "web1"].instanceId,
});

const bulk = [];
for (let n = 0; n < (config.getNumber("bulk") ?? 0); n++) bulk.push(new encdisk.EncryptedDisk(`bulk-${n}`, { zone, sizeGb: 1, name: `bulk-${n}`, kmsAuthorization: auth }));

exports.dataDiskId = data.diskId;
exports.otherDiskId = other.diskId;
exports.attachmentId = att.attachmentId;
exports.attachedTo = att.instanceId;
exports.attachedDisk = att.diskId;
exports.dataReattachRequired = data.reattachRequired;
exports.attReattachRequired = att.reattachRequired;
exports.bulkDiskIds = bulk.map((d) => d.diskId);
exports.instanceIds = Object.fromEntries(Object.entries(instances).map(([k, v]) => [k, v.instanceId]));
