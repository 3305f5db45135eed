-- ghl.jq, the libjq binding: compiling filters (jq's messages as usage
-- errors), running them over one or several JSON inputs, runtime errors,
-- faithful formatting ([] vs {}, key order, numbers), encoding Lua values,
-- and cleanup after raises. CI runs this file under ASan/LSan, so every
-- path that frees (errors, close, a raising callback, the collector) is
-- exercised here.
local jq = require "ghl.jq"
local E = require "ghl.error"

local function run(filter, input, opts)
  local p = assert(jq.compile(filter))
  local out, err = p:run(input, opts)
  p:close()
  return out, err
end

describe("ghl.jq.compile", function()
  it("returns a program for a valid filter", function()
    local p = jq.compile(".a | .b")
    assert.matches("^ghl%.jq%.program$", tostring(p))
    p:close()
    assert.matches("closed", tostring(p))
  end)

  -- {filter, pattern in jq's message}
  local bad = {
    { ".foo |||", "syntax error, unexpected '|'" },
    { ".[", "syntax error, unexpected $end" },
    { "nosuchfn(1)", "nosuchfn/1 is not defined" },
    { "$undefined", "$undefined is not defined" },
  }
  for _, case in ipairs(bad) do
    it("fails with kind usage and jq's message for " .. case[1], function()
      local p, err = jq.compile(case[1])
      assert.is_nil(p)
      assert.is_true(E.is(err))
      assert.are.equal("usage", err.kind)
      assert.are.equal(case[1], err.filter)
      assert.matches(case[2], err.message, 1, true)
      assert.matches("jq: 1 compile error", err.message, 1, true)
      assert.is_nil(err.message:find(" \n", 1, true), "no trailing blanks on a line")
    end)
  end

  it("refuses a filter with a NUL byte and non-string arguments (bugs raise)", function()
    assert.has_error(function() jq.compile(".a\0.b") end)
    assert.has_error(function() jq.compile() end)
  end)

  it("raises when a closed program is run", function()
    local p = assert(jq.compile("."))
    p:close()
    p:close()   -- idempotent
    assert.has_error(function() p:run("1") end, "attempt to use a closed jq program")
  end)

  it("closes with <close>", function()
    local kept
    do
      local p <close> = assert(jq.compile("."))
      kept = p
    end
    assert.matches("closed", tostring(kept))
  end)
end)

describe("prog:run", function()
  -- {filter, input, opts, outputs}
  local cases = {
    { ".", '{"b":[],"a":{}}', nil, { '{"b":[],"a":{}}' } },
    { ".", '{"b":1,"a":2}', { sort = true }, { '{"a":2,"b":1}' } },
    { ".a, .b", '{"a":1,"b":"x"}', nil, { "1", '"x"' } },
    { ".[]", '["a","b"]', { raw = true }, { "a", "b" } },
    { ".[]", '["a",1,null]', { raw = true }, { "a", "1", "null" } },
    { ".x", "1e1000", nil, nil },   -- runtime error: see below
    { "empty", "[1]", nil, {} },
    { ".", "", nil, {} },
    { ". * 2", "1 2\n3", nil, { "2", "4", "6" } },
    { ".", "12345678901234567890", nil, { "12345678901234567000" } },
    { ".", "[1.5, 0.1, 100, -0]", nil, { "[1.5,0.1,100,-0]" } },
    { "[.[] | select(. > 1)]", "[1,2,3]", nil, { "[2,3]" } },
    { ".", '{"a":[1,{"b":[]}]}', { indent = 2 }, { '{\n  "a": [\n    1,\n    {\n      "b": []\n    }\n  ]\n}' } },
    { "1, halt, 2", "null", nil, { "1" } },
    { "limit(3; repeat(1))", "null", nil, { "1", "1", "1" } },
    { '"\\u00e9\\u0000"', "null", nil, { '"é\\u0000"' } },
  }
  for _, case in ipairs(cases) do
    if case[4] then
      it(("runs %q on %q"):format(case[1], case[2]), function()
        assert.are.same(case[4], (assert(run(case[1], case[2], case[3]))))
      end)
    end
  end

  it("colours like jq when asked", function()
    local out = assert(run(".", '{"a":[]}', { color = true }))
    assert.matches("\27%[", out[1])
    assert.matches('"a"', out[1])
    assert.is_nil(assert(run(".", '{"a":[]}'))[1]:find("\27", 1, true))
  end)

  it("fails with kind decode and jq's position for input that is not JSON", function()
    local out, err = run(".", '{"a":1} {"b":')
    assert.is_nil(out)
    assert.are.equal("decode", err.kind)
    assert.matches("Unfinished JSON term at EOF at line 1, column 13", err.message, 1, true)
    assert.are.same({ '{"a":1}' }, err.outputs)
    local _, err2 = run(".", "nope")
    assert.matches("at line 1, column 4", err2.message, 1, true)
  end)

  it("fails with kind jq for a runtime error, keeping the outputs before it", function()
    local out, err = run(".[] | .x", '[{"x":1}, 2]')
    assert.is_nil(out)
    assert.are.equal("jq", err.kind)
    assert.are.equal('jq: error: Cannot index number with string "x"', err.message)
    assert.are.same({ "1" }, err.outputs)
    local _, e2 = run('error({"code":7})', "null")
    assert.are.equal('jq: error: {"code":7}', e2.message)
    local _, e3 = run(".[] | halt_error", '["boom\\n"]')
    assert.are.equal("jq: halt_error: boom", e3.message)
  end)

  it("passes each output to a function instead, and stays usable after it raises", function()
    local p = assert(jq.compile(".[]"))
    local seen = {}
    assert.is_true(p:run("[1,2,3]", nil, function(s) seen[#seen + 1] = s end))
    assert.are.same({ "1", "2", "3" }, seen)
    local ok, msg = pcall(p.run, p, "[1,2,3]", nil, function(s) if s == "2" then error("stop here") end end)
    assert.is_false(ok)
    assert.matches("stop here", msg)
    assert.are.same({ "4", "5" }, assert(p:run("[4,5]")))
    p:close()
  end)

  it("runs one program many times and leaves the collector to free forgotten ones", function()
    local p = assert(jq.compile("{n: (.n + 1)}"))
    for i = 1, 200 do
      assert.are.equal(('{"n":%d}'):format(i + 1), p:run(('{"n":%d}'):format(i))[1])
    end
    for _ = 1, 5 do
      local q = jq.compile(".a")
      q:run('{"a":[1,2,3]}', nil, function() end)
      local _ = jq.compile("syntax error here")
    end
    collectgarbage()
    collectgarbage()
  end)

  it("checks its arguments", function()
    local p = assert(jq.compile("."))
    assert.has_error(function() p:run() end)
    assert.has_error(function() p:run("1", { indent = 9 }) end)
    assert.has_error(function() p:run("1", nil, 42) end)
    p:close()
  end)
end)

describe("ghl.jq.format", function()
  it("keeps [] and {}, the key order and the numbers, and sorts or indents on request", function()
    local text = '{"z":[],"a":{},"n":1.0,"big":123456789012345678,"s":"x"}'
    assert.are.equal('{"z":[],"a":{},"n":1,"big":123456789012345680,"s":"x"}', jq.format(text))
    assert.are.equal('{"a":{},"big":123456789012345680,"n":1,"s":"x","z":[]}', jq.format(text, { sort = true }))
    assert.are.equal('{\n  "a": {},\n  "b": []\n}', jq.format('{"b":[],"a":{}}', { indent = 2, sort = true }))
    assert.are.equal('[\n    1\n]', jq.format("[1]", { indent = 4 }))
  end)

  -- {text, pattern}
  local bad = {
    { "", "no value" },
    { "  \n ", "no value" },
    { '{"a":', "Unfinished JSON term at EOF at line 1, column 5" },
    { '{"a" 1}', "at line 1, column 7" },
    { "[1] [2]", "unexpected extra JSON values" },
    { "[1] x", "at line 1, column 5" },
    { "{'a':1}", "Invalid" },
  }
  for _, case in ipairs(bad) do
    it(("fails with kind decode for %q"):format(case[1]), function()
      local out, err = jq.format(case[1])
      assert.is_nil(out)
      assert.are.equal("decode", err.kind)
      assert.matches(case[2], err.message, 1, true)
    end)
  end
end)

describe("ghl.jq.encode", function()
  it("encodes Lua values, with arrays by their keys or a marker", function()
    local null = require("cjson").null
    assert.are.equal("[1,2,3]", jq.encode { 1, 2, 3 })
    assert.are.equal("{}", jq.encode {})
    assert.are.equal("[]", jq.encode({}, { empty = "array" }))
    assert.are.equal("[]", jq.encode(setmetatable({}, jq.array_mt)))
    assert.are.equal('{"1":"a","x":true}', jq.encode({ "a", x = true }, { sort = true }))
    assert.are.equal('{"2":"b"}', jq.encode { [2] = "b" })
    assert.are.equal("null", jq.encode(null))
    assert.are.equal("[null,9007199254740992,0.5,3]", jq.encode { null, 2 ^ 53, 0.5, 3 })
    assert.are.equal('"a\\"b\\n\\u0000"', jq.encode('a"b\n\0'))
    assert.are.equal('{"t":{"u":[]}}', jq.encode({ t = { u = {} } }, { empty = "array" }))
    assert.are.equal('{\n  "a": [\n    1\n  ]\n}', jq.encode({ a = { 1 } }, { indent = 2 }))
  end)

  it("raises for values JSON cannot hold, freeing what it built", function()
    assert.has_error(function() jq.encode { f = print } end, "ghl.jq.encode: cannot encode a function")
    assert.has_error(function() jq.encode { [true] = 1 } end, "ghl.jq.encode: cannot encode a table key of type boolean")
    local t = { a = { 1, 2 } }
    t.a[3] = t
    assert.has_error(function() jq.encode(t) end, "ghl.jq.encode: nesting too deep (a cycle?)")
    assert.has_error(function() jq.encode({}, { empty = "list" }) end)
  end)

  it("round-trips through format", function()
    local text = jq.encode({ list = setmetatable({}, jq.array_mt), obj = {}, n = 42, s = "é" }, { sort = true })
    assert.are.equal(text, jq.format(text, { sort = true }))
    assert.are.equal('{"list":[],"n":42,"obj":{},"s":"é"}', text)
  end)
end)
