/**
 * Requests in flight at once on one NBD connection, driven by a hand-written client against a
 * backend whose reads and writes complete only when the test says so (so they resolve in any
 * order the test picks): replies out of order by handle, the per-connection bounds, FLUSH /
 * FUA / TRIM ordering, failures that stay with their request, and DISC, close and shutdown
 * waiting for what is in flight.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import type { ExportBackend, ExportInfo } from "../../provider/engine/nbd/backend";
import { MemoryBackend } from "../../provider/engine/nbd/memory-backend";
import { MAX_INFLIGHT_BYTES, MAX_INFLIGHT_REQUESTS, NbdServer } from "../../provider/engine/nbd/server";
import { P, RawClient, tmpDir, waitFor } from "./helpers";

const MiB = 1024 * 1024;
const U = 65536;
const A = "att-aaaaaaaa";
const BIG = "att-bbbbbbbb";

interface Held {
  kind: "read" | "write";
  offset: number;
  length: number;
  release(): void;
  fail(e: Error): void;
}

/**
 * An in-memory backend whose `read` and `write` return Promises held until the test releases
 * them (a write lands only when released, as the engine's commit does). `flush`, `trim` and
 * `writeZeroes` stay synchronous. Records what ran, in order.
 */
class GatedBackend implements ExportBackend {
  readonly mem: MemoryBackend;
  /** When false, reads and writes complete on the next turn of the event loop. */
  gated = true;
  held: Held[] = [];
  inflight = 0;
  maxInflight = 0;
  events: string[] = [];
  releases = 0;
  closes = 0;
  private waiters: (() => void)[] = [];

  constructor(keyDir: string) {
    this.mem = new MemoryBackend(keyDir);
  }

  add(name: string, size: number): { key: Buffer } {
    return this.mem.add(name, size);
  }

  remove(name: string): void {
    this.mem.remove(name);
  }

  data(name: string): Buffer {
    return this.mem.data(name);
  }

  get flushes(): number {
    return this.mem.flushes;
  }

  list(): ExportInfo[] {
    return this.mem.list();
  }

  pskKey(identity: string): Buffer | null {
    return this.mem.pskKey(identity);
  }

  read(name: string, offset: number, length: number): Promise<Buffer> {
    return this.hold("read", offset, length, () => this.mem.read(name, offset, length));
  }

  write(name: string, offset: number, data: Buffer): Promise<void> {
    const copy = Buffer.from(data);
    return this.hold("write", offset, data.length, () => this.mem.write(name, offset, copy));
  }

  writeZeroes(name: string, offset: number, length: number): void {
    this.events.push(`zero ${offset}`);
    this.mem.writeZeroes(name, offset, length);
  }

  trim(name: string, offset: number, length: number): void {
    this.events.push(`trim ${offset}`);
    this.mem.trim(name, offset, length);
  }

  flush(name: string): void {
    this.events.push(`flush (${this.inflight} in flight)`);
    this.mem.flush(name);
  }

  release(): void {
    this.releases++;
  }

  close(): void {
    this.closes++;
  }

  private hold<T>(kind: "read" | "write", offset: number, length: number, run: () => T): Promise<T> {
    this.inflight++;
    this.maxInflight = Math.max(this.maxInflight, this.inflight);
    this.events.push(`${kind} ${offset} start`);
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const end = (): boolean => {
        if (settled) return false;
        settled = true;
        this.inflight--;
        return true;
      };
      const h: Held = {
        kind,
        offset,
        length,
        release: () => {
          if (!end()) return;
          try {
            resolve(run());
            this.events.push(`${kind} ${offset} done`);
          } catch (e) {
            reject(e);
          }
        },
        fail: (e) => {
          if (end()) reject(e);
        },
      };
      if (!this.gated) setImmediate(h.release);
      else {
        this.held.push(h);
        for (const w of this.waiters.splice(0)) w();
      }
    });
  }

  /** Waits until `n` requests are held. */
  async waitHeld(n: number, ms = 5000): Promise<void> {
    const end = Date.now() + ms;
    while (this.held.length < n) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${n} held requests (have ${this.held.length})`);
      await Promise.race([new Promise<void>((r) => this.waiters.push(r)), new Promise((r) => setTimeout(r, 20))]);
    }
  }

  /** Removes and returns the held request at `offset` (of `kind`, if given). */
  take(offset: number, kind?: "read" | "write"): Held {
    const i = this.held.findIndex((h) => h.offset === offset && (!kind || h.kind === kind));
    if (i < 0) throw new Error(`nothing held at ${offset}`);
    return this.held.splice(i, 1)[0];
  }

  releaseAll(): void {
    for (const h of this.held.splice(0)) h.release();
  }
}

let backend: GatedBackend;
let server: NbdServer;
let port: number;
let keyA: Buffer;
let keyBig: Buffer;
let keyDir: string;
const logs: string[] = [];
const clients: RawClient[] = [];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function opened(opts: { name?: string; structured?: boolean; port?: number } = {}): Promise<RawClient> {
  const name = opts.name ?? A;
  const c = await RawClient.open(opts.port ?? port, name, name === A ? keyA : keyBig, { structured: opts.structured });
  clients.push(c);
  return c;
}

beforeAll(async () => {
  keyDir = tmpDir("nbd-conc-");
  backend = new GatedBackend(keyDir);
  keyA = backend.add(A, 4 * MiB).key;
  keyBig = backend.add(BIG, 96 * MiB).key;
  server = new NbdServer({ backend, port: 0, pollIntervalMs: 50, log: (l) => logs.push(l) });
  port = (await server.listen()).port;
});

beforeEach(() => {
  backend.gated = true;
  backend.maxInflight = backend.inflight;
  backend.events = [];
});

afterEach(async () => {
  backend.gated = false;
  backend.releaseAll();
  for (const c of clients.splice(0)) c.destroy();
  await waitFor(() => server.connectionCount === 0);
});

afterAll(async () => {
  await server.close();
  fs.rmSync(keyDir, { recursive: true, force: true });
});

describe("requests in flight on one connection", () => {
  test("reads and writes resolved out of order are answered as each completes, matched by handle", async () => {
    const c = await opened();
    const d = backend.data(A);
    crypto.randomFillSync(d, 0, 8 * U);
    const before = Buffer.from(d.subarray(0, 8 * U));
    const w = crypto.randomBytes(U);
    c.request(P.NBD_CMD_READ, { handle: 1n, offset: 0, length: U });
    c.request(P.NBD_CMD_READ, { handle: 2n, offset: 2 * U, length: 3 * U });
    c.request(P.NBD_CMD_WRITE, { handle: 3n, offset: 6 * U, data: w });
    c.request(P.NBD_CMD_READ, { handle: 4n, offset: 7 * U + 5, length: 100 });
    await backend.waitHeld(4);
    const lengths = new Map([[1n, U], [2n, 3 * U], [4n, 100]]);
    // Release in the order 4, 3, 1, 2: the replies follow that order.
    const got: bigint[] = [];
    for (const [off, kind] of [[7 * U + 5, "read"], [6 * U, "write"], [0, "read"], [2 * U, "read"]] as const) {
      backend.take(off, kind).release();
      const r = await c.anyReply(lengths);
      expect(r.error).toBe(0);
      got.push(r.handle);
      if (r.handle === 1n) expect(r.data.equals(before.subarray(0, U))).toBe(true);
      if (r.handle === 2n) expect(r.data.equals(before.subarray(2 * U, 5 * U))).toBe(true);
      if (r.handle === 4n) expect(r.data.equals(before.subarray(7 * U + 5, 7 * U + 105))).toBe(true);
    }
    expect(got).toEqual([4n, 3n, 1n, 2n]);
    expect(backend.data(A).subarray(6 * U, 7 * U).equals(w)).toBe(true);
    expect(backend.maxInflight).toBe(4);
  });

  test("structured replies out of order: each read's chunks arrive whole and together, DONE last", async () => {
    const c = await opened({ structured: true });
    const d = backend.data(A);
    d.fill(0, 0, 4 * U);
    crypto.randomFillSync(d, U, U); // unit 1 data, units 0, 2, 3 holes
    crypto.randomFillSync(d, 8 * U, 2 * U);
    c.request(P.NBD_CMD_READ, { handle: 10n, offset: 0, length: 4 * U });
    c.request(P.NBD_CMD_READ, { handle: 11n, offset: 8 * U, length: 2 * U });
    await backend.waitHeld(2);
    backend.take(8 * U).release();
    backend.take(0).release();
    const chunks: { handle: bigint; type: number; flags: number }[] = [];
    const data = new Map([[10n, Buffer.alloc(4 * U, 0xff)], [11n, Buffer.alloc(2 * U, 0xff)]]);
    const base = new Map([[10n, 0], [11n, 8 * U]]);
    let done = 0;
    while (done < 2) {
      const k = await c.anyChunk();
      chunks.push(k);
      const buf = data.get(k.handle)!;
      const at = Number(k.payload.readBigUInt64BE(0)) - base.get(k.handle)!;
      if (k.type === P.NBD_REPLY_TYPE_OFFSET_DATA) k.payload.copy(buf, at, 8);
      else if (k.type === P.NBD_REPLY_TYPE_OFFSET_HOLE) buf.fill(0, at, at + k.payload.readUInt32BE(8));
      else throw new Error(`unexpected chunk type ${k.type}`);
      if (k.flags & P.NBD_REPLY_FLAG_DONE) done++;
    }
    // All of 11's chunks (released first), then all of 10's: never interleaved.
    const order = chunks.map((k) => k.handle);
    expect(order).toEqual([...order.filter((h) => h === 11n), ...order.filter((h) => h === 10n)]);
    expect(order[0]).toBe(11n);
    expect(chunks.filter((k) => k.handle === 10n).map((k) => k.type)).toEqual([P.NBD_REPLY_TYPE_OFFSET_HOLE, P.NBD_REPLY_TYPE_OFFSET_DATA, P.NBD_REPLY_TYPE_OFFSET_HOLE]);
    expect(data.get(10n)!.equals(d.subarray(0, 4 * U))).toBe(true);
    expect(data.get(11n)!.equals(d.subarray(8 * U, 10 * U))).toBe(true);
  });

  test("a request failing does not disturb the others in flight; errors map to NBD codes as before", async () => {
    const c = await opened();
    for (let i = 0; i < 5; i++) c.request(P.NBD_CMD_READ, { handle: BigInt(i), offset: i * U, length: 512 });
    c.request(P.NBD_CMD_WRITE, { handle: 5n, offset: 5 * U, data: Buffer.alloc(512, 7) });
    await backend.waitHeld(6);
    backend.take(U).fail(Object.assign(new Error("unit failed authentication"), { code: "DataCorruption.UnitAuthenticationFailed" }));
    backend.take(2 * U).fail(Object.assign(new Error("detached"), { code: "ResourceUnavailable.NotAttached" }));
    backend.take(3 * U).fail(Object.assign(new Error("out of range"), { code: "InvalidParameterValue.OutOfRange" }));
    backend.take(5 * U).fail(Object.assign(new Error("out of range"), { code: "InvalidParameterValue.OutOfRange" }));
    backend.releaseAll();
    const lengths = new Map([0n, 1n, 2n, 3n, 4n].map((h) => [h, 512]));
    const byHandle = new Map<bigint, number>();
    for (let i = 0; i < 6; i++) {
      const r = await c.anyReply(lengths);
      byHandle.set(r.handle, r.error);
    }
    expect(Object.fromEntries([...byHandle].map(([h, e]) => [String(h), e]))).toEqual({
      "0": 0,
      "1": P.NBD_EIO,
      "2": P.NBD_ESHUTDOWN,
      "3": P.NBD_EINVAL,
      "4": 0,
      "5": P.NBD_ENOSPC,
    });
    expect(logs.some((l) => l.includes("DataCorruption.UnitAuthenticationFailed"))).toBe(true);
    // The connection goes on.
    backend.gated = false;
    c.request(P.NBD_CMD_READ, { handle: 9n, offset: 0, length: 16 });
    expect(await c.anyReply(new Map([[9n, 16]]))).toMatchObject({ error: 0, handle: 9n });
  });

  test(`at most ${MAX_INFLIGHT_REQUESTS} requests in flight: the server stops reading at the bound and resumes as they complete`, async () => {
    const c = await opened();
    const n = 3 * MAX_INFLIGHT_REQUESTS;
    for (let i = 0; i < n; i++) c.request(P.NBD_CMD_READ, { handle: BigInt(i), offset: i * 1024, length: 1024 });
    await backend.waitHeld(MAX_INFLIGHT_REQUESTS);
    await sleep(150);
    expect(backend.held).toHaveLength(MAX_INFLIGHT_REQUESTS);
    const lengths = new Map(Array.from({ length: n }, (_, i) => [BigInt(i), 1024] as [bigint, number]));
    const seen = new Set<bigint>();
    while (seen.size < n) {
      await backend.waitHeld(1);
      // Newest first: completion order is the reverse of arrival within what is held.
      backend.held.pop()!.release();
      const r = await c.anyReply(lengths);
      expect(r.error).toBe(0);
      seen.add(r.handle);
      expect(backend.inflight).toBeLessThanOrEqual(MAX_INFLIGHT_REQUESTS);
    }
    expect(backend.maxInflight).toBe(MAX_INFLIGHT_REQUESTS);
  });

  test(`at most ${MAX_INFLIGHT_BYTES / MiB} MiB of payload in flight; one request up to 32 MiB always fits`, async () => {
    const c = await opened({ name: BIG });
    // Three 32 MiB reads: two fit in the budget, the third waits for one of them.
    for (let i = 0; i < 3; i++) c.request(P.NBD_CMD_READ, { handle: BigInt(i), offset: i * MiB, length: 32 * MiB });
    await backend.waitHeld(2);
    await sleep(150);
    expect(backend.held).toHaveLength(2);
    const lengths = new Map([[0n, 32 * MiB], [1n, 32 * MiB], [2n, 32 * MiB]]);
    backend.take(MiB).release();
    expect((await c.anyReply(lengths)).handle).toBe(1n);
    await backend.waitHeld(2);
    expect(backend.held.map((h) => h.offset).sort((a, b) => a - b)).toEqual([0, 2 * MiB]);
    backend.releaseAll();
    const rest = [await c.anyReply(lengths), await c.anyReply(lengths)].map((r) => r.handle).sort();
    expect(rest).toEqual([0n, 2n]);
    expect(backend.maxInflight).toBe(2);
  });

  test("a server with smaller bounds keeps to them (1 request: strictly one at a time, in order)", async () => {
    const one = new NbdServer({ backend, port: 0, pollIntervalMs: 0, maxInflightRequests: 1, log: () => undefined });
    const p1 = (await one.listen()).port;
    try {
      const c = await opened({ port: p1 });
      for (let i = 0; i < 4; i++) c.request(P.NBD_CMD_WRITE, { handle: BigInt(i), offset: i * U, data: Buffer.alloc(U, i + 1) });
      for (let i = 0; i < 4; i++) {
        await backend.waitHeld(1);
        await sleep(20);
        expect(backend.held).toHaveLength(1);
        expect(backend.held[0].offset).toBe(i * U);
        backend.held.pop()!.release();
        expect(await c.anyReply()).toMatchObject({ error: 0, handle: BigInt(i) });
      }
      c.destroy();
      await waitFor(() => one.connectionCount === 0);
    } finally {
      await one.close();
    }
  });
});

describe("ordering NBD requires", () => {
  test("FLUSH waits for the writes in flight on its connection (not for reads), then flushes", async () => {
    const c = await opened();
    c.request(P.NBD_CMD_WRITE, { handle: 1n, offset: 0, data: Buffer.alloc(U, 1) });
    c.request(P.NBD_CMD_WRITE, { handle: 2n, offset: U, data: Buffer.alloc(U, 2) });
    c.request(P.NBD_CMD_READ, { handle: 3n, offset: 3 * U, length: 512 });
    c.request(P.NBD_CMD_FLUSH, { handle: 4n });
    await backend.waitHeld(3);
    const flushes = backend.flushes;
    await sleep(100);
    expect(backend.flushes).toBe(flushes);
    expect(c.buffered).toBe(0);
    backend.take(U).release();
    expect(await c.anyReply()).toMatchObject({ error: 0, handle: 2n });
    await sleep(50);
    expect(backend.flushes).toBe(flushes);
    backend.take(0).release();
    expect(await c.anyReply()).toMatchObject({ error: 0, handle: 1n });
    // The FLUSH ran once both writes were done, while the read was still in flight.
    expect(await c.anyReply()).toMatchObject({ error: 0, handle: 4n });
    expect(backend.flushes).toBe(flushes + 1);
    expect(backend.events.filter((e) => !e.startsWith("read"))).toEqual(["write 0 start", `write ${U} start`, `write ${U} done`, "write 0 done", "flush (1 in flight)"]);
    backend.take(3 * U).release();
    expect((await c.anyReply(new Map([[3n, 512]]))).handle).toBe(3n);
    expect(backend.data(A).subarray(0, 2 * U).equals(Buffer.concat([Buffer.alloc(U, 1), Buffer.alloc(U, 2)]))).toBe(true);
  });

  test("a FLUSH sent after a failed write still answers once the write is done", async () => {
    const c = await opened();
    c.request(P.NBD_CMD_WRITE, { handle: 1n, offset: 0, data: Buffer.alloc(512, 1) });
    c.request(P.NBD_CMD_FLUSH, { handle: 2n });
    await backend.waitHeld(1);
    backend.take(0).fail(new Error("disk full"));
    expect(await c.anyReply()).toMatchObject({ error: P.NBD_EIO, handle: 1n });
    expect(await c.anyReply()).toMatchObject({ error: 0, handle: 2n });
  });

  test("FUA: the flush follows the request's own write", async () => {
    const c = await opened();
    const flushes = backend.flushes;
    c.request(P.NBD_CMD_WRITE, { handle: 1n, offset: 0, data: Buffer.alloc(4096, 9), flags: P.NBD_CMD_FLAG_FUA });
    await backend.waitHeld(1);
    await sleep(50);
    expect(backend.flushes).toBe(flushes);
    backend.releaseAll();
    expect(await c.anyReply()).toMatchObject({ error: 0, handle: 1n });
    expect(backend.flushes).toBe(flushes + 1);
    expect(backend.events).toEqual(["write 0 start", "write 0 done", "flush (0 in flight)"]);
  });

  test("TRIM waits for the in-flight writes it overlaps, not for the others", async () => {
    const c = await opened();
    c.request(P.NBD_CMD_WRITE, { handle: 1n, offset: 0, data: Buffer.alloc(U, 1) });
    c.request(P.NBD_CMD_WRITE, { handle: 2n, offset: 2 * U, data: Buffer.alloc(U, 2) });
    await backend.waitHeld(2);
    c.request(P.NBD_CMD_TRIM, { handle: 3n, offset: 4096, length: 4096 });
    c.request(P.NBD_CMD_WRITE_ZEROES, { handle: 4n, offset: 3 * U, length: 4096 });
    // The WRITE_ZEROES overlaps nothing in flight: it is answered at once.
    expect(await c.anyReply()).toMatchObject({ error: 0, handle: 4n });
    await sleep(50);
    expect(c.buffered).toBe(0);
    backend.take(0).release();
    const two = [await c.anyReply(), await c.anyReply()];
    expect(two.map((r) => r.handle)).toEqual([1n, 3n]);
    expect(backend.events.slice(0, 5)).toEqual(["write 0 start", `write ${2 * U} start`, `zero ${3 * U}`, "write 0 done", "trim 4096"]);
    // The trim came after the write it overlaps.
    const d = backend.data(A);
    expect(d.subarray(0, 4096).equals(Buffer.alloc(4096, 1))).toBe(true);
    expect(d.subarray(4096, 8192).equals(Buffer.alloc(4096))).toBe(true);
    expect(d.subarray(8192, U).equals(Buffer.alloc(U - 8192, 1))).toBe(true);
    backend.releaseAll();
    expect(await c.anyReply()).toMatchObject({ error: 0, handle: 2n });
  });
});

describe("ending a connection with requests in flight", () => {
  test("NBD_CMD_DISC answers the requests in flight first; keys are released only after", async () => {
    const c = await opened();
    const releases = backend.releases;
    c.request(P.NBD_CMD_WRITE, { handle: 1n, offset: 0, data: Buffer.alloc(U, 5) });
    c.request(P.NBD_CMD_READ, { handle: 2n, offset: U, length: 512 });
    c.request(P.NBD_CMD_DISC, { handle: 3n });
    await backend.waitHeld(2);
    expect(await c.closesWithin(150)).toBe(false);
    expect(backend.releases).toBe(releases);
    backend.releaseAll();
    const replies = [await c.anyReply(new Map([[2n, 512]])), await c.anyReply(new Map([[2n, 512]]))];
    expect(replies.map((r) => r.handle).sort()).toEqual([1n, 2n]);
    expect(replies.every((r) => r.error === 0)).toBe(true);
    expect(await c.closesWithin(5000)).toBe(true);
    await waitFor(() => server.connectionCount === 0);
    expect(backend.releases).toBe(releases + 1);
    expect(backend.data(A).subarray(0, U).equals(Buffer.alloc(U, 5))).toBe(true);
  });

  test("a client that goes away with requests in flight: they finish (a write lands whole), then the keys are released", async () => {
    const c = await opened();
    const releases = backend.releases;
    c.request(P.NBD_CMD_WRITE, { handle: 1n, offset: 0, data: Buffer.alloc(U, 6) });
    c.request(P.NBD_CMD_READ, { handle: 2n, offset: U, length: 512 });
    await backend.waitHeld(2);
    c.destroy();
    await sleep(150);
    // Still counted: the engine must not drop its keys under requests it is running.
    expect(server.connectionCount).toBe(1);
    expect(backend.releases).toBe(releases);
    backend.releaseAll();
    await waitFor(() => server.connectionCount === 0);
    expect(backend.releases).toBe(releases + 1);
    expect(backend.data(A).subarray(0, U).equals(Buffer.alloc(U, 6))).toBe(true);
  });

  test("a detach while requests are in flight closes the connection; the backend is released after they finish", async () => {
    const name = "att-eeeeeeee";
    const { key } = backend.add(name, MiB);
    try {
      await waitFor(() => server.findExport(name) !== undefined);
      const c = await RawClient.open(port, name, key);
      clients.push(c);
      const releases = backend.releases;
      c.request(P.NBD_CMD_WRITE, { handle: 1n, offset: 0, data: Buffer.alloc(512, 1) });
      await backend.waitHeld(1);
      backend.remove(name);
      expect(await c.closesWithin(5000)).toBe(true);
      expect(backend.releases).toBe(releases);
      backend.take(0).fail(Object.assign(new Error("detached"), { code: "ResourceUnavailable.NotAttached" }));
      await waitFor(() => server.connectionCount === 0);
      expect(backend.releases).toBe(releases + 1);
    } finally {
      backend.remove(name);
    }
  });

  test("server close waits for requests in flight before releasing and closing the backend", async () => {
    const own = new NbdServer({ backend, port: 0, pollIntervalMs: 0, log: () => undefined });
    const p2 = (await own.listen()).port;
    const c = await opened({ port: p2 });
    c.request(P.NBD_CMD_WRITE, { handle: 1n, offset: 0, data: Buffer.alloc(U, 8) });
    await backend.waitHeld(1);
    const closes = backend.closes;
    let stopped = false;
    const closing = own.close().then(() => (stopped = true));
    await sleep(150);
    expect(stopped).toBe(false);
    expect(backend.closes).toBe(closes);
    backend.releaseAll();
    await closing;
    expect(backend.closes).toBe(closes + 1);
    expect(backend.data(A).subarray(0, U).equals(Buffer.alloc(U, 8))).toBe(true);
  });
});
