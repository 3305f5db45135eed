/*
** ref_decode URL N: N GETs of a contacts page with one reused easy handle,
** each body decoded by lua-cjson into a Lua table (cjson.decode called from
** C on a bare lua_State: no Lua code runs), and the page checked to hold
** 100 contacts. ghlua decodes with the same library into the same kind of
** value, so the ratio measures what ghlua adds, not a different parser.
** The reference of workload 4 in bench/api.lua.
*/
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "ref.h"

int luaopen_cjson(lua_State *L);

int main(int argc, char **argv) {
  struct body b = {0};
  struct curl_slist *hdrs;
  CURL *easy;
  lua_State *L;
  long i, n;
  if (argc != 3) die("usage", "ref_decode URL N");
  n = ref_count(argv[2]);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  L = luaL_newstate();
  luaopen_cjson(L);                                  /* cjson */
  lua_getfield(L, -1, "decode");                     /* cjson decode */
  hdrs = ref_headers();
  easy = curl_easy_init();
  ref_setup(easy, argv[1], hdrs, &b);
  for (i = 0; i < n; i++) {
    b.len = 0;
    ref_check(easy, curl_easy_perform(easy), &b);
    lua_pushvalue(L, -1);                            /* ... decode decode */
    lua_pushlstring(L, b.data, b.len);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) die("decode", lua_tostring(L, -1));
    if (lua_getfield(L, -1, "contacts") != LUA_TTABLE || lua_rawlen(L, -1) != 100)
      die("decode", "the page does not hold 100 contacts");
    lua_pop(L, 2);                                   /* cjson decode */
  }
  lua_close(L);
  curl_easy_cleanup(easy);
  curl_slist_free_all(hdrs);
  free(b.data);
  curl_global_cleanup();
  return 0;
}
