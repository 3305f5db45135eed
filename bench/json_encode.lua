-- ghl.json.encode (src/json.c) against lua-cjson's cjson.encode, which it
-- replaces, and the simulator's former Lua encoder (kept here, verbatim in
-- substance, as the third reference). One process, the workloads
-- interleaved round by round; the figures are medians (min, max) over the
-- rounds of the time per encode, and the ratio of medians to cjson.
--   build/ghlua bench/json_encode.lua [--rounds N]
-- Workloads (built once, not timed):
--   page    a HighLevel-like page: {contacts = 100 contacts (about 30 fields,
--           tags, customFields, nulls, dates), meta = {...}, traceId}
--   big     one large object: 20,000 keys, each an object of 6 fields
--   numbers 10,000 floats and integers in an array
-- Each round encodes each workload enough times to take about 0.2 s with
-- cjson. The text sizes are printed: ghl.json's differs from cjson's by
-- its '/' (cjson writes "\/") and its numbers (cjson: %.14g).
local sys = require "ghl.sys"
local json = require "ghl.json"
local cjson = require "cjson"

local rounds = 7
for i = 1, #arg do if arg[i] == "--rounds" then rounds = tonumber(arg[i + 1]) end end

-- ---- The former ghl.sim.reply encoder (before issue 15) ----
local ARRAY = json.array_mt
local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
local function lua_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c) return escapes[c] or string.format("\\u%04x", c:byte()) end) .. '"'
end
local function lua_number(n)
  if math.type(n) == "integer" then return tostring(n) end
  if n == math.floor(n) and math.abs(n) < 2^53 then return string.format("%d", n) end
  for _, p in ipairs { 15, 16, 17 } do
    local s = string.format("%." .. p .. "g", n)
    if tonumber(s) == n then return s end
  end
  return string.format("%.17g", n)
end
local lua_value
local function is_sequence(t)
  if getmetatable(t) == ARRAY then return true end
  local n = #t
  if n == 0 then return false end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end
local function lua_table(t, out)
  if is_sequence(t) then
    out[#out + 1] = "["
    for i = 1, #t do
      if i > 1 then out[#out + 1] = "," end
      lua_value(t[i], out)
    end
    out[#out + 1] = "]"
    return
  end
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  out[#out + 1] = "{"
  for i, k in ipairs(keys) do
    if i > 1 then out[#out + 1] = "," end
    out[#out + 1] = lua_string(k)
    out[#out + 1] = ":"
    local v = t[k]
    if v == nil then v = t[tonumber(k)] end
    lua_value(v, out)
  end
  out[#out + 1] = "}"
end
function lua_value(v, out)
  local tv = type(v)
  if v == nil or v == json.null then out[#out + 1] = "null"
  elseif tv == "boolean" then out[#out + 1] = tostring(v)
  elseif tv == "number" then out[#out + 1] = lua_number(v)
  elseif tv == "string" then out[#out + 1] = lua_string(v)
  else lua_table(v, out) end
end
local function lua_encode(v)
  local out = {}
  lua_value(v, out)
  return table.concat(out)
end

-- ---- Workloads ----

local function contact(i)
  return {
    id = ("c%019d"):format(i), locationId = "ve9EPM428h8vShlRW1KT", contactName = "ada lovelace " .. i,
    firstName = "Ada", lastName = "Lovelace", firstNameRaw = "Ada", lastNameRaw = "Lovelace",
    companyName = json.null, email = ("ada%d@example.com"):format(i), phone = "+15555550" .. (100 + i % 900),
    dnd = false, dndSettings = {}, type = "lead", source = "public api", assignedTo = json.null,
    city = "London", state = json.null, postalCode = "N1 9GU", address1 = "12 St James's Square",
    dateAdded = "2025-03-04T05:06:07.123Z", dateUpdated = "2025-03-05T05:06:07.123Z", dateOfBirth = json.null,
    businessId = json.null, tags = { "vip", "newsletter", "source/web" }, followers = json.array(),
    country = "GB", website = "https://example.com/a/" .. i, timezone = "Europe/London",
    customFields = { { id = "fA1", value = "x" .. i }, { id = "fB2", value = i * 1.5 } },
    score = i, attributions = { { utmSessionSource = "Direct traffic", isFirst = true, medium = "direct" } },
  }
end

local page = { contacts = {}, meta = { total = 12345, nextPageUrl = "https://services.leadconnectorhq.com/contacts/?startAfter=1741064767000&startAfterId=c100",
  startAfterId = "c100", startAfter = 1741064767000, currentPage = 1, nextPage = 2, prevPage = json.null }, traceId = "2d1bc3f0-aaaa" }
for i = 1, 100 do page.contacts[i] = contact(i) end

local big = {}
for i = 1, 20000 do
  big["key" .. i] = { id = i, name = "item " .. i, on = i % 2 == 0, w = i / 7, tags = { "a", "b" }, parent = json.null }
end

local numbers = {}
for i = 1, 10000 do numbers[i] = i % 2 == 0 and i * 1000003 or i / 3 end

local encoders = {
  { "ghl.json", function(v) return json.encode(v) end },
  { "cjson", cjson.encode },
  { "sim Lua (before)", lua_encode },
}
local workloads = { { "page", page }, { "big", big }, { "numbers", numbers } }

-- ---- Timing ----

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

local reps = {}
for _, w in ipairs(workloads) do
  local n, t0 = 0, sys.now()
  repeat cjson.encode(w[2]); n = n + 1 until sys.now() - t0 > 0.2
  reps[w[1]] = n
end

local times = {}
for r = 1, rounds do
  for _, w in ipairs(workloads) do
    for _, e in ipairs(encoders) do
      local key = w[1] .. "\0" .. e[1]
      times[key] = times[key] or {}
      collectgarbage()
      local n, t0 = reps[w[1]], sys.now()
      for _ = 1, n do e[2](w[2]) end
      times[key][r] = (sys.now() - t0) / n
    end
  end
end

print(("ghlua bench/json_encode.lua: %d rounds; time per encode, median (min, max); ratio to cjson"):format(rounds))
print("| workload | bytes (ghl.json / cjson) | encoder | time per encode | ratio to cjson |")
print("|---|---|---|---|---|")
for _, w in ipairs(workloads) do
  local base = median({ table.unpack(times[w[1] .. "\0cjson"]) })
  for _, e in ipairs(encoders) do
    local t = times[w[1] .. "\0" .. e[1]]
    table.sort(t)
    local m = median({ table.unpack(t) })
    print(("| %s | %d / %d | %s | %.3f ms (%.3f, %.3f) | %.2f |"):format(w[1], #json.encode(w[2]),
      #cjson.encode(w[2]), e[1], m * 1e3, t[1] * 1e3, t[#t] * 1e3, m / base))
  end
end
