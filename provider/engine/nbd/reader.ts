/** Exact-length reads from a stream, with backpressure: the stream is paused while more than
 * `highWater` bytes wait unread (unless a pending read needs them), and while the budget shared
 * by every reader of a server is used up (whatever the pending read needs). */
import { Duplex } from "node:stream";

/** The peer went away or broke the protocol: end the session (not a server fault). */
export class Disconnect extends Error {}

/**
 * Bytes a whole server holds for its clients (D8): what its readers buffered and what the
 * requests in flight hold (WRITE payloads, READ results). While `used` is at `limit` every
 * reader stops reading its socket (the kernel's buffers fill and TCP pushes back on the
 * clients); readers resume as bytes are given back. `used` passes `limit` by at most what the
 * sockets delivered in one read each, and by the requests already admitted.
 */
export class ByteBudget {
  used = 0;
  /** Of `used`, what readers hold (bytes arrived and not yet taken by a request). */
  arrived = 0;
  /** Highest `used` seen (for tests and measurements). */
  peak = 0;
  private readonly parked = new Set<ByteReader>();

  constructor(readonly limit: number) {}

  get exhausted(): boolean {
    return this.used >= this.limit;
  }

  /** Readers stopped by the budget right now. */
  get waiting(): number {
    return this.parked.size;
  }

  take(n: number, arrived = false): void {
    if (arrived) this.arrived += n;
    this.used += n;
    if (this.used > this.peak) this.peak = this.used;
  }

  give(n: number, arrived = false): void {
    if (arrived) this.arrived -= n;
    this.used -= n;
    if (this.parked.size && !this.exhausted) {
      for (const r of [...this.parked]) {
        this.parked.delete(r);
        r.budgetFreed();
        if (this.exhausted) break;
      }
    }
  }

  park(r: ByteReader): void {
    this.parked.add(r);
  }

  unpark(r: ByteReader): void {
    this.parked.delete(r);
  }
}

const EMPTY = Buffer.alloc(0);

/** Pulls exact byte counts from a stream; pauses the stream when too much is buffered. */
export class ByteReader {
  private chunks: Buffer[] = [];
  private avail = 0;
  private waiter: { n: number; consume: boolean; resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  private paused = false;
  /** Paused because the shared budget is used up (else only for the high-water mark). */
  private budgetStop = false;
  private disposed = false;
  /** When bytes last arrived (ms since the epoch). */
  lastData = Date.now();
  private readonly onData = (chunk: Buffer): void => {
    if (this.disposed) return;
    this.chunks.push(chunk);
    this.avail += chunk.length;
    this.lastData = Date.now();
    this.budget?.take(chunk.length, true);
    const w = this.waiter;
    if (w && this.avail >= w.n) {
      this.waiter = null;
      w.resolve(w.consume ? this.take(w.n) : EMPTY);
    }
    this.maybePause();
  };
  private readonly onEnd = (): void => this.fail(new Disconnect("client closed the connection"));
  private readonly onError = (e: Error): void => this.fail(e);

  constructor(private readonly stream: Duplex, private readonly highWater = 8 * 1024 * 1024, private readonly budget: ByteBudget | null = null) {
    stream.on("data", this.onData);
    stream.on("end", this.onEnd);
    stream.on("close", this.onEnd);
    stream.on("error", this.onError);
  }

  get buffered(): number {
    return this.avail;
  }

  read(n: number): Promise<Buffer> {
    return this.wait(n, true);
  }

  /** Resolves once at least `n` bytes are buffered, consuming nothing. */
  async ready(n = 1): Promise<void> {
    await this.wait(n, false);
  }

  private wait(n: number, consume: boolean): Promise<Buffer> {
    if (this.avail >= n) return Promise.resolve(consume ? this.take(n) : EMPTY);
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = { n, consume, resolve, reject };
      // The high-water mark never holds back bytes a read waits for; the shared budget does.
      if (this.paused && !this.budgetStop) {
        this.paused = false;
        this.stream.resume();
      }
    });
  }

  /** The shared budget has room again: read on, unless the high-water mark still holds. */
  budgetFreed(): void {
    if (!this.budgetStop || this.disposed) return;
    this.budgetStop = false;
    if (this.paused && (this.avail < this.highWater || (this.waiter !== null && this.waiter.n > this.avail))) {
      this.paused = false;
      this.stream.resume();
    }
  }

  /** Stop reading (for the STARTTLS upgrade); returns bytes already buffered. */
  detach(): Buffer {
    this.stream.pause();
    this.stream.off("data", this.onData);
    this.stream.off("end", this.onEnd);
    this.stream.off("close", this.onEnd);
    this.stream.off("error", this.onError);
    const rest = Buffer.concat(this.chunks);
    this.chunks = [];
    this.budget?.give(this.avail, true);
    this.avail = 0;
    this.budgetStop = false;
    this.budget?.unpark(this);
    return rest;
  }

  /** The connection is over: drop what is buffered (giving it back to the budget) and read nothing more. */
  dispose(): void {
    if (this.disposed) return;
    this.detach();
    this.disposed = true;
    this.fail(new Disconnect("connection closed"));
  }

  private fail(e: Error): void {
    if (!this.failure) this.failure = e;
    const w = this.waiter;
    if (w) {
      this.waiter = null;
      w.reject(this.failure);
    }
  }

  private maybePause(): void {
    if (this.budget?.exhausted && !this.budgetStop) {
      this.budgetStop = true;
      this.budget.park(this);
      if (!this.paused) {
        this.paused = true;
        this.stream.pause();
      }
      return;
    }
    if (!this.paused && this.avail >= this.highWater && (!this.waiter || this.waiter.n <= this.avail)) {
      this.paused = true;
      this.stream.pause();
    }
  }

  private take(n: number): Buffer {
    let out: Buffer;
    if (n === 0) out = Buffer.alloc(0);
    else if (this.chunks[0].length >= n) {
      const c = this.chunks[0];
      out = c.subarray(0, n);
      if (c.length === n) this.chunks.shift();
      else this.chunks[0] = c.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const c = this.chunks[0];
        const k = Math.min(c.length, n - filled);
        c.copy(out, filled, 0, k);
        filled += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.avail -= n;
    this.budget?.give(n, true);
    if (this.paused && !this.budgetStop && this.avail < this.highWater) {
      this.paused = false;
      this.stream.resume();
    }
    return out;
  }
}

