/*
** ghl.jq: jq filters and faithful JSON printing through libjq (jq 1.6).
** lua-cjson cannot tell [] from {} and rounds numbers to 14 digits; jq's
** own parser and printer keep the text's arrays, objects, key order and
** numbers (as doubles), sort keys and colour output the way `jq` does.
**
**   jq.compile(filter)            -> program | nil, err (kind "usage")
**   prog:run(text [, opts [, fn]]) -> array of outputs | true (with fn) | nil, err
**   prog:close()                  (also __gc and __close)
**   jq.format(text [, opts])      -> text | nil, err (kind "decode")
**   jq.encode(value [, opts])     -> text (raises for values JSON cannot hold)
**   jq.array_mt                   metatable marking a Lua table as a JSON array
**
** opts: indent (0 compact, the default; 1..7 spaces), sort (keys sorted),
** color (jq's colours; JQ_COLORS is honoured), raw (string outputs of run
** as their text, like jq -r), empty ("object", the default, or "array":
** how encode writes an unmarked empty table).
**
** Expected failures return nil, ghl.error: a filter that does not compile
** (kind "usage", jq's messages), input that is not JSON (kind "decode", with
** jq's "at line L, column C"), a runtime error of the filter (kind "jq").
** jq's callbacks never raise and never print: compile messages are
** collected in the program and returned. Every jv we own is freed.
*/
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jq.h>
#include <jv.h>
#include <lauxlib.h>

#include "buf.h"
#include "error.h"

#define PROGRAM_MT "ghl.jq.program"
#define BOX_MT "ghl.jq.box"
#define MAX_DEPTH 1000

/* A compiled filter. Everything it owns is released by program_release,
** so a raise between two jq_next calls (in run's callback) leaks nothing:
** the next run resets it, close or the collector tears it down. */
struct program {
  jq_state *jq;            /* NULL when closed */
  jv_parser *parser;       /* the input of the current run, or NULL */
  ghl_buf msgs;            /* messages from jq's error callback */
};

/* A jv that must survive a raise: freed by __gc (liolib's UBox). */
struct box {
  jv value;
  jv_parser *parser;
};

/* ---- Callbacks (never raise, never print) ---- */

/* jq's error callback: append the message (consumed) to the program's
** buffer, one per line. A non-string is dumped as jq does. */
static void on_error(void *data, jv msg) {
  struct program *p = data;
  if (jv_get_kind(msg) == JV_KIND_INVALID) msg = jv_invalid_get_msg(msg);
  if (jv_get_kind(msg) != JV_KIND_STRING) msg = jv_dump_string(msg, JV_PRINT_INVALID);
  if (jv_get_kind(msg) == JV_KIND_STRING) {
    const char *s = jv_string_value(msg);
    size_t i, n = strlen(s), blanks = 0;
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ')) n--;
    if (p->msgs.len > 0) ghl_buf_add(&p->msgs, "\n", 1);
    for (i = 0; i < n; i++) {                        /* no spaces before a newline */
      if (s[i] == ' ') { blanks++; continue; }
      if (s[i] != '\n') while (blanks-- > 0) ghl_buf_add(&p->msgs, " ", 1);
      blanks = 0;
      ghl_buf_add(&p->msgs, &s[i], 1);
    }
  }
  jv_free(msg);
}

/* jq's debug callback (the `debug` builtin): ["DEBUG:",value] on stderr,
** like jq. Consumes msg. */
static void on_debug(void *data, jv msg) {
  (void)data;
  msg = jv_dump_string(jv_array_append(jv_array_append(jv_array(), jv_string("DEBUG:")), msg), 0);
  if (jv_get_kind(msg) == JV_KIND_STRING) fprintf(stderr, "%s\n", jv_string_value(msg));
  jv_free(msg);
}

/* ---- Options and helpers ---- */

/* Boolean option k of the options table at idx. */
static int opt_bool(lua_State *L, int idx, const char *k) {
  int r;
  if (!lua_istable(L, idx)) return 0;
  lua_getfield(L, idx, k);
  r = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return r;
}

/* jv_dump flags from the options table at idx (absent = compact). */
static int dump_flags(lua_State *L, int idx) {
  int flags = 0;
  lua_Integer indent = 0;
  if (lua_isnoneornil(L, idx)) return 0;
  luaL_checktype(L, idx, LUA_TTABLE);
  if (lua_getfield(L, idx, "indent") != LUA_TNIL) indent = luaL_checkinteger(L, -1);
  lua_pop(L, 1);
  luaL_argcheck(L, indent >= 0 && indent <= 7, idx, "indent must be 0..7");
  if (indent > 0) flags |= JV_PRINT_INDENT_FLAGS((int)indent);
  if (opt_bool(L, idx, "sort")) flags |= JV_PRINT_SORTED;
  if (opt_bool(L, idx, "color")) flags |= JV_PRINT_COLOR;
  return flags;
}

/* Push the text of string jv s (borrowed; not freed). */
static void push_jv_string(lua_State *L, jv s) {
  lua_pushlstring(L, jv_string_value(s), (size_t)jv_string_length_bytes(jv_copy(s)));
}

/* Push nil and a ghl.error of kind whose message is the text of jv msg
** (consumed: a string, or anything else, dumped). Returns 2. */
static int fail_jv(lua_State *L, const char *kind, const char *prefix, jv msg) {
  const char *s;
  int n;
  if (jv_get_kind(msg) != JV_KIND_STRING) msg = jv_dump_string(msg, 0);
  s = jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "unknown error";
  n = (int)strlen(s);
  while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ')) n--;   /* halt_error's newline */
  lua_pushnil(L);
  ghl_pusherror(L, kind, "%s", prefix);
  lua_pushfstring(L, "%s", prefix);
  lua_pushlstring(L, s, (size_t)n);
  lua_concat(L, 2);
  lua_setfield(L, -2, "message");
  jv_free(msg);
  return 2;
}

/* A parser over the n bytes at text (which must outlive it). */
static jv_parser *new_parser(lua_State *L, const char *text, size_t n) {
  jv_parser *ps;
  if (n > INT_MAX) luaL_error(L, "JSON text too large (%d bytes at most)", INT_MAX);
  ps = jv_parser_new(0);
  if (ps == NULL) luaL_error(L, "out of memory");
  jv_parser_set_buf(ps, text, (int)n, 0);      /* 0: the whole text */
  return ps;
}

/* ---- The box ---- */

/* Free what the box holds; idempotent. */
static void box_release(struct box *b) {
  jv_free(b->value);
  b->value = jv_invalid();
  if (b->parser) jv_parser_free(b->parser);
  b->parser = NULL;
}

static int box_gc(lua_State *L) {
  box_release(luaL_checkudata(L, 1, BOX_MT));
  return 0;
}

/* Push a new empty box. Stack: +1. */
static struct box *new_box(lua_State *L) {
  struct box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->value = jv_invalid();
  b->parser = NULL;
  luaL_setmetatable(L, BOX_MT);
  return b;
}

/* ---- Programs ---- */

static struct program *check_program(lua_State *L, int idx) {
  struct program *p = luaL_checkudata(L, idx, PROGRAM_MT);
  if (p->jq == NULL) luaL_error(L, "attempt to use a closed jq program");
  return p;
}

/* Free everything the program holds; idempotent. */
static void program_release(struct program *p) {
  if (p->parser) jv_parser_free(p->parser);
  p->parser = NULL;
  if (p->jq) jq_teardown(&p->jq);
  p->jq = NULL;
  ghl_buf_free(&p->msgs);
}

/* close(): tear the program down (also __gc and __close). */
static int program_close(lua_State *L) {
  program_release(luaL_checkudata(L, 1, PROGRAM_MT));
  return 0;
}

/* compile(filter) -> program | nil, err(kind "usage" with jq's messages).
** The program is created closed, then the jq state acquired, so the
** collector can always release it. */
static int jq_compile_filter(lua_State *L) {
  size_t n;
  const char *filter = luaL_checklstring(L, 1, &n);
  struct program *p;
  luaL_argcheck(L, strlen(filter) == n, 1, "filter contains a NUL byte");
  p = lua_newuserdatauv(L, sizeof *p, 0);
  p->jq = NULL;
  p->parser = NULL;
  memset(&p->msgs, 0, sizeof p->msgs);
  luaL_setmetatable(L, PROGRAM_MT);                 /* prog */
  p->jq = jq_init();
  if (p->jq == NULL) return luaL_error(L, "out of memory");
  jq_set_error_cb(p->jq, on_error, p);
  jq_set_debug_cb(p->jq, on_debug, NULL);
  if (!jq_compile(p->jq, filter)) {
    lua_pushnil(L);
    ghl_pusherror(L, "usage", "%s", p->msgs.len ? p->msgs.data : "jq: error: the filter does not compile");
    lua_pushvalue(L, 1);
    lua_setfield(L, -2, "filter");
    program_release(p);
    return 2;
  }
  ghl_buf_free(&p->msgs);
  return 1;
}

/* Deliver one output text (on top of the stack, popped): call fn at
** fnidx, or append it to the array at outidx. fn may raise. */
static void deliver(lua_State *L, int fnidx, int outidx, lua_Integer *count) {
  if (fnidx) {
    lua_pushvalue(L, fnidx);
    lua_insert(L, -2);
    lua_call(L, 1, 0);
  } else {
    lua_rawseti(L, outidx, ++*count);
  }
}

/* run(text [, opts [, fn]]) -> outputs | true | nil, err.
** Each JSON value of text (jq's input stream: one value, or several
** separated by whitespace) goes through the filter; each output is dumped
** with opts (raw: strings as they are) and passed to fn, or collected in
** the returned array. Fails with kind "decode" for input that is not JSON
** (with jq's position) and kind "jq" for a runtime error; without fn,
** err.outputs holds the texts collected before the failure. halt stops
** quietly; halt_error fails with its message. fn may raise: the program
** keeps its parser and state, and the next run or close frees them.
** Stack: +1 or +2. */
static int program_run(lua_State *L) {
  struct program *p = check_program(L, 1);
  size_t n;
  const char *text = luaL_checklstring(L, 2, &n);
  int flags = dump_flags(L, 3);
  int raw = opt_bool(L, 3, "raw");
  int fnidx = 0, outidx = 0;
  lua_Integer count = 0;
  if (!lua_isnoneornil(L, 4)) {
    luaL_checktype(L, 4, LUA_TFUNCTION);
    fnidx = 4;
  }
  lua_settop(L, 4);
  if (!fnidx) {
    lua_newtable(L);                                 /* ... outputs */
    outidx = lua_gettop(L);
  }
  if (p->parser) jv_parser_free(p->parser);          /* left by a raise */
  p->parser = NULL;
  ghl_buf_free(&p->msgs);                            /* nothing reads them after compile */
  p->parser = new_parser(L, text, n);                /* text stays at 2 */
  for (;;) {
    jv in = jv_parser_next(p->parser);
    if (!jv_is_valid(in)) {
      jv_parser_free(p->parser);
      p->parser = NULL;
      if (jv_invalid_has_msg(jv_copy(in))) {
        fail_jv(L, "decode", "invalid JSON input: ", jv_invalid_get_msg(in));
        goto failed;
      }
      jv_free(in);
      break;                                         /* end of input */
    }
    jq_start(p->jq, in, 0);                          /* takes in */
    for (;;) {
      jv out = jq_next(p->jq);
      if (!jv_is_valid(out)) {
        if (jv_invalid_has_msg(jv_copy(out))) {
          jv msg = jv_invalid_get_msg(out);
          jv_parser_free(p->parser);
          p->parser = NULL;
          fail_jv(L, "jq", "jq: error: ", msg);
          goto failed;
        }
        jv_free(out);
        if (jq_halted(p->jq)) {
          jv msg = jq_get_error_message(p->jq);
          jv_parser_free(p->parser);
          p->parser = NULL;
          if (jv_get_kind(msg) == JV_KIND_STRING || (jv_is_valid(msg) && jv_get_kind(msg) != JV_KIND_NULL)) {
            fail_jv(L, "jq", "jq: halt_error: ", msg);
            goto failed;
          }
          jv_free(msg);
          goto done;
        }
        break;                                       /* next input */
      }
      if (!(raw && jv_get_kind(out) == JV_KIND_STRING)) out = jv_dump_string(out, flags);
      push_jv_string(L, out);
      jv_free(out);
      deliver(L, fnidx, outidx, &count);
    }
  }
done:
  if (!outidx) lua_pushboolean(L, 1);
  return 1;
failed:                                              /* ... nil err */
  if (outidx) {
    lua_pushvalue(L, outidx);
    lua_setfield(L, -2, "outputs");
  }
  return 2;
}

/* __tostring: "ghl.jq.program" plus " (closed)". */
static int program_tostring(lua_State *L) {
  struct program *p = luaL_checkudata(L, 1, PROGRAM_MT);
  lua_pushstring(L, p->jq ? "ghl.jq.program" : "ghl.jq.program (closed)");
  return 1;
}

/* ---- format and encode ---- */

/* format(text [, opts]) -> text | nil, err(kind "decode").
** text must hold exactly one JSON value; it is printed with opts. */
static int jq_format_text(lua_State *L) {
  size_t n;
  const char *text = luaL_checklstring(L, 1, &n);
  int flags = dump_flags(L, 2);
  struct box *b = new_box(L);                        /* box */
  jv extra;
  b->parser = new_parser(L, text, n);
  b->value = jv_parser_next(b->parser);
  if (!jv_is_valid(b->value)) {
    jv v = b->value;
    b->value = jv_invalid();
    if (jv_invalid_has_msg(jv_copy(v))) return fail_jv(L, "decode", "invalid JSON: ", jv_invalid_get_msg(v));
    jv_free(v);
    return ghl_fail(L, "decode", "invalid JSON: no value (empty text)");
  }
  extra = jv_parser_next(b->parser);
  if (jv_is_valid(extra)) {
    jv_free(extra);
    return ghl_fail(L, "decode", "invalid JSON: unexpected extra JSON values after the first");
  }
  if (jv_invalid_has_msg(jv_copy(extra))) return fail_jv(L, "decode", "invalid JSON: ", jv_invalid_get_msg(extra));
  jv_free(extra);
  b->value = jv_dump_string(b->value, flags);
  push_jv_string(L, b->value);
  box_release(b);
  return 1;
}

/* Lua value at idx -> jv (owned by the caller), or an invalid jv with a
** message. Tables: a metatable field __jsontype ("array"/"object") decides;
** else keys 1..n make an array and an empty table follows empty_array;
** other keys must be strings or numbers (numbers become strings, as in
** cjson). Only a memory error can raise here. */
static jv to_jv(lua_State *L, int idx, int depth, int empty_array) {
  switch (lua_type(L, idx)) {
  case LUA_TNIL: return jv_null();
  case LUA_TBOOLEAN: return jv_bool(lua_toboolean(L, idx));
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) return jv_number((double)lua_tointeger(L, idx));
    return jv_number((double)lua_tonumber(L, idx));
  case LUA_TSTRING: {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    if (n > INT_MAX) return jv_invalid_with_msg(jv_string("string too long"));
    return jv_string_sized(s, (int)n);
  }
  case LUA_TLIGHTUSERDATA:
    if (lua_touserdata(L, idx) == NULL) return jv_null();   /* cjson.null */
    return jv_invalid_with_msg(jv_string("cannot encode a light userdata"));
  case LUA_TTABLE: break;
  default:
    return jv_invalid_with_msg(jv_string_fmt("cannot encode a %s", luaL_typename(L, idx)));
  }
  if (depth > MAX_DEPTH) return jv_invalid_with_msg(jv_string("nesting too deep (a cycle?)"));
  if (!lua_checkstack(L, 4)) return jv_invalid_with_msg(jv_string("nesting too deep"));
  idx = lua_absindex(L, idx);
  {
    int kind = 0;                                    /* 'a' or 'o' */
    lua_Integer count = 0, max = 0, i;
    if (luaL_getmetafield(L, idx, "__jsontype") != LUA_TNIL) {
      const char *t = lua_tostring(L, -1);
      kind = t && strcmp(t, "array") == 0 ? 'a' : t && strcmp(t, "object") == 0 ? 'o' : 0;
      lua_pop(L, 1);
    }
    if (kind == 0) {
      int seq = 1;
      lua_pushnil(L);
      while (lua_next(L, idx)) {
        lua_pop(L, 1);
        count++;
        if (seq && lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1) {
          if (lua_tointeger(L, -1) > max) max = lua_tointeger(L, -1);
        } else {
          seq = 0;
        }
      }
      kind = count == 0 ? (empty_array ? 'a' : 'o') : (seq && max == count) ? 'a' : 'o';
    }
    if (kind == 'a') {
      jv a = jv_array();
      lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
      for (i = 1; i <= len; i++) {
        jv v;
        lua_rawgeti(L, idx, i);
        v = to_jv(L, -1, depth + 1, empty_array);
        lua_pop(L, 1);
        if (!jv_is_valid(v)) { jv_free(a); return v; }
        a = jv_array_append(a, v);
      }
      return a;
    } else {
      jv o = jv_object();
      lua_pushnil(L);
      while (lua_next(L, idx)) {                     /* key value */
        jv k, v;
        size_t kn;
        const char *ks;
        if (lua_type(L, -2) != LUA_TSTRING && lua_type(L, -2) != LUA_TNUMBER) {
          k = jv_invalid_with_msg(jv_string_fmt("cannot encode a table key of type %s",
                                                luaL_typename(L, -2)));
          lua_pop(L, 2);
          jv_free(o);
          return k;
        }
        lua_pushvalue(L, -2);                        /* key value keycopy */
        ks = lua_tolstring(L, -1, &kn);              /* a number key: its Lua text (the copy only) */
        k = jv_string_sized(ks, (int)(kn > INT_MAX ? INT_MAX : kn));
        lua_pop(L, 1);
        v = to_jv(L, -1, depth + 1, empty_array);
        lua_pop(L, 1);                               /* key */
        if (!jv_is_valid(v)) { jv_free(k); jv_free(o); lua_pop(L, 1); return v; }
        o = jv_object_set(o, k, v);
      }
      return o;
    }
  }
}

/* encode(value [, opts]) -> JSON text. Raises (a bug, not an expected
** failure) for functions, userdata, non-string keys or cycles. */
static int jq_encode_value(lua_State *L) {
  int flags = dump_flags(L, 2);
  int empty_array = 0;
  struct box *b;
  luaL_checkany(L, 1);
  if (lua_istable(L, 2)) {
    static const char *const empties[] = {"object", "array", NULL};
    lua_getfield(L, 2, "empty");
    empty_array = luaL_checkoption(L, -1, "object", empties);
    lua_pop(L, 1);
  }
  lua_settop(L, 2);
  b = new_box(L);                                    /* value opts box */
  b->value = to_jv(L, 1, 0, empty_array);
  if (!jv_is_valid(b->value)) {
    jv msg = jv_invalid_get_msg(b->value);
    b->value = jv_invalid();
    lua_pushfstring(L, "ghl.jq.encode: %s", jv_get_kind(msg) == JV_KIND_STRING ? jv_string_value(msg) : "?");
    jv_free(msg);
    return lua_error(L);
  }
  b->value = jv_dump_string(b->value, flags);
  push_jv_string(L, b->value);
  box_release(b);
  return 1;
}

/* ---- Registration ---- */

static const luaL_Reg program_methods[] = {
  {"run", program_run},
  {"close", program_close},
  {NULL, NULL}
};

static const luaL_Reg jq_funcs[] = {
  {"compile", jq_compile_filter},
  {"format", jq_format_text},
  {"encode", jq_encode_value},
  {NULL, NULL}
};

int luaopen_ghl_jq(lua_State *L) {
  const char *colors = getenv("JQ_COLORS");
  if (colors && *colors) jq_set_colors(colors);     /* ignored when invalid, as jq does */
  luaL_newmetatable(L, PROGRAM_MT);
  lua_pushcfunction(L, program_close);
  lua_setfield(L, -2, "__gc");
  lua_pushcfunction(L, program_close);
  lua_setfield(L, -2, "__close");
  lua_pushcfunction(L, program_tostring);
  lua_setfield(L, -2, "__tostring");
  luaL_newlib(L, program_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  luaL_newmetatable(L, BOX_MT);
  lua_pushcfunction(L, box_gc);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newlib(L, jq_funcs);
  lua_newtable(L);                                   /* jq array_mt */
  lua_pushliteral(L, "array");
  lua_setfield(L, -2, "__jsontype");
  lua_pushliteral(L, "ghl.jq.array");
  lua_setfield(L, -2, "__name");
  lua_setfield(L, -2, "array_mt");
  return 1;
}
