import { z } from "zod";
import type { ResourceSchema } from "./common";

/** At most this many bytes per DiskWrite: it seeds data, it is not a transfer tool. */
export const DISK_WRITE_MAX_BYTES = 1024 * 1024;

export const DiskWriteInputs = z
  .object({
    attachmentId: z.string().regex(/^att-[0-9a-z]+$/, "an attachment id looks like att-1a2b3c4d").meta({
      description: "The attachment to write through, as the instance would (the data lands on the attached disk, encrypted when the disk is).",
    }),
    offset: z.number().int().min(0).optional().meta({ description: "Byte offset on the disk (default 0). Changing it writes again.", default: 0 }),
    text: z.string().optional().meta({ description: "Data to write, as UTF-8 text (at most 1 MiB). Set this or `base64`. Changing it writes again. Kept in the Pulumi state only as a secret (encrypted); outputs hold its digest." }),
    base64: z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, "base64").optional().meta({ description: "Data to write, base64-encoded (at most 1 MiB). Set this or `text`. Changing it writes again. Kept in the Pulumi state only as a secret (encrypted); outputs hold its digest." }),
  })
  .strict();

export const DiskWriteOutputs = z
  .object({
    attachmentId: z.string().meta({ description: "The attachment written through." }),
    diskId: z.string().meta({ description: "The disk written to." }),
    offset: z.number().meta({ description: "Byte offset written at." }),
    // No echo of `text`/`base64` (D13): the data stays on the encrypted disk; the state keeps a
    // digest, and the inputs themselves are Pulumi secrets (encrypted in the state).
    bytes: z.number().meta({ description: "Number of bytes written." }),
    sha256: z.string().meta({ description: "SHA-256 of the bytes written (hex): what tells a change of the data, which the state does not keep." }),
  })
  .strict();

export type DiskWriteInputs = z.input<typeof DiskWriteInputs>;
export type DiskWriteOutputs = z.output<typeof DiskWriteOutputs>;

export const DiskWriteSchema: ResourceSchema = {
  name: "DiskWrite",
  description:
    "Writes a small piece of data onto a disk through an attachment, as the instance would: a way for a stack program to seed a disk (e.g. before a migration, M1). Changing the data or offset writes again; deleting the resource leaves the data on the disk.",
  inputs: DiskWriteInputs,
  outputs: DiskWriteOutputs,
};
