-- ghl.json: the one JSON encoder (src/json.c) through its Lua API, the
-- library's ghl.json, and the places that write JSON with it (ghl.http's
-- json= bodies, the simulator's replies, jq.format over its text).
local json = require "ghl.json"
local jq = require "ghl.jq"
local cjson = require "cjson"
local sim = require "support.sim"

local function enc(v, o) return (assert(json.encode(v, o))) end

describe("ghl.json.encode", function()
  it("tells arrays from objects by their keys or a marker", function()
    assert.are.equal("[1,2,3]", enc { 1, 2, 3 })
    assert.are.equal("{}", enc {})
    assert.are.equal("[]", enc({}, { empty = "array" }))
    assert.are.equal("[]", enc(json.array()))
    assert.are.equal("[]", enc(setmetatable({}, json.array_mt)))
    assert.are.equal("{}", enc(json.object()))
    assert.are.equal('{"1":"a","x":true}', enc { "a", x = true })
    assert.are.equal('{"2":"b"}', enc { [2] = "b" })
    assert.are.equal("[null,null,3]", enc(json.array { [3] = 3 }))
    assert.are.equal("[null,null,null,null,null,null,null,null,null,null,null,12]", enc(json.array { [12] = 12 }))
    assert.are.equal("[1,2,null,null,null,null,null,null,null,null,null,null,null,14]",
      enc(json.array { 1, 2, [14] = 14 }))
    assert.are.equal('{"1":1}', enc(json.object { 1 }))
    assert.are.equal('{"t":{"u":[]},"v":{}}', enc({ t = { u = {} }, v = json.object() }, { empty = "array" }))
    assert.are.equal("null", enc(nil))
    assert.are.equal("null", enc(json.null))
    assert.are.equal(cjson.null, json.null)
    assert.are.equal("[true,false,null]", enc(json.array { true, false, json.null }))
  end)

  it("writes object keys sorted, or in the order a list gives", function()
    assert.are.equal('{"A":1,"_":2,"a":3,"b":4,"ba":5}', enc { b = 4, a = 3, A = 1, _ = 2, ba = 5 })
    assert.are.equal('{"10":"x","9":"y","k":1}', enc { [10] = "x", [9] = "y", k = 1 })
    local ORDER = { "id", "name", "email" }
    local c = json.object({ email = "e", tags = json.array(), id = "i", name = "n", z = 0, a = 1 }, ORDER)
    assert.are.equal('{"id":"i","name":"n","email":"e","a":1,"tags":[],"z":0}', enc(c))
    -- keys of the list the table lacks are skipped
    assert.are.equal('{"name":"n"}', enc(json.object({ name = "n" }, ORDER)))
    -- a key the list repeats is written once, where it first appears
    assert.are.equal('{"b":2,"a":1}', enc(json.object({ a = 1, b = 2 }, { "b", "b" })))
    assert.are.equal('{"b":2,"a":1,"c":3}', enc(json.object({ a = 1, b = 2, c = 3 }, { "b", "a", "b", "a" })))
    -- one metatable per order list
    assert.are.equal(getmetatable(json.object({}, ORDER)), getmetatable(c))
  end)

  it("writes integers exactly and floats in the fewest digits that read back", function()
    assert.are.equal("[0,-7,9007199254740993,-9223372036854775808]",
      enc { 0, -7, 9007199254740993, math.mininteger })
    assert.are.equal("[3,9007199254740992,0.5,0.1,-0]", enc { 3.0, 2 ^ 53, 0.5, 0.1, -0.0 })
    assert.are.equal("[0.3333333333333333,1e+300,1.7976931348623157e+308]",
      enc { 1 / 3, 1e300, 1.7976931348623157e308 })
    assert.are.equal("1.2345678901234568e+20", enc(123456789012345678901.0))
    for _, x in ipairs { 0.1, 1 / 3, 2 ^ 60 + 0.0, 1e-7, 123.456, 2 ^ -1074 } do
      assert.are.equal(x, cjson.decode(enc(x)))
    end
  end)

  it("escapes what JSON needs and keeps the rest as given", function()
    assert.are.equal('"a\\"b\\\\c\\n\\r\\t\\b\\f\\u0000\\u001f\\u007f/é"', enc('a"b\\c\n\r\t\b\f\0\31\127/é'))
    assert.are.equal('"\xff\xfe"', enc("\xff\xfe"))   -- not UTF-8: bytes kept, as lua-cjson does
    assert.are.equal('{"a/b":"x"}', enc { ["a/b"] = "x" })
  end)

  it("writes a table that a finalizer empties while it is written (keys stay alive)", function()
    -- the encoder's growth allocates in the state: a collection step then
    -- could run a finalizer, which would free the key strings it holds
    for _ = 1, 10 do
      local t, n = {}, 0
      for i = 1, 3000 do t[string.format("key%06d_%s", i, string.rep("z", 50))] = string.rep("v", 200) end
      for _ = 1, 100 do
        setmetatable({}, { __gc = function() for k in pairs(t) do t[k] = nil end end })
      end
      local text = assert(json.encode(t))
      for _ in text:gmatch('"key%d+_z+":"v+"') do n = n + 1 end
      assert.are.equal(3000, n)
    end
    assert.is_true(collectgarbage("isrunning"))             -- restarted after each
    collectgarbage("stop")
    json.encode { a = 1 }
    assert.is_false(collectgarbage("isrunning"))   -- left as the caller had it
    collectgarbage("restart")
  end)

  it("refuses what JSON cannot hold with nil and an encode error", function()
    local cases = {
      { { f = print }, "cannot encode a function" },
      { { [true] = 1 }, "cannot encode a table key of type boolean" },
      { 0 / 0, "cannot encode NaN" },
      { { x = math.huge }, "cannot encode an infinite number" },
      { { [math.huge] = 1 }, "NaN or infinite" },
      { { co = coroutine.create(print) }, "cannot encode a thread" },
      { setmetatable({ 1, x = 2 }, json.array_mt), "marked as an array has a key that is not a positive integer" },
      { json.array { [13] = 1 }, "excessively sparse array" },
      { json.array { [5e7] = 1 }, "excessively sparse array" },
      { json.array { [2 ^ 40] = 1 }, "excessively sparse array" },
      { json.array { 1, 2, [100] = 3 }, "excessively sparse array" },
    }
    for _, c in ipairs(cases) do
      local v, err = json.encode(c[1])
      assert.is_nil(v)
      assert.are.equal("encode", err.kind)
      assert.matches(c[2], err.message, 1, true)
    end
    local t = { a = { 1, 2 } }
    t.a[3] = t
    local v, err = json.encode(t)
    assert.is_nil(v)
    assert.matches("a table contains itself (a cycle)", err.message, 1, true)
    local deep = {}
    local cur = deep
    for _ = 1, 1100 do cur.x = {}; cur = cur.x end
    v, err = json.encode(deep)
    assert.is_nil(v)
    assert.matches("nested more than 1000 levels deep", err.message, 1, true)
    local shared = { 1 }
    assert.are.equal('{"a":[1],"b":[1]}', enc { a = shared, b = shared })   -- shared, not a cycle
    assert.has_error(function() json.encode({}, { empty = "list" }) end)
  end)

  it("decodes with lua-cjson and reads back what it wrote", function()
    local v = { contacts = { { id = "a", tags = {}, n = 2 ^ 53 } }, meta = { total = 1, next = json.null } }
    local back = json.decode(enc(v))
    assert.are.same({ contacts = { { id = "a", tags = {}, n = 2 ^ 53 } }, meta = { total = 1, next = cjson.null } }, back)
    local nothing, msg = json.decode("{")
    assert.is_nil(nothing)
    assert.is_string(msg)
  end)

  it("is the library's ghl.json", function()
    assert.are.equal(json, require("ghl").json)
  end)

  it("gives jq.format a text it prints the jq way", function()
    local text = enc { list = json.array(), obj = {}, n = 42, s = "é" }
    assert.are.equal('{"list":[],"n":42,"obj":{},"s":"é"}', text)
    assert.are.equal(text, jq.format(text, { sort = true }))
    assert.are.equal('{\n  "a": [\n    1\n  ]\n}', jq.format(enc { a = { 1 } }, { indent = 2 }))
    assert.is_nil(jq.encode)
  end)
end)

describe("ghl.json.decode", function()
  local csafe = require "cjson.safe"

  -- Why a and b differ (types, number subtypes, sign of zero, NaN, null,
  -- metatables, keys), or nil when they are the same.
  local function differs(a, b, path)
    if type(a) ~= type(b) then return path .. ": " .. type(a) .. " vs " .. type(b) end
    if type(a) == "number" then
      if math.type(a) ~= math.type(b) then return path .. ": subtype" end
      if a ~= a and b ~= b then return nil end
      if a ~= b or 1 / a ~= 1 / b then return ("%s: %.17g vs %.17g"):format(path, a, b) end
      return nil
    end
    if type(a) ~= "table" then return a ~= b and path .. ": " .. tostring(a) .. " vs " .. tostring(b) or nil end
    if getmetatable(a) ~= getmetatable(b) then return path .. ": metatable" end
    for k, v in pairs(a) do
      local why = differs(v, b[k], path .. "." .. tostring(k))
      if why then return why end
    end
    for k in pairs(b) do if a[k] == nil then return path .. "." .. tostring(k) .. ": missing" end end
    return nil
  end
  local function like_cjson(text)
    local got, gerr = json.decode(text)
    local want, werr = csafe.decode(text)
    assert.are.equal(werr, gerr, ("error for %q"):format(text:sub(1, 60)))
    assert.is_nil(differs(got, want, "$"), ("value for %q"):format(text:sub(1, 60)))
    return got, gerr
  end

  it("gives what lua-cjson gives on its edge cases, errors included", function()
    local deep = string.rep("[", 1000) .. string.rep("]", 1000)
    for _, text in ipairs {
      "1", "-0", "-0.0", "1.5", "1e400", "-1e400", "9007199254740993", "18446744073709551617",
      "9223372036854775807", "123456789012345", "1234567890123456", "01", "-01", "0x10", "+1", "1.", ".5",
      "NaN", "Infinity", "-inf", "1e", "-", '"\\u0000"', '"\\ud800"', '"\\udc00"', '"\\ud83d\\ude00"',
      '"\\ud83dx"', '"\255\254"', '"a\1b"', '"\\x"', '"\\/\\b\\f\\n\\r\\t\\"\\\\"', '"abc', '"a\0b"', "1\0",
      "[1]\0x", "", " ", "[1,]", '{"a":1,}', "[]", "{}", "[[],{}]", "null", "[null]", '{"a":null}', "true", "tru",
      "nulll", " 1 x", "1 2", " \t\r\n[ 1 , 2 ]\n", '{"a":1,"a":2}', '{"a" 1}', "{1:2}", "[1 2]", "\f1",
      deep, "[" .. deep .. "]", string.rep('{"a":', 1001) .. "1" .. string.rep("}", 1001),
    } do
      like_cjson(text)
    end
  end)

  it("reads numbers as floats, null as json.null and keeps bytes as they are", function()
    assert.are.equal("float", math.type(json.decode("1")))
    assert.are.equal(9007199254740992.0, json.decode("9007199254740993"))
    assert.are.equal(math.huge, json.decode("1e400"))
    assert.are.equal(-math.huge, 1 / json.decode("-0"))
    local v = json.decode('{"a":null,"b":[],"c":{},"d":"\255\1","a2":[null,1],"k":1,"k":2}')
    assert.are.equal(json.null, v.a)
    assert.are.equal(cjson.null, v.a2[1])
    assert.are.same({}, v.b)
    assert.is_nil(getmetatable(v.b))
    assert.are.equal("\255\1", v.d)
    assert.are.equal(2, v.k)
  end)

  it("refuses what lua-cjson refuses with its messages", function()
    local deep = string.rep("[", 1001) .. string.rep("]", 1001)
    local cases = {
      [deep] = "Found too many nested data structures (1001) at character 1001",
      ["[1] x"] = "Expected the end but found invalid token at character 5",
      ['{"a":1,}'] = "Expected object key string but found T_OBJ_END at character 8",
      ['"\\ud800"'] = "Expected value but found invalid unicode escape code at character 2",
    }
    for text, msg in pairs(cases) do
      local v, err = json.decode(text)
      assert.is_nil(v)
      assert.are.equal(msg, err)
    end
  end)

  it("builds large arrays and objects (past one chunk of the stack) like lua-cjson", function()
    local items, keys = {}, {}
    for i = 1, 5000 do items[i] = tostring(i) end
    for i = 1, 4500 do keys[i] = ('"k%d":%d'):format(i % 4000, i) end      -- 500 duplicates
    like_cjson("[" .. table.concat(items, ",") .. "]")
    local obj = like_cjson("{" .. table.concat(keys, ",") .. "}")
    assert.are.equal(4000.0, obj.k0)                                         -- the last k0 wins
    like_cjson("[" .. string.rep("[" .. string.rep("0,", 2100) .. "[", 50) .. string.rep("]]", 50) .. "]")
    local page = {}
    for i = 1, 100 do
      page[i] = ('{"id":"c%d","email":"a%d@example.com","tags":["x","y"],"dnd":{"SMS":{"status":"active","code":""}}}')
        :format(i, i)
    end
    local v = like_cjson('{"contacts":[' .. table.concat(page, ",") .. '],"meta":{"total":100,"nextPage":null}}')
    assert.are.equal(100, #v.contacts)
    assert.are.equal("a100@example.com", v.contacts[100].email)
  end)

  -- The decoder keeps the key strings it made (a bounded cache per Lua
  -- state, lasting from call to call): these keys share its slot (same
  -- length, same first, middle and last byte), three of them more than the
  -- slot's two ways hold.
  it("keeps object keys right from call to call, keys that share a cache slot included", function()
    local same_slot = { "abxcd", "acxbd", "aexfd" }
    for round = 1, 4 do
      for i, k in ipairs(same_slot) do
        local v = like_cjson(('{"%s":%d,"id":"r%d"}'):format(k, i, round))
        assert.are.equal(i + 0.0, v[k])
        for j, other in ipairs(same_slot) do if j ~= i then assert.is_nil(v[other]) end end
      end
      local all = like_cjson('{"abxcd":1,"acxbd":2,"aexfd":3,"abxcd":4,"id":"x"}')
      assert.are.same({ abxcd = 4, acxbd = 2, aexfd = 3, id = "x" }, all)
    end
    local k40, k41 = string.rep("k", 39) .. "x", string.rep("k", 40) .. "x"
    for _ = 1, 3 do
      for _, text in ipairs {
        ('{"%s":1,"%s":2,"":3}'):format(k40, k41),
        '{"ab":1,"a\\u0062":2}', '{"a\\u0062":1,"ab":2}', '{"a\\u0000b":1,"a":2}',
        '{"\\u00e9t\\u00e9":1,"\195\169t\195\169":2}', '{"key":{"key":{"key":[{"key":1}]}}}',
      } do
        like_cjson(text)
      end
    end
    assert.are.equal(2, json.decode('{"ab":1,"a\\u0062":2}').ab)
  end)

  it("does not keep every key it has seen: its cache is bounded", function()
    local function objects(from)
      local parts = {}
      for i = 1, 50 do parts[i] = ('"key-%d-%d":%d'):format(from, i, i) end
      return "{" .. table.concat(parts, ",") .. "}"
    end
    json.decode(objects(0))
    collectgarbage("collect")
    local before = collectgarbage("count")
    for n = 1, 2000 do                                        -- 100,000 distinct keys
      local v = json.decode(objects(n))
      assert.are.equal(50.0, v[("key-%d-50"):format(n)])
    end
    collectgarbage("collect")
    collectgarbage("collect")
    local grown = collectgarbage("count") - before
    assert.is_true(grown < 64, ("the heap kept %.0f KiB after 100,000 distinct keys"):format(grown))
  end)

  it("keeps one cache per Lua state: a recipe's decodes and the host's do not mix", function()
    local sandbox = require "ghl.sandbox"
    local text = '{"shared":1,"abxcd":2,"acxbd":3,"nested":{"shared":[4]}}'
    for _ = 1, 3 do
      local b = sandbox.new {}
      local info = b:load("recipe { name = 'keys', writes = false }\n" ..
        "return function(params) local json = require 'ghl.json' local v = json.decode(params.text)\n" ..
        "json.decode('{\"other\":1,\"aexfd\":2}') return { v.shared, v.abxcd, v.acxbd, v.nested.shared[1] } end\n",
        "=keys")
      assert.is_true(info.has_main)
      b:policy { manifest = { name = "keys", writes = false } }
      assert.are.same({ 1, 2, 3, 4 }, b:main({ text = text }, nil, nil))
      b:close()
      collectgarbage("collect")
      local v = like_cjson(text)
      assert.are.same({ 4 }, v.nested.shared)
      like_cjson('{"other":1,"aexfd":2}')
    end
  end)

  it("is what resp:json() decodes with", function()
    local http = require "ghl.http"
    local s = sim.start { "--faults" }
    local ok, failure = pcall(function()
      local resp = assert(http.request { method = "POST", url = s.url .. "/__fault/echo",
        body = '{"k":1,"k":[null,-0,1e400,"\\u00e9"]}', headers = { ["Content-Type"] = "application/json" } })
      assert.is_nil(differs(assert(resp:json()), csafe.decode(resp.body), "$"))
      local cut = assert(http.request { url = s.url .. "/__fault/truncated-json" })
      local v, err = cut:json()
      assert.is_nil(v)
      local _, msg = csafe.decode(cut.body)
      assert.are.equal("decode", err.kind)
      assert.are.equal(msg, err.message:sub(-#msg))
    end)
    s.stop()
    assert(ok, failure)
  end)
end)

describe("ghl.json through ghl.http and the simulator", function()
  local s
  setup(function() s = sim.start { "--faults" } end)
  teardown(function() if s then s.stop() end end)

  it("writes ghl.http's json= bodies in C, sorted, and returns an encode error for bad values", function()
    local http = require "ghl.http"
    local resp = assert(http.request { method = "POST", url = s.url .. "/__fault/echo",
      json = { b = json.array(), a = { 9007199254740993, "x/y" } } })
    local got = assert(resp:json())
    assert.are.equal('{"a":[9007199254740993,"x/y"],"b":[]}', got.body)
    local r, err = http.request { method = "POST", url = s.url .. "/__fault/echo", json = { f = print } }
    assert.is_nil(r)
    assert.are.equal("encode", err.kind)
    assert.matches("cannot encode a function", err.message, 1, true)
    assert.are.equal(0, http.pending())
  end)

  it("writes the simulator's replies with empty arrays as []", function()
    local http = require "ghl.http"
    local resp = assert(http.request { url = s.url .. "/__fault/echo" })
    assert.are.equal(200, resp.status)
    local reply = require "ghl.sim.reply"
    assert.are.equal('{"contacts":[],"meta":{"total":0}}', reply.encode { contacts = reply.array(), meta = { total = 0 } })
    assert.is_true(reply.is_array(reply.array()))
    assert.has_error(function() reply.encode { f = print } end, "ghl.sim.reply: JSON: cannot encode a function")
  end)
end)
