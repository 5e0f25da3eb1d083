import { z } from "zod";
import type { ResourceSchema } from "./common";

export const KmsAuthorizationInputs = z.object({}).strict();

export const KmsAuthorizationOutputs = z
  .object({
    accountId: z.string().meta({ description: "The account (also the resource id)." }),
    kmsAuthorized: z.boolean().meta({ description: "Always true once created (O2)." }),
    balanceMicros: z.number().meta({ description: "Account balance at the last create or refresh, in micro-units (B3)." }),
    pricePerCallMicros: z.number().meta({ description: "Price of one billed KMS call, in micro-units (B2)." }),
  })
  .strict();

export type KmsAuthorizationInputs = z.input<typeof KmsAuthorizationInputs>;
export type KmsAuthorizationOutputs = z.output<typeof KmsAuthorizationOutputs>;

export const KmsAuthorizationSchema: ResourceSchema = {
  name: "KmsAuthorization",
  description:
    "Authorizes the disk service to use KMS (O2): required before the first encrypted disk of the account. Make encrypted disks depend on it (`dependsOn`). Deleting the resource leaves the authorization in place (the account-level grant cannot be revoked while encrypted disks may exist).",
  inputs: KmsAuthorizationInputs,
  outputs: KmsAuthorizationOutputs,
};
