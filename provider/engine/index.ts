/** The embedded engine: a small local cloud (KMS, encrypted block store, disks, snapshots, attachments, billing). */
export * from "./types";
export * from "./errors";
export { openEngine } from "./engine";
