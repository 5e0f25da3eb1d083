import * as pulumi from "@pulumi/pulumi";
import { AttachmentOutputs as AttachmentOutputsSchema } from "../schemas/attachment";
import { AttachmentProvider } from "./providers";
import { OutputsOf, propsWithOutputs } from "./types";
import type { AttachmentArgs, AttachmentOutputs } from "../types.generated";

export type { AttachmentArgs, AttachmentOutputs };

/** The output that equals the resource id: exposed through `id` (see the constructor). */
const ID_KEY = "attachmentId";
const OUTPUT_KEYS = Object.keys(AttachmentOutputsSchema.shape).filter((k) => k !== ID_KEY);

// Declaration merging gives the class one typed `Output` per output property, with no field
// initializers (a class field would overwrite the value Pulumi sets during construction).
// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface Attachment extends OutputsOf<AttachmentOutputs> {}

/**
 * Attaches a disk to an instance (C1, L7). Any change replaces it, detaching first.
 *
 * Type token: `pulumi-nodejs:dynamic/encdisk:Attachment`.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class Attachment extends pulumi.dynamic.Resource {
  constructor(name: string, args: AttachmentArgs, opts?: pulumi.CustomResourceOptions) {
    super(AttachmentProvider, name, propsWithOutputs(args, OUTPUT_KEYS, { type: "Attachment", name, opts }), opts, "encdisk", "Attachment");
    // Pulumi keeps a resource's id known while previewing an update, but not the other outputs
    // of a dynamic resource: served from `id`, `attachmentId` stays known, and resources wired to it
    // are not shown as replaced when this one is only updated.
    Object.defineProperty(this, ID_KEY, { value: this.id, enumerable: true });
  }

  /** Look up an existing Attachment by id without managing it (read-only; never deleted by this stack). */
  static get(name: string, id: pulumi.Input<pulumi.ID>, opts?: pulumi.CustomResourceOptions): Attachment {
    return new Attachment(name, {} as AttachmentArgs, { ...opts, id });
  }
}
