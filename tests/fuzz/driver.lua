-- The fuzz driver, loaded once by fuzz_lua.c with the target's name and
-- this directory. It loads targets/NAME.lua, which returns
-- function(data): run one input through ghlua's public Lua API, and
-- returns the function the harness calls for every input. That function
-- returns nil when the input was handled: it returned, or raised a
-- ghl.error (an expected failure), or matched an entry of known.lua for
-- this target (a finding already reported, whose fix belongs to someone
-- else; GHLUA_FUZZ_STRICT=1 ignores the list): its error contains the
-- entry's `match` (or match(err, data) is true), or, for a crash in C,
-- which cannot be caught, the entry's `skip(data)` is true, and then the
-- input is not run. Anything else is a finding and comes back as text:
-- the error and its traceback.
local name, dir = ...
package.path = dir .. "/?.lua;" .. package.path

local E = require "ghl.error"

local path = dir .. "/targets/" .. name .. ".lua"
local chunk, err = loadfile(path, "t")
if not chunk then error("cannot load fuzz target " .. path .. ": " .. err, 0) end
local run = chunk()
if type(run) ~= "function" then error(path .. " must return a function(data)", 0) end

local strict = os.getenv("GHLUA_FUZZ_STRICT")
local known = {}
if not (strict and strict ~= "" and strict ~= "0") then
  for _, k in ipairs(require "known") do
    if k.target == name then known[#known + 1] = k end
  end
end
local seen = {}

local function handler(e)
  if E.is(e) then return e end
  return debug.traceback(tostring(e), 2)
end

local function pass(k)
  if not seen[k] then
    seen[k] = true
    io.stderr:write(("fuzz: known finding (%s), not reported again: %s\n"):format(k.repro, k.what))
  end
  return nil
end

return function(data)
  for _, k in ipairs(known) do
    if k.skip and k.skip(data) then return pass(k) end
  end
  local ok, e = xpcall(run, handler, data)
  if ok or E.is(e) then return nil end
  for _, k in ipairs(known) do
    if type(k.match) == "string" and e:find(k.match, 1, true) or type(k.match) == "function" and k.match(e, data) then
      return pass(k)
    end
  end
  return e
end
