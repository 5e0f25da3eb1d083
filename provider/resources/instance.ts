import * as pulumi from "@pulumi/pulumi";
import { InstanceOutputs as InstanceOutputsSchema } from "../schemas/instance";
import { InstanceProvider } from "./providers";
import { OutputsOf, propsWithOutputs } from "./types";
import type { InstanceArgs, InstanceOutputs } from "../types.generated";

export type { InstanceArgs, InstanceOutputs };

/** The output that equals the resource id: exposed through `id` (see the constructor). */
const ID_KEY = "instanceId";
const OUTPUT_KEYS = Object.keys(InstanceOutputsSchema.shape).filter((k) => k !== ID_KEY);

// Declaration merging gives the class one typed `Output` per output property, with no field
// initializers (a class field would overwrite the value Pulumi sets during construction).
// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface Instance extends OutputsOf<InstanceOutputs> {}

/**
 * An instance that disks attach to. Any change replaces it.
 *
 * Type token: `pulumi-nodejs:dynamic/encdisk:Instance`.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class Instance extends pulumi.dynamic.Resource {
  constructor(name: string, args: InstanceArgs, opts?: pulumi.CustomResourceOptions) {
    super(InstanceProvider, name, propsWithOutputs(args, OUTPUT_KEYS, { type: "Instance", name, opts, named: true }), opts, "encdisk", "Instance");
    // Pulumi keeps a resource's id known while previewing an update, but not the other outputs
    // of a dynamic resource: served from `id`, `instanceId` stays known, and resources wired to it
    // are not shown as replaced when this one is only updated.
    Object.defineProperty(this, ID_KEY, { value: this.id, enumerable: true });
  }

  /** Look up an existing Instance by id without managing it (read-only; never deleted by this stack). */
  static get(name: string, id: pulumi.Input<pulumi.ID>, opts?: pulumi.CustomResourceOptions): Instance {
    return new Instance(name, {} as InstanceArgs, { ...opts, id });
  }
}
