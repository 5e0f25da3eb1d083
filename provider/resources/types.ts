/** Turning the zod-inferred input and output types into Pulumi argument and output types. */
import * as pulumi from "@pulumi/pulumi";

type InputOf<T> = [T] extends [readonly (infer U)[]]
  ? pulumi.Input<pulumi.Input<U>[]>
  : [T] extends [Record<string, string>]
    ? pulumi.Input<Record<string, pulumi.Input<string>>>
    : pulumi.Input<T>;

/** Resource arguments: every input may be a plain value, a promise or an Output. */
export type ArgsOf<T> = { [K in keyof T]: InputOf<Exclude<T[K], undefined>> };

/** Resource outputs: every output property as an `Output`. */
export type OutputsOf<T> = { readonly [K in keyof T]-?: pulumi.Output<T[K]> };

/**
 * The props bag a dynamic resource registers: its inputs plus every output key left open, and,
 * given `owner` (the resource's type and name), its URN under `__owner` (see OWNER_KEY in impl/common).
 */
export function propsWithOutputs(args: object, outputKeys: readonly string[], owner?: { type: string; name: string; opts?: pulumi.CustomResourceOptions }): Record<string, unknown> {
  const props: Record<string, unknown> = {};
  for (const k of outputKeys) props[k] = undefined;
  for (const [k, v] of Object.entries(args ?? {})) if (v !== undefined) props[k] = v;
  // The URN Pulumi gives the resource (parents included), known at preview: createUrn builds it
  // the way the engine does. A read-only `get` owns nothing.
  if (owner && owner.opts?.id === undefined) props.__owner = pulumi.createUrn(owner.name, `pulumi-nodejs:dynamic/encdisk:${owner.type}`, owner.opts?.parent);
  return props;
}
