-- ghl.jq, the libjq binding: compiling filters (jq's messages as usage
-- errors), running them over one or several JSON inputs, runtime errors,
-- faithful formatting ([] vs {}, key order, numbers), encoding Lua values,
-- and cleanup after raises. Filters run in a worker process under limits:
-- the filters that take libjq 1.6 down (an assertion, `input` without a
-- callback, endless growth, endless output) end as one ghl.error and the
-- host carries on. CI runs this file under ASan/LSan, so every path that
-- frees (errors, close, a raising callback, the collector, a worker that
-- died) is exercised here.
local jq = require "ghl.jq"
local E = require "ghl.error"
local sys = require "ghl.sys"

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

-- The pids of this process's jq workers (children named ghlua).
local function workers()
  local me, pids = sys.getpid(), {}
  local ls = io.popen("ls /proc")
  for name in ls:lines() do
    if name:match("^%d+$") then
      local f = io.open("/proc/" .. name .. "/stat")
      local stat = f and f:read("l")
      if f then f:close() end
      local comm, ppid = (stat or ""):match("^%d+ %((.*)%) %a (%d+)")
      if comm == "ghlua" and tonumber(ppid) == me then pids[tonumber(name)] = true end
    end
  end
  ls:close()
  return pids
end

-- The worker that compiling filter starts: (program, pid).
local function compile_watched(filter)
  local before = workers()
  local p = assert(jq.compile(filter))
  for pid in pairs(workers()) do
    if not before[pid] then return p, pid end
  end
  error("no new worker for " .. filter)
end

local function alive(pid)
  return sys.kill(pid, 0) == true
end

local SMALL = { memory = 64 * 2 ^ 20 }

describe("filters that libjq 1.6 cannot survive", function()
  it("gives input and inputs the next inputs of the same run, and 'No more inputs' at the end", function()
    assert.are.same({ "2", "4" }, (assert(run("input", "1 2 3 4"))))
    assert.are.same({ "[1,2,3]" }, (assert(run("[., inputs]", "1 2 3"))))
    assert.are.same({ "[1,[]]" }, (assert(run("[., [inputs]]", "1"))))
    assert.are.same({ "[2]", "[4]" }, (assert(run("[first(inputs)]", "1 2 3 4"))))
    local out, err = run("input", "1 2 3")
    assert.is_nil(out)
    assert.are.equal("jq", err.kind)
    assert.are.equal("jq: error: No more inputs", err.message)
    assert.are.same({ "2" }, err.outputs)
    local _, e2 = run("input", "1")
    assert.are.equal("jq: error: No more inputs", e2.message)
  end)

  it("reports input that is not JSON met by input as a decode error", function()
    local _, err = run("[., input]", '1 {"a":')
    assert.are.equal("decode", err.kind)
    assert.matches("invalid JSON input: Unfinished JSON term", err.message, 1, true)
  end)

  it("ends a filter on which libjq aborts (1e30 | todate) with one line, and the program runs again", function()
    local p = assert(jq.compile("todate"))
    local out, err = p:run("1e30")
    assert.is_nil(out)
    assert.is_true(E.is(err))
    assert.are.equal("jq", err.kind)
    assert.are.equal("abort", err.reason)
    assert.are.equal("jq: libjq aborted on this filter (an out-of-range date?)", err.message)
    assert.matches("Assertion", err.detail, 1, true)
    assert.is_nil(tostring(err):find("\n", 1, true))
    assert.are.same({ '"1970-01-02T00:00:00Z"' }, assert(p:run("86400")))
    p:close()
    local _, e2 = run('1e30 | strftime("%Y")', "null")
    assert.are.equal("abort", e2.reason)
  end)

  it("contains an abort while compiling, with the filter named", function()
    local p, err = jq.compile('include "nosuchmodule"; .')
    assert.is_nil(p)
    assert.are.equal("jq", err.kind)
    assert.are.equal("abort", err.reason)
    assert.are.equal("jq: libjq aborted on this filter (a failed check inside libjq 1.6)", err.message)
    assert.are.equal('include "nosuchmodule"; .', err.filter)
  end)

  -- {filter, input, limits, reason, message}
  local ended = {
    { '"a" | gsub("";"x")', "null", SMALL, "memory", "jq: the filter was ended: it used more than 64 MiB" },
    { "[range(1e8)]", "null", SMALL, "memory", "jq: the filter was ended: it used more than 64 MiB" },
    { "[repeat(1)]", "null", SMALL, "memory", "jq: the filter was ended: it used more than 64 MiB" },
    { "range(1e18) | empty", "null", { timeout = 0.5 }, "time", "jq: the filter was ended: it ran longer than 0.5 s" },
    { "def f: f; f", "null", { timeout = 0.5 }, "time", "jq: the filter was ended: it ran longer than 0.5 s" },
    { "repeat(1)", "null", { output = 10000 }, "output", "jq: the filter was ended: its output passed 10000 bytes" },
    { "range(1e18)", "null", { output = 2 ^ 20 }, "output", "jq: the filter was ended: its output passed 1 MiB" },
  }
  for _, case in ipairs(ended) do
    it(("ends %q by its limit (%s)"):format(case[1], case[4]), function()
      local p = assert(jq.compile(case[1]))
      local out, err = p:run(case[2], case[3])
      assert.is_nil(out)
      assert.are.equal("jq", err.kind)
      assert.are.equal(case[4], err.reason)
      assert.are.equal(case[5], err.message)
      assert.matches("^raise the limit with GHLUA_JQ_%u+=", err.hint)
      assert.is_table(err.outputs)
      local _, again = p:run(case[2], case[3])     -- in a new worker
      assert.are.equal(case[4], again.reason)
      p:close()
    end)
  end

  it("keeps the outputs collected before the output limit, within it", function()
    local _, err = run("repeat(1)", "null", { output = 1000 })
    assert.are.equal("output", err.reason)
    assert.are.equal(1000, #err.outputs)
    assert.are.equal("1", err.outputs[1000])
  end)

  it("does not count the time fn takes against the filter", function()
    local p = assert(jq.compile("1, 2"))
    local seen = {}
    assert.is_true(p:run("null", { timeout = 0.2 }, function(s)
      seen[#seen + 1] = s
      sys.sleep(0.3)
    end))
    assert.are.same({ "1", "2" }, seen)
    p:close()
  end)

  it("stops a filter that computes while fn waits (the CPU limit in the worker)", function()
    local p, pid = compile_watched("1, (range(1e18) | empty)")
    local died = false
    local ok, err = p:run("null", { timeout = 0.2 }, function()
      -- the parent is away: the worker computes on until its RLIMIT_CPU
      for _ = 1, 200 do
        local f = io.open("/proc/" .. pid .. "/stat")
        local state = f and f:read("l"):match("^%d+ %(.*%) (%a)")
        if f then f:close() end
        if state == "Z" then died = true break end
        sys.sleep(0.1)
      end
    end)
    assert.is_true(died, "the worker ended itself")
    assert.is_nil(ok)
    assert.are.equal("time", err.reason)
    assert.are.equal("jq: the filter was ended: it ran longer than 0.2 s", err.message)
    p:close()
  end)

  it("names a worker that crashed, and carries on", function()
    local p, pid = compile_watched("1, 2")
    assert.are.same({ "1", "2" }, assert(p:run("null")))
    assert(sys.kill(pid, 4))                      -- SIGILL, as a crash in libjq would
    local out, err = p:run("null")
    assert.is_nil(out)
    assert.are.equal("jq", err.kind)
    assert.are.equal("crash", err.reason)
    assert.are.equal("jq: libjq crashed on this filter (SIGILL)", err.message)
    assert.are.same({ "1", "2" }, assert(p:run("null")))
    p:close()
  end)

  it("passes on outputs that come before a long computation", function()
    local p = assert(jq.compile("1, 2, (range(1e18) | empty)"))
    local seen = {}
    local ok, err = p:run("null", { timeout = 1 }, function(s) seen[#seen + 1] = s end)
    assert.is_nil(ok)
    assert.are.equal("time", err.reason)
    assert.are.same({ "1", "2" }, seen)
    local _, e2 = p:run("null", { timeout = 1 })
    assert.are.same({ "1", "2" }, e2.outputs)
    p:close()
  end)

  it("fails compiling under a limit as kind jq, not usage", function()
    local p, err = jq.compile(".", { memory = 1000 })
    assert.is_nil(p)
    assert.are.equal("jq", err.kind)
    assert.are.equal("memory", err.reason)
    assert.are.equal("jq: the filter was ended: it used more than 1000 bytes", err.message)
    assert.are.equal(".", err.filter)
  end)

  it("ends the worker on close, on a raise in fn, and keeps a bounded number alive", function()
    local p, pid = compile_watched(".[]")
    assert.is_true(alive(pid))
    p:close()
    assert.is_false(alive(pid))

    local q, qpid = compile_watched(".[]")
    assert.is_false(pcall(q.run, q, "[1,2,3]", nil, function() error("stop") end))
    assert.is_false(alive(qpid))
    assert.are.same({ "1", "2" }, assert(q:run("[1,2]")))
    q:close()

    local progs = {}
    for i = 1, 24 do progs[i] = assert(jq.compile((". + %d"):format(i))) end
    local n = 0
    for _ in pairs(workers()) do n = n + 1 end
    assert.is_true(n >= 1 and n <= 16, "live workers: " .. n)
    for round = 1, 2 do
      for i = 1, 24 do assert.are.same({ tostring(round + i) }, assert(progs[i]:run(tostring(round)))) end
    end
    for i = 1, 24 do progs[i]:close() end
  end)

  it("runs another program inside a run, and refuses to run a program inside its own", function()
    local p = assert(jq.compile(".[]"))
    local q = assert(jq.compile(". * 10"))
    local seen = {}
    assert.is_true(p:run("[1,2]", nil, function(s) seen[#seen + 1] = q:run(s)[1] end))
    assert.are.same({ "10", "20" }, seen)
    local ok, msg = pcall(p.run, p, "[1]", nil, function() p:run("[2]") end)
    assert.is_false(ok)
    assert.matches("inside its own run", msg)
    assert.are.same({ "3" }, assert(p:run("[3]")))
    ok, msg = pcall(p.run, p, "[1,2]", nil, function() p:close() end)
    assert.is_false(ok)
    assert.matches("closed inside its own run", msg)
    assert.has_error(function() p:run("[3]") end, "attempt to use a closed jq program")
    q:close()
  end)

  it("checks the limits it is given", function()
    local p = assert(jq.compile("."))
    assert.has_error(function() p:run("1", { timeout = -1 }) end)
    assert.has_error(function() p:run("1", { memory = "lots" }) end)
    assert.has_error(function() jq.compile(".", 5) end)
    p:close()
  end)
end)
