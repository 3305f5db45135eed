/*
** ghl.json: the one JSON encoder of ghlua (the library, the apps, the
** simulator, ghl.http's json= bodies and ghl.jq), and its decoder, which
** decodes as lua-cjson does (and falls back to it).
**   json.encode(value [, opts]) -> text | nil, err (ghl.error kind "encode")
**   json.decode(text)           -> value | nil, message (what cjson.safe.decode
**                               returns, faster: see "Decoding" below)
**   json.null                   cjson.null (a NULL light userdata)
**   json.array([t])             t (or a new table) marked as a JSON array
**   json.object([t [, order]])  t marked as a JSON object; with order, a
**                               list of keys, those keys come first in
**                               that order (the rest follow, sorted)
**   json.array_mt, json.object_mt  the two markers (metatables)
** opts: empty ("object", the default, or "array": how an unmarked empty
** table is written).
**
** What it writes:
** - Tables: a metatable field __jsontype ("array" or "object") decides
**   (json.array_mt, json.object_mt and ghl.jq.array_mt carry it). Else a
**   table whose keys are exactly 1..n is an array and any other is an
**   object; an empty one follows opts.empty. A marked array holds nulls in
**   its holes (up to its largest key), unless it is excessively sparse
**   (largest key > 2 * count + 10, lua-cjson's rule), which is refused. Object keys are strings or numbers
**   (numbers written as below, as text); they come out sorted bytewise, so
**   the text is the same on every run, except the keys a __jsonorder list
**   puts first (json.object(t, order)).
** - Numbers: integers exactly; floats with an integral value up to 2^53 as
**   integers ("3", not "3.0"), others with %.14g (what lua-cjson writes)
**   when that reads back as the same double, else %.16g when it does, else
**   %.17g, which always does (%.15g is not tried: each try costs a printf
**   and a strtod). NaN and infinities are refused.
** - Strings: '"', '\' and control characters (U+0000..U+001F and DEL)
**   escaped; '/' is not (lua-cjson writes "\/", JSON does not need it).
**   Bytes are written as they are: text that is not UTF-8 stays as given,
**   as lua-cjson does (ghl.http checks query and form text, not bodies).
** - nil and json.null are null. Functions, userdata, threads, boolean
**   keys, cycles and nesting deeper than 1000 are refused.
** Failures are returned (nil, err), never raised, except running out of
** the state's memory: the text and the key scratch are made with the state's
** allocator (a sandboxed recipe's cap counts them), and a refusal is Lua's
** own "not enough memory". The same C function serves ghl.http
** (src/http.c) and ghl.jq.encode (src/jq.c).
*/
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua-cjson.h>

#include "buf.h"
#include "error.h"
#include "json.h"

int luaopen_cjson_safe(lua_State *L);  /* not declared by lua-cjson.h */

#define MAX_DEPTH 1000
#define SCRATCH_MT "ghl.json.scratch"
#define ORDERS_KEY "ghl.json.orders"     /* registry: order list -> metatable (weak) */

/* One key of an object being written. A string key points into the
** string the table holds (the table is not changed while it is written).
** The values wait on the Lua stack while the keys are sorted, as long as
** the stack can grow (a million slots); past that they are looked up. */
typedef struct {
  const char *s;      /* the key text, or NULL for a number key (see num) */
  size_t n;
  int slot;           /* the stack index of its value, or 0: look it up */
  int isint;          /* number keys: integer or float, for the lookup */
  lua_Integer i;
  lua_Number d;
  char num[40];       /* a number key's text */
} key_ent;

/* The scratch space of one encode, a userdata. The output and the keys
** live in userdata boxes it holds (user values 1 and 2), replaced by bigger
** ones as they grow: the Lua state's allocator makes them (a sandbox's cap
** counts them, and refusing one is Lua's own "not enough memory", raised
** after its emergency collection), and the GC owns them, so nothing leaks
** when that is raised. The collector is stopped while the encoder runs
** (emergency collections still happen): a step could run a finalizer that
** empties the table being written and free the key strings sc->keys points
** to. The scratch is a to-be-closed value that restarts it, even on a raise. */
typedef struct {
  key_ent *keys;                    /* keys of the objects on the path, a stack */
  size_t nkeys, cap;
  const void *path[MAX_DEPTH + 2];  /* the tables being written, outermost first */
  ghl_buf own;                      /* the output (data: in user value 1) */
  int restart;                      /* 1: this encode stopped the collector */
} scratch;

typedef struct {
  lua_State *L;
  scratch *sc;
  int scidx;                        /* the scratch's stack index */
  ghl_buf *out;                     /* &sc->own */
  int empty_array;
  int failed;
  char msg[200];
} enc;

/* ---- Output ---- */

static int fail(enc *e, const char *fmt, ...) {
  va_list ap;
  if (!e->failed) {
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    e->failed = 1;
  }
  return -1;
}

/* A new box of cap bytes holding the first used bytes of old, as the
** scratch's user value uv (the old box is left to the GC). Raises "not
** enough memory" (LUA_ERRMEM) when the state's allocator refuses. */
static void *regrow(enc *e, int uv, const void *old, size_t used, size_t cap) {
  lua_State *L = e->L;
  void *p;
  if (!lua_checkstack(L, 1)) { fail(e, "nested too deep for the Lua stack"); return NULL; }
  p = lua_newuserdatauv(L, cap, 0);
  if (used) memcpy(p, old, used);
  lua_setiuservalue(L, e->scidx, uv);
  return p;
}

static int put(enc *e, const char *p, size_t n) {
  ghl_buf *b = e->out;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    char *d;
    while (cap < b->len + n + 1) {
      if (cap > (size_t)LUA_MAXINTEGER / 4) return fail(e, "the text would be too large");
      cap *= 2;
    }
    if ((d = regrow(e, 1, b->data, b->len, cap)) == NULL) return -1;
    b->data = d;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

#define PUTLIT(e, s) put(e, s, sizeof(s) - 1)

/* 1: escape as \u00XX; other non-zero: the letter after '\'. */
static const unsigned char ESC[256] = {
  ['\b'] = 'b', ['\t'] = 't', ['\n'] = 'n', ['\f'] = 'f', ['\r'] = 'r',
  [0] = 1, [1] = 1, [2] = 1, [3] = 1, [4] = 1, [5] = 1, [6] = 1, [7] = 1,
  [11] = 1, [14] = 1, [15] = 1, [16] = 1, [17] = 1, [18] = 1, [19] = 1,
  [20] = 1, [21] = 1, [22] = 1, [23] = 1, [24] = 1, [25] = 1, [26] = 1,
  [27] = 1, [28] = 1, [29] = 1, [30] = 1, [31] = 1, [127] = 1,
  ['"'] = '"', ['\\'] = '\\',
};

static int put_string(enc *e, const char *s, size_t n) {
  size_t i, run = 0;
  if (PUTLIT(e, "\"")) return -1;
  for (i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i], x = ESC[c];
    char esc[8];
    if (x == 0) continue;
    if (i > run && put(e, s + run, i - run)) return -1;
    run = i + 1;
    if (x == 1) {
      snprintf(esc, sizeof esc, "\\u%04x", c);
      if (put(e, esc, 6)) return -1;
    } else {
      esc[0] = '\\';
      esc[1] = (char)x;
      if (put(e, esc, 2)) return -1;
    }
  }
  if (n > run && put(e, s + run, n - run)) return -1;
  return PUTLIT(e, "\"");
}

/* The decimal text of v into buf (at least 24 bytes); returns its length. */
static size_t fmt_integer(lua_Integer v, char *buf) {
  char tmp[24];
  size_t n = 0, k = 0;
  lua_Unsigned u = v < 0 ? (lua_Unsigned)0 - (lua_Unsigned)v : (lua_Unsigned)v;
  do { tmp[n++] = (char)('0' + u % 10); u /= 10; } while (u);
  if (v < 0) buf[k++] = '-';
  while (n) buf[k++] = tmp[--n];
  buf[k] = '\0';
  return k;
}

/* The JSON text of the float d into buf (40 bytes); returns its length, or
** 0 for NaN and the infinities. */
static size_t fmt_float(lua_Number d, char *buf) {
  if (isnan(d) || isinf(d)) return 0;
  if (d == floor(d) && fabs(d) <= 9007199254740992.0) {
    if (d == 0 && signbit(d)) { memcpy(buf, "-0", 3); return 2; }
    return fmt_integer((lua_Integer)d, buf);
  }
  snprintf(buf, 40, "%.14g", (double)d);            /* lua-cjson's text, when exact */
  if (strtod(buf, NULL) != (double)d) {
    snprintf(buf, 40, "%.16g", (double)d);
    if (strtod(buf, NULL) != (double)d) snprintf(buf, 40, "%.17g", (double)d);
  }
  return strlen(buf);
}

/* ---- Values ---- */

static int put_value(enc *e, int idx, int depth);

static int key_cmp(const void *a, const void *b) {
  const key_ent *x = a, *y = b;
  const char *xs = x->s ? x->s : x->num, *ys = y->s ? y->s : y->num;
  size_t n = x->n < y->n ? x->n : y->n;
  int c = memcmp(xs, ys, n);
  if (c) return c;
  return x->n < y->n ? -1 : x->n > y->n;
}

/* Push the value of the key k of the table at t (raw). Stack: +1. */
static void push_keyed(lua_State *L, int t, const key_ent *k) {
  if (k->s) lua_pushlstring(L, k->s, k->n);
  else if (k->isint) lua_pushinteger(L, k->i);
  else lua_pushnumber(L, k->d);
  lua_rawget(L, t);
}

/* Is key k among the strings of the order list at index ord (0: none),
** in its first n entries (-1: all)? */
static int in_order(lua_State *L, int ord, const key_ent *k, lua_Integer n) {
  lua_Integer i;
  if (ord == 0 || k->s == NULL) return 0;
  if (n < 0) n = (lua_Integer)lua_rawlen(L, ord);
  for (i = 1; i <= n; i++) {
    size_t len;
    const char *s;
    int hit;
    lua_rawgeti(L, ord, i);
    s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
    hit = s && len == k->n && memcmp(s, k->s, len) == 0;
    lua_pop(L, 1);
    if (hit) return 1;
  }
  return 0;
}

/* Write the table at t (absolute) as an object; its keys are sc->keys[base ..
** base + count), sorted here. ord: the index of an order list, or 0. */
static int put_object(enc *e, int t, size_t base, size_t count, int ord, int depth) {
  lua_State *L = e->L;
  size_t i;
  int first = 1;
  if (PUTLIT(e, "{")) return -1;
  if (ord) {
    lua_Integer j, n = (lua_Integer)lua_rawlen(L, ord);
    for (j = 1; j <= n; j++) {
      size_t len;
      const char *s;
      lua_rawgeti(L, ord, j);                        /* key */
      if (lua_type(L, -1) != LUA_TSTRING) { lua_pop(L, 1); continue; }
      s = lua_tolstring(L, -1, &len);
      {
        key_ent k;                                   /* written already: a repeat */
        k.s = s;
        k.n = len;
        if (in_order(L, ord, &k, j - 1)) { lua_pop(L, 1); continue; }
      }
      lua_pushvalue(L, -1);
      lua_rawget(L, t);                              /* key value */
      if (lua_isnil(L, -1)) { lua_pop(L, 2); continue; }
      if ((!first && PUTLIT(e, ",")) || put_string(e, s, len) || PUTLIT(e, ":") ||
          put_value(e, lua_gettop(L), depth + 1)) { lua_pop(L, 2); return -1; }
      lua_pop(L, 2);
      first = 0;
    }
  }
  if (count > 1) qsort(e->sc->keys + base, count, sizeof(key_ent), key_cmp);
  for (i = 0; i < count; i++) {
    key_ent *k = &e->sc->keys[base + i];             /* re-read: nested objects may move keys */
    if (in_order(L, ord, k, -1)) continue;
    if ((!first && PUTLIT(e, ",")) || put_string(e, k->s ? k->s : k->num, k->n) || PUTLIT(e, ":"))
      return -1;
    if (k->slot) {
      if (put_value(e, k->slot, depth + 1)) return -1;
    } else {
      push_keyed(L, t, k);
      if (put_value(e, lua_gettop(L), depth + 1)) { lua_pop(L, 1); return -1; }
      lua_pop(L, 1);
    }
    first = 0;
  }
  return PUTLIT(e, "}");
}

/* Write the table at t (absolute): find its kind, collect its keys. */
static int put_table(enc *e, int t, int depth) {
  lua_State *L = e->L;
  scratch *sc = e->sc;
  const void *self = lua_topointer(L, t);
  int kind = 0, ord = 0, ret, d, top;                 /* kind: 'a' or 'o' */
  size_t base = sc->nkeys, count = 0;
  lua_Integer max = 0, i;
  int seq = 1;
  if (depth >= MAX_DEPTH) return fail(e, "nested more than %d levels deep", MAX_DEPTH);
  for (d = 0; d < depth; d++)
    if (sc->path[d] == self) return fail(e, "a table contains itself (a cycle)");
  sc->path[depth] = self;
  if (!lua_checkstack(L, 6)) return fail(e, "nested too deep for the Lua stack");
  if (luaL_getmetafield(L, t, "__jsontype") != LUA_TNIL) {
    const char *ty = lua_tostring(L, -1);
    kind = ty && strcmp(ty, "array") == 0 ? 'a' : ty && strcmp(ty, "object") == 0 ? 'o' : 0;
    lua_pop(L, 1);
  }
  if (kind != 'a' && luaL_getmetafield(L, t, "__jsonorder") != LUA_TNIL) {
    if (lua_type(L, -1) == LUA_TTABLE) { ord = lua_gettop(L); kind = 'o'; }
    else lua_pop(L, 1);
  }
  top = lua_gettop(L);
  if (kind != 'o') {                                /* an array? count, check */
    lua_pushnil(L);
    while (lua_next(L, t)) {                         /* key value */
      lua_pop(L, 1);
      if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
        if (lua_tointeger(L, -1) > max) max = lua_tointeger(L, -1);
        count++;
      } else if (kind == 'a') {
        lua_pop(L, 1);
        ret = fail(e, "a table marked as an array has a key that is not a positive integer");
        goto done;
      } else {
        lua_pop(L, 1);                               /* an object: stop here */
        seq = 0;
        break;
      }
    }
    if (kind == 0) kind = seq && count == 0 ? (e->empty_array ? 'a' : 'o')
                        : (seq && (lua_Integer)count == max) ? 'a' : 'o';
    if (kind == 'a' && max > 2 * (lua_Integer)count + 10) {   /* lua-cjson's rule */
      ret = fail(e, "excessively sparse array (largest index %lld, %lld values)",
                 (long long)max, (long long)count);
      goto done;
    }
  }
  if (kind == 'o') {                                 /* collect the keys */
    int keep = 1;
    count = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {                         /* [ord] values... key value */
      key_ent *k;
      int kt = lua_type(L, -2), slot = 0;
      if (keep && lua_checkstack(L, 4)) {
        lua_insert(L, -2);                           /* values... value key */
        slot = lua_gettop(L) - 1;
      } else {
        keep = 0;
        lua_pop(L, 1);
      }
      if (kt != LUA_TSTRING && kt != LUA_TNUMBER) {
        lua_pop(L, 1);
        ret = fail(e, "cannot encode a table key of type %s", lua_typename(L, kt));
        goto done;
      }
      if (sc->nkeys == sc->cap) {
        size_t cap = sc->cap ? sc->cap * 2 : 64;
        key_ent *nk = regrow(e, 2, sc->keys, sc->nkeys * sizeof *nk, cap * sizeof *nk);
        if (nk == NULL) { lua_pop(L, 1); ret = -1; goto done; }
        sc->keys = nk;
        sc->cap = cap;
      }
      k = &sc->keys[sc->nkeys++];
      k->slot = slot;
      count++;
      if (kt == LUA_TSTRING) {
        k->s = lua_tolstring(L, -1, &k->n);
      } else if (lua_isinteger(L, -1)) {
        k->s = NULL;
        k->isint = 1;
        k->i = lua_tointeger(L, -1);
        k->n = fmt_integer(k->i, k->num);
      } else {
        k->s = NULL;
        k->isint = 0;
        k->d = lua_tonumber(L, -1);
        k->n = fmt_float(k->d, k->num);
        if (k->n == 0) { lua_pop(L, 1); ret = fail(e, "cannot encode a table key that is NaN or infinite"); goto done; }
      }
    }
  }
  if (kind == 'o') {
    ret = put_object(e, t, base, count, ord, depth);
  } else {
    ret = PUTLIT(e, "[");
    for (i = 1; ret == 0 && i <= max; i++) {
      lua_rawgeti(L, t, i);
      ret = (i > 1 && PUTLIT(e, ",")) || put_value(e, lua_gettop(L), depth + 1) ? -1 : 0;
      lua_pop(L, 1);
    }
    if (ret == 0) ret = PUTLIT(e, "]");
  }
done:
  sc->nkeys = base;
  lua_settop(L, top);
  if (ord) lua_remove(L, ord);
  return ret;
}

static int put_value(enc *e, int idx, int depth) {
  lua_State *L = e->L;
  char num[40];
  size_t n;
  switch (lua_type(L, idx)) {
  case LUA_TNIL: return PUTLIT(e, "null");
  case LUA_TBOOLEAN: return lua_toboolean(L, idx) ? PUTLIT(e, "true") : PUTLIT(e, "false");
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) {
      n = fmt_integer(lua_tointeger(L, idx), num);
    } else {
      n = fmt_float(lua_tonumber(L, idx), num);
      if (n == 0) return fail(e, "cannot encode %s (JSON has no such number)",
                              isnan(lua_tonumber(L, idx)) ? "NaN" : "an infinite number");
    }
    return put(e, num, n);
  case LUA_TSTRING: {
    const char *s = lua_tolstring(L, idx, &n);
    return put_string(e, s, n);
  }
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL) return PUTLIT(e, "null");   /* cjson.null */
    return fail(e, "cannot encode a light userdata");
  case LUA_TTABLE:
    return put_table(e, lua_absindex(L, idx), depth);
  default:
    return fail(e, "cannot encode a %s", luaL_typename(L, idx));
  }
}

/* ---- Entry points ---- */

/* __close: restart the collector if this encode stopped it. */
static int scratch_close(lua_State *L) {
  scratch *sc = lua_touserdata(L, 1);
  if (sc && sc->restart) {
    sc->restart = 0;
    lua_gc(L, LUA_GCRESTART);
  }
  return 0;
}

/* A new scratch, pushed as a to-be-closed value; stops the collector (see
** scratch). The GC owns it and its boxes. */
static scratch *new_scratch(lua_State *L) {
  scratch *sc = lua_newuserdatauv(L, sizeof *sc, 2);
  memset(sc, 0, sizeof *sc);
  if (luaL_newmetatable(L, SCRATCH_MT)) {
    lua_pushcfunction(L, scratch_close);
    lua_setfield(L, -2, "__close");
  }
  lua_setmetatable(L, -2);
  lua_toclose(L, -1);
  if (lua_gc(L, LUA_GCISRUNNING) == 1) {             /* -1: inside a collection */
    lua_gc(L, LUA_GCSTOP);
    sc->restart = 1;
  }
  return sc;
}

/* Encode the value at idx into sc->own (sc at the top of the stack).
** Returns 0; or -1 with the error pushed. */
static int encode_into(lua_State *L, int idx, scratch *sc, int empty_array) {
  enc e;
  memset(&e, 0, sizeof e);
  e.L = L;
  e.sc = sc;
  e.scidx = lua_gettop(L);
  e.out = &sc->own;
  e.empty_array = empty_array;
  if (put_value(&e, idx, 0) == 0) return 0;
  ghl_pusherror(L, "encode", "JSON: %s", e.msg);
  return -1;
}

/* See json.h. The text is made in the state's memory, then copied to out.
** The scratch userdata is pushed and removed here. */
int ghl_json_encode(lua_State *L, int idx, ghl_buf *out, int empty_array) {
  scratch *sc;
  int ret;
  idx = lua_absindex(L, idx);
  sc = new_scratch(L);                               /* sc */
  ret = encode_into(L, idx, sc, empty_array);        /* sc [err] */
  if (ret == 0 && ghl_buf_add(out, sc->own.data, sc->own.len) != 0) {
    ghl_pusherror(L, "encode", "JSON: out of memory");
    ret = -1;
  }
  lua_closeslot(L, ret == 0 ? -1 : -2);
  lua_remove(L, ret == 0 ? -1 : -2);
  return ret;
}

/* encode(value [, opts]) -> text | nil, err. */
static int json_encode(lua_State *L) {
  int empty_array = 0;
  scratch *sc;
  luaL_checkany(L, 1);
  if (!lua_isnoneornil(L, 2)) {
    static const char *const empties[] = {"object", "array", NULL};
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_getfield(L, 2, "empty");
    empty_array = luaL_checkoption(L, -1, "object", empties);
    lua_pop(L, 1);
  }
  lua_settop(L, 1);
  sc = new_scratch(L);                               /* value sc */
  if (encode_into(L, 1, sc, empty_array) != 0) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  lua_pushlstring(L, sc->own.data, sc->own.len);
  return 1;
}

/* array([t]) -> t marked as a JSON array. */
static int json_array(lua_State *L) {
  if (lua_isnoneornil(L, 1)) { lua_settop(L, 0); lua_newtable(L); }
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  luaL_setmetatable(L, GHL_JSON_ARRAY_MT);
  return 1;
}

/* object([t [, order]]) -> t marked as a JSON object; with order (a list of
** keys), a metatable per order list (cached, weakly) that puts them first. */
static int json_object(lua_State *L) {
  if (lua_isnoneornil(L, 1)) { lua_settop(L, 2); lua_newtable(L); lua_replace(L, 1); }
  luaL_checktype(L, 1, LUA_TTABLE);
  if (lua_isnoneornil(L, 2)) {
    lua_settop(L, 1);
    luaL_setmetatable(L, GHL_JSON_OBJECT_MT);
    return 1;
  }
  luaL_checktype(L, 2, LUA_TTABLE);
  lua_settop(L, 2);
  lua_getfield(L, LUA_REGISTRYINDEX, ORDERS_KEY);   /* t order orders */
  if (lua_rawgetp(L, 3, lua_topointer(L, 2)) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_createtable(L, 0, 3);                        /* t order orders mt */
    lua_pushliteral(L, "object");
    lua_setfield(L, -2, "__jsontype");
    lua_pushvalue(L, 2);
    lua_setfield(L, -2, "__jsonorder");
    lua_pushliteral(L, GHL_JSON_OBJECT_MT);
    lua_setfield(L, -2, "__name");
    lua_pushvalue(L, -1);
    lua_rawsetp(L, 3, lua_topointer(L, 2));
  }
  lua_setmetatable(L, 1);
  lua_settop(L, 1);
  return 1;
}

/* ---- Decoding ----
** ghl.json.decode builds the values lua-cjson 2.1.0's decode builds
** (numbers are floats, null is json.null, the last of duplicate keys wins,
** string bytes pass through as they are) at about 1.7 times its speed
** (bench/decode, bench/RESULTS.md "Issue 17: decoding"):
**  - every table is created at its final size: a container's elements are
**    parsed onto the Lua stack, then moved into a table made with the exact
**    count (in chunks of DEC_CHUNK for very large containers, so the stack
**    stays bounded) instead of growing it insert by insert;
**  - object keys go through a small two-way cache of the key strings
**    already made (KCACHE strings of up to KMAXLEN bytes, a table in the
**    registry, so per Lua state; it lasts from call to call, since API
**    answers repeat the same keys), pushed with lua_rawgeti instead of
**    hashed and interned again. A hit is checked against the string the
**    cache table holds, so nothing but the table is trusted;
**  - strings without escapes are pushed from the text (no copy), plain
**    integers of up to 15 digits are read without strtod.
** It is exact or gives up: on anything outside the subset it is sure of
** (an error, a NUL byte, an escape or number form lua-cjson reads its own
** way, nesting deeper than 1000) it drops what it built and calls
** lua-cjson's decode (upvalue 1) on the same text, so the value or the
** error message is lua-cjson's own. tests/fuzz/targets/json_decode.lua
** compares the two on arbitrary input. */

#define DEC_CHUNK 2048        /* stack values per container before flushing */
#define KCACHE 256        /* key cache slots (two ways: a slot and its partner, slot ^ 1) */
#define KMAXLEN 40        /* Lua's short strings (LUAI_MAXSHORTLEN) */
#define DEC_SMALL 64      /* scratch bytes on the C stack before a userdata */
#define LO8 0x0101010101010101u
#define HI8 0x8080808080808080u

static char kcache_tag;   /* registry[&kcache_tag]: the key cache (its address only; not const, so never folded with another) */

enum { OK = 0, BAIL = -1 };   /* a dec_* function: done, or give up */

struct dec {
  lua_State *L;
  const unsigned char *p, *end;
  int depth;
  int cache;                       /* stack index of the key cache table */
  int scratch;                     /* stack index of the scratch userdata */
  unsigned char *buf;              /* the scratch bytes: small, then the userdata's */
  size_t bufcap;
  unsigned char small[DEC_SMALL];
};

/* The first byte at or after p that is not JSON whitespace (lua-cjson's
** four). */
static inline const unsigned char *dec_ws(const unsigned char *p) {
  while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') p++;
  return p;
}

static int dec_value(struct dec *d);

/* Does p start with the n bytes of lit? Stops at the first difference, so
** it never reads past the text's terminating 0 (memcmp may). */
static int dec_lit(const unsigned char *p, const char *lit, int n) {
  int i;
  for (i = 0; i < n; i++)
    if (p[i] != (unsigned char)lit[i]) return 0;
  return 1;
}

/* Ensure room for n more bytes in the scratch buffer (d->small, then a
** userdata at a fixed stack slot, replaced by a bigger one when needed; the
** GC owns it). */
static unsigned char *dec_scratch(struct dec *d, size_t used, size_t n) {
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

static int dec_hex4(const unsigned char *p) {
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
static int dec_string(struct dec *d, int iskey) {
  const unsigned char *s = d->p, *p = s;
  size_t used;
  while (d->end - p >= 8) {      /* 8 bytes at a time while none is '"', '\\' or 0 */
    uint64_t x, q, b;
    memcpy(&x, p, 8);
    q = x ^ 0x2222222222222222u;
    b = x ^ 0x5C5C5C5C5C5C5C5Cu;
    if (((x - LO8) & ~x & HI8) | ((q - LO8) & ~q & HI8) | ((b - LO8) & ~b & HI8)) break;
    p += 8;
  }
  for (;;) {
    unsigned char c = *p;
    if (c == '"') break;
    if (c == '\\') goto escaped;
    if (c == 0) return BAIL;     /* end of input or a NUL byte */
    p++;
  }
  d->p = p + 1;
  if (iskey && (size_t)(p - s) <= KMAXLEN) {
    lua_State *L = d->L;
    size_t len = (size_t)(p - s), klen;
    lua_Integer h = len ? ((unsigned)len * 31u + s[0] * 7u + s[len - 1] + s[len >> 1] * 13u) & (KCACHE - 1) : 0;
    lua_Integer h2 = (h ^ 1) + 1;                    /* its partner slot (two ways) */
    int t = lua_rawgeti(L, d->cache, ++h);
    if (t == LUA_TSTRING) {
      const char *k = lua_tolstring(L, -1, &klen);
      if (klen == len && memcmp(k, s, len) == 0) return OK;
    }
    if (lua_rawgeti(L, d->cache, h2) == LUA_TSTRING) {
      const char *k = lua_tolstring(L, -1, &klen);
      if (klen == len && memcmp(k, s, len) == 0) { lua_remove(L, -2); return OK; }
    }
    lua_pop(L, 1);
    if (t == LUA_TSTRING) lua_rawseti(L, d->cache, h2);   /* the slot's key moves to the partner */
    else lua_pop(L, 1);
    lua_pushlstring(L, (const char *)s, len);        /* the new key takes the slot */
    lua_pushvalue(L, -1);
    lua_rawseti(L, d->cache, h);
    return OK;
  }
  lua_pushlstring(d->L, (const char *)s, (size_t)(p - s));
  return OK;

escaped:
  used = (size_t)(p - s);
  dec_scratch(d, 0, used + 8);
  memcpy(d->buf, s, used);
  for (;;) {
    unsigned char c = *p;
    unsigned char *b = dec_scratch(d, used, 8);
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
        long cp = dec_hex4(p + 2);
        if (cp < 0) return BAIL;
        p += 6;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return BAIL;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          long lo;
          if (p[0] != '\\' || p[1] != 'u') return BAIL;
          lo = dec_hex4(p + 2);
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
static int dec_number(struct dec *d) {
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
** stack into the table at t; when it is not made yet (made == 0; t holds a
** placeholder), into a new table of exactly that size, which replaces the
** placeholder. */
static void dec_flush(lua_State *L, int t, int made, int n, int pairs, lua_Integer first) {
  int i;
  if (!pairs) {
    if (!made) {
      lua_createtable(L, n, 0);
      lua_replace(L, t);
    }
    for (i = n; i >= 1; i--) lua_rawseti(L, t, first + i - 1);
  } else {
    if (!made) {
      lua_createtable(L, 0, n);
      lua_replace(L, t);
    }
    for (i = 1; i <= n; i++) {          /* in order: the last duplicate wins */
      lua_pushvalue(L, t + 2 * i - 1);
      lua_pushvalue(L, t + 2 * i);
      lua_rawset(L, t);
    }
    lua_settop(L, t);
  }
}

/* The array after its '[' at d->p, pushed as a table of its exact size. */
static int dec_array(struct dec *d) {
  lua_State *L = d->L;
  int t, n = 0, made = 0;
  lua_Integer done = 0;
  const unsigned char *p = dec_ws(d->p);
  if (*p == ']') { d->p = p + 1; lua_createtable(L, 0, 0); return OK; }
  d->p = p;
  lua_pushnil(L);                       /* the table's slot */
  t = lua_gettop(L);
  for (;;) {
    if ((n & 15) == 0 && !lua_checkstack(L, 20)) return BAIL;   /* room for 16 more values */
    if (dec_value(d)) return BAIL;
    if (++n == DEC_CHUNK) { dec_flush(L, t, made, n, 0, done + 1); made = 1; done += n; n = 0; }
    p = dec_ws(d->p);
    if (*p == ',') { d->p = dec_ws(p + 1); continue; }
    if (*p == ']') { d->p = p + 1; break; }
    return BAIL;
  }
  if (n || !made) dec_flush(L, t, made, n, 0, done + 1);
  return OK;
}

/* The object after its '{' at d->p, pushed as a table of its exact size
** (pairs counted with their duplicates). */
static int dec_object(struct dec *d) {
  lua_State *L = d->L;
  int t, n = 0, made = 0;
  const unsigned char *p = dec_ws(d->p);
  if (*p == '}') { d->p = p + 1; lua_createtable(L, 0, 0); return OK; }
  lua_pushnil(L);                       /* the table's slot */
  t = lua_gettop(L);
  for (;;) {
    if (*p != '"') return BAIL;
    if ((n & 15) == 0 && !lua_checkstack(L, 36)) return BAIL;   /* room for 16 more pairs */
    d->p = p + 1;
    if (dec_string(d, 1)) return BAIL;
    p = dec_ws(d->p);
    if (*p != ':') return BAIL;
    d->p = dec_ws(p + 1);
    if (dec_value(d)) return BAIL;
    if (++n == DEC_CHUNK) { dec_flush(L, t, made, n, 1, 0); made = 1; n = 0; }
    p = dec_ws(d->p);
    if (*p == ',') { p = dec_ws(p + 1); continue; }
    if (*p == '}') { d->p = p + 1; break; }
    return BAIL;
  }
  if (n || !made) dec_flush(L, t, made, n, 1, 0);
  return OK;
}

/* One value at d->p (whitespace skipped), pushed. */
static int dec_value(struct dec *d) {
  const unsigned char *p = d->p;
  switch (*p) {
    case '{': case '[': {
      int r;
      if (++d->depth > MAX_DEPTH) return BAIL;
      d->p = p + 1;
      r = *p == '{' ? dec_object(d) : dec_array(d);
      d->depth--;
      return r;
    }
    case '"': d->p = p + 1; return dec_string(d, 0);
    case 't':
      if (!dec_lit(p, "true", 4)) return BAIL;
      lua_pushboolean(d->L, 1); d->p = p + 4; return OK;
    case 'f':
      if (!dec_lit(p, "false", 5)) return BAIL;
      lua_pushboolean(d->L, 0); d->p = p + 5; return OK;
    case 'n':
      if (!dec_lit(p, "null", 4)) return BAIL;
      lua_pushlightuserdata(d->L, NULL); d->p = p + 4; return OK;
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
      return dec_number(d);
    default: return BAIL;
  }
}

/* decode(text) -> value, as upvalue 1 (a lua-cjson decode) would return
** it; any text the fast path is not sure of goes to upvalue 1. The text is
** NUL-terminated (a Lua string), which the scanners rely on: a 0 byte
** stops them and is read as "give up" unless it is the end. */
int ghl_json_decode(lua_State *L) {
  size_t len;
  const char *s;
  int r;
  struct dec dec, *d;
  const unsigned char *p;
  if (lua_gettop(L) != 1 || lua_type(L, 1) != LUA_TSTRING) goto fallback;   /* its arity and type errors */
  s = lua_tolstring(L, 1, &len);
  d = &dec;
  d->L = L;
  d->p = (const unsigned char *)s;
  d->end = d->p + len;
  d->depth = 0;
  d->buf = d->small;
  d->bufcap = sizeof d->small;
  if (lua_rawgetp(L, LUA_REGISTRYINDEX, &kcache_tag) != LUA_TTABLE) {   /* 2: the key cache */
    lua_pop(L, 1);
    lua_createtable(L, KCACHE, 0);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &kcache_tag);
  }
  d->cache = 2;
  lua_pushnil(L);                                     /* 3: the scratch slot */
  d->scratch = 3;
  d->p = dec_ws(d->p);
  r = dec_value(d);
  if (r == OK) {
    p = dec_ws(d->p);
    if (p == d->end) return 1;
  }
  lua_settop(L, 1);
fallback:
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}

static const luaL_Reg json_funcs[] = {
  {"encode", json_encode},
  {"array", json_array},
  {"object", json_object},
  {NULL, NULL}
};

/* The two markers, in the registry (ghl.jq's array_mt is the same table). */
static void markers(lua_State *L) {
  if (luaL_newmetatable(L, GHL_JSON_ARRAY_MT)) {
    lua_pushliteral(L, "array");
    lua_setfield(L, -2, "__jsontype");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, GHL_JSON_OBJECT_MT)) {
    lua_pushliteral(L, "object");
    lua_setfield(L, -2, "__jsontype");
  }
  lua_pop(L, 1);
  if (lua_getfield(L, LUA_REGISTRYINDEX, ORDERS_KEY) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);                                 /* keyed by the order list's address */
    lua_newtable(L);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, ORDERS_KEY);
  } else {
    lua_pop(L, 1);
  }
}

int luaopen_ghl_json(lua_State *L) {
  markers(L);
  luaL_newlib(L, json_funcs);
  luaL_getmetatable(L, GHL_JSON_ARRAY_MT);
  lua_setfield(L, -2, "array_mt");
  luaL_getmetatable(L, GHL_JSON_OBJECT_MT);
  lua_setfield(L, -2, "object_mt");
  luaL_requiref(L, "cjson.safe", luaopen_cjson_safe, 0);
  lua_getfield(L, -1, "decode");
  lua_pushcclosure(L, ghl_json_decode, 1);           /* falls back to cjson.safe.decode */
  lua_setfield(L, -3, "decode");
  lua_getfield(L, -1, "null");
  lua_setfield(L, -3, "null");
  lua_pop(L, 1);
  return 1;
}
