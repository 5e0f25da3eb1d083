/** Test helpers: a raw NBD client (to probe the protocol edge cases) and real-client runners. */
import { execFile } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import * as tls from "node:tls";
import { Duplex } from "node:stream";
import { ByteReader } from "../../provider/engine/nbd/reader";
import * as P from "../../provider/engine/nbd/protocol";
import { missingTools } from "../support/requireTools";

export { P };

export interface OptReply {
  option: number;
  type: number;
  data: Buffer;
}

/** A hand-driven NBD client speaking exactly what a test tells it to. */
export class RawClient {
  private reader: ByteReader;
  private stream: Duplex;
  closed = false;
  readonly closedPromise: Promise<void>;

  private constructor(private readonly raw: net.Socket) {
    this.stream = raw;
    this.reader = new ByteReader(raw, 1 << 30);
    raw.on("error", () => undefined);
    this.closedPromise = new Promise((resolve) => raw.once("close", () => {
      this.closed = true;
      resolve();
    }));
  }

  static async connect(port: number): Promise<RawClient> {
    const sock = net.connect(port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => {
      sock.once("connect", resolve);
      sock.once("error", reject);
    });
    return new RawClient(sock);
  }

  /** Connect, read the greeting, send client flags. Returns the handshake flags. */
  static async hello(port: number, clientFlags = P.NBD_FLAG_C_FIXED_NEWSTYLE | P.NBD_FLAG_C_NO_ZEROES): Promise<{ c: RawClient; flags: number }> {
    const c = await RawClient.connect(port);
    const g = await c.read(18);
    if (g.readBigUInt64BE(0) !== P.NBDMAGIC || g.readBigUInt64BE(8) !== P.IHAVEOPT) throw new Error("bad greeting");
    const cf = Buffer.alloc(4);
    cf.writeUInt32BE(clientFlags >>> 0);
    c.send(cf);
    return { c, flags: g.readUInt16BE(16) };
  }

  /**
   * Connect, STARTTLS with `key` as `name`'s PSK, optionally negotiate structured replies, then
   * NBD_OPT_GO `name`: a client in transmission, or an error if any step was refused.
   */
  static async open(port: number, name: string, key: Buffer, opts: { structured?: boolean } = {}): Promise<RawClient> {
    const { c } = await RawClient.hello(port);
    try {
      await c.starttls(name, key);
      if (opts.structured) {
        c.sendOpt(P.NBD_OPT_STRUCTURED_REPLY);
        const r = await c.optReply();
        if (r.type !== P.NBD_REP_ACK) throw new Error(`STRUCTURED_REPLY refused: ${r.type}`);
      }
      const go = await c.goOrInfo(P.NBD_OPT_GO, name);
      if (go[go.length - 1].type !== P.NBD_REP_ACK) throw new Error(`GO ${name} refused: ${go[go.length - 1].type}`);
      return c;
    } catch (e) {
      c.destroy();
      throw e;
    }
  }

  read(n: number): Promise<Buffer> {
    return this.reader.read(n);
  }

  /** Bytes received and not read yet (0: nothing arrived since the last read). */
  get buffered(): number {
    return this.reader.buffered;
  }

  send(b: Buffer): void {
    this.stream.write(b);
  }

  sendOpt(option: number, data: Buffer = Buffer.alloc(0), declaredLength = data.length): void {
    const h = Buffer.alloc(16);
    h.writeBigUInt64BE(P.IHAVEOPT, 0);
    h.writeUInt32BE(option, 8);
    h.writeUInt32BE(declaredLength, 12);
    this.send(Buffer.concat([h, data]));
  }

  async optReply(): Promise<OptReply> {
    const h = await this.read(20);
    if (h.readBigUInt64BE(0) !== P.OPTION_REPLY_MAGIC) throw new Error("bad option reply magic");
    const len = h.readUInt32BE(16);
    return { option: h.readUInt32BE(8), type: h.readUInt32BE(12), data: await this.read(len) };
  }

  async starttls(identity: string, key: Buffer, tlsOpts: { ciphers?: string; maxVersion?: tls.SecureVersion } = {}): Promise<tls.TLSSocket> {
    this.sendOpt(P.NBD_OPT_STARTTLS);
    const r = await this.optReply();
    if (r.type !== P.NBD_REP_ACK) throw new Error(`STARTTLS refused: ${r.type}`);
    this.reader.detach();
    const t = tls.connect({
      socket: this.raw,
      pskCallback: () => ({ psk: key, identity }),
      ciphers: tlsOpts.ciphers ?? "TLS_AES_128_GCM_SHA256:PSK-AES128-GCM-SHA256",
      maxVersion: tlsOpts.maxVersion,
      checkServerIdentity: () => undefined,
    });
    t.on("error", () => undefined);
    this.stream = t;
    this.reader = new ByteReader(t, 1 << 30);
    await new Promise<void>((resolve, reject) => {
      t.once("secureConnect", () => resolve());
      t.once("error", reject);
      t.once("close", () => reject(new Error("closed during TLS handshake")));
    });
    return t;
  }

  /** NBD_OPT_GO / NBD_OPT_INFO; returns all replies up to the final one. */
  async goOrInfo(option: number, name: string, infos: number[] = [P.NBD_INFO_BLOCK_SIZE]): Promise<OptReply[]> {
    const n = Buffer.from(name);
    const b = Buffer.alloc(4 + n.length + 2 + 2 * infos.length);
    b.writeUInt32BE(n.length, 0);
    n.copy(b, 4);
    b.writeUInt16BE(infos.length, 4 + n.length);
    infos.forEach((t, i) => b.writeUInt16BE(t, 6 + n.length + 2 * i));
    this.sendOpt(option, b);
    const out: OptReply[] = [];
    for (;;) {
      const r = await this.optReply();
      out.push(r);
      if (r.type !== P.NBD_REP_INFO) return out;
    }
  }

  request(type: number, opts: { flags?: number; handle?: bigint; offset?: bigint | number; length?: number; data?: Buffer } = {}): void {
    const h = Buffer.alloc(28);
    h.writeUInt32BE(P.REQUEST_MAGIC, 0);
    h.writeUInt16BE(opts.flags ?? 0, 4);
    h.writeUInt16BE(type, 6);
    h.writeBigUInt64BE(opts.handle ?? 1n, 8);
    h.writeBigUInt64BE(BigInt(opts.offset ?? 0), 16);
    h.writeUInt32BE(opts.length ?? opts.data?.length ?? 0, 24);
    this.send(opts.data ? Buffer.concat([h, opts.data]) : h);
  }

  async reply(dataLength = 0): Promise<{ error: number; handle: bigint; data: Buffer }> {
    const h = await this.read(16);
    if (h.readUInt32BE(0) !== P.SIMPLE_REPLY_MAGIC) throw new Error("bad reply magic");
    const error = h.readUInt32BE(4);
    return { error, handle: h.readBigUInt64BE(8), data: error === 0 && dataLength ? await this.read(dataLength) : Buffer.alloc(0) };
  }

  /**
   * The next simple reply, whichever request it answers (replies may come out of order): the
   * payload length of a successful READ is looked up by handle in `readLengths`.
   */
  async anyReply(readLengths: Map<bigint, number> = new Map()): Promise<{ error: number; handle: bigint; data: Buffer }> {
    const h = await this.read(16);
    if (h.readUInt32BE(0) !== P.SIMPLE_REPLY_MAGIC) throw new Error(`bad reply magic 0x${h.readUInt32BE(0).toString(16)}`);
    const error = h.readUInt32BE(4);
    const handle = h.readBigUInt64BE(8);
    const n = error === 0 ? readLengths.get(handle) ?? 0 : 0;
    return { error, handle, data: n ? await this.read(n) : Buffer.alloc(0) };
  }

  /** The next structured reply chunk, whichever request it belongs to. */
  async anyChunk(): Promise<{ flags: number; type: number; handle: bigint; payload: Buffer }> {
    const h = await this.read(20);
    if (h.readUInt32BE(0) !== P.STRUCTURED_REPLY_MAGIC) throw new Error(`bad structured reply magic 0x${h.readUInt32BE(0).toString(16)}`);
    return { flags: h.readUInt16BE(4), type: h.readUInt16BE(6), handle: h.readBigUInt64BE(8), payload: await this.read(h.readUInt32BE(16)) };
  }

  /** Chunks of one structured reply, up to the DONE flag; `data` is the read reassembled (holes as zeros). */
  async structuredReply(offset: number, length: number): Promise<{ chunks: { flags: number; type: number; handle: bigint; payload: Buffer }[]; data: Buffer; error: number }> {
    const chunks: { flags: number; type: number; handle: bigint; payload: Buffer }[] = [];
    const data = Buffer.alloc(length);
    let error = 0;
    for (;;) {
      const h = await this.read(20);
      if (h.readUInt32BE(0) !== P.STRUCTURED_REPLY_MAGIC) throw new Error(`bad structured reply magic 0x${h.readUInt32BE(0).toString(16)}`);
      const c = { flags: h.readUInt16BE(4), type: h.readUInt16BE(6), handle: h.readBigUInt64BE(8), payload: await this.read(h.readUInt32BE(16)) };
      chunks.push(c);
      if (c.type === P.NBD_REPLY_TYPE_OFFSET_DATA) c.payload.copy(data, Number(c.payload.readBigUInt64BE(0)) - offset, 8);
      else if (c.type === P.NBD_REPLY_TYPE_OFFSET_HOLE) data.fill(0, Number(c.payload.readBigUInt64BE(0)) - offset, Number(c.payload.readBigUInt64BE(0)) - offset + c.payload.readUInt32BE(8));
      else if (c.type & 0x8000) error = c.payload.readUInt32BE(0);
      if (c.flags & P.NBD_REPLY_FLAG_DONE) return { chunks, data, error };
    }
  }

  /** Resolves true if the server closes the connection within `ms`. */
  async closesWithin(ms: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const r = await Promise.race([this.closedPromise.then(() => true), new Promise<boolean>((res) => (timer = setTimeout(() => res(false), ms)))]);
    clearTimeout(timer);
    return r;
  }

  destroy(): void {
    this.stream.destroy();
    this.raw.destroy();
  }
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a program without blocking the event loop (the server under test runs in this process). */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024, encoding: "utf8" }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Which of the real NBD clients are installed. */
export function haveTools(names: string[]): { ok: boolean; missing: string[] } {
  // The skip decision itself (recorded and reported) is requireTools in test/support/requireTools.ts.
  const missing = missingTools(names);
  return { ok: missing.length === 0, missing };
}

/** `nbds://` URI for libnbd tools (nbdinfo, nbdcopy): TLS username in the userinfo, key file in the query. */
export function nbdsUri(port: number, exportName: string, pskFile: string, identity = exportName): string {
  return `nbds://${identity}@127.0.0.1:${port}/${exportName}?tls-psk-file=${pskFile}`;
}

/** qemu wants a directory holding a file named exactly keys.psk. */
export function qemuPskDir(pskFile: string, dir: string): string {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  fs.copyFileSync(pskFile, path.join(dir, "keys.psk"));
  fs.chmodSync(path.join(dir, "keys.psk"), 0o600);
  return dir;
}

/** qemu-img / qemu-io arguments: the TLS object and the --image-opts string for an export. */
export function qemuArgs(port: number, exportName: string, pskDir: string, identity = exportName): { object: string[]; image: string } {
  return {
    object: ["--object", `tls-creds-psk,id=tls0,endpoint=client,dir=${pskDir},username=${identity}`],
    image: `driver=nbd,host=127.0.0.1,port=${port},export=${exportName},tls-creds=tls0`,
  };
}

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(require("node:os").tmpdir(), prefix));
}

/** A port nothing listens on right now (tiny race with other processes; fine on a test machine). */
export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Resolves once `cond()` holds (polled every 10 ms); rejects after `ms`. */
export async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Resolves once something accepts connections on 127.0.0.1:`port`; rejects after `ms`. */
export async function waitForPort(port: number, ms = 10000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => (s.destroy(), resolve(true)));
      s.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > end) throw new Error(`nothing listening on ${port}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
