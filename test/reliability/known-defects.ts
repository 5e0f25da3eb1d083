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
 * hostile objects) and D3 (null inputs) were fixed in the engine (caa2d94). Add an entry here
 * only together with a `test.failing` reproduction in defects.test.ts.
 */
export const KNOWN_DEFECTS: KnownDefect[] = [
  {
    id: "D17",
    summary: "clientToken fingerprint JSON.stringify()s the request before validating it: a BigInt anywhere in the input of a create with a token throws TypeError",
    entries: ["createDisk", "createSnapshot", "createInstance", "createImage", "migrateDisk"],
    match: /threw TypeError \(not an EngineError\) at provider\/engine\/engine\.ts:\d+: Do not know how to serialize a BigInt/,
  },
  {
    id: "D17",
    summary: "isRegion() runs hasOwnProperty on a non-string region: an object without a callable toString (null prototype, or an array of such) throws TypeError",
    entries: ["copySnapshot", "copyImage", "kmsUsage", "listKeys"],
    match: /threw TypeError \(not an EngineError\) at provider\/engine\/geography\.ts:\d+: Cannot convert object to primitive value/,
  },
  {
    id: "D17",
    summary: "writeZeroes calls Math.min(length, ...) before validating length: a BigInt or hostile object length throws TypeError",
    entries: ["writeZeroes"],
    match: /threw TypeError \(not an EngineError\) at provider\/engine\/engine\.ts:\d+: Cannot convert (a BigInt value to a number|object to primitive value)/,
  },
];

export function knownDefectOf(entry: string, sig: string): KnownDefect | undefined {
  return KNOWN_DEFECTS.find((d) => (d.entries.includes("*") || d.entries.includes(entry)) && d.match.test(sig));
}
