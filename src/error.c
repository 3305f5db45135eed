/*
** ghl.error: the one error type for expected failures (network, TLS,
** timeouts, undecodable replies, HighLevel errors, usage). A table with the
** registry metatable "ghl.error"; __tostring gives one line. Lua code builds
** them with ghl.error.new{...} or raises them with ghl.error.raise(...).
**
** Wordings: a hint (or a message) may be a table {lua = TEXT, cli = TEXT},
** the same advice for the two surfaces ghlua is used from: the Lua API
** (scripts, the REPL: "ghl.client{location = ID}") and the command line
** ("--location ID", GHL_TOKEN). The surface is process-wide: the command
** dispatcher sets "cli" once (set_surface, which only the host's ghl.error
** has, never a recipe's sandbox), and everything else keeps "lua". new and
** raise resolve such a table to the surface's text, so err.hint is always a
** string for whoever reads it; __tostring resolves one assigned later.
*/
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "error.h"

/* ---- Surfaces ---- */

static const char *const surfaces[] = {"lua", "cli", NULL};
static int surface = 0;   /* index in surfaces: who reads the messages */

/* Replace the value at idx, when it is a plain table (no metatable), by its
** wording for the current surface: t[surface], else t.lua, else t.cli (nil
** when it has none). Any other value stays. Stack: 0. */
static void resolve(lua_State *L, int idx) {
  int i;
  idx = lua_absindex(L, idx);
  if (!lua_istable(L, idx) || lua_getmetatable(L, idx)) {
    if (lua_istable(L, idx)) lua_pop(L, 1);
    return;
  }
  if (lua_getfield(L, idx, surfaces[surface]) <= LUA_TNIL) {
    lua_pop(L, 1);
    for (i = 0; surfaces[i]; i++) {
      if (lua_getfield(L, idx, surfaces[i]) > LUA_TNIL) break;
      lua_pop(L, 1);
    }
    if (!surfaces[i]) lua_pushnil(L);
  }
  lua_replace(L, idx);
}

/* Resolve field k of the table at idx in place (see resolve). */
static void resolve_field(lua_State *L, int idx, const char *k) {
  idx = lua_absindex(L, idx);
  if (lua_getfield(L, idx, k) == LUA_TTABLE) {
    resolve(L, -1);
    lua_setfield(L, idx, k);
  } else {
    lua_pop(L, 1);
  }
}

/* ---- Formatting ---- */

/* Append field k of the error at idx to buffer b as fmt (one %s). */
static void add_field(luaL_Buffer *b, lua_State *L, int idx, const char *k,
                      const char *pre, const char *post) {
  if (lua_getfield(L, idx, k) > LUA_TNIL) {
    const char *s;
    resolve(L, -1);                                /* {lua=, cli=}: its text */
    s = luaL_tolstring(L, -1, NULL);               /* value str */
    lua_remove(L, -2);                             /* str */
    lua_pushfstring(L, "%s%s%s", pre, s, post);    /* str piece */
    lua_remove(L, -2);
    luaL_addvalue(b);
  } else {
    lua_pop(L, 1);
  }
}

/* __tostring: "[where: ]message[ (HTTP status, traceId T)][ — hint: H]".
** Messages are kept to one line: newlines become spaces. */
static int error_tostring(lua_State *L) {
  luaL_Buffer b;
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_buffinit(L, &b);
  add_field(&b, L, 1, "where", "", ": ");
  if (lua_getfield(L, 1, "message") > LUA_TNIL) {
    lua_pop(L, 1);
    add_field(&b, L, 1, "message", "", "");
  } else {
    lua_pop(L, 1);
    add_field(&b, L, 1, "kind", "", " error");
  }
  if (lua_getfield(L, 1, "status") > LUA_TNIL) {
    lua_pop(L, 1);
    add_field(&b, L, 1, "status", " (HTTP ", "");
    add_field(&b, L, 1, "traceId", ", traceId ", "");
    luaL_addchar(&b, ')');
  } else {
    lua_pop(L, 1);
  }
  add_field(&b, L, 1, "hint", " \xe2\x80\x94 hint: ", "");
  luaL_pushresult(&b);
  luaL_gsub(L, lua_tostring(L, -1), "\n", " ");
  return 1;
}

/* ---- Making outside bytes safe to print ---- */

/* Length of the valid UTF-8 sequence at s[0..n) (RFC 3629: no overlongs,
** no surrogates, nothing above U+10FFFF), 0 if it is not one; *cp gets the
** code point. */
static size_t utf8_seq(const unsigned char *s, size_t n, unsigned long *cp) {
  unsigned char c = s[0];
  size_t len, i;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c < 0x80) { *cp = c; return 1; }
  if (c >= 0xC2 && c <= 0xDF) { len = 2; *cp = c & 0x1F; }
  else if (c >= 0xE0 && c <= 0xEF) {
    len = 3; *cp = c & 0x0F;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4; *cp = c & 0x07;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else return 0;
  if (n < len) return 0;
  for (i = 1; i < len; i++) {
    unsigned char t = s[i];
    if (t < (i == 1 ? lo : 0x80) || t > (i == 1 ? hi : 0xBF)) return 0;
    *cp = (*cp << 6) | (t & 0x3F);
  }
  return len;
}

/* Code points a terminal acts on or that reorder text: C1 controls, and
** the bidirectional embeddings, overrides and isolates. */
static int unsafe_cp(unsigned long cp) {
  return (cp >= 0x80 && cp <= 0x9F) || (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

void ghl_addsanitized(luaL_Buffer *b, const char *str, size_t len, int multiline) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  char esc[16];
  while (i < len) {
    unsigned long cp;
    size_t n = utf8_seq(s + i, len - i, &cp);
    if (n == 0) {                                 /* not UTF-8: this byte */
      snprintf(esc, sizeof esc, "\\x%02x", s[i]);
      luaL_addstring(b, esc);
      i++;
    } else if (n == 1 && (s[i] < 0x20 || s[i] == 0x7F) && s[i] != '\t' && !(multiline && s[i] == '\n')) {
      snprintf(esc, sizeof esc, "\\x%02x", s[i]);
      luaL_addstring(b, esc);
      i++;
    } else if (unsafe_cp(cp)) {
      snprintf(esc, sizeof esc, "\\u{%lx}", cp);
      luaL_addstring(b, esc);
      i += n;
    } else {
      luaL_addlstring(b, str + i, n);
      i += n;
    }
  }
}

const char *ghl_sanitized(lua_State *L, int idx, int multiline) {
  luaL_Buffer b;
  size_t len;
  const char *s;
  idx = lua_absindex(L, idx);
  s = luaL_tolstring(L, idx, &len);              /* ... str */
  luaL_buffinit(L, &b);
  ghl_addsanitized(&b, s, len, multiline);
  luaL_pushresult(&b);                           /* ... str safe */
  lua_remove(L, -2);
  return lua_tostring(L, -1);
}

/* ---- C API ---- */

static void push_metatable(lua_State *L) {
  if (luaL_newmetatable(L, GHL_ERROR_MT)) {
    lua_pushcfunction(L, error_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, "ghl.error");
    lua_setfield(L, -2, "__name");
  }
}

static void pushverror(lua_State *L, const char *kind, const char *fmt, va_list ap) {
  lua_createtable(L, 0, 4);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  lua_pushvfstring(L, fmt, ap);
  lua_setfield(L, -2, "message");
  push_metatable(L);
  lua_setmetatable(L, -2);
}

void ghl_pusherror(lua_State *L, const char *kind, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  pushverror(L, kind, fmt, ap);
  va_end(ap);
}

int ghl_fail(lua_State *L, const char *kind, const char *fmt, ...) {
  va_list ap;
  lua_pushnil(L);
  va_start(ap, fmt);
  pushverror(L, kind, fmt, ap);
  va_end(ap);
  return 2;
}

int ghl_iserror(lua_State *L, int idx) {
  int r;
  if (!lua_getmetatable(L, idx)) return 0;
  luaL_getmetatable(L, GHL_ERROR_MT);
  r = lua_rawequal(L, -1, -2);
  lua_pop(L, 2);
  return r;
}

/* ---- Lua API ---- */

/* new{kind=, message=, ...} -> error. The table is copied (shallow) so the
** caller's table is not changed; kind defaults to "error". */
static int error_new(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, 1)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  if (lua_getfield(L, -1, "kind") == LUA_TNIL) {
    lua_pushliteral(L, "error");
    lua_setfield(L, -3, "kind");
  }
  lua_pop(L, 1);
  resolve_field(L, -1, "message");
  resolve_field(L, -1, "hint");
  push_metatable(L);
  lua_setmetatable(L, -2);
  return 1;
}

static int error_is(lua_State *L) {
  lua_pushboolean(L, ghl_iserror(L, 1));
  return 1;
}

/* raise(kind, message) or raise{...}: raise a new error (level 0: no
** position prefix, the object itself is the error value). */
static int error_raise(lua_State *L) {
  if (lua_istable(L, 1) && !ghl_iserror(L, 1)) {
    lua_settop(L, 1);
    error_new(L);
  } else if (!ghl_iserror(L, 1)) {
    const char *kind = luaL_checkstring(L, 1);
    const char *msg = luaL_checkstring(L, 2);
    ghl_pusherror(L, kind, "%s", msg);
  } else {
    lua_settop(L, 1);
  }
  return lua_error(L);
}

/* sanitize(v [, multiline]) -> string: tostring(v) with control bytes,
** invalid UTF-8, C1 controls and bidi overrides shown escaped (\x1b,
** \u{202e}), so outside bytes printed in a message cannot drive the
** terminal. Tab is kept, and newline when multiline is true. */
static int error_sanitize(lua_State *L) {
  luaL_checkany(L, 1);
  ghl_sanitized(L, 1, lua_toboolean(L, 2));
  return 1;
}

/* wording(v) -> v's text for the current surface: a string as it is, a
** table {lua = TEXT, cli = TEXT} the surface's entry (else the other). */
static int error_wording(lua_State *L) {
  luaL_checkany(L, 1);
  lua_settop(L, 1);
  resolve(L, 1);
  return 1;
}

/* surface() -> "lua" or "cli": who reads the messages (see Wordings). */
static int error_surface(lua_State *L) {
  lua_pushstring(L, surfaces[surface]);
  return 1;
}

/* set_surface(name): "cli" under the command dispatcher, "lua" otherwise.
** Only in the host's ghl.error (luaopen_ghl_error_host): a recipe's own
** state cannot change what the process says. */
static int error_set_surface(lua_State *L) {
  surface = luaL_checkoption(L, 1, NULL, surfaces);
  return 0;
}

static const luaL_Reg error_funcs[] = {
  {"wording", error_wording},
  {"surface", error_surface},
  {"sanitize", error_sanitize},
  {"new", error_new},
  {"is", error_is},
  {"raise", error_raise},
  {"tostring", error_tostring},
  {NULL, NULL}
};

int luaopen_ghl_error(lua_State *L) {
  luaL_newlib(L, error_funcs);
  push_metatable(L);
  lua_setfield(L, -2, "metatable");
  return 1;
}

/* The host's ghl.error: the module with set_surface (see Wordings). */
int luaopen_ghl_error_host(lua_State *L) {
  luaopen_ghl_error(L);
  lua_pushcfunction(L, error_set_surface);
  lua_setfield(L, -2, "set_surface");
  return 1;
}
