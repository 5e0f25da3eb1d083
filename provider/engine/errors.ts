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
  EngineVersion: "UnsupportedOperation.EngineVersion",
  Internal: "InternalError",
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

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
