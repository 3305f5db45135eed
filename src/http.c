/*
** ghl.http: HTTP client over libcurl's multi interface. Every request of the
** process goes through one multi handle (connection cache, keep-alive,
** HTTP/2 multiplexing) and one share handle (DNS, TLS sessions). Blocking
** requests and concurrent transfers use the same path:
**
**   http.request{...}          -> response | nil, err   (start + wait)
**   t = http.start{...}        -> transfer userdata
**   http.perform(seconds)      -> array of transfers that finished
**   t:response()               -> response | nil, err
**
** An HTTP 4xx/5xx is a normal response; a transport failure is a ghl.error
** with kind timeout, connect, tls, network, too_large, encode or interrupted,
** named once: where = "METHOD /path", a message about the server's origin
** ("cannot reach http://127.0.0.1:9 (connection refused)"), and cause,
** reason, origin for whoever words a hint (see push_failure).
** Callbacks never raise: they record failures in the transfer and abort.
**
** A non-idempotent request (any method but GET, HEAD, PUT, DELETE and
** OPTIONS, unless the request says idempotent = true|false) is never sent
** twice. libcurl re-sends a request whose reused connection died before any
** byte of the answer ("Connection died, retrying a fresh connect"), after
** rewinding its body (7.88: Curl_retry_request, then readrewind in multi.c).
** Such a body is fed through CURLOPT_READFUNCTION with a CURLOPT_SEEKFUNCTION
** that cannot seek, so the rewind fails (CURLE_SEND_FAIL_REWIND) instead of
** sending it again. libcurl rewinds only once body bytes went out, so the
** retries it still makes are those where the server cannot have had the
** whole request (the headers' send failed, or no body byte was written). A
** body-less request needs no rewind: its CURLOPT_PREREQFUNCTION, called
** before each attempt, refuses a second one. A failure after such a request
** went out says that it may have been applied (code "outcome_unknown");
** kind "connect" always means nothing was sent.
** Ctrl-C during a wait closes every transfer in flight.
*/
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <sys/stat.h>

#include <curl/curl.h>
#include <lauxlib.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "buf.h"
#include "error.h"
#include "json.h"
#include "host.h"

int luaopen_cjson_safe(lua_State *L);  /* not declared by lua-cjson.h */

#define TRANSFER_MT "ghl.http.transfer"
#define RESPONSE_MT "ghl.http.response"
#define BUF_MT "ghl.http.buf"
#define MAX_BODY ((size_t)512 * 1024 * 1024)

/* ---- Process-wide state ---- */

struct transfer;

/* A request header list shared by the transfers that send the same header
** lines: key holds them ("Name: value\n" each, in the order sent). Owned
** by its references: the transfers using it and G.hlist, the last list
** built; freed by hlist_unref at zero. libcurl only reads a list, so
** transfers in flight at once may share one. */
struct hlist {
  struct curl_slist *list;
  size_t refs;
  size_t n;                /* bytes of key */
  char key[];
};

static void hlist_unref(struct hlist *h);

static struct {
  CURLM *multi;
  CURLSH *share;
  int running;             /* transfers in the multi */
  struct transfer *active; /* those transfers, linked through prev/next */
  int trace;               /* print requests to stderr */
  const char *ca_dir;      /* libcurl's CA directory, when it exists */
  STACK_OF(X509_INFO) *ca_extra;  /* GHLUA_CA_BUNDLE, parsed once */
  int ca_checked;
  struct hlist *hlist;     /* the last header list built, for the next request */
} G;

/* Where the five X-RateLimit-* values are in a raw header block, recorded
** by on_header as the lines arrive (names in RL_NAMES' order): the trimmed
** value of a name's first line at off[i], len[i] bytes; count[i] lines
** carried the name (capped at 2: more than one is read as resp:header()
** joins them). push_response stores it at the end of the block's Lua
** string, after the header bytes, so resp:ratelimit() reads it there. */
struct rlindex {
  unsigned off[5], len[5];
  unsigned char count[5];
};

struct transfer {
  CURL *easy;              /* NULL when closed */
  struct hlist *hdrs;      /* request headers (shared, counted) */
  ghl_buf body;            /* response body */
  ghl_buf head;            /* response headers of the last response */
  struct rlindex rl;       /* where head holds the X-RateLimit-* values */
  ghl_buf reqbody;         /* request body we send */
  ghl_buf trace;           /* request lines for tracing */
  ghl_buf scratch;         /* the URL, then the header lines, while start_transfer builds them */
  size_t sent;             /* bytes of reqbody handed to libcurl by on_read */
  char *method;            /* mbuf, or strdup'd when longer */
  char mbuf[16];
  char *url;
  struct transfer *prev, *next;  /* in G.active while active */
  int active;              /* added to the multi */
  int tracked;             /* started by http.start: in INFLIGHT until finished */
  int done;
  int too_large;
  int idempotent;          /* sending it twice does no harm */
  int once;                /* non-idempotent, no body: on_prereq refuses a retry */
  int attempts;            /* on_prereq calls */
  int refused;             /* on_prereq refused libcurl's retry */
  int aborted;             /* closed by Ctrl-C before it finished */
  double timeout;          /* seconds for the whole request */
  CURLcode result;
  char errbuf[CURL_ERROR_SIZE];
};

/* ---- Callbacks (never raise) ---- */

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  struct transfer *t = ud;
  size_t len = size * n;
  if (t->body.len + len > MAX_BODY) { t->too_large = 1; return 0; }
  return ghl_buf_add(&t->body, p, len) == 0 ? len : 0;
}

static const char *const RL_NAMES[5] = {
  "x-ratelimit-max", "x-ratelimit-remaining", "x-ratelimit-interval-milliseconds",
  "x-ratelimit-daily-remaining", "x-ratelimit-limit-daily",
};
static const size_t RL_LENS[5] = { 15, 21, 33, 27, 23 };   /* they differ: the length picks the name */

/* Whether p[0..k) is name (lower-case letters and '-'), letters in any
** case: each byte with 0x20 set (which makes an upper-case letter lower
** case and leaves a lower-case one and '-' as they are), eight at a time.
** Only a CR can fold into '-' (0x0d | 0x20): the caller rules CR out. */
static int name_is(const char *p, const char *name, size_t k) {
  uint64_t a, b;
  size_t i;
  for (i = 0; i + 8 <= k; i += 8) {
    memcpy(&a, p + i, 8);
    memcpy(&b, name + i, 8);
    if ((a | 0x2020202020202020ULL) != b) return 0;
  }
  for (; i < k; i++)
    if (((unsigned char)p[i] | 0x20) != (unsigned char)name[i]) return 0;
  return 1;
}

/* The value of a header line whose colon is at colon and whose end is eol
** (its '\n', or the block's end): without the spaces and tabs before it
** and the CRs and spaces after it. One rule for resp.headers, resp:header()
** and resp:ratelimit(), which must agree byte for byte. *n: its length. */
static const char *header_value(const char *colon, const char *eol, size_t *n) {
  const char *s = colon + 1, *e = eol;
  while (s < e && (*s == ' ' || *s == '\t')) s++;
  while (e > s && (e[-1] == '\r' || e[-1] == ' ')) e--;
  *n = (size_t)(e - s);
  return s;
}

/* If the header line p[0..n) (its line ending included) is one of the five
** X-RateLimit-* names, any case, followed at once by a colon, record where
** its value is in t->head, where the line starts at offset at. */
static void note_ratelimit(struct transfer *t, const char *p, size_t n, size_t at) {
  const char *eol = memchr(p, '\n', n), *colon, *s;
  size_t k, vn;
  int i;
  if (eol == NULL) eol = p + n;
  if ((size_t)(eol - p) <= 15 || !name_is(p, "x-ratelimit-", 12)) return;
  if ((colon = memchr(p + 12, ':', (size_t)(eol - p - 12))) == NULL) return;
  k = (size_t)(colon - p);
  for (i = 0; i < 5 && RL_LENS[i] != k; i++) continue;
  if (i == 5 || !name_is(p + 12, RL_NAMES[i] + 12, k - 12) || memchr(p, '\r', k)) return;
  if (t->rl.count[i]++ > 0) {
    t->rl.count[i] = 2;
    return;
  }
  s = header_value(colon, eol, &vn);
  t->rl.off[i] = (unsigned)(at + (size_t)(s - p));
  t->rl.len[i] = (unsigned)vn;
}

/* Room in t->body for the Content-Length value v[0..n) announces, up to
** 4 MiB (a longer body grows as it arrives, as does one without the
** header or a compressed one); nothing for a value that is not a number. */
static void presize_body(struct transfer *t, const char *v, size_t n) {
  size_t i = 0, want = 0;
  if (strcmp(t->method, "HEAD") == 0) return;     /* the length of a body not sent */
  while (i < n && (v[i] == ' ' || v[i] == '\t')) i++;
  for (; i < n && v[i] >= '0' && v[i] <= '9'; i++) {
    want = want * 10 + (size_t)(v[i] - '0');
    if (want > 4 * 1024 * 1024) return;
  }
  if (want > 0 && t->body.len == 0) ghl_buf_reserve(&t->body, want);   /* a failure is no error here */
}

/* Keep only the last response's headers (after 100-continue, proxies), and
** where its X-RateLimit-* values are (note_ratelimit). libcurl passes one
** whole header line per call. */
static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  struct transfer *t = ud;
  size_t len = size * n, at;
  if (len > 5 && p[0] == 'H' && memcmp(p, "HTTP/", 5) == 0) {
    t->head.len = 0;
    memset(&t->rl, 0, sizeof t->rl);
  }
  if (t->head.len + len > 1024 * 1024) { t->too_large = 1; return 0; }
  if (t->head.cap == 0 && ghl_buf_reserve(&t->head, 1024) != 0) return 0;   /* most blocks fit */
  at = t->head.len;
  if (ghl_buf_add(&t->head, p, len) != 0) return 0;
  if (*p == 'x' || *p == 'X') note_ratelimit(t, t->head.data + at, len, at);
  else if ((*p == 'c' || *p == 'C') && len > 15 && name_is(p, "content-length:", 15)
           && memchr(p, '\r', 15) == NULL)
    presize_body(t, p + 15, len - 15);
  return len;
}

/* CURLOPT_READFUNCTION: the body of a non-idempotent request, from
** t->reqbody. */
static size_t on_read(char *p, size_t size, size_t n, void *ud) {
  struct transfer *t = ud;
  size_t left;
  if (t == NULL) return CURL_READFUNC_ABORT;
  left = t->reqbody.len - t->sent;
  if (left > size * n) left = size * n;
  if (left) memcpy(p, t->reqbody.data + t->sent, left);
  t->sent += left;
  return left;
}

/* CURLOPT_SEEKFUNCTION: libcurl asks to rewind the body only to send it
** again; a non-idempotent request is never sent again. */
static int on_seek(void *ud, curl_off_t offset, int origin) {
  (void)ud;
  (void)offset;
  (void)origin;
  return CURL_SEEKFUNC_CANTSEEK;
}

/* CURLOPT_PREREQFUNCTION: called on a connection, before each attempt at
** sending the request. A second attempt is libcurl re-sending it after the
** connection died: refused for a request that must go out once. */
static int on_prereq(void *ud, char *remote_ip, char *local_ip, int remote_port, int local_port) {
  struct transfer *t = ud;
  (void)remote_ip;
  (void)local_ip;
  (void)remote_port;
  (void)local_port;
  if (t == NULL) return CURL_PREREQFUNC_OK;
  if (t->once && t->attempts++ > 0) {
    t->refused = 1;
    return CURL_PREREQFUNC_ABORT;
  }
  return CURL_PREREQFUNC_OK;
}

/* ---- Encoding ---- */

/* Return the offset of the first invalid UTF-8 byte of s, or -1. */
static long utf8_invalid(const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    unsigned c = u[i];
    size_t k, need;
    unsigned min;
    if (c < 0x80) { i++; continue; }
    if (c >= 0xc2 && c <= 0xdf) { need = 1; min = 0x80; }
    else if (c >= 0xe0 && c <= 0xef) { need = 2; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { need = 3; min = 0x10000; }
    else return (long)i;
    if (i + need >= n) return (long)i;
    {
      unsigned cp = c & (0x3f >> need);
      for (k = 1; k <= need; k++) {
        if ((u[i + k] & 0xc0) != 0x80) return (long)i;
        cp = (cp << 6) | (u[i + k] & 0x3f);
      }
      if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return (long)i;
    }
    i += need + 1;
  }
  return -1;
}

/* Append "k=v" (percent-encoded) to b, with '&' before it unless b is empty
** or ends in '?' or '&'. Returns 0, or -1 (error pushed) for non-UTF-8 text. */
static int add_pair(lua_State *L, ghl_buf *b, const char *what,
                    const char *k, size_t klen, const char *v, size_t vlen) {
  char *ek, *ev;
  long bad = utf8_invalid(v, vlen);
  if (bad >= 0 || utf8_invalid(k, klen) >= 0) {
    char where[48] = "in its name";
    if (bad >= 0)
      snprintf(where, sizeof where, "byte 0x%02X at offset %ld", (unsigned)(unsigned char)v[bad], bad);
    ghl_pusherror(L, "encode", "%s parameter '%s' is not valid UTF-8 (%s); convert the text to UTF-8 first",
                  what, k, where);
    return -1;
  }
  ek = curl_easy_escape(NULL, k, (int)klen);
  ev = curl_easy_escape(NULL, v, (int)vlen);
  if (b->len && b->data[b->len - 1] != '?' && b->data[b->len - 1] != '&') ghl_buf_add(b, "&", 1);
  ghl_buf_addstr(b, ek ? ek : "");
  ghl_buf_add(b, "=", 1);
  ghl_buf_addstr(b, ev ? ev : "");
  curl_free(ek);
  curl_free(ev);
  return 0;
}

/* Text form of a query/form value at idx: strings, numbers, booleans. */
static const char *scalar(lua_State *L, int idx, size_t *len, const char *key) {
  switch (lua_type(L, idx)) {
    case LUA_TSTRING:
    case LUA_TNUMBER: return lua_tolstring(L, idx, len);
    case LUA_TBOOLEAN:
      *len = lua_toboolean(L, idx) ? 4 : 5;
      return lua_toboolean(L, idx) ? "true" : "false";
    default:
      luaL_error(L, "parameter '%s': expected string, number, boolean or array, got %s",
                 key, luaL_typename(L, idx));
      return NULL;
  }
}

struct key { const char *s; size_t n; };

/* Byte order, shorter first on a common prefix: stable in every locale. */
static int cmp_key(const void *a, const void *b) {
  const struct key *x = a, *y = b;
  int c = memcmp(x->s, y->s, x->n < y->n ? x->n : y->n);
  if (c != 0) return c;
  return (x->n > y->n) - (x->n < y->n);
}

/* Encode table t (index) as application/x-www-form-urlencoded pairs into b,
** keys sorted so the output is stable. Arrays give repeated keys. Returns 0,
** or -1 with an error pushed. Raises for values of the wrong type; b is the
** caller's, who must own it in a way a raise cannot leak (a transfer or a
** BUF_MT box). Reads the table raw: no Lua code runs, so the key pointers
** (strings held by t) stay valid. Stack: 0, or +1 (the error). */
static int encode_pairs(lua_State *L, int t, ghl_buf *b, const char *what) {
  struct key *ks;
  size_t i, n = 0;
  int rc = 0, top = lua_gettop(L);
  t = lua_absindex(L, t);
  lua_pushnil(L);
  while (lua_next(L, t)) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING)
      return luaL_error(L, "%s parameter names must be strings", what);
    n++;
  }
  ks = lua_newuserdatauv(L, n ? n * sizeof *ks : 1, 0);    /* keys (freed by the GC) */
  lua_pushnil(L);
  for (i = 0; i < n && lua_next(L, t); i++) {
    lua_pop(L, 1);
    ks[i].s = lua_tolstring(L, -1, &ks[i].n);
  }
  lua_settop(L, top + 1);
  qsort(ks, n, sizeof *ks, cmp_key);
  for (i = 0; i < n && rc == 0; i++) {
    size_t vlen;
    const char *k = ks[i].s, *v;
    lua_pushlstring(L, k, ks[i].n);
    lua_rawget(L, t);                                /* keys v */
    if (lua_type(L, -1) == LUA_TTABLE) {
      int j, m = (int)lua_rawlen(L, -1);
      for (j = 1; j <= m && rc == 0; j++) {
        lua_rawgeti(L, -1, j);                       /* keys v vj */
        v = scalar(L, -1, &vlen, k);
        rc = add_pair(L, b, what, k, ks[i].n, v, vlen);
        if (rc == 0) lua_pop(L, 1);
      }
    } else {
      v = scalar(L, -1, &vlen, k);
      rc = add_pair(L, b, what, k, ks[i].n, v, vlen);
    }
    if (rc == 0) lua_settop(L, top + 1);
  }
  if (rc != 0) {                                     /* ... err */
    lua_replace(L, top + 1);
    lua_settop(L, top + 1);
    return -1;
  }
  lua_settop(L, top);
  return 0;
}

/* A ghl_buf in a userdata (BUF_MT), freed by the GC when a raise skips the
** owner's ghl_buf_free. Stack: +1. */
static ghl_buf *newbuf(lua_State *L) {
  ghl_buf *b = lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, BUF_MT);
  return b;
}

static int buf_gc(lua_State *L) {
  ghl_buf_free(luaL_checkudata(L, 1, BUF_MT));
  return 0;
}

/* ---- Transfers ---- */

/* Trust. The system roots come from libcurl's CA directory when it has one
** (Debian: /etc/ssl/certs, hashed by update-ca-certificates): OpenSSL then
** reads only the root a chain needs, where the bundle file costs about 30 ms
** of parsing per process. Without a directory, libcurl's default bundle
** stays. GHLUA_CA_BUNDLE is parsed once per process into G.ca_extra (owned
** by G, freed by state_gc) and its certificates are added to every
** connection's store by on_ssl_ctx. Returns 0, or -1 with an error pushed.
** Called by start_transfer only for a request that may use TLS (see
** may_use_tls): a process that only speaks cleartext never parses the
** bundle (with OpenSSL 3, about 5 M instructions for one certificate). */
static int load_ca(lua_State *L) {
  const char *extra = getenv("GHLUA_CA_BUNDLE");
  const curl_version_info_data *v;
  struct stat st;
  BIO *bio;
  int i, ncert = 0;
  if (G.ca_checked) return 0;
  v = curl_version_info(CURLVERSION_NOW);
  if (v->capath && stat(v->capath, &st) == 0 && S_ISDIR(st.st_mode)) G.ca_dir = v->capath;
  if (extra && *extra) {
    bio = BIO_new_file(extra, "r");
    if (bio == NULL) {
      ERR_clear_error();
      ghl_pusherror(L, "tls", "GHLUA_CA_BUNDLE=%s cannot be read; point it at a PEM file or unset it", extra);
      return -1;
    }
    G.ca_extra = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
    BIO_free(bio);
    ERR_clear_error();
    for (i = 0; G.ca_extra && i < sk_X509_INFO_num(G.ca_extra); i++)
      if (sk_X509_INFO_value(G.ca_extra, i)->x509) ncert++;
    if (ncert == 0) {
      if (G.ca_extra) sk_X509_INFO_pop_free(G.ca_extra, X509_INFO_free);
      G.ca_extra = NULL;
      ghl_pusherror(L, "tls", "GHLUA_CA_BUNDLE=%s holds no PEM certificate; point it at a PEM file or unset it", extra);
      return -1;
    }
  }
  G.ca_checked = 1;
  return 0;
}

/* Whether the environment variable name is set and not empty. */
static int env_set(const char *name) {
  const char *v = getenv(name);
  return v != NULL && *v != '\0';
}

/* Whether a proxy variable libcurl reads is set: one of those it reads for
** http URLs (http_proxy, HTTP_PROXY, all_proxy, ALL_PROXY) or, with any,
** also https_proxy or HTTPS_PROXY. The environment is read once. A proxy
** sees only CURLOPT_USERAGENT (libcurl sends the request's header list to
** the server alone). */
static int proxy_env(int any) {
  static int http = -1, https = -1;
  if (http < 0) {
    http = env_set("http_proxy") || env_set("HTTP_PROXY") || env_set("all_proxy") || env_set("ALL_PROXY");
    https = env_set("https_proxy") || env_set("HTTPS_PROXY");
  }
  return http || (any && https);
}

/* Whether a request to url (http:// or https://) may open a TLS
** connection: an https URL, or any URL while a proxy variable libcurl
** reads for http URLs is set (the proxy may be an https:// one, whose
** connection on_ssl_ctx also serves). */
static int may_use_tls(const char *url) {
  return url[4] == 's' || proxy_env(0);
}

/* CURLOPT_SSL_CTX_FUNCTION: add GHLUA_CA_BUNDLE's certificates to the
** store libcurl set up. Never raises. */
static CURLcode on_ssl_ctx(CURL *easy, void *ctx, void *ud) {
  X509_STORE *store = SSL_CTX_get_cert_store((SSL_CTX *)ctx);
  int i;
  (void)easy;
  (void)ud;
  for (i = 0; G.ca_extra && i < sk_X509_INFO_num(G.ca_extra); i++) {
    X509_INFO *xi = sk_X509_INFO_value(G.ca_extra, i);
    if (xi->x509 && !X509_STORE_add_cert(store, xi->x509)) {
      ERR_clear_error();   /* already there */
    }
  }
  return CURLE_OK;
}

/* Every content encoding this libcurl decodes, as CURLOPT_ACCEPT_ENCODING
** "" asks for: libcurl 7.88 lists its decoders (deflate and gzip with
** zlib, br with brotli, zstd with zstd) in that order, but builds that
** list anew for every handle (about 1.4 k instructions); this builds the
** same text once from the features libcurl reports. "" (libcurl's own
** list) when it has none of them. */
static const char *accept_encoding(void) {
  static char list[32];
  static int made;
  if (!made) {
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    if (v->features & CURL_VERSION_LIBZ) strcat(list, "deflate, gzip");
    if (v->features & CURL_VERSION_BROTLI) strcat(list, *list ? ", br" : "br");
    if (v->features & CURL_VERSION_ZSTD) strcat(list, *list ? ", zstd" : "zstd");
    made = 1;
  }
  return list;
}

/* A new easy handle with the options every request shares; start_transfer
** sets the rest. Owned by the transfer until transfer_release frees it.
** Handles are never reused: libcurl 7.88 keeps state across a handle's
** transfers that a server can turn against it. Its header store's last
** header (data->state.prevhead) is freed when the next transfer starts
** (Curl_pretransfer -> Curl_headers_cleanup) but the pointer is kept, so
** an HTTP/1 response whose first header line is folded (starts with a
** space or tab and holds a colon, which verify_header lets through on
** line 2) is "unfolded" into that freed block: a heap use-after-free and
** a realloc of a freed pointer (curl#11101, fixed in 8.1.0 by clearing
** prevhead in headers_init). No option and no call of the public API
** clears it (curl_easy_reset does not), and the line reaches the store
** before any callback sees it, so no reused handle is safe from a server
** that sends one; the reproducer is tests/fuzz/corpus/http/
** repro-curl-folded-header-uaf. The retry count is never reset either
** (curl#18926). Connections are kept by the multi handle, not by easy
** handles, so they are still reused. The read, seek and prereq callbacks
** are set by start_transfer, for the requests that need them. */
static CURL *get_easy(void) {
  CURL *easy = curl_easy_init();
  if (easy == NULL) return NULL;
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, accept_encoding());
  curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
  if (G.ca_dir) {
    curl_easy_setopt(easy, CURLOPT_CAINFO, NULL);
    curl_easy_setopt(easy, CURLOPT_CAPATH, G.ca_dir);
  }
  /* a libcurl on another TLS library has no SSL_CTX: the bundle replaces the roots */
  if (G.ca_extra && curl_easy_setopt(easy, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx) != CURLE_OK)
    curl_easy_setopt(easy, CURLOPT_CAINFO, getenv("GHLUA_CA_BUNDLE"));
  curl_easy_setopt(easy, CURLOPT_SHARE, G.share);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
  return easy;
}

/* Take t out of the multi and of G.active. Idempotent. */
static void detach(struct transfer *t) {
  if (!t->active) return;
  if (G.multi) curl_multi_remove_handle(G.multi, t->easy);
  if (t->prev) t->prev->next = t->next;
  else G.active = t->next;
  if (t->next) t->next->prev = t->prev;
  t->prev = t->next = NULL;
  t->active = 0;
  G.running--;
}

/* Free t's easy handle (see get_easy) and release its memory. Idempotent;
** used by __gc/__close and after a response is built. */
static void transfer_release(struct transfer *t) {
  if (t->easy) {
    detach(t);
    curl_easy_cleanup(t->easy);
    t->easy = NULL;
  }
  hlist_unref(t->hdrs);
  t->hdrs = NULL;
  ghl_buf_free(&t->body);
  ghl_buf_free(&t->head);
  ghl_buf_free(&t->reqbody);
  ghl_buf_free(&t->trace);
  ghl_buf_free(&t->scratch);
  if (t->method != t->mbuf) free(t->method);
  free(t->url);
  t->method = t->url = NULL;
}

static struct transfer *check_transfer(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, TRANSFER_MT);
}

static int transfer_gc(lua_State *L) {
  transfer_release(check_transfer(L, 1));
  return 0;
}

/* Drop a reference to header list h (NULL is fine); free it at zero. */
static void hlist_unref(struct hlist *h) {
  if (h == NULL || --h->refs > 0) return;
  curl_slist_free_all(h->list);
  free(h);
}

/* The header list for the lines key[0..n) ("Name: value\n" each): G.hlist
** when it holds the same lines (the usual case: a client sends the same
** headers on every request), else a new list, which becomes G.hlist. The
** caller owns the reference returned. Returns NULL when out of memory. */
static struct hlist *hlist_get(const char *key, size_t n) {
  struct hlist *h = G.hlist;
  char *p;
  if (h && h->n == n && memcmp(h->key, key, n) == 0) {
    h->refs++;
    return h;
  }
  h = malloc(sizeof *h + n + 1);
  if (h == NULL) return NULL;
  h->list = NULL;
  h->refs = 1;
  h->n = n;
  memcpy(h->key, key, n);
  h->key[n] = '\0';
  for (p = h->key; p < h->key + n; ) {                /* each line, NUL for its \n */
    char *eol = memchr(p, '\n', n - (size_t)(p - h->key));   /* every line ends in one */
    struct curl_slist *l;
    *eol = '\0';
    l = curl_slist_append(h->list, p);
    *eol = '\n';
    if (l == NULL) { hlist_unref(h); return NULL; }
    h->list = l;
    p = eol + 1;
  }
  hlist_unref(G.hlist);
  G.hlist = h;
  h->refs++;                                         /* G.hlist's */
  return h;
}

/* Add the line "name: value" to the request's header lines (t->scratch,
** made into the list by hlist_get) and to its trace. Returns 0, or -1 when
** out of memory (the line is then left out whole). */
static int add_header(struct transfer *t, const char *name, const char *value) {
  size_t at = t->scratch.len;
  if (ghl_buf_addstr(&t->scratch, name) != 0 || ghl_buf_add(&t->scratch, ": ", 2) != 0 ||
      ghl_buf_addstr(&t->scratch, value) != 0 || ghl_buf_add(&t->scratch, "\n", 1) != 0) {
    t->scratch.len = at;
    return -1;
  }
  if (G.trace) {
    ghl_buf_addstr(&t->trace, "> ");
    if (strcasecmp(name, "Authorization") == 0 && strncasecmp(value, "Bearer ", 7) == 0) {
      ghl_buf_addstr(&t->trace, name);
      ghl_buf_addstr(&t->trace, ": Bearer ");
      ghl_buf_addredacted(&t->trace, value + 7, strlen(value + 7));
    } else {
      ghl_buf_add(&t->trace, t->scratch.data + at, t->scratch.len - at - 1);
    }
    ghl_buf_addstr(&t->trace, "\n");
  }
  return 0;
}

/* Form bodies as the trace shows them: secrets redacted. */
static void trace_form(struct transfer *t) {
  static const char *secret[] = {"client_secret", "refresh_token", "code", "access_token", NULL};
  const char *p = t->reqbody.data;
  ghl_buf_addstr(&t->trace, "> ");
  while (p && *p) {
    const char *amp = strchr(p, '&'), *eq = strchr(p, '=');
    size_t len = amp ? (size_t)(amp - p) : strlen(p);
    int i, hide = 0;
    if (eq && eq < p + len)
      for (i = 0; secret[i]; i++)
        if ((size_t)(eq - p) == strlen(secret[i]) && strncmp(p, secret[i], eq - p) == 0) hide = 1;
    if (hide) {
      ghl_buf_add(&t->trace, p, eq - p + 1);
      ghl_buf_addredacted(&t->trace, eq + 1, len - (eq - p + 1));
    } else {
      ghl_buf_add(&t->trace, p, len);
    }
    p += len;
    if (*p == '&') ghl_buf_add(&t->trace, p++, 1);
  }
  ghl_buf_addstr(&t->trace, "\n");
}

/* Whether sending the method twice does no harm (RFC 9110 9.2.2, less
** TRACE): libcurl may then re-send it on a fresh connection. */
static int idempotent_method(const char *m) {
  static const char *const list[] = {"GET", "HEAD", "PUT", "DELETE", "OPTIONS", NULL};
  int i;
  for (i = 0; list[i]; i++)
    if (strcasecmp(m, list[i]) == 0) return 1;
  return 0;
}

/* Field k of the request table (index 1) as a boolean, or dflt when absent.
** Raises for another type. */
static int opt_bool(lua_State *L, const char *k, int dflt) {
  int v = dflt, ty = lua_getfield(L, 1, k);
  if (ty == LUA_TBOOLEAN) v = lua_toboolean(L, -1);
  else if (ty != LUA_TNIL) luaL_error(L, "http.request: '%s' must be a boolean, got %s", k, luaL_typename(L, -1));
  lua_pop(L, 1);
  return v;
}

/* Build a transfer from the request table at index 1 and add it to the multi.
** A json= body is written by ghl_json_encode (src/json.c). Stack: +1 (the
** transfer userdata) on success; on an expected failure (bad encoding, a
** json= value JSON cannot hold, unreadable CA bundle) returns 0 with nil,
** err pushed. Everything allocated belongs to
** the transfer, created first, so a raise on the way leaks nothing. */
static int start_transfer(lua_State *L) {
  struct transfer *t;
  const char *url, *ctype = NULL;
  double timeout;
  int ret, fresh, has_ua = 0, has_ctype = 0;
  luaL_checktype(L, 1, LUA_TTABLE);
  t = lua_newuserdatauv(L, sizeof *t, 0);            /* req t */
  memset(t, 0, sizeof *t);
  luaL_setmetatable(L, TRANSFER_MT);

  lua_getfield(L, 1, "url");
  url = lua_tostring(L, -1);
  if (url == NULL) return luaL_error(L, "http.request: 'url' must be a string");
  if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
    return luaL_error(L, "http.request: url must start with http:// or https:// (got '%s')", url);
  ghl_buf_addstr(&t->scratch, url);
  lua_pop(L, 1);
  if (lua_getfield(L, 1, "query") == LUA_TTABLE) {
    size_t base = t->scratch.len;
    ghl_buf_add(&t->scratch, strchr(t->scratch.data, '?') ? "&" : "?", 1);
    if (encode_pairs(L, -1, &t->scratch, "query") != 0) { lua_pushnil(L); lua_insert(L, -2); return 0; }
    if (t->scratch.len == base + 1) t->scratch.data[t->scratch.len = base] = '\0';   /* empty query */
  }
  lua_pop(L, 1);
  t->url = t->scratch.data;                          /* owned by t now */
  memset(&t->scratch, 0, sizeof t->scratch);

  if (!G.ca_checked && may_use_tls(t->url) && load_ca(L) != 0) { lua_pushnil(L); lua_insert(L, -2); return 0; }
  t->easy = get_easy();                              /* after load_ca: it reads G.ca_* */
  if (t->easy == NULL) return luaL_error(L, "out of memory");

  /* body: json= | form= | body= */
  if (lua_getfield(L, 1, "json") != LUA_TNIL) {
    if (ghl_json_encode(L, -1, &t->reqbody, 0) != 0) {   /* json err */
      lua_remove(L, -2);
      lua_pushnil(L);
      lua_insert(L, -2);
      return 0;
    }
    ctype = "application/json";
  }
  lua_pop(L, 1);
  if (lua_getfield(L, 1, "form") == LUA_TTABLE) {
    if (encode_pairs(L, -1, &t->reqbody, "form") != 0) { lua_pushnil(L); lua_insert(L, -2); return 0; }
    if (t->reqbody.data == NULL) ghl_buf_add(&t->reqbody, "", 0);
    ctype = "application/x-www-form-urlencoded";
  }
  lua_pop(L, 1);
  if (lua_getfield(L, 1, "body") == LUA_TSTRING) {
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    ghl_buf_add(&t->reqbody, s, n);
  }
  lua_pop(L, 1);

  {
    size_t mlen;
    const char *m;
    lua_getfield(L, 1, "method");
    m = luaL_optlstring(L, -1, t->reqbody.data ? "POST" : "GET", &mlen);
    if (mlen < sizeof t->mbuf) t->method = memcpy(t->mbuf, m, mlen + 1);
    else t->method = strdup(m);
    lua_pop(L, 1);
    if (t->method == NULL) return luaL_error(L, "out of memory");
  }
  t->idempotent = opt_bool(L, "idempotent", idempotent_method(t->method));
  fresh = opt_bool(L, "fresh", 0);
  if (t->trace.len == 0 && G.trace) {
    ghl_buf_addstr(&t->trace, "> ");
    ghl_buf_addstr(&t->trace, t->method);
    ghl_buf_addstr(&t->trace, " ");
    ghl_buf_addstr(&t->trace, t->url);
    ghl_buf_addstr(&t->trace, "\n");
  }

  if (lua_getfield(L, 1, "headers") == LUA_TTABLE) {
    lua_pushnil(L);
    while (lua_next(L, -2)) {
      const char *k = lua_tostring(L, -2), *v = lua_tostring(L, -1);
      if (lua_type(L, -2) != LUA_TSTRING || v == NULL)
        return luaL_error(L, "http.request: headers must map names to strings");
      if (strpbrk(k, "\r\n:") || strpbrk(v, "\r\n"))
        return luaL_error(L, "http.request: header '%s' contains a line break or colon", k);
      if (strcasecmp(k, "User-Agent") == 0) has_ua = 1;
      else if (strcasecmp(k, "Content-Type") == 0) has_ctype = 1;
      if (add_header(t, k, v) != 0) return luaL_error(L, "out of memory");
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  if (ctype && !has_ctype && add_header(t, "Content-Type", ctype) != 0) return luaL_error(L, "out of memory");
  /* a line of the list, not CURLOPT_USERAGENT, which libcurl formats anew
     for every transfer (about 4 k instructions more); not traced */
  if (!has_ua && ghl_buf_addstr(&t->scratch, "User-Agent: ghlua/" GHLUA_VERSION "\n") != 0)
    return luaL_error(L, "out of memory");
  /* libcurl adds "Expect: 100-continue" to large POSTs; a wasted round
     trip. "Expect:" with no value removes it; a request without a body
     never has it. */
  if (t->reqbody.data && ghl_buf_addstr(&t->scratch, "Expect:\n") != 0) return luaL_error(L, "out of memory");
  if (G.trace && t->reqbody.data) {
    if (ctype && strcmp(ctype, "application/x-www-form-urlencoded") == 0) {
      trace_form(t);
    } else {
      char line[64];
      snprintf(line, sizeof line, "> [%zu bytes of body]\n", t->reqbody.len);
      ghl_buf_addstr(&t->trace, line);
    }
  }
  t->hdrs = hlist_get(t->scratch.data ? t->scratch.data : "", t->scratch.len);
  ghl_buf_free(&t->scratch);
  if (t->hdrs == NULL) return luaL_error(L, "out of memory");

  lua_getfield(L, 1, "timeout");
  timeout = luaL_optnumber(L, -1, 60);
  lua_pop(L, 1);
  t->timeout = timeout;

  curl_easy_setopt(t->easy, CURLOPT_URL, t->url);
  curl_easy_setopt(t->easy, CURLOPT_HTTPHEADER, t->hdrs->list);
  curl_easy_setopt(t->easy, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
  curl_easy_setopt(t->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)(timeout < 10 ? timeout * 1000 : 10000));
  curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->errbuf);
  curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
  curl_easy_setopt(t->easy, CURLOPT_HEADERDATA, t);
  curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
  /* wait for a connection that may multiplex (HTTP/2, so TLS only); over
     cleartext that wait would queue behind a slow request in flight (off
     is libcurl's default) */
  if (strncmp(t->url, "https://", 8) == 0) curl_easy_setopt(t->easy, CURLOPT_PIPEWAIT, 1L);
  /* a proxy's CONNECT names us too (the list's User-Agent line wins at the server) */
  if (proxy_env(1)) curl_easy_setopt(t->easy, CURLOPT_USERAGENT, "ghlua/" GHLUA_VERSION);
  if (strcmp(t->method, "GET") == 0 && t->reqbody.data == NULL) {
    /* done */
  } else if (strcmp(t->method, "HEAD") == 0) {
    curl_easy_setopt(t->easy, CURLOPT_NOBODY, 1L);
  } else {
    if (strcmp(t->method, "POST") != 0) curl_easy_setopt(t->easy, CURLOPT_CUSTOMREQUEST, t->method);
    if (t->reqbody.data || strcmp(t->method, "POST") == 0) {
      curl_easy_setopt(t->easy, CURLOPT_POST, 1L);
      if (t->idempotent || t->reqbody.len == 0) {
        curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, t->reqbody.data ? t->reqbody.data : "");
      } else {
        /* through on_read: libcurl cannot rewind it to send it again */
        curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(t->easy, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(t->easy, CURLOPT_READDATA, t);
        curl_easy_setopt(t->easy, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(t->easy, CURLOPT_SEEKDATA, t);
      }
      curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)t->reqbody.len);
    }
  }
  /* nothing to rewind: libcurl would re-send it as it is; on_prereq refuses */
  t->once = !t->idempotent && t->reqbody.len == 0;
  if (t->once) {
    curl_easy_setopt(t->easy, CURLOPT_PREREQFUNCTION, on_prereq);
    curl_easy_setopt(t->easy, CURLOPT_PREREQDATA, t);
  }
  if (fresh) curl_easy_setopt(t->easy, CURLOPT_FRESH_CONNECT, 1L);
  ret = curl_multi_add_handle(G.multi, t->easy);
  if (ret != CURLM_OK) return luaL_error(L, "http: %s", curl_multi_strerror(ret));
  t->active = 1;
  t->next = G.active;
  if (G.active) G.active->prev = t;
  G.active = t;
  G.running++;
  return 1;
}

/* The registry's tables of started transfers: INFLIGHT maps a transfer
** (light userdata) to its userdata until it finishes (so it stays alive);
** FINISHED lists those finished since the last http.perform. */
static char INFLIGHT, FINISHED;

/* Move finished transfers out of the multi. Those started with http.start
** (t->tracked) go from INFLIGHT to the FINISHED list for http.perform to
** hand out. */
static void collect(lua_State *L) {
  CURLMsg *msg;
  int left, fin = 0;
  lua_Integer n = 0;
  while ((msg = curl_multi_info_read(G.multi, &left)) != NULL) {
    struct transfer *t = NULL;
    if (msg->msg != CURLMSG_DONE) continue;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
    t->result = msg->data.result;
    t->done = 1;
    detach(t);
    if (!t->tracked) continue;
    t->tracked = 0;
    if (fin == 0) {
      lua_rawgetp(L, LUA_REGISTRYINDEX, &INFLIGHT);
      lua_rawgetp(L, LUA_REGISTRYINDEX, &FINISHED);          /* inflight fin */
      fin = lua_gettop(L);
      n = (lua_Integer)lua_rawlen(L, fin);
    }
    lua_rawgetp(L, fin - 1, t);                              /* inflight fin t */
    lua_rawseti(L, fin, ++n);
    lua_pushnil(L);
    lua_rawsetp(L, fin - 1, t);
  }
  if (fin) lua_pop(L, 2);
}

/* Forget t in the inflight table and the finished list. */
static void untrack(lua_State *L, struct transfer *t) {
  lua_Integer i, j, n;
  t->tracked = 0;
  lua_rawgetp(L, LUA_REGISTRYINDEX, &INFLIGHT);
  lua_pushnil(L);
  lua_rawsetp(L, -2, t);
  lua_pop(L, 1);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &FINISHED);             /* fin */
  n = (lua_Integer)lua_rawlen(L, -1);
  for (i = j = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    if (lua_touserdata(L, -1) == t) { lua_pop(L, 1); continue; }
    lua_rawseti(L, -2, j++);
  }
  for (; j <= n; j++) { lua_pushnil(L); lua_rawseti(L, -2, j); }
  lua_pop(L, 1);
}

/* Ctrl-C: close every transfer in flight, so none of them runs on (or is
** driven to completion by the next request). Each is done with result
** CURLE_ABORTED_BY_CALLBACK; its response() gives kind "interrupted". */
static void abort_all(lua_State *L) {
  struct transfer *t;
  while ((t = G.active) != NULL) {
    detach(t);
    t->done = 1;
    t->aborted = 1;
    t->result = CURLE_ABORTED_BY_CALLBACK;
    untrack(L, t);
  }
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Drive the multi for at most `seconds`: returns as soon as a transfer
** finished or the time ran out. Returns 0, or -1 on Ctrl-C, after closing
** every transfer in flight (abort_all). */
static int drive(lua_State *L, double seconds) {
  double deadline = now() + seconds;
  int still = 0, numfds;
  for (;;) {
    double left;
    curl_multi_perform(G.multi, &still);
    if (still < G.running) return 0;
    if (ghl_interrupted) { ghl_interrupted = 0; abort_all(L); return -1; }
    left = deadline - now();
    if (left <= 0) return 0;
    curl_multi_poll(G.multi, NULL, 0, left > 0.1 ? 100 : (int)(left * 1000) + 1, &numfds);
  }
}

/* ---- Responses ---- */

static const char *error_kind(CURLcode rc) {
  switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: return "timeout";
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT: return "connect";
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_SHUTDOWN_FAILED: return "tls";
    case CURLE_FILESIZE_EXCEEDED: return "too_large";
    case CURLE_ABORTED_BY_CALLBACK: return "interrupted";
    default: return "network";
  }
}

/* Parse the raw header block p[0..n) into a table of lower-case names;
** repeated headers are joined with ", ". Stack: +1. */
static void push_headers(lua_State *L, const char *p, size_t n) {
  const char *end = p + n;
  lua_createtable(L, 0, 16);
  if (p == NULL) return;
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *colon, *v;
    size_t vn;
    if (eol == NULL) eol = end;
    colon = memchr(p, ':', (size_t)(eol - p));
    if (colon && strncmp(p, "HTTP/", 5) != 0) {
      luaL_Buffer b;
      size_t i, k = (size_t)(colon - p);
      char *name = luaL_buffinitsize(L, &b, k);
      for (i = 0; i < k; i++) name[i] = (char)((p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i]);
      luaL_pushresultsize(&b, k);                    /* h name */
      v = header_value(colon, eol, &vn);
      lua_pushvalue(L, -1);
      if (lua_rawget(L, -3) == LUA_TSTRING) {        /* h name old */
        lua_pushliteral(L, ", ");
        lua_pushlstring(L, v, vn);
        lua_concat(L, 3);
      } else {
        lua_pop(L, 1);
        lua_pushlstring(L, v, vn);
      }
      lua_rawset(L, -3);
    }
    p = eol + 1;
  }
}

/* Find header name (len k, any case) in the raw block p[0..n): the value of
** its first occurrence, trimmed, in *v (*vn bytes), and the position after
** that line (to look for repeats). Returns NULL when absent. */
static const char *find_header(const char *p, size_t n, const char *name, size_t k,
                               const char **v, size_t *vn) {
  const char *end = p + n;
  while (p && p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (eol == NULL) eol = end;
    if ((size_t)(eol - p) > k && p[k] == ':' && strncasecmp(p, name, k) == 0) {
      *v = header_value(p + k, eol, vn);
      return eol < end ? eol + 1 : end;
    }
    p = eol + 1;
  }
  return NULL;
}

/* The raw header block of response table idx, kept by push_response in a
** weak table (HEADS) until resp.headers is first read: a string of the
** header bytes followed by their struct rlindex. Stack: +1 (the string, or
** nil for a response built elsewhere). Returns the header bytes (*n of
** them) and copies the index into *rl when given, or NULL. */
static char HEADS;
static const char *push_raw_head(lua_State *L, int idx, size_t *n, struct rlindex *rl) {
  const char *raw;
  idx = lua_absindex(L, idx);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &HEADS);
  lua_pushvalue(L, idx);
  lua_rawget(L, -2);
  lua_remove(L, -2);
  if (lua_type(L, -1) != LUA_TSTRING) return NULL;
  raw = lua_tolstring(L, -1, n);
  *n -= sizeof *rl;                                  /* push_response put it there */
  if (rl) memcpy(rl, raw + *n, sizeof *rl);
  return raw;
}

/* Push header `name` of response idx (any case; repeats joined with ", ")
** or nil: from resp.headers when that table exists (it was read, or the
** response was made in Lua), else straight from the raw block. Stack: +1. */
static void push_header(lua_State *L, int idx, const char *name, size_t k) {
  size_t n, vn, parts = 0;
  const char *raw, *v, *at;
  idx = lua_absindex(L, idx);
  lua_pushliteral(L, "headers");
  if (lua_rawget(L, idx) == LUA_TTABLE) {
    luaL_Buffer b;
    size_t i;
    char *low = luaL_buffinitsize(L, &b, k);
    for (i = 0; i < k; i++) low[i] = (char)tolower((unsigned char)name[i]);
    luaL_pushresultsize(&b, k);
    lua_rawget(L, -2);
    lua_remove(L, -2);
    return;
  }
  lua_pop(L, 1);
  if ((raw = push_raw_head(L, idx, &n, NULL)) == NULL) return;   /* nil */
  for (at = raw; (at = find_header(at, n - (size_t)(at - raw), name, k, &v, &vn)) != NULL; parts++) {
    if (parts) lua_pushliteral(L, ", ");
    lua_pushlstring(L, v, vn);
  }
  if (parts == 0) lua_pushnil(L);
  else lua_concat(L, (int)(parts * 2 - 1));
  lua_remove(L, -2);
}

/* resp:header(name) -> value | nil: one header, any case, without building
** resp.headers. */
static int response_header(lua_State *L) {
  size_t k;
  const char *name;
  luaL_checktype(L, 1, LUA_TTABLE);
  name = luaL_checklstring(L, 2, &k);
  push_header(L, 1, name, k);
  return 1;
}

/* Push the header value v[0..vn) as a number, or nil when it is not one:
** up to 18 digits directly, anything else through lua_stringtonumber on a
** NUL-terminated copy, as from a Lua string. Stack: +1. */
static void push_header_number(lua_State *L, const char *v, size_t vn) {
  char buf[64];
  size_t i;
  lua_Integer d = 0;
  for (i = 0; i < vn && i < 18 && v[i] >= '0' && v[i] <= '9'; i++) d = d * 10 + (v[i] - '0');
  if (vn > 0 && i == vn) {                           /* plain decimal digits: what Lua reads */
    lua_pushinteger(L, d);
    return;
  }
  if (vn < sizeof buf) {
    memcpy(buf, v, vn);
    buf[vn] = '\0';
    if (lua_stringtonumber(L, buf) == 0) lua_pushnil(L);
    return;
  }
  lua_pushlstring(L, v, vn);
  if (lua_stringtonumber(L, lua_tostring(L, -1)) == 0) lua_pushnil(L);
  lua_remove(L, -2);
}

/* resp:ratelimit() -> max, remaining, interval_ms, daily_remaining,
** daily_limit: HighLevel's X-RateLimit-* headers as numbers (nil for one
** that is absent or not a number), read in C without building
** resp.headers: on_header noted where each value is (struct rlindex). A
** name seen more than once is read as resp:header() joins it; so is every
** name when resp.headers exists. */
static int response_ratelimit(lua_State *L) {
  struct rlindex rl;
  const char *raw = NULL;
  size_t n = 0;
  int i, fallback;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_pushliteral(L, "headers");
  fallback = lua_rawget(L, 1) == LUA_TTABLE;
  lua_pop(L, 1);
  if (!fallback && (raw = push_raw_head(L, 1, &n, &rl)) == NULL) {   /* stays at 2 */
    lua_pop(L, 1);
    memset(&rl, 0, sizeof rl);
  }
  for (i = 0; i < 5; i++) {
    if (fallback || rl.count[i] > 1) {               /* as resp:header() reads it */
      const char *s;
      push_header(L, 1, RL_NAMES[i], RL_LENS[i]);
      s = lua_tostring(L, -1);
      if (s == NULL || lua_stringtonumber(L, s) == 0) lua_pushnil(L);
      lua_remove(L, -2);
    } else if (rl.count[i]) {
      push_header_number(L, raw + rl.off[i], rl.len[i]);
    } else {
      lua_pushnil(L);
    }
  }
  return 5;
}

/* __index of responses: resp.headers is built from the raw block on first
** read and kept in the response; other keys are the methods. */
static int response_index(lua_State *L) {
  size_t n;
  const char *k = lua_tolstring(L, 2, &n);
  if (lua_type(L, 2) == LUA_TSTRING && n == 7 && memcmp(k, "headers", 7) == 0) {
    const char *raw = push_raw_head(L, 1, &n, NULL);
    if (raw == NULL) return 1;                       /* nil */
    push_headers(L, raw, n);
    lua_pushvalue(L, -1);
    lua_setfield(L, 1, "headers");                   /* no __newindex: a raw set */
    lua_rawgetp(L, LUA_REGISTRYINDEX, &HEADS);       /* the block is no longer needed */
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    return 1;
  }
  lua_pushvalue(L, 2);
  lua_rawget(L, lua_upvalueindex(1));
  return 1;
}

static void print_trace(struct transfer *t, long status, double secs) {
  const char *p;
  if (!G.trace) return;
  fputs(t->trace.data ? t->trace.data : "", stderr);
  if (t->result != CURLE_OK) {
    fprintf(stderr, "< failed after %.0f ms: %s\n", secs * 1000,
            t->errbuf[0] ? t->errbuf : curl_easy_strerror(t->result));
    return;
  }
  fprintf(stderr, "< %ld (%.0f ms, %zu bytes)\n", status, secs * 1000, t->body.len);
  for (p = t->head.data; p && *p;) {
    const char *eol = strchr(p, '\n');
    size_t n = eol ? (size_t)(eol - p) : strlen(p);
    while (n && (p[n - 1] == '\r')) n--;
    if (n && strncmp(p, "HTTP/", 5) != 0) fprintf(stderr, "< %.*s\n", (int)n, p);
    p = eol ? eol + 1 : p + strlen(p);
  }
  fflush(stderr);
}

/* ---- Transport failures, in words ---- */

/* Push the origin of url: scheme://host[:port], without user info. Stack:
** +1. *path gets where the path starts (after the authority). */
static void push_origin(lua_State *L, const char *url, const char **path) {
  const char *p = strstr(url, "://"), *a, *e, *at;
  if (p == NULL) { lua_pushstring(L, url); *path = url + strlen(url); return; }
  a = p + 3;
  e = a + strcspn(a, "/?#");
  for (at = a; at < e; at++)
    if (*at == '@') a = at + 1;                   /* user:password@ never shown */
  lua_pushlstring(L, url, (size_t)(p + 3 - url));
  lua_pushlstring(L, a, (size_t)(e - a));
  lua_concat(L, 2);
  *path = e;
}

/* Why transfer t failed: a word for code (cause) and the bare words of a
** message about the server at origin (pushed). The words are the same
** whether or not the request may have been applied; push_failure adds
** that. Stack: +1. */
static const char *push_reason(lua_State *L, struct transfer *t, const char *origin) {
  const char *eb = t->errbuf[0] ? t->errbuf : curl_easy_strerror(t->result);
  long oserr = 0;
  curl_off_t connected = 0;
  char secs[32];
  curl_easy_getinfo(t->easy, CURLINFO_OS_ERRNO, &oserr);
  curl_easy_getinfo(t->easy, CURLINFO_CONNECT_TIME_T, &connected);
  if (t->too_large) {
    lua_pushfstring(L, "the answer from %s is larger than the 512 MB limit", origin);
    return "too_large";
  }
  if (t->refused || t->result == CURLE_SEND_FAIL_REWIND) {
    lua_pushfstring(L, "the connection to %s closed before an answer", origin);
    return "closed";
  }
  switch (t->result) {
    case CURLE_COULDNT_CONNECT:
      if (oserr == ECONNREFUSED) {
        lua_pushfstring(L, "cannot reach %s (connection refused)", origin);
        return "refused";
      }
      if (oserr != 0) {
        char why[128];
        snprintf(why, sizeof why, "%s", strerror((int)oserr));
        why[0] = (char)tolower((unsigned char)why[0]);
        lua_pushfstring(L, "cannot reach %s (%s)", origin, why);
      } else {
        lua_pushfstring(L, "cannot reach %s (%s)", origin, eb);
      }
      return "unreachable";
    case CURLE_COULDNT_RESOLVE_HOST:
      lua_pushfstring(L, "cannot reach %s (host name not found)", origin);
      return "resolve";
    case CURLE_COULDNT_RESOLVE_PROXY:
      lua_pushfstring(L, "cannot reach %s (%s)", origin, eb);
      return "resolve_proxy";
    case CURLE_OPERATION_TIMEDOUT:
      if (connected == 0) {
        snprintf(secs, sizeof secs, "%g", t->timeout < 10 ? t->timeout : 10);
        lua_pushfstring(L, "cannot reach %s (no connection within %s s, the connect timeout)", origin, secs);
        return "connect_timeout";
      }
      snprintf(secs, sizeof secs, "%g", t->timeout);
      lua_pushfstring(L, "no complete answer from %s within %s s (the request timeout)", origin, secs);
      return "timeout";
    case CURLE_PEER_FAILED_VERIFICATION: {
      const char *why = eb;
      if (strncmp(why, "SSL certificate problem: ", 25) == 0) why += 25;
      lua_pushfstring(L, "the TLS certificate of %s does not verify (%s)", origin, why);
      return "tls_verify";
    }
    case CURLE_GOT_NOTHING:
      lua_pushfstring(L, "the connection to %s closed before an answer", origin);
      return "closed";
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
      lua_pushfstring(L, "the connection to %s closed before an answer (%s)", origin, eb);
      return "closed";
    case CURLE_PARTIAL_FILE:
      lua_pushfstring(L, "the answer from %s was cut short (%s)", origin, eb);
      return "partial";
    default:
      if (strcmp(error_kind(t->result), "tls") == 0) {
        lua_pushfstring(L, "the TLS handshake with %s failed (%s)", origin, eb);
        return "tls";
      }
      lua_pushfstring(L, "the request to %s failed (%s)", origin, eb);
      return "other";
  }
}

/* Push nil and the ghl.error for failed transfer t (kind as error_kind),
** named once: where = "METHOD /path", message about the origin, never the
** whole URL twice. Fields: kind, message, reason (the message's words
** without what they mean for the request), cause (refused, unreachable,
** resolve, resolve_proxy, connect_timeout, timeout, tls_verify, tls,
** closed, partial, too_large, other), origin, method, url, where, and for
** a request that went out and was not sent again code "outcome_unknown"
** and a hint. Stack: +2. */
static void push_failure(lua_State *L, struct transfer *t) {
  long sent = 0;
  const char *kind = t->too_large ? "too_large" : t->refused ? "network" : error_kind(t->result);
  const char *path, *origin, *cause = NULL, *reason = NULL;
  int unknown;
  curl_easy_getinfo(t->easy, CURLINFO_REQUEST_SIZE, &sent);
  if (sent > 0 && strcmp(kind, "connect") == 0) kind = "network";   /* "connect": nothing sent */
  unknown = !(t->idempotent || sent == 0);
  push_origin(L, t->url, &path);                                       /* origin */
  origin = lua_tostring(L, -1);
  if (!t->aborted) {
    cause = push_reason(L, t, origin);                                 /* origin reason */
    reason = lua_tostring(L, -1);
  }
  if (t->aborted)
    ghl_fail(L, kind, unknown ? "request interrupted; it may have been applied" : "request interrupted");
  else if (!unknown)
    ghl_fail(L, kind, "%s", reason);
  else if (t->result == CURLE_SEND_FAIL_REWIND || t->refused)
    ghl_fail(L, kind, "%s; the request may have been applied, so it was not sent again", reason);
  else
    ghl_fail(L, kind, "%s; the request may have been applied", reason);
  /* origin [reason] nil err */
  if (unknown) {
    lua_pushliteral(L, "outcome_unknown");
    lua_setfield(L, -2, "code");
    lua_pushliteral(L, "check whether it took effect before sending it again");
    lua_setfield(L, -2, "hint");
  }
  if (cause) {
    lua_pushstring(L, cause);
    lua_setfield(L, -2, "cause");
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "reason");
    lua_rotate(L, -4, 2);                          /* nil err origin reason */
    lua_pop(L, 1);
  } else {
    lua_rotate(L, -3, 2);                          /* nil err origin */
  }
  lua_setfield(L, -2, "origin");
  if (cause && (strcmp(cause, "timeout") == 0 || strcmp(cause, "connect_timeout") == 0)) {
    lua_pushnumber(L, strcmp(cause, "timeout") == 0 || t->timeout < 10 ? t->timeout : 10);
    lua_setfield(L, -2, "timeout");
  }
  lua_pushstring(L, t->method);
  lua_setfield(L, -2, "method");
  lua_pushstring(L, t->url);
  lua_setfield(L, -2, "url");
  lua_pushfstring(L, "%s ", t->method);
  if (*path == '\0' || *path == '?' || *path == '#') lua_pushliteral(L, "/");
  else lua_pushlstring(L, path, strcspn(path, "?#"));
  lua_concat(L, 2);
  lua_setfield(L, -2, "where");
}

/* Push the response of a finished transfer (or nil, err) and release the
** transfer's resources. Returns the number of values pushed. */
static int push_response(lua_State *L, struct transfer *t) {
  long status = 0;
  curl_off_t us = 0;
  double secs;
  curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(t->easy, CURLINFO_TOTAL_TIME_T, &us);
  secs = (double)us / 1e6;
  print_trace(t, status, secs);
  if (t->result != CURLE_OK) {
    push_failure(L, t);
    transfer_release(t);
    return 2;
  }
  lua_createtable(L, 0, 8);
  lua_pushinteger(L, status);
  lua_setfield(L, -2, "status");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &HEADS);          /* resp heads */
  lua_pushvalue(L, -2);
  if (ghl_buf_add(&t->head, &t->rl, sizeof t->rl) != 0)   /* see push_raw_head */
    return luaL_error(L, "out of memory");
  lua_pushlstring(L, t->head.data, t->head.len);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  lua_pushlstring(L, t->body.data ? t->body.data : "", t->body.len);
  lua_setfield(L, -2, "body");
  lua_pushstring(L, t->method);
  lua_setfield(L, -2, "method");
  lua_pushstring(L, t->url);
  lua_setfield(L, -2, "url");
  lua_pushnumber(L, secs);
  lua_setfield(L, -2, "time");
  curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &status);
  lua_pushinteger(L, status);                        /* 0: connection reused */
  lua_setfield(L, -2, "connects");
  luaL_setmetatable(L, RESPONSE_MT);
  transfer_release(t);
  return 1;
}

/* ---- Lua API ---- */

static void track(lua_State *L, struct transfer *t, int idx) {
  idx = lua_absindex(L, idx);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &INFLIGHT);
  lua_pushvalue(L, idx);
  lua_rawsetp(L, -2, t);
  lua_pop(L, 1);
  t->tracked = 1;
}

/* request{method, url, query, headers, json|form|body, timeout, idempotent,
** fresh} -> response | nil, err. Blocks, but other started transfers
** progress; Ctrl-C closes them all (abort_all) and returns kind
** "interrupted". */
static int http_request(lua_State *L) {
  struct transfer *t;
  if (!start_transfer(L)) return 2;
  t = lua_touserdata(L, -1);
  while (!t->done) {
    if (drive(L, 1.0) != 0) break;   /* t was aborted too */
    collect(L);
  }
  return push_response(L, t);
}

/* start{...} -> transfer | nil, err. The transfer runs as http.perform (or a
** blocking request) drives the multi. */
static int http_start(lua_State *L) {
  struct transfer *t;
  if (!start_transfer(L)) return 2;
  t = lua_touserdata(L, -1);
  track(L, t, -1);
  return 1;
}

/* perform([seconds=1]) -> array of transfers that finished, possibly empty.
** Returns nil, err(kind "interrupted") on Ctrl-C, having closed every
** transfer in flight. */
static int http_perform(lua_State *L) {
  double secs = luaL_optnumber(L, 1, 1.0);
  if (G.running > 0 && drive(L, secs) != 0)
    return ghl_fail(L, "interrupted", "requests interrupted");
  collect(L);
  lua_rawgetp(L, LUA_REGISTRYINDEX, &FINISHED);
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &FINISHED);
  return 1;
}

/* pending() -> the number of transfers in flight (started, not finished). */
static int http_pending(lua_State *L) {
  lua_pushinteger(L, G.running);
  return 1;
}

/* t:close(), __close: stop the transfer if it still runs (its connection is
** closed), release it, and forget it; its response is gone. */
static int transfer_close(lua_State *L) {
  struct transfer *t = check_transfer(L, 1);
  transfer_release(t);
  t->done = 1;
  untrack(L, t);
  return 0;
}

/* t:response() -> response | nil, err; raises if not finished yet. */
static int transfer_response(lua_State *L) {
  struct transfer *t = check_transfer(L, 1);
  if (!t->done) return luaL_error(L, "transfer has not finished; call http.perform first");
  if (t->easy == NULL) return luaL_error(L, "response already taken, or the transfer was closed");
  return push_response(L, t);
}

static int transfer_done(lua_State *L) {
  lua_pushboolean(L, check_transfer(L, 1)->done);
  return 1;
}

/* resp:json() -> value | nil, err(kind "decode"). */
static int response_json(lua_State *L) {
  size_t n = 0;
  const char *ctype, *why;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  lua_getfield(L, 1, "body");                        /* resp body */
  lua_tolstring(L, 2, &n);
  lua_pushvalue(L, lua_upvalueindex(1));             /* ghl.json.decode */
  lua_pushvalue(L, 2);
  lua_call(L, 1, 2);                                 /* resp body v msg */
  if (!lua_isnil(L, 3) || lua_isnil(L, 4)) { lua_settop(L, 3); return 1; }
  why = lua_tostring(L, 4);
  lua_getfield(L, 1, "headers");
  lua_getfield(L, -1, "content-type");
  ctype = lua_tostring(L, -1);
  lua_getfield(L, 1, "status");
  lua_getfield(L, 1, "method");
  lua_getfield(L, 1, "url");
  if (n == 0)
    ghl_fail(L, "decode", "%s %s: empty reply where JSON was expected (HTTP %s)",
             lua_tostring(L, -2), lua_tostring(L, -1), lua_tostring(L, -3));
  else if (ctype && strstr(ctype, "html"))
    ghl_fail(L, "decode", "%s %s: got an HTML page, not JSON (HTTP %s); the URL or a proxy in between is wrong",
             lua_tostring(L, -2), lua_tostring(L, -1), lua_tostring(L, -3));
  else
    ghl_fail(L, "decode", "%s %s: reply is not valid JSON (HTTP %s, %d bytes): %s",
             lua_tostring(L, -2), lua_tostring(L, -1), lua_tostring(L, -3), (int)n, why ? why : "?");
  return 2;
}

/* trace([on]) -> whether tracing is on; sets it when given. */
static int http_trace(lua_State *L) {
  if (!lua_isnoneornil(L, 1)) G.trace = lua_toboolean(L, 1);
  lua_pushboolean(L, G.trace);
  return 1;
}

/* encode(table) -> "a=1&b=x%20y" (sorted keys), or nil, err. */
static int http_encode(lua_State *L) {
  ghl_buf *b;
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  b = newbuf(L);                                     /* t box: freed by the GC on a raise */
  if (encode_pairs(L, 1, b, "query") != 0) { lua_pushnil(L); lua_insert(L, -2); return 2; }
  lua_pushlstring(L, b->data ? b->data : "", b->len);
  ghl_buf_free(b);
  return 1;
}

/* parse_url(url) -> {scheme, host, port (number), path, query, fragment,
** user, password} (absent parts are nil), or nil, err: libcurl's own URL
** parser, so a URL is read the way the transfer will read it. */
static int http_parse_url(lua_State *L) {
  static const struct { CURLUPart part; const char *name; } parts[] = {
    {CURLUPART_SCHEME, "scheme"}, {CURLUPART_HOST, "host"}, {CURLUPART_PATH, "path"},
    {CURLUPART_QUERY, "query"}, {CURLUPART_FRAGMENT, "fragment"}, {CURLUPART_USER, "user"},
    {CURLUPART_PASSWORD, "password"}, {CURLUPART_OPTIONS, "options"},
  };
  const char *url = luaL_checkstring(L, 1);
  CURLU *u = curl_url();
  CURLUcode rc;
  char *v;
  size_t i;
  if (u == NULL) return ghl_fail(L, "url", "out of memory");
  rc = curl_url_set(u, CURLUPART_URL, url, 0);
  if (rc != CURLUE_OK) {
    curl_url_cleanup(u);
    return ghl_fail(L, "url", "not a URL libcurl accepts (%s)", curl_url_strerror(rc));
  }
  lua_createtable(L, 0, 8);
  for (i = 0; i < sizeof parts / sizeof parts[0]; i++) {
    if (curl_url_get(u, parts[i].part, &v, 0) == CURLUE_OK) {
      lua_pushstring(L, v);
      curl_free(v);
      lua_setfield(L, -2, parts[i].name);
    }
  }
  if (curl_url_get(u, CURLUPART_PORT, &v, CURLU_DEFAULT_PORT) == CURLUE_OK) {
    lua_pushinteger(L, strtol(v, NULL, 10));
    curl_free(v);
    lua_setfield(L, -2, "port");
  }
  curl_url_cleanup(u);
  return 1;
}

/* __gc of the module sentinel: tear down the multi at lua_close. */
static int state_gc(lua_State *L) {
  (void)L;
  if (G.multi) curl_multi_cleanup(G.multi);
  if (G.share) curl_share_cleanup(G.share);
  G.multi = NULL;
  G.share = NULL;
  if (G.ca_extra) sk_X509_INFO_pop_free(G.ca_extra, X509_INFO_free);
  G.ca_extra = NULL;
  G.ca_checked = 0;
  hlist_unref(G.hlist);
  G.hlist = NULL;
  return 0;
}

static const luaL_Reg transfer_methods[] = {
  {"response", transfer_response},
  {"done", transfer_done},
  {"close", transfer_close},
  {NULL, NULL}
};

static const luaL_Reg http_funcs[] = {
  {"request", http_request},
  {"start", http_start},
  {"perform", http_perform},
  {"pending", http_pending},
  {"trace", http_trace},
  {"encode", http_encode},
  {"parse_url", http_parse_url},
  {NULL, NULL}
};

int luaopen_ghl_http(lua_State *L) {
  const char *tr = getenv("GHLUA_TRACE");
  if (G.multi == NULL) {
    G.multi = curl_multi_init();
    G.share = curl_share_init();
    curl_share_setopt(G.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(G.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    curl_multi_setopt(G.multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    /* keep idle connections for bursts of concurrent requests */
    curl_multi_setopt(G.multi, CURLMOPT_MAXCONNECTS, 64L);
    lua_newuserdatauv(L, 1, 0);                     /* sentinel */
    lua_newtable(L);
    lua_pushcfunction(L, state_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, "ghl.http.state");
  }
  if (tr && *tr && strcmp(tr, "0") != 0) G.trace = 1;
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &INFLIGHT);
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &FINISHED);
  luaL_newmetatable(L, TRANSFER_MT);
  lua_pushcfunction(L, transfer_gc);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, transfer_close);
  lua_setfield(L, -2, "__close");
  luaL_newlib(L, transfer_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newmetatable(L, BUF_MT);
  lua_pushcfunction(L, buf_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newmetatable(L, RESPONSE_MT);
  lua_newtable(L);
  luaL_requiref(L, "cjson.safe", luaopen_cjson_safe, 0);
  lua_getfield(L, -1, "decode");
  lua_remove(L, -2);
  lua_pushcclosure(L, ghl_json_decode, 1);           /* ghl.json.decode (src/json.c) */
  lua_pushcclosure(L, response_json, 1);             /* upvalue: ghl.json.decode */
  lua_setfield(L, -2, "json");
  lua_pushcfunction(L, response_header);
  lua_setfield(L, -2, "header");
  lua_pushcfunction(L, response_ratelimit);
  lua_setfield(L, -2, "ratelimit");
  lua_pushcclosure(L, response_index, 1);            /* upvalue: the methods */
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  /* response -> raw header block. Weak values too: the values are strings,
     which a weak table never drops, so this only spares the collector
     treating the table as an ephemeron one (traversed again and again at
     each cycle's end). */
  lua_newtable(L);
  lua_createtable(L, 0, 1);
  lua_pushliteral(L, "kv");
  lua_setfield(L, -2, "__mode");
  lua_setmetatable(L, -2);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &HEADS);
  luaL_newlib(L, http_funcs);
  return 1;
}
