/** The embedded engine: a small local cloud (KMS, encrypted block store, disks, snapshots, attachments, billing). */
export * from "./types";
export * from "./errors";
export { openEngine, resolveEngineDir, MAX_IO_BYTES, DEFAULT_PRICE_PER_CALL_MICROS, DEFAULT_STARTING_BALANCE_MICROS } from "./engine";
export { UNIT } from "./blockstore/blockstore";
export { defaultRootKeyFile } from "./kms/rootkey";
export { listRegions, regionOfZone, assertRegion, instanceFamily, isRegion } from "./geography";
