import * as pulumi from "@pulumi/pulumi";
import { DiskWriteOutputs as DiskWriteOutputsSchema } from "../schemas/diskWrite";
import { DiskWriteProvider } from "./providers";
import { OutputsOf, propsWithOutputs } from "./types";
import type { DiskWriteArgs, DiskWriteOutputs } from "../types.generated";

export type { DiskWriteArgs, DiskWriteOutputs };

const OUTPUT_KEYS = Object.keys(DiskWriteOutputsSchema.shape);

// Declaration merging gives the class one typed `Output` per output property, with no field
// initializers (a class field would overwrite the value Pulumi sets during construction).
// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface DiskWrite extends OutputsOf<DiskWriteOutputs> {}

/**
 * Writes a little data onto a disk through an attachment, as the instance would (seeding a disk, e.g. before an M1 migration).
 *
 * Type token: `pulumi-nodejs:dynamic/encdisk:DiskWrite`.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class DiskWrite extends pulumi.dynamic.Resource {
  constructor(name: string, args: DiskWriteArgs, opts?: pulumi.CustomResourceOptions) {
    super(DiskWriteProvider, name, propsWithOutputs(args, OUTPUT_KEYS, { type: "DiskWrite", name, opts }), opts, "encdisk", "DiskWrite");
  }

  /** Look up an existing DiskWrite by id without managing it (read-only; never deleted by this stack). */
  static get(name: string, id: pulumi.Input<pulumi.ID>, opts?: pulumi.CustomResourceOptions): DiskWrite {
    return new DiskWrite(name, {} as DiskWriteArgs, { ...opts, id });
  }
}
