import * as pulumi from "@pulumi/pulumi";
import { ImageOutputs as ImageOutputsSchema } from "../schemas/image";
import { ImageProvider } from "./providers";
import { OutputsOf, propsWithOutputs } from "./types";
import type { ImageArgs, ImageOutputs } from "../types.generated";

export type { ImageArgs, ImageOutputs };

/** The output that equals the resource id: exposed through `id` (see the constructor). */
const ID_KEY = "imageId";
const OUTPUT_KEYS = Object.keys(ImageOutputsSchema.shape).filter((k) => k !== ID_KEY);

// Declaration merging gives the class one typed `Output` per output property, with no field
// initializers (a class field would overwrite the value Pulumi sets during construction).
// eslint-disable-next-line @typescript-eslint/no-empty-object-type, @typescript-eslint/no-unsafe-declaration-merging
export interface Image extends OutputsOf<ImageOutputs> {}

/**
 * An image of snapshots, or a copy of one in another region; shared with accounts. S3 and S4 refusals.
 *
 * Type token: `pulumi-nodejs:dynamic/encdisk:Image`.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
export class Image extends pulumi.dynamic.Resource {
  constructor(name: string, args: ImageArgs, opts?: pulumi.CustomResourceOptions) {
    super(ImageProvider, name, propsWithOutputs(args, OUTPUT_KEYS, { type: "Image", name, opts }), opts, "encdisk", "Image");
    // Pulumi keeps a resource's id known while previewing an update, but not the other outputs
    // of a dynamic resource: served from `id`, `imageId` stays known, and resources wired to it
    // are not shown as replaced when this one is only updated.
    Object.defineProperty(this, ID_KEY, { value: this.id, enumerable: true });
  }

  /** Look up an existing Image by id without managing it (read-only; never deleted by this stack). */
  static get(name: string, id: pulumi.Input<pulumi.ID>, opts?: pulumi.CustomResourceOptions): Image {
    return new Image(name, {} as ImageArgs, { ...opts, id });
  }
}
