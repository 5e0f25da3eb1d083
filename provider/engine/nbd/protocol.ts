/**
 * NBD protocol constants (fixed newstyle negotiation, simple replies). Values follow the
 * protocol document of the NetworkBlockDevice project (doc/proto.md). Everything on the wire
 * is big-endian.
 */

export const NBDMAGIC = 0x4e42444d41474943n; // "NBDMAGIC"
export const IHAVEOPT = 0x49484156454f5054n; // "IHAVEOPT"
export const OPTION_REPLY_MAGIC = 0x0003e889045565a9n;
export const REQUEST_MAGIC = 0x25609513;
export const SIMPLE_REPLY_MAGIC = 0x67446698;
export const STRUCTURED_REPLY_MAGIC = 0x668e33ef;

// Structured reply chunk flags and types.
export const NBD_REPLY_FLAG_DONE = 1 << 0;
export const NBD_REPLY_TYPE_NONE = 0;
export const NBD_REPLY_TYPE_OFFSET_DATA = 1;
export const NBD_REPLY_TYPE_OFFSET_HOLE = 2;
export const NBD_REPLY_TYPE_BLOCK_STATUS = 5;
export const NBD_REPLY_TYPE_ERROR = (1 << 15) + 1;
export const NBD_REPLY_TYPE_ERROR_OFFSET = (1 << 15) + 2;

// Handshake flags (server) and client flags.
export const NBD_FLAG_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_NO_ZEROES = 1 << 1;
export const NBD_FLAG_C_FIXED_NEWSTYLE = 1 << 0;
export const NBD_FLAG_C_NO_ZEROES = 1 << 1;

// Transmission flags.
export const NBD_FLAG_HAS_FLAGS = 1 << 0;
export const NBD_FLAG_READ_ONLY = 1 << 1;
export const NBD_FLAG_SEND_FLUSH = 1 << 2;
export const NBD_FLAG_SEND_FUA = 1 << 3;
export const NBD_FLAG_ROTATIONAL = 1 << 4;
export const NBD_FLAG_SEND_TRIM = 1 << 5;
export const NBD_FLAG_SEND_WRITE_ZEROES = 1 << 6;
export const NBD_FLAG_SEND_DF = 1 << 7;
export const NBD_FLAG_CAN_MULTI_CONN = 1 << 8;

// Options.
export const NBD_OPT_EXPORT_NAME = 1;
export const NBD_OPT_ABORT = 2;
export const NBD_OPT_LIST = 3;
export const NBD_OPT_PEEK_EXPORT = 4;
export const NBD_OPT_STARTTLS = 5;
export const NBD_OPT_INFO = 6;
export const NBD_OPT_GO = 7;
export const NBD_OPT_STRUCTURED_REPLY = 8;
export const NBD_OPT_LIST_META_CONTEXT = 9;
export const NBD_OPT_SET_META_CONTEXT = 10;
export const NBD_OPT_EXTENDED_HEADERS = 11;

// Option replies.
export const NBD_REP_ACK = 1;
export const NBD_REP_SERVER = 2;
export const NBD_REP_INFO = 3;
export const NBD_REP_META_CONTEXT = 4;
const ERR = 0x80000000;
export const NBD_REP_ERR_UNSUP = ERR + 1;
export const NBD_REP_ERR_POLICY = ERR + 2;
export const NBD_REP_ERR_INVALID = ERR + 3;
export const NBD_REP_ERR_PLATFORM = ERR + 4;
export const NBD_REP_ERR_TLS_REQD = ERR + 5;
export const NBD_REP_ERR_UNKNOWN = ERR + 6;
export const NBD_REP_ERR_SHUTDOWN = ERR + 7;
export const NBD_REP_ERR_BLOCK_SIZE_REQD = ERR + 8;
export const NBD_REP_ERR_TOO_BIG = ERR + 9;

// NBD_REP_INFO types.
export const NBD_INFO_EXPORT = 0;
export const NBD_INFO_NAME = 1;
export const NBD_INFO_DESCRIPTION = 2;
export const NBD_INFO_BLOCK_SIZE = 3;

// Commands.
export const NBD_CMD_READ = 0;
export const NBD_CMD_WRITE = 1;
export const NBD_CMD_DISC = 2;
export const NBD_CMD_FLUSH = 3;
export const NBD_CMD_TRIM = 4;
export const NBD_CMD_CACHE = 5;
export const NBD_CMD_WRITE_ZEROES = 6;
export const NBD_CMD_BLOCK_STATUS = 7;

// Command flags.
export const NBD_CMD_FLAG_FUA = 1 << 0;
export const NBD_CMD_FLAG_NO_HOLE = 1 << 1;
export const NBD_CMD_FLAG_DF = 1 << 2;
export const NBD_CMD_FLAG_REQ_ONE = 1 << 3;
export const NBD_CMD_FLAG_FAST_ZERO = 1 << 4;

// Errors (reply error field).
export const NBD_EPERM = 1;
export const NBD_EIO = 5;
export const NBD_ENOMEM = 12;
export const NBD_EINVAL = 22;
export const NBD_ENOSPC = 28;
export const NBD_EOVERFLOW = 75;
export const NBD_ENOTSUP = 95;
export const NBD_ESHUTDOWN = 108;

/** Block size constraints advertised with NBD_INFO_BLOCK_SIZE. */
export const MIN_BLOCK_SIZE = 1;
/** The engine's unit: I/O aligned to it avoids read-modify-write of encrypted units. */
export const PREFERRED_BLOCK_SIZE = 65536;
/** Largest payload (READ/WRITE) accepted: the protocol's default maximum, 32 MiB. */
export const MAX_PAYLOAD = 32 * 1024 * 1024;
/** Largest option payload accepted during negotiation (names are at most 4096 bytes). */
export const MAX_OPTION_LENGTH = 64 * 1024;

export function optionName(opt: number): string {
  switch (opt) {
    case NBD_OPT_EXPORT_NAME: return "EXPORT_NAME";
    case NBD_OPT_ABORT: return "ABORT";
    case NBD_OPT_LIST: return "LIST";
    case NBD_OPT_PEEK_EXPORT: return "PEEK_EXPORT";
    case NBD_OPT_STARTTLS: return "STARTTLS";
    case NBD_OPT_INFO: return "INFO";
    case NBD_OPT_GO: return "GO";
    case NBD_OPT_STRUCTURED_REPLY: return "STRUCTURED_REPLY";
    case NBD_OPT_LIST_META_CONTEXT: return "LIST_META_CONTEXT";
    case NBD_OPT_SET_META_CONTEXT: return "SET_META_CONTEXT";
    case NBD_OPT_EXTENDED_HEADERS: return "EXTENDED_HEADERS";
    default: return `OPT_${opt}`;
  }
}
