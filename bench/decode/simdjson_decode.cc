/*
** simdjson_decode: the issue 17 decoder experiment (b), bench-only.
**
** simdjson (Debian libsimdjson-dev 3.0.1, DOM API) parses and validates the
** text into its tape; the Lua values are then built from the DOM the way
** fastjson.c builds them: tables created at their final size (the tape
** stores every container's element count), object keys through the same
** kind of small key cache, numbers as floats, null as a NULL light userdata,
** the last duplicate key winning. Whatever simdjson refuses (invalid UTF-8,
** numbers lua-cjson reads through strtod, NUL bytes, ...) and nesting
** deeper than lua-cjson's 1000 go to lua-cjson's decode (upvalue 1), so
** values and error messages stay lua-cjson's.
*/
#include <simdjson.h>

#include <cstring>

extern "C" {
#include <lauxlib.h>
#include <lua.h>
#include "simdjson_decode.h"
}

namespace {

const int MAXDEPTH = 1000;
const unsigned KCACHE = 256;
const size_t KMAXLEN = 40;

struct kent { const char *s; size_t len; };

struct builder {
  lua_State *L;
  int cache;
  kent keys[KCACHE];

  void key(std::string_view k) {
    size_t len = k.size();
    const unsigned char *s = reinterpret_cast<const unsigned char *>(k.data());
    if (len > KMAXLEN) { lua_pushlstring(L, k.data(), len); return; }
    unsigned h = len ? (unsigned(len) * 31u + s[0] * 7u + s[len - 1] + s[len >> 1] * 13u) & (KCACHE - 1) : 0;
    kent &e = keys[h];
    if (e.s && e.len == len && std::memcmp(e.s, s, len) == 0) {
      lua_rawgeti(L, cache, lua_Integer(h) + 1);
    } else {
      e.s = lua_pushlstring(L, k.data(), len);
      e.len = len;
      lua_pushvalue(L, -1);
      lua_rawseti(L, cache, lua_Integer(h) + 1);
    }
  }

  bool value(simdjson::dom::element el, int depth) {
    using simdjson::dom::element_type;
    switch (el.type()) {
      case element_type::ARRAY: {
        if (depth >= MAXDEPTH || !lua_checkstack(L, 4)) return false;
        simdjson::dom::array a = el.get_array().value_unsafe();
        lua_createtable(L, int(a.size()), 0);
        lua_Integer i = 0;
        for (simdjson::dom::element child : a) {
          if (!value(child, depth + 1)) return false;
          lua_rawseti(L, -2, ++i);
        }
        return true;
      }
      case element_type::OBJECT: {
        if (depth >= MAXDEPTH || !lua_checkstack(L, 5)) return false;
        simdjson::dom::object o = el.get_object().value_unsafe();
        lua_createtable(L, 0, int(o.size()));
        for (simdjson::dom::key_value_pair kv : o) {
          key(kv.key);
          if (!value(kv.value, depth + 1)) return false;
          lua_rawset(L, -3);
        }
        return true;
      }
      case element_type::INT64: lua_pushnumber(L, double(el.get_int64().value_unsafe())); return true;
      case element_type::UINT64: lua_pushnumber(L, double(el.get_uint64().value_unsafe())); return true;
      case element_type::DOUBLE: lua_pushnumber(L, el.get_double().value_unsafe()); return true;
      case element_type::STRING: {
        std::string_view s = el.get_string().value_unsafe();
        lua_pushlstring(L, s.data(), s.size());
        return true;
      }
      case element_type::BOOL: lua_pushboolean(L, el.get_bool().value_unsafe()); return true;
      case element_type::NULL_VALUE: lua_pushlightuserdata(L, nullptr); return true;
    }
    return false;
  }
};

simdjson::dom::parser *the_parser;

/* simdjson reads -0 as the integer 0; lua-cjson (strtod) as -0.0. Texts
** holding "-0" not followed by more of a number go to lua-cjson. */
bool has_negative_zero(const char *s, size_t len) {
  const char *p = s, *end = s + len;
  while ((p = static_cast<const char *>(std::memchr(p, '-', size_t(end - p)))) != nullptr) {
    if (p + 1 < end && p[1] == '0') {
      char c = p + 2 < end ? p[2] : ' ';
      if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E')) return true;
    }
    p++;
  }
  return false;
}

}  // namespace

/* decode(text), as fastjson_decode; simdjson's parser (and its buffers)
** is kept for the process, as a real binding would keep one per state. */
extern "C" int simdjson_decode(lua_State *L) {
  size_t len;
  const char *s = luaL_checklstring(L, 1, &len);
  int base = lua_gettop(L);
  if (base == 1 && !has_negative_zero(s, len)) {
    if (!the_parser) the_parser = new simdjson::dom::parser();
    simdjson::dom::element doc;
    if (the_parser->parse(s, len, true).get(doc) == simdjson::SUCCESS) {
      builder *b = static_cast<builder *>(lua_newuserdatauv(L, sizeof(builder), 0));
      std::memset(b->keys, 0, sizeof b->keys);
      b->L = L;
      lua_createtable(L, KCACHE, 0);
      b->cache = lua_gettop(L);
      if (b->value(doc, 0)) return 1;
      lua_settop(L, base);
    }
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
  return lua_gettop(L);
}
