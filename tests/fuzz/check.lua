-- Assertions for fuzz targets. A failed check raises a string, which the
-- driver reports as a finding; expected failures stay ghl.errors.
local E = require "ghl.error"

local M = {}

local function show(v)
  if type(v) == "string" then return string.format("%q", v) end
  if type(v) ~= "table" then return tostring(v) end
  local parts = {}
  for k, x in pairs(v) do
    parts[#parts + 1] = "[" .. show(k) .. "]=" .. show(x)
    if #parts > 20 then parts[#parts + 1] = "..."; break end
  end
  return "{" .. table.concat(parts, ", ") .. "}"
end
M.show = show

-- Deep equality of plain values (NaN equals NaN).
local function same(a, b)
  if a == b then return true end
  if type(a) == "number" and type(b) == "number" then return a ~= a and b ~= b end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do
    if not same(v, b[k]) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end
M.same = same

-- equal(got, want, what): raise unless got and want are deeply equal.
function M.equal(got, want, what)
  if not same(got, want) then
    error(("check failed: %s: got %s, want %s"):format(what, show(got), show(want)), 2)
  end
end

-- truth(v, what): raise unless v.
function M.truth(v, what)
  if not v then error("check failed: " .. what, 2) end
  return v
end

-- expected(err): re-raise err unless it is a ghl.error (a bug otherwise).
function M.expected(err)
  if not E.is(err) then error(err, 0) end
  return err
end

-- pcall(f, ...) -> true, results | false, err: err is the ghl.error, or
-- any other error with the traceback of where it was raised.
function M.pcall(f, ...)
  return xpcall(f, function(e)
    if E.is(e) then return e end
    return debug.traceback(tostring(e), 2)
  end, ...)
end

return M
