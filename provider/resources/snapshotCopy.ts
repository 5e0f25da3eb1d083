import * as pulumi from "@pulumi/pulumi";
import { SnapshotCopyInputs, SnapshotCopyOutputs } from "../schemas/snapshotCopy";
import { SnapshotCopyProvider } from "./providers";
import { ArgsOf, OutputsOf, propsWithOutputs } from "./types";

/** Arguments of {@link SnapshotCopy} (see schema.json for every property's description). */
export type SnapshotCopyArgs = ArgsOf<SnapshotCopyInputs>;
export type { SnapshotCopyOutputs };

const OUTPUT_KEYS = Object.keys(SnapshotCopyOutputs.shape);

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
    super(SnapshotCopyProvider, name, propsWithOutputs(args, OUTPUT_KEYS), opts, "encdisk", "SnapshotCopy");
  }

  /** Look up an existing SnapshotCopy by id without managing it (read-only; never deleted by this stack). */
  static get(name: string, id: pulumi.Input<pulumi.ID>, opts?: pulumi.CustomResourceOptions): SnapshotCopy {
    return new SnapshotCopy(name, {} as SnapshotCopyArgs, { ...opts, id });
  }
}
