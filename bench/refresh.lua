-- Refresh benchmark (OAuth issue): how long one token refresh takes through
-- the store's claim protocol, and how refreshing 200 different locations
-- scales from 1 process to 8, as a ratio. Runs against `ghlua sim` on
-- loopback in a private GHLUA_HOME.
--   build/ghlua bench/refresh.lua [ROUNDS]
-- Prints a Markdown table for bench/RESULTS.md.
local sys = require "ghl.sys"
local http = require "ghl.http"
local cjson = require "cjson"

local GHLUA = arg[-1]
local ROUNDS = tonumber(arg[1]) or 5
local N, PROCS = 200, 8

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function slurp(p) local f = io.open(p) if not f then return nil end local s = f:read("a") f:close() return s end

local dir = os.tmpname(); os.remove(dir); assert(os.execute("mkdir -p " .. dir))
local ready = dir .. "/ready.json"
local client_id, secret = "6740b2b6d9e4a05c1f3a9e21-benchapp", "bench-secret-0123456789"
os.execute(("%s sim --port 0 --quiet --ready-file %s --app %s --app-secret %s --redirect-uri http://localhost:1/cb " ..
  "--app-type Company --auto-approve company --locations %d --rate-max 1000000 >/dev/null 2>&1 & echo $! > %s/pid")
  :format(q(GHLUA), ready, client_id, secret, N - 1, dir))
local deadline = sys.now() + 10
while not slurp(ready) do assert(sys.now() < deadline, "sim did not start") sys.sleep(0.02) end
local sim = cjson.decode(slurp(ready))
local env = ("env GHLUA_HOME=%s/home GHLUA_API_BASE=%s GHL_CLIENT_SECRET=%s no_proxy=127.0.0.1 "):format(dir, sim.url, secret)

local function sh(code)
  local ok = os.execute(env .. q(GHLUA) .. " -e " .. q(code) .. " >/dev/null")
  assert(ok, "child failed: " .. code)
end

-- Setup: the app, a Company token, and a location token for each location.
assert(os.execute(env .. q(GHLUA) .. " app add bench --client-id " .. client_id .. " --redirect-uri http://localhost:1/cb >/dev/null"))
local resp = assert(http.request { url = sim.url .. "/v2/oauth/chooselocation", query = {
  response_type = "code", client_id = client_id, redirect_uri = "http://localhost:1/cb",
  scope = "oauth.readonly oauth.write contacts.readonly" } })
local code = resp.headers.location:match("code=([^&]+)")
assert(os.execute(env .. q(GHLUA) .. " auth exchange " .. code .. " --app bench --user-type Company >/dev/null"))
local ids = {}
for _, l in ipairs(sim.locations) do ids[#ids + 1] = l.id end
assert(#ids == N, "expected " .. N .. " locations, got " .. #ids)
sh(("local a = require 'ghl.auth' for _, id in ipairs { %s } do a.token { location = id } end")
   :format(table.concat((function() local t = {} for i, id in ipairs(ids) do t[i] = ("%q"):format(id) end return t end)(), ",")))

-- A child that force-refreshes the given locations and prints per-refresh ms.
local CHILD = [[
local a, sys = require 'ghl.auth', require 'ghl.sys'
local out = {}
for _, id in ipairs { %s } do
  local _, row = a.token { location = id }
  local t0 = sys.now()
  a.refresh(row, { force = true })
  out[#out + 1] = string.format('%%.3f', (sys.now() - t0) * 1000)
end
io.open(%q, 'w'):write(table.concat(out, '\n'))
]]

local function run(procs)
  local per = N // procs
  local t0 = sys.now()
  local files = {}
  for p = 1, procs do
    local slice = {}
    for i = (p - 1) * per + 1, p * per do slice[#slice + 1] = ("%q"):format(ids[i]) end
    files[p] = ("%s/out.%d"):format(dir, p)
    os.remove(files[p])
    os.execute(env .. q(GHLUA) .. " -e " .. q(CHILD:format(table.concat(slice, ","), files[p])) .. " >/dev/null 2>&1 &")
  end
  local times = {}
  for _, f in ipairs(files) do
    local dl = sys.now() + 120
    while not slurp(f) or #slurp(f) == 0 do assert(sys.now() < dl, "child timed out") sys.sleep(0.005) end
    for v in slurp(f):gmatch("[%d.]+") do times[#times + 1] = tonumber(v) end
  end
  local wall = sys.now() - t0
  assert(#times == N, "lost refreshes: " .. #times)
  return wall, times
end

local function stats(v)
  table.sort(v)
  return v[(#v + 1) // 2], v[1], v[#v]
end

local w1, w8, lat = {}, {}, {}
for _ = 1, ROUNDS do
  local w, t = run(1)
  w1[#w1 + 1] = w
  for _, x in ipairs(t) do lat[#lat + 1] = x end
  w8[#w8 + 1] = (run(PROCS))
end
local st = cjson.decode(assert(http.request { url = sim.url .. "/__sim/stats" }).body).oauth
os.execute("kill $(cat " .. dir .. "/pid); rm -rf " .. dir)

local m1, lo1, hi1 = stats(w1)
local m8, lo8, hi8 = stats(w8)
local ml, lol, hil = stats(lat)
print(("| measure | median | min | max |\n|---|---|---|---|"))
print(("| one refresh (claim, POST /oauth/token, durable commit), ms | %.2f | %.2f | %.2f |"):format(ml, lol, hil))
print(("| 200 locations, 1 process, s | %.3f | %.3f | %.3f |"):format(m1, lo1, hi1))
print(("| 200 locations, 8 processes × 25, s | %.3f | %.3f | %.3f |"):format(m8, lo8, hi8))
print(("\nratio 8 processes / 1 process (wall time, medians): %.2f; speed-up %.2f×"):format(m8 / m1, m1 / m8))
print(("refresh tokens presented twice: %d (of %d refreshes)"):format(st.refresh_reuse, st.refresh_ok))
