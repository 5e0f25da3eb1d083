/**
 * Engine defects found by this suite and reported to the engine owner (see docs/reliability.md),
 * with the signature a fuzz violation has when it is one of them. Each has a `test.failing`
 * reproduction in defects.test.ts; when a fix lands that test starts failing: delete the entry
 * here and turn the `test.failing` into a plain `test`.
 */
export interface KnownDefect {
  id: string;
  summary: string;
  /** Entry points whose violation signatures can match, or "*". */
  entries: string[];
  match: RegExp;
}

/**
 * D1 (non-string values reaching SQLite binds), D2 (message formatting throwing on BigInt and
 * hostile objects), D3 (null inputs) and D17 (BigInt in a token's fingerprint, isRegion on
 * hostile objects, writeZeroes' length) were fixed in the engine. Add an entry here
 * only together with a `test.failing` reproduction in defects.test.ts.
 */
export const KNOWN_DEFECTS: KnownDefect[] = [];

export function knownDefectOf(entry: string, sig: string): KnownDefect | undefined {
  return KNOWN_DEFECTS.find((d) => (d.entries.includes("*") || d.entries.includes(entry)) && d.match.test(sig));
}
