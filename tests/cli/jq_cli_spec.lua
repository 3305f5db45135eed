-- `ghlua api ... --jq FILTER` with the filters that take libjq 1.6 down:
-- `input`/`inputs` (no input callback in libjq's state), `1e30 | todate`
-- (an assertion aborts), `"a" | gsub("";"x")` and `[range(1e8)]` (memory
-- without end), endless `repeat(1)` and `range(1e18)`, and an abort while
-- compiling. Each gives the right output, or one line on stderr and exit
-- 1, never a crash, a traceback or a hang; normal filters keep their
-- outputs. The limits come from GHLUA_JQ_TIMEOUT / _MEMORY / _OUTPUT, set
-- low here so that the endless filters end quickly.
local sim = require "support.sim"
local fixture = require "support.fixture"
local run = require "support.run"
local cjson = require "cjson"

local s, env, home

local function api(args, extra_env)
  local e = {}
  for k, v in pairs(env) do e[k] = v end
  for k, v in pairs(extra_env or {}) do e[k] = v end
  local argv = { "api", "GET", "/contacts/", "-q", "locationId=" .. s.location, "-q", "limit=3" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return run.ghlua(argv, { env = e })
end

-- A failed run: exit 1, and stderr is exactly one line (no traceback).
local function one_line_failure(r, text)
  assert.are.equal(1, r.code, r.err)
  assert.are.equal(text, r.err:gsub("\n$", ""))
  assert.is_nil(r.err:gsub("\n$", ""):find("\n", 1, true), "one line")
  assert.is_nil(r.err:find("traceback", 1, true))
end

describe("ghlua api --jq with filters libjq 1.6 cannot survive", function()
  local f
  setup(function()
    f = fixture.start { "--contacts", "5", "--rate-max", "100000" }
    s, env, home = f.sim, f.env, f.home
  end)
  teardown(function() f.stop() end)

  it("keeps the outputs of normal filters", function()
    local r = api { "--jq", ".contacts | length" }
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("3\n", r.out)
    r = api { "--jq", ".contacts[] | .id", "--raw" }
    assert.are.equal(0, r.code, r.err)
    local n = 0
    for id in r.out:gmatch("[^\n]+") do
      n = n + 1
      assert.matches("^%w+$", id)
    end
    assert.are.equal(3, n)
    r = api { "--jq", "{n: (.contacts | length), t: (.meta.total > 0)}" }
    assert.are.same({ n = 3, t = true }, cjson.decode(r.out))
    assert.are.equal("", r.err)
  end)

  it("gives inputs the rest of the stream (none) and input 'No more inputs'", function()
    local r = api { "--jq", "[inputs] | length" }
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("0\n", r.out)
    one_line_failure(api { "--jq", "input" }, "ghlua: jq: error: No more inputs")
    -- with --ndjson each item is its own input stream
    r = run.ghlua({ "api", "GET", "/contacts/", "-q", "locationId=" .. s.location, "--paginate",
                    "--ndjson", "--max", "2", "--jq", "[., inputs] | length" }, { env = env })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("1\n1\n", r.out)
  end)

  it("ends 1e30 | todate, on which libjq aborts, with one line and exit 1", function()
    one_line_failure(api { "--jq", "1e30 | todate" },
      "ghlua: jq: libjq aborted on this filter (an out-of-range date?) \u{2014} hint: libjq 1.6's date "
      .. "functions stop on numbers out of range; check the timestamps the filter converts")
    local r = api { "--jq", "0 | todate", "--raw" }
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("1970-01-01T00:00:00Z\n", r.out)
  end)

  it("ends a filter on which libjq aborts while compiling, before any request, with exit 1", function()
    local before = s.stats().requests
    one_line_failure(api { "--jq", 'include "nosuchmodule"; .' },
      "ghlua: jq: libjq aborted on this filter (a failed check inside libjq 1.6) \u{2014} hint: a libjq "
      .. "1.6 bug; write the filter another way")
    assert.are.equal(before, s.stats().requests)
  end)

  -- {filter, environment, the message before the hint, variable named}
  local ended = {
    { '"a" | gsub("";"x")', { GHLUA_JQ_MEMORY = "64" }, "the filter was ended: it used more than 64 MiB", "GHLUA_JQ_MEMORY=MiB" },
    { "[range(1e8)]", { GHLUA_JQ_MEMORY = "64" }, "the filter was ended: it used more than 64 MiB", "GHLUA_JQ_MEMORY=MiB" },
    { "range(1e18) | empty", { GHLUA_JQ_TIMEOUT = "0.5" }, "the filter was ended: it ran longer than 0.5 s", "GHLUA_JQ_TIMEOUT=SECONDS" },
    { "repeat(1) | empty", { GHLUA_JQ_TIMEOUT = "0.5" }, "the filter was ended: it ran longer than 0.5 s", "GHLUA_JQ_TIMEOUT=SECONDS" },
    { "repeat(1)", { GHLUA_JQ_OUTPUT = "0.01" }, "the filter was ended: its output passed 10486 bytes", "GHLUA_JQ_OUTPUT=MiB" },
  }
  for _, case in ipairs(ended) do
    it(("ends %q by its limit, with one line and exit 1"):format(case[1]), function()
      local r = api({ "--jq", case[1] }, case[2])
      one_line_failure(r, ("ghlua: jq: %s \u{2014} hint: raise the limit with %s (0: no limit)"):format(case[3], case[4]))
    end)
  end

  it("prints the outputs that came before the output limit", function()
    local r = api({ "--jq", "repeat(1)" }, { GHLUA_JQ_OUTPUT = "0.001" })
    assert.are.equal(1, r.code)
    local n = 0
    for line in r.out:gmatch("[^\n]+") do
      assert.are.equal("1", line)
      n = n + 1
    end
    assert.are.equal(1048, n)   -- 0.001 MiB = 1048.576 bytes: 1048 outputs of one byte
  end)

  it("is a usage error (exit 2) for a limit that is not a number, before any request", function()
    local before = s.stats().requests
    local r = api({ "--jq", "." }, { GHLUA_JQ_TIMEOUT = "soon" })
    assert.are.equal(2, r.code)
    assert.matches("GHLUA_JQ_TIMEOUT must be a number of seconds (0: no limit), got 'soon'", r.err, 1, true)
    assert.are.equal(before, s.stats().requests)
    r = api({ "--jq", "." }, { GHLUA_JQ_MEMORY = "-1" })
    assert.are.equal(2, r.code)
    assert.matches("GHLUA_JQ_MEMORY must be a number of MiB", r.err, 1, true)
  end)

  it("lifts a limit set to 0", function()
    local r = api({ "--jq", "[limit(100000; repeat(1))] | length" }, { GHLUA_JQ_OUTPUT = "0", GHLUA_JQ_TIMEOUT = "0" })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("100000\n", r.out)
  end)

  it("stops a filter on Ctrl-C (SIGINT) with one line", function()
    -- --foreground: one SIGINT to ghlua alone (a second one would end it
    -- the default way, as it should)
    local parts = {}
    for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. run.quote(v) end
    local r = run.sh(("env %s GHLUA_JQ_TIMEOUT=0 timeout --foreground --preserve-status -s INT 2 %s api GET /contacts/ -q locationId=%s --jq %s")
      :format(table.concat(parts, " "), run.quote(os.getenv("GHLUA")), s.location, run.quote("range(1e18) | empty")))
    one_line_failure(r, "ghlua: jq: interrupted")
  end)

  it("prints debug and stderr messages on stderr, like jq", function()
    local r = api { "--jq", '.contacts | length | debug | stderr | . * 2' }
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("6\n", r.out)
    assert.matches('["DEBUG:",3]', r.err, 1, true)
    assert.matches("3$", r.err)
  end)
end)
