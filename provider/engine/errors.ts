/**
 * Typed engine errors. Every error carries a stable dotted `code` in the cloud's own
 * vocabulary, the spec `rule` it enforces (when there is one), and a message that says what
 * to do next. Callers switch on `code`, never on the message.
 */

/** Stable error codes. Adding one is fine; renaming one breaks users. */
export const ErrorCodes = {
  // Restrictions (SPEC section 3)
  LocalDiskEncrypt: "InvalidParameterCombination.LocalDiskEncrypt", // L2
  SystemDiskEncrypt: "InvalidParameterCombination.SystemDiskEncrypt", // L3
  DiskEncryptConversion: "UnsupportedOperation.DiskEncrypt", // L4, L5
  SnapshotEncryptConversion: "UnsupportedOperation.SnapshotEncrypt", // S1, S2
  InstanceLocalStorage: "UnsupportedOperation.InstanceLocalStorage", // L7
  EncryptedImageShare: "UnsupportedOperation.EncryptedImageShare", // S3
  EncryptedCrossRegionCopy: "UnsupportedOperation.EncryptedCrossRegionCopy", // S4
  ServiceManagedKey: "UnsupportedOperation.ServiceManagedKey", // K5, O3
  KmsNotAuthorized: "UnauthorizedOperation.KmsNotAuthorized", // O2
  InsufficientBalance: "InvalidAccount.InsufficientBalance", // B3
  BalanceLimit: "LimitExceeded.AccountBalance", // B3: MAX_BALANCE_MICROS
  // Placement and state
  ZoneNotMatch: "ResourceUnavailable.ZoneNotMatch", // C1
  Attached: "ResourceUnavailable.Attached",
  NotAttached: "ResourceUnavailable.NotAttached",
  ResourceBusy: "ResourceBusy",
  InUse: "ResourceInUse",
  SnapshotNotFromDisk: "InvalidParameter.SnapshotNotFromDisk",
  // Parameters
  InvalidParameter: "InvalidParameter",
  IdempotentParameterMismatch: "InvalidParameter.ClientTokenConflict",
  MigrationIncomplete: "ResourceUnavailable.MigrationIncomplete",
  InvalidParameterValue: "InvalidParameterValue",
  UnknownParameter: "UnknownParameter", // a key the call does not take (e.g. in a list filter)
  InvalidZone: "InvalidParameterValue.Zone",
  InvalidRegion: "InvalidParameterValue.Region",
  InvalidDiskType: "InvalidParameterValue.DiskType",
  InvalidDiskUsage: "InvalidParameterValue.DiskUsage",
  InvalidInstanceType: "InvalidParameterValue.InstanceType",
  DiskSize: "InvalidParameterValue.DiskSize",
  DiskSizeNotMatch: "InvalidParameter.DiskSizeNotMatch",
  DiskShrink: "InvalidParameterValue.DiskShrink",
  OutOfRange: "InvalidParameterValue.OutOfRange",
  // Not found
  DiskNotFound: "InvalidDiskId.NotFound",
  SnapshotNotFound: "InvalidSnapshotId.NotFound",
  InstanceNotFound: "InvalidInstanceId.NotFound",
  AttachmentNotFound: "InvalidAttachmentId.NotFound",
  ImageNotFound: "InvalidImageId.NotFound",
  KeyNotFound: "ResourceNotFound.KmsKey",
  // Integrity and keys
  DataIntegrity: "DataCorruption.UnitAuthenticationFailed",
  KmsRootKeyMissing: "KmsRootKey.Missing",
  KmsRootKeyMismatch: "KmsRootKey.Mismatch",
  KmsRootKeyInsideEngineDir: "KmsRootKey.InsideEngineDir",
  KeyMaterialCorrupt: "DataCorruption.WrappedKey",
  StateCorrupt: "DataCorruption.State",
  LineageTampered: "DataCorruption.LineageSeal", // D7: encryption flag, key id or region changed behind the engine
  BlockMapTampered: "DataCorruption.BlockMap", // D10: a block map row rolled back, moved or deleted behind the engine
  DiskFull: "ResourceInsufficient.DiskFull", // D9: the host file system of the engine directory is full
  EngineVersion: "UnsupportedOperation.EngineVersion",
  // The host and the state database (mapped from Node's and SQLite's errors by toEngineError)
  StateDatabaseCorrupt: "DataCorruption.StateDatabase",
  PathNotFound: "ResourceNotFound.Path",
  PermissionDenied: "UnauthorizedOperation.Permission",
  HostIo: "InternalError.Io",
  // The operator CLI's own arguments
  Usage: "InvalidParameter.Usage",
  NotDecimal: "InvalidParameterValue.Decimal",
  Internal: "InternalError",
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

/**
 * Refusal texts that more than the engine's own check show (the provider's preview refuses
 * with the same words): one source for each.
 */
export const Refusals = {
  /** O2: the account has not authorized KMS. */
  kmsNotAuthorized:
    "KMS is not authorized for this account, so encrypted disks cannot be created yet. Authorize it first: `encdisk authorize-kms`, or in a Pulumi program declare " +
    "`const kms = new KmsAuthorization(\"kms\")` and pass `kmsAuthorization: kms.accountId` to every encrypted EncryptedDisk (Pulumi then creates the authorization first; `dependsOn: [kms]` does the same)",
  /** K5/O3: the CMK that encrypts disks is the service's own. */
  cmkNotChoosable:
    "the disk-encryption CMK is service-managed and cannot be specified (K5/O3): every encrypted disk of a region uses the CMK the service created there (list it with: encdisk keys); remove kmsKeyId",
} as const;

/** Spec rule IDs an error can name. */
export type RuleId =
  | "K1" | "K2" | "K3" | "K4" | "K5"
  | "W1" | "W2"
  | "L1" | "L2" | "L3" | "L4" | "L5" | "L6" | "L7"
  | "S1" | "S2" | "S3" | "S4"
  | "O1" | "O2" | "O3"
  | "B1" | "B2" | "B3"
  | "C1" | "C2" | "C3"
  | "M1";

export class EngineError extends Error {
  override readonly name = "EngineError";
  /** Stable dotted code, e.g. `UnsupportedOperation.DiskEncrypt`. */
  readonly code: ErrorCode;
  /** The spec rule this error enforces, when there is one. */
  readonly rule?: RuleId;
  /** The input property the error is about, when there is one (for per-property reporting). */
  readonly property?: string;

  constructor(code: ErrorCode, message: string, opts: { rule?: RuleId; property?: string; cause?: unknown } = {}) {
    super(opts.rule ? `[${code}] ${opts.rule}: ${message}` : `[${code}] ${message}`, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.code = code;
    this.rule = opts.rule;
    this.property = opts.property;
  }

  toJSON(): { code: ErrorCode; rule?: RuleId; property?: string; message: string } {
    return { code: this.code, rule: this.rule, property: this.property, message: this.message };
  }
}

export function isEngineError(e: unknown): e is EngineError {
  return e instanceof EngineError || (typeof e === "object" && e !== null && (e as { name?: unknown }).name === "EngineError" && typeof (e as { code?: unknown }).code === "string");
}

/** Precondition guard: throws `EngineError(code, message)` when `condition` is false. */
export function needs(condition: unknown, code: ErrorCode, message: string, opts: { rule?: RuleId; property?: string } = {}): asserts condition {
  if (!condition) throw new EngineError(code, message, opts);
}

const FULL_CODES = new Set(["ENOSPC", "EDQUOT", "SQLITE_FULL"]);

/** Whether an error says the file system (or SQLite's database on it) is full (D9). */
export function isDiskFull(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === "string" && (FULL_CODES.has(code) || (code.startsWith("SQLITE_IOERR") && /disk is full|no space/i.test(String((e as Error).message))));
}

/**
 * Any error as an EngineError: an EngineError as is; Node's system errors (`err.code` such as
 * ENOSPC, ENOENT, EACCES) and SQLite's (better-sqlite3's `SQLITE_*` codes) as the engine's
 * stable codes with the way out; anything else as `InternalError`. The one mapping the CLI's
 * top-level handler and the provider use. `where` names what was being used (a file, the
 * engine directory) for the message.
 */
export function toEngineError(e: unknown, where?: string): EngineError {
  if (isEngineError(e)) return e;
  const err = e as { code?: unknown; message?: unknown; path?: unknown } | null;
  const sys = typeof err?.code === "string" ? err.code : "";
  const detail = (typeof err?.message === "string" ? err.message : String(e)).replace(/\s+/g, " ").trim();
  const at = typeof err?.path === "string" ? err.path : where;
  const on = at ? ` (${at})` : "";
  const opts = { cause: e };
  if (isDiskFull(e)) {
    return new EngineError(ErrorCodes.DiskFull, `no space left on the filesystem${on}: ${detail}; free space there (encdisk delete-disk and deleting snapshots free the engine's own) and retry`, opts);
  }
  if (sys === "SQLITE_NOTADB" || sys === "SQLITE_CORRUPT" || sys.startsWith("SQLITE_CORRUPT_")) {
    return new EngineError(
      ErrorCodes.StateDatabaseCorrupt,
      `the engine's state database${where ? ` in ${where}` : ""} is damaged (${sys}: ${detail}); restore state.db with its state.db-wal from a backup, or move the directory aside to start a new engine (its blocks/ cannot be read without that state)`,
      opts,
    );
  }
  if (sys === "ENOENT" || sys === "SQLITE_CANTOPEN") return new EngineError(ErrorCodes.PathNotFound, `cannot open${on}: ${detail}; check the path (and --dir)`, opts);
  if (sys === "EACCES" || sys === "EPERM" || sys === "EROFS" || sys === "SQLITE_READONLY" || sys === "SQLITE_PERM" || sys === "SQLITE_AUTH") {
    return new EngineError(ErrorCodes.PermissionDenied, `permission denied${on}: ${detail}; run as the directory's owner, or fix its permissions`, opts);
  }
  if (sys === "EADDRINUSE") return new EngineError(ErrorCodes.InUse, `address in use${on}: ${detail}; stop the other server or pick another --listen address`, opts);
  if (sys === "EADDRNOTAVAIL") return new EngineError(ErrorCodes.InvalidParameterValue, `address not available${on}: ${detail}; listen on a local address`, opts);
  if (sys === "SQLITE_BUSY" || sys === "SQLITE_LOCKED" || sys.startsWith("SQLITE_BUSY_")) return new EngineError(ErrorCodes.ResourceBusy, `the state database is locked by another process${on}: ${detail}; retry`, opts);
  if (sys === "EISDIR" || sys === "ENOTDIR") return new EngineError(ErrorCodes.InvalidParameterValue, `not a file${on}: ${detail}; name a file`, opts);
  if (sys === "EIO" || sys.startsWith("SQLITE_IOERR") || sys === "EMFILE" || sys === "ENFILE") {
    return new EngineError(ErrorCodes.HostIo, `I/O error${on}: ${sys}: ${detail}; check the filesystem and the path`, opts);
  }
  return new EngineError(ErrorCodes.Internal, `${sys ? `${sys}: ` : ""}${detail}`, opts);
}
