import * as pulumi from "@pulumi/pulumi";
import { KmsAuthorizationOutputs as KmsAuthorizationOutputsSchema } from "../schemas/kmsAuthorization";
import { KmsAuthorizationProvider } from "./providers";
import { OutputsOf, propsWithOutputs } from "./types";
import type { KmsAuthorizationArgs, KmsAuthorizationOutputs } from "../types.generated";

export type { KmsAuthorizationArgs, KmsAuthorizationOutputs };

/** The output that equals the resource id: exposed through `id` (see the constructor). */
const ID_KEY = "accountId";
const OUTPUT_KEYS = Object.keys(KmsAuthorizationOutputsSchema.shape).filter((k) => k !== ID_KEY);

// Declaration merging gives the class one typed `Output` per output property, with no field
// initializers (a class field would overwrite the value Pulumi sets during construction).
// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface KmsAuthorization extends OutputsOf<KmsAuthorizationOutputs> {}

/**
 * Authorizes KMS for the account (O2). Make encrypted disks depend on it.
 *
 * Type token: `pulumi-nodejs:dynamic/encdisk:KmsAuthorization`.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class KmsAuthorization extends pulumi.dynamic.Resource {
  constructor(name: string, args: KmsAuthorizationArgs = {}, opts?: pulumi.CustomResourceOptions) {
    super(KmsAuthorizationProvider, name, propsWithOutputs(args, OUTPUT_KEYS, { type: "KmsAuthorization", name, opts }), opts, "encdisk", "KmsAuthorization");
    // Pulumi keeps a resource's id known while previewing an update, but not the other outputs
    // of a dynamic resource: served from `id`, `accountId` stays known, and resources wired to it
    // are not shown as replaced when this one is only updated.
    Object.defineProperty(this, ID_KEY, { value: this.id, enumerable: true });
  }

  /** Look up an existing KmsAuthorization by id without managing it (read-only; never deleted by this stack). */
  static get(name: string, id: pulumi.Input<pulumi.ID>, opts?: pulumi.CustomResourceOptions): KmsAuthorization {
    return new KmsAuthorization(name, {} as KmsAuthorizationArgs, { ...opts, id });
  }
}
