-- jq: jq filters and their input (src/jq.c over libjq 1.6), through the
-- public ghl.jq API, as `ghlua api --jq` uses it. Input: the filter on
-- the first line, then the JSON text. Checked: compile, run and format
-- return values or ghl.errors (usage for a filter, decode for the input,
-- jq for a runtime error); runs stop after MAX_OUTPUTS outputs (a filter
-- may generate without end; that is the user's filter, not a finding);
-- format's output formats to itself. A filter never holds a NUL byte (a
-- command line cannot carry one; ghl.jq.compile refuses one as a misuse):
-- such an input only has its JSON text run.
-- libjq 1.6 aborts or grows without bound on a few filters (date builtins
-- on huge numbers, gsub with an empty regex, include without a library
-- path): ghl.jq runs filters in a worker process under limits, so those
-- end as ghl.errors of kind "jq" with a reason (abort, memory, time,
-- output). A worker that died of a signal libjq does not raise itself
-- (reason "crash": SEGV, a sanitizer report) is a finding.
local jq = require "ghl.jq"
local E = require "ghl.error"
local check = require "check"

local MAX_OUTPUTS = 1000

local function stop() E.raise { kind = "fuzz", message = "output limit" } end

-- A contained failure of the worker is expected, a crash is not.
local function contained(err, what)
  check.truth(err.reason ~= "crash", what .. ": the jq worker crashed: " .. tostring(err.message)
    .. " " .. tostring(err.detail))
end

-- Limits small enough for a fuzzer's pace.
local LIMITS = { timeout = 2, memory = 256 * 2 ^ 20, output = 2 ^ 20 }

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
    if err.kind == "jq" then contained(err, "run") end
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
  local prog <close>, err = jq.compile(filter, LIMITS)
  if not prog then
    check.expected(err)
    check.truth(err.kind == "usage" or err.kind == "jq", "compile error kind " .. tostring(err.kind))
    if err.kind == "jq" then contained(err, "compile") end
    return
  end
  run(prog, text, LIMITS)
  run(prog, text, { raw = true, sort = true, indent = 1, timeout = LIMITS.timeout, memory = LIMITS.memory,
    output = LIMITS.output })
end
