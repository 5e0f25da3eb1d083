/*
 * AES-256-GCM over many data units in one call, into caller-owned buffers, on up to two
 * threads: the block store's cipher (provider/engine/blockstore/gcm.ts), built by
 * scripts/build-native.js in two variants:
 * - gcm-ring.node (-DENCDISK_RING): each unit through ring's AES-GCM (native/ring, a Rust
 *   static library; BoringSSL's VAES/VPCLMULQDQ code), ~6.5 GiB/s per core on this machine;
 * - gcm-openssl.node: each unit through the OpenSSL that Node itself links (its symbols are
 *   exported by the node binary and resolved when this addon loads), ~4 GiB/s per core.
 * node:crypto, the fallback, allocates a fresh output buffer per Cipher.update and needs one
 * JavaScript object per unit: ~2.4 GiB/s per core here. Nothing here implements cryptography:
 * this file batches the calls and splits them over two threads.
 *
 * gcm(encrypt, key, src, dst, unitSize, nonces, tags, aadPrefix, idxs, threads) -> number
 *   src, dst   n * unitSize bytes (dst may be src: in place); n = idxs.length
 *   nonces     12 * n bytes, unit k uses nonces[12k, 12k+12)
 *   tags       16 * n bytes: written when encrypting, checked when decrypting
 *   aadPrefix  bytes; unit k's AAD is aadPrefix followed by idxs[k] in decimal
 *   idxs       Float64Array of unit indexes
 *   threads    1 or 2: with 2, a helper thread takes the second half of the units
 * Returns -1, or when decrypting the position of the first unit that failed authentication
 * (dst then holds garbage for it and must not be used).
 *
 * Process hardening for the KMS (provider/engine/kms/harden.ts), in the same addon so no second
 * one is built:
 * harden() -> { dumpable, coreSoft, coreHard }  prctl(PR_SET_DUMPABLE, 0) and RLIMIT_CORE 0/0:
 *   no core file, no ptrace attach and no /proc/<pid>/mem by other processes of the same user;
 *   returns the state after the change (as hardening() does, without changing anything)
 * takeEnvHex(name) -> Buffer | null  the variable's bytes, then its value is overwritten in
 *   place (also in /proc/<pid>/environ) and it is removed from the environment
 * scrubStack()  zeroes 128 KiB of stack below the caller (after node:crypto key operations)
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

/* OpenSSL 3 EVP (stable ABI), declared here so no OpenSSL headers are needed to build. */
typedef struct evp_cipher_st EVP_CIPHER;
typedef struct evp_cipher_ctx_st EVP_CIPHER_CTX;
typedef struct engine_st ENGINE;
extern EVP_CIPHER_CTX *EVP_CIPHER_CTX_new(void);
extern int EVP_CIPHER_CTX_reset(EVP_CIPHER_CTX *ctx);
extern const EVP_CIPHER *EVP_aes_256_gcm(void);
extern int EVP_CipherInit_ex(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *type, ENGINE *impl, const unsigned char *key,
                             const unsigned char *iv, int enc);
extern int EVP_CipherUpdate(EVP_CIPHER_CTX *ctx, unsigned char *out, int *outl, const unsigned char *in, int inl);
extern int EVP_CipherFinal_ex(EVP_CIPHER_CTX *ctx, unsigned char *out, int *outl);
extern int EVP_CIPHER_CTX_ctrl(EVP_CIPHER_CTX *ctx, int type, int arg, void *ptr);
#define EVP_CTRL_GCM_GET_TAG 0x10
#define EVP_CTRL_GCM_SET_TAG 0x11

typedef struct {
  int enc;
  const unsigned char *key;
  const unsigned char *src;
  unsigned char *dst;
  size_t unit;
  const unsigned char *nonces;
  unsigned char *tags;
  const unsigned char *prefix;
  size_t prefixLen;
  const double *idxs;
  size_t from, to; /* units [from, to) */
  long failed;     /* -1, or the first unit that failed (decrypt) or could not be processed */
} job_t;

/* Both ciphers leave copies of key material in the stack of the thread that ran them: ring
   zeroes the key it holds, but Rust moves the key schedule (whose first 32 bytes are the key
   itself) between stack frames on the way; OpenSSL's key expansion spills round keys into
   stack buffers it does not cleanse. Those copies stay below the caller until overwritten, on
   the calling thread and on the helper thread alike. Zeroed after every call, in a frame at the
   same depth (D5). */
#define STACK_BURN_BYTES (16 * 1024)
static void __attribute__((noinline)) burnStack(void) {
  unsigned char pad[STACK_BURN_BYTES];
  explicit_bzero(pad, sizeof(pad));
  __asm__ __volatile__("" : : "r"(pad) : "memory");
}

#ifdef ENCDISK_RING
/* ring's AES-256-GCM (native/ring, a Rust static library): BoringSSL's VAES/VPCLMULQDQ code,
   ~1.5-2x OpenSSL 3.0's on CPUs that have those instructions. It zeroes its key schedule
   before it returns. */
extern int64_t encdisk_ring_units(int32_t encrypt, const unsigned char *key, const unsigned char *src, unsigned char *dst,
                                  size_t unit, const unsigned char *nonces, unsigned char *tags, const unsigned char *prefix,
                                  size_t prefixLen, const double *idxs, size_t from, size_t to);
static const char *IMPL = "ring";

static void run(job_t *j) {
  j->failed = (long)encdisk_ring_units(j->enc, j->key, j->src, j->dst, j->unit, j->nonces, j->tags, j->prefix, j->prefixLen,
                                       j->idxs, j->from, j->to);
  burnStack();
}
#else
static const char *IMPL = "openssl";

/* One cipher context per thread, kept; it holds no key between calls (see `run`). */
static __thread EVP_CIPHER_CTX *tctx;

static void runUnits(job_t *j);

static void run(job_t *j) {
  runUnits(j);
  /* Frees and cleanses the key schedule: no key material stays in this process's memory
     after the call that needed it (the caller zeroes its own copies). */
  if (tctx) EVP_CIPHER_CTX_reset(tctx);
  burnStack();
}

static void runUnits(job_t *j) {
  j->failed = -1;
  if (j->from >= j->to) return;
  if (!tctx && !(tctx = EVP_CIPHER_CTX_new())) { j->failed = (long)j->from; return; }
  EVP_CIPHER_CTX *c = tctx;
  /* The key schedule once per call; per unit only the nonce changes. */
  if (EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, j->key, NULL, j->enc) != 1) { j->failed = (long)j->from; return; }
  unsigned char aad[512];
  if (j->prefixLen > sizeof(aad) - 24) { j->failed = (long)j->from; return; }
  memcpy(aad, j->prefix, j->prefixLen);
  for (size_t k = j->from; k < j->to; k++) {
    int outl = 0;
    int n = snprintf((char *)aad + j->prefixLen, 24, "%.0f", j->idxs[k]);
    const unsigned char *in = j->src + k * j->unit;
    unsigned char *out = j->dst + k * j->unit;
    unsigned char *tag = j->tags + 16 * k;
    unsigned char fin[16];
    if (EVP_CipherInit_ex(c, NULL, NULL, NULL, j->nonces + 12 * k, j->enc) != 1 ||
        EVP_CipherUpdate(c, NULL, &outl, aad, (int)j->prefixLen + n) != 1 ||
        EVP_CipherUpdate(c, out, &outl, in, (int)j->unit) != 1 ||
        (!j->enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, 16, tag) != 1) ||
        EVP_CipherFinal_ex(c, fin, &outl) != 1 ||
        (j->enc && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag) != 1)) {
      j->failed = (long)k;
      return;
    }
  }
}
#endif

/* The helper thread: started on first use, then waits for half-jobs. */
static pthread_mutex_t owner = PTHREAD_MUTEX_INITIALIZER; /* held by the caller using the helper */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t posted = PTHREAD_COND_INITIALIZER, finished = PTHREAD_COND_INITIALIZER;
static job_t *pending;
static int done, started;

static void *helper(void *arg) {
  (void)arg;
  pthread_mutex_lock(&mu);
  for (;;) {
    while (!pending) pthread_cond_wait(&posted, &mu);
    job_t *j = pending;
    pthread_mutex_unlock(&mu);
    run(j);
    pthread_mutex_lock(&mu);
    pending = NULL;
    done = 1;
    pthread_cond_signal(&finished);
  }
  return NULL;
}

static int helperReady(void) {
  if (started) return 1;
  pthread_t t;
  pthread_attr_t a;
  pthread_attr_init(&a);
  pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
  int ok = pthread_create(&t, &a, helper, NULL) == 0;
  pthread_attr_destroy(&a);
  if (ok) started = 1;
  return ok;
}

static long runJob(job_t *all, int threads) {
  size_t n = all->to;
  /* Splitting costs a thread hand-off (~10-50 us): worth it only for a few units or more. */
  if (threads < 2 || n < 4 || pthread_mutex_trylock(&owner) != 0) {
    run(all);
    return all->failed;
  }
  if (!helperReady()) {
    pthread_mutex_unlock(&owner);
    run(all);
    return all->failed;
  }
  job_t mine = *all, theirs = *all;
  mine.to = n / 2;
  theirs.from = n / 2;
  pthread_mutex_lock(&mu);
  done = 0;
  pending = &theirs;
  pthread_cond_signal(&posted);
  pthread_mutex_unlock(&mu);
  run(&mine);
  pthread_mutex_lock(&mu);
  while (!done) pthread_cond_wait(&finished, &mu);
  pthread_mutex_unlock(&mu);
  pthread_mutex_unlock(&owner);
  if (mine.failed >= 0) return mine.failed;
  return theirs.failed;
}

#define CHECK(call)                                                   \
  do {                                                                \
    if ((call) != napi_ok) {                                          \
      napi_throw_error(env, "ENCDISK_NATIVE", "gcm: bad arguments"); \
      return NULL;                                                    \
    }                                                                 \
  } while (0)

static napi_value fail(napi_env env, const char *msg) {
  napi_throw_range_error(env, "ENCDISK_NATIVE", msg);
  return NULL;
}

static napi_value Gcm(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 10) return fail(env, "gcm: expects 10 arguments");
  bool enc;
  void *key, *src, *dst, *nonces, *tags, *prefix, *idxData;
  size_t keyLen, srcLen, dstLen, noncesLen, tagsLen, prefixLen, n, idxOff;
  uint32_t unit;
  int32_t threads;
  napi_typedarray_type idxType;
  napi_value idxBuf;
  CHECK(napi_get_value_bool(env, argv[0], &enc));
  CHECK(napi_get_buffer_info(env, argv[1], &key, &keyLen));
  CHECK(napi_get_buffer_info(env, argv[2], &src, &srcLen));
  CHECK(napi_get_buffer_info(env, argv[3], &dst, &dstLen));
  CHECK(napi_get_value_uint32(env, argv[4], &unit));
  CHECK(napi_get_buffer_info(env, argv[5], &nonces, &noncesLen));
  CHECK(napi_get_buffer_info(env, argv[6], &tags, &tagsLen));
  CHECK(napi_get_buffer_info(env, argv[7], &prefix, &prefixLen));
  CHECK(napi_get_typedarray_info(env, argv[8], &idxType, &n, &idxData, &idxBuf, &idxOff));
  CHECK(napi_get_value_int32(env, argv[9], &threads));
  if (idxType != napi_float64_array) return fail(env, "gcm: idxs must be a Float64Array");
  if (keyLen != 32) return fail(env, "gcm: key must be 32 bytes");
  if (unit == 0 || unit > (1u << 30)) return fail(env, "gcm: bad unit size");
  if (srcLen != n * unit || dstLen != n * unit) return fail(env, "gcm: src and dst must be n units");
  if (noncesLen != 12 * n || tagsLen != 16 * n) return fail(env, "gcm: nonces must be 12n and tags 16n bytes");
  job_t j = {enc, key, src, dst, unit, nonces, tags, prefix, prefixLen, idxData, 0, n, -1};
  long failed = runJob(&j, threads);
  napi_value result;
  CHECK(napi_create_int64(env, failed, &result));
  return result;
}

static napi_value hardeningState(napi_env env) {
  struct rlimit rl;
  napi_value out, v;
  double soft = -1, hard = -1;
  if (getrlimit(RLIMIT_CORE, &rl) == 0) {
    soft = rl.rlim_cur == RLIM_INFINITY ? -1 : (double)rl.rlim_cur;
    hard = rl.rlim_max == RLIM_INFINITY ? -1 : (double)rl.rlim_max;
  }
  CHECK(napi_create_object(env, &out));
  CHECK(napi_create_int32(env, prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), &v));
  CHECK(napi_set_named_property(env, out, "dumpable", v));
  CHECK(napi_create_double(env, soft, &v));
  CHECK(napi_set_named_property(env, out, "coreSoft", v));
  CHECK(napi_create_double(env, hard, &v));
  CHECK(napi_set_named_property(env, out, "coreHard", v));
  return out;
}

static napi_value Harden(napi_env env, napi_callback_info info) {
  (void)info;
  struct rlimit zero = {0, 0};
  setrlimit(RLIMIT_CORE, &zero);
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  return hardeningState(env);
}

/* Zeroes the 128 KiB of stack below the caller: the frames node:crypto and OpenSSL used for a
   key operation the JavaScript caller just finished (HKDF, HMAC and GCM leave copies of keys
   and outputs in stack buffers they do not cleanse). */
static void __attribute__((noinline)) scrub(void) {
  unsigned char pad[128 * 1024];
  explicit_bzero(pad, sizeof(pad));
  __asm__ __volatile__("" : : "r"(pad) : "memory");
}

static napi_value ScrubStack(napi_env env, napi_callback_info info) {
  (void)env;
  (void)info;
  scrub();
  return NULL;
}

static napi_value Hardening(napi_env env, napi_callback_info info) {
  (void)info;
  return hardeningState(env);
}

static napi_value TakeEnvHex(napi_env env, napi_callback_info info) {
  size_t argc = 1, len = 0;
  napi_value argv[1], out;
  char name[128];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 1) return fail(env, "takeEnvHex: expects a variable name");
  CHECK(napi_get_value_string_utf8(env, argv[0], name, sizeof(name), &len));
  char *v = getenv(name);
  if (!v) {
    CHECK(napi_get_null(env, &out));
    return out;
  }
  size_t n = strlen(v);
  void *data;
  napi_status st = napi_create_buffer_copy(env, n, v, &data, &out);
  /* Overwritten in place: the string may sit in the process's initial environment block, which
     unsetenv() does not clear and /proc/<pid>/environ shows. */
  memset(v, 0, n);
  unsetenv(name);
  CHECK(st);
  return out;
}

NAPI_MODULE_INIT() {
  static const struct { const char *name; napi_callback cb; } extra[] = {
      {"harden", Harden}, {"hardening", Hardening}, {"takeEnvHex", TakeEnvHex}, {"scrubStack", ScrubStack}};
  for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
    napi_value f;
    if (napi_create_function(env, extra[i].name, NAPI_AUTO_LENGTH, extra[i].cb, NULL, &f) != napi_ok) return NULL;
    if (napi_set_named_property(env, exports, extra[i].name, f) != napi_ok) return NULL;
  }
  napi_value fn;
  if (napi_create_function(env, "gcm", NAPI_AUTO_LENGTH, Gcm, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "gcm", fn) != napi_ok) return NULL;
  napi_value impl;
  if (napi_create_string_utf8(env, IMPL, NAPI_AUTO_LENGTH, &impl) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "impl", impl) != napi_ok) return NULL;
  return exports;
}
