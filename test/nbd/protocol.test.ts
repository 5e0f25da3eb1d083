/**
 * NBD protocol conformance of the attachment server (W2: TLS required on every export),
 * driven by a hand-written client against the in-memory backend.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import { MemoryBackend } from "../../provider/engine/nbd/memory-backend";
import { NbdServer } from "../../provider/engine/nbd/server";
import { P, RawClient, tmpDir, waitFor } from "./helpers";

const MiB = 1024 * 1024;
const A = "att-aaaaaaaa";
const B = "att-bbbbbbbb";

let backend: MemoryBackend;
let server: NbdServer;
let port: number;
let keyA: Buffer;
let keyB: Buffer;
const logs: string[] = [];
const clients: RawClient[] = [];

async function ready(name = A, key?: Buffer): Promise<RawClient> {
  const { c } = await RawClient.hello(port);
  clients.push(c);
  await c.starttls(name, key ?? (name === A ? keyA : keyB));
  return c;
}

async function opened(name = A): Promise<RawClient> {
  const c = await ready(name);
  const replies = await c.goOrInfo(P.NBD_OPT_GO, name);
  expect(replies[replies.length - 1].type).toBe(P.NBD_REP_ACK);
  return c;
}

let keyDir: string;

beforeAll(async () => {
  keyDir = tmpDir("nbd-proto-");
  backend = new MemoryBackend(keyDir);
  keyA = backend.add(A, 4 * MiB).key;
  keyB = backend.add(B, 1 * MiB).key;
  server = new NbdServer({ backend, port: 0, pollIntervalMs: 50, log: (l) => logs.push(l) });
  port = (await server.listen()).port;
});

afterEach(() => {
  for (const c of clients.splice(0)) c.destroy();
});

afterAll(async () => {
  await server.close();
  fs.rmSync(keyDir, { recursive: true, force: true });
});

describe("W2: negotiation requires TLS", () => {
  test("greeting advertises fixed newstyle and no-zeroes", async () => {
    const { c, flags } = await RawClient.hello(port);
    clients.push(c);
    expect(flags).toBe(P.NBD_FLAG_FIXED_NEWSTYLE | P.NBD_FLAG_NO_ZEROES);
  });

  test("options other than STARTTLS/ABORT get NBD_REP_ERR_TLS_REQD before TLS", async () => {
    const { c } = await RawClient.hello(port);
    clients.push(c);
    for (const opt of [P.NBD_OPT_LIST, P.NBD_OPT_STRUCTURED_REPLY, 99]) {
      c.sendOpt(opt);
      const r = await c.optReply();
      expect(r.option).toBe(opt);
      expect(r.type).toBe(P.NBD_REP_ERR_TLS_REQD);
    }
    const go = await c.goOrInfo(P.NBD_OPT_GO, A);
    expect(go.map((r) => r.type)).toEqual([P.NBD_REP_ERR_TLS_REQD]);
    c.sendOpt(P.NBD_OPT_ABORT);
    expect((await c.optReply()).type).toBe(P.NBD_REP_ACK);
    expect(await c.closesWithin(5000)).toBe(true);
  });

  test("plaintext NBD_OPT_EXPORT_NAME ends the session without exposing the export", async () => {
    const { c } = await RawClient.hello(port);
    clients.push(c);
    c.sendOpt(P.NBD_OPT_EXPORT_NAME, Buffer.from(A));
    expect(await c.closesWithin(5000)).toBe(true);
  });

  test("a client that does not speak fixed newstyle, or sets unknown flags, is dropped", async () => {
    const a = await RawClient.hello(port, 0);
    clients.push(a.c);
    expect(await a.c.closesWithin(5000)).toBe(true);
    const b = await RawClient.hello(port, P.NBD_FLAG_C_FIXED_NEWSTYLE | 0x100);
    clients.push(b.c);
    expect(await b.c.closesWithin(5000)).toBe(true);
  });

  test("a wrong PSK fails the TLS handshake", async () => {
    const { c } = await RawClient.hello(port);
    clients.push(c);
    await expect(c.starttls(A, crypto.randomBytes(32))).rejects.toThrow();
    expect(await c.closesWithin(5000)).toBe(true);
  });

  test("an unknown PSK identity fails the TLS handshake", async () => {
    const { c } = await RawClient.hello(port);
    clients.push(c);
    await expect(c.starttls("att-00000000", keyA)).rejects.toThrow();
  });

  test("STARTTLS twice is NBD_REP_ERR_INVALID; STARTTLS with data is NBD_REP_ERR_INVALID", async () => {
    const { c } = await RawClient.hello(port);
    clients.push(c);
    c.sendOpt(P.NBD_OPT_STARTTLS, Buffer.from("x"));
    expect((await c.optReply()).type).toBe(P.NBD_REP_ERR_INVALID);
    await c.starttls(A, keyA);
    c.sendOpt(P.NBD_OPT_STARTTLS);
    expect((await c.optReply()).type).toBe(P.NBD_REP_ERR_INVALID);
  });

  test.each([
    ["TLSv1.3", "TLS_AES_128_GCM_SHA256"],
    ["TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256"],
    ["TLSv1.2", "PSK-AES256-GCM-SHA384"],
    ["TLSv1.2", "DHE-PSK-AES256-GCM-SHA384"],
    ["TLSv1.2", "ECDHE-PSK-CHACHA20-POLY1305"],
  ] as const)("PSK over %s with %s", async (version, cipher) => {
    const { c } = await RawClient.hello(port);
    clients.push(c);
    const t = await c.starttls(A, keyA, { ciphers: cipher, maxVersion: version });
    expect(t.getProtocol()).toBe(version);
    expect(t.getCipher().name).toBe(cipher);
    const go = await c.goOrInfo(P.NBD_OPT_GO, A);
    expect(go[go.length - 1].type).toBe(P.NBD_REP_ACK);
  });

  test("a client connecting right after attach is served without waiting for the next poll", async () => {
    const quiet = new NbdServer({ backend, port: 0, pollIntervalMs: 0, log: () => undefined });
    const p2 = (await quiet.listen()).port;
    try {
      const { key } = backend.add("att-dddddddd", MiB);
      const { c } = await RawClient.hello(p2);
      clients.push(c);
      await c.starttls("att-dddddddd", key);
      const go = await c.goOrInfo(P.NBD_OPT_GO, "att-dddddddd");
      expect(go[go.length - 1].type).toBe(P.NBD_REP_ACK);
      c.destroy();
    } finally {
      backend.remove("att-dddddddd");
      await quiet.close();
    }
  });

  test("an oversized option payload is a hard disconnect", async () => {
    const { c } = await RawClient.hello(port);
    clients.push(c);
    c.sendOpt(P.NBD_OPT_LIST, Buffer.alloc(0), 10 * MiB);
    expect(await c.closesWithin(5000)).toBe(true);
  });
});

describe("after TLS", () => {
  test("INFO reports size, transmission flags and block sizes, then GO enters transmission", async () => {
    const c = await ready();
    const info = await c.goOrInfo(P.NBD_OPT_INFO, A, [P.NBD_INFO_NAME, P.NBD_INFO_BLOCK_SIZE, P.NBD_INFO_DESCRIPTION]);
    expect(info[info.length - 1].type).toBe(P.NBD_REP_ACK);
    const byType = new Map(info.filter((r) => r.type === P.NBD_REP_INFO).map((r) => [r.data.readUInt16BE(0), r.data]));
    const ex = byType.get(P.NBD_INFO_EXPORT)!;
    expect(Number(ex.readBigUInt64BE(2))).toBe(4 * MiB);
    const tflags = ex.readUInt16BE(10);
    for (const f of [P.NBD_FLAG_HAS_FLAGS, P.NBD_FLAG_SEND_FLUSH, P.NBD_FLAG_SEND_FUA, P.NBD_FLAG_SEND_TRIM, P.NBD_FLAG_SEND_WRITE_ZEROES]) expect(tflags & f).toBe(f);
    expect(tflags & P.NBD_FLAG_READ_ONLY).toBe(0);
    expect(byType.get(P.NBD_INFO_NAME)!.subarray(2).toString()).toBe(A);
    const bs = byType.get(P.NBD_INFO_BLOCK_SIZE)!;
    expect([bs.readUInt32BE(2), bs.readUInt32BE(6), bs.readUInt32BE(10)]).toEqual([1, 65536, 32 * MiB]);
    const go = await c.goOrInfo(P.NBD_OPT_GO, A);
    expect(go[go.length - 1].type).toBe(P.NBD_REP_ACK);
    c.request(P.NBD_CMD_READ, { offset: 0, length: 512 });
    const r = await c.reply(512);
    expect(r.error).toBe(0);
    expect(r.data.length).toBe(512);
  });

  test("LIST shows only the export this PSK opens", async () => {
    const c = await ready();
    c.sendOpt(P.NBD_OPT_LIST);
    const names: string[] = [];
    for (;;) {
      const r = await c.optReply();
      if (r.type === P.NBD_REP_ACK) break;
      expect(r.type).toBe(P.NBD_REP_SERVER);
      names.push(r.data.subarray(4, 4 + r.data.readUInt32BE(0)).toString());
    }
    expect(names).toEqual([A]);
  });

  test("one attachment's key cannot open another attachment's export", async () => {
    const c = await ready(A);
    const go = await c.goOrInfo(P.NBD_OPT_GO, B);
    expect(go).toHaveLength(1);
    expect(go[0].type & 0x80000000).toBeTruthy();
    c.sendOpt(P.NBD_OPT_EXPORT_NAME, Buffer.from(B));
    expect(await c.closesWithin(5000)).toBe(true);
  });

  test("unknown export is NBD_REP_ERR_UNKNOWN; empty name means the identity's own export", async () => {
    const c = await ready(A);
    expect((await c.goOrInfo(P.NBD_OPT_INFO, "att-nope"))[0].type).toBe(P.NBD_REP_ERR_UNKNOWN);
    const info = await c.goOrInfo(P.NBD_OPT_INFO, "");
    expect(info[info.length - 1].type).toBe(P.NBD_REP_ACK);
  });

  test("malformed GO and unsupported options are errors, not crashes", async () => {
    const c = await ready(A);
    c.sendOpt(P.NBD_OPT_GO, Buffer.from([0, 0, 0, 200, 1, 2]));
    expect((await c.optReply()).type).toBe(P.NBD_REP_ERR_INVALID);
    c.sendOpt(P.NBD_OPT_EXTENDED_HEADERS);
    expect((await c.optReply()).type).toBe(P.NBD_REP_ERR_UNSUP);
    c.sendOpt(P.NBD_OPT_STRUCTURED_REPLY, Buffer.from("x"));
    expect((await c.optReply()).type).toBe(P.NBD_REP_ERR_INVALID);
    c.sendOpt(P.NBD_OPT_LIST, Buffer.from("junk"));
    expect((await c.optReply()).type).toBe(P.NBD_REP_ERR_INVALID);
    const go = await c.goOrInfo(P.NBD_OPT_GO, A);
    expect(go[go.length - 1].type).toBe(P.NBD_REP_ACK);
  });

  test("NBD_OPT_EXPORT_NAME after TLS returns size and flags (no zero padding with NO_ZEROES)", async () => {
    const c = await ready(A);
    c.sendOpt(P.NBD_OPT_EXPORT_NAME, Buffer.from(A));
    const r = await c.read(10);
    expect(Number(r.readBigUInt64BE(0))).toBe(4 * MiB);
    c.request(P.NBD_CMD_FLUSH, { handle: 7n });
    expect(await c.reply()).toMatchObject({ error: 0, handle: 7n });
  });
});

describe("transmission", () => {
  test("write, read back, write-zeroes, trim, flush with FUA", async () => {
    const c = await opened();
    const data = crypto.randomBytes(200_000);
    c.request(P.NBD_CMD_WRITE, { handle: 1n, offset: 12345, data, flags: P.NBD_CMD_FLAG_FUA });
    expect(await c.reply()).toMatchObject({ error: 0, handle: 1n });
    c.request(P.NBD_CMD_READ, { handle: 2n, offset: 12345, length: data.length });
    const r = await c.reply(data.length);
    expect(r.handle).toBe(2n);
    expect(r.data.equals(data)).toBe(true);
    c.request(P.NBD_CMD_WRITE_ZEROES, { handle: 3n, offset: 20000, length: 1000, flags: P.NBD_CMD_FLAG_NO_HOLE });
    expect((await c.reply()).error).toBe(0);
    c.request(P.NBD_CMD_TRIM, { handle: 4n, offset: 30000, length: 1000 });
    expect((await c.reply()).error).toBe(0);
    const flushesBefore = backend.flushes;
    c.request(P.NBD_CMD_FLUSH, { handle: 5n });
    expect((await c.reply()).error).toBe(0);
    expect(backend.flushes).toBeGreaterThan(flushesBefore);
    const expected = Buffer.from(data);
    expected.fill(0, 20000 - 12345, 21000 - 12345);
    expected.fill(0, 30000 - 12345, 31000 - 12345);
    expect(backend.data(A).subarray(12345, 12345 + data.length).equals(expected)).toBe(true);
  });

  test("requests past the end: READ/TRIM -> EINVAL, WRITE/WRITE_ZEROES -> ENOSPC; connection stays usable", async () => {
    const c = await opened();
    const size = 4 * MiB;
    c.request(P.NBD_CMD_READ, { handle: 1n, offset: size - 10, length: 11 });
    expect((await c.reply()).error).toBe(P.NBD_EINVAL);
    c.request(P.NBD_CMD_WRITE, { handle: 2n, offset: size, data: Buffer.alloc(1) });
    expect((await c.reply()).error).toBe(P.NBD_ENOSPC);
    c.request(P.NBD_CMD_WRITE_ZEROES, { handle: 3n, offset: size - 1, length: 2 });
    expect((await c.reply()).error).toBe(P.NBD_ENOSPC);
    c.request(P.NBD_CMD_TRIM, { handle: 4n, offset: 2n ** 63n, length: 1 });
    expect((await c.reply()).error).toBe(P.NBD_EINVAL);
    c.request(P.NBD_CMD_READ, { handle: 5n, offset: 2n ** 64n - 1n, length: 1 });
    expect((await c.reply()).error).toBe(P.NBD_EINVAL);
    c.request(P.NBD_CMD_READ, { handle: 6n, offset: size - 1, length: 1 });
    expect((await c.reply(1)).error).toBe(0);
  });

  test("unknown commands, unadvertised commands and unknown flags -> EINVAL", async () => {
    const c = await opened();
    c.request(42, { handle: 1n });
    expect((await c.reply()).error).toBe(P.NBD_EINVAL);
    c.request(P.NBD_CMD_BLOCK_STATUS, { handle: 2n, length: 512 });
    expect((await c.reply()).error).toBe(P.NBD_EINVAL);
    c.request(P.NBD_CMD_CACHE, { handle: 3n, length: 512 });
    expect((await c.reply()).error).toBe(P.NBD_EINVAL);
    c.request(P.NBD_CMD_READ, { handle: 4n, length: 512, flags: P.NBD_CMD_FLAG_DF });
    expect((await c.reply()).error).toBe(P.NBD_EINVAL);
    c.request(P.NBD_CMD_WRITE, { handle: 5n, data: Buffer.alloc(512, 1), flags: 0x8000 });
    expect((await c.reply()).error).toBe(P.NBD_EINVAL);
    c.request(P.NBD_CMD_WRITE_ZEROES, { handle: 6n, length: 512, flags: P.NBD_CMD_FLAG_FAST_ZERO });
    expect((await c.reply()).error).toBe(P.NBD_EINVAL);
    c.request(P.NBD_CMD_FLUSH, { handle: 7n, offset: 1 });
    expect((await c.reply()).error).toBe(P.NBD_EINVAL);
    // The rejected WRITE's payload was consumed: the stream is still in sync.
    c.request(P.NBD_CMD_READ, { handle: 8n, length: 512 });
    const r = await c.reply(512);
    expect(r).toMatchObject({ error: 0, handle: 8n });
  });

  test("a READ over 32 MiB is EINVAL; a WRITE over 32 MiB is a hard disconnect", async () => {
    const c = await opened();
    c.request(P.NBD_CMD_READ, { handle: 1n, length: 32 * MiB + 1 });
    expect((await c.reply()).error).toBe(P.NBD_EINVAL);
    c.request(P.NBD_CMD_WRITE, { handle: 2n, length: 0xffffffff });
    expect(await c.closesWithin(5000)).toBe(true);
  });

  test("bad request magic is a hard disconnect", async () => {
    const c = await opened();
    c.send(Buffer.alloc(28, 0x55));
    expect(await c.closesWithin(5000)).toBe(true);
  });

  test("backpressure: 400 pipelined 64 KiB writes all complete, in order", async () => {
    const c = await opened();
    const chunk = crypto.randomBytes(65536);
    for (let i = 0; i < 400; i++) c.request(P.NBD_CMD_WRITE, { handle: BigInt(i), offset: (i % 64) * 65536, data: chunk });
    for (let i = 0; i < 400; i++) expect(await c.reply()).toMatchObject({ error: 0, handle: BigInt(i) });
  });

  test("NBD_CMD_DISC closes the connection", async () => {
    const c = await opened();
    c.request(P.NBD_CMD_DISC);
    expect(await c.closesWithin(5000)).toBe(true);
  });

  test("a backend error becomes NBD_EIO and is logged, not a crash", async () => {
    const c = await opened();
    const orig = backend.read.bind(backend);
    backend.read = () => {
      throw Object.assign(new Error("unit failed authentication"), { code: "DataCorruption.UnitAuthenticationFailed" });
    };
    try {
      c.request(P.NBD_CMD_READ, { handle: 1n, length: 512 });
      expect((await c.reply()).error).toBe(P.NBD_EIO);
    } finally {
      backend.read = orig;
    }
    expect(logs.some((l) => l.includes("DataCorruption.UnitAuthenticationFailed"))).toBe(true);
    c.request(P.NBD_CMD_READ, { handle: 2n, length: 512 });
    expect((await c.reply(512)).error).toBe(0);
  });
});

describe("structured replies", () => {
  async function structured(): Promise<RawClient> {
    const c = await ready();
    const meta = Buffer.alloc(8);
    c.sendOpt(P.NBD_OPT_LIST_META_CONTEXT, meta);
    expect((await c.optReply()).type).toBe(P.NBD_REP_ERR_INVALID); // before STRUCTURED_REPLY
    c.sendOpt(P.NBD_OPT_STRUCTURED_REPLY);
    expect((await c.optReply()).type).toBe(P.NBD_REP_ACK);
    const q = Buffer.from("base:allocation");
    const name = Buffer.from(A);
    const set = Buffer.alloc(4 + name.length + 4 + 4 + q.length);
    set.writeUInt32BE(name.length, 0);
    name.copy(set, 4);
    set.writeUInt32BE(1, 4 + name.length);
    set.writeUInt32BE(q.length, 8 + name.length);
    q.copy(set, 12 + name.length);
    c.sendOpt(P.NBD_OPT_SET_META_CONTEXT, set);
    expect((await c.optReply()).type).toBe(P.NBD_REP_ACK); // no context offered
    c.sendOpt(P.NBD_OPT_SET_META_CONTEXT, set.subarray(0, set.length - 1));
    expect((await c.optReply()).type).toBe(P.NBD_REP_ERR_INVALID);
    const info = await c.goOrInfo(P.NBD_OPT_GO, A);
    const ex = info.find((r) => r.type === P.NBD_REP_INFO && r.data.readUInt16BE(0) === P.NBD_INFO_EXPORT)!;
    expect(ex.data.readUInt16BE(10) & P.NBD_FLAG_SEND_DF).toBe(P.NBD_FLAG_SEND_DF);
    return c;
  }

  test("a read spanning data and zero units comes back as data and hole chunks, DONE last", async () => {
    const U = 65536;
    const d = backend.data(A);
    d.fill(0, 0, 8 * U);
    const x = crypto.randomBytes(U);
    x.copy(d, 2 * U);
    d[5 * U + 7] = 9;
    const c = await structured();
    c.request(P.NBD_CMD_READ, { handle: 11n, offset: 100, length: 7 * U });
    const r = await c.structuredReply(100, 7 * U);
    expect(r.error).toBe(0);
    expect(r.chunks.every((k) => k.handle === 11n)).toBe(true);
    expect(r.chunks.filter((k) => k.flags & P.NBD_REPLY_FLAG_DONE)).toHaveLength(1);
    expect(r.chunks[r.chunks.length - 1].flags & P.NBD_REPLY_FLAG_DONE).toBeTruthy();
    const D = P.NBD_REPLY_TYPE_OFFSET_DATA;
    const H = P.NBD_REPLY_TYPE_OFFSET_HOLE;
    // 100..64K partial unit: data; unit 1 zero; unit 2 data; units 3-4 zero; unit 5 data; unit 6 zero; partial unit 7: data.
    expect(r.chunks.map((k) => k.type)).toEqual([D, H, D, H, D, H, D]);
    expect(r.data.equals(d.subarray(100, 100 + 7 * U))).toBe(true);
  });

  test("DF gets one data chunk; an error is an error chunk; other commands keep simple replies", async () => {
    const c = await structured();
    c.request(P.NBD_CMD_READ, { handle: 1n, offset: 0, length: 300000, flags: P.NBD_CMD_FLAG_DF });
    const r = await c.structuredReply(0, 300000);
    expect(r.chunks).toHaveLength(1);
    expect(r.chunks[0].type).toBe(P.NBD_REPLY_TYPE_OFFSET_DATA);
    expect(r.data.equals(backend.data(A).subarray(0, 300000))).toBe(true);
    c.request(P.NBD_CMD_READ, { handle: 2n, offset: 4 * MiB, length: 1 });
    const e = await c.structuredReply(4 * MiB, 1);
    expect(e.error).toBe(P.NBD_EINVAL);
    expect(e.chunks).toHaveLength(1);
    expect(e.chunks[0].type).toBe(P.NBD_REPLY_TYPE_ERROR);
    c.request(P.NBD_CMD_READ, { handle: 3n, offset: 0, length: 0 });
    expect((await c.structuredReply(0, 0)).chunks.map((k) => k.type)).toEqual([P.NBD_REPLY_TYPE_NONE]);
    c.request(P.NBD_CMD_FLUSH, { handle: 4n });
    expect(await c.reply()).toMatchObject({ error: 0, handle: 4n });
  });

  test("servers can turn structured replies off", async () => {
    const plain = new NbdServer({ backend, port: 0, pollIntervalMs: 0, structuredReplies: false, log: () => undefined });
    const p2 = (await plain.listen()).port;
    try {
      const { c } = await RawClient.hello(p2);
      clients.push(c);
      await c.starttls(A, keyA);
      c.sendOpt(P.NBD_OPT_STRUCTURED_REPLY);
      expect((await c.optReply()).type).toBe(P.NBD_REP_ERR_UNSUP);
    } finally {
      await plain.close();
    }
  });
});

describe("never crashes", () => {
  // Deterministic PRNG so a failure reproduces.
  let seed = 0x2545f491;
  const rnd = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => rnd(256)));

  test("random bytes at every stage, random options, random requests: the server keeps serving", async () => {
    for (let i = 0; i < 30; i++) {
      const { c } = await RawClient.hello(port, rnd(4));
      clients.push(c);
      c.send(bytes(rnd(200)));
      c.destroy();
    }
    for (let i = 0; i < 30; i++) {
      const { c } = await RawClient.hello(port);
      clients.push(c);
      c.sendOpt(rnd(16), bytes(rnd(64)));
      if (!(await c.closesWithin(20))) c.destroy();
    }
    for (let i = 0; i < 20; i++) {
      const c = await ready();
      clients.push(c);
      c.sendOpt(rnd(16), bytes(rnd(64)));
      c.send(bytes(rnd(64)));
      c.destroy();
    }
    const c = await opened();
    const types = [P.NBD_CMD_READ, P.NBD_CMD_WRITE, P.NBD_CMD_FLUSH, P.NBD_CMD_TRIM, P.NBD_CMD_WRITE_ZEROES, P.NBD_CMD_CACHE, P.NBD_CMD_BLOCK_STATUS, 9, 200];
    const size = 4 * MiB;
    for (let i = 0; i < 300; i++) {
      const type = types[rnd(types.length)];
      const flags = rnd(4) === 0 ? rnd(65536) : rnd(2) * P.NBD_CMD_FLAG_FUA;
      const offset = rnd(3) === 0 ? BigInt(rnd(2 ** 31)) * BigInt(rnd(2 ** 31) + 1) : BigInt(rnd(size));
      const length = rnd(3) === 0 ? rnd(2 * MiB) : rnd(70000);
      c.request(type, { handle: BigInt(i), flags, offset, length, data: type === P.NBD_CMD_WRITE ? Buffer.alloc(length, i & 0xff) : undefined });
      const r = await c.reply(type === P.NBD_CMD_READ ? length : 0);
      expect(r.handle).toBe(BigInt(i));
      const inRange = offset + BigInt(length) <= BigInt(size);
      if (r.error === 0) expect(inRange).toBe(true);
      if (type === P.NBD_CMD_READ && r.error === 0) expect(r.data.length).toBe(length);
    }
    // Still healthy for a well-behaved client.
    const ok = await opened();
    ok.request(P.NBD_CMD_READ, { handle: 99n, offset: 0, length: 4096 });
    expect((await ok.reply(4096)).error).toBe(0);
  });
});

describe("following attachments", () => {
  test("a new export appears; removing it closes its connections and it can no longer be opened", async () => {
    const dir = tmpDir("nbd-follow-");
    const name = "att-cccccccc";
    const { key, pskFile } = (() => {
      const r = backend.add(name, 2 * MiB);
      return { key: r.key, pskFile: r.pskFile! };
    })();
    expect(fs.statSync(pskFile).mode & 0o777).toBe(0o600);
    await waitFor(() => logs.some((l) => l.includes(`export ${name} added`)));
    expect(logs.some((l) => l.includes(`export ${name} added`))).toBe(true);
    const { c } = await RawClient.hello(port);
    clients.push(c);
    await c.starttls(name, key);
    const go = await c.goOrInfo(P.NBD_OPT_GO, name);
    expect(go[go.length - 1].type).toBe(P.NBD_REP_ACK);
    backend.remove(name);
    expect(await c.closesWithin(5000)).toBe(true);
    expect(logs.some((l) => l.includes(`export ${name} removed`))).toBe(true);
    const again = await RawClient.hello(port);
    clients.push(again.c);
    await expect(again.c.starttls(name, key)).rejects.toThrow();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test("keys are released when the last client leaves", async () => {
    const before = backend.releases;
    const c = await opened();
    c.request(P.NBD_CMD_DISC);
    await c.closesWithin(5000);
    await waitFor(() => server.connectionCount === 0);
    expect(backend.releases).toBeGreaterThan(before);
  });
});
