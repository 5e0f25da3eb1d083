/** An in-memory ExportBackend: exports are Buffers; used by protocol tests and benchmarks. */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { ExportBackend, ExportInfo, writePskFile } from "./backend";

interface MemExport {
  info: ExportInfo;
  data: Buffer;
  key: Buffer;
  pskFile?: string;
}

export class OutOfRangeError extends Error {
  readonly code = "InvalidParameterValue.OutOfRange";
}

export class MemoryBackend implements ExportBackend {
  private readonly exports = new Map<string, MemExport>();
  flushes = 0;
  releases = 0;

  /** @param keyDir when set, each export's key is also written to `<keyDir>/<name>.psk` (0600). */
  constructor(private readonly keyDir?: string) {}

  add(name: string, size: number, opts: { key?: Buffer; identity?: string } = {}): { key: Buffer; pskFile?: string } {
    const key = opts.key ?? crypto.randomBytes(32);
    const identity = opts.identity ?? name;
    let pskFile: string | undefined;
    if (this.keyDir) {
      fs.mkdirSync(this.keyDir, { recursive: true, mode: 0o700 });
      pskFile = path.join(this.keyDir, `${name}.psk`);
      writePskFile(pskFile, identity, key);
    }
    this.exports.set(name, { info: { name, size, pskIdentity: identity, description: `in-memory export ${name}` }, data: Buffer.alloc(size), key, pskFile });
    return { key, pskFile };
  }

  remove(name: string): void {
    const e = this.exports.get(name);
    if (!e) return;
    this.exports.delete(name);
    if (e.pskFile) fs.rmSync(e.pskFile, { force: true });
  }

  data(name: string): Buffer {
    return this.get(name).data;
  }

  list(): ExportInfo[] {
    return [...this.exports.values()].map((e) => e.info);
  }

  pskKey(identity: string): Buffer | null {
    for (const e of this.exports.values()) if (e.info.pskIdentity === identity) return e.key;
    return null;
  }

  private get(name: string): MemExport {
    const e = this.exports.get(name);
    if (!e) throw new Error(`no export ${name}`);
    return e;
  }

  private range(e: MemExport, offset: number, length: number): void {
    if (offset < 0 || length < 0 || offset + length > e.info.size) throw new OutOfRangeError(`range ${offset}+${length} outside ${e.info.size}`);
  }

  read(name: string, offset: number, length: number): Buffer {
    const e = this.get(name);
    this.range(e, offset, length);
    return Buffer.from(e.data.subarray(offset, offset + length));
  }

  write(name: string, offset: number, data: Buffer): void {
    const e = this.get(name);
    this.range(e, offset, data.length);
    data.copy(e.data, offset);
  }

  writeZeroes(name: string, offset: number, length: number): void {
    const e = this.get(name);
    this.range(e, offset, length);
    e.data.fill(0, offset, offset + length);
  }

  trim(name: string, offset: number, length: number): void {
    this.writeZeroes(name, offset, length);
  }

  flush(name: string): void {
    this.get(name);
    this.flushes++;
  }

  release(): void {
    this.releases++;
  }
}
