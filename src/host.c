/*
** The host: builds the Lua state (standard libraries, native modules and the
** embedded lua/ tree, all in package.preload) and runs chunks the way lua.c
** does, with a message handler and a SIGINT hook.
*/
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <lauxlib.h>
#include <lualib.h>
#include <lua-cjson.h>

#include "embed.h"
#include "error.h"
#include "host.h"

int luaopen_cjson_safe(lua_State *L);  /* not declared by lua-cjson.h */
int luaopen_ghl_crypto(lua_State *L);
int luaopen_ghl_csv(lua_State *L);
int luaopen_ghl_http(lua_State *L);
int luaopen_ghl_jq(lua_State *L);
int luaopen_ghl_json(lua_State *L);
int luaopen_ghl_sandbox(lua_State *L);
int luaopen_ghl_server(lua_State *L);
int luaopen_ghl_store(lua_State *L);
int luaopen_ghl_sys(lua_State *L);
int luaopen_ghl_util_native(lua_State *L);

volatile int ghl_interrupted = 0;

/* ghl.http: libcurl's global initialisation (OpenSSL's with it) is done
** at its first require, so a process that makes no request does not pay
** it. main calls curl_global_cleanup at exit, which does nothing when it
** was never done. */
static int open_http(lua_State *L) {
  static int initialised;
  if (!initialised) {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      ghl_pusherror(L, "network", "cannot initialise libcurl (out of memory, or its TLS library failed to start)");
      return lua_error(L);
    }
    initialised = 1;
  }
  return luaopen_ghl_http(L);
}

/* Everything require-able that is written in C, like linit.c's list. */
static const luaL_Reg native_modules[] = {
  {"ghl.error", luaopen_ghl_error_host},
  {"ghl.crypto", luaopen_ghl_crypto},
  {"ghl._csv", luaopen_ghl_csv},
  {"ghl.http", open_http},
  {"ghl.jq", luaopen_ghl_jq},
  {"ghl.json", luaopen_ghl_json},
  {"ghl._sandbox", luaopen_ghl_sandbox},
  {"ghl.server", luaopen_ghl_server},
  {"ghl.store", luaopen_ghl_store},
  {"ghl.sys", luaopen_ghl_sys},
  {"ghl._util", luaopen_ghl_util_native},
  {"cjson", luaopen_cjson},
  {"cjson.safe", luaopen_cjson_safe},
  {NULL, NULL}
};

/* ---- Embedded Lua modules ---- */

/* package.preload loader for one embedded module. Upvalue 1: its index in
** ghl_embedded_modules (bytecode, compiled at build time). With
** GHLUA_LUA_DIR set (development only), the source file is read from that
** directory instead, so modules can be edited without a rebuild. Returns the module's value. */
static int embedded_loader(lua_State *L) {
  const struct ghl_embedded *m =
      &ghl_embedded_modules[lua_tointeger(L, lua_upvalueindex(1))];
  const char *dir = getenv("GHLUA_LUA_DIR");
  int status;
  if (dir && *dir) {
    const char *path = lua_pushfstring(L, "%s/%s", dir, m->chunkname + 5);
    status = luaL_loadfilex(L, path, "t");
  } else {
    status = luaL_loadbufferx(L, (const char *)m->data, m->size, m->chunkname, "b");
  }
  if (status != LUA_OK) return lua_error(L);
  lua_pushstring(L, m->name);
  lua_call(L, 1, 1);
  return 1;
}

/* Install native and embedded modules into package.preload. */
static void preload_all(lua_State *L) {
  const luaL_Reg *n;
  int i;
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);  /* preload */
  for (n = native_modules; n->name; n++) {
    lua_pushcfunction(L, n->func);
    lua_setfield(L, -2, n->name);
  }
  for (i = 0; ghl_embedded_modules[i].name; i++) {
    lua_pushinteger(L, i);
    lua_pushcclosure(L, embedded_loader, 1);
    lua_setfield(L, -2, ghl_embedded_modules[i].name);
  }
  lua_pop(L, 1);
}

/* Registry key of the standard require, captured by ghl_newstate. */
#define REQUIRE_KEY "ghl.require"

lua_State *ghl_newstate(void) {
  lua_State *L = luaL_newstate();
  if (L == NULL) return NULL;
  luaL_openlibs(L);
  preload_all(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);
  lua_getfield(L, -1, "require");               /* as luaopen_package set it */
  lua_setfield(L, LUA_REGISTRYINDEX, REQUIRE_KEY);
  lua_pop(L, 1);
  return L;
}

void ghl_pushrequire(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, REQUIRE_KEY);
}

void ghl_require(lua_State *L, const char *name) {
  ghl_pushrequire(L);
  lua_pushstring(L, name);
  lua_call(L, 1, 1);
}

/* ---- Running chunks (lua.c's docall) ---- */

static lua_State *global_L = NULL;

/* Hook set by the SIGINT handler: raise "interrupted!" at the next Lua
** instruction, as lua.c does. */
static void lstop(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  if (!ghl_interrupted) return;  /* a C loop already reported it */
  ghl_interrupted = 0;
  ghl_pusherror(L, "interrupted", "interrupted");
  lua_error(L);
}

/* SIGINT and SIGTERM: C loops (HTTP waits, the server) poll ghl_interrupted;
** Lua code is stopped by the hook. A second signal while the first is
** pending kills the process the default way. */
static void on_sigint(int sig) {
  int flag = LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT;
  signal(sig, SIG_DFL);
  ghl_interrupted = 1;
  if (global_L) lua_sethook(global_L, lstop, flag, 1);
}

/* Message handler: a ghl.error passes through untouched (it prints as one
** line) unless GHLUA_DEBUG is set; anything else is a bug and gets a
** traceback. */
static int msghandler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  const char *debug = getenv("GHLUA_DEBUG");
  if (ghl_iserror(L, 1)) {
    if (debug && *debug && strcmp(debug, "0") != 0) {
      luaL_traceback(L, L, luaL_tolstring(L, 1, NULL), 1);
      lua_setfield(L, 1, "traceback");
      lua_settop(L, 1);
    }
    return 1;
  }
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      return 1;
    msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int ghl_docall(lua_State *L, int narg, int nres) {
  int status;
  int base = lua_gettop(L) - narg;
  lua_pushcfunction(L, msghandler);
  lua_insert(L, base);
  global_L = L;
  ghl_interrupted = 0;
  signal(SIGINT, on_sigint);
  signal(SIGTERM, on_sigint);
  status = lua_pcall(L, narg, nres, base);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  lua_sethook(L, NULL, 0, 0);
  global_L = NULL;
  lua_remove(L, base);
  return status;
}

int ghl_report(lua_State *L) {
  int code = 1;
  if (ghl_iserror(L, -1)) {
    if (lua_getfield(L, -1, "kind") == LUA_TSTRING &&
        strcmp(lua_tostring(L, -1), "usage") == 0)
      code = 2;
    lua_pop(L, 1);
    if (lua_getfield(L, -1, "traceback") == LUA_TSTRING) {
      fprintf(stderr, "ghlua: %s\n", ghl_sanitized(L, -1, 1));
      lua_pop(L, 2);
    } else {
      lua_pop(L, 1);
      fprintf(stderr, "ghlua: %s\n", ghl_sanitized(L, -1, 0));
      lua_pop(L, 1);
    }
  } else if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER) {
    fprintf(stderr, "ghlua: %s\n", ghl_sanitized(L, -1, 1));   /* a bug: message and traceback */
    lua_pop(L, 1);
  } else {
    fprintf(stderr, "ghlua: (error object is not a string)\n");
  }
  fflush(stderr);
  lua_pop(L, 1);
  return code;
}
