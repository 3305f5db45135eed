/*
** fastjson: the issue 17 decoder experiment (a), bench-only.
**
** A JSON decoder that builds the same Lua values as lua-cjson 2.1.0's
** decode (numbers are floats, null is a NULL light userdata, the last of
** duplicate keys wins, strings pass through bytes as they are), but
**  - creates every table at its final size: a container's elements are
**    parsed onto the Lua stack first, then moved into a table made by
**    lua_createtable with the exact count (in chunks of CHUNK for very
**    large containers, so the stack stays bounded);
**  - caches object keys: a small direct-mapped cache (per call) of the
**    key strings already made, pushed again with lua_rawgeti instead of
**    being hashed and interned once more by lua_pushlstring;
**  - pushes strings without escapes straight from the input (no copy);
**  - reads plain integers of up to 15 digits without strtod.
**
** It is exact or it gives up: on anything outside the common subset it
** is sure of (an error, a NUL byte, an escape or number form lua-cjson
** treats in its own way, nesting deeper than 1000) it drops what it built
** and calls lua-cjson's decode (upvalue 1) on the same text, so the value
** or the error message is lua-cjson's own. Differential fuzzing
** (fuzz_decode.c) checks that the two agree.
*/
#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fastjson.h"

#define CHUNK 2048        /* stack values per container before flushing */
#define MAXDEPTH 1000     /* lua-cjson's default decode_max_depth */
#define KCACHE 256        /* key cache entries (direct mapped) */
#define KMAXLEN 40        /* Lua's short strings (LUAI_MAXSHORTLEN) */

enum { OK = 0, BAIL = -1 };

struct kent { const char *s; size_t len; };

struct dec {
  lua_State *L;
  const unsigned char *p, *end;
  int depth;
  int cache;                       /* stack index of the key cache table */
  int scratch;                     /* stack index of the scratch userdata */
  unsigned char *buf;              /* its bytes */
  size_t bufcap;
  struct kent keys[KCACHE];
};

static inline const unsigned char *skip_ws(const unsigned char *p) {
  while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') p++;
  return p;
}

static int value(struct dec *d);

/* Ensure room for n more bytes in the scratch buffer (a userdata at a fixed
** stack slot, replaced by a bigger one when needed; the GC owns it). */
static unsigned char *scratch(struct dec *d, size_t used, size_t n) {
  if (used + n > d->bufcap) {
    size_t cap = d->bufcap * 2;
    unsigned char *nb;
    while (cap < used + n) cap *= 2;
    nb = lua_newuserdatauv(d->L, cap, 0);
    memcpy(nb, d->buf, used);
    lua_replace(d->L, d->scratch);
    d->buf = nb;
    d->bufcap = cap;
  }
  return d->buf;
}

static int hex4(const unsigned char *p) {
  int v = 0, i;
  for (i = 0; i < 4; i++) {
    int c = p[i];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= c - '0';
    else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') v |= (c | 0x20) - 'a' + 10;
    else return -1;
  }
  return v;
}

/* The string at d->p (after its opening quote); pushes it, or the cached
** key string when iskey. */
static int string(struct dec *d, int iskey) {
  const unsigned char *s = d->p, *p = s;
  size_t used;
  for (;;) {
    unsigned char c = *p;
    if (c == '"') break;
    if (c == '\\') goto escaped;
    if (c == 0) return BAIL;     /* end of input or a NUL byte */
    p++;
  }
  d->p = p + 1;
  if (iskey && (size_t)(p - s) <= KMAXLEN) {
    size_t len = (size_t)(p - s);
    unsigned h = len ? ((unsigned)len * 31u + s[0] * 7u + s[len - 1] + s[len >> 1] * 13u) & (KCACHE - 1) : 0;
    struct kent *k = &d->keys[h];
    if (k->s && k->len == len && memcmp(k->s, s, len) == 0) {
      lua_rawgeti(d->L, d->cache, (lua_Integer)h + 1);
    } else {
      k->s = lua_pushlstring(d->L, (const char *)s, len);
      k->len = len;
      lua_pushvalue(d->L, -1);
      lua_rawseti(d->L, d->cache, (lua_Integer)h + 1);
    }
    return OK;
  }
  lua_pushlstring(d->L, (const char *)s, (size_t)(p - s));
  return OK;

escaped:
  used = (size_t)(p - s);
  scratch(d, 0, used + 8);
  memcpy(d->buf, s, used);
  for (;;) {
    unsigned char c = *p;
    unsigned char *b = scratch(d, used, 8);
    if (c == '"') break;
    if (c == 0) return BAIL;
    if (c != '\\') { b[used++] = c; p++; continue; }
    c = p[1];
    switch (c) {
      case '"': case '\\': case '/': b[used++] = c; p += 2; break;
      case 'b': b[used++] = '\b'; p += 2; break;
      case 'f': b[used++] = '\f'; p += 2; break;
      case 'n': b[used++] = '\n'; p += 2; break;
      case 'r': b[used++] = '\r'; p += 2; break;
      case 't': b[used++] = '\t'; p += 2; break;
      case 'u': {
        long cp = hex4(p + 2);
        if (cp < 0) return BAIL;
        p += 6;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return BAIL;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          long lo;
          if (p[0] != '\\' || p[1] != 'u') return BAIL;
          lo = hex4(p + 2);
          if (lo < 0xDC00 || lo > 0xDFFF) return BAIL;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          p += 6;
        }
        if (cp < 0x80) b[used++] = (unsigned char)cp;
        else if (cp < 0x800) {
          b[used++] = (unsigned char)(0xC0 | (cp >> 6));
          b[used++] = (unsigned char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
          b[used++] = (unsigned char)(0xE0 | (cp >> 12));
          b[used++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
          b[used++] = (unsigned char)(0x80 | (cp & 0x3F));
        } else {
          b[used++] = (unsigned char)(0xF0 | (cp >> 18));
          b[used++] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
          b[used++] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
          b[used++] = (unsigned char)(0x80 | (cp & 0x3F));
        }
        break;
      }
      default: return BAIL;
    }
  }
  d->p = p + 1;
  lua_pushlstring(d->L, (const char *)d->buf, used);
  return OK;
}

/* A number at d->p: '-' or a digit. Plain integers of up to 15 digits
** followed by a delimiter are read here (exact in a double, so equal to
** strtod's result); every other form goes to strtod, as lua-cjson does,
** which also decides where the number ends. */
static int number(struct dec *d) {
  const unsigned char *p = d->p;
  int neg = 0, n = 0;
  uint64_t u = 0;
  if (*p == '-') { neg = 1; p++; }
  if (*p >= '1' && *p <= '9') {
    while (*p >= '0' && *p <= '9' && n < 16) { u = u * 10 + (uint64_t)(*p - '0'); p++; n++; }
  } else if (*p == '0') {
    p++; n = 1;
  }
  if (n > 0 && n <= 15 && (*p == ',' || *p == ']' || *p == '}' || *p == ' ' || *p == '\n' ||
                           *p == '\r' || *p == '\t' || (*p == 0 && p == d->end))) {
    double v = (double)u;
    lua_pushnumber(d->L, neg ? -v : v);
    d->p = p;
    return OK;
  }
  {
    char *e;
    double v = strtod((const char *)d->p, &e);
    if ((const unsigned char *)e == d->p) return BAIL;
    lua_pushnumber(d->L, v);
    d->p = (const unsigned char *)e;
    return OK;
  }
}

/* Move the n values (or n key/value pairs when pairs) at the top of the
** stack into the table at t, or into a new table of exactly that size
** when t == 0 (which is then left where the first value was). Returns the
** table's index. */
static int flush(lua_State *L, int t, int n, int pairs, lua_Integer first) {
  int top = lua_gettop(L), i;
  if (!pairs) {
    if (!t) {
      lua_createtable(L, n, 0);
      lua_rotate(L, top - n + 1, 1);
      t = top - n + 1;
    }
    for (i = n; i >= 1; i--) lua_rawseti(L, t, first + i - 1);
  } else {
    int base = top - 2 * n;
    if (!t) {
      lua_createtable(L, 0, n);
      lua_rotate(L, base + 1, 1);
      t = base + 1;
      base++;
    }
    for (i = 1; i <= n; i++) {          /* in order: the last duplicate wins */
      lua_pushvalue(L, base + 2 * i - 1);
      lua_pushvalue(L, base + 2 * i);
      lua_rawset(L, t);
    }
    lua_settop(L, base);
  }
  return t;
}

static int array(struct dec *d) {
  lua_State *L = d->L;
  int t = 0, n = 0;
  lua_Integer done = 0;
  const unsigned char *p = skip_ws(d->p);
  if (*p == ']') { d->p = p + 1; lua_createtable(L, 0, 0); return OK; }
  d->p = p;
  for (;;) {
    if (!lua_checkstack(L, 4)) return BAIL;
    if (value(d)) return BAIL;
    if (++n == CHUNK) { t = flush(L, t, n, 0, done + 1); done += n; n = 0; }
    p = skip_ws(d->p);
    if (*p == ',') { d->p = skip_ws(p + 1); continue; }
    if (*p == ']') { d->p = p + 1; break; }
    return BAIL;
  }
  if (n || !t) flush(L, t, n, 0, done + 1);
  return OK;
}

static int object(struct dec *d) {
  lua_State *L = d->L;
  int t = 0, n = 0;
  const unsigned char *p = skip_ws(d->p);
  if (*p == '}') { d->p = p + 1; lua_createtable(L, 0, 0); return OK; }
  for (;;) {
    if (*p != '"') return BAIL;
    if (!lua_checkstack(L, 6)) return BAIL;
    d->p = p + 1;
    if (string(d, 1)) return BAIL;
    p = skip_ws(d->p);
    if (*p != ':') return BAIL;
    d->p = skip_ws(p + 1);
    if (value(d)) return BAIL;
    if (++n == CHUNK) { t = flush(L, t, n, 1, 0); n = 0; }
    p = skip_ws(d->p);
    if (*p == ',') { p = skip_ws(p + 1); continue; }
    if (*p == '}') { d->p = p + 1; break; }
    return BAIL;
  }
  if (n || !t) flush(L, t, n, 1, 0);
  return OK;
}

/* One value at d->p (whitespace skipped), pushed. */
static int value(struct dec *d) {
  const unsigned char *p = d->p;
  switch (*p) {
    case '{': case '[': {
      int r;
      if (++d->depth > MAXDEPTH) return BAIL;
      d->p = p + 1;
      r = *p == '{' ? object(d) : array(d);
      d->depth--;
      return r;
    }
    case '"': d->p = p + 1; return string(d, 0);
    case 't':
      if (memcmp(p, "true", 4)) return BAIL;
      lua_pushboolean(d->L, 1); d->p = p + 4; return OK;
    case 'f':
      if (memcmp(p, "false", 5)) return BAIL;
      lua_pushboolean(d->L, 0); d->p = p + 5; return OK;
    case 'n':
      if (memcmp(p, "null", 4)) return BAIL;
      lua_pushlightuserdata(d->L, NULL); d->p = p + 4; return OK;
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
      return number(d);
    default: return BAIL;
  }
}

/* decode(text) -> value, as upvalue 1 (a lua-cjson decode) would return
** it; any text the fast path is not sure of goes to upvalue 1. The text is
** NUL-terminated (a Lua string), which the scanners rely on: a 0 byte
** stops them and is read as "give up" unless it is the end. */
int fastjson_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checkstring(L, 1);
  int base = lua_gettop(L), r;
  struct dec *d;
  const unsigned char *p;
  (void)luaL_checklstring(L, 1, &len);
  if (base != 1) goto fallback;
  d = lua_newuserdatauv(L, sizeof *d + 64, 0);     /* 2: state + scratch */
  memset(d->keys, 0, sizeof d->keys);
  d->L = L;
  d->p = (const unsigned char *)s;
  d->end = d->p + len;
  d->depth = 0;
  d->buf = (unsigned char *)(d + 1);
  d->bufcap = 64;
  lua_pushnil(L);                                     /* 3: scratch slot */
  d->scratch = 3;
  lua_createtable(L, KCACHE, 0);                      /* 4: key cache */
  d->cache = 4;
  d->p = skip_ws(d->p);
  r = value(d);
  if (r == OK) {
    p = skip_ws(d->p);
    if (p == d->end) return 1;
  }
  lua_settop(L, base);
fallback:
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}
