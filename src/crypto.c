/*
** ghl.crypto: the few primitives webhooks and SSO need, over OpenSSL's
** libcrypto:
**   Ed25519 sign and verify (HighLevel's X-GHL-Signature), RSA-SHA256
**   (PKCS#1 v1.5) sign and verify (the legacy X-WH-Signature), key
**   generation and normalisation, strict base64, message digests, and
**   OpenSSL's EVP_BytesToKey (MD5, one iteration) with AES-256-CBC, the
**   passphrase format CryptoJS uses for SSO blobs; and private key files
**   (the simulator's development key): read only when they and their
**   directory are the user's own and closed to everyone else, created once;
**   AES-256-GCM sealing of secrets at rest (the token store) and
**   HMAC-SHA256.
** Keys are text: PEM (public or private; SPKI, PKCS#8 or PKCS#1), base64
** of the DER, or for Ed25519 public keys the raw 32 bytes in base64 or hex.
** Signatures and ciphertexts are raw bytes; base64 is the caller's choice.
**
** Errors: bad argument types and sizes raise; expected failures return
** nil, ghl.error: kind "crypto" (unusable key, bad padding, wrong length:
** field code says which) or "decode" (bad base64). A signature that does
** not verify is not an error: verify returns false. Every OpenSSL object
** lives in a "box" userdata made before it is acquired, so a raise (out of
** memory) never leaks it; secrets in scratch memory are wiped on release.
*/
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <openssl/bio.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "error.h"

#define BOX_MT "ghl.crypto.box"
#define ED25519_RAW 32
#define ED25519_SIG 64
#define SALT_LEN 8             /* EVP_BytesToKey's salt, CryptoJS's too */
#define AES_KEY_LEN 32
#define AES_BLOCK 16
#define MAX_RSA_BITS 16384
#define KEY_FILE_MAX 65536     /* a PEM key file is a few KiB at most */
#define SEAL_VERSION 1         /* first byte of a sealed blob */
#define GCM_NONCE 12
#define GCM_TAG 16
#define SEAL_OVERHEAD (1 + GCM_NONCE + GCM_TAG)

/* ---- The box: OpenSSL objects and scratch memory owned by Lua ---- */

struct box {
  EVP_PKEY *pkey;
  EVP_MD_CTX *md;
  EVP_CIPHER_CTX *cipher;
  BIO *bio;
  unsigned char *der;          /* from i2d_*: OPENSSL_free */
  unsigned char *buf;          /* scratch: OPENSSL_clear_free(buf, cap) */
  size_t cap;
};

/* Push a new empty box. Stack: +1. */
static struct box *newbox(lua_State *L) {
  struct box *b = lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, BOX_MT);
  return b;
}

/* Free everything b holds and clear OpenSSL's error queue. Idempotent;
** also __gc. */
static void box_release(struct box *b) {
  EVP_PKEY_free(b->pkey);
  EVP_MD_CTX_free(b->md);
  EVP_CIPHER_CTX_free(b->cipher);
  BIO_free(b->bio);
  OPENSSL_free(b->der);
  if (b->buf) OPENSSL_clear_free(b->buf, b->cap);
  memset(b, 0, sizeof *b);
  ERR_clear_error();
}

static int box_gc(lua_State *L) {
  box_release(luaL_checkudata(L, 1, BOX_MT));
  return 0;
}

/* Scratch memory of n bytes (at least 1) owned by b; raises on OOM. */
static unsigned char *box_buf(lua_State *L, struct box *b, size_t n) {
  if (b->buf) OPENSSL_clear_free(b->buf, b->cap);
  b->cap = n ? n : 1;
  if ((b->buf = OPENSSL_malloc(b->cap)) == NULL) {
    b->cap = 0;
    luaL_error(L, "out of memory");
  }
  return b->buf;
}

/* Release b, then push nil and a ghl.error {kind, code, message}. The
** OpenSSL reason, when there is one, is appended to the message.
** Returns 2. */
static int fail(lua_State *L, struct box *b, const char *kind, const char *code,
                const char *msg) {
  unsigned long e = ERR_peek_last_error();
  const char *why = e ? ERR_reason_error_string(e) : NULL;
  if (why) ghl_fail(L, kind, "%s (%s)", msg, why);
  else ghl_fail(L, kind, "%s", msg);
  lua_pushstring(L, code);
  lua_setfield(L, -2, "code");
  if (b) box_release(b);
  return 2;
}

/* ---- Base64 (RFC 4648, standard alphabet, padded) ---- */

static const char b64chars[] =
  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

/* Strictly decode base64 s (n bytes) into out (room for n / 4 * 3 + 3
** bytes). ASCII whitespace anywhere is skipped (PEM and openssl -a wrap
** lines); anything else must be the alphabet, with at most two '=' only at
** the end, to a multiple of 4 characters, and the bits after the last byte
** must be zero (one encoding per byte string). Returns the decoded length,
** or -1 with a message in why. */
static long b64decode(const char *s, size_t n, unsigned char *out, char *why, size_t whylen) {
  unsigned long acc = 0;
  size_t i, chars = 0, pad = 0;
  long len = 0;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    int v = 0;
    if (isspace(c)) continue;
    if (c == '=') {
      if (chars % 4 < 2 || ++pad > 2) {
        snprintf(why, whylen, "misplaced '=' at offset %zu", i);
        return -1;
      }
    } else if ((v = b64value(c)) < 0) {
      snprintf(why, whylen, isprint(c) ? "unexpected character '%c' at offset %zu"
                                       : "unexpected byte 0x%02x at offset %zu", c, i);
      return -1;
    } else if (pad) {
      snprintf(why, whylen, "data after '=' padding at offset %zu", i);
      return -1;
    }
    acc = (acc << 6) | (unsigned long)v;
    if (++chars % 4 == 0) {
      out[len++] = (unsigned char)(acc >> 16);
      out[len++] = (unsigned char)(acc >> 8);
      out[len++] = (unsigned char)acc;
      acc = 0;
    }
  }
  if (chars % 4 != 0) {
    snprintf(why, whylen, "%zu characters is not a multiple of 4 (truncated, or padding missing)", chars);
    return -1;
  }
  if ((pad >= 1 && out[len - 1]) || (pad == 2 && out[len - 2])) {
    snprintf(why, whylen, "non-zero bits after the last byte");
    return -1;
  }
  return len - (long)pad;
}

/* base64_decode(s) -> bytes, or nil, ghl.error (kind "decode", code
** "bad_base64"). */
static int crypto_base64_decode(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  char why[96];
  struct box *b = newbox(L);
  unsigned char *out = box_buf(L, b, n / 4 * 3 + 3);
  long len = b64decode(s, n, out, why, sizeof why);
  if (len < 0) {
    box_release(b);
    ghl_fail(L, "decode", "invalid base64: %s", why);
    lua_pushliteral(L, "bad_base64");
    lua_setfield(L, -2, "code");
    return 2;
  }
  lua_pushlstring(L, (const char *)out, (size_t)len);
  box_release(b);
  return 1;
}

/* base64_encode(bytes) -> one line of padded base64. */
static int crypto_base64_encode(lua_State *L) {
  size_t n, i;
  const unsigned char *s = (const unsigned char *)luaL_checklstring(L, 1, &n);
  luaL_Buffer b;
  char *p = luaL_buffinitsize(L, &b, (n + 2) / 3 * 4);
  size_t k = 0;
  for (i = 0; i + 2 < n; i += 3) {
    unsigned long v = ((unsigned long)s[i] << 16) | ((unsigned long)s[i + 1] << 8) | s[i + 2];
    p[k++] = b64chars[v >> 18];
    p[k++] = b64chars[(v >> 12) & 63];
    p[k++] = b64chars[(v >> 6) & 63];
    p[k++] = b64chars[v & 63];
  }
  if (i < n) {
    unsigned long v = (unsigned long)s[i] << 16;
    if (i + 1 < n) v |= (unsigned long)s[i + 1] << 8;
    p[k++] = b64chars[v >> 18];
    p[k++] = b64chars[(v >> 12) & 63];
    p[k++] = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
    p[k++] = '=';
  }
  luaL_pushresultsize(&b, k);
  return 1;
}

/* ---- Digests ---- */

/* digest(name, data) -> raw digest bytes. name: "sha256", "sha512",
** "sha1" or "md5"; raises on another. */
static int crypto_digest(lua_State *L) {
  static const char *const names[] = {"sha256", "sha512", "sha1", "md5", NULL};
  const EVP_MD *mds[] = {EVP_sha256(), EVP_sha512(), EVP_sha1(), EVP_md5()};
  int which = luaL_checkoption(L, 1, NULL, names);
  size_t n;
  const char *data = luaL_checklstring(L, 2, &n);
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!EVP_Digest(data, n, out, &len, mds[which], NULL)) {
    ERR_clear_error();
    return luaL_error(L, "digest %s failed", names[which]);
  }
  lua_pushlstring(L, (const char *)out, len);
  return 1;
}

/* ---- Keys ---- */

static int is_hex(const char *s, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (!isxdigit((unsigned char)s[i])) return 0;
  return 1;
}

/* Decode DER or PEM (data, n) with OpenSSL's decoders into b->pkey:
** SPKI, PKCS#8, PKCS#1, ... (selection: EVP_PKEY_KEYPAIR for a private
** key, else anything). Returns 1 on success. */
static int decode_key(struct box *b, const unsigned char *data, size_t n, int private) {
  OSSL_DECODER_CTX *d = OSSL_DECODER_CTX_new_for_pkey(&b->pkey, NULL, NULL, NULL,
                                                      private ? EVP_PKEY_KEYPAIR : 0, NULL, NULL);
  int ok = d != NULL && OSSL_DECODER_from_data(d, &data, &n) == 1 && b->pkey != NULL;
  OSSL_DECODER_CTX_free(d);
  return ok;
}

/* Load the key text at stack idx into b->pkey: PEM, base64 of DER, or (a
** public key only) a raw Ed25519 key as base64 or 64 hex digits. `private`
** insists on a private key. Returns 0, or 2 with nil, err pushed (kind
** "crypto", code "bad_key"; b is released). */
static int load_key(lua_State *L, struct box *b, int idx, int private) {
  size_t n, i, j;
  const char *s = luaL_checklstring(L, idx, &n);
  char why[96];
  unsigned char *raw;
  long len;
  while (n > 0 && isspace((unsigned char)*s)) { s++; n--; }
  while (n > 0 && isspace((unsigned char)s[n - 1])) n--;
  if (n >= 10 && memcmp(s, "-----BEGIN", 10) == 0) {
    if (decode_key(b, (const unsigned char *)s, n, private)) return 0;
    return fail(L, b, "crypto", "bad_key", private ? "not a usable PEM private key"
                                                   : "not a usable PEM key");
  }
  if (!private && n == 2 * ED25519_RAW && is_hex(s, n)) {
    unsigned char k[ED25519_RAW];
    for (i = 0, j = 0; i < ED25519_RAW; i++, j += 2) {
      char h[3] = {s[j], s[j + 1], '\0'};
      k[i] = (unsigned char)strtoul(h, NULL, 16);
    }
    if ((b->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, k, ED25519_RAW)) != NULL)
      return 0;
    return fail(L, b, "crypto", "bad_key", "not a usable Ed25519 public key");
  }
  raw = box_buf(L, b, n / 4 * 3 + 3);
  if ((len = b64decode(s, n, raw, why, sizeof why)) < 0) {
    lua_pushfstring(L, "key is neither PEM, hex nor base64 (%s)", why);
    return fail(L, b, "crypto", "bad_key", lua_tostring(L, -1));
  }
  if (!private && len == ED25519_RAW) {
    if ((b->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, ED25519_RAW)) != NULL)
      return 0;
    return fail(L, b, "crypto", "bad_key", "not a usable Ed25519 public key");
  }
  if (decode_key(b, raw, (size_t)len, private)) return 0;
  return fail(L, b, "crypto", "bad_key", private ? "base64 text is not a DER private key"
                                                 : "base64 text is not a DER key");
}

/* The key type of b->pkey as a word: "ed25519", "rsa" or OpenSSL's name. */
static const char *key_type(struct box *b) {
  if (EVP_PKEY_is_a(b->pkey, "ED25519")) return "ed25519";
  if (EVP_PKEY_is_a(b->pkey, "RSA")) return "rsa";
  return EVP_PKEY_get0_type_name(b->pkey);
}

/* Check b->pkey is of type want; else release b, push nil, err, return 2. */
static int want_type(lua_State *L, struct box *b, const char *want) {
  const char *got = key_type(b);
  if (got && strcmp(got, want) == 0) return 0;
  lua_pushfstring(L, "expected an %s key, got %s", strcmp(want, "rsa") == 0 ? "RSA" : "Ed25519",
                  got ? got : "an unknown type");
  return fail(L, b, "crypto", "wrong_key_type", lua_tostring(L, -1));
}

/* Push the PEM text of b->pkey: the private key (PKCS#8, unencrypted) or
** the public one (SPKI). Returns 0, or 2 with nil, err pushed. */
static int push_pem(lua_State *L, struct box *b, int private) {
  char *p;
  long n;
  BIO_free(b->bio);
  if ((b->bio = BIO_new(BIO_s_mem())) == NULL ||
      !(private ? PEM_write_bio_PrivateKey(b->bio, b->pkey, NULL, NULL, 0, NULL, NULL)
                : PEM_write_bio_PUBKEY(b->bio, b->pkey)))
    return fail(L, b, "crypto", "encode", "cannot write the key as PEM");
  n = BIO_get_mem_data(b->bio, &p);
  lua_pushlstring(L, p, (size_t)n);
  return 0;
}

/* public_key(text) -> {type=, pem=, spki=, raw=}, or nil, err.
** Normalises any key text load_key accepts (a private key gives its
** public half): pem is the SPKI PEM, spki its DER in one line of base64
** (HighLevel's published form), raw (Ed25519 only) the 32 raw bytes in
** base64. */
static int crypto_public_key(lua_State *L) {
  struct box *b = newbox(L);
  unsigned char k[ED25519_RAW];
  size_t klen = sizeof k;
  int n;
  if (load_key(L, b, 1, 0)) return 2;
  lua_createtable(L, 0, 4);
  lua_pushstring(L, key_type(b));
  lua_setfield(L, -2, "type");
  if (push_pem(L, b, 0)) return 2;
  lua_setfield(L, -2, "pem");
  if ((n = i2d_PUBKEY(b->pkey, &b->der)) <= 0)
    return fail(L, b, "crypto", "encode", "cannot encode the public key");
  lua_pushcfunction(L, crypto_base64_encode);
  lua_pushlstring(L, (const char *)b->der, (size_t)n);
  lua_call(L, 1, 1);
  lua_setfield(L, -2, "spki");
  if (EVP_PKEY_is_a(b->pkey, "ED25519") && EVP_PKEY_get_raw_public_key(b->pkey, k, &klen)) {
    lua_pushcfunction(L, crypto_base64_encode);
    lua_pushlstring(L, (const char *)k, klen);
    lua_call(L, 1, 1);
    lua_setfield(L, -2, "raw");
  }
  box_release(b);
  return 1;
}

/* generate_key("ed25519" | "rsa" [, bits=2048]) -> private_pem,
** public_pem, or nil, err. For test key pairs (the simulator's). */
static int crypto_generate_key(lua_State *L) {
  static const char *const kinds[] = {"ed25519", "rsa", NULL};
  int kind = luaL_checkoption(L, 1, NULL, kinds);
  lua_Integer bits = luaL_optinteger(L, 2, 2048);
  struct box *b;
  luaL_argcheck(L, bits >= 1024 && bits <= MAX_RSA_BITS, 2, "RSA bits must be 1024..16384");
  b = newbox(L);
  b->pkey = kind == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
                      : EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
  if (b->pkey == NULL) return fail(L, b, "crypto", "keygen", "key generation failed");
  if (push_pem(L, b, 1) || push_pem(L, b, 0)) return 2;
  box_release(b);
  return 2;
}

/* ---- Signatures ---- */

/* The body of sign and verify: load the key at 1 (private for signing),
** check its type, and set up b->md with md (NULL for Ed25519, which
** hashes internally). Returns 0, or 2 with nil, err pushed. */
static int setup_sig(lua_State *L, struct box *b, const char *type, const EVP_MD *md, int signing) {
  int r;
  if ((r = load_key(L, b, 1, signing)) != 0 || (r = want_type(L, b, type)) != 0) return r;
  if ((b->md = EVP_MD_CTX_new()) == NULL ||
      (signing ? EVP_DigestSignInit(b->md, NULL, md, NULL, b->pkey)
               : EVP_DigestVerifyInit(b->md, NULL, md, NULL, b->pkey)) != 1)
    return fail(L, b, "crypto", "bad_key", "cannot use this key");
  return 0;
}

/* verify(type, md) with key, data, sig at 1..3 -> true | false, or nil,
** err for an unusable key. A signature of the wrong size is false. */
static int verify(lua_State *L, const char *type, const EVP_MD *md, size_t siglen) {
  size_t dn, sn;
  const char *data = luaL_checklstring(L, 2, &dn);
  const char *sig = luaL_checklstring(L, 3, &sn);
  struct box *b = newbox(L);
  int r;
  if ((r = setup_sig(L, b, type, md, 0)) != 0) return r;
  if (siglen == 0) siglen = (size_t)EVP_PKEY_get_size(b->pkey);
  r = sn == siglen && EVP_DigestVerify(b->md, (const unsigned char *)sig, sn,
                                       (const unsigned char *)data, dn) == 1;
  box_release(b);
  lua_pushboolean(L, r);
  return 1;
}

/* sign(type, md) with private key and data at 1, 2 -> signature bytes, or
** nil, err. */
static int sign(lua_State *L, const char *type, const EVP_MD *md) {
  size_t dn, sn = 0;
  const char *data = luaL_checklstring(L, 2, &dn);
  struct box *b = newbox(L);
  unsigned char *sig;
  int r;
  if ((r = setup_sig(L, b, type, md, 1)) != 0) return r;
  if (EVP_DigestSign(b->md, NULL, &sn, (const unsigned char *)data, dn) != 1)
    return fail(L, b, "crypto", "sign", "signing failed");
  sig = box_buf(L, b, sn);
  if (EVP_DigestSign(b->md, sig, &sn, (const unsigned char *)data, dn) != 1)
    return fail(L, b, "crypto", "sign", "signing failed");
  lua_pushlstring(L, (const char *)sig, sn);
  box_release(b);
  return 1;
}

/* ed25519_verify(key, data, sig) -> true | false, or nil, err. Pure
** Ed25519 over data (no pre-hash); sig is the raw 64 bytes. */
static int crypto_ed25519_verify(lua_State *L) {
  return verify(L, "ed25519", NULL, ED25519_SIG);
}

/* ed25519_sign(private_key, data) -> 64 raw bytes, or nil, err. */
static int crypto_ed25519_sign(lua_State *L) {
  return sign(L, "ed25519", NULL);
}

/* rsa_sha256_verify(key, data, sig) -> true | false, or nil, err.
** RSASSA-PKCS1-v1_5 with SHA-256; sig is as long as the modulus. */
static int crypto_rsa_sha256_verify(lua_State *L) {
  return verify(L, "rsa", EVP_sha256(), 0);
}

/* rsa_sha256_sign(private_key, data) -> signature bytes, or nil, err. */
static int crypto_rsa_sha256_sign(lua_State *L) {
  return sign(L, "rsa", EVP_sha256());
}

/* ---- OpenSSL passphrase encryption (CryptoJS's format) ---- */

/* bytes_to_key(passphrase, salt) -> key (32 bytes), iv (16 bytes).
** EVP_BytesToKey with MD5 and one iteration, sized for AES-256-CBC: what
** `openssl enc -md md5` and CryptoJS with a string passphrase use. salt
** is exactly 8 bytes. */
static int crypto_bytes_to_key(lua_State *L) {
  size_t pn, sn;
  const char *pass = luaL_checklstring(L, 1, &pn);
  const char *salt = luaL_checklstring(L, 2, &sn);
  unsigned char key[AES_KEY_LEN], iv[AES_BLOCK];
  luaL_argcheck(L, sn == SALT_LEN, 2, "salt must be 8 bytes");
  if (EVP_BytesToKey(EVP_aes_256_cbc(), EVP_md5(), (const unsigned char *)salt,
                     (const unsigned char *)pass, (int)pn, 1, key, iv) != AES_KEY_LEN) {
    ERR_clear_error();
    return luaL_error(L, "EVP_BytesToKey failed");
  }
  lua_pushlstring(L, (const char *)key, sizeof key);
  lua_pushlstring(L, (const char *)iv, sizeof iv);
  OPENSSL_cleanse(key, sizeof key);
  OPENSSL_cleanse(iv, sizeof iv);
  return 2;
}

/* Check the AES key and IV arguments at 1, 2 (raises on wrong sizes). */
static void check_key_iv(lua_State *L, const char **key, const char **iv) {
  size_t kn, in;
  *key = luaL_checklstring(L, 1, &kn);
  *iv = luaL_checklstring(L, 2, &in);
  luaL_argcheck(L, kn == AES_KEY_LEN, 1, "AES-256 key must be 32 bytes");
  luaL_argcheck(L, in == AES_BLOCK, 2, "IV must be 16 bytes");
}

/* aes_256_cbc_encrypt(key, iv, plaintext) -> ciphertext, PKCS#7 padded
** (always 1..16 bytes of padding). */
static int crypto_aes_256_cbc_encrypt(lua_State *L) {
  const char *key, *iv, *pt;
  size_t n;
  int a = 0, f = 0;
  struct box *b;
  unsigned char *out;
  check_key_iv(L, &key, &iv);
  pt = luaL_checklstring(L, 3, &n);
  luaL_argcheck(L, n < 0x7fffff00, 3, "too long");
  b = newbox(L);
  out = box_buf(L, b, n + AES_BLOCK);
  if ((b->cipher = EVP_CIPHER_CTX_new()) == NULL ||
      EVP_EncryptInit_ex(b->cipher, EVP_aes_256_cbc(), NULL, (const unsigned char *)key,
                         (const unsigned char *)iv) != 1 ||
      EVP_EncryptUpdate(b->cipher, out, &a, (const unsigned char *)pt, (int)n) != 1 ||
      EVP_EncryptFinal_ex(b->cipher, out + a, &f) != 1)
    return fail(L, b, "crypto", "encrypt", "AES-256-CBC encryption failed");
  lua_pushlstring(L, (const char *)out, (size_t)(a + f));
  box_release(b);
  return 1;
}

/* aes_256_cbc_decrypt(key, iv, ciphertext [, nopad]) -> plaintext, or nil,
** err: code "bad_length" when the ciphertext is empty or not whole 16-byte
** blocks, "bad_padding" when the last block does not end in PKCS#7
** padding. With nopad, every decrypted byte is returned, padding and all
** (to look at what a bad_padding failure decrypted to). */
static int crypto_aes_256_cbc_decrypt(lua_State *L) {
  const char *key, *iv, *ct;
  size_t n, i, pad;
  int a = 0, f = 0, bad = 0, nopad;
  struct box *b;
  unsigned char *out;
  check_key_iv(L, &key, &iv);
  ct = luaL_checklstring(L, 3, &n);
  luaL_argcheck(L, n < 0x7fffff00, 3, "too long");
  nopad = lua_toboolean(L, 4);
  lua_settop(L, 3);
  b = newbox(L);
  if (n == 0 || n % AES_BLOCK != 0) {
    lua_pushfstring(L, "ciphertext of %d bytes is not a whole number of 16-byte AES blocks", (int)n);
    return fail(L, b, "crypto", "bad_length", lua_tostring(L, -1));
  }
  out = box_buf(L, b, n + AES_BLOCK);
  if ((b->cipher = EVP_CIPHER_CTX_new()) == NULL ||
      EVP_DecryptInit_ex(b->cipher, EVP_aes_256_cbc(), NULL, (const unsigned char *)key,
                         (const unsigned char *)iv) != 1 ||
      EVP_CIPHER_CTX_set_padding(b->cipher, 0) != 1 ||
      EVP_DecryptUpdate(b->cipher, out, &a, (const unsigned char *)ct, (int)n) != 1 ||
      EVP_DecryptFinal_ex(b->cipher, out + a, &f) != 1)
    return fail(L, b, "crypto", "decrypt", "AES-256-CBC decryption failed");
  n = (size_t)(a + f);
  if (!nopad) {
    pad = out[n - 1];
    bad = pad == 0 || pad > AES_BLOCK;
    for (i = 1; !bad && i <= pad; i++) bad = out[n - i] != pad;
    if (bad) return fail(L, b, "crypto", "bad_padding", "the last block does not end in PKCS#7 padding");
    n -= pad;
  }
  lua_pushlstring(L, (const char *)out, n);
  box_release(b);
  return 1;
}

/* ---- Sealing: AES-256-GCM with a version byte ---- */

/* Check the 32-byte key at 1 and return it; raises on a wrong size (a
** programmer mistake: keys are checked when they are read). */
static const unsigned char *check_aes_key(lua_State *L) {
  size_t kn;
  const char *key = luaL_checklstring(L, 1, &kn);
  luaL_argcheck(L, kn == AES_KEY_LEN, 1, "AES-256 key must be 32 bytes");
  return (const unsigned char *)key;
}

/* seal(key, plaintext [, aad=""]) -> blob: version byte 1, a fresh random
** 96-bit nonce, the AES-256-GCM ciphertext and its 16-byte tag. aad is
** authenticated, not stored: open must be given the same. Or nil, err.
** Ownership: the box (made before the context and the output buffer)
** owns both, so an out-of-memory raise frees them through __gc; every
** return path releases the box. */
static int crypto_seal(lua_State *L) {
  const unsigned char *key = check_aes_key(L);
  size_t n, an;
  const char *pt = luaL_checklstring(L, 2, &n);
  const char *aad = luaL_optlstring(L, 3, "", &an);
  int a = 0, f = 0;
  struct box *b;
  unsigned char *out;
  luaL_argcheck(L, n < 0x7fffff00 - SEAL_OVERHEAD, 2, "too long");
  luaL_argcheck(L, an < 0x7fffff00, 3, "too long");
  b = newbox(L);
  out = box_buf(L, b, n + SEAL_OVERHEAD);
  out[0] = SEAL_VERSION;
  if (RAND_bytes(out + 1, GCM_NONCE) != 1)
    return fail(L, b, "crypto", "random", "no random bytes for a nonce");
  if ((b->cipher = EVP_CIPHER_CTX_new()) == NULL ||
      EVP_EncryptInit_ex(b->cipher, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
      EVP_CIPHER_CTX_ctrl(b->cipher, EVP_CTRL_GCM_SET_IVLEN, GCM_NONCE, NULL) != 1 ||
      EVP_EncryptInit_ex(b->cipher, NULL, NULL, key, out + 1) != 1 ||
      (an > 0 && EVP_EncryptUpdate(b->cipher, NULL, &a, (const unsigned char *)aad, (int)an) != 1) ||
      EVP_EncryptUpdate(b->cipher, out + 1 + GCM_NONCE, &a, (const unsigned char *)pt, (int)n) != 1 ||
      EVP_EncryptFinal_ex(b->cipher, out + 1 + GCM_NONCE + a, &f) != 1 ||
      EVP_CIPHER_CTX_ctrl(b->cipher, EVP_CTRL_GCM_GET_TAG, GCM_TAG, out + 1 + GCM_NONCE + a + f) != 1)
    return fail(L, b, "crypto", "encrypt", "AES-256-GCM encryption failed");
  lua_pushlstring(L, (const char *)out, (size_t)(1 + GCM_NONCE + a + f + GCM_TAG));
  box_release(b);
  return 1;
}

/* open(key, blob [, aad=""]) -> plaintext, or nil, err (kind "crypto"):
** code "bad_length" (shorter than a sealed empty string), "bad_version"
** (not a version this build reads), "auth_failed" (the tag does not
** match: another key, another aad, or altered bytes; nothing decrypted is
** returned). Ownership as in seal; the decrypted scratch is wiped. */
static int crypto_open(lua_State *L) {
  const unsigned char *key = check_aes_key(L);
  size_t n, an;
  const unsigned char *blob = (const unsigned char *)luaL_checklstring(L, 2, &n);
  const char *aad = luaL_optlstring(L, 3, "", &an);
  int a = 0, f = 0, ctlen;
  struct box *b;
  unsigned char *out, tag[GCM_TAG];
  luaL_argcheck(L, n < 0x7fffff00, 2, "too long");
  luaL_argcheck(L, an < 0x7fffff00, 3, "too long");
  b = newbox(L);
  if (n < SEAL_OVERHEAD) {
    lua_pushfstring(L, "sealed value of %d bytes is too short (at least %d)", (int)n, SEAL_OVERHEAD);
    return fail(L, b, "crypto", "bad_length", lua_tostring(L, -1));
  }
  if (blob[0] != SEAL_VERSION) {
    lua_pushfstring(L, "sealed value has version %d; this ghlua reads version %d", (int)blob[0], SEAL_VERSION);
    return fail(L, b, "crypto", "bad_version", lua_tostring(L, -1));
  }
  ctlen = (int)(n - SEAL_OVERHEAD);
  memcpy(tag, blob + n - GCM_TAG, GCM_TAG);   /* set_tag takes a non-const pointer */
  out = box_buf(L, b, (size_t)ctlen);
  if ((b->cipher = EVP_CIPHER_CTX_new()) == NULL ||
      EVP_DecryptInit_ex(b->cipher, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
      EVP_CIPHER_CTX_ctrl(b->cipher, EVP_CTRL_GCM_SET_IVLEN, GCM_NONCE, NULL) != 1 ||
      EVP_DecryptInit_ex(b->cipher, NULL, NULL, key, blob + 1) != 1 ||
      (an > 0 && EVP_DecryptUpdate(b->cipher, NULL, &a, (const unsigned char *)aad, (int)an) != 1) ||
      EVP_DecryptUpdate(b->cipher, out, &a, blob + 1 + GCM_NONCE, ctlen) != 1 ||
      EVP_CIPHER_CTX_ctrl(b->cipher, EVP_CTRL_GCM_SET_TAG, GCM_TAG, tag) != 1)
    return fail(L, b, "crypto", "decrypt", "AES-256-GCM decryption failed");
  if (EVP_DecryptFinal_ex(b->cipher, out + a, &f) != 1) {
    ERR_clear_error();                        /* the reason is the tag, not OpenSSL's text */
    return fail(L, b, "crypto", "auth_failed",
                "sealed value does not open: another key, another row, or altered bytes");
  }
  lua_pushlstring(L, (const char *)out, (size_t)(a + f));
  box_release(b);
  return 1;
}

/* hmac_sha256(key, data) -> the 32 raw bytes of HMAC-SHA256. */
static int crypto_hmac_sha256(lua_State *L) {
  size_t kn, dn, len = 0;
  const char *key = luaL_checklstring(L, 1, &kn);
  const char *data = luaL_checklstring(L, 2, &dn);
  unsigned char out[32];
  if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, kn, (const unsigned char *)data, dn,
                out, sizeof out, &len) == NULL) {
    ERR_clear_error();
    return luaL_error(L, "HMAC-SHA256 failed");
  }
  lua_pushlstring(L, (const char *)out, len);
  OPENSSL_cleanse(out, sizeof out);
  return 1;
}

/* ---- Private key files ---- */

/* Split path into its directory (in dir, of size n) and its last
** component, which is returned (a pointer into path), or NULL when path
** ends in '/' or does not fit. */
static const char *split_path(const char *path, char *dir, size_t n) {
  const char *slash = strrchr(path, '/');
  if (slash == NULL) {
    snprintf(dir, n, ".");
    return *path ? path : NULL;
  }
  if (slash[1] == '\0' || (size_t)(slash - path) + 2 > n) return NULL;
  if (slash == path) snprintf(dir, n, "/");
  else snprintf(dir, n, "%.*s", (int)(slash - path), path);
  return slash + 1;
}

/* Is the open fd (named path) a directory (isdir) or a regular file of
** ours that no one else may read, write or enter? Returns 0, or pushes
** nil, err (kind "permissions", naming the fix) and returns 2. The caller
** closes fd. */
static int check_private(lua_State *L, int fd, const char *path, int isdir) {
  struct stat st;
  if (fstat(fd, &st) != 0) return ghl_fail(L, "io", "%s: %s", path, strerror(errno));
  if (isdir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
    return ghl_fail(L, "permissions", "%s is not a %s", path, isdir ? "directory" : "regular file");
  if (st.st_uid != geteuid())
    return ghl_fail(L, "permissions", "%s is owned by uid %d, not by you (uid %d)", path,
                    (int)st.st_uid, (int)geteuid());
  if (st.st_mode & 077) {
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", (unsigned)(st.st_mode & 07777));
    return ghl_fail(L, "permissions", "%s is %s by others (mode %s); run: chmod %s '%s'", path,
                    (st.st_mode & 044) ? "readable" : (st.st_mode & 022) ? "writable" : "accessible",
                    mode, isdir ? "700" : "600", path);
  }
  return 0;
}

/* Open the directory of path and check it is private (check_private).
** Returns the descriptor (the caller closes it) with the file's name in
** *name, or -1 with nil, err pushed. */
static int open_private_dir(lua_State *L, const char *path, char *dir, size_t n, const char **name) {
  int dfd, e;
  if ((*name = split_path(path, dir, n)) == NULL) {
    ghl_fail(L, "io", "not a file name: %s", path);
    return -1;
  }
  if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
    e = errno;
    ghl_fail(L, e == ENOENT ? "missing" : "io", "%s: %s", dir, strerror(e));
    return -1;
  }
  if (check_private(L, dfd, dir, 1)) {
    close(dfd);
    return -1;
  }
  return dfd;
}

/* read_key_file(path) -> text, or nil, err. The file must be a regular
** file, not a symbolic link, owned by the user and closed to others (mode
** 0600 or stricter), in a directory of theirs closed to others (0700),
** and at most 64 KiB: a key someone else could have written or read is
** never used. err.kind: "missing" (no such file or directory),
** "permissions" (with the chmod that fixes it), "io". The bytes read are
** wiped from scratch memory. */
static int crypto_read_key_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1), *name;
  char dir[4096];
  struct box *b = newbox(L);
  unsigned char *buf = box_buf(L, b, KEY_FILE_MAX + 1);   /* before any descriptor: it may raise */
  size_t len = 0;
  ssize_t r;
  int dfd, fd, e;
  if ((dfd = open_private_dir(L, path, dir, sizeof dir, &name)) < 0) return 2;
  fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  e = errno;
  close(dfd);
  if (fd < 0) {
    if (e == ELOOP) return ghl_fail(L, "permissions", "%s is a symbolic link", path);
    return ghl_fail(L, e == ENOENT ? "missing" : "io", "%s: %s", path, strerror(e));
  }
  if (check_private(L, fd, path, 0)) {
    close(fd);
    return 2;
  }
  while (len <= KEY_FILE_MAX && (r = read(fd, buf + len, KEY_FILE_MAX + 1 - len)) != 0) {
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      e = errno;
      close(fd);
      return ghl_fail(L, "io", "%s: %s", path, strerror(e));
    }
    len += (size_t)r;
  }
  close(fd);
  if (len > KEY_FILE_MAX) return ghl_fail(L, "io", "%s is larger than a key file (64 KiB)", path);
  lua_pushlstring(L, (const char *)buf, len);
  box_release(b);
  return 1;
}

/* create_key_file(path, text) -> true when it wrote the file, false when
** the file exists already (it is left as it is), or nil, err. The
** directory must exist and be private (see read_key_file). The text goes
** to a new temporary file (mode 0600 whatever the umask), is synced, and
** is then hard-linked to path, which fails when path exists: a reader
** never sees the file half written, and of two processes creating it at
** once, one wins and both then read the same key. */
static int crypto_create_key_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1), *name;
  size_t len, off = 0;
  const char *text = luaL_checklstring(L, 2, &len);
  char dir[4096], tmp[300];
  ssize_t w;
  int dfd, fd, e, made;
  if ((dfd = open_private_dir(L, path, dir, sizeof dir, &name)) < 0) return 2;
  if (snprintf(tmp, sizeof tmp, ".%s.%ld.tmp", name, (long)getpid()) >= (int)sizeof tmp) {
    close(dfd);
    return ghl_fail(L, "io", "file name too long: %s", path);
  }
  unlinkat(dfd, tmp, 0);                 /* left by a process of ours that died */
  fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    e = errno;
    close(dfd);
    return ghl_fail(L, "io", "cannot create a file in %s: %s", dir, strerror(e));
  }
  e = fchmod(fd, 0600) != 0 ? errno : 0;
  while (e == 0 && off < len) {
    if ((w = write(fd, text + off, len - off)) < 0) {
      if (errno != EINTR) e = errno;
    } else {
      off += (size_t)w;
    }
  }
  if (e == 0 && fsync(fd) != 0) e = errno;
  if (close(fd) != 0 && e == 0) e = errno;
  made = 0;
  if (e == 0) {
    if (linkat(dfd, tmp, dfd, name, 0) == 0) made = 1;
    else if (errno != EEXIST) e = errno;
  }
  unlinkat(dfd, tmp, 0);
  if (e == 0) fsync(dfd);                /* the new name survives a power cut */
  close(dfd);
  if (e) return ghl_fail(L, "io", "cannot write %s: %s", path, strerror(e));
  lua_pushboolean(L, made);
  return 1;
}

static const luaL_Reg crypto_funcs[] = {
  {"base64_encode", crypto_base64_encode},
  {"base64_decode", crypto_base64_decode},
  {"digest", crypto_digest},
  {"public_key", crypto_public_key},
  {"generate_key", crypto_generate_key},
  {"ed25519_verify", crypto_ed25519_verify},
  {"ed25519_sign", crypto_ed25519_sign},
  {"rsa_sha256_verify", crypto_rsa_sha256_verify},
  {"rsa_sha256_sign", crypto_rsa_sha256_sign},
  {"bytes_to_key", crypto_bytes_to_key},
  {"aes_256_cbc_encrypt", crypto_aes_256_cbc_encrypt},
  {"aes_256_cbc_decrypt", crypto_aes_256_cbc_decrypt},
  {"seal", crypto_seal},
  {"open", crypto_open},
  {"hmac_sha256", crypto_hmac_sha256},
  {"read_key_file", crypto_read_key_file},
  {"create_key_file", crypto_create_key_file},
  {NULL, NULL}
};

int luaopen_ghl_crypto(lua_State *L) {
  if (luaL_newmetatable(L, BOX_MT)) {
    lua_pushcfunction(L, box_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_newlib(L, crypto_funcs);
  return 1;
}
