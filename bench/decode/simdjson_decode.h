/* The simdjson decoder of the issue 17 experiment (bench/decode): a Lua C
** function decode(text) with a lua-cjson decode function as upvalue 1,
** which it calls on any text its fast path does not take, like
** ghl_json_decode (src/json.c, experiment (a), adopted). */
#ifndef SIMDJSON_DECODE_H
#define SIMDJSON_DECODE_H
#include <lua.h>
#ifdef __cplusplus
extern "C" {
#endif
int simdjson_decode(lua_State *L);   /* (b) simdjson DOM, same building */
#ifdef __cplusplus
}
#endif
#endif
