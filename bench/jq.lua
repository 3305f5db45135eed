-- The cost of running jq filters in a worker process (ghl.jq since
-- issue 12) against running them inside ghlua, as before. Each workload
-- runs in a fresh process of the binary under test, so two builds can be
-- compared: this one, and --base, a ghlua built from a commit before the
-- change (its ghl.jq has the same API and runs filters in-process).
-- Rounds alternate between the two; the figures are medians (min, max) of
-- the in-process time of each workload (sys.now around it; building the
-- input is not timed).
--   build/ghlua bench/jq.lua [--rounds N] [--base PATH/TO/OLD/ghlua]
-- Workloads:
--   compile  1,000 small filters, each compiled, run once on a small
--            input and closed (a worker per filter)
--   runs     one filter run 10,000 times on a small input (what
--            `ghlua api --paginate --ndjson --jq` does per item)
--   big:*    one big input (100,000 contact-like objects, 18 MB) through
--            `length` (one small output), `.[] | .id` (100,000 outputs
--            to a Lua function) and `.` (one 18 MB output)
local sys = require "ghl.sys"
local jq = require "ghl.jq"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- ---- One workload, in this process ----

local function big_input()
  local parts = {}
  for i = 1, 100000 do
    parts[i] = ('{"id":"c%07d","email":"person%d@example.com","firstName":"Ada","lastName":"Lovelace",'
      .. '"tags":["vip","lead"],"score":%d.5,"dnd":false,"customFields":[{"id":"f1","value":"x"}]}'):format(i, i, i % 1000)
  end
  return "[" .. table.concat(parts, ",") .. "]"
end

local WORK = {}

function WORK.compile()
  local t0 = sys.now()
  for i = 1, 1000 do
    local p = assert(jq.compile((".a | {b: ., n: %d}"):format(i)))
    assert(p:run('{"a":1}'))
    p:close()
  end
  return sys.now() - t0
end

function WORK.runs()
  local p = assert(jq.compile(".b | length"))
  assert(p:run('{"a":1,"b":[1,2,3]}'))        -- the worker is up
  local t0 = sys.now()
  for _ = 1, 10000 do assert(p:run('{"a":1,"b":[1,2,3]}')[1] == "3") end
  local t = sys.now() - t0
  p:close()
  return t
end

local function big(filter, check)
  return function()
    local text = big_input()
    local p = assert(jq.compile(filter))
    local n = 0
    local t0 = sys.now()
    assert(p:run(text, nil, function(s) n = n + #s end))
    local t = sys.now() - t0
    p:close()
    assert(check(n), "unexpected output size " .. n)
    return t
  end
end

WORK["big:length"] = big("length", function(n) return n == 6 end)
WORK["big:ids"] = big(".[] | .id", function(n) return n == 100000 * 10 end)
WORK["big:dot"] = big(".", function(n) return n > 17e6 end)

local ORDER = { "compile", "runs", "big:length", "big:ids", "big:dot" }

if arg[1] == "--one" then
  io.write(("%.6f\n"):format(WORK[arg[2]]()))
  os.exit(0)
end

-- ---- The comparison ----

local rounds, base = 5, nil
local i = 1
while arg[i] do
  if arg[i] == "--rounds" then rounds = assert(tonumber(arg[i + 1]), "--rounds N") i = i + 2
  elseif arg[i] == "--base" then base = arg[i + 1] i = i + 2
  else error("usage: bench/jq.lua [--rounds N] [--base PATH/TO/OLD/ghlua]") end
end
local this = arg[-1]
local script = arg[0]

local function once(bin, work)
  local h = assert(io.popen(q(bin) .. " " .. q(script) .. " --one " .. q(work)))
  local out = h:read("a")
  local ok = h:close()
  assert(ok and tonumber(out), ("%s --one %s failed: %s"):format(bin, work, out))
  return tonumber(out)
end

local function stats(t)
  table.sort(t)
  local n = #t
  local med = n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
  return med, t[1], t[n]
end

local function fmt(t)
  local med, lo, hi = stats(t)
  if med >= 1 then return ("%.2f s (%.2f, %.2f)"):format(med, lo, hi) end
  return ("%.1f ms (%.1f, %.1f)"):format(med * 1e3, lo * 1e3, hi * 1e3)
end

local bins = { { "worker", this } }
if base then table.insert(bins, 1, { "in-process", base }) end
print(("%d rounds, alternating; medians (min, max)"):format(rounds))
local head = ("| %-10s |"):format("workload")
for _, b in ipairs(bins) do head = head .. (" %s |"):format(b[1]) end
if base then head = head .. " ratio |" end
print(head)
print((head:gsub("[^|]", "-")))
for _, work in ipairs(ORDER) do
  local times = {}
  for k = 1, #bins do times[k] = {} end
  for _ = 1, rounds do
    for k, b in ipairs(bins) do table.insert(times[k], once(b[2], work)) end
  end
  local row = ("| %-10s |"):format(work)
  for k = 1, #bins do row = row .. (" %s |"):format(fmt(times[k])) end
  if base then row = row .. (" %.2f |"):format((stats(times[2])) / (stats(times[1]))) end
  print(row)
end
