/**
 * Helpers shared by the hook implementations: input validation that tolerates preview's
 * unknown values, refusals that name their rule, and comparisons for `diff`.
 */
import type { z } from "zod";
import type * as pulumi from "@pulumi/pulumi";
import { UNKNOWN } from "../../schemas/common";
import { isEngineError } from "../../engine";
import type { Engine } from "../../engine/types";
import { warn } from "../log";
import { DEFAULT_NAME_KEY } from "../types";

export type Props = Record<string, unknown>;
export const PROVIDER_KEY = "__provider";
/** The Pulumi resource name when `name` is not stated (see passInputs). */
export { DEFAULT_NAME_KEY };
/**
 * The input every resource class adds: the resource's URN (project, stack, type and name), so
 * the engine can tag what the provider creates with its owner (encdisk orphans) and a check
 * can tell the resource's own engine objects from others'. Not a user input: never compared
 * by diff, absent from state written before it existed.
 */
export const OWNER_KEY = "__owner";

/** The owner URN the program passed, if any (state written by older versions has none). */
export function ownerOf(news: Props | undefined): string | undefined {
  const o = news?.[OWNER_KEY];
  return typeof o === "string" && o.startsWith("urn:pulumi:") ? o : undefined;
}

/** Run a create through the engine, tagging what it makes with the resource's owner in the same transaction. */
export function ownedCreate<T>(e: Engine, news: Props, make: () => T, idOf: (made: T) => string): T {
  const owner = ownerOf(news);
  return owner === undefined ? make() : e.owned(owner, make, idOf);
}

/** True when `v` is, or contains, a value unknown during preview. */
export function isUnknown(v: unknown): boolean {
  if (v === UNKNOWN) return true;
  if (Array.isArray(v)) return v.some(isUnknown);
  if (v !== null && typeof v === "object") return Object.values(v).some(isUnknown);
  return false;
}

/** Format a property path the way Pulumi prints them: `tags.env`, `snapshotIds[0]`. */
export function propertyPath(key: string, sub: readonly PropertyKey[]): string {
  let p = key;
  for (const s of sub) p += typeof s === "number" ? `[${s}]` : `.${String(s)}`;
  return p;
}

export interface Validated<T> {
  /** Values of the known, valid inputs (unknown and invalid ones left out). */
  known: Partial<T>;
  /** Names of inputs whose value is unknown during preview. */
  unknown: Set<string>;
  failures: pulumi.dynamic.CheckFailure[];
}

/**
 * Validate `news` property by property against the zod object: inputs unknown during preview
 * are skipped, each failure names its property. The inputs themselves are never rewritten.
 */
export function validate<S extends z.ZodObject>(schema: S, news: Props): Validated<z.output<S>> {
  const shape = schema.shape as Record<string, z.ZodType>;
  const known: Props = {};
  const unknown = new Set<string>();
  const failures: pulumi.dynamic.CheckFailure[] = [];
  for (const key of Object.keys(news)) {
    if (key === PROVIDER_KEY || key === DEFAULT_NAME_KEY || key === OWNER_KEY) continue;
    if (!(key in shape)) failures.push({ property: key, reason: `unknown property "${key}"; known: ${Object.keys(shape).join(", ")}` });
  }
  for (const [key, fieldSchema] of Object.entries(shape)) {
    const value = news[key];
    if (isUnknown(value)) {
      unknown.add(key);
      continue;
    }
    const r = fieldSchema.safeParse(value === null ? undefined : value);
    if (r.success) {
      if (r.data !== undefined) known[key] = r.data;
    } else {
      for (const issue of r.error.issues) failures.push({ property: propertyPath(key, issue.path), reason: issue.message });
    }
  }
  return { known: known as Partial<z.output<S>>, unknown, failures };
}

/**
 * The inputs a check hands back: the program's own (with the owner), minus the provider key (the host re-adds
 * it) and the default-name key. With `olds` (check of a resource that has a `name`): a resource
 * being created (no old inputs) that states no name gets its Pulumi resource name.
 */
export function passInputs(news: Props, olds?: Props): Props {
  const out: Props = {};
  for (const [k, v] of Object.entries(news)) if (k !== PROVIDER_KEY && k !== DEFAULT_NAME_KEY && v !== undefined) out[k] = v;
  if (olds === undefined || out.name !== undefined) return out;
  if (Object.keys(olds).length === 0) {
    if (typeof news[DEFAULT_NAME_KEY] === "string" && news[DEFAULT_NAME_KEY] !== "") out.name = news[DEFAULT_NAME_KEY];
  } else if (typeof olds.name === "string") {
    // Omitted later: the name it has (as every omitted optional input), so nothing diffs and a
    // replacement keeps it. A resource created before names defaulted has none: unchanged.
    out.name = olds.name;
  }
  return out;
}

/** The user's inputs alone (no provider key, no owner), as the resource's schema parses them. */
export function programInputs(news: Props): Props {
  const out = passInputs(news);
  delete out[OWNER_KEY];
  return out;
}

/** Structural equality for JSON values. */
export function same(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a as object).filter((k) => (a as Props)[k] !== undefined);
  const kb = Object.keys(b as object).filter((k) => (b as Props)[k] !== undefined);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => same((a as Props)[k], (b as Props)[k]));
}

/** A refusal that names its rule and the way out; thrown by diff/create/update as a backstop. */
export function refusal(code: string, rule: string | undefined, message: string): Error {
  const err = new Error(rule ? `[${code}] ${rule}: ${message}` : `[${code}] ${message}`) as Error & { code?: string; rule?: string };
  err.code = code;
  if (rule) err.rule = rule;
  return err;
}

/** A check failure from an engine error (or any error), on `property`. */
export function failureFrom(property: string, e: unknown): pulumi.dynamic.CheckFailure {
  if (isEngineError(e)) return { property: e.property ?? property, reason: e.message };
  return { property, reason: e instanceof Error ? e.message : String(e) };
}

/** Run an engine lookup that may legitimately find nothing. */
export function lookup<T>(fn: () => T | null | undefined): T | undefined {
  try {
    return fn() ?? undefined;
  } catch (e) {
    if (isEngineError(e) && /NotFound/.test(e.code)) return undefined;
    throw e;
  }
}

/** True for an engine "not found" error (deleting something already gone is success). */
export function isNotFound(e: unknown): boolean {
  return isEngineError(e) && /NotFound/.test(e.code);
}

/** Drop undefined and null fields (Pulumi state keeps absent outputs absent). */
export function compact<T extends Props>(o: T): T {
  const out: Props = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined && v !== null) out[k] = v;
  return out as T;
}

/**
 * A warning about the resource whose inputs are `news`: on that resource's line of the Pulumi
 * CLI when the inputs carry its URN, else on stderr (which the CLI shows on the stack's line).
 */
export function notice(message: string, news?: Props): Promise<void> {
  return warn(message, ownerOf(news));
}
