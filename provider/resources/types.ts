/** Typing a resource class from its plain output interface (provider/types.generated.ts). */
import * as pulumi from "@pulumi/pulumi";
import { name as nameSchema } from "../schemas/common";

/** Resource outputs: every output property as an `Output`. */
export type OutputsOf<T> = { readonly [K in keyof T]-?: pulumi.Output<T[K]> };

/**
 * The input key carrying the Pulumi resource name to a resource's hooks when `name` is not
 * stated (impl/common.ts: passInputs makes it the name of a resource being created).
 */
export const DEFAULT_NAME_KEY = "__defaultName";

/** The longest display name (longer Pulumi names are cut to it). */
const MAX_NAME = nameSchema.maxLength ?? undefined;

/**
 * The props bag a dynamic resource registers: its inputs plus every output key left open, and,
 * given `owner` (the resource's type and name), its URN under `__owner` (see OWNER_KEY in
 * impl/common). With `owner.named` (resources with a `name` input) and no `name` stated, also
 * the default name.
 */
export function propsWithOutputs(args: object, outputKeys: readonly string[], owner?: { type: string; name: string; opts?: pulumi.CustomResourceOptions; named?: boolean }): Record<string, unknown> {
  const props: Record<string, unknown> = {};
  for (const k of outputKeys) props[k] = undefined;
  for (const [k, v] of Object.entries(args ?? {})) if (v !== undefined) props[k] = v;
  if (owner?.named && props.name === undefined) props[DEFAULT_NAME_KEY] = owner.name.slice(0, MAX_NAME);
  // The URN Pulumi gives the resource (parents included), known at preview: createUrn builds it
  // the way the engine does. A read-only `get` owns nothing.
  // The parent's URN is taken without the parent as a dependency: a dependency on a component
  // waits for all its children, so two children would each wait for the other's URN.
  const parent = owner?.opts?.parent;
  const parentUrn = parent ? pulumi.output(new Promise<string>((resolve) => void parent.urn.apply((u) => (resolve(u), u)))) : undefined;
  if (owner && owner.opts?.id === undefined) props.__owner = pulumi.createUrn(owner.name, `pulumi-nodejs:dynamic/encdisk:${owner.type}`, parentUrn);
  return props;
}
