/** Message formatting helpers. */

/** A value shown in a message: never throws (BigInt, cyclic or hostile objects included). */
export function show(v: unknown): string {
  try {
    const j = JSON.stringify(v);
    if (j !== undefined) return j.length > 80 ? j.slice(0, 77) + "..." : j;
  } catch {
    /* fall through */
  }
  return typeof v === "bigint" ? `${v}n` : `a ${typeof v}`;
}

