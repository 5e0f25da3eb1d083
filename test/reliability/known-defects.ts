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

export const KNOWN_DEFECTS: KnownDefect[] = [
  {
    id: "D1",
    summary: "non-string ids, tokens and filters reach SQLite binds: better-sqlite3 RangeError/TypeError instead of an EngineError naming the property",
    entries: ["*"],
    match: /threw (RangeError|TypeError) .*(SQLite3 can only bind|Too (few|many) parameter values|bound string, buffer, or bigint is too big|named parameters in two different objects)/,
  },
  {
    id: "D2",
    summary: "error messages built with JSON.stringify / template literals / Math.min crash on BigInt and on objects without a usable toString",
    entries: ["*"],
    match: /threw TypeError .*(Do not know how to serialize a BigInt|Cannot convert object to primitive value|Cannot convert a BigInt value to a number)/,
  },
  {
    id: "D3",
    summary: "null/undefined input objects or filters crash with TypeError (createSnapshot, createImage, migrateDisk, listDisks, auditLog, ...)",
    entries: ["*"],
    match: /threw TypeError .*Cannot read properties of (undefined|null)/,
  },
];

export function knownDefectOf(entry: string, sig: string): KnownDefect | undefined {
  return KNOWN_DEFECTS.find((d) => (d.entries.includes("*") || d.entries.includes(entry)) && d.match.test(sig));
}
