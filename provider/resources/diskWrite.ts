import * as pulumi from "@pulumi/pulumi";
import { DiskWriteOutputs as DiskWriteOutputsSchema } from "../schemas/diskWrite";
import { DiskWriteProvider } from "./providers";
import { OutputsOf, propsWithOutputs } from "./types";
import type { DiskWriteArgs, DiskWriteOutputs } from "../types.generated";

export type { DiskWriteArgs, DiskWriteOutputs };

const OUTPUT_KEYS = Object.keys(DiskWriteOutputsSchema.shape);
/** The data written: Pulumi secrets, so the state (a 0644 stack file) holds them only encrypted (D13). */
const DATA_KEYS = ["text", "base64"] as const;

function secretData(args: DiskWriteArgs): DiskWriteArgs {
  const out: Record<string, unknown> = { ...args };
  for (const k of DATA_KEYS) if (args?.[k] !== undefined) out[k] = pulumi.secret(args[k]);
  return out as unknown as DiskWriteArgs;
}

/** Also as outputs, should a provider ever echo them (an older release did). */
function withSecretData(opts?: pulumi.CustomResourceOptions): pulumi.CustomResourceOptions {
  return { ...opts, additionalSecretOutputs: [...new Set([...(opts?.additionalSecretOutputs ?? []), ...DATA_KEYS])] };
}

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
    super(DiskWriteProvider, name, propsWithOutputs(secretData(args), OUTPUT_KEYS, { type: "DiskWrite", name, opts }), withSecretData(opts), "encdisk", "DiskWrite");
  }

  /** Look up an existing DiskWrite by id without managing it (read-only; never deleted by this stack). */
  static get(name: string, id: pulumi.Input<pulumi.ID>, opts?: pulumi.CustomResourceOptions): DiskWrite {
    return new DiskWrite(name, {} as DiskWriteArgs, { ...opts, id });
  }
}
