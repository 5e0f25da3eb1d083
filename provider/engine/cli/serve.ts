/**
 * `encdisk serve`: serve every current attachment of an engine directory over NBD with TLS
 * required (W2), following attachments as they come and go.
 *
 * Usage: encdisk serve [--dir DIR] [--listen HOST:PORT] [--poll-ms N] [--kms-root-key-file FILE] [--quiet]
 *
 *   --dir DIR                 engine directory (default: $ENCDISK_DIR, else ~/.encdisk)
 *   --listen HOST:PORT        address to listen on (default: $ENCDISK_NBD_ADDRESS, else 127.0.0.1:10809);
 *                             port 0 picks a free port (printed on the "listening on" line)
 *   --poll-ms N               how often to re-read the attachment list, in ms (default 250)
 *   --kms-root-key-file FILE  KMS root key file (default: the engine's own lookup, see EngineOptions)
 *   --quiet                   log only errors and the listening line
 *   --handshake-timeout-ms N  time from connecting to transmission (default 10000)
 *   --request-timeout-ms N    time a started request (header, WRITE payload) may take to arrive (default 30000)
 *   --idle-timeout-ms N       close a connection idle between requests this long (default 0: never; a
 *                             mounted filesystem idles for hours)
 *   --max-buffered-mib N      bytes buffered for all clients together, in MiB (default 256)
 *
 * Each attachment is one export named by its attachment id; a client authenticates with TLS-PSK
 * (identity = attachment id, key in the attachment's 0600 `pskFile`) and may open only that
 * export. Detaching closes the export and its connections. Logs one line per event to stdout.
 * SIGINT/SIGTERM: close connections, release key material, close the engine, exit 0.
 */
import { openEngine, resolveEngineDir } from "../engine";
import { EngineBackend } from "../nbd/engine-backend";
import { NbdServer } from "../nbd/server";

export const SERVE_USAGE =
  "usage: encdisk serve [--dir DIR] [--listen HOST:PORT] [--poll-ms N] [--kms-root-key-file FILE] [--quiet] [--handshake-timeout-ms N] [--request-timeout-ms N] [--idle-timeout-ms N] [--max-buffered-mib N]";

export interface ServeFlags {
  dir: string;
  host: string;
  port: number;
  pollMs: number;
  kmsRootKeyFile?: string;
  quiet: boolean;
  /** NbdServer limits (D2, D8); absent: the server's defaults. */
  handshakeTimeoutMs?: number;
  requestTimeoutMs?: number;
  idleTimeoutMs?: number;
  maxBufferedBytes?: number;
}

/** Parse `HOST:PORT` (IPv6 as `[::1]:PORT`). */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value.trim());
  if (!m) throw new Error(`--listen expects HOST:PORT, got ${JSON.stringify(value)}`);
  const host = m[1] ?? (m[2] || "127.0.0.1");
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`--listen: port ${port} out of range`);
  return { host, port };
}

export function parseServeFlags(args: string[], env: NodeJS.ProcessEnv = process.env): ServeFlags {
  let dir: string | undefined;
  let listen = env.ENCDISK_NBD_ADDRESS || "127.0.0.1:10809";
  let pollMs = 250;
  let kmsRootKeyFile: string | undefined;
  let quiet = false;
  const limits: Pick<ServeFlags, "handshakeTimeoutMs" | "requestTimeoutMs" | "idleTimeoutMs" | "maxBufferedBytes"> = {};
  const int = (flag: string, v: string, min: number, max: number): number => {
    const n = /^\d+$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) throw new Error(`${flag} expects an integer ${min}..${max}, got ${JSON.stringify(v)}`);
    return n;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const eq = a.indexOf("=");
    const flag = a.startsWith("--") && eq > 0 ? a.slice(0, eq) : a;
    const value = (): string => {
      if (a.startsWith("--") && eq > 0) return a.slice(eq + 1);
      const v = args[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case "--dir": dir = resolveEngineDir(value()); break;
      case "--listen": listen = value(); break;
      case "--poll-ms": {
        const v = value();
        pollMs = Number(v);
        if (!Number.isInteger(pollMs) || pollMs < 10 || pollMs > 60000) throw new Error(`--poll-ms expects an integer 10..60000, got ${JSON.stringify(v)}`);
        break;
      }
      case "--kms-root-key-file": kmsRootKeyFile = value(); break;
      case "--quiet": quiet = true; break;
      case "--handshake-timeout-ms": limits.handshakeTimeoutMs = int(flag, value(), 100, 600_000); break;
      case "--request-timeout-ms": limits.requestTimeoutMs = int(flag, value(), 100, 3_600_000); break;
      case "--idle-timeout-ms": limits.idleTimeoutMs = int(flag, value(), 0, 2_147_483_647); break;
      case "--max-buffered-mib": limits.maxBufferedBytes = int(flag, value(), 64, 1 << 20) * 1024 * 1024; break;
      default: throw new Error(`unknown flag ${JSON.stringify(a)}`);
    }
  }
  const { host, port } = parseListen(listen);
  return { dir: dir ?? (env.ENCDISK_DIR ? resolveEngineDir(env.ENCDISK_DIR) : resolveEngineDir()), host, port, pollMs, kmsRootKeyFile, quiet, ...limits };
}

/**
 * Runs until SIGINT/SIGTERM (or `opts.stop` resolves, for embedding and tests); resolves with
 * the exit code: 0 after a clean shutdown, 1 when the address cannot be bound, 2 for bad flags.
 */
export async function serveCommand(args: string[], opts: { stop?: Promise<unknown> } = {}): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(`${SERVE_USAGE}\n`);
    return 0;
  }
  let flags: ServeFlags;
  try {
    flags = parseServeFlags(args);
  } catch (e) {
    process.stderr.write(`encdisk serve: ${e instanceof Error ? e.message : String(e)}\n${SERVE_USAGE}\n`);
    return 2;
  }
  const engine = openEngine({ dir: flags.dir, nbdAddress: `${flags.host.includes(":") ? `[${flags.host}]` : flags.host}:${flags.port}`, ...(flags.kmsRootKeyFile ? { kmsRootKeyFile: flags.kmsRootKeyFile } : {}) });
  const log = flags.quiet
    ? (line: string): void => {
        if (/listening|error|failed|cannot/.test(line)) process.stdout.write(`${line}\n`);
      }
    : (line: string): void => void process.stdout.write(`${new Date().toISOString()} ${line}\n`);
  const { handshakeTimeoutMs, requestTimeoutMs, idleTimeoutMs, maxBufferedBytes } = flags;
  const server = new NbdServer({ backend: new EngineBackend(engine), host: flags.host, port: flags.port, pollIntervalMs: flags.pollMs, log, handshakeTimeoutMs, requestTimeoutMs, idleTimeoutMs, maxBufferedBytes });
  try {
    await server.listen();
  } catch (e) {
    process.stderr.write(`encdisk serve: cannot listen on ${flags.host}:${flags.port}: ${e instanceof Error ? e.message : String(e)}\n`);
    try {
      engine.releaseKeys();
      engine.close();
    } catch {
      /* already failing */
    }
    return 1;
  }
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (sig: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      log(`nbd: ${sig} received, shutting down`);
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      server.close().then(
        () => resolve(0),
        (e) => {
          process.stderr.write(`encdisk serve: shutdown failed: ${e instanceof Error ? e.message : String(e)}\n`);
          resolve(1);
        },
      );
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    opts.stop?.then(() => stop("SIGTERM"), () => stop("SIGTERM"));
  });
}
