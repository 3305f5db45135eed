/* The decoders of the issue 17 experiment (bench/decode). Each is a Lua C
** function decode(text) with a lua-cjson decode function as upvalue 1,
** which it calls on any text its fast path does not take. */
#ifndef FASTJSON_H
#define FASTJSON_H
#include <lua.h>
#ifdef __cplusplus
extern "C" {
#endif
int fastjson_decode(lua_State *L);   /* (a) presized tables, key cache */
int simdjson_decode(lua_State *L);   /* (b) simdjson DOM, same building */
#ifdef __cplusplus
}
#endif
#endif
