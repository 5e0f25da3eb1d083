/**
 * D1 (issue 12): writeZeroes / trim carry no payload, so the 64 MiB per-call limit of read /
 * write does not apply; they may cover the whole device, cost what the range holds (not its
 * length) and run in bounded transactions, each atomic.
 */
import * as crypto from "crypto";
import { MAX_IO_BYTES, ZERO_BATCH_UNITS } from "../../provider/engine/engine";
import { UNIT } from "../../provider/engine/blockstore/blockstore";
import { errorOf, tempEngine, ZONE, type TestEngine } from "./helpers";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

describe("D1: writeZeroes and trim of any length", () => {
  let t: TestEngine;
  beforeEach(() => {
    t = tempEngine();
    t.engine.authorizeKms();
  });
  afterEach(() => t.cleanup());

  function attach(sizeGb: number, encrypt: boolean): string {
    const ins = t.engine.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
    const d = t.engine.createDisk({ zone: ZONE, sizeGb, encrypt });
    return t.engine.attachDisk({ diskId: d.diskId, instanceId: ins.instanceId }).attachmentId;
  }
  const units = (owner: string): number => (t.engine as unknown as { db: { prepare(s: string): { get(...a: unknown[]): { n: number } } } }).db.prepare("SELECT COUNT(*) AS n FROM units WHERE owner_id = ?").get(owner).n;

  test("D1: writeZeroes and trim over 64 MiB are accepted, zero exactly their range (partial ends too), and past the end still refused", async () => {
    const a = attach(1, true);
    const data = crypto.randomBytes(4 * MiB);
    for (let at = 0; at < 300 * MiB; at += 50 * MiB) t.engine.write(a, at, data);
    const from = 3 * MiB + 12345;
    const len = 150 * MiB + 1000 - from; // > 2 x MAX_IO_BYTES, ends 1000 bytes into the write at 150 MiB
    expect(len).toBeGreaterThan(2 * MAX_IO_BYTES);
    t.engine.writeZeroes(a, from, len);
    expect(t.engine.read(a, 0, from).equals(data.subarray(0, from))).toBe(true);
    for (let at = from; at < from + len; at += 32 * MiB) expect(t.engine.read(a, at, Math.min(32 * MiB, from + len - at)).equals(Buffer.alloc(Math.min(32 * MiB, from + len - at)))).toBe(true);
    // The byte after the range kept its data (the tail unit was merged, not unmapped).
    const after = from + len;
    expect(t.engine.read(a, after, 4 * MiB - 1000).equals(data.subarray(1000))).toBe(true);
    await t.engine.trimAsync(a, 0, 1 * GiB);
    expect(t.engine.read(a, 200 * MiB, 4 * MiB).equals(Buffer.alloc(4 * MiB))).toBe(true);
    expect(errorOf(() => t.engine.writeZeroes(a, 1, GiB)).code).toBe("InvalidParameterValue.OutOfRange");
    expect(errorOf(() => t.engine.trim(a, 0, -1)).property).toBe("length");
    // Payload-carrying calls keep their limit.
    expect(errorOf(() => t.engine.read(a, 0, MAX_IO_BYTES + 1)).property).toBe("length");
  });

  test("D1: whole-disk trim of a 1 TiB disk holding data costs what is written, not the range (measured)", async () => {
    const a = attach(1024, true);
    const disk = t.engine.getAttachment(a).diskId;
    const cap = t.engine.getAttachment(a).capacityBytes;
    expect(cap).toBeGreaterThanOrEqual(1024 * 1e9);
    const chunk = crypto.randomBytes(MiB);
    // 256 MiB spread over the whole TiB: 256 places of 1 MiB.
    for (let k = 0; k < 256; k++) t.engine.write(a, Math.floor(((cap - MiB) / 256) * k / UNIT) * UNIT, chunk);
    expect(units(disk)).toBe(256 * 16);
    const t0 = process.hrtime.bigint();
    await t.engine.trimAsync(a, 0, cap);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    // eslint-disable-next-line no-console
    console.log(`D1 figure: whole-disk trim of a ${cap} byte disk holding ${256 * MiB} bytes in ${256 * 16} units: ${ms.toFixed(1)} ms`);
    expect(units(disk)).toBe(0);
    expect(t.engine.read(a, cap - MiB, MiB).equals(Buffer.alloc(MiB))).toBe(true);
    // A scan of the 16.7 M units of the range would take minutes; the 4,096 rows take well under a second here.
    expect(ms).toBeLessThan(10_000);
    const t1 = process.hrtime.bigint();
    t.engine.trim(a, 0, cap); // nothing left to unmap: near-free
    expect(Number(process.hrtime.bigint() - t1) / 1e6).toBeLessThan(2_000);
  });

  test("D1: a zeroing larger than one step is applied step by step; cut between two steps, every unit reads its old data or zeros, never torn, and the next open rolls the journaled rest forward", () => {
    const a = attach(1, false);
    const disk = t.engine.getAttachment(a).diskId;
    const n = ZERO_BATCH_UNITS + 500;
    const data = crypto.randomBytes(n * UNIT);
    for (let at = 0; at < data.length; at += 32 * MiB) t.engine.write(a, at, data.subarray(at, Math.min(data.length, at + 32 * MiB)));
    expect(units(disk)).toBe(n);
    // "Crash" between the first and the second step: the second step's transaction fails.
    const blocks = (t.engine as unknown as { blocks: { zeroUnits: (...a: unknown[]) => number | null } }).blocks;
    const real = blocks.zeroUnits.bind(blocks);
    let calls = 0;
    blocks.zeroUnits = (...args: unknown[]) => {
      if (++calls === 2) throw new Error("killed between two steps");
      return real(...args);
    };
    expect(() => t.engine.writeZeroes(a, 0, data.length)).toThrow(/killed between two steps/);
    blocks.zeroUnits = real;
    // The first step (ZERO_BATCH_UNITS units) committed whole; the second changed nothing.
    expect(units(disk)).toBe(n - ZERO_BATCH_UNITS);
    const back = Buffer.concat(Array.from({ length: Math.ceil(data.length / (32 * MiB)) }, (_, k) => t.engine.read(a, k * 32 * MiB, Math.min(32 * MiB, data.length - k * 32 * MiB))));
    for (let u = 0; u < n; u++) {
      const got = back.subarray(u * UNIT, (u + 1) * UNIT);
      expect(u < ZERO_BATCH_UNITS ? got.equals(Buffer.alloc(UNIT)) : got.equals(data.subarray(u * UNIT, (u + 1) * UNIT))).toBe(true);
    }
    // The step that committed journaled where the zeroing continues; the process "dies" here and
    // the next open rolls it forward: no half-applied range stays visible after the crash.
    t.reopen();
    expect(units(disk)).toBe(0);
    for (let k = 0; k * 32 * MiB < data.length; k++) expect(t.engine.read(a, k * 32 * MiB, Math.min(32 * MiB, data.length - k * 32 * MiB)).equals(Buffer.alloc(Math.min(32 * MiB, data.length - k * 32 * MiB)))).toBe(true);
    expect(t.engine.check().problems).toEqual([]);
    // Retried (as a client retries an unacknowledged request), it completes.
    t.engine.writeZeroes(a, 0, data.length);
    expect(units(disk)).toBe(0);
  });

  test("D1: a zeroing cut by a crash is finished by the next zeroing of that disk in a process that did not reopen, before its own range", () => {
    const a = attach(1, false);
    const disk = t.engine.getAttachment(a).diskId;
    const n = ZERO_BATCH_UNITS + 100;
    const data = crypto.randomBytes((n + 16) * UNIT);
    for (let at = 0; at < data.length; at += 32 * MiB) t.engine.write(a, at, data.subarray(at, Math.min(data.length, at + 32 * MiB)));
    const blocks = (t.engine as unknown as { blocks: { zeroUnits: (...a: unknown[]) => number | null } }).blocks;
    const real = blocks.zeroUnits.bind(blocks);
    let calls = 0;
    blocks.zeroUnits = (...args: unknown[]) => {
      if (++calls === 2) throw new Error("killed between two steps");
      return real(...args);
    };
    expect(() => t.engine.writeZeroes(a, 0, n * UNIT)).toThrow(/killed between two steps/);
    blocks.zeroUnits = real;
    expect(units(disk)).toBe(n + 16 - ZERO_BATCH_UNITS);
    // A small zeroing elsewhere on the disk first finishes the journaled one.
    t.engine.writeZeroes(a, n * UNIT, UNIT);
    expect(units(disk)).toBe(15);
    expect(t.engine.read(a, (n + 1) * UNIT, 15 * UNIT).equals(data.subarray((n + 1) * UNIT, (n + 16) * UNIT))).toBe(true);
  });
});
