import * as pulumi from "@pulumi/pulumi";
import { SnapshotCopyOutputs as SnapshotCopyOutputsSchema } from "../schemas/snapshotCopy";
import { SnapshotCopyProvider } from "./providers";
import { OutputsOf, propsWithOutputs } from "./types";
import type { SnapshotCopyArgs, SnapshotCopyOutputs } from "../types.generated";

export type { SnapshotCopyArgs, SnapshotCopyOutputs };

/** The output that equals the resource id: exposed through `id` (see the constructor). */
const ID_KEY = "snapshotId";
const OUTPUT_KEYS = Object.keys(SnapshotCopyOutputsSchema.shape).filter((k) => k !== ID_KEY);

// Declaration merging gives the class one typed `Output` per output property, with no field
// initializers (a class field would overwrite the value Pulumi sets during construction).
// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface SnapshotCopy extends OutputsOf<SnapshotCopyOutputs> {}

/**
 * A copy of a snapshot in another region (S4: never of an encrypted snapshot).
 *
 * Type token: `pulumi-nodejs:dynamic/encdisk:SnapshotCopy`.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class SnapshotCopy extends pulumi.dynamic.Resource {
  constructor(name: string, args: SnapshotCopyArgs, opts?: pulumi.CustomResourceOptions) {
    super(SnapshotCopyProvider, name, propsWithOutputs(args, OUTPUT_KEYS, { type: "SnapshotCopy", name, opts, named: true }), opts, "encdisk", "SnapshotCopy");
    // Pulumi keeps a resource's id known while previewing an update, but not the other outputs
    // of a dynamic resource: served from `id`, `snapshotId` stays known, and resources wired to it
    // are not shown as replaced when this one is only updated.
    Object.defineProperty(this, ID_KEY, { value: this.id, enumerable: true });
  }

  /** Look up an existing SnapshotCopy by id without managing it (read-only; never deleted by this stack). */
  static get(name: string, id: pulumi.Input<pulumi.ID>, opts?: pulumi.CustomResourceOptions): SnapshotCopy {
    return new SnapshotCopy(name, {} as SnapshotCopyArgs, { ...opts, id });
  }
}
