/**
 * `encdisk serve`: serve every current attachment of an engine directory over NBD with TLS
 * required (W2), following attachments as they come and go.
 *
 * Usage: encdisk serve [--dir DIR] [--listen HOST:PORT] [--poll-ms N] [--kms-root-key-file FILE] [--quiet] [--json]
 *
 *   --dir DIR                 engine directory (default: $ENCDISK_DIR, else ~/.encdisk)
 *   --listen HOST:PORT        address to listen on (default: $ENCDISK_NBD_ADDRESS, else 127.0.0.1:10809);
 *                             port 0 picks a free port (printed on the "listening on" line)
 *   --poll-ms N               how often to re-read the attachment list, in ms (default 250)
 *   --kms-root-key-file FILE  KMS root key file (default: the engine's own lookup, see EngineOptions)
 *   --quiet                   log only errors and the listening line
 *   --json                    log lines as JSON objects ({"time", "message"})
 *   --handshake-timeout-ms N  time from connecting to transmission (default 10000)
 *   --request-timeout-ms N    time a started request (header, WRITE payload) may take to arrive (default 30000)
 *   --idle-timeout-ms N       close a connection idle between requests this long (default 0: never; a
 *                             mounted filesystem idles for hours)
 *   --max-buffered-mib N      bytes buffered for all clients together, in MiB (default 256)
 *
 * Each attachment is one export named by its attachment id; a client authenticates with TLS-PSK
 * (identity = attachment id, key in the attachment's 0600 `pskFile`) and may open only that
 * export. Detaching closes the export and its connections. Logs one line per event to stdout;
 * an error is one line on stderr with its code, as for every encdisk command.
 * SIGINT/SIGTERM: close connections, release key material, close the engine, exit 0.
 */
import { EngineError, ErrorCodes } from "../errors";
import { resolveEngineDir } from "../engine";
import type { Engine } from "../types";
import { EngineBackend } from "../nbd/engine-backend";
import { NbdServer } from "../nbd/server";
import { parseCommandLine, parseDecimal, positionals, SERVE_OPTIONS, SERVE_USAGE } from "./args";

export { SERVE_USAGE };
import { openCliEngine, printError } from "./common";


export interface ServeFlags {
  dir: string;
  host: string;
  port: number;
  pollMs: number;
  kmsRootKeyFile?: string;
  quiet: boolean;
  json: boolean;
  /** NbdServer limits (D2, D8); absent: the server's defaults. */
  handshakeTimeoutMs?: number;
  requestTimeoutMs?: number;
  idleTimeoutMs?: number;
  maxBufferedBytes?: number;
}

/** Parse `HOST:PORT` (IPv6 as `[::1]:PORT`). */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):([^:]*)$/.exec(value);
  if (!m) throw new EngineError(ErrorCodes.InvalidParameterValue, `--listen expects HOST:PORT, got ${JSON.stringify(value)}`, { property: "--listen" });
  const host = m[1] ?? (m[2] || "127.0.0.1");
  const port = parseDecimal(m[3], "--listen port", { max: 65535 });
  return { host, port };
}

export function parseServeFlags(args: string[], env: NodeJS.ProcessEnv = process.env): ServeFlags {
  const usage = SERVE_USAGE.slice("usage: ".length);
  // The same command-line rules as every encdisk command: flags anywhere, unknown ones refused.
  const line = parseCommandLine(["serve", ...args], SERVE_OPTIONS, () => SERVE_OPTIONS, () => usage);
  positionals(line.positionals, [], usage);
  const f = line.flags;
  const { host, port } = parseListen(typeof f.listen === "string" ? f.listen : env.ENCDISK_NBD_ADDRESS || "127.0.0.1:10809");
  const pollMs = f["poll-ms"] === undefined ? 250 : parseDecimal(f["poll-ms"], "--poll-ms", { min: 10, max: 60000 });
  const dir = typeof f.dir === "string" ? resolveEngineDir(f.dir) : env.ENCDISK_DIR ? resolveEngineDir(env.ENCDISK_DIR) : resolveEngineDir();
  const limit = (flag: string, min: number, max: number): number | undefined => (f[flag] === undefined ? undefined : parseDecimal(f[flag], `--${flag}`, { min, max }));
  const maxBufferedMib = limit("max-buffered-mib", 64, 1 << 20);
  return {
    dir,
    host,
    port,
    pollMs,
    kmsRootKeyFile: typeof f["kms-root-key-file"] === "string" ? f["kms-root-key-file"] : undefined,
    quiet: !!f.quiet,
    json: !!f.json,
    handshakeTimeoutMs: limit("handshake-timeout-ms", 100, 600_000),
    requestTimeoutMs: limit("request-timeout-ms", 100, 3_600_000),
    idleTimeoutMs: limit("idle-timeout-ms", 0, 2_147_483_647),
    maxBufferedBytes: maxBufferedMib === undefined ? undefined : maxBufferedMib * 1024 * 1024,
  };
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
    printError("encdisk serve", e, undefined, SERVE_USAGE.slice("usage: ".length));
    return 2;
  }
  let engine: Engine;
  try {
    engine = openCliEngine({ dir: flags.dir, nbdAddress: `${flags.host.includes(":") ? `[${flags.host}]` : flags.host}:${flags.port}`, ...(flags.kmsRootKeyFile ? { kmsRootKeyFile: flags.kmsRootKeyFile } : {}) });
  } catch (e) {
    printError("encdisk serve", e, flags.dir);
    return 1;
  }
  const emit = flags.json
    ? (line: string): void => void process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), message: line })}\n`)
    : flags.quiet
      ? (line: string): void => void process.stdout.write(`${line}\n`)
      : (line: string): void => void process.stdout.write(`${new Date().toISOString()} ${line}\n`);
  const log = flags.quiet
    ? (line: string): void => {
        if (/listening|error|failed|cannot/.test(line)) emit(line);
      }
    : emit;
  const { handshakeTimeoutMs, requestTimeoutMs, idleTimeoutMs, maxBufferedBytes } = flags;
  const server = new NbdServer({ backend: new EngineBackend(engine), host: flags.host, port: flags.port, pollIntervalMs: flags.pollMs, log, handshakeTimeoutMs, requestTimeoutMs, idleTimeoutMs, maxBufferedBytes });
  try {
    await server.listen();
  } catch (e) {
    printError("encdisk serve", e, `listening on ${flags.host}:${flags.port}`);
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
          printError("encdisk serve", e, "shutdown");
          resolve(1);
        },
      );
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    opts.stop?.then(() => stop("SIGTERM"), () => stop("SIGTERM"));
  });
}
