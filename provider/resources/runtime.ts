/**
 * The provider's implementation entry, loaded at call time by the serialized hooks
 * (providers.ts) through `require("pulumi-encdisk/dist/provider/resources/runtime")`.
 * This module path and the `configure`/`hook` signatures are a stable contract: every state
 * ever written carries hooks that call them. Extend, never rename.
 */
import { isEngineError } from "../engine";
import { configure as configureContext, ConfigLike } from "./context";
import { IMPLEMENTATIONS } from "./impl";
import type { Props } from "./impl/common";
import { withDetailedDiff } from "./detailedDiff";

export { currentSettings, engine, reset } from "./context";
export type { ConfigLike } from "./context";

/** Called by every resource type's `configure` hook with the stack configuration. */
export function configure(config: ConfigLike | undefined): void {
  configureContext(config);
}

/**
 * Run operation `op` (check, diff, create, read, update, delete) of `resource` with the
 * host's arguments. Engine errors are rethrown as plain Errors whose message carries the
 * stable code and rule, so the Pulumi CLI shows them whole.
 */
export async function hook(resource: string, op: string, args: unknown[]): Promise<unknown> {
  const impl = (IMPLEMENTATIONS as Record<string, Record<string, unknown> | undefined>)[resource];
  if (!impl) throw new Error(`pulumi-encdisk: unknown resource type ${resource} (state written by a newer version?)`);
  const fn = impl[op];
  if (typeof fn !== "function") throw new Error(`pulumi-encdisk: ${resource} has no ${op} operation`);
  try {
    const result = await (fn as (...a: unknown[]) => unknown).apply(impl, args);
    if (op === "diff" && result && typeof result === "object") return withDetailedDiff(result as { replaces?: string[] }, args[1] as Props, args[2] as Props);
    return result;
  } catch (e) {
    throw asPlainError(e);
  }
}

function asPlainError(e: unknown): Error {
  if (isEngineError(e)) {
    const err = new Error(e.message) as Error & { code?: string; rule?: string; property?: string };
    err.code = e.code;
    if (e.rule) err.rule = e.rule;
    if (e.property) err.property = e.property;
    return err;
  }
  return e instanceof Error ? e : new Error(String(e));
}
