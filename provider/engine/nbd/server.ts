/**
 * An NBD server (fixed newstyle negotiation, simple replies) with TLS required on every
 * export (W2): TLS-PSK where the PSK identity selects the one export the client may open.
 *
 * Negotiation (FORCEDTLS mode): before STARTTLS every option except STARTTLS and ABORT gets
 * NBD_REP_ERR_TLS_REQD, and NBD_OPT_EXPORT_NAME (which cannot be errored) ends the session.
 * After TLS: EXPORT_NAME, GO, INFO (export size + flags, block sizes), LIST, ABORT,
 * STRUCTURED_REPLY (zero units of a read go as holes), LIST/SET_META_CONTEXT (none offered).
 * Transmission: READ, WRITE, FLUSH, TRIM, WRITE_ZEROES, DISC; FUA means flush before the reply.
 *
 * Requests run concurrently per connection: the loop keeps reading requests while earlier ones
 * are in flight, up to MAX_INFLIGHT_REQUESTS requests and MAX_INFLIGHT_BYTES of READ/WRITE
 * payload, and stops reading at the bound (the reader then pauses the socket past its
 * high-water mark). READ and WRITE go to the backend, which may answer with a Promise (the
 * engine's readAsync / writeAsync); each reply goes out, as whole messages, when its request
 * completes, so replies may come out of order (matched by handle, as NBD allows). Ordering that
 * NBD requires is kept: a FLUSH waits for the writes (WRITE, TRIM, WRITE_ZEROES) in flight on
 * its connection before flushing; TRIM and WRITE_ZEROES wait for in-flight writes that overlap
 * them; FUA flushes after the request's own write. NBD_CMD_DISC waits for in-flight requests
 * and sends their replies before closing; a connection that closes otherwise drops their
 * replies, and the backend's release runs only once none is in flight. The loop waits for
 * 'drain' when replies back up.
 *
 * Hostile peers (D2, D8): connections still negotiating have their own limits (overall and per
 * peer address; past them the oldest of the biggest peer is evicted) and a handshake deadline;
 * authenticated ones their own cap. A request that started arriving must arrive whole within
 * requestTimeoutMs (an idle timeout between requests is optional, off by default). One
 * ByteBudget bounds the bytes all connections buffer; at the bound no socket is read, and under
 * that pressure the request arriving longest is closed first (see `sweep`). TRIM and
 * WRITE_ZEROES carry no payload and are not bounded by MAX_PAYLOAD (D1).
 */
import * as crypto from "node:crypto";
import * as net from "node:net";
import * as tls from "node:tls";
import { Duplex } from "node:stream";
import { ExportBackend, ExportInfo } from "./backend";
import { ByteBudget, ByteReader as Reader, Disconnect } from "./reader";
import * as P from "./protocol";

export interface NbdServerOptions {
  backend: ExportBackend;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 10809; 0 picks a free port (see `address()`). */
  port?: number;
  /** How often to re-read the backend's export list, in ms; 0 disables polling. Default 250. */
  pollIntervalMs?: number;
  /** One line per event. Default: stdout. */
  log?: (line: string) => void;
  /** OpenSSL cipher list (TLS 1.2 PSK suites and TLS 1.3 suites). */
  ciphers?: string;
  /**
   * Offer structured replies (default true): reads of all-zero 64 KiB units then travel as
   * holes instead of zeros, so sparse regions cost neither cipher nor network work.
   */
  structuredReplies?: boolean;
  /** Requests one connection keeps in flight at once (default MAX_INFLIGHT_REQUESTS; 1 runs them one at a time). */
  maxInflightRequests?: number;
  /** READ/WRITE payload bytes one connection keeps in flight at once (default MAX_INFLIGHT_BYTES). */
  maxInflightBytes?: number;
  /**
   * Bytes the whole server buffers for all its clients at once: socket read-ahead, WRITE
   * payloads, READ results in flight (default MAX_BUFFERED_BYTES). At the bound no socket is
   * read until bytes are given back (D8).
   */
  maxBufferedBytes?: number;
  /** Authenticated connections open at once (default MAX_CONNECTIONS); never taken by unauthenticated ones. */
  maxConnections?: number;
  /** Connections still negotiating (before TLS-PSK authenticated them) at once (default MAX_UNAUTHENTICATED). */
  maxUnauthenticated?: number;
  /** Of those, from one peer address (default MAX_UNAUTHENTICATED_PER_PEER). */
  maxUnauthenticatedPerPeer?: number;
  /** How long a client may take from connecting to entering transmission (default HANDSHAKE_TIMEOUT_MS). */
  handshakeTimeoutMs?: number;
  /** How long a request may take to arrive whole once its first byte came (default REQUEST_TIMEOUT_MS). */
  requestTimeoutMs?: number;
  /** How long a connection may sit with no request in flight and none arriving; 0 (default): no limit. */
  idleTimeoutMs?: number;
  /**
   * While the buffer budget is used up and readers wait for it, a request still arriving after
   * this long is the first to go (default PRESSURE_GRACE_MS): the oldest such is closed.
   */
  pressureGraceMs?: number;
  /**
   * How long an export's keys stay after its last client left (a client that reconnects at
   * once needs no new unwrap), in ms; then `backend.releaseExport` drops them. Default
   * KEY_RELEASE_GRACE_MS.
   */
  keyReleaseGraceMs?: number;
}

/** Default grace before an export's keys are released once its last client left (D5). */
export const KEY_RELEASE_GRACE_MS = 500;

/**
 * TLS 1.3 with an external PSK through OpenSSL's PSK callback needs a SHA-256 suite; GnuTLS
 * clients (libnbd, qemu) negotiate TLS 1.3 with TLS_AES_128_GCM_SHA256 or, for TLS 1.2, one of
 * the (EC)DHE-PSK / PSK suites below.
 */
export const DEFAULT_CIPHERS = [
  "TLS_AES_128_GCM_SHA256",
  "TLS_CHACHA20_POLY1305_SHA256",
  "ECDHE-PSK-CHACHA20-POLY1305",
  "DHE-PSK-AES256-GCM-SHA384",
  "DHE-PSK-AES128-GCM-SHA256",
  "DHE-PSK-CHACHA20-POLY1305",
  "PSK-AES256-GCM-SHA384",
  "PSK-AES128-GCM-SHA256",
  "PSK-CHACHA20-POLY1305",
  "ECDHE-PSK-AES256-CBC-SHA384",
  "ECDHE-PSK-AES128-CBC-SHA256",
].join(":");

const TRANSMISSION_FLAGS =
  P.NBD_FLAG_HAS_FLAGS |
  P.NBD_FLAG_SEND_FLUSH |
  P.NBD_FLAG_SEND_FUA |
  P.NBD_FLAG_SEND_TRIM |
  P.NBD_FLAG_SEND_WRITE_ZEROES |
  // One process serves all connections through one engine; FLUSH makes every completed write durable.
  P.NBD_FLAG_CAN_MULTI_CONN;

/** Reply bytes queued on a connection before it stops taking requests until the client reads. */
const REPLY_HIGH_WATER = 4 * 1024 * 1024;
/** Requests a connection keeps in flight at once; past it, no further request is read. */
export const MAX_INFLIGHT_REQUESTS = 16;
/**
 * READ lengths plus WRITE payloads a connection keeps in flight at once; a request that would
 * pass it waits (one request, up to MAX_PAYLOAD, always fits).
 */
export const MAX_INFLIGHT_BYTES = 64 * 1024 * 1024;
/**
 * Authenticated connections allowed at once. Connections still negotiating are counted apart
 * (MAX_UNAUTHENTICATED), so anyone who can reach the port cannot take these slots (D2).
 */
export const MAX_CONNECTIONS = 256;
/**
 * Unauthenticated connections (before TLS-PSK succeeded) at once, and from one peer address.
 * Past either, the newcomer is admitted and the oldest unauthenticated connection of the peer
 * holding the most is closed: idle sockets cannot lock a client out, they only age out faster.
 */
export const MAX_UNAUTHENTICATED = 128;
export const MAX_UNAUTHENTICATED_PER_PEER = 32;
/** From connecting to transmission (greeting, STARTTLS, TLS-PSK, GO): a real client needs milliseconds. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** From a request's first byte to its last (header and WRITE payload): a stall mid-request. */
export const REQUEST_TIMEOUT_MS = 30_000;
/** Bytes the server buffers for all its clients together (D8). */
export const MAX_BUFFERED_BYTES = 256 * 1024 * 1024;
/** Under budget pressure, a request still arriving after this long is closed first. */
export const PRESSURE_GRACE_MS = 2_000;

const ZERO_UNIT = Buffer.alloc(P.PREFERRED_BLOCK_SIZE);
/** Reply payloads smaller than this are copied behind their header (one write); larger ones are written as they are. */
const COPY_BELOW = 16 * 1024;

function errorPayload(error: number, message = ""): Buffer {
  const m = Buffer.from(message, "utf8");
  const b = Buffer.allocUnsafe(6 + m.length);
  b.writeUInt32BE(error, 0);
  b.writeUInt16BE(m.length, 4);
  m.copy(b, 6);
  return b;
}

function isPromise<T>(x: T | Promise<T>): x is Promise<T> {
  return typeof (x as { then?: unknown } | null | undefined)?.then === "function";
}

/** One transmission request as read from the wire. */
interface Request {
  type: number;
  flags: number;
  handle: Buffer;
  offBig: bigint;
  length: number;
  payload?: Buffer;
}

/** A request in flight on a connection. */
interface InFlight {
  /** Settles (never rejects) once the request completed and its reply was sent (or dropped). */
  done: Promise<void>;
  /** The bytes a WRITE, TRIM or WRITE_ZEROES changes; absent for other requests. */
  range?: { from: number; to: number };
}

let connectionSeq = 0;

class Connection {
  readonly id = ++connectionSeq;
  private stream: Duplex;
  private reader: Reader;
  private tlsDone = false;
  /** PSK identity the client authenticated with. */
  identity: string | null = null;
  /** Export in use once in transmission. */
  exportName: string | null = null;
  /** Size told to the client at negotiation; requests are bounded by it. */
  private exportSize = 0;
  private noZeroes = false;
  /** NBD_OPT_STRUCTURED_REPLY was acknowledged. */
  private structured = false;
  private closed = false;
  private readonly peer: string;
  /** The peer's address (the per-peer limit of unauthenticated connections counts by it). */
  readonly peerAddress: string;
  /** TLS-PSK succeeded: counted against maxConnections, no longer against the unauthenticated limits. */
  authenticated = false;
  /** Since when a request is arriving (its first byte came, its last not yet), or null. */
  requestSince: number | null = null;
  /** Since when the connection waits for a next request (requests may still be in flight), or null. */
  idleSince: number | null = null;
  /** When a request in flight last completed. */
  private lastSettled = 0;
  private negotiationTimer: NodeJS.Timeout | null = null;
  private requests = 0;
  /** Requests started and not yet completed, and the READ/WRITE bytes they hold. */
  private readonly inflight = new Set<InFlight>();
  private inflightBytes = 0;
  private settleWaiters: (() => void)[] = [];
  /** Resolves once the connection is closed, nothing of it is in flight and the server was told. */
  readonly finished: Promise<void>;
  private markFinished: () => void = () => undefined;

  constructor(private readonly server: NbdServer, private readonly raw: net.Socket) {
    this.peer = `${raw.remoteAddress}:${raw.remotePort}`;
    this.peerAddress = raw.remoteAddress ?? "?";
    raw.setNoDelay(true);
    // A peer that vanished (no FIN) is found out by TCP, whatever the idle timeout.
    raw.setKeepAlive(true, 60_000);
    this.stream = raw;
    this.reader = new Reader(raw, undefined, server.budget);
    this.finished = new Promise((resolve) => (this.markFinished = resolve));
    // Errors surface through the reader; keep unhandled 'error' events from crashing the process.
    raw.on("error", () => undefined);
  }

  private log(msg: string): void {
    this.server.log(`client #${this.id} (${this.peer}): ${msg}`);
  }

  async run(): Promise<void> {
    this.log("connected");
    this.negotiationTimer = setTimeout(() => this.close(`negotiation not finished within ${this.server.handshakeTimeoutMs} ms`), this.server.handshakeTimeoutMs);
    this.negotiationTimer.unref();
    try {
      const proceed = await this.negotiate();
      if (this.negotiationTimer) clearTimeout(this.negotiationTimer);
      if (proceed) await this.transmit();
      this.close();
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      this.close(e instanceof Disconnect ? msg : `error: ${msg}`);
    }
  }

  /** Close the connection (hard disconnect if data is still flowing). */
  close(reason?: string): void {
    if (this.closed) return;
    this.closed = true;
    if (this.negotiationTimer) clearTimeout(this.negotiationTimer);
    // What it buffered goes back to the server's budget; nothing more is read.
    this.reader.dispose();
    this.requestSince = this.idleSince = null;
    this.log(`closed${reason ? `: ${reason}` : ""}${this.exportName ? ` (export ${this.exportName}, ${this.requests} requests)` : ""}`);
    const s = this.stream;
    s.end();
    const t = setTimeout(() => {
      s.destroy();
      this.raw.destroy();
    }, 2000);
    t.unref();
    s.once("close", () => clearTimeout(t));
    // Requests still in flight complete (their replies are dropped) before the server may
    // release the backend's keys or close it.
    void this.idle().then(() => {
      this.server.connectionClosed(this);
      this.markFinished();
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** How long it has waited for a request with nothing in flight (0: not idle). */
  idleFor(now: number): number {
    if (this.idleSince === null || this.inflight.size > 0) return 0;
    return now - Math.max(this.idleSince, this.lastSettled);
  }

  /** Bytes its reader holds (a request arriving). */
  get buffered(): number {
    return this.reader.buffered;
  }

  private write(buf: Buffer): void {
    if (!this.closed) this.stream.write(buf);
  }

  private async drain(): Promise<void> {
    if (this.closed || !this.stream.writableNeedDrain) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        this.stream.off("drain", done);
        this.stream.off("close", done);
        resolve();
      };
      this.stream.on("drain", done);
      this.stream.on("close", done);
    });
  }

  private optReply(option: number, type: number, data?: Buffer): void {
    const h = Buffer.allocUnsafe(20);
    h.writeBigUInt64BE(P.OPTION_REPLY_MAGIC, 0);
    h.writeUInt32BE(option, 8);
    h.writeUInt32BE(type >>> 0, 12);
    h.writeUInt32BE(data ? data.length : 0, 16);
    this.write(data && data.length ? Buffer.concat([h, data]) : h);
  }

  private optError(option: number, type: number, message: string): void {
    this.optReply(option, type, Buffer.from(message, "utf8"));
  }

  // ---- negotiation ----

  /** Returns true when the client entered transmission on `this.exportName`. */
  private async negotiate(): Promise<boolean> {
    const hello = Buffer.allocUnsafe(18);
    hello.writeBigUInt64BE(P.NBDMAGIC, 0);
    hello.writeBigUInt64BE(P.IHAVEOPT, 8);
    hello.writeUInt16BE(P.NBD_FLAG_FIXED_NEWSTYLE | P.NBD_FLAG_NO_ZEROES, 16);
    this.write(hello);
    const cflags = (await this.reader.read(4)).readUInt32BE(0);
    if (cflags & ~(P.NBD_FLAG_C_FIXED_NEWSTYLE | P.NBD_FLAG_C_NO_ZEROES)) throw new Disconnect(`refused: unknown client flags 0x${cflags.toString(16)}`);
    if (!(cflags & P.NBD_FLAG_C_FIXED_NEWSTYLE)) throw new Disconnect("refused: client does not speak fixed newstyle, so it cannot start TLS (TLS is required)");
    this.noZeroes = (cflags & P.NBD_FLAG_C_NO_ZEROES) !== 0;

    for (;;) {
      const h = await this.reader.read(16);
      if (h.readBigUInt64BE(0) !== P.IHAVEOPT) throw new Disconnect("refused: bad option magic");
      const option = h.readUInt32BE(8);
      const length = h.readUInt32BE(12);
      if (length > P.MAX_OPTION_LENGTH) throw new Disconnect(`refused: option ${P.optionName(option)} with ${length} bytes of data`);
      const data = await this.reader.read(length);
      // A client that sends options without reading the replies must not grow our buffers.
      if (this.stream.writableNeedDrain) await this.drain();

      if (option === P.NBD_OPT_ABORT) {
        this.optReply(option, P.NBD_REP_ACK);
        this.log("client aborted negotiation");
        return false;
      }
      if (!this.tlsDone) {
        if (option === P.NBD_OPT_STARTTLS) {
          if (length !== 0) {
            this.optError(option, P.NBD_REP_ERR_INVALID, "STARTTLS takes no data");
            continue;
          }
          this.optReply(option, P.NBD_REP_ACK);
          await this.startTls();
          continue;
        }
        if (option === P.NBD_OPT_EXPORT_NAME) throw new Disconnect("refused: plaintext client asked for an export; TLS is required (W2)");
        this.log(`refused ${P.optionName(option)} before TLS`);
        this.optError(option, P.NBD_REP_ERR_TLS_REQD, "TLS is required: send NBD_OPT_STARTTLS and authenticate with the attachment's PSK");
        continue;
      }

      switch (option) {
        case P.NBD_OPT_STARTTLS:
          this.optError(option, P.NBD_REP_ERR_INVALID, "TLS is already active");
          break;
        case P.NBD_OPT_LIST: {
          if (length !== 0) {
            this.optError(option, P.NBD_REP_ERR_INVALID, "LIST takes no data");
            break;
          }
          for (const e of this.server.exportList()) {
            if (e.pskIdentity !== this.identity) continue; // only the export this key opens
            const name = Buffer.from(e.name, "utf8");
            const desc = Buffer.from(e.description ?? "", "utf8");
            const b = Buffer.allocUnsafe(4 + name.length + desc.length);
            b.writeUInt32BE(name.length, 0);
            name.copy(b, 4);
            desc.copy(b, 4 + name.length);
            this.optReply(option, P.NBD_REP_SERVER, b);
          }
          this.optReply(option, P.NBD_REP_ACK);
          break;
        }
        case P.NBD_OPT_EXPORT_NAME: {
          const name = data.toString("utf8");
          const e = this.resolveExport(name);
          if (typeof e === "string") throw new Disconnect(`refused EXPORT_NAME ${JSON.stringify(name)}: ${e}`);
          const b = Buffer.alloc(this.noZeroes ? 10 : 134);
          b.writeBigUInt64BE(BigInt(e.size), 0);
          b.writeUInt16BE(this.transmissionFlags(), 8);
          this.write(b);
          this.enter(e);
          return true;
        }
        case P.NBD_OPT_INFO:
        case P.NBD_OPT_GO: {
          if (length < 6) {
            this.optError(option, P.NBD_REP_ERR_INVALID, "malformed request");
            break;
          }
          const nameLen = data.readUInt32BE(0);
          if (nameLen > length - 6) {
            this.optError(option, P.NBD_REP_ERR_INVALID, "malformed request: name length");
            break;
          }
          const name = data.subarray(4, 4 + nameLen).toString("utf8");
          const nReq = data.readUInt16BE(4 + nameLen);
          if (length !== 4 + nameLen + 2 + 2 * nReq) {
            this.optError(option, P.NBD_REP_ERR_INVALID, "malformed request: information request count");
            break;
          }
          const requested = new Set<number>();
          for (let i = 0; i < nReq; i++) requested.add(data.readUInt16BE(6 + nameLen + 2 * i));
          const e = this.resolveExport(name);
          if (typeof e === "string") {
            this.log(`refused ${P.optionName(option)} ${JSON.stringify(name)}: ${e}`);
            this.optError(option, e.startsWith("no export") ? P.NBD_REP_ERR_UNKNOWN : P.NBD_REP_ERR_POLICY, e);
            break;
          }
          const ex = Buffer.allocUnsafe(12);
          ex.writeUInt16BE(P.NBD_INFO_EXPORT, 0);
          ex.writeBigUInt64BE(BigInt(e.size), 2);
          ex.writeUInt16BE(this.transmissionFlags(), 10);
          this.optReply(option, P.NBD_REP_INFO, ex);
          if (requested.has(P.NBD_INFO_NAME)) {
            const n = Buffer.from(e.name, "utf8");
            const b = Buffer.allocUnsafe(2 + n.length);
            b.writeUInt16BE(P.NBD_INFO_NAME, 0);
            n.copy(b, 2);
            this.optReply(option, P.NBD_REP_INFO, b);
          }
          if (requested.has(P.NBD_INFO_DESCRIPTION) && e.description) {
            const d = Buffer.from(e.description, "utf8");
            const b = Buffer.allocUnsafe(2 + d.length);
            b.writeUInt16BE(P.NBD_INFO_DESCRIPTION, 0);
            d.copy(b, 2);
            this.optReply(option, P.NBD_REP_INFO, b);
          }
          const bs = Buffer.allocUnsafe(14);
          bs.writeUInt16BE(P.NBD_INFO_BLOCK_SIZE, 0);
          bs.writeUInt32BE(P.MIN_BLOCK_SIZE, 2);
          bs.writeUInt32BE(P.PREFERRED_BLOCK_SIZE, 6);
          bs.writeUInt32BE(P.MAX_PAYLOAD, 10);
          this.optReply(option, P.NBD_REP_INFO, bs);
          this.optReply(option, P.NBD_REP_ACK);
          if (option === P.NBD_OPT_GO) {
            this.enter(e);
            return true;
          }
          break;
        }
        case P.NBD_OPT_STRUCTURED_REPLY:
          if (length !== 0) this.optError(option, P.NBD_REP_ERR_INVALID, "STRUCTURED_REPLY takes no data");
          else if (!this.server.structuredReplies) this.optError(option, P.NBD_REP_ERR_UNSUP, "structured replies are disabled");
          else {
            this.structured = true;
            this.optReply(option, P.NBD_REP_ACK);
          }
          break;
        case P.NBD_OPT_LIST_META_CONTEXT:
        case P.NBD_OPT_SET_META_CONTEXT: {
          if (!this.structured) {
            this.optError(option, P.NBD_REP_ERR_INVALID, "negotiate structured replies first");
            break;
          }
          // Well-formed: export name, query count, queries. No metadata context is offered
          // (the engine has no allocation query), which a single ACK says.
          let ok = length >= 8;
          let at = 0;
          if (ok) {
            const nameLen = data.readUInt32BE(0);
            at = 4 + nameLen;
            ok = at + 4 <= length;
            if (ok) {
              const n = data.readUInt32BE(at);
              at += 4;
              for (let i = 0; ok && i < n; i++) {
                ok = at + 4 <= length && at + 4 + data.readUInt32BE(at) <= length;
                if (ok) at += 4 + data.readUInt32BE(at);
              }
              ok = ok && at === length;
            }
          }
          if (!ok) this.optError(option, P.NBD_REP_ERR_INVALID, "malformed meta context request");
          else this.optReply(option, P.NBD_REP_ACK);
          break;
        }
        default:
          // EXTENDED_HEADERS and unknown options.
          this.optError(option, P.NBD_REP_ERR_UNSUP, `option ${P.optionName(option)} is not supported`);
      }
    }
  }

  /** The export `name` if this client's PSK identity may open it, else why not. Empty name: the identity's own export. */
  private resolveExport(name: string): ExportInfo | string {
    const wanted = name === "" ? this.identity ?? "" : name;
    const e = this.server.findExport(wanted);
    if (!e) return `no export named ${JSON.stringify(wanted)} (detached or never attached)`;
    if (e.pskIdentity !== this.identity) return `PSK identity ${JSON.stringify(this.identity)} may not open export ${JSON.stringify(e.name)}`;
    return e;
  }

  private transmissionFlags(): number {
    return TRANSMISSION_FLAGS | (this.structured ? P.NBD_FLAG_SEND_DF : 0);
  }

  private enter(e: ExportInfo): void {
    this.exportName = e.name;
    this.exportSize = e.size;
    this.log(`export ${e.name} opened (${e.size} bytes)`);
  }

  private async startTls(): Promise<void> {
    const rest = this.reader.detach();
    if (rest.length) throw new Disconnect("refused: client sent data before the TLS handshake");
    const sock = new tls.TLSSocket(this.raw, {
      isServer: true,
      secureContext: this.server.secureContext,
      pskCallback: (_socket: tls.TLSSocket, identity: string): Buffer | null => {
        try {
          // An attachment made since the last poll: look again before refusing.
          // (Only when the backend knows the identity, so guessed identities cost one key lookup, not a list.)
          if (!this.server.findExportByIdentity(identity) && this.server.backend.pskKey(identity)) this.server.refresh();
          if (!this.server.findExportByIdentity(identity)) {
            this.log(`TLS refused: unknown PSK identity ${JSON.stringify(identity)}`);
            return null;
          }
          const key = this.server.backend.pskKey(identity);
          if (!key) {
            this.log(`TLS refused: no key for PSK identity ${JSON.stringify(identity)}`);
            return null;
          }
          this.identity = identity;
          return key;
        } catch (e) {
          this.log(`TLS refused: key lookup failed: ${e instanceof Error ? e.message : String(e)}`);
          return null;
        }
      },
    } as tls.TLSSocketOptions);
    sock.on("error", () => undefined);
    this.stream = sock;
    this.reader = new Reader(sock, undefined, this.server.budget);
    await new Promise<void>((resolve, reject) => {
      const onSecure = (): void => {
        cleanup();
        resolve();
      };
      const onFail = (err?: Error): void => {
        cleanup();
        reject(new Disconnect(`TLS handshake failed${err && err.message ? `: ${err.message}` : ""} (wrong or missing PSK?)`));
      };
      const cleanup = (): void => {
        sock.off("secure", onSecure);
        sock.off("error", onFail);
        sock.off("close", onFail);
      };
      sock.on("secure", onSecure);
      sock.on("error", onFail);
      sock.on("close", onFail);
    });
    if (!this.identity) throw new Disconnect("TLS established without a PSK identity");
    this.tlsDone = true;
    const refused = this.server.authenticated(this);
    if (refused) throw new Disconnect(refused);
    this.log(`TLS ${sock.getProtocol()} ${sock.getCipher()?.name ?? "?"} as ${this.identity}`);
  }

  // ---- transmission ----

  /**
   * Writes one whole message: a header and the payload after it. Both writes happen in the same
   * synchronous step, so no other message can come between them on the stream; a large payload
   * goes as its own write instead of being copied behind the header.
   */
  private message(header: Buffer, payload?: Buffer): void {
    if (!payload || payload.length === 0) this.write(header);
    else if (payload.length >= COPY_BELOW) {
      this.write(header);
      this.write(payload);
    } else this.write(Buffer.concat([header, payload]));
  }

  private reply(handle: Buffer, error: number, data?: Buffer): void {
    const b = Buffer.allocUnsafe(16);
    b.writeUInt32BE(P.SIMPLE_REPLY_MAGIC, 0);
    b.writeUInt32BE(error, 4);
    handle.copy(b, 8);
    this.message(b, data);
  }

  private chunk(handle: Buffer, flags: number, type: number, payload: Buffer, prefix?: Buffer): void {
    const plen = payload.length + (prefix ? prefix.length : 0);
    const b = Buffer.allocUnsafe(20 + (prefix ? prefix.length : 0));
    b.writeUInt32BE(P.STRUCTURED_REPLY_MAGIC, 0);
    b.writeUInt16BE(flags, 4);
    b.writeUInt16BE(type, 6);
    handle.copy(b, 8);
    b.writeUInt32BE(plen, 16);
    if (prefix) prefix.copy(b, 20);
    this.message(b, payload);
  }

  /**
   * A READ answered with structured chunks: runs of whole all-zero 64 KiB units (aligned to the
   * export) become OFFSET_HOLE chunks, the rest OFFSET_DATA; DF (don't fragment) asks for one
   * data chunk.
   */
  private structuredRead(handle: Buffer, offset: number, data: Buffer, dontFragment: boolean): void {
    const U = P.PREFERRED_BLOCK_SIZE;
    const runs: { hole: boolean; from: number; to: number }[] = [];
    if (!dontFragment && data.length >= U) {
      let pos = 0;
      while (pos < data.length) {
        const abs = offset + pos;
        const next = Math.min(data.length, pos + (U - (abs % U)));
        const whole = abs % U === 0 && next - pos === U;
        const hole = whole && data.subarray(pos, next).equals(ZERO_UNIT);
        const last = runs[runs.length - 1];
        if (last && last.hole === hole) last.to = next;
        else runs.push({ hole, from: pos, to: next });
        pos = next;
      }
    } else runs.push({ hole: false, from: 0, to: data.length });
    if (data.length === 0) {
      this.chunk(handle, P.NBD_REPLY_FLAG_DONE, P.NBD_REPLY_TYPE_NONE, Buffer.alloc(0));
      return;
    }
    runs.forEach((r, i) => {
      const done = i === runs.length - 1 ? P.NBD_REPLY_FLAG_DONE : 0;
      const off = Buffer.allocUnsafe(r.hole ? 12 : 8);
      off.writeBigUInt64BE(BigInt(offset + r.from), 0);
      if (r.hole) {
        off.writeUInt32BE(r.to - r.from, 8);
        this.chunk(handle, done, P.NBD_REPLY_TYPE_OFFSET_HOLE, off);
      } else this.chunk(handle, done, P.NBD_REPLY_TYPE_OFFSET_DATA, data.subarray(r.from, r.to), off);
    });
  }

  private async transmit(): Promise<void> {
    const name = this.exportName as string;
    for (;;) {
      if (this.closed) return;
      // At the bound: read no further request until one in flight completes.
      while (this.inflight.size >= this.server.maxInflightRequests) await this.oneSettled();
      if (this.closed) return;
      // Between requests: idle (if nothing is in flight) until a first byte comes; from then on
      // the request must arrive whole within requestTimeoutMs (see NbdServer.sweep).
      if (this.reader.buffered === 0) {
        this.idleSince = Date.now();
        await this.reader.ready(1);
        this.idleSince = null;
      }
      this.requestSince = Date.now();
      const h = await this.reader.read(28);
      this.requestSince = null;
      const magic = h.readUInt32BE(0);
      if (magic !== P.REQUEST_MAGIC) throw new Disconnect(`bad request magic 0x${magic.toString(16)}`);
      const req: Request = {
        flags: h.readUInt16BE(4),
        type: h.readUInt16BE(6),
        handle: Buffer.from(h.subarray(8, 16)),
        offBig: h.readBigUInt64BE(16),
        length: h.readUInt32BE(24),
      };
      // The payload cannot be skipped safely past the advertised maximum: hard disconnect.
      if (req.type === P.NBD_CMD_WRITE && req.length > P.MAX_PAYLOAD) throw new Disconnect(`WRITE of ${req.length} bytes exceeds the maximum payload ${P.MAX_PAYLOAD}`);
      // Bytes this request holds while in flight (a READ over the maximum is refused, holding none).
      const cost = req.type === P.NBD_CMD_WRITE || (req.type === P.NBD_CMD_READ && req.length <= P.MAX_PAYLOAD) ? req.length : 0;
      while (this.inflight.size > 0 && this.inflightBytes + cost > this.server.maxInflightBytes) await this.oneSettled();
      if (req.type === P.NBD_CMD_WRITE) {
        this.requestSince = Date.now(); // the payload must follow its header (waiting on our own bounds above is not the client's stall)
        req.payload = await this.reader.read(req.length);
        this.requestSince = null;
      }
      if (req.type === P.NBD_CMD_DISC) {
        this.log("client disconnected (NBD_CMD_DISC)");
        // NBD: handle every outstanding request before closing.
        await this.idle();
        return;
      }
      if (this.closed) return;
      this.requests++;
      const e = this.server.findExport(name);
      if (!e) {
        this.reply(req.handle, P.NBD_ESHUTDOWN);
        await this.idle();
        throw new Disconnect(`export ${name} is gone (detached)`);
      }
      this.begin(e, req, cost);
      // Let replies queue up to a bound (so reading the next request overlaps sending), then wait.
      if (this.stream.writableLength > REPLY_HIGH_WATER) await this.drain();
    }
  }

  /** Resolves when some request in flight completes. */
  private oneSettled(): Promise<void> {
    return new Promise((resolve) => this.settleWaiters.push(resolve));
  }

  /** Resolves once no request of this connection is in flight. */
  private async idle(): Promise<void> {
    while (this.inflight.size) await Promise.all([...this.inflight].map((r) => r.done));
  }

  /** Starts a request: it runs (after what it must wait for) and replies on its own. */
  private begin(e: ExportInfo, req: Request, cost: number): void {
    const size = BigInt(Math.min(this.exportSize, e.size));
    const modifying = req.type === P.NBD_CMD_WRITE || req.type === P.NBD_CMD_TRIM || req.type === P.NBD_CMD_WRITE_ZEROES;
    const end = req.offBig + BigInt(req.length);
    const range = modifying && req.length > 0 && end <= size ? { from: Number(req.offBig), to: Number(end) } : undefined;
    // What this request waits for is fixed now, from the requests already in flight: a FLUSH
    // covers every write in flight on this connection, TRIM / WRITE_ZEROES the overlapping ones.
    let after: Promise<void>[] = [];
    if (req.type === P.NBD_CMD_FLUSH) after = [...this.inflight].filter((r) => r.range).map((r) => r.done);
    else if (range && req.type !== P.NBD_CMD_WRITE) after = [...this.inflight].filter((r) => r.range && r.range.from < range.to && range.from < r.range.to).map((r) => r.done);
    const entry: InFlight = { range, done: Promise.resolve() };
    this.inflight.add(entry);
    this.inflightBytes += cost;
    this.server.budget.take(cost);
    entry.done = this.serve(e, req, size, after)
      .catch((err) => this.log(`request type ${req.type} failed unexpectedly: ${err instanceof Error ? err.message : String(err)}`))
      .finally(() => {
        this.inflight.delete(entry);
        this.inflightBytes -= cost;
        this.server.budget.give(cost);
        this.lastSettled = Date.now();
        for (const wake of this.settleWaiters.splice(0)) wake();
      });
  }

  private async serve(e: ExportInfo, req: Request, size: bigint, after: Promise<void>[]): Promise<void> {
    if (after.length) {
      await Promise.all(after);
      // The client is gone: nobody waits for this reply, and a TRIM or FLUSH not yet started is safely dropped.
      if (this.closed) return;
    }
    const error = await this.execute(e, req, size);
    if (error !== 0) {
      // With structured replies a READ must be answered by chunks, errors included.
      if (this.structured && req.type === P.NBD_CMD_READ) this.chunk(req.handle, P.NBD_REPLY_FLAG_DONE, P.NBD_REPLY_TYPE_ERROR, errorPayload(error));
      else this.reply(req.handle, error);
    }
  }

  /** Runs one request; sends the reply itself on success, returns the error otherwise (0: reply sent). */
  private async execute(e: ExportInfo, req: Request, size: bigint): Promise<number> {
    const { type, flags, offBig, length, payload, handle } = req;
    const inRange = offBig + BigInt(length) <= size;
    const offset = Number(offBig);
    const fua = (flags & P.NBD_CMD_FLAG_FUA) !== 0;
    const be = this.server.backend;
    const bad = (allowed: number): boolean => (flags & ~allowed) !== 0;
    try {
      switch (type) {
        case P.NBD_CMD_READ: {
          if (bad(P.NBD_CMD_FLAG_FUA | (this.structured ? P.NBD_CMD_FLAG_DF : 0))) return P.NBD_EINVAL;
          if (length > P.MAX_PAYLOAD) return P.NBD_EINVAL;
          if (!inRange) return P.NBD_EINVAL;
          let data = length ? be.read(e.name, offset, length) : Buffer.alloc(0);
          if (isPromise(data)) data = await data;
          if (this.structured) this.structuredRead(handle, offset, data, (flags & P.NBD_CMD_FLAG_DF) !== 0);
          else this.reply(handle, 0, data.length ? data : undefined);
          return 0;
        }
        case P.NBD_CMD_WRITE:
          if (bad(P.NBD_CMD_FLAG_FUA)) return P.NBD_EINVAL;
          if (!inRange) return P.NBD_ENOSPC;
          if (length) {
            const done = be.write(e.name, offset, payload as Buffer);
            if (isPromise(done)) await done;
          }
          if (fua) await be.flush(e.name);
          break;
        case P.NBD_CMD_FLUSH:
          if (bad(P.NBD_CMD_FLAG_FUA)) return P.NBD_EINVAL;
          if (offBig !== 0n || length !== 0) return P.NBD_EINVAL;
          await be.flush(e.name);
          break;
        case P.NBD_CMD_TRIM:
          // No payload: the 32 MiB maximum does not apply, a TRIM may cover the whole export (D1).
          if (bad(P.NBD_CMD_FLAG_FUA)) return P.NBD_EINVAL;
          if (!inRange) return P.NBD_EINVAL;
          if (length) await be.trim(e.name, offset, length);
          if (fua) await be.flush(e.name);
          break;
        case P.NBD_CMD_WRITE_ZEROES:
          // NO_HOLE: the zeros must stay allocated; reading back zeros is all a client can observe, so plain write-zeroes is fine.
          if (bad(P.NBD_CMD_FLAG_FUA | P.NBD_CMD_FLAG_NO_HOLE)) return P.NBD_EINVAL;
          if (!inRange) return P.NBD_ENOSPC;
          if (length) await be.writeZeroes(e.name, offset, length);
          if (fua) await be.flush(e.name);
          break;
        default:
          // CACHE, BLOCK_STATUS (not negotiated) and unknown commands.
          return P.NBD_EINVAL;
      }
    } catch (err) {
      const code = (err as { code?: unknown })?.code;
      const msg = err instanceof Error ? err.message : String(err);
      this.log(`request type ${type} at ${offset}+${length} failed: ${typeof code === "string" ? code : "error"}: ${msg}`);
      if (code === "InvalidParameterValue.OutOfRange") return type === P.NBD_CMD_WRITE || type === P.NBD_CMD_WRITE_ZEROES ? P.NBD_ENOSPC : P.NBD_EINVAL;
      if (code === "InvalidAttachmentId.NotFound" || code === "ResourceUnavailable.NotAttached") return P.NBD_ESHUTDOWN;
      if (code === "ResourceInsufficient.DiskFull") return P.NBD_ENOSPC; // D9: the engine's file system is full
      return P.NBD_EIO;
    }
    this.reply(handle, 0);
    return 0;
  }
}

export class NbdServer {
  readonly backend: ExportBackend;
  readonly secureContext: tls.SecureContext;
  readonly structuredReplies: boolean;
  readonly maxInflightRequests: number;
  readonly maxInflightBytes: number;
  readonly maxConnections: number;
  readonly maxUnauthenticated: number;
  readonly maxUnauthenticatedPerPeer: number;
  readonly handshakeTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly pressureGraceMs: number;
  /** Every byte buffered for clients, shared by all connections (D8). */
  readonly budget: ByteBudget;
  /** Connections not authenticated yet, oldest first (D2). */
  private readonly unauthenticated = new Set<Connection>();
  private authenticatedCount = 0;
  private sweeper: NodeJS.Timeout | null = null;
  private readonly opts: NbdServerOptions;
  private readonly server: net.Server;
  private exports = new Map<string, ExportInfo>();
  private readonly connections = new Set<Connection>();
  /** Exports whose last client left: their key release, pending the grace period. */
  private readonly releaseTimers = new Map<string, NodeJS.Timeout>();
  private poll: NodeJS.Timeout | null = null;
  private listError: string | null = null;
  private closing = false;
  private readonly logLine: (line: string) => void;

  constructor(opts: NbdServerOptions) {
    this.opts = opts;
    this.backend = opts.backend;
    this.structuredReplies = opts.structuredReplies ?? true;
    this.maxInflightRequests = Math.max(1, Math.floor(opts.maxInflightRequests ?? MAX_INFLIGHT_REQUESTS));
    this.maxInflightBytes = Math.max(1, Math.floor(opts.maxInflightBytes ?? MAX_INFLIGHT_BYTES));
    const count = (v: number | undefined, d: number, min = 1): number => Math.max(min, Math.floor(v ?? d));
    this.maxConnections = count(opts.maxConnections, MAX_CONNECTIONS);
    this.maxUnauthenticated = count(opts.maxUnauthenticated, MAX_UNAUTHENTICATED);
    this.maxUnauthenticatedPerPeer = count(opts.maxUnauthenticatedPerPeer, MAX_UNAUTHENTICATED_PER_PEER);
    this.handshakeTimeoutMs = count(opts.handshakeTimeoutMs, HANDSHAKE_TIMEOUT_MS);
    this.requestTimeoutMs = count(opts.requestTimeoutMs, REQUEST_TIMEOUT_MS);
    this.idleTimeoutMs = count(opts.idleTimeoutMs, 0, 0);
    this.pressureGraceMs = count(opts.pressureGraceMs, PRESSURE_GRACE_MS, 0);
    this.budget = new ByteBudget(count(opts.maxBufferedBytes, MAX_BUFFERED_BYTES));
    this.logLine = opts.log ?? ((line) => process.stdout.write(`${line}\n`));
    this.secureContext = tls.createSecureContext({
      minVersion: "TLSv1.2",
      ciphers: opts.ciphers ?? DEFAULT_CIPHERS,
      dhparam: "auto",
      // Our order, not the client's: AES-GCM (hardware accelerated) before ChaCha20.
      secureOptions: crypto.constants.SSL_OP_CIPHER_SERVER_PREFERENCE,
    } as tls.SecureContextOptions);
    this.server = net.createServer((socket) => this.accept(socket));
    this.server.on("error", (e) => this.log(`server error: ${e.message}`));
  }

  log(line: string): void {
    this.logLine(`nbd: ${line}`);
  }

  /** Start listening; resolves with the bound address. */
  async listen(): Promise<{ host: string; port: number }> {
    this.refresh();
    const host = this.opts.host ?? "127.0.0.1";
    await new Promise<void>((resolve, reject) => {
      const onErr = (e: Error): void => reject(e);
      this.server.once("error", onErr);
      this.server.listen(this.opts.port ?? 10809, host, () => {
        this.server.off("error", onErr);
        resolve();
      });
    });
    const a = this.address();
    this.log(`listening on ${a.host.includes(":") ? `[${a.host}]` : a.host}:${a.port} (TLS-PSK required, ${this.exports.size} export(s))`);
    const every = this.opts.pollIntervalMs ?? 250;
    if (every > 0) {
      this.poll = setInterval(() => this.refresh(), every);
      this.poll.unref();
    }
    const tick = Math.max(10, Math.min(250, Math.floor(Math.min(this.requestTimeoutMs, this.pressureGraceMs || 250, this.idleTimeoutMs || 250) / 4)));
    this.sweeper = setInterval(() => this.sweep(), tick);
    this.sweeper.unref();
    return a;
  }

  address(): { host: string; port: number } {
    const a = this.server.address() as net.AddressInfo;
    return { host: a.address, port: a.port };
  }

  exportList(): ExportInfo[] {
    return [...this.exports.values()];
  }

  findExport(name: string): ExportInfo | undefined {
    return this.exports.get(name);
  }

  findExportByIdentity(identity: string): ExportInfo | undefined {
    for (const e of this.exports.values()) if (e.pskIdentity === identity) return e;
    return undefined;
  }

  /** Re-read the backend's exports: new ones are served, removed ones closed with their connections. */
  refresh(): void {
    if (this.closing) return;
    let list: ExportInfo[];
    try {
      list = this.backend.list();
      if (this.listError) this.log("export list readable again");
      this.listError = null;
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (this.listError !== msg) this.log(`cannot list exports (keeping the current ones): ${msg}`);
      this.listError = msg;
      return;
    }
    const next = new Map(list.map((e) => [e.name, e]));
    for (const [name, old] of this.exports) {
      const now = next.get(name);
      if (!now) {
        this.log(`export ${name} removed (detached)`);
        for (const c of this.connections) if (c.exportName === name || (c.exportName === null && c.identity === old.pskIdentity)) c.close(`export ${name} was detached`);
      } else if (now.pskIdentity !== old.pskIdentity) {
        this.log(`export ${name} changed PSK identity`);
        for (const c of this.connections) if (c.exportName === name || (c.exportName === null && c.identity === old.pskIdentity)) c.close(`export ${name} changed`);
      } else if (now.size !== old.size) {
        // NBD cannot tell a connected client its export grew: open connections keep the size they negotiated.
        this.log(`export ${name} resized (${old.size} -> ${now.size} bytes; new connections see the new size)`);
      }
    }
    for (const [name, e] of next) if (!this.exports.has(name)) this.log(`export ${name} added (${e.size} bytes)`);
    this.exports = next;
  }

  /**
   * A new socket is always admitted to negotiate (D2). Past the per-peer or the overall limit
   * of unauthenticated connections, the oldest unauthenticated connection of the peer holding
   * the most is closed instead: a flood of idle sockets from one address only evicts its own,
   * and a real client, which authenticates in milliseconds, gets in.
   */
  private accept(socket: net.Socket): void {
    if (this.closing) {
      socket.destroy();
      return;
    }
    const peer = socket.remoteAddress ?? "?";
    const byPeer = new Map<string, Connection[]>();
    for (const u of this.unauthenticated) {
      if (u.isClosed) continue;
      const l = byPeer.get(u.peerAddress);
      if (l) l.push(u);
      else byPeer.set(u.peerAddress, [u]);
    }
    const mine = byPeer.get(peer) ?? [];
    let evict: Connection | undefined;
    // Counted from the live ones (closed connections leave the set only when their close completes).
    const live = [...byPeer.values()].reduce((n, l) => n + l.length, 0);
    if (mine.length >= this.maxUnauthenticatedPerPeer) evict = mine[0];
    else if (live >= this.maxUnauthenticated) evict = [...byPeer.values()].reduce((a, b) => (b.length > a.length ? b : a))[0];
    if (evict) {
      this.unauthenticated.delete(evict);
      evict.close(`evicted: ${mine.length >= this.maxUnauthenticatedPerPeer ? `${this.maxUnauthenticatedPerPeer} unauthenticated connections from ${peer}` : `${this.maxUnauthenticated} unauthenticated connections`} (the oldest goes)`);
    }
    const c = new Connection(this, socket);
    this.connections.add(c);
    this.unauthenticated.add(c);
    void c.run();
  }

  /** TLS-PSK succeeded on `c`: it leaves the unauthenticated pool; a reason to refuse it when authenticated slots are all taken. */
  authenticated(c: Connection): string | null {
    this.unauthenticated.delete(c);
    if (this.authenticatedCount >= this.maxConnections) return `refused: ${this.maxConnections} authenticated connections already open`;
    this.authenticatedCount++;
    c.authenticated = true;
    return null;
  }

  /**
   * Timeouts and budget pressure, every tick: a request arriving for longer than
   * requestTimeoutMs (a stall mid-request, e.g. a half-sent WRITE) closes its connection; so does
   * an idle connection past idleTimeoutMs, when set. While the buffer budget is used up and
   * readers wait for it, the connection whose request has been arriving longest (past
   * pressureGraceMs) is closed, giving its bytes back, when it is arrivals (bytes readers hold)
   * that fill at least half the budget.
   */
  private sweep(): void {
    const now = Date.now();
    let oldest: Connection | null = null;
    for (const c of this.connections) {
      if (c.isClosed) continue;
      if (c.requestSince !== null && now - c.requestSince > this.requestTimeoutMs) c.close(`request not received whole within ${this.requestTimeoutMs} ms (stalled mid-request)`);
      else if (this.idleTimeoutMs > 0 && c.idleFor(now) > this.idleTimeoutMs) c.close(`idle for ${this.idleTimeoutMs} ms`);
      else if (c.requestSince !== null && c.buffered > 0 && (!oldest || c.requestSince < (oldest.requestSince as number))) oldest = c;
    }
    // Only when arrivals fill the budget: requests in flight that hold it (say, writes waiting for
    // another process's SQLite lock) give it back on their own, and live clients must not pay.
    const arrivals = this.budget.arrived >= this.budget.limit / 2;
    if (oldest && arrivals && this.budget.exhausted && this.budget.waiting > 0 && now - (oldest.requestSince as number) > this.pressureGraceMs) {
      oldest.close(`request still arriving after ${now - (oldest.requestSince as number)} ms while the server's buffer budget (${this.budget.limit} bytes) is used up`);
    }
  }

  /** Bytes buffered for clients right now, the most so far, and the bound (D8). */
  get buffered(): { used: number; peak: number; limit: number } {
    return { used: this.budget.used, peak: this.budget.peak, limit: this.budget.limit };
  }

  connectionClosed(c: Connection): void {
    if (!this.connections.delete(c)) return;
    this.unauthenticated.delete(c);
    if (c.authenticated) this.authenticatedCount--;
    const name = c.exportName;
    if (name && this.backend.releaseExport && ![...this.connections].some((o) => o.exportName === name)) {
      clearTimeout(this.releaseTimers.get(name));
      const t = setTimeout(() => {
        this.releaseTimers.delete(name);
        if ([...this.connections].some((o) => o.exportName === name)) return; // a client came back
        try {
          this.backend.releaseExport?.(name);
        } catch (e) {
          this.log(`releasing the keys of ${name} failed: ${e instanceof Error ? e.message : String(e)}`);
        }
      }, this.opts.keyReleaseGraceMs ?? KEY_RELEASE_GRACE_MS);
      t.unref();
      this.releaseTimers.set(name, t);
    }
    if (this.connections.size === 0 && this.backend.release) {
      try {
        this.backend.release();
      } catch (e) {
        this.log(`releasing keys failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /** Connections still negotiating (not authenticated). */
  get unauthenticatedCount(): number {
    return this.unauthenticated.size;
  }

  /** Stop accepting, close every connection, release keys and close the backend. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.poll) clearInterval(this.poll);
    if (this.sweeper) clearInterval(this.sweeper);
    for (const t of this.releaseTimers.values()) clearTimeout(t);
    this.releaseTimers.clear();
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const finished = [...this.connections].map((c) => c.finished);
    for (const c of [...this.connections]) c.close("server shutting down");
    await closed;
    // Requests in flight finish before the backend is released and closed under them.
    await Promise.all(finished);
    try {
      this.backend.release?.();
      this.backend.close?.();
    } catch (e) {
      this.log(`backend close failed: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.log("stopped");
  }
}
