-- json_encode: any bytes decoded by lua-cjson (ghl.json.decode, which is
-- cjson.safe.decode), then written by ghl.json.encode (src/json.c) and
-- read back. Checked on every input that decodes:
--   * encode succeeds, except for NaN and infinities (lua-cjson reads
--     "nan", "inf" and 1e400), refused with a ghl.error of kind "encode";
--   * its text decodes to a value deeply equal to the decoded input
--     (arrays, objects, strings as bytes, numbers as the same double);
--   * encoding that value again gives the same bytes (sorted keys);
--   * an empty table is [] with empty = "array", and a top-level object
--     written in a given key order (json.object) reads back the same.
local json = require "ghl.json"
local check = require "check"

-- Does v hold a NaN or an infinity anywhere (keys included)?
local function odd_number(v, depth)
  if type(v) == "number" then return v ~= v or v == math.huge or v == -math.huge end
  if type(v) ~= "table" or depth > 1100 then return false end
  for k, x in pairs(v) do
    if odd_number(k, depth + 1) or odd_number(x, depth + 1) then return true end
  end
  return false
end

return function(text)
  local v = json.decode(text)
  if v == nil then return end
  local out, err = json.encode(v)
  if out == nil then
    check.expected(err)
    check.equal(err.kind, "encode", "error kind")
    check.truth(odd_number(v, 0), "encode refused a decoded value: " .. tostring(err.message))
    return
  end
  local back = json.decode(out)
  check.truth(back ~= nil, "lua-cjson cannot read what ghl.json wrote: " .. out:sub(1, 200))
  check.equal(back, v, "value read back")
  check.equal(json.encode(back), out, "text written again")
  if type(v) == "table" then
    local arr = assert(json.encode(v, { empty = "array" }))
    check.equal(json.decode(arr), v, "value read back with empty = array")
    if out:sub(1, 1) == "{" then
      local keys = {}
      for k in pairs(v) do if type(k) == "string" then keys[#keys + 1] = k end end
      table.sort(keys, function(a, b) return a > b end)
      local ordered = assert(json.encode(json.object(v, keys)))
      check.equal(#ordered, #out, "length in a given order")
      check.equal(json.decode(ordered), back, "value read back in a given order")
    end
  end
end
