-- The recipe sandbox's cost per request, as a ratio to --trust on the same
-- recipe (issue 11). Starts `ghlua sim` on loopback (with a rate limit that
-- never binds), writes a read-only
-- recipe that makes N sequential client:get calls (and one that sends them
-- as one client:batch at concurrency 16), and times `ghlua run` of each with
-- and without --trust, alternating, RUNS times; prints medians, the ratio
-- and the difference per request.
--   build/ghlua bench/sandbox.lua [N] [RUNS]
local sys = require "ghl.sys"
local cjson = require "cjson"

local N = tonumber(arg[1]) or 1000
local RUNS = tonumber(arg[2]) or 5
local GHLUA = arg[-1] or "build/ghlua"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. q(dir)))
local ready = dir .. "/ready.json"
assert(os.execute(("%s sim --port 0 --ready-file %s --quiet --contacts 20 --rate-max 1000000 --rate-daily 100000000 > %s 2>&1 & echo $! > %s"):format(
  q(GHLUA), q(ready), q(dir .. "/sim.log"), q(dir .. "/sim.pid"))))
local info
for _ = 1, 200 do
  local f = io.open(ready)
  local text = f and f:read("a")
  if f then f:close() end
  if text and text ~= "" then info = cjson.decode(text); break end
  sys.sleep(0.05)
end
assert(info, "the simulator did not get ready")

local function recipe(name, body)
  local path = dir .. "/" .. name .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(("recipe { name = %q, writes = false, scopes = { 'contacts.readonly' } }\n"):format(name),
    "return function(p, client)\n", body, "\nend\n")
  f:close()
  return path
end

local seq = recipe("seq", ("for i = 1, %d do client:get('/contacts/', { limit = 1 }) end return true"):format(N))
local batch = recipe("batch", ([[
  local reqs = {}
  for i = 1, %d do reqs[i] = { "GET", "/contacts/", query = { limit = 1 } } end
  return client:batch(reqs, { concurrency = 16, each = function() end })]]):format(N))

local env = ("GHL_TOKEN=%s GHL_LOCATION_ID=%s GHLUA_API_BASE=%s GHLUA_HOME=%s no_proxy=127.0.0.1 "):format(
  q(info.token), q(info.locationId), q(info.url), q(dir .. "/home"))

local function time(path, trust)
  local t0 = sys.now()
  local ok = os.execute(env .. q(GHLUA) .. " run " .. q(path) .. (trust and " --trust" or "") .. " > /dev/null")
  assert(ok, "ghlua run failed: " .. path)
  return sys.now() - t0
end

local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
end

print(("%d requests per run, %d runs each, alternating (median seconds)"):format(N, RUNS))
print(("%-28s %9s %9s %7s %12s"):format("workload", "--trust", "sandbox", "ratio", "µs/request"))
for _, row in ipairs { { "sequential client:get", seq }, { "client:batch, 16 in flight", batch } } do
  local trust, box = {}, {}
  time(row[2], true); time(row[2], false)   -- warm-up
  for i = 1, RUNS do
    trust[i] = time(row[2], true)
    box[i] = time(row[2], false)
  end
  local mt, mb = median(trust), median(box)
  print(("%-28s %9.3f %9.3f %7.2f %12.1f"):format(row[1], mt, mb, mb / mt, (mb - mt) / N * 1e6))
end

local pf = io.open(dir .. "/sim.pid")
local pid = pf and tonumber(pf:read("l"))
if pf then pf:close() end
if pid then sys.kill(pid, 15) end
os.execute("rm -rf " .. q(dir))
