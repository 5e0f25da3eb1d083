/**
 * Bad input (issue 7, part 3): fast-check fuzzing of every engine API entry point with
 * FUZZ_RUNS generated inputs each (1,000 under jest by default, 10,000 in `npm run test:chaos`): wrong types, huge/negative/fractional
 * sizes, unknown zones and regions, unicode, missing fields, ids of the wrong kind or of
 * deleted resources. Every failure must be an EngineError with a known, stable code, no stack
 * trace in its message, and `.property` naming an input property when the input is at fault.
 *
 * Violations are collected per entry point and grouped by signature (with the engine frame that
 * threw); signatures of reported, still-open engine defects (known-defects.ts) are counted apart
 * and reproduced by `test.failing` tests in defects.test.ts, so this suite stays green while
 * catching anything new.
 */
import fc from "fast-check";
import { EngineError, ErrorCodes, isEngineError, openEngine, type Engine } from "../../provider/engine";
import { tempEngine, type TempEngine } from "./helpers";
import { knownDefectOf } from "./known-defects";

/** 1,000 per entry point under `npm test`; `npm run test:chaos` runs 10,000 (FUZZ_RUNS=10000). */
const RUNS = Number(process.env.FUZZ_RUNS ?? 1_000);
const CODES = new Set<string>(Object.values(ErrorCodes));

/** Codes that mean "your input is wrong": these must name the property. */
function isInputCode(code: string): boolean {
  return code.startsWith("InvalidParameter") || code.endsWith(".NotFound") || code === ErrorCodes.KeyNotFound;
}

interface Fixtures {
  plainDisk: string;
  encDisk: string;
  spareDisk: string;
  attachedPlain: string;
  attPlain: string;
  attEnc: string;
  plainSnap: string;
  encSnap: string;
  instance: string;
  localInstance: string;
  plainImage: string;
  encImage: string;
  deletedDisk: string;
  deletedSnap: string;
  deletedInstance: string;
  deletedImage: string;
  keyId: string;
}

let te: TempEngine;
let engine: Engine;
let fx: Fixtures;
const figures: Record<string, { runs: number; ok: number; engineErrors: number; known: number; ms: number }> = {};

beforeAll(() => {
  te = tempEngine("fuzz");
  engine = openEngine({ dir: te.dir, kmsRootKeyFile: te.kmsRootKeyFile });
  engine.authorizeKms();
  const zone = "ap-guangzhou-3";
  const instance = engine.createInstance({ zone, instanceType: "S5.MEDIUM4" }).instanceId;
  const localInstance = engine.createInstance({ zone, instanceType: "IT5.4XLARGE64" }).instanceId;
  const plainDisk = engine.createDisk({ zone, sizeGb: 10 }).diskId;
  const encDisk = engine.createDisk({ zone, sizeGb: 10, encrypt: true }).diskId;
  const spareDisk = engine.createDisk({ zone, sizeGb: 20 }).diskId;
  const attachedPlain = engine.createDisk({ zone, sizeGb: 1 }).diskId;
  const attPlain = engine.attachDisk({ diskId: attachedPlain, instanceId: instance }).attachmentId;
  const encForIo = engine.createDisk({ zone, sizeGb: 1, encrypt: true }).diskId;
  const attEnc = engine.attachDisk({ diskId: encForIo, instanceId: instance }).attachmentId;
  engine.write(attPlain, 0, Buffer.alloc(70_000, 7));
  engine.write(attEnc, 0, Buffer.alloc(70_000, 9));
  const plainSnap = engine.createSnapshot({ diskId: plainDisk }).snapshotId;
  const encSnap = engine.createSnapshot({ diskId: encDisk }).snapshotId;
  const plainImage = engine.createImage({ name: "plain", snapshotIds: [plainSnap] }).imageId;
  const encImage = engine.createImage({ name: "enc", snapshotIds: [encSnap] }).imageId;
  const gone = engine.createDisk({ zone, sizeGb: 1 });
  const goneSnap = engine.createSnapshot({ diskId: gone.diskId }).snapshotId;
  const goneImage = engine.createImage({ name: "gone", snapshotIds: [goneSnap] }).imageId;
  engine.deleteImage(goneImage);
  engine.deleteSnapshot(goneSnap);
  engine.deleteDisk(gone.diskId);
  const goneIns = engine.createInstance({ zone, instanceType: "S5.SMALL1" }).instanceId;
  engine.deleteInstance(goneIns);
  fx = {
    plainDisk, encDisk, spareDisk, attachedPlain, attPlain, attEnc, plainSnap, encSnap, instance, localInstance, plainImage, encImage,
    deletedDisk: gone.diskId, deletedSnap: goneSnap, deletedInstance: goneIns, deletedImage: goneImage, keyId: engine.listKeys()[0].keyId,
  };
});

afterAll(() => {
  engine?.close();
  te?.cleanup();
  // Figures for the report (docs/reliability.md).
  const total = Object.values(figures).reduce((a, f) => a + f.runs, 0);
  // eslint-disable-next-line no-console
  console.log(`fuzz figures (${total} inputs):\n` + Object.entries(figures).map(([k, f]) => `  ${k}: ${f.runs} inputs, ${f.ok} accepted, ${f.engineErrors} EngineErrors, ${f.known} known-defect hits, ${f.ms} ms`).join("\n"));
});

// ---- generators -------------------------------------------------------------------------------

const nasty = fc.constantFrom<unknown>(
  undefined, null, "", " ", "\u0000", "\u202e", "💾", "ключ", "磁盘", "a".repeat(61), "a".repeat(10_000),
  0, -0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, 2 ** 64, -(2 ** 31),
  true, false, [], {}, [1], ["x"], Object.create(null), { toString: "x" }, { valueOf: 1 }, 10n, Buffer.alloc(3), new Date(0),
);
const junk = fc.oneof({ weight: 3, arbitrary: fc.anything({ withBigInt: true, withNullPrototype: true, maxDepth: 2 }) }, { weight: 3, arbitrary: nasty }, { weight: 2, arbitrary: fc.string({ unit: "grapheme", maxLength: 80 }) });
const anyOf = <T>(valid: fc.Arbitrary<T>, validWeight = 5) => fc.oneof({ weight: validWeight, arbitrary: valid as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: junk });

const zones = fc.oneof(
  fc.constantFrom("ap-guangzhou-3", "ap-guangzhou-4", "ap-shanghai-2", "ap-beijing-5", "eu-frankfurt-1"),
  fc.constantFrom("ap-guangzhou-1", "ap-guangzhou", "AP-GUANGZHOU-3", "ap-guangzhou-3 ", "mars-north-1", "__proto__-x-1", "constructor", "ap-guangzhou-03", "ap-guangzhou-3\n"),
);
const regions = fc.oneof(fc.constantFrom("ap-guangzhou", "ap-shanghai", "eu-frankfurt", "na-ashburn"), fc.constantFrom("ap-guangzhou-3", "mars", "__proto__", "toString", "hasOwnProperty", ""));
const sizes = fc.oneof(fc.integer({ min: -5, max: 40 }), fc.constantFrom(1, 1024, 1025, 32000, 32001, 2 ** 31, 2 ** 53, -(2 ** 53)), fc.double(), fc.bigInt({ min: -5n, max: 100n }));
const diskTypes = fc.constantFrom("CLOUD_BASIC", "CLOUD_PREMIUM", "CLOUD_SSD", "CLOUD_HSSD", "CLOUD_TSSD", "CLOUD_BSSD", "LOCAL_BASIC", "LOCAL_SSD", "cloud_ssd", "SSD", "");
const usages = fc.constantFrom("DATA_DISK", "SYSTEM_DISK", "data_disk", "ROOT");
const instanceTypes = fc.constantFrom("S5.MEDIUM4", "S5.SMALL1", "IT5.4XLARGE64", "D3.LARGE8", "GN7.2XLARGE32", "S5", "S5.MEDIUM4.X", "X9.MEDIUM4", "s5.medium4", ".", "S5.");
const names = fc.oneof(fc.string({ unit: "grapheme", maxLength: 70 }), fc.string({ unit: "binary", maxLength: 20 }));
const tags = fc.oneof(fc.dictionary(fc.string({ maxLength: 130 }), fc.string({ maxLength: 260 }), { maxKeys: 55 }), fc.dictionary(fc.string(), fc.anything(), { maxKeys: 3 }));
const tokens = fc.oneof(fc.uuid(), fc.string({ maxLength: 70 }));
const accountIds = fc.oneof(fc.array(fc.stringMatching(/^\d{5,20}$/), { maxLength: 4 }), fc.array(fc.string(), { maxLength: 3 }), fc.constant(["100000000001"]));
const offsets = fc.oneof(fc.integer({ min: -10, max: 2 ** 30 + 10 }), fc.constantFrom(0, 65535, 65536, 2 ** 30 - 1, 2 ** 30, 2 ** 30 - 4096, 2 ** 53, -1, 0.5), fc.double());
const lengths = fc.oneof(fc.integer({ min: -2, max: 200_000 }), fc.constantFrom(0, 1, 64 * 1024 * 1024, 64 * 1024 * 1024 + 1, -1, 1.5, 2 ** 40));
const datas = fc.oneof(fc.uint8Array({ maxLength: 9000 }).map((a) => Buffer.from(a)), fc.uint8Array({ maxLength: 200 }));

/** An id of a given kind, or of another kind, or of a deleted resource, or made up. */
function ids(kinds: (keyof Fixtures)[]): fc.Arbitrary<unknown> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...kinds).map((k) => fx[k]) },
    { weight: 2, arbitrary: fc.constantFrom<keyof Fixtures>(...(Object.keys(fx) as (keyof Fixtures)[])).map((k) => fx[k]) },
    { weight: 1, arbitrary: fc.constantFrom("disk-", "disk-00000000", "snap-zzzzzzzz", "ins-00000000", "att-00000000", "img-00000000", "disk-%", "disk-' OR 1=1 --", "DISK-abc") },
  );
}

// ---- the harness --------------------------------------------------------------------------------

interface Violation {
  sig: string;
  sample: string;
}

function describeInput(input: unknown): string {
  try {
    return JSON.stringify(input, (_k, v) => (typeof v === "bigint" ? `${v}n` : v instanceof Uint8Array ? `<${v.length} bytes>` : v))?.slice(0, 300) ?? String(input);
  } catch {
    return "<unprintable>";
  }
}

/**
 * Runs `call` on RUNS generated inputs; returns violations of the error contract.
 * `props` are the input properties an error may name.
 */
function fuzz<T>(entry: string, arb: fc.Arbitrary<T>, call: (input: T) => unknown, props: string[], opts: { repeatable?: boolean } = {}): Violation[] {
  const stat = (figures[entry] = { runs: 0, ok: 0, engineErrors: 0, known: 0, ms: 0 });
  const t0 = Date.now();
  const found = new Map<string, Violation>();
  const violate = (sig: string, input: unknown) => {
    if (knownDefectOf(entry, sig)) {
      stat.known++;
      return;
    }
    if (!found.has(sig)) found.set(sig, { sig, sample: describeInput(input) });
  };
  fc.assert(
    fc.property(arb, (input) => {
      stat.runs++;
      let err: unknown;
      try {
        call(input);
        stat.ok++;
        return true;
      } catch (e) {
        err = e;
      }
      if (!(err instanceof EngineError) || !isEngineError(err)) {
        const ctor = (err as { constructor?: { name?: string } })?.constructor?.name ?? typeof err;
        // Where in the engine it came from: the first engine frame of the stack.
        const frame = /provider\/engine\/[\w/.-]+:\d+/.exec(String((err as Error)?.stack ?? ""))?.[0] ?? "?";
        violate(`${entry} threw ${ctor} (not an EngineError) at ${frame}: ${String((err as Error)?.message ?? err).replace(/\b(disk|snap|ins|att|img|lin)-[0-9a-z]{8}\b/g, "$1-…").slice(0, 90)}`, input);
        return true;
      }
      stat.engineErrors++;
      if (!CODES.has(err.code)) violate(`${entry}: unknown code ${err.code}`, input);
      if (/\n\s+at /.test(err.message)) violate(`${entry}: stack trace in message (${err.code})`, input);
      if (isInputCode(err.code) && !(err.property && props.includes(err.property))) {
        const inputIsObject = typeof input === "object" && input !== null && !Array.isArray(input);
        if (err.property !== undefined || inputIsObject) violate(`${entry}: ${err.code} names property ${JSON.stringify(err.property)}, not one of ${props.join("/")}`, input);
      }
      if (opts.repeatable !== false) {
        try {
          call(input);
          violate(`${entry}: failed with ${err.code} once, then succeeded on the same input`, input);
        } catch (e2) {
          if (!isEngineError(e2) || e2.code !== err.code) violate(`${entry}: unstable code ${err.code} then ${isEngineError(e2) ? e2.code : String(e2)}`, input);
        }
      }
      return true;
    }),
    { numRuns: RUNS, seed: Number(process.env.FUZZ_SEED ?? 7) },
  );
  stat.ms = Date.now() - t0;
  return [...found.values()];
}

function expectClean(v: Violation[]): void {
  expect(v.map((x) => `${x.sig}\n      e.g. ${x.sample}`)).toEqual([]);
}

const rec = <T extends Record<string, fc.Arbitrary<unknown>>>(model: T) => fc.oneof({ weight: 9, arbitrary: fc.record(model, { requiredKeys: [] }) }, { weight: 1, arbitrary: junk });

// ---- entry points -----------------------------------------------------------------------------------

describe("bad input: fuzzed engine API entry points", () => {
  test("createDisk", () => {
    const validDisk = fc.record(
      { zone: zones, sizeGb: fc.integer({ min: 0, max: 33000 }), diskType: diskTypes, diskUsage: usages, encrypt: fc.boolean(), snapshotId: fc.constantFrom(fx.plainSnap, fx.encSnap, fx.deletedSnap), name: names, clientToken: tokens },
      { requiredKeys: ["zone", "sizeGb"] },
    );
    const arb = rec({ zone: anyOf(zones), sizeGb: anyOf(sizes), diskType: anyOf(diskTypes), diskUsage: anyOf(usages), encrypt: anyOf(fc.boolean()), snapshotId: ids(["plainSnap", "encSnap", "deletedSnap"]), name: anyOf(names), tags: anyOf(tags), clientToken: anyOf(tokens) });
    const made = new Set<string>();
    const v = fuzz("createDisk", fc.oneof(arb, validDisk), (i) => made.add(engine.createDisk(i as never).diskId), ["zone", "sizeGb", "diskType", "diskUsage", "encrypt", "snapshotId", "name", "tags", "clientToken"]);
    for (const d of made) if (engine.findDisk(d)) engine.deleteDisk(d);
    expectClean(v);
  });

  test("createSnapshot", () => {
    const arb = rec({ diskId: ids(["plainDisk", "encDisk", "deletedDisk"]), name: anyOf(names), clientToken: anyOf(tokens) });
    const made = new Set<string>();
    const v = fuzz("createSnapshot", arb, (i) => made.add(engine.createSnapshot(i as never).snapshotId), ["diskId", "name", "clientToken"]);
    for (const s of made) if (engine.findSnapshot(s)) engine.deleteSnapshot(s);
    expectClean(v);
  });

  test("createInstance", () => {
    const arb = rec({ zone: anyOf(zones), instanceType: anyOf(instanceTypes), localStorage: anyOf(fc.boolean()), name: anyOf(names), clientToken: anyOf(tokens) });
    const made = new Set<string>();
    const v = fuzz("createInstance", arb, (i) => made.add(engine.createInstance(i as never).instanceId), ["zone", "instanceType", "localStorage", "name", "clientToken"]);
    for (const s of made) engine.deleteInstance(s);
    expectClean(v);
  });

  test("attachDisk and detachDisk", () => {
    const arb = rec({ diskId: ids(["plainDisk", "encDisk", "spareDisk", "attachedPlain", "deletedDisk"]), instanceId: ids(["instance", "localInstance", "deletedInstance"]) });
    const v = fuzz(
      "attachDisk",
      arb,
      (i) => {
        const a = engine.attachDisk(i as never);
        if (a.diskId !== fx.attachedPlain) engine.detachDisk(a.attachmentId);
      },
      ["diskId", "instanceId"],
    );
    // Never the fixture attachments: later tests do I/O through them.
    const detachIds = fc.constantFrom<unknown>(fx.deletedDisk, fx.plainDisk, fx.spareDisk, fx.deletedInstance, fx.plainSnap, "att-00000000", "disk-00000000", "att-");
    const v2 = fuzz("detachDisk", anyOf(detachIds, 2), (i) => engine.detachDisk(i as never), ["attachmentId", "diskId"]);
    expectClean([...v, ...v2]);
  });

  test("resizeDisk and renameDisk", () => {
    const v = fuzz("resizeDisk", fc.tuple(ids(["spareDisk", "deletedDisk"]), anyOf(sizes)), ([d, s]) => engine.resizeDisk(d as never, s as never), ["diskId", "sizeGb"]);
    const v2 = fuzz("renameDisk", fc.tuple(ids(["spareDisk", "deletedDisk"]), anyOf(names), anyOf(fc.option(tags))), ([d, n, t]) => engine.renameDisk(d as never, n as never, t as never), ["diskId", "name", "tags"]);
    expectClean([...v, ...v2]);
  });

  test("copySnapshot", () => {
    const arb = rec({ snapshotId: ids(["plainSnap", "encSnap", "deletedSnap"]), destinationRegion: anyOf(regions), name: anyOf(names) });
    const made: string[] = [];
    const v = fuzz("copySnapshot", arb, (i) => made.push(engine.copySnapshot(i as never).snapshotId), ["snapshotId", "destinationRegion", "name"]);
    for (const s of made) engine.deleteSnapshot(s);
    expectClean(v);
  });

  test("createImage, shareImage, copyImage", () => {
    const snapIds = fc.oneof(fc.array(ids(["plainSnap", "encSnap", "deletedSnap"]), { maxLength: 18 }), junk);
    const made = new Set<string>();
    const v = fuzz("createImage", rec({ name: anyOf(names), snapshotIds: snapIds, clientToken: anyOf(tokens) }), (i) => made.add(engine.createImage(i as never).imageId), ["name", "snapshotIds", "clientToken"]);
    for (const s of made) engine.deleteImage(s);
    const v2 = fuzz("shareImage", fc.tuple(ids(["plainImage", "encImage", "deletedImage"]), anyOf(accountIds)), ([i, a]) => engine.shareImage(i as never, a as never), ["imageId", "accountIds"]);
    const copies: string[] = [];
    const v3 = fuzz("copyImage", rec({ imageId: ids(["plainImage", "encImage", "deletedImage"]), destinationRegion: anyOf(regions), name: anyOf(names) }), (i) => copies.push(engine.copyImage(i as never).imageId), ["imageId", "destinationRegion", "name"]);
    for (const c of copies) {
      const img = engine.getImage(c);
      engine.deleteImage(c);
      for (const s of img.snapshotIds) engine.deleteSnapshot(s);
    }
    expectClean([...v, ...v2, ...v3]);
  });

  test("applySnapshot, migrateDisk, copyDiskData", () => {
    const v = fuzz("applySnapshot", fc.tuple(ids(["plainSnap", "encSnap", "deletedSnap"]), ids(["plainDisk", "encDisk", "deletedDisk"])), ([s, d]) => engine.applySnapshot(s as never, d as never), ["snapshotId", "diskId"]);
    const made = new Set<string>();
    const v2 = fuzz(
      "migrateDisk",
      rec({ sourceDiskId: ids(["plainDisk", "encDisk", "deletedDisk"]), encrypt: anyOf(fc.boolean()), zone: anyOf(zones), diskType: anyOf(diskTypes), sizeGb: anyOf(sizes), name: anyOf(names), tags: anyOf(tags), clientToken: anyOf(tokens) }),
      (i) => made.add(engine.migrateDisk(i as never).diskId),
      ["sourceDiskId", "encrypt", "zone", "diskType", "diskUsage", "sizeGb", "name", "tags", "clientToken"],
    );
    for (const d of made) if (engine.findDisk(d)) engine.deleteDisk(d);
    // D16 (fixed in b6c07cb): a refused migrateDisk must leave no target disk behind.
    const fixtures = new Set(Object.values(fx));
    const leftBehind = engine.listDisks().filter((d) => d.sourceDiskId && !fixtures.has(d.diskId));
    for (const d of leftBehind) engine.deleteDisk(d.diskId);
    if (leftBehind.length) v2.push({ sig: `migrateDisk: ${leftBehind.length} refused migrations left their target disk behind (D16)`, sample: leftBehind[0].diskId });
    const v3 = fuzz("copyDiskData", fc.tuple(ids(["plainDisk", "encDisk", "deletedDisk"]), ids(["spareDisk", "attachedPlain", "deletedDisk"])), ([s, d]) => engine.copyDiskData(s as never, d as never), ["sourceDiskId", "targetDiskId", "sizeGb"]);
    expectClean([...v, ...v2, ...v3]);
  });

  test("read, write, writeZeroes, flush ranges", () => {
    const att = ids(["attPlain", "attEnc", "plainDisk"]);
    const v = fuzz("read", fc.tuple(att, anyOf(offsets), anyOf(lengths)), ([a, o, l]) => engine.read(a as never, o as never, typeof l === "number" && l > 1_000_000 && l <= 64 * 1024 * 1024 ? 4096 : (l as never)), ["attachmentId", "offset", "length"]);
    const v2 = fuzz("write", fc.tuple(att, anyOf(offsets), anyOf(datas)), ([a, o, d]) => engine.write(a as never, o as never, d as never), ["attachmentId", "offset", "length", "data"]);
    const v3 = fuzz("writeZeroes", fc.tuple(att, anyOf(offsets), anyOf(lengths)), ([a, o, l]) => engine.writeZeroes(a as never, o as never, l as never), ["attachmentId", "offset", "length"]);
    const v4 = fuzz("flush", att, (a) => engine.flush(a as never), ["attachmentId"]);
    expectClean([...v, ...v2, ...v3, ...v4]);
  });

  test("KMS, account and lookups", () => {
    const keyIds = fc.oneof(fc.constantFrom(fx.keyId), fc.uuid(), junk);
    const v = [
      ...fuzz("describeKey", keyIds, (k) => engine.describeKey(k as never), ["keyId"]),
      ...fuzz("deleteKey", keyIds, (k) => engine.deleteKey(k as never), ["keyId"]),
      ...fuzz("kmsUsage", anyOf(regions), (r) => engine.kmsUsage(r as never), ["region"]),
      ...fuzz("listKeys", anyOf(regions), (r) => engine.listKeys(r as never), ["region"]),
      ...fuzz("regionOfZone", anyOf(zones), (z) => engine.regionOfZone(z as never), ["zone"]),
      ...fuzz("topUp", anyOf(sizes), (n) => engine.topUp(n as never), ["amount"]),
      ...fuzz("getDisk", ids(["plainDisk", "deletedDisk"]), (d) => engine.getDisk(d as never), ["diskId"]),
      ...fuzz("getSnapshot", ids(["plainSnap", "deletedSnap"]), (d) => engine.getSnapshot(d as never), ["snapshotId"]),
      ...fuzz("getAttachment", ids(["attPlain", "plainDisk"]), (d) => engine.getAttachment(d as never), ["attachmentId"]),
      ...fuzz("setDiskEncryption", fc.tuple(ids(["plainDisk", "encDisk", "deletedDisk"]), anyOf(fc.boolean())), ([d, b]) => engine.setDiskEncryption(d as never, b as never), ["diskId", "encrypt"]),
      ...fuzz("listDisks", anyOf(rec({ zone: anyOf(zones), region: anyOf(regions) })), (f) => engine.listDisks(f as never), ["zone", "region"]),
      ...fuzz("auditLog", anyOf(rec({ region: anyOf(regions), resourceId: ids(["plainDisk"]), sinceSeq: anyOf(sizes) })), (f) => engine.auditLog(f as never), ["region", "resourceId", "sinceSeq"]),
    ];
    expectClean(v);
  });

  test("state stays healthy after fuzzing", () => {
    expect(engine.check().problems).toEqual([]);
    expect(engine.verifyNoKeyMaterial().findings).toEqual([]);
  });
});
