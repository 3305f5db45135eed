/*
** ghl.error: the one error type for expected failures.
** An error is a Lua table with metatable "ghl.error" (registry) and fields
**   kind     short word: timeout, connect, tls, decode, http, usage, ...
**   message  human text, one line
** and optionally status, code, method, url, path, traceId, hint, where.
** A hint or message given as {lua = TEXT, cli = TEXT} is resolved to the
** text for the process's surface when the error is made (see error.c).
** Programmer mistakes are raised as strings (luaL_error); expected failures
** are returned as nil, err by native functions and raised by Lua helpers.
*/
#ifndef GHL_ERROR_H
#define GHL_ERROR_H

#include <lua.h>
#include <lauxlib.h>

#define GHL_ERROR_MT "ghl.error"

/* Push a new ghl.error with kind and a printf-style message (lua_pushvfstring
** formats). Stack: +1. */
void ghl_pusherror(lua_State *L, const char *kind, const char *fmt, ...);

/* Push nil and a new ghl.error; return 2, for "return ghl_fail(...)". */
int ghl_fail(lua_State *L, const char *kind, const char *fmt, ...);

/* Is the value at idx a ghl.error? */
int ghl_iserror(lua_State *L, int idx);

/* Append len bytes of s to b, printable: C0 controls (but tab, and newline
** when multiline), DEL and invalid UTF-8 bytes as \xNN, C1 controls and
** bidi overrides/isolates as \u{NNNN}; valid UTF-8 text is kept. */
void ghl_addsanitized(luaL_Buffer *b, const char *s, size_t len, int multiline);

/* Push tostring(value at idx) made printable as above; returns it. Stack: +1. */
const char *ghl_sanitized(lua_State *L, int idx, int multiline);

/* ghl.error as a recipe's sandbox gets it; the host's adds set_surface. */
int luaopen_ghl_error(lua_State *L);
int luaopen_ghl_error_host(lua_State *L);

#endif
