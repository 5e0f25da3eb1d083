/**
 * A progress line for long CLI work (migrate, write of a file, read into a file): bytes done of
 * the total, rate and ETA, redrawn in place on stderr at most 5 times a second. Only on a
 * terminal and without --json: otherwise it prints nothing, so output stays parseable.
 */
const MiB = 2 ** 20;

function clock(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "--:--";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export class Progress {
  private readonly started = Date.now();
  private lastDraw = 0;
  private drawn = false;

  constructor(
    private readonly label: string,
    private total: number,
    readonly enabled: boolean,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  /** On when stderr is a terminal and the output is not JSON. */
  static for(label: string, total: number, json: boolean, stream: NodeJS.WriteStream = process.stderr): Progress {
    return new Progress(label, total, !json && !!stream.isTTY, stream);
  }

  /** The line for `done` bytes after `elapsedMs` (exported for tests through render). */
  render(done: number, elapsedMs: number): string {
    const rate = elapsedMs > 0 ? done / (elapsedMs / 1000) : 0;
    const pct = this.total > 0 ? Math.min(100, (done / this.total) * 100) : 100;
    const eta = rate > 0 ? (this.total - done) / rate : Infinity;
    return `${this.label}: ${(done / MiB).toFixed(1)} of ${(this.total / MiB).toFixed(1)} MiB ${pct.toFixed(0).padStart(3)}%  ${(rate / MiB).toFixed(1)} MiB/s  ETA ${clock(eta)}`;
  }

  update(done: number, total?: number): void {
    if (!this.enabled) return;
    if (total !== undefined) this.total = total;
    const now = Date.now();
    if (now - this.lastDraw < 200 && done < this.total) return;
    this.lastDraw = now;
    this.drawn = true;
    this.stream.write(`\r\x1b[K${this.render(done, now - this.started)}`);
  }

  /** Ends the line (if one was drawn). */
  done(): void {
    if (this.enabled && this.drawn) this.stream.write("\n");
  }
}
