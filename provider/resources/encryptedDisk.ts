import * as pulumi from "@pulumi/pulumi";
import { EncryptedDiskOutputs as EncryptedDiskOutputsSchema } from "../schemas/encryptedDisk";
import { EncryptedDiskProvider } from "./providers";
import { OutputsOf, propsWithOutputs } from "./types";
import type { EncryptedDiskArgs, EncryptedDiskOutputs } from "../types.generated";

export type { EncryptedDiskArgs, EncryptedDiskOutputs };

/** The output that equals the resource id: exposed through `id` (see the constructor). */
const ID_KEY = "diskId";
const OUTPUT_KEYS = Object.keys(EncryptedDiskOutputsSchema.shape).filter((k) => k !== ID_KEY);

// Declaration merging gives the class one typed `Output` per output property, with no field
// initializers (a class field would overwrite the value Pulumi sets during construction).
// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface EncryptedDisk extends OutputsOf<EncryptedDiskOutputs> {}

/**
 * A cloud data disk, encrypted by default. Encryption is fixed for its life (L4, L5: a change is refused at preview); growing `sizeGb` updates in place; zone, type, usage or a different `snapshotId` replace it; `restoreSnapshotId` rolls it back; `sourceDiskId` migrates a disk of the other kind (M1); `adoptDiskId` adopts an existing disk.
 *
 * Type token: `pulumi-nodejs:dynamic/encdisk:EncryptedDisk`.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class EncryptedDisk extends pulumi.dynamic.Resource {
  constructor(name: string, args: EncryptedDiskArgs, opts?: pulumi.CustomResourceOptions) {
    // An adopted disk keeps the name it has unless one is stated: no default name for it.
    super(EncryptedDiskProvider, name, propsWithOutputs(args, OUTPUT_KEYS, { type: "EncryptedDisk", name, opts, named: args?.adoptDiskId === undefined }), opts, "encdisk", "EncryptedDisk");
    // Pulumi keeps a resource's id known while previewing an update, but not the other outputs
    // of a dynamic resource: served from `id`, `diskId` stays known, and resources wired to it
    // are not shown as replaced when this one is only updated.
    Object.defineProperty(this, ID_KEY, { value: this.id, enumerable: true });
  }

  /** Look up an existing EncryptedDisk by id without managing it (read-only; never deleted by this stack). */
  static get(name: string, id: pulumi.Input<pulumi.ID>, opts?: pulumi.CustomResourceOptions): EncryptedDisk {
    return new EncryptedDisk(name, {} as EncryptedDiskArgs, { ...opts, id });
  }
}
