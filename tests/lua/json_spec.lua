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

  it("refuses what JSON cannot hold with nil and an encode error", function()
    local cases = {
      { { f = print }, "cannot encode a function" },
      { { [true] = 1 }, "cannot encode a table key of type boolean" },
      { 0 / 0, "cannot encode NaN" },
      { { x = math.huge }, "cannot encode an infinite number" },
      { { [math.huge] = 1 }, "NaN or infinite" },
      { { co = coroutine.create(print) }, "cannot encode a thread" },
      { setmetatable({ 1, x = 2 }, json.array_mt), "marked as an array has a key that is not a positive integer" },
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
