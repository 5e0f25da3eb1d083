/**
 * What the NBD server serves: a set of named exports, each with a TLS-PSK identity and key.
 * The server knows nothing else about the engine; `engine-backend.ts` adapts the engine to
 * this interface and `memory-backend.ts` is an in-memory one for protocol tests.
 */
import * as fs from "node:fs";

export interface ExportInfo {
  /** Export name clients ask for (an attachment id for the engine). */
  name: string;
  /** Size in bytes the client sees. */
  size: number;
  /** The only TLS-PSK identity allowed to open this export. */
  pskIdentity: string;
  /** Free text shown by NBD_OPT_LIST / NBD_INFO_DESCRIPTION. */
  description?: string;
}

export interface ExportBackend {
  /** Current exports. Called on every poll; must be cheap. */
  list(): ExportInfo[];
  /** The PSK for an identity, or null when the identity is unknown (handshake fails). */
  pskKey(identity: string): Buffer | null;
  /**
   * Read `length` bytes at `offset`. May return a Promise: the server keeps several reads and
   * writes of a connection in flight at once and replies as each one completes. The Buffer is
   * the caller's: the server may hand it to the socket as it is, so the backend must not reuse it.
   */
  read(name: string, offset: number, length: number): Buffer | Promise<Buffer>;
  /**
   * Write `data` at `offset`; done (durable against a process kill) when it returns or its
   * Promise resolves, and a failed write must change nothing. The server may call `read` and
   * `write` again before earlier Promises settle; in-flight writes overlap only when a client
   * sent overlapping writes without waiting, whose order NBD leaves to the server.
   */
  write(name: string, offset: number, data: Buffer): void | Promise<void>;
  /**
   * Zero / discard `length` bytes at `offset`: no payload, so `length` may be the whole export
   * (a backend splits it as it needs). May return a Promise, as `write`.
   */
  writeZeroes(name: string, offset: number, length: number): void | Promise<void>;
  trim(name: string, offset: number, length: number): void | Promise<void>;
  /** Every write that completed before the call is durable against power loss when it returns (or its Promise resolves). */
  flush(name: string): void | Promise<void>;
  /** Called when the last client connection closes: drop cached key material. */
  release?(): void;
  /** Called when the last client of one export has been gone for the grace period: drop that export's keys. */
  releaseExport?(name: string): void;
  /** Called once when the server shuts down. */
  close?(): void;
}

/** Parse a psktool key file (`identity:hexkey` lines) and return the key for `identity`. */
export function parsePskFile(text: string, identity: string): Buffer | null {
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const colon = line.lastIndexOf(":");
    if (colon <= 0) continue;
    if (line.slice(0, colon) !== identity) continue;
    const hex = line.slice(colon + 1);
    if (!/^[0-9a-fA-F]+$/.test(hex) || hex.length % 2 !== 0) return null;
    return Buffer.from(hex, "hex");
  }
  return null;
}

/** Read the key for `identity` from a psktool key file; null if missing or unreadable. */
export function readPskFile(file: string, identity: string): Buffer | null {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    return null;
  }
  return parsePskFile(text, identity);
}

/** Write a psktool key file (`identity:hexkey`) with mode 0600. */
export function writePskFile(file: string, identity: string, key: Buffer): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${identity}:${key.toString("hex")}\n`, { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
}
