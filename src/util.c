/*
** ghl._util: the natives behind ghl.util (lua/ghl/util.lua), for rules that
** C code needs too and so are written in C once: how a secret is shown.
*/
#include <lauxlib.h>
#include <string.h>

#include "buf.h"

#define UBUF_MT "ghl.util.buf"

static int ubuf_gc(lua_State *L) {
  ghl_buf_free(luaL_checkudata(L, 1, UBUF_MT));
  return 0;
}

/* redact(secret) -> "…abcd" (ghl_buf_addredacted, the HTTP trace's rule).
** The redacted text is built in a ghl_buf inside a userdata (UBUF_MT):
** its __gc frees it if lua_pushlstring raises; freed at once otherwise. */
static int util_redact(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  ghl_buf *b = lua_newuserdatauv(L, sizeof *b, 0);
  memset(b, 0, sizeof *b);
  luaL_setmetatable(L, UBUF_MT);
  if (ghl_buf_addredacted(b, s, n) != 0) {
    ghl_buf_free(b);
    return luaL_error(L, "not enough memory");
  }
  lua_pushlstring(L, b->data, b->len);
  ghl_buf_free(b);
  return 1;
}

static const luaL_Reg util_funcs[] = {
  {"redact", util_redact},
  {NULL, NULL}
};

int luaopen_ghl_util_native(lua_State *L) {
  if (luaL_newmetatable(L, UBUF_MT)) {
    lua_pushcfunction(L, ubuf_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  luaL_newlib(L, util_funcs);
  return 1;
}
