/** Typing a resource class from its plain output interface (provider/types.generated.ts). */
import type * as pulumi from "@pulumi/pulumi";

/** Resource outputs: every output property as an `Output`. */
export type OutputsOf<T> = { readonly [K in keyof T]-?: pulumi.Output<T[K]> };

/** The props bag a dynamic resource registers: its inputs plus every output key left open. */
export function propsWithOutputs(args: object, outputKeys: readonly string[]): Record<string, unknown> {
  const props: Record<string, unknown> = {};
  for (const k of outputKeys) props[k] = undefined;
  for (const [k, v] of Object.entries(args ?? {})) if (v !== undefined) props[k] = v;
  return props;
}
