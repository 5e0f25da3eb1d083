/**
 * engine.readAsync / engine.writeAsync (what the NBD server calls, several requests in flight):
 * the same data, format and guarantees as read / write, also when calls are issued without
 * waiting for the ones before.
 */
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { ErrorCodes, UNIT, type Engine } from "../../provider/engine";
import { anyFileContains, filesUnder, pattern, setupEncrypted, tempEngine, ZONE, type TestEngine } from "./helpers";

let t: TestEngine;
afterEach(() => t?.cleanup());

const blockFiles = (dir: string) => filesUnder(path.join(dir, "blocks"));

async function rejection(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { code: string; message: string };
  }
  throw new Error("expected the promise to reject");
}

function plainSetup(e: Engine) {
  const disk = e.createDisk({ zone: ZONE, sizeGb: 10, encrypt: false });
  const instance = e.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
  return e.attachDisk({ diskId: disk.diskId, instanceId: instance.instanceId });
}

/** Random data with all-zero units and odd-sized pieces mixed in. */
function mixed(n: number, seed: number): Buffer {
  const b = crypto.createHash("sha256").update(String(seed)).digest();
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i += 32) b.copy(out, i, 0, Math.min(32, n - i));
  for (let u = 0; u * UNIT < n; u++) {
    if (u % 5 === 2) out.fill(0, u * UNIT, Math.min(n, (u + 1) * UNIT)); // a zero unit: a hole
    else if (u * UNIT + 4 <= n) out.writeUInt32LE((u ^ seed) >>> 0, u * UNIT); // units differ
  }
  return out;
}

describe("readAsync / writeAsync", () => {
  beforeEach(() => (t = tempEngine()));

  test("W1: what writeAsync stores, read and readAsync return, at aligned and unaligned offsets, encrypted and plain", async () => {
    const { att } = setupEncrypted(t.engine);
    const plainAtt = plainSetup(t.engine);
    const model = { enc: Buffer.alloc(16 << 20), plain: Buffer.alloc(16 << 20) };
    const writes: [number, number][] = [
      [0, 4 << 20],
      [UNIT * 70 + 123, 3 * UNIT + 77],
      [5 << 20, 1],
      [7 * UNIT - 10, 20],
      [(8 << 20) + UNIT, 40 * UNIT],
      [2 * UNIT, 6 * UNIT], // overwrite inside the first write
    ];
    let seed = 1;
    for (const [off, len] of writes) {
      const data = mixed(len, seed++);
      data.copy(model.enc, off);
      data.copy(model.plain, off);
      await t.engine.writeAsync(att.attachmentId, off, data);
      await t.engine.writeAsync(plainAtt.attachmentId, off, data);
    }
    for (const [a, m] of [
      [att.attachmentId, model.enc],
      [plainAtt.attachmentId, model.plain],
    ] as const) {
      expect((await t.engine.readAsync(a, 0, 16 << 20)).equals(m)).toBe(true);
      expect(t.engine.read(a, 0, 16 << 20).equals(m)).toBe(true);
      for (const [off, len] of [
        [UNIT * 70 + 100, 5 * UNIT],
        [7, 13],
        [(8 << 20) - 5, UNIT + 10],
        [15 << 20, 1 << 20],
      ]) {
        expect((await t.engine.readAsync(a, off, len)).equals(m.subarray(off, off + len))).toBe(true);
      }
    }
    expect(t.engine.check().problems).toEqual([]);
  });

  test("K1: writeAsync leaves only ciphertext on storage; zero units stay holes", async () => {
    const { att } = setupEncrypted(t.engine);
    const data = pattern(4 << 20, "ASYNC-SECRET");
    data.fill(0, UNIT, 3 * UNIT);
    await t.engine.writeAsync(att.attachmentId, 0, data);
    t.engine.flush(att.attachmentId);
    expect(anyFileContains(t.dir, Buffer.from("ASYNC-SECRET-0123456789-"))).toBeNull();
    const [file] = blockFiles(t.dir);
    expect(fs.statSync(file).size).toBe(62 * UNIT); // 64 units written, 2 of them zeros
    expect((await t.engine.readAsync(att.attachmentId, 0, 4 << 20)).equals(data)).toBe(true);
  });

  test("a flipped stored byte makes readAsync reject with DataIntegrity, never return garbage", async () => {
    const { att } = setupEncrypted(t.engine);
    await t.engine.writeAsync(att.attachmentId, 0, pattern(16 * UNIT));
    t.engine.flush(att.attachmentId);
    const [file] = blockFiles(t.dir);
    const fd = fs.openSync(file, "r+");
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, 9 * UNIT + 5);
    b[0] ^= 0x40;
    fs.writeSync(fd, b, 0, 1, 9 * UNIT + 5);
    fs.closeSync(fd);
    const err = await rejection(t.engine.readAsync(att.attachmentId, 0, 16 * UNIT));
    expect(err.code).toBe(ErrorCodes.DataIntegrity);
    expect(err.message).toMatch(/unit 9 .* failed authentication/);
    expect((await t.engine.readAsync(att.attachmentId, 0, 9 * UNIT)).equals(pattern(16 * UNIT).subarray(0, 9 * UNIT))).toBe(true);
  });

  test("many reads and writes issued without waiting, on two disks: every write lands whole, the map stays consistent", async () => {
    const { att } = setupEncrypted(t.engine);
    const plainAtt = plainSetup(t.engine);
    const ops: Promise<unknown>[] = [];
    const final = new Map<string, Buffer>();
    for (let i = 0; i < 24; i++) {
      for (const a of [att.attachmentId, plainAtt.attachmentId]) {
        // small writes take the one-transaction path, those of 16+ whole units reserve slots
        const data = mixed(UNIT * (i % 3 === 0 ? 18 + (i % 5) : 1 + (i % 9)) + (i % 3) * 1000, i * 7 + a.length);
        const off = i * 24 * UNIT + (i % 2) * 300;
        final.set(`${a}:${off}`, data);
        ops.push(t.engine.writeAsync(a, off, data));
        ops.push(t.engine.readAsync(a, Math.max(0, off - UNIT), 4 * UNIT));
      }
    }
    await Promise.all(ops);
    for (const [k, data] of final) {
      const [a, off] = [k.slice(0, k.lastIndexOf(":")), Number(k.slice(k.lastIndexOf(":") + 1))];
      expect((await t.engine.readAsync(a, off, data.length)).equals(data)).toBe(true);
    }
    expect(t.engine.check().problems).toEqual([]);
  });

  test("K4: releaseKeys between calls issued without waiting loses no write, and the next open derives the key again", async () => {
    const { att } = setupEncrypted(t.engine);
    const data = mixed(4 << 20, 99);
    const pending = t.engine.writeAsync(att.attachmentId, 0, data);
    const reading = t.engine.readAsync(att.attachmentId, 0, 4 << 20);
    t.engine.releaseKeys(); // zeroes the working key before either promise is awaited
    await pending;
    await reading;
    t.reopen();
    expect((await t.engine.readAsync(att.attachmentId, 0, 4 << 20)).equals(data)).toBe(true);
    expect(t.engine.check().problems).toEqual([]);
  });

  test("W1: a write to a detached disk rejects and changes nothing", async () => {
    const { disk, instance, att } = setupEncrypted(t.engine);
    const first = mixed(2 << 20, 5);
    await t.engine.writeAsync(att.attachmentId, 0, first);
    t.engine.detachDisk(att.attachmentId);
    const err = await rejection(t.engine.writeAsync(att.attachmentId, 0, mixed(2 << 20, 6)));
    expect(err.code).toBe(ErrorCodes.AttachmentNotFound);
    expect(t.engine.check().problems).toEqual([]);
    const again = t.engine.attachDisk({ diskId: disk.diskId, instanceId: instance.instanceId });
    expect((await t.engine.readAsync(again.attachmentId, 0, 2 << 20)).equals(first)).toBe(true);
  });

  test("a read issued before its disk is detached and deleted ends cleanly: its data, or NotAttached", async () => {
    const { disk, att } = setupEncrypted(t.engine);
    const data = mixed(4 << 20, 8);
    await t.engine.writeAsync(att.attachmentId, 0, data);
    const reading = t.engine.readAsync(att.attachmentId, 0, 4 << 20);
    t.engine.detachDisk(att.attachmentId);
    t.engine.deleteDisk(disk.diskId); // closes and removes the block file
    try {
      expect((await reading).equals(data)).toBe(true);
    } catch (e) {
      expect((e as { code: string }).code).toMatch(/NotAttached|NotFound/);
    }
    expect(blockFiles(t.dir)).toEqual([]);
    expect(t.engine.check().problems).toEqual([]);
  });
});
