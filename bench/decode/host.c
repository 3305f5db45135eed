/*
** decode_host SCRIPT [ARG...]: a bare Lua 5.4 state for the issue 17
** decoder experiment. It runs SCRIPT (bench.lua or check.lua) with the
** standard libraries, arg, and the global table `dec`:
**   dec.cjson      lua-cjson's decode (cjson.safe.decode: nil, message on error)
**   dec.fast       ghl.json.decode (src/json.c's ghl_json_decode), falling back to dec.cjson
**   dec.simd       simdjson_decode.cc's decode, falling back to dec.cjson
**   dec.null       cjson.null
**   dec.clock()    CLOCK_MONOTONIC seconds
**   dec.cpu()      CLOCK_PROCESS_CPUTIME_ID seconds
**   dec.allocs()   allocations made through Lua's allocator so far, and bytes
** lua-cjson is linked statically (as ghlua links it), so the three share
** one build of it.
*/
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "simdjson_decode.h"
#include "json.h"

int luaopen_cjson_safe(lua_State *L);

static unsigned long long n_alloc, n_bytes;

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  (void)ud;
  if (nsize == 0) { free(ptr); return NULL; }
  if (ptr == NULL || nsize > osize) { n_alloc++; n_bytes += nsize; }
  return realloc(ptr, nsize);
}

static double now(clockid_t c) {
  struct timespec ts;
  clock_gettime(c, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
static int l_clock(lua_State *L) { lua_pushnumber(L, now(CLOCK_MONOTONIC)); return 1; }
static int l_cpu(lua_State *L) { lua_pushnumber(L, now(CLOCK_PROCESS_CPUTIME_ID)); return 1; }
static int l_allocs(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)n_alloc);
  lua_pushinteger(L, (lua_Integer)n_bytes);
  return 2;
}

int main(int argc, char **argv) {
  lua_State *L;
  int i;
  if (argc < 2) { fprintf(stderr, "usage: decode_host SCRIPT [ARG...]\n"); return 2; }
  L = lua_newstate(counting_alloc, NULL);
  luaL_openlibs(L);
  lua_newtable(L);                                   /* dec */
  luaL_requiref(L, "cjson.safe", luaopen_cjson_safe, 0);
  lua_getfield(L, -1, "null");
  lua_setfield(L, -3, "null");
  lua_getfield(L, -1, "decode");                     /* dec safe decode */
  lua_pushvalue(L, -1);
  lua_setfield(L, -4, "cjson");
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, ghl_json_decode, 1);
  lua_setfield(L, -4, "fast");
#ifndef NO_SIMDJSON
  lua_pushcclosure(L, simdjson_decode, 1);
  lua_setfield(L, -3, "simd");
#else
  lua_pop(L, 1);
#endif
  lua_pop(L, 1);
  lua_pushcfunction(L, l_clock); lua_setfield(L, -2, "clock");
  lua_pushcfunction(L, l_cpu); lua_setfield(L, -2, "cpu");
  lua_pushcfunction(L, l_allocs); lua_setfield(L, -2, "allocs");
  lua_setglobal(L, "dec");
  lua_createtable(L, argc, 0);
  for (i = 1; i < argc; i++) { lua_pushstring(L, argv[i]); lua_rawseti(L, -2, i - 1); }
  lua_setglobal(L, "arg");
  if (luaL_dofile(L, argv[1]) != LUA_OK) {
    fprintf(stderr, "decode_host: %s\n", lua_tostring(L, -1));
    lua_close(L);
    return 1;
  }
  lua_close(L);
  return 0;
}
