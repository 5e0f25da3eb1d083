/** NBD server for attachments (W2: TLS-PSK required on every export). */
export * from "./backend";
export { MemoryBackend } from "./memory-backend";
export { EngineBackend } from "./engine-backend";
export { NbdServer, NbdServerOptions, DEFAULT_CIPHERS } from "./server";
export * as protocol from "./protocol";
export { clientAccess, ClientAccess, AttachmentAccess } from "./uri";
