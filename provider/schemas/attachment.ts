import { z } from "zod";
import * as c from "./common";

export const AttachmentInputs = z
  .object({
    diskId: c.diskId.meta({ description: "The disk to attach. Changing it replaces the attachment, detaching first (a disk sits on one instance at a time).", willReplaceOnChanges: true }),
    instanceId: c.instanceId.meta({ description: "The instance to attach to, in the disk's zone (C1), without local storage when the disk is encrypted (L7). Changing it replaces the attachment, detaching first.", willReplaceOnChanges: true }),
    expectedCapacityGb: c.sizeGb.optional().meta({
      description: "Optional: the capacity the instance should see. When it changes the attachment is replaced (detach, then attach), which is how an instance sees a grown encrypted disk (L6). Pass the same value as the disk's `sizeGb`.",
      willReplaceOnChanges: true,
    }),
  })
  .strict();

export const AttachmentOutputs = z
  .object({
    attachmentId: z.string().meta({ description: "Attachment id (also the resource id)." }),
    diskId: c.diskId.meta({ description: "The attached disk." }),
    instanceId: c.instanceId.meta({ description: "The instance." }),
    expectedCapacityGb: c.sizeGb.optional().meta({ description: "The `expectedCapacityGb` input as stated." }),
    zone: c.zone.meta({ description: "Zone of the disk and instance." }),
    encrypted: z.boolean().meta({ description: "Whether the attached disk is encrypted (data in transit to the instance is then encrypted too: W2)." }),
    capacityGb: z.number().meta({ description: "Capacity the instance sees, in GB, fixed at attach time for encrypted disks (L6)." }),
    capacityBytes: z.number().meta({ description: "Capacity the instance sees, in bytes." }),
    diskSizeGb: z.number().meta({ description: "The disk's size at the last read, in GB." }),
    reattachRequired: z.boolean().meta({ description: "L6: true when the disk grew since attach and the instance needs a detach and attach to see it." }),
    attachedAt: z.string().meta({ description: "Attach time (ISO-8601)." }),
    endpoint: z.string().meta({ description: "NBD-over-TLS URI where `encdisk serve` exposes the attachment (W2)." }),
    pskIdentity: z.string().meta({ description: "TLS-PSK identity for the endpoint." }),
    pskFile: z.string().meta({ description: "Path of the 0600 key file holding the PSK (the key itself never enters Pulumi state)." }),
  })
  .strict();

export type AttachmentInputs = z.input<typeof AttachmentInputs>;
export type AttachmentOutputs = z.output<typeof AttachmentOutputs>;

export const AttachmentSchema: c.ResourceSchema = {
  name: "Attachment",
  description: "Attaches a disk to an instance. Attaching or detaching an encrypted disk is a billed KMS call (B2). Any change replaces the attachment with delete-before-replace.",
  inputs: AttachmentInputs,
  outputs: AttachmentOutputs,
};
