/**
 * The operator CLI's arguments: the command line (flags anywhere, with util.parseArgs) and the
 * one parser of numbers every numeric flag and argument goes through (D17): plain decimal
 * digits — no sign, exponent, hex/octal/binary prefix, leading zero, whitespace or empty
 * string — so `--size 0x10` is refused instead of meaning 16.
 */
import { parseArgs } from "util";
import { EngineError, ErrorCodes } from "../errors";

export type OptionSpec = Record<string, { type: "string" | "boolean"; short?: string }>;
export type Flags = Record<string, string | boolean | undefined>;

/** Options every command takes. */
export const GLOBAL_OPTIONS: OptionSpec = {
  dir: { type: "string" },
  "kms-root-key-file": { type: "string" },
  json: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "V" },
};

/** `encdisk serve`'s own options (the serve module is loaded only for that command). */
/** `encdisk serve`'s usage line (help, refusals), beside its options. */
export const SERVE_USAGE =
  "usage: encdisk serve [--dir DIR] [--listen HOST:PORT] [--poll-ms N] [--kms-root-key-file FILE] [--quiet] [--json] [--handshake-timeout-ms N] [--request-timeout-ms N] [--idle-timeout-ms N] [--max-buffered-mib N]";

export const SERVE_OPTIONS: OptionSpec = {
  listen: { type: "string" },
  "poll-ms": { type: "string" },
  quiet: { type: "boolean" },
  // The server's limits against hostile and stalled peers (D2, D8); see docs/nbd.md.
  "handshake-timeout-ms": { type: "string" },
  "request-timeout-ms": { type: "string" },
  "idle-timeout-ms": { type: "string" },
  "max-buffered-mib": { type: "string" },
};

const DECIMAL = /^(0|[1-9][0-9]*)$/;

export function usageError(message: string, usage?: string): EngineError {
  return new EngineError(ErrorCodes.Usage, usage ? `${message}; usage: ${usage}` : message);
}

/** A non-negative decimal integer within [min, max] (default [0, 2^53-1]). */
export function parseDecimal(value: string | boolean | undefined, what: string, opts: { min?: number; max?: number } = {}): number {
  if (value === undefined || typeof value === "boolean") throw usageError(`${what} needs a value`);
  const min = opts.min ?? 0;
  const max = opts.max ?? Number.MAX_SAFE_INTEGER;
  if (!DECIMAL.test(value)) {
    throw new EngineError(ErrorCodes.NotDecimal, `${what} must be a decimal integer (digits only: no sign, exponent, 0x/0o/0b prefix, leading zero or spaces), got ${JSON.stringify(value)}`, { property: what });
  }
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new EngineError(ErrorCodes.OutOfRange, `${what} is out of range: it must be ${min}..${max}, got ${value}`, { property: what });
  return n;
}

const UNITS: Record<string, number> = { "": 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** A byte count: a decimal integer with an optional binary suffix (4096, 64K, 16M, 1G, 2TiB). */
export function parseByteCount(value: string | boolean | undefined, what: string): number {
  if (value === undefined || typeof value === "boolean") throw usageError(`${what} needs a value`);
  const m = /^(.*?)([KMGTkmgt](?:i?[Bb])?)?$/.exec(value) as RegExpExecArray;
  const digits = parseDecimal(m[1], `${what} (a byte count such as 4096, 64K, 16M or 1G)`);
  const n = digits * UNITS[(m[2] ?? "").charAt(0).toUpperCase()];
  if (!Number.isSafeInteger(n)) throw new EngineError(ErrorCodes.OutOfRange, `${what} is too large: ${value}`, { property: what });
  return n;
}

/** An amount of currency with up to 6 decimals ("10", "10.5"), in micros, without float rounding. */
export function parseAmountMicros(value: string, what: string): number {
  const m = /^([^.]*)(?:\.([0-9]{1,6}))?$/.exec(value);
  const whole = parseDecimal(m ? m[1] : value, `${what} (an amount such as 10 or 10.5, up to 6 decimals)`, { max: Math.floor(Number.MAX_SAFE_INTEGER / 1e6) });
  const micros = whole * 1e6 + Number((m?.[2] ?? "").padEnd(6, "0") || 0);
  if (micros <= 0) throw new EngineError(ErrorCodes.OutOfRange, `${what} must be positive, got ${value}`, { property: what });
  return micros;
}

export interface CommandLine {
  command?: string;
  positionals: string[];
  flags: Flags;
  /** The arguments without the command word. */
  rest: string[];
}

/** Rewrites parseArgs' own errors (several lines) as one line with a code. */
function parseArgsError(e: unknown, usage?: string): EngineError {
  const msg = e instanceof Error ? e.message : String(e);
  const opt = /Option '(-[^' ]+)/.exec(msg)?.[1] ?? /nknown option '([^']+)'/.exec(msg)?.[1];
  let text = msg.split("\n")[0];
  if (/nknown option/.test(msg)) text = `unknown flag ${opt}`;
  else if (/ambiguous|argument missing/.test(msg)) text = `option ${opt} needs a value (a value starting with "-" is written ${opt}=-VALUE)`;
  else if (/does not take an argument/.test(msg)) text = `option ${opt} takes no value`;
  return usageError(text, usage);
}

/**
 * Splits argv into the command (the first positional, wherever the flags are) and the rest,
 * parsed strictly against the command's options and the global ones. `known` is every
 * option any command has, so a flag's value before the command is not taken for it.
 */
export function parseCommandLine(argv: string[], known: OptionSpec, optionsOf: (command: string) => OptionSpec | undefined, usageOf: (command: string) => string | undefined): CommandLine {
  // A negative number after a string option (`--size -1`) is that option's value, for the
  // number parser to refuse with its own message.
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const name = /^--([^=]+)$/.exec(argv[i])?.[1];
    if (name && (known[name] ?? GLOBAL_OPTIONS[name])?.type === "string" && /^-[0-9.]/.test(argv[i + 1] ?? "")) args.push(`${argv[i]}=${argv[++i]}`);
    else args.push(argv[i]);
  }
  let tokens;
  try {
    tokens = parseArgs({ args, options: { ...known, ...GLOBAL_OPTIONS }, strict: false, allowPositionals: true, tokens: true }).tokens;
  } catch (e) {
    throw parseArgsError(e);
  }
  const first = tokens.find((t) => t.kind === "positional");
  const command = first?.kind === "positional" ? first.value : undefined;
  const rest = first?.kind === "positional" ? [...args.slice(0, first.index), ...args.slice(first.index + 1)] : args;
  const spec = command === undefined ? {} : optionsOf(command);
  const usage = command === undefined ? undefined : usageOf(command);
  if (command !== undefined && spec === undefined) {
    throw usageError(`unknown command ${JSON.stringify(command)}; run encdisk --help for the list`);
  }
  try {
    const parsed = parseArgs({ args: rest, options: { ...(spec ?? {}), ...GLOBAL_OPTIONS }, strict: true, allowPositionals: true });
    return { command, positionals: parsed.positionals, flags: parsed.values as Flags, rest };
  } catch (e) {
    throw Object.assign(parseArgsError(e, usage), { command });
  }
}

/** Refuses fewer or more positionals than a command takes. */
export function positionals(args: string[], names: string[], usage: string): string[] {
  if (args.length < names.length) throw usageError(`missing ${names.slice(args.length).join(" ")}`, usage);
  if (args.length > names.length) throw usageError(`unexpected argument${args.length - names.length > 1 ? "s" : ""} ${args.slice(names.length).map((a) => JSON.stringify(a)).join(" ")}`, usage);
  return args;
}
