-- jq: jq filters and their input (src/jq.c over libjq 1.6), through the
-- public ghl.jq API, as `ghlua api --jq` uses it. Input: the filter on
-- the first line, then the JSON text. Checked: compile, run and format
-- return values or ghl.errors (usage for a filter, decode for the input,
-- jq for a runtime error); runs stop after MAX_OUTPUTS outputs (a filter
-- may generate without end; that is the user's filter, not a finding);
-- format's output formats to itself. A filter never holds a NUL byte (a
-- command line cannot carry one; ghl.jq.compile refuses one as a misuse):
-- such an input only has its JSON text run.
-- libjq 1.6 aborts or grows without bound on a few filters (input and
-- inputs without a callback, date builtins on huge numbers, gsub with an
-- empty regex): known.lua keeps those out of a run until jq filters run
-- contained.
local jq = require "ghl.jq"
local E = require "ghl.error"
local check = require "check"

local MAX_OUTPUTS = 1000

local function stop() E.raise { kind = "fuzz", message = "output limit" } end

local function run(prog, text, opts)
  local n = 0
  local ok, res, err = check.pcall(prog.run, prog, text, opts, function()
    n = n + 1
    if n > MAX_OUTPUTS then stop() end
  end)
  if not ok then
    check.expected(res)
    check.equal(res.kind, "fuzz", "error kind raised through run")
  elseif res == nil then
    check.expected(err)
    check.truth(err.kind == "decode" or err.kind == "jq", "run error kind " .. tostring(err.kind))
  end
end

return function(data)
  local filter, text = data:match("^([^\n]*)\n?(.*)$")
  local once, ferr = jq.format(text)
  if once then
    check.equal(jq.format(once), once, "format of format's output")
    check.truth(jq.format(text, { indent = 2, sort = true }), "format with indent and sort")
  else
    check.expected(ferr)
    check.equal(ferr.kind, "decode", "format error kind")
  end
  if filter:find("\0", 1, true) then filter = "." end
  local prog <close>, err = jq.compile(filter)
  if not prog then
    check.expected(err)
    check.equal(err.kind, "usage", "compile error kind")
    return
  end
  run(prog, text)
  run(prog, text, { raw = true, sort = true, indent = 1 })
end
