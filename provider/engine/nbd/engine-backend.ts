/**
 * The engine as an ExportBackend: every current attachment is an export named by its
 * attachment id, sized by its capacityBytes (L6), keyed by its 0600 psktool key file.
 * All I/O goes through the engine's encrypted block store through its asynchronous forms
 * (`readAsync`, `writeAsync`, `writeZeroesAsync`, `trimAsync`, `flushAsync`): a write waiting for
 * another process's SQLite write lock never blocks the server's event loop (D3).
 */
import type { Engine } from "../types";
import { ExportBackend, ExportInfo, readPskFile } from "./backend";

export class EngineBackend implements ExportBackend {
  constructor(private readonly engine: Engine) {}

  list(): ExportInfo[] {
    return this.engine.listAttachments().map((a) => ({
      name: a.attachmentId,
      size: a.capacityBytes,
      pskIdentity: a.pskIdentity || a.attachmentId,
      description: `${a.diskId} on ${a.instanceId} (${a.capacityGb} GB${a.encrypted ? ", encrypted" : ""})`,
    }));
  }

  pskKey(identity: string): Buffer | null {
    const att = this.engine.findAttachment(identity);
    if (!att || !att.pskFile) return null;
    return readPskFile(att.pskFile, att.pskIdentity || att.attachmentId);
  }

  read(name: string, offset: number, length: number): Promise<Buffer> {
    return this.engine.readAsync(name, offset, length);
  }

  write(name: string, offset: number, data: Buffer): Promise<void> {
    return this.engine.writeAsync(name, offset, data);
  }

  writeZeroes(name: string, offset: number, length: number): Promise<void> {
    return this.engine.writeZeroesAsync(name, offset, length);
  }

  trim(name: string, offset: number, length: number): Promise<void> {
    return this.engine.trimAsync(name, offset, length);
  }

  flush(name: string): Promise<void> {
    return this.engine.flushAsync(name);
  }

  release(): void {
    this.engine.releaseKeys();
  }

  releaseExport(name: string): void {
    this.engine.releaseKeys(name);
  }

  close(): void {
    this.engine.releaseKeys();
    this.engine.close();
  }
}
