import { z } from "zod";
import * as c from "./common";

export const ImageInputs = z
  .object({
    name: c.name.meta({ description: "Image name. Changing it replaces the image.", willReplaceOnChanges: true }),
    snapshotIds: z.array(c.snapshotId).min(1).optional().meta({
      description: "Create the image from these snapshots. Set this or `sourceImageId`. Changing it replaces the image.",
      willReplaceOnChanges: true,
    }),
    sourceImageId: c.imageId.optional().meta({
      description: "Create the image as a copy of this image in `destinationRegion`. Refused for images of encrypted snapshots (S4). Changing it replaces the image.",
      willReplaceOnChanges: true,
    }),
    destinationRegion: c.region.optional().meta({ description: "Region of the copy; required with `sourceImageId`. Changing it replaces the image.", willReplaceOnChanges: true }),
    sharedWith: z.array(c.accountId).optional().meta({
      description: "Account ids to share the image with. Refused when the image contains encrypted snapshots (S3). Adding accounts is an in-place update; withdrawing one replaces the image (sharing cannot be revoked).",
    }),
  })
  .strict();

export const ImageOutputs = z
  .object({
    imageId: c.imageId.meta({ description: "Image id (also the resource id)." }),
    name: z.string().meta({ description: "Image name." }),
    region: c.region.meta({ description: "Region of the image." }),
    snapshotIds: z.array(c.snapshotId).meta({ description: "Snapshots in the image." }),
    sourceImageId: c.imageId.optional().meta({ description: "The image this one was copied from, if a copy." }),
    destinationRegion: c.region.optional().meta({ description: "The `destinationRegion` input as stated." }),
    encrypted: z.boolean().meta({ description: "Whether the image contains encrypted snapshots (then it can be neither shared (S3) nor copied across regions (S4))." }),
    sharedWith: z.array(c.accountId).meta({ description: "Accounts the image is shared with." }),
    createdAt: z.string().meta({ description: "Creation time (ISO-8601)." }),
  })
  .strict();

export type ImageInputs = z.input<typeof ImageInputs>;
export type ImageOutputs = z.output<typeof ImageOutputs>;

export const ImageSchema: c.ResourceSchema = {
  name: "Image",
  description: "An image made of snapshots, or a copy of an image in another region, optionally shared with other accounts. Images containing encrypted snapshots cannot be shared (S3) or copied across regions (S4): refused at preview when the inputs show it, otherwise at `up` before anything changes.",
  inputs: ImageInputs,
  outputs: ImageOutputs,
};
