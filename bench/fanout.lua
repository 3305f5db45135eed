-- Agency fan-out benchmark (issue 13): `ghlua run RECIPE --all-locations`
-- over L locations of one agency, at HighLevel's real limits (100 requests
-- per 10 s per app and resource), against `ghlua sim` on loopback. Each
-- location mints its location token from the agency (Company) token and
-- then makes N reads (bench/fanout_recipe.lua) in its own bucket.
--
-- The floor the limits set. The Company's bucket carries the P pages of
-- /oauth/installedLocations (100 locations a page: P = ceil(L / 100)) and
-- the L mints, one after the other in time: the simulator's windows, like
-- HighLevel's, are fixed (a window starts with the first request after the
-- last one ended), so request number k*M + 1 cannot be sent before k
-- intervals after the first one. Each location's N reads go to its own
-- bucket after its mint, and take (ceil(N / M) - 1) more intervals. So
--     floor = (ceil((P + L) / M) - 1) * I  +  (ceil(N / M) - 1) * I
-- (M requests per interval I); for L = 300, N = 3, M = 100, I = 10 s:
-- (ceil(303 / 100) - 1) * 10 s = 30 s. With a simulated network delay D per
-- request, the last mint's answer and that location's N reads come after
-- it, one after the other: "floor + chain" = floor + (1 + N) * D.
--
-- Every run starts a simulator of its own (fresh limits, fresh store),
-- logs the agency in (not timed), then times the whole `ghlua run`
-- process. It checks every run: exit 0, L ok, no 429 in the simulator's
-- counters, L mints and P pages. Prints a Markdown table: per row the
-- median (min, max) wall time over RUNS runs, the floor, the ratio of the
-- median to the floor, and the median CPU time of the ghlua process.
--   build/ghlua bench/fanout.lua [--runs 3] [--locations 300] [--calls 3]
--     [--delays 0,100] [--concurrency N] [--rate-max 100]
--     [--rate-interval-ms 10000] [--json FILE] [--quick]
-- --quick is the smoke size (tests/lua/bench_smoke_spec.lua): 20
-- locations, 10 requests per 500 ms, one run, no delay.
local sys = require "ghl.sys"
local http = require "ghl.http"
local cjson = require "cjson"

local GHLUA = arg[-1]
local HERE = (arg[0]:match("^(.*)/[^/]*$") or ".")

local o = { runs = 3, locations = 300, calls = 3, delays = "0,100", ["rate-max"] = 100,
            ["rate-interval-ms"] = 10000 }
do
  local i = 1
  while arg[i] do
    local k = arg[i]:match("^%-%-(.+)$")
    if not k then error("unexpected argument " .. arg[i]) end
    if k == "quick" then
      o.quick = true
      o.runs, o.locations, o.calls, o.delays, o["rate-max"], o["rate-interval-ms"] = 1, 20, 2, "0", 10, 500
    else
      local v = arg[i + 1] or error("--" .. k .. " needs a value")
      o[k] = tonumber(v) or v
      i = i + 1
    end
    i = i + 1
  end
end
local L, N, M, I = o.locations, o.calls, o["rate-max"], o["rate-interval-ms"] / 1000
local P = math.max(1, math.ceil(L / 100))
local FLOOR = (math.ceil((P + L) / M) - 1) * I + (math.ceil(N / M) - 1) * I

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function slurp(p) local f = io.open(p) if not f then return nil end local s = f:read("a") f:close() return s end

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

local TIME   -- /usr/bin/time, for the CPU time of the ghlua process, when installed
do
  local f = io.open("/usr/bin/time")
  if f then f:close(); TIME = "/usr/bin/time" end
end
local client_id, secret, redirect = "6740b2b6d9e4a05c1f3a9e21-fanoutbench", "bench-secret-0123456789", "http://localhost:1/cb"

-- One timed run with a network delay of `delay` ms per request.
local function one(delay)
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. q(dir)))
  local ready = dir .. "/ready.json"
  assert(os.execute(("env no_proxy=127.0.0.1 %s sim --port 0 --quiet --ready-file %s --app %s --app-secret %s "
    .. "--redirect-uri %s --app-type Company --auto-approve company --locations %d --rate-max %d "
    .. "--rate-interval-ms %d </dev/null >%s/sim.log 2>&1 & echo $! > %s/pid")
    :format(q(GHLUA), q(ready), client_id, secret, redirect, L - 1, M, o["rate-interval-ms"], q(dir), q(dir))))
  local pid = tonumber(slurp(dir .. "/pid"))
  local deadline = sys.now() + 20
  while not slurp(ready) or slurp(ready) == "" do
    assert(sys.now() < deadline, "the simulator did not start: " .. (slurp(dir .. "/sim.log") or ""))
    sys.sleep(0.02)
  end
  local ok, res = pcall(function()
    local sim = cjson.decode(slurp(ready))
    local env = ("env GHLUA_HOME=%s/home GHLUA_API_BASE=%s GHL_CLIENT_SECRET=%s no_proxy=127.0.0.1 ")
      :format(q(dir), sim.url, secret)
    assert(os.execute(env .. q(GHLUA) .. " app add bench --client-id " .. client_id .. " --redirect-uri "
      .. redirect .. " >/dev/null"))
    local resp = assert(http.request { url = sim.url .. "/v2/oauth/chooselocation", query = {
      response_type = "code", client_id = client_id, redirect_uri = redirect,
      scope = "oauth.readonly oauth.write locations.readonly" } })
    local code = assert(resp.headers.location and resp.headers.location:match("code=([^&]+)"), "no code")
    assert(os.execute(env .. q(GHLUA) .. " auth exchange " .. code .. " --app bench --user-type Company >/dev/null"))
    if delay > 0 then
      local c = assert(http.request { method = "PUT", url = sim.url .. "/__sim/chaos",
        json = { rules = { { pattern = ".", times = 100000000, delay_ms = delay } } } })
      assert(c.status == 200, c.body)
    end
    local before = assert(http.request { url = sim.url .. "/__sim/stats" }):json()
    local cmd = ("%s%s%s run %s --all-locations --param calls=%d%s >%s/out 2>%s/err"):format(env,
      TIME and (TIME .. " -o " .. q(dir .. "/time") .. " -f '%U %S' ") or "", q(GHLUA),
      q(HERE .. "/fanout_recipe.lua"), N, o.concurrency and (" --concurrency " .. o.concurrency) or "", q(dir), q(dir))
    local t0 = sys.now()
    local rok = os.execute(cmd)
    local wall = sys.now() - t0
    local out = slurp(dir .. "/out") or ""
    assert(rok, "the fan-out failed: " .. (slurp(dir .. "/err") or "") .. out:sub(-500))
    local summary = out:match("[^\n]*\n$") or ""
    -- (the summary of earlier builds had no time: "300 locations: 300 ok, 0 failed")
    assert(summary:match(("^%d locations?[^:]*: %d ok, 0 failed"):format(L, L)), summary)
    local st = assert(http.request { url = sim.url .. "/__sim/stats" }):json()
    local mints = (st.oauth.location_tokens or 0) - (before.oauth.location_tokens or 0)
    local pages = (st.oauth.installed_locations or 0) - (before.oauth.installed_locations or 0)
    assert(st.rateLimited == 0 and st.status["429"] == nil, "the simulator answered 429s: " .. st.rateLimited)
    assert(mints == L, ("%d mints for %d locations"):format(mints, L))
    assert(pages == P, ("%d installedLocations pages, expected %d"):format(pages, P))
    local cpu
    local u, s = (slurp(dir .. "/time") or ""):match("([%d.]+) ([%d.]+)%s*$")
    if u then cpu = tonumber(u) + tonumber(s) end
    return { wall = wall, cpu = cpu, r429 = st.rateLimited, mints = mints }
  end)
  sys.kill(pid, 15)
  local dl = sys.now() + 5
  while sys.kill(pid, 0) and sys.now() < dl do sys.sleep(0.02) end
  os.execute("rm -rf " .. q(dir))
  if not ok then error(res, 0) end
  return res
end

local delays = {}
for d in tostring(o.delays):gmatch("[^,]+") do delays[#delays + 1] = assert(tonumber(d), "--delays: numbers, in ms") end

local rows = {}
for _, d in ipairs(delays) do
  local walls, cpus = {}, {}
  for r = 1, o.runs do
    local res = one(d)
    walls[r] = res.wall
    if res.cpu then cpus[#cpus + 1] = res.cpu end
    io.stderr:write(("fanout: delay %d ms, run %d/%d: %.2f s\n"):format(d, r, o.runs, res.wall))
  end
  local med = median(walls)
  rows[#rows + 1] = { delay_ms = d, runs = o.runs, median = med, min = math.min(table.unpack(walls)),
    max = math.max(table.unpack(walls)), floor = FLOOR, chain = FLOOR + (1 + N) * d / 1000,
    ratio = FLOOR > 0 and med / FLOOR or nil, cpu = #cpus > 0 and median(cpus) or nil }
end

print(("%d locations, %d reads each, %d requests per %g s per app and resource, concurrency %s; %d run%s per row")
  :format(L, N, M, I, o.concurrency or "ghlua run's default", o.runs, o.runs == 1 and "" or "s"))
print(("floor = (ceil((P + L) / M) - 1) * I + (ceil(N / M) - 1) * I, P = ceil(L / 100) = %d: "
  .. "(ceil(%d / %d) - 1) * %g s + (ceil(%d / %d) - 1) * %g s = %g s"):format(P, P + L, M, I, N, M, I, FLOOR))
print("every run: 0 failed, 0 429s in the simulator's counters, " .. L .. " mints, " .. P .. " pages")
print()
print("| delay per request | wall, median (min, max) | floor | ratio to floor | floor + chain | CPU (ghlua) |")
print("|---|---|---|---|---|---|")
for _, r in ipairs(rows) do
  print(("| %d ms | %.2f s (%.2f, %.2f) | %g s | %s | %.2f s | %s |"):format(r.delay_ms, r.median, r.min, r.max,
    r.floor, r.ratio and ("%.3f"):format(r.ratio) or "-", r.chain, r.cpu and ("%.2f s"):format(r.cpu) or "-"))
end
if o.json then
  local f = assert(io.open(o.json, "w"))
  f:write(cjson.encode { config = { locations = L, calls = N, rate_max = M, interval_s = I, pages = P,
    concurrency = o.concurrency, runs = o.runs }, floor = FLOOR, rows = rows }, "\n")
  f:close()
end
