/*
** Shared pieces of the reference programs (bench/ref_*.c): what a careful C
** programmer writes with libcurl alone, to measure ghlua against. Each
** program takes URL and a count on the command line, reads the CA bundle
** from $BENCH_CA (and a CA directory from $BENCH_CAPATH, whose roots
** OpenSSL loads on demand) and the bearer token from $BENCH_TOKEN, sends the same
** headers as ghl.client (Authorization, Version, Accept, Accept-Encoding),
** checks every answer (HTTP 200, a body), and exits 1 with a message on the
** first failure, so a timing never hides a broken run.
**
** Built with -DREF_DECODE (ref_decode, ref_multi_decode), each checked body
** is also decoded by lua-cjson into a Lua table, cjson.decode called from C
** on a bare lua_State (no Lua code runs). That is the work `c:get` does
** with its answer, done with lua-cjson (the decoder ghlua's own was
** measured against), so a ratio against these measures what ghlua adds to
** the same work.
*/
#ifndef BENCH_REF_H
#define BENCH_REF_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

/* A growable response body (curl's getinmemory pattern). */
struct body {
  char *data;
  size_t len, cap;
};

/* CURLOPT_WRITEFUNCTION: append to the body; returning 0 aborts on OOM. */
static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  struct body *b = ud;
  size_t len = size * n;
  if (b->len + len + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    char *d;
    while (cap < b->len + len + 1) cap *= 2;
    d = realloc(b->data, cap);
    if (d == NULL) return 0;
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, len);
  b->len += len;
  b->data[b->len] = '\0';
  return len;
}

static void die(const char *what, const char *why) {
  fprintf(stderr, "ref: %s: %s\n", what, why);
  exit(1);
}

/* The request headers every reference sends; owned by the caller
** (curl_slist_free_all). */
static struct curl_slist *ref_headers(void) {
  static char auth[512];
  const char *token = getenv("BENCH_TOKEN");
  struct curl_slist *h = NULL;
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", token ? token : "bench");
  h = curl_slist_append(h, auth);
  h = curl_slist_append(h, "Version: 2021-07-28");
  h = curl_slist_append(h, "Accept: application/json");
  return h;
}

/* Set the options of one GET of url on easy, writing into b. The handle
** keeps these options, so a reused handle is set up once. */
static void ref_setup(CURL *easy, const char *url, struct curl_slist *hdrs, struct body *b) {
  const char *ca = getenv("BENCH_CA"), *capath = getenv("BENCH_CAPATH");
  curl_easy_setopt(easy, CURLOPT_URL, url);
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, b);
  curl_easy_setopt(easy, CURLOPT_PRIVATE, b);
  if (ca && *ca) curl_easy_setopt(easy, CURLOPT_CAINFO, ca);
  if (capath && *capath) curl_easy_setopt(easy, CURLOPT_CAPATH, capath);
}

#ifdef REF_DECODE
#include <lauxlib.h>
#include <lua.h>

int luaopen_cjson(lua_State *L);

/* Decode b with cjson.decode into a table holding a "contact" table or a
** "contacts" list, then drop it (the GC frees it as it would in ghlua).
** The state is made at the first call and lives until exit. */
static void ref_decode_body(const struct body *b) {
  static lua_State *L;
  if (L == NULL) {
    L = luaL_newstate();
    if (L == NULL) die("decode", "out of memory");
    luaopen_cjson(L);                                /* cjson */
    lua_getfield(L, -1, "decode");                   /* cjson decode */
  }
  lua_pushvalue(L, -1);
  lua_pushlstring(L, b->data, b->len);
  if (lua_pcall(L, 1, 1, 0) != LUA_OK) die("decode", lua_tostring(L, -1));
  if (lua_type(L, -1) != LUA_TTABLE) die("decode", "the answer is not an object");
  if (lua_getfield(L, -1, "contact") != LUA_TTABLE && lua_getfield(L, -2, "contacts") != LUA_TTABLE)
    die("decode", "the answer holds no contact and no contacts");
  lua_settop(L, 2);                                  /* cjson decode */
}
#endif

/* Check a finished transfer: curl result, HTTP 200, a non-empty body
** (decoded too, built with REF_DECODE). */
static void ref_check(CURL *easy, CURLcode rc, const struct body *b) {
  long status = 0;
  if (rc != CURLE_OK) die("transfer", curl_easy_strerror(rc));
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200) die("transfer", "HTTP status is not 200");
  if (b->len == 0) die("transfer", "empty body");
#ifdef REF_DECODE
  ref_decode_body(b);
#endif
}

/* argv[2] as a positive count. */
static long ref_count(const char *s) {
  char *end;
  long n = strtol(s, &end, 10);
  if (*end || n <= 0) die("count", "expected a positive integer");
  return n;
}

#endif
