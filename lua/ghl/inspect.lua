-- Readable printing of Lua values for the REPL and `ghlua -e`: tables as
-- indented JSON-like text (arrays in brackets, keys sorted), strings quoted,
-- cycles and depth limited. ghl.error values print as their one-line form.
local E = require "ghl.error"

local M = { max_depth = 6, max_items = 100 }

local function isarray(t)
  local n = #t
  if n == 0 then return next(t) == nil and getmetatable(t) ~= nil end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local function key_order(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return ta < tb end
  if ta == "number" or ta == "string" then return a < b end
  return tostring(a) < tostring(b)
end

local function fmtkey(k)
  if type(k) == "string" and k:match("^[%a_][%w_]*$") then return k end
  if type(k) == "string" then return string.format("[%q]", k) end
  return "[" .. tostring(k) .. "]"
end

local function render(v, depth, seen, out, indent)
  local tv = type(v)
  if tv == "string" then
    out[#out + 1] = string.format("%q", v):gsub("\\\n", "\\n")
  elseif tv ~= "table" then
    if v == nil then out[#out + 1] = "nil"
    elseif tv == "userdata" and tostring(v) == "userdata: (nil)" then out[#out + 1] = "null"
    else out[#out + 1] = tostring(v) end
  elseif E.is(v) then
    out[#out + 1] = "ghl.error<" .. tostring(v) .. ">"
  elseif seen[v] then
    out[#out + 1] = "<cycle>"
  elseif depth > M.max_depth then
    out[#out + 1] = "{…}"
  else
    seen[v] = true
    local pad = indent .. "  "
    if isarray(v) then
      if #v == 0 then out[#out + 1] = "[]" else
        out[#out + 1] = "[\n"
        for i = 1, math.min(#v, M.max_items) do
          out[#out + 1] = pad
          render(v[i], depth + 1, seen, out, pad)
          out[#out + 1] = i < #v and ",\n" or "\n"
        end
        if #v > M.max_items then
          out[#out + 1] = pad .. string.format("… %d more\n", #v - M.max_items)
        end
        out[#out + 1] = indent .. "]"
      end
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      table.sort(keys, key_order)
      if #keys == 0 then out[#out + 1] = "{}" else
        out[#out + 1] = "{\n"
        for i, k in ipairs(keys) do
          out[#out + 1] = pad .. fmtkey(k) .. " = "
          render(v[k], depth + 1, seen, out, pad)
          out[#out + 1] = i < #keys and ",\n" or "\n"
        end
        out[#out + 1] = indent .. "}"
      end
    end
    seen[v] = nil
  end
end

-- inspect(v) -> string
function M.inspect(v)
  local out = {}
  render(v, 1, {}, out, "")
  return table.concat(out)
end

-- print(...) prints each value on its own line, for the REPL.
function M.print(...)
  for i = 1, select("#", ...) do
    io.stdout:write(M.inspect((select(i, ...))), "\n")
  end
  io.stdout:flush()
end

return setmetatable(M, { __call = function(_, v) return M.inspect(v) end })
