/** Exact-length reads from a stream, with backpressure: the stream is paused while more than
 * `highWater` bytes wait unread (unless a pending read needs them). */
import { Duplex } from "node:stream";

/** The peer went away or broke the protocol: end the session (not a server fault). */
export class Disconnect extends Error {}

/** Pulls exact byte counts from a stream; pauses the stream when too much is buffered. */
export class ByteReader {
  private chunks: Buffer[] = [];
  private avail = 0;
  private waiter: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  private paused = false;
  private readonly onData = (chunk: Buffer): void => {
    this.chunks.push(chunk);
    this.avail += chunk.length;
    const w = this.waiter;
    if (w && this.avail >= w.n) {
      this.waiter = null;
      w.resolve(this.take(w.n));
    }
    this.maybePause();
  };
  private readonly onEnd = (): void => this.fail(new Disconnect("client closed the connection"));
  private readonly onError = (e: Error): void => this.fail(e);

  constructor(private readonly stream: Duplex, private readonly highWater = 8 * 1024 * 1024) {
    stream.on("data", this.onData);
    stream.on("end", this.onEnd);
    stream.on("close", this.onEnd);
    stream.on("error", this.onError);
  }

  get buffered(): number {
    return this.avail;
  }

  read(n: number): Promise<Buffer> {
    if (this.avail >= n) return Promise.resolve(this.take(n));
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiter = { n, resolve, reject };
      if (this.paused) {
        this.paused = false;
        this.stream.resume();
      }
    });
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
    this.avail = 0;
    return rest;
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
    if (this.paused && this.avail < this.highWater) {
      this.paused = false;
      this.stream.resume();
    }
    return out;
  }
}

