-- json_decode: differential. ghl.json.decode (src/json.c: presized tables,
-- a key cache, falling back to lua-cjson) must return exactly what
-- lua-cjson's cjson.safe.decode returns for any bytes: the same value
-- (same types, number subtypes, sign of zero, NaN, json.null, keys and
-- strings byte for byte, the last duplicate key winning), or nil and the
-- same error message.
local json = require "ghl.json"
local cjson = require "cjson.safe"
local check = require "check"

local function same(a, b, path, depth)
  if type(a) ~= type(b) then return path .. ": " .. type(a) .. " vs " .. type(b) end
  if type(a) == "number" then
    if math.type(a) ~= math.type(b) then return path .. ": number subtype" end
    if a ~= a and b ~= b then return nil end
    if a ~= b or 1 / a ~= 1 / b then return path .. (": %.17g vs %.17g"):format(a, b) end
    return nil
  end
  if type(a) ~= "table" then
    if a ~= b then return path .. ": " .. check.show(a) .. " vs " .. check.show(b) end
    return nil
  end
  if getmetatable(a) ~= getmetatable(b) then return path .. ": metatable" end
  if depth > 1100 then return path .. ": too deep" end
  for k, v in pairs(a) do
    local why = same(v, b[k], path .. "." .. tostring(k), depth + 1)
    if why then return why end
  end
  for k in pairs(b) do if a[k] == nil then return path .. "." .. tostring(k) .. ": missing" end end
  return nil
end

return function(text)
  local got, gerr = json.decode(text)
  local want, werr = cjson.decode(text)
  check.equal(gerr, werr, "error message")
  local why = same(got, want, "$", 0)
  check.truth(why == nil, "ghl.json.decode differs from lua-cjson at " .. tostring(why))
end
