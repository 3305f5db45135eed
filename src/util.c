/*
** ghl._util: the natives behind ghl.util (lua/ghl/util.lua), for rules that
** C code needs too and so are written in C once: how a secret is shown.
*/
#include <lauxlib.h>

#include "buf.h"

/* redact(secret) -> "…abcd" (ghl_buf_addredacted, the HTTP trace's rule). */
static int util_redact(lua_State *L) {
  size_t n;
  const char *s = luaL_checklstring(L, 1, &n);
  ghl_buf b = {0};
  if (ghl_buf_addredacted(&b, s, n) != 0) {
    ghl_buf_free(&b);
    return luaL_error(L, "not enough memory");
  }
  lua_pushlstring(L, b.data, b.len);
  ghl_buf_free(&b);
  return 1;
}

static const luaL_Reg util_funcs[] = {
  {"redact", util_redact},
  {NULL, NULL}
};

int luaopen_ghl_util_native(lua_State *L) {
  luaL_newlib(L, util_funcs);
  return 1;
}
