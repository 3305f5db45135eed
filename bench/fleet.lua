-- Fleet benchmark (issue 16): the PostgreSQL token store against SQLite,
-- in one run, as ratios.
--   1. refresh throughput: PROCS processes force-refresh one shared token
--      REFRESHES times each through the claim protocol (claim, re-read,
--      "sending", POST, commit); refreshes per second over the wall time.
--   2. the fleet run: 3 "machines" (separate GHLUA_HOMEs) x 8 processes x
--      50 GETs through ghl.client, access tokens living 2 s; wall time.
-- PostgreSQL: a throwaway server (tests/lua/support/pg.lua: Debian's
-- binaries, a Unix socket, fsync off) with a store key; SQLite: the same
-- machines sharing one local file (what one machine can do; NFS cannot
-- carry SQLite's locks). Against `ghlua sim` on loopback.
--   build/ghlua bench/fleet.lua [ROUNDS]
-- Prints a Markdown table for bench/RESULTS.md.
local src = arg[0]:match("^(.*)/bench/[^/]*$") or "."
package.path = src .. "/tests/lua/?.lua;" .. package.path
local sys = require "ghl.sys"
local http = require "ghl.http"
local cjson = require "cjson"
local pg = require "support.pg"

local GHLUA = arg[-1]
local ROUNDS = tonumber(arg[1]) or 3
local PROCS, REFRESHES = 4, 25
local MACHINES, WORKERS, CALLS = 3, 8, 50
local KEY = ("0123456789abcdef"):rep(4)

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
local function slurp(p) local f = io.open(p) if not f then return nil end local s = f:read("a") f:close() return s end
local function write(p, s) local f = assert(io.open(p, "w")) f:write(s) f:close() end

local dir = os.tmpname(); os.remove(dir); assert(os.execute("mkdir -m 700 -p " .. dir))
local client_id, secret = "6740b2b6d9e4a05c1f3a9e21-benchapp", "bench-secret-0123456789"
local redirect = "http://localhost:1/cb"
os.execute(("%s sim --port 0 --quiet --ready-file %s/ready.json --app %s --app-secret %s --redirect-uri %s " ..
  "--auto-approve --token-ttl 2 --rate-max 100000000 >/dev/null 2>&1 & echo $! > %s/pid")
  :format(q(GHLUA), dir, client_id, secret, redirect, dir))
local deadline = sys.now() + 10
while not slurp(dir .. "/ready.json") do assert(sys.now() < deadline, "sim did not start") sys.sleep(0.02) end
local sim = cjson.decode(slurp(dir .. "/ready.json"))
sim.location = sim.locationId
local server = pg.start()

local function stats() return assert(http.request { url = sim.url .. "/__sim/stats" }):json() end

-- env(store, home) -> "env ..." prefix for a process of one machine.
local function env(store, home)
  return ("env GHLUA_HOME=%s GHLUA_STORE=%s GHLUA_STORE_KEY=%s GHLUA_API_BASE=%s GHL_CLIENT_SECRET=%s no_proxy=127.0.0.1 ")
    :format(q(home), q(store), KEY, sim.url, secret)
end

-- A store with the app and a Location token (a login through the simulator).
local function prepare(store, home)
  local e = env(store, home)
  assert(os.execute(e .. q(GHLUA) .. " app add bench --client-id " .. client_id .. " --redirect-uri " .. redirect .. " >/dev/null"))
  local resp = assert(http.request { url = sim.url .. "/oauth/chooselocation", query = {
    response_type = "code", client_id = client_id, redirect_uri = redirect, scope = "contacts.readonly" } })
  local code = assert(resp.headers.location:match("code=([^&]+)"), "no code")
  assert(os.execute(e .. q(GHLUA) .. " auth exchange " .. code .. " --app bench >/dev/null"))
end

local REFRESHER = [[
local n = tonumber(...)
local a = require "ghl.auth"
for _ = 1, n do
  local _, row = a.token { location = %q }
  a.refresh(row, { force = true })
end
]]
local WORKER = [[
local loc, n = ...
local c = require("ghl").client { location = loc }
for _ = 1, tonumber(n) do assert(c:get("/contacts/", { limit = 1 }).contacts) end
]]
write(dir .. "/refresher.lua", REFRESHER:format(sim.location))
write(dir .. "/worker.lua", WORKER)

-- Run `count` copies of script (args) per home at once; wall seconds.
local function together(store, homes, count, script, args)
  local parts = {}
  for _, home in ipairs(homes) do
    for _ = 1, count do
      parts[#parts + 1] = env(store, home) .. q(GHLUA) .. " " .. q(script) .. " " .. args .. " >>" .. q(dir .. "/errors") .. " 2>&1 &"
    end
  end
  local t0 = sys.now()
  assert(os.execute(table.concat(parts, " ") .. " wait"))
  return sys.now() - t0
end

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

local results = {}
local n = 0
for _, engine in ipairs { "sqlite", "postgresql" } do
  local r = { refresh = {}, fleet = {}, reuse = 0 }
  for round = 1, ROUNDS do
    n = n + 1
    local store = engine == "sqlite" and (dir .. "/shared" .. n .. ".db") or (server:createdb())
    local homes = {}
    for m = 1, MACHINES do
      homes[m] = dir .. "/h" .. n .. "-" .. m
      assert(os.execute("mkdir -m 700 -p " .. q(homes[m])))
    end
    prepare(store, homes[1])
    local s0 = stats().oauth
    local wall = together(store, { homes[1] }, PROCS, dir .. "/refresher.lua", tostring(REFRESHES))
    local s1 = stats().oauth
    assert(s1.refresh_ok - s0.refresh_ok == PROCS * REFRESHES, "refreshes: " .. (s1.refresh_ok - s0.refresh_ok))
    r.refresh[round] = PROCS * REFRESHES / wall
    r.fleet[round] = together(store, homes, WORKERS, dir .. "/worker.lua", q(sim.location) .. " " .. CALLS)
    r.reuse = r.reuse + stats().oauth.refresh_reuse - s0.refresh_reuse
  end
  results[engine] = r
end
local errs = slurp(dir .. "/errors") or ""
server:destroy()
os.execute("kill " .. (slurp(dir .. "/pid") or ""):match("%d+"))
os.execute("rm -rf " .. q(dir))
assert(errs == "", "a process failed: " .. errs)

local sq, pq = results.sqlite, results.postgresql
local function range(t) table.sort(t) return ("%.2f, %.2f"):format(t[1], t[#t]) end
print(("| measure | SQLite (one shared file), median (min, max) | PostgreSQL, median (min, max) | PostgreSQL / SQLite |"))
print("|---|---|---|---|")
local rs, rp = median(sq.refresh), median(pq.refresh)
print(("| refresh throughput, %d processes x %d forced refreshes of one token | %.1f/s (%s) | %.1f/s (%s) | %.2f |")
  :format(PROCS, REFRESHES, rs, range(sq.refresh), rp, range(pq.refresh), rp / rs))
local fs, fp = median(sq.fleet), median(pq.fleet)
print(("| fleet run wall, %d machines x %d processes x %d calls, 2 s tokens | %.2f s (%s) | %.2f s (%s) | %.2f |")
  :format(MACHINES, WORKERS, CALLS, fs, range(sq.fleet), fp, range(pq.fleet), fp / fs))
print(("\n%d rounds each; refresh tokens presented twice: %d (SQLite), %d (PostgreSQL)."):format(ROUNDS, sq.reuse, pq.reuse))
