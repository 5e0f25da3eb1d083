import { execFileSync, spawn } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { ErrorCodes, openEngine, UNIT } from "../../provider/engine";
import { BlockStore } from "../../provider/engine/blockstore/blockstore";
import { anyFileContains, errorOf, filesUnder, pattern, setupEncrypted, tempEngine, ZONE, type TestEngine } from "./helpers";

let t: TestEngine;
beforeEach(() => (t = tempEngine()));
afterEach(() => t.cleanup());

const blockFiles = (dir: string) => filesUnder(path.join(dir, "blocks"));

describe("block store", () => {
  test("K1: bytes on storage hold neither the written plaintext nor equal ciphertext for equal data on two disks", () => {
    const one = setupEncrypted(t.engine);
    const d2 = t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
    const a2 = t.engine.attachDisk({ diskId: d2.diskId, instanceId: one.instance.instanceId });
    const p = pattern(4 << 20, "K1-SECRET");
    t.engine.write(one.att.attachmentId, 0, p);
    t.engine.write(a2.attachmentId, 0, p);
    t.engine.flush(a2.attachmentId);
    expect(anyFileContains(t.dir, Buffer.from("K1-SECRET-0123456789-"))).toBeNull();
    const files = blockFiles(t.dir);
    expect(files).toHaveLength(2);
    const [x, y] = files.map((f) => fs.readFileSync(f).subarray(0, UNIT));
    expect(x.equals(y)).toBe(false);
    // AES output looks random: roughly 8 bits of entropy per byte
    const counts = new Array(256).fill(0);
    for (const b of x) counts[b]++;
    const entropy = -counts.filter(Boolean).reduce((s, c) => s + (c / x.length) * Math.log2(c / x.length), 0);
    expect(entropy).toBeGreaterThan(7.9);
  });

  test("K4: no DK, CMK or root key in plaintext anywhere under the engine directory after a full scenario", () => {
    const { disk, att } = setupEncrypted(t.engine);
    t.engine.write(att.attachmentId, 0, pattern(1 << 20));
    t.engine.createSnapshot({ diskId: disk.diskId });
    t.engine.migrateDisk({ sourceDiskId: disk.diskId, encrypt: false });
    const r = t.engine.verifyNoKeyMaterial();
    expect(r.findings).toEqual([]);
    expect(r.bytesScanned).toBeGreaterThan(1 << 20);
    const cli = execFileSync(process.execPath, [path.resolve(__dirname, "../../bin/encdisk.js"), "verify", "--dir", t.dir, "--kms-root-key-file", t.keyFile, "--json"]).toString();
    expect(JSON.parse(cli).findings).toEqual([]);
  });

  test("plain disks use the same path without the cipher: their bytes are the data", () => {
    t.engine.authorizeKms();
    const d = t.engine.createDisk({ zone: ZONE, sizeGb: 10 });
    const ins = t.engine.createInstance({ zone: ZONE, instanceType: "S5.MEDIUM4" });
    const a = t.engine.attachDisk({ diskId: d.diskId, instanceId: ins.instanceId });
    t.engine.write(a.attachmentId, 0, pattern(UNIT, "PLAIN-DATA"));
    expect(anyFileContains(t.dir, Buffer.from("PLAIN-DATA-0123456789-"))).not.toBeNull();
  });

  test("a flipped byte in a stored unit makes the read fail with a stable code, never return garbage", () => {
    const { att } = setupEncrypted(t.engine);
    t.engine.write(att.attachmentId, 0, pattern(2 * UNIT));
    t.engine.flush(att.attachmentId);
    const [file] = blockFiles(t.dir);
    const fd = fs.openSync(file, "r+");
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, UNIT + 100);
    b[0] ^= 0x01;
    fs.writeSync(fd, b, 0, 1, UNIT + 100);
    fs.closeSync(fd);
    const e = t.reopen();
    expect(e.read(att.attachmentId, 0, UNIT).equals(pattern(UNIT))).toBe(true); // the untouched unit
    const err = errorOf(() => e.read(att.attachmentId, UNIT, 10));
    expect(err.code).toBe(ErrorCodes.DataIntegrity);
    expect(err.message).toMatch(/unit 1 .* failed authentication/);
    expect(errorOf(() => e.read(att.attachmentId, 0, 2 * UNIT)).code).toBe(ErrorCodes.DataIntegrity);
  });

  test("block files are sparse: a 1 TiB disk with 1 MiB written occupies about 1 MiB", () => {
    const { att } = setupEncrypted(t.engine, 1024);
    t.engine.write(att.attachmentId, 512 * 1024 ** 3, pattern(1 << 20));
    const used = blockFiles(t.dir).reduce((s, f) => s + fs.statSync(f).blocks * 512, 0);
    expect(used).toBeLessThan(4 << 20);
  });

  test("files are 0600 and directories 0700", () => {
    const { att } = setupEncrypted(t.engine);
    t.engine.write(att.attachmentId, 0, pattern(UNIT));
    for (const f of filesUnder(t.dir)) expect([f, fs.statSync(f).mode & 0o777]).toEqual([f, 0o600]);
    for (const d of [t.dir, path.join(t.dir, "blocks"), path.join(t.dir, "nbd")]) expect([d, fs.statSync(d).mode & 0o777]).toEqual([d, 0o700]);
  });

  test("overwrites are copy-on-write: slots are reused once freed, and the invariant check stays clean", () => {
    const { att } = setupEncrypted(t.engine);
    for (let i = 0; i < 20; i++) t.engine.write(att.attachmentId, 0, pattern(8 * UNIT, `round-${i}`));
    expect(t.engine.read(att.attachmentId, 0, 8 * UNIT).equals(pattern(8 * UNIT, "round-19"))).toBe(true);
    expect(fs.statSync(blockFiles(t.dir)[0]).size).toBeLessThanOrEqual(16 * UNIT);
    expect(t.engine.check().problems).toEqual([]);
  });

  test.each([
    ["with the read cache", {}],
    ["without the read cache", { readCacheMib: 0 }],
  ])("W1: random writes and reads of any size and alignment match a model of the disk (%s)", (_name, opts) => {
    // Exercises every read and write shape: partial head/tail units, runs longer than one
    // cipher call (64 units), zero units (holes), runs decrypted straight into the result and
    // runs copied out of the reused buffer, cache hits, and pooled write buffers reused.
    const e = t.reopen(opts);
    const { att } = setupEncrypted(e);
    const size = 24 << 20;
    const model = Buffer.alloc(size);
    let seed = 12345;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let i = 0; i < 60; i++) {
      const len = [1, UNIT, 3 * UNIT + 17, 64 * UNIT, 70 * UNIT, 300 * UNIT][rnd(6)];
      const off = rnd(4) === 0 ? rnd(size / UNIT - 300) * UNIT : rnd(size - len);
      const data = crypto.randomBytes(len);
      if (rnd(3) === 0) data.fill(0, 0, Math.min(len, 2 * UNIT)); // zero units become holes
      e.write(att.attachmentId, off, data);
      data.copy(model, off);
      for (let r = 0; r < 3; r++) {
        const rl = [1, 4096, UNIT, 5 * UNIT, 64 * UNIT, 100 * UNIT + 3][rnd(6)];
        const ro = rnd(2) === 0 ? rnd(size / UNIT - 101) * UNIT : rnd(size - rl);
        expect(e.read(att.attachmentId, ro, rl).equals(model.subarray(ro, ro + rl))).toBe(true);
      }
    }
    for (let pass = 0; pass < 3; pass++) expect(e.read(att.attachmentId, 0, size).equals(model)).toBe(true); // the cache fills, then serves
    expect(e.check().problems).toEqual([]);
  });

  test("W2: flush fsyncs the block file of the flushed disk, once, and not the files of other disks", () => {
    const one = setupEncrypted(t.engine);
    const d2 = t.engine.createDisk({ zone: ZONE, sizeGb: 10, encrypt: true });
    const a2 = t.engine.attachDisk({ diskId: d2.diskId, instanceId: one.instance.instanceId }).attachmentId;
    t.engine.write(one.att.attachmentId, 0, pattern(UNIT));
    t.engine.write(a2, 0, pattern(UNIT));
    const synced: number[] = [];
    // The fs module itself (what the block store calls), not this file's import * wrapper.
    const spy = jest.spyOn(require("fs") as typeof fs, "fdatasyncSync").mockImplementation((fd) => void synced.push(fd as number));
    try {
      t.engine.flush(one.att.attachmentId);
      expect(synced).toHaveLength(1);
      t.engine.flush(one.att.attachmentId); // nothing written since
      expect(synced).toHaveLength(1);
      t.engine.flush(a2);
      expect(synced).toHaveLength(2);
      expect(synced[0]).not.toBe(synced[1]);
    } finally {
      spy.mockRestore();
    }
  });

  test("W1: a write that fails inside its transaction changes nothing, and the writes after it (reusing its pooled buffers) are intact", () => {
    const { att } = setupEncrypted(t.engine);
    const a = att.attachmentId;
    const before = crypto.randomBytes(8 << 20);
    t.engine.write(a, 0, before);
    const proto = BlockStore.prototype as unknown as { commitWrite: (...args: unknown[]) => void };
    const spy = jest.spyOn(proto, "commitWrite").mockImplementationOnce(() => {
      throw new Error("injected failure inside the transaction");
    });
    try {
      expect(() => t.engine.write(a, 0, crypto.randomBytes(8 << 20))).toThrow("injected failure");
    } finally {
      spy.mockRestore();
    }
    expect(t.engine.read(a, 0, 8 << 20).equals(before)).toBe(true);
    const after = [crypto.randomBytes(8 << 20), crypto.randomBytes(8 << 20)];
    t.engine.write(a, 8 << 20, after[0]);
    t.engine.write(a, 16 << 20, after[1]);
    expect(t.engine.read(a, 0, 24 << 20).equals(Buffer.concat([before, ...after]))).toBe(true);
    expect(t.engine.check().problems).toEqual([]);
  });

  test("two processes working on one engine directory lose nothing", async () => {
    const engineJs = path.resolve(__dirname, "../../dist/provider/engine/index.js");
    t.engine.authorizeKms();
    const worker = `
      const { openEngine } = require(${JSON.stringify(engineJs)});
      const e = openEngine({ dir: ${JSON.stringify(t.dir)}, kmsRootKeyFile: ${JSON.stringify(t.keyFile)} });
      const tag = process.argv[1];
      const ins = e.createInstance({ zone: "${ZONE}", instanceType: "S5.MEDIUM4" });
      const ids = [];
      for (let i = 0; i < 25; i++) {
        const d = e.createDisk({ zone: "${ZONE}", sizeGb: 10, encrypt: i % 2 === 0, name: tag + "-" + i });
        const a = e.attachDisk({ diskId: d.diskId, instanceId: ins.instanceId });
        e.write(a.attachmentId, i * 1000, Buffer.from(tag + "-" + i));
        e.createSnapshot({ diskId: d.diskId });
        ids.push([a.attachmentId, i]);
      }
      for (const [a, i] of ids) if (e.read(a, i * 1000, (tag + "-" + i).length).toString() !== tag + "-" + i) throw new Error("lost write " + a);
      e.close();
      process.stdout.write("ok");
    `;
    const run = (tag: string) =>
      new Promise<string>((resolve, reject) => {
        const p = spawn(process.execPath, ["-e", worker, tag], { stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        let err = "";
        p.stdout.on("data", (d) => (out += d));
        p.stderr.on("data", (d) => (err += d));
        p.on("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`worker ${tag} exited ${code}: ${err}`))));
      });
    expect(await Promise.all([run("A"), run("B")])).toEqual(["ok", "ok"]);
    const e = openEngine({ dir: t.dir, kmsRootKeyFile: t.keyFile });
    try {
      expect(e.listDisks()).toHaveLength(50);
      expect(e.listSnapshots()).toHaveLength(50);
      // 2 workers x 13 encrypted disks x (create + attach + snapshot), billed exactly once each
      expect(e.kmsUsage("ap-guangzhou")[0].calls).toBe(78);
      expect(e.listKeys()).toHaveLength(1);
      expect(e.check().problems).toEqual([]);
    } finally {
      e.close();
    }
  });
});
