/**
 * D2 and D8 (issue 12): hostile peers. Unauthenticated sockets have their own small limits and
 * a short deadline and cannot lock authenticated clients out; a request stalled mid-way is
 * dropped; the bytes the server buffers across all connections are bounded (backpressure), and
 * a real client still gets served while many stalled WRITEs press on that bound.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import { parseServeFlags } from "../../provider/engine/cli/serve";
import { MemoryBackend } from "../../provider/engine/nbd/memory-backend";
import { MAX_UNAUTHENTICATED, MAX_UNAUTHENTICATED_PER_PEER, NbdServer, type NbdServerOptions } from "../../provider/engine/nbd/server";
import { haveTools, nbdsUri, P, RawClient, run, tmpDir, waitFor } from "./helpers";

const MiB = 1024 * 1024;
const A = "att-hostile1";

let keyDir: string;
let backend: MemoryBackend;
let key: Buffer;
let pskFile: string;
const servers: NbdServer[] = [];
const sockets: net.Socket[] = [];
const clients: RawClient[] = [];

beforeAll(() => {
  keyDir = tmpDir("nbd-hostile-");
  backend = new MemoryBackend(keyDir);
  const added = backend.add(A, 64 * MiB);
  key = added.key;
  pskFile = added.pskFile as string;
});

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const c of clients.splice(0)) c.destroy();
  for (const s of servers.splice(0)) await s.close();
});

afterAll(() => fs.rmSync(keyDir, { recursive: true, force: true }));

async function start(opts: Partial<NbdServerOptions> = {}): Promise<{ server: NbdServer; port: number; logs: string[] }> {
  const logs: string[] = [];
  const server = new NbdServer({ backend, port: 0, pollIntervalMs: 0, log: (l) => logs.push(l), ...opts });
  servers.push(server);
  return { server, port: (await server.listen()).port, logs };
}

/** A socket from `localAddress` (any of 127.0.0.0/8) that connects and then never says anything. */
function idleSocket(port: number, localAddress = "127.0.0.1"): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: "127.0.0.1", localAddress });
    s.on("error", () => undefined);
    s.resume(); // read (and drop) the greeting, so the server's close is seen
    s.on("end", () => s.destroy());
    sockets.push(s);
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

const closed = (s: net.Socket): boolean => s.destroyed || s.readableEnded;

async function open(port: number): Promise<RawClient> {
  const c = await RawClient.open(port, A, key);
  clients.push(c);
  return c;
}

/** A 4 KiB write then read back through `c`. */
async function roundTrip(c: RawClient, offset = 0): Promise<void> {
  const data = crypto.randomBytes(4096);
  c.request(P.NBD_CMD_WRITE, { handle: 1n, offset, data });
  expect((await c.reply()).error).toBe(0);
  c.request(P.NBD_CMD_READ, { handle: 2n, offset, length: 4096 });
  expect((await c.reply(4096)).data.equals(data)).toBe(true);
}

describe("D2: unauthenticated connections cannot exhaust the server", () => {
  test("D2: 300 sockets that never negotiate, from one address and from many, leave at most the unauthenticated limits open, and a real client gets in", async () => {
    const { server, port, logs } = await start();
    const perPeer = MAX_UNAUTHENTICATED_PER_PEER;
    const all = MAX_UNAUTHENTICATED;
    // One hostile address: only its own newest survive.
    const one = await Promise.all(Array.from({ length: 150 }, () => idleSocket(port, "127.0.0.2")));
    await waitFor(() => one.filter((s) => !closed(s)).length <= perPeer && server.unauthenticatedCount <= perPeer);
    // Many addresses, 10 each: the overall limit holds.
    const many = await Promise.all(Array.from({ length: 150 }, (_, i) => idleSocket(port, `127.0.1.${1 + (i % 15)}`)));
    await waitFor(() => server.unauthenticatedCount <= all && [...one, ...many].filter((s) => !closed(s)).length <= all);
    expect(one.filter((s) => !closed(s)).length).toBeLessThanOrEqual(perPeer);
    expect(300).toBeGreaterThan(all + perPeer);
    expect(logs.some((l) => new RegExp(`evicted: ${perPeer} unauthenticated connections from 127\\.0\\.0\\.2`).test(l))).toBe(true);
    // A real client (TLS-PSK, GO) still gets in and is served, and nbdinfo too.
    await roundTrip(await open(port));
    if (haveTools(["nbdinfo"]).ok) {
      const r = await run("nbdinfo", ["--size", nbdsUri(port, A, pskFile)]);
      expect(r.stdout.trim()).toBe(String(64 * MiB));
    }
    // Authenticated connections are not counted as unauthenticated ones.
    expect(server.unauthenticatedCount).toBeLessThanOrEqual(all);
  });

  test("D2: a socket that does not finish negotiating within the handshake deadline is closed (and one stuck before its TLS handshake too)", async () => {
    const { port, logs } = await start({ handshakeTimeoutMs: 400 });
    const silent = await RawClient.hello(port);
    clients.push(silent.c);
    const stuck = await RawClient.hello(port);
    clients.push(stuck.c);
    stuck.c.sendOpt(P.NBD_OPT_STARTTLS);
    expect((await stuck.c.optReply()).type).toBe(P.NBD_REP_ACK); // and then no ClientHello
    expect(await silent.c.closesWithin(3000)).toBe(true);
    expect(await stuck.c.closesWithin(3000)).toBe(true);
    expect(logs.some((l) => /negotiation not finished within 400 ms/.test(l))).toBe(true);
    await roundTrip(await open(port));
  });

  test("D2: authenticated connections have their own cap, which unauthenticated sockets never take", async () => {
    const { server, port, logs } = await start({ maxConnections: 2, maxUnauthenticated: 8 });
    await Promise.all(Array.from({ length: 30 }, () => idleSocket(port)));
    const a = await open(port);
    const b = await open(port);
    await expect(open(port)).rejects.toThrow();
    expect(logs.some((l) => /2 authenticated connections already open/.test(l))).toBe(true);
    await roundTrip(a);
    b.destroy();
    await waitFor(() => server.connectionCount <= 9);
    await roundTrip(await open(port), 8192);
  });
});

describe("D2: stalled requests and idle connections", () => {
  test("D2: a half-sent WRITE is dropped after the request timeout; a client idle between requests is kept (no idle timeout by default)", async () => {
    const { port, logs } = await start({ requestTimeoutMs: 500 });
    const stalled = await open(port);
    const idle = await open(port);
    const h = Buffer.alloc(28);
    h.writeUInt32BE(P.REQUEST_MAGIC, 0);
    h.writeUInt16BE(P.NBD_CMD_WRITE, 6);
    h.writeUInt32BE(MiB, 24);
    stalled.send(Buffer.concat([h, Buffer.alloc(1000)])); // 1000 of 1 MiB, then nothing
    const half = await open(port);
    half.send(h.subarray(0, 10)); // a header cut short
    expect(await stalled.closesWithin(5000)).toBe(true);
    expect(await half.closesWithin(5000)).toBe(true);
    expect(logs.some((l) => /stalled mid-request/.test(l))).toBe(true);
    // The idle one (a mounted filesystem idles) was not touched, and works.
    expect(idle.closed).toBe(false);
    await roundTrip(idle);
  });

  test("D2: with an idle timeout set, a connection idle past it is closed", async () => {
    const { port, logs } = await start({ idleTimeoutMs: 400 });
    const c = await open(port);
    await roundTrip(c);
    expect(await c.closesWithin(4000)).toBe(true);
    expect(logs.some((l) => /idle for 400 ms/.test(l))).toBe(true);
  });
});

describe("D2, D8: encdisk serve sets the limits", () => {
  test("D2: D8: --handshake-timeout-ms, --request-timeout-ms, --idle-timeout-ms and --max-buffered-mib reach the server options; absent, the server's defaults apply", () => {
    const f = parseServeFlags(["--handshake-timeout-ms", "2000", "--request-timeout-ms=5000", "--idle-timeout-ms", "0", "--max-buffered-mib", "128"], {});
    expect(f).toMatchObject({ handshakeTimeoutMs: 2000, requestTimeoutMs: 5000, idleTimeoutMs: 0, maxBufferedBytes: 128 * MiB });
    const d = parseServeFlags([], {});
    expect([d.handshakeTimeoutMs, d.requestTimeoutMs, d.idleTimeoutMs, d.maxBufferedBytes]).toEqual([undefined, undefined, undefined, undefined]);
    expect(() => parseServeFlags(["--idle-timeout-ms", "-1"], {})).toThrow(/--idle-timeout-ms must be a decimal integer/);
    expect(() => parseServeFlags(["--max-buffered-mib", "1"], {})).toThrow(/64\.\./);
    expect(() => parseServeFlags(["--request-timeout-ms", "0x10"], {})).toThrow(/request-timeout-ms/);
  });
});

describe("D8: the bytes buffered across all connections are bounded", () => {
  test("D8: 40 stalled 32 MiB WRITEs keep the server's buffered bytes under its bound, and a real client still works", async () => {
    const limit = 48 * MiB;
    const { server, port, logs } = await start({ maxBufferedBytes: limit, requestTimeoutMs: 120_000, pressureGraceMs: 500 });
    const stalled = await Promise.all(Array.from({ length: 40 }, () => open(port)));
    const h = Buffer.alloc(28);
    h.writeUInt32BE(P.REQUEST_MAGIC, 0);
    h.writeUInt16BE(P.NBD_CMD_WRITE, 6);
    h.writeUInt32BE(32 * MiB, 24);
    const part = Buffer.alloc(2 * MiB, 0xee);
    // 40 x 2 MiB = 80 MiB offered, of 40 x 32 MiB announced: far past the bound, then they stall.
    for (const c of stalled) c.send(Buffer.concat([h, part]));
    await waitFor(() => server.buffered.used >= limit, 10_000);
    const { peak } = server.buffered;
    // At most one socket read (64 KiB) per connection past the bound.
    expect(peak).toBeLessThanOrEqual(limit + 40 * 64 * 1024);
    // A real client is served: pressure closes the requests stalled longest.
    const c = await open(port);
    await roundTrip(c, 32 * MiB);
    expect(logs.some((l) => /buffer budget .* is used up/.test(l))).toBe(true);
    expect(server.buffered.peak).toBeLessThanOrEqual(limit + 40 * 64 * 1024);
    // eslint-disable-next-line no-console
    console.log(`D8 figure: 40 stalled 32 MiB WRITEs (2 MiB sent each): peak buffered ${(server.buffered.peak / MiB).toFixed(1)} MiB against a bound of ${limit / MiB} MiB`);
  });

  test("D8: when requests in flight hold the budget (slow writes), a live client sending a request is made to wait, not closed", async () => {
    let open_ = true;
    const gate: (() => void)[] = [];
    const slow = Object.create(backend) as MemoryBackend;
    slow.write = (name: string, offset: number, data: Buffer) =>
      open_ ? backend.write(name, offset, data) : new Promise<void>((resolve) => gate.push(() => resolve(backend.write(name, offset, data))));
    const { server, port, logs } = await start({ backend: slow, maxBufferedBytes: 8 * MiB, pressureGraceMs: 200 });
    const busy = await open(port);
    const live = await open(port);
    open_ = false;
    const release = () => {
      open_ = true;
      for (const g of gate.splice(0)) g();
    };
    const data = crypto.randomBytes(MiB);
    try {
      // Two 4 MiB writes in flight fill the 8 MiB budget; the third's payload and the live
      // client's wait, parked, for the budget.
      for (let k = 0; k < 3; k++) busy.request(P.NBD_CMD_WRITE, { handle: BigInt(k), offset: k * 4 * MiB, data: Buffer.alloc(4 * MiB, k + 1) });
      await waitFor(() => gate.length === 2 && server.buffered.used >= 8 * MiB);
      live.request(P.NBD_CMD_WRITE, { handle: 9n, offset: 20 * MiB, data });
      await new Promise((r) => setTimeout(r, 1000)); // five times the grace
      expect(live.closed).toBe(false);
      expect(busy.closed).toBe(false);
      expect(logs.some((l) => /buffer budget/.test(l))).toBe(false);
    } finally {
      release();
    }
    // The third write reaches the (now open) backend once the budget frees.
    await waitFor(() => gate.length === 0);
    for (let k = 0; k < 3; k++) expect((await busy.reply()).error).toBe(0);
    expect((await live.reply()).error).toBe(0);
    expect(backend.data(A).subarray(20 * MiB, 21 * MiB).equals(data)).toBe(true);
  });
});
