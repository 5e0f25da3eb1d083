import * as pulumi from "@pulumi/pulumi";
import { SnapshotOutputs as SnapshotOutputsSchema } from "../schemas/snapshot";
import { SnapshotProvider } from "./providers";
import { OutputsOf, propsWithOutputs } from "./types";
import type { SnapshotArgs, SnapshotOutputs } from "../types.generated";

export type { SnapshotArgs, SnapshotOutputs };

/** The output that equals the resource id: exposed through `id` (see the constructor). */
const ID_KEY = "snapshotId";
const OUTPUT_KEYS = Object.keys(SnapshotOutputsSchema.shape).filter((k) => k !== ID_KEY);

// Declaration merging gives the class one typed `Output` per output property, with no field
// initializers (a class field would overwrite the value Pulumi sets during construction).
// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface Snapshot extends OutputsOf<SnapshotOutputs> {}

/**
 * A snapshot of a disk; inherits its encryption (S1, S2). Any change replaces it.
 *
 * Type token: `pulumi-nodejs:dynamic/encdisk:Snapshot`.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class Snapshot extends pulumi.dynamic.Resource {
  constructor(name: string, args: SnapshotArgs, opts?: pulumi.CustomResourceOptions) {
    super(SnapshotProvider, name, propsWithOutputs(args, OUTPUT_KEYS, { type: "Snapshot", name, opts, named: true }), opts, "encdisk", "Snapshot");
    // Pulumi keeps a resource's id known while previewing an update, but not the other outputs
    // of a dynamic resource: served from `id`, `snapshotId` stays known, and resources wired to it
    // are not shown as replaced when this one is only updated.
    Object.defineProperty(this, ID_KEY, { value: this.id, enumerable: true });
  }

  /** Look up an existing Snapshot by id without managing it (read-only; never deleted by this stack). */
  static get(name: string, id: pulumi.Input<pulumi.ID>, opts?: pulumi.CustomResourceOptions): Snapshot {
    return new Snapshot(name, {} as SnapshotArgs, { ...opts, id });
  }
}
