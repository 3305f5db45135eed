-- decode_host bench/decode/check.lua [FILE...]: dec.fast and dec.simd give
-- what lua-cjson gives (value, number subtype, sign of zero, NaN, null,
-- error message) on lua-cjson's edge cases, on each FILE, and on random
-- mutations of them. Prints one line per decoder; exits 1 on a mismatch.
local function same(a, b, path)
  if type(a) ~= type(b) then return false, path .. ": " .. type(a) .. " vs " .. type(b) end
  if type(a) == "number" then
    if math.type(a) ~= math.type(b) then return false, path .. ": subtype" end
    if a ~= a and b ~= b then return true end
    if a ~= b or 1 / a ~= 1 / b then return false, path .. (": %.17g vs %.17g"):format(a, b) end
    return true
  end
  if type(a) ~= "table" then
    if a ~= b then return false, path .. ": " .. tostring(a) .. " vs " .. tostring(b) end
    return true
  end
  if getmetatable(a) ~= getmetatable(b) then return false, path .. ": metatable" end
  for k, v in pairs(a) do
    local ok, why = same(v, b[k], path .. "." .. tostring(k))
    if not ok then return ok, why end
  end
  for k in pairs(b) do if a[k] == nil then return false, path .. "." .. tostring(k) .. ": missing" end end
  return true
end

local function compare(f, text)
  local a, ea = dec.cjson(text)
  local b, eb = f(text)
  if ea or eb then
    if ea ~= eb then return false, ("error %q vs %q"):format(tostring(ea), tostring(eb)) end
    return true
  end
  return same(a, b, "$")
end

local big = string.rep("[", 1000) .. string.rep("]", 1000)
local cases = {
  "1", "-0", "0", "-0.0", "1.5", "1e400", "-1e400", "1e-400", "9007199254740993", "18446744073709551617",
  "9223372036854775807", "9223372036854775808", "-9223372036854775809", "123456789012345", "1234567890123456",
  "01", "-01", "00", "0x10", "-0x10", "1.", ".5", "+1", "Infinity", "-Infinity", "NaN", "nan", "inf", "-inf",
  "1e", "0e", "1.e5", "1E+2", "1.5e+3", "-", "--1", "0.1e-2", "[0x1p3]", "[nan(1)]",
  '"\\u0000"', '"\\ud800"', '"\\udc00"', '"\\ud83d\\ude00"', '"\\ud83d"', '"\\ud83dx"', '"\\ud83d\\u0041"', '"\\u00e9\\u20ac"',
  '"\\uZZZZ"', '"\\u12"', '"\255\254"', '"\192\128"', '"a\1b"', '"\t\n"', '"\\x"', '"\\/\\b\\f\\n\\r\\t\\"\\\\"', '"abc',
  '"ab\0cd"', "1\0", "[1]\0garbage", "\0", "\0\1", " ", "", "[1,]", '{"a":1,}', "[]", "{}", "[[]]", '{"a":{}}', "[{}]",
  "null", "true", "false", "tru", "nul", "fals", "nulll", "truex", " 1 x", "1 ", " \t\r\n[ 1 , 2 ]\n",
  '{"a":1,"a":2}', '{"a":1,"b":2,"a":null}', "[1 2]", '{"a" 1}', "{1:2}", '{"a":}', "[", "{", "]", "}", '["a",]',
  "[null]", '{"a":null}', "12345678901234567890123", "[1,2,3]x", "1 2", '{"":1}', '{"a\\u0000b":1}',
  "\f1", "\v1", "[1\f]", big, "[" .. big .. "]", string.rep("{\"a\":", 1000) .. "1" .. string.rep("}", 1000),
  string.rep("{\"a\":", 1001) .. "1" .. string.rep("}", 1001),
  "[" .. string.rep("1,", 5000) .. "1]", "{" .. string.rep('"k":1,', 3000) .. '"k":2}',
  "[" .. string.rep("[" .. string.rep("0,", 2100) .. "[", 600) .. string.rep("]]", 600) .. "]",
}
do
  local parts = {}
  for i = 1, 5000 do parts[i] = ('"k%d":%d'):format(i, i) end
  cases[#cases + 1] = "{" .. table.concat(parts, ",") .. "}"
  cases[#cases + 1] = "{" .. table.concat(parts, ",") .. ',"k1":"last"}'
end
for i = 1, #arg do cases[#cases + 1] = assert(io.open(arg[i], "rb")):read("a") end

local function mutate(s, r)
  local n = #s
  local i = r(math.max(n, 1))
  local op = r(4)
  local pieces = { "\0", "\\", '"', "\\u", "[", "]", "{", "}", ",", ":", "-", "0", "1e", "e9", ".", "\255", "null", " " }
  if op == 1 then return s:sub(1, i - 1) .. s:sub(i + 1)
  elseif op == 2 then return s:sub(1, i - 1) .. pieces[r(#pieces)] .. s:sub(i)
  elseif op == 3 then return s:sub(1, i - 1) .. string.char(r(256) - 1) .. s:sub(i + 1)
  else return s:sub(1, r(n + 1) - 1) end
end

local failed = false
for _, name in ipairs(dec.simd and { "fast", "simd" } or { "fast" }) do
  local f, bad, n = dec[name], 0, 0
  for _, c in ipairs(cases) do
    n = n + 1
    local ok, why = compare(f, c)
    if not ok then bad = bad + 1; print(("%s: %q: %s"):format(name, #c > 60 and c:sub(1, 60) .. "..." or c, why)) end
  end
  math.randomseed(17)
  local seeds = { '{"a":[1,2.5,-0,"x\\n",null,true,{"b":{}}],"c":"\\ud83d\\ude00"}', cases[#cases] }
  for _ = 1, 20000 do
    local s = seeds[math.random(#seeds)]
    for _ = 1, math.random(3) do s = mutate(s, math.random) end
    n = n + 1
    local ok, why = compare(f, s)
    if not ok then bad = bad + 1; if bad < 20 then print(("%s: %q: %s"):format(name, #s > 80 and s:sub(1, 80) .. "..." or s, why)) end end
  end
  print(("%s: %d inputs, %d differ from lua-cjson"):format(name, n, bad))
  failed = failed or bad > 0
end
os.exit(failed and 1 or 0)
