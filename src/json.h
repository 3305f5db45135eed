/* The one JSON encoder and decoder (src/json.c), for C callers such as
** ghl.http and ghl.jq; Lua sees them as ghl.json.encode and .decode. */
#ifndef GHL_JSON_H
#define GHL_JSON_H

#include <lua.h>

#include "buf.h"

#define GHL_JSON_ARRAY_MT "ghl.json.array"    /* registry: the array marker */
#define GHL_JSON_OBJECT_MT "ghl.json.object"  /* registry: the object marker */

/* Append the JSON text of the value at idx to out. empty_array: an empty
** table without a marker is written [] instead of {}. Returns 0; or -1 with
** a ghl.error of kind "encode" pushed (a value JSON cannot hold, a cycle,
** nesting deeper than 1000, out of memory for out); out is then unchanged.
** The text is made in the state's memory (its allocator, its cap) and then
** appended to out. Raises only when Lua runs out of memory (nothing leaks
** then). Stack: 0, or +1 on failure. */
int ghl_json_encode(lua_State *L, int idx, ghl_buf *out, int empty_array);

/* ghl.json.decode as a lua_CFunction: decode(text) -> value, or what its
** upvalue 1 (a lua-cjson decode; ghl.json gives it cjson.safe.decode)
** returns for the texts the fast path leaves to lua-cjson, errors included.
** Push it with lua_pushcclosure(L, ghl_json_decode, 1). */
int ghl_json_decode(lua_State *L);

int luaopen_ghl_json(lua_State *L);

#endif
