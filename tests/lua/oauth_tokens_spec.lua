-- Tokens that look after themselves: refresh before expiry and on
-- "401 Invalid JWT", eight processes sharing one store while the
-- simulator's clock runs past the access token's life (PUT /__sim/clock),
-- kill -9 at several points of a refresh, agency tokens minting location
-- tokens, PITs, and `auth doctor`. Waits for the simulator's time move its
-- clock; waits for the client's own expiry (it reads the real clock) sleep.
local oauth = require "support.oauth"
local run = require "support.run"
local sys = require "ghl.sys"
local cjson = require "cjson"

local function status(o)
  local r = o.ghlua { "auth", "status", "--json" }
  assert.are.equal(0, r.code, r.err)
  return cjson.decode(r.out)
end

local function wait_until(f, what, limit)
  local deadline = sys.now() + (limit or 10)
  while not f() do
    assert(sys.now() < deadline, "timed out waiting for " .. what)
    sys.sleep(0.02)
  end
end

-- Lua run in a child ghlua that makes n API calls through ghl.client;
-- with tick > 0, it moves the simulator's clock forward by step seconds
-- after every tick-th call.
local CALLS = [[
local loc, n, pause, tick, step = %q, %d, %s, %d, %d
local c = require('ghl').client { location = loc }
for i = 1, n do
  c:get('/contacts/', { locationId = loc, limit = 1 })
  if pause > 0 then require('ghl.sys').sleep(pause) end
  if tick > 0 and i %% tick == 0 and i < n then
    local r = require('ghl.http').request { method = 'PUT', json = { advance = step },
      url = require('ghl.config').api_base() .. '/__sim/clock' }
    assert(r and r.status == 200, 'PUT /__sim/clock')
  end
end
print('ok')
]]
local function calls(loc, n, pause, tick, step)
  return CALLS:format(loc, n, pause or "0", tick or 0, step or 0)
end

describe("token refresh", function()
  local o
  before_each(function()
    o = oauth.start { "--auto-approve", "--token-ttl", "2", "--rate-max", "100000" }
    o.add_app()
    assert.are.equal(0, o.login().code)
  end)
  after_each(function() o.stop() end)

  it("refreshes before expiry and keeps the previous refresh token", function()
    local before = status(o)[1]
    sys.sleep(1.6)
    local r = o.ghlua { "auth", "token" }
    assert.are.equal(0, r.code, r.err)
    local after = status(o)[1]
    assert.are_not.equal(before.access_token, after.access_token)
    assert.are_not.equal(before.refresh_token, after.refresh_token)
    assert.is_number(after.previous_refreshed_at)
    assert.are.equal(0, o.stats().oauth.refresh_reuse)
  end)

  it("refreshes once on 401 Invalid JWT and retries once", function()
    o.clock { advance = 3 }   -- expired in the simulator; the store still thinks it has a moment
    local r = o.lua(calls(o.sim.location, 1))
    assert.are.same({ 0, "ok\n" }, { r.code, r.out }, r.err)
    assert.is_true(o.stats().oauth.refresh_ok >= 1)
  end)

  it("a client in a long-running process uses the token another process rotated", function()
    -- the client keeps the token it read while the store is unchanged;
    -- a refresh by another process must be seen on the next request
    local r = o.lua(([[
local loc, exe = %q, %q
local c = require('ghl').client { location = loc }
local function hint() return c.last.token_hint end
c:get('/contacts/', { locationId = loc, limit = 1 })
c:get('/contacts/', { locationId = loc, limit = 1 })
local before = hint()
assert(os.execute(("%%s auth refresh --location %%s >/dev/null"):format(exe, loc)))
c:get('/contacts/', { locationId = loc, limit = 1 })
local row = require('ghl.auth').find { location = loc }
print(before ~= hint(), hint() == '\u{2026}' .. row.access_token:sub(-4))
]]):format(o.sim.location, os.getenv("GHLUA")))
    assert.are.same({ 0, "true\ttrue\n" }, { r.code, r.out }, r.err)
    assert.are.equal(0, o.stats().oauth.refresh_reuse)
  end)

  it("never spends a refresh token on a 401 for a missing scope", function()
    local r = o.lua([[
      local c = require('ghl').client {}
      local resp = c:get('/locations/{locationId}', nil, { raw = true })
      print(resp.status)
    ]])
    assert.are.same({ 0, "401\n" }, { r.code, r.out }, r.err)
    assert.are.equal(0, o.stats().oauth.refresh_ok)
    local d = o.ghlua { "auth", "doctor" }
    assert.are.equal(1, d.code)
    assert.matches("refused for a missing scope", d.out)
  end)
end)

describe("token refresh across processes", function()
  -- a token that outlives the run on the real clock; the first process
  -- moves the simulator's clock past its life after every 10th call
  local o
  before_each(function()
    o = oauth.start { "--auto-approve", "--token-ttl", "3600", "--rate-max", "100000" }
    o.add_app()
    assert.are.equal(0, o.login().code)
  end)
  after_each(function() o.stop() end)

  it("serves 8 processes × 50 calls while the token expires 4 times, presenting no refresh token twice", function()
    local procs = {}
    for i = 1, 8 do
      local out = os.tmpname()
      local code = calls(o.sim.location, 50, "0.01", i == 1 and 10 or 0, 3601)
      local env = {}
      for k, v in pairs(o.env) do env[#env + 1] = k .. "=" .. run.quote(v) end
      os.execute(("env %s %s -e %s >%s 2>&1; echo $? >>%s &"):format(table.concat(env, " "),
        run.quote(os.getenv("GHLUA")), run.quote(code), out, out))
      procs[i] = out
    end
    wait_until(function()
      for _, p in ipairs(procs) do if not run.slurp(p):match("\n%d+\n$") then return false end end
      return true
    end, "8 processes", 120)
    for i, p in ipairs(procs) do
      assert.are.equal("ok\n0\n", run.slurp(p), "process " .. i)
      os.remove(p)
    end
    local st = o.stats().oauth
    assert.are.equal(0, st.refresh_reuse)
    assert.is_true(st.refresh_ok >= 2, "the token should have expired and been refreshed during the run")
  end)
end)

describe("kill -9 during a refresh", function()
  local o, db
  local function start(phase)
    o = oauth.start { "--auto-approve", "--token-ttl", "1", "--token-delay-ms", "2000", "--token-delay-phase", phase }
    o.add_app()
    assert.are.equal(0, o.login().code)
    db = o.home .. "/ghlua.db"
  end
  after_each(function() if o then o.stop() end end)

  -- Start `ghlua auth token` in the background after expiry; returns its pid.
  local function refresher()
    sys.sleep(1.1)
    local env = {}
    for k, v in pairs(o.env) do env[#env + 1] = k .. "=" .. run.quote(v) end
    local p = io.popen(("env %s %s auth token >/dev/null 2>&1 & echo $!"):format(table.concat(env, " "),
      run.quote(os.getenv("GHLUA"))))
    local pid = tonumber(p:read("a"):match("%d+"))
    p:close()
    return pid
  end

  local function consistent()
    local r = run.sh("sqlite3 " .. run.quote(db) .. " 'PRAGMA integrity_check'")
    assert.are.same({ 0, "ok\n" }, { r.code, r.out })
  end

  for _, phase in ipairs { "before", "after" } do
    it("while the token request is in flight (" .. phase .. " the server rotates it)", function()
      start(phase)
      local pid = refresher()
      wait_until(function() return (o.stats().oauth.in_flight or 0) >= 1 end, "the refresh request")
      sys.kill(pid, 9)
      consistent()
      -- the next process recovers without presenting the old refresh token again
      local r = o.ghlua { "auth", "token" }
      assert.are.equal(0, r.code, r.err)
      -- let the delayed request finish on the server
      wait_until(function() return o.stats().oauth.in_flight == 0 end, "the delayed answers")
      assert.are.equal(0, o.stats().oauth.refresh_reuse)
      -- doctor tries the token online: give it one that outlives the call
      o.sim.oauth { token_delay_ms = 0, token_ttl = 3600 }
      local d = o.ghlua { "auth", "doctor" }
      assert.are.equal(0, d.code, d.out)
    end)
  end

  it("while saving the answer (the store is locked by another process)", function()
    o = oauth.start { "--auto-approve", "--token-ttl", "1", "--token-delay-ms", "500", "--token-delay-phase", "after" }
    o.add_app()
    assert.are.equal(0, o.login().code)
    db = o.home .. "/ghlua.db"
    local pid = refresher()
    wait_until(function() return (o.stats().oauth.in_flight or 0) >= 1 end, "the refresh request")
    -- hold the write lock so the commit waits, then kill the refresher there
    local lock = io.popen("(echo 'BEGIN IMMEDIATE;'; sleep 2; echo 'ROLLBACK;') | sqlite3 " .. run.quote(db), "r")
    sys.sleep(1.0)
    sys.kill(pid, 9)
    lock:close()
    consistent()
    local r = o.ghlua { "auth", "token" }
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(0, o.stats().oauth.refresh_reuse)
  end)

  it("before the refresh started (waiting for the store): the old pair still works", function()
    o = oauth.start { "--auto-approve", "--token-ttl", "1" }
    o.add_app()
    assert.are.equal(0, o.login().code)
    db = o.home .. "/ghlua.db"
    local lock = io.popen("(echo 'BEGIN IMMEDIATE;'; sleep 2; echo 'ROLLBACK;') | sqlite3 " .. run.quote(db), "r")
    sys.sleep(0.2)
    local pid = refresher()
    sys.sleep(0.3)
    sys.kill(pid, 9)
    lock:close()
    consistent()
    local r = o.ghlua { "auth", "token" }
    assert.are.equal(0, r.code, r.err)
    local st = o.stats().oauth
    assert.are.same({ 0, 1 }, { st.refresh_reuse, st.refresh_ok })
  end)
end)

describe("agency tokens and PITs", function()
  local o
  before_each(function()
    o = oauth.start { "--auto-approve", "company", "--app-type", "Company", "--locations", "120" }
    o.add_app("contacts locations oauth")
  end)
  after_each(function() o.stop() end)

  it("lists installed locations across pages and mints location tokens on demand", function()
    -- an agency install: a Company code from the consent endpoint
    local http = require "ghl.http"
    local resp = assert(http.request { url = o.sim.url .. "/v2/oauth/chooselocation", query = {
      response_type = "code", client_id = o.client_id, redirect_uri = o.redirect_uri, scope = "oauth.readonly oauth.write contacts.readonly" } })
    local code = resp.headers.location:match("code=([^&]+)")
    local r = o.ghlua { "auth", "exchange", code, "--app", "app1", "--user-type", "Company" }
    assert.are.equal(0, r.code, r.err)
    assert.matches("Company", r.out)
    local l = o.ghlua { "auth", "locations", "--json" }
    assert.are.equal(0, l.code, l.err)
    local locs = cjson.decode(l.out)
    assert.are.equal(121, #locs)
    local t = o.ghlua { "auth", "token", "--location", locs[50]._id }
    assert.are.equal(0, t.code, t.err)
    local st = status(o)
    assert.are.equal(2, #st)
  end)

  it("stores a PIT from stdin, uses it as a bearer token and never refreshes it", function()
    local pit = "pit-3f1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
    o.stop()
    o = oauth.start { "--pit", pit }
    local r = o.ghlua({ "auth", "pit", "add", "ops", "--location", o.sim.location }, { stdin = pit .. "\n" })
    assert.are.equal(0, r.code, r.err)
    assert.matches("…4c5d", r.out)
    assert.is_nil(r.out:find(pit, 1, true))
    local c = o.lua(calls(o.sim.location, 3))
    assert.are.same({ 0, "ok\n" }, { c.code, c.out }, c.err)
    local l = o.ghlua { "auth", "locations" }
    assert.are.equal(1, l.code)
    assert.matches("no agency %(Company%) token", l.err)
  end)
end)

describe("the store's permissions", function()
  it("refuses a world-readable store with the chmod fix", function()
    local o = oauth.start {}
    o.add_app()
    os.execute("chmod 644 " .. run.quote(o.home .. "/ghlua.db"))
    local r = o.ghlua { "auth", "status" }
    o.stop()
    assert.are.equal(1, r.code)
    assert.matches("chmod 600", r.err)
  end)
end)

describe("auth doctor, reconnect and recovery", function()
  local o
  before_each(function()
    o = oauth.start { "--auto-approve", "--token-ttl", "1" }
    o.add_app()
    assert.are.equal(0, o.login().code)
  end)
  after_each(function() o.stop() end)

  -- Spend the stored refresh token behind the store's back, as a lost
  -- process would have.
  local function spend()
    local r = o.lua([[
      local db = require('ghl.store').open()
      local row = db:find_tokens{}[1]
      local tok = require('ghl.oauth').refresh { client_id = ]] .. ("%q"):format(o.client_id) .. [[,
        client_secret = os.getenv('GHL_CLIENT_SECRET'), refresh_token = row.refresh_token }
      print(tok.access_token ~= row.access_token)
    ]])
    assert.are.same({ 0, "true\n" }, { r.code, r.out }, r.err)
  end

  it("recovers a spent refresh token through the Reconnect API, without presenting it twice", function()
    spend()
    sys.sleep(1.1)
    local r = o.ghlua { "auth", "token" }
    assert.are.equal(0, r.code, r.err)
    local st = o.stats().oauth
    assert.are.equal(1, st.reconnects)
    assert.are.equal(1, st.refresh_reuse)   -- the one refused presentation that revealed it
    assert.are.equal(0, o.ghlua({ "auth", "doctor" }).code)
  end)

  it("explains a spent refresh token, and recovers it without presenting it", function()
    local r = o.lua([[
      local db = require('ghl.store').open()
      local row = db:find_tokens{}[1]
      db:set_status(row.app, row.resource_id, 'spent', 'refresh failed: Invalid grant: refresh token is invalid')
    ]])
    assert.are.equal(0, r.code, r.err)
    local d = o.ghlua { "auth", "doctor", "--offline" }
    assert.are.equal(1, d.code)
    assert.matches("refused as already used or revoked", d.out)
    assert.matches("fix: run 'ghlua auth reconnect %-%-location " .. o.sim.location .. "'", d.out)
    sys.sleep(1.1)
    r = o.ghlua { "auth", "token" }
    assert.are.equal(0, r.code, r.err)
    assert.are.same({ 0, 1 }, { o.stats().oauth.refresh_reuse, o.stats().oauth.reconnects })
    o.ghlua { "app", "remove", "app1" }
    assert.are.equal(0, o.ghlua({ "auth", "login", "--scopes", "contacts" },
      { env = { GHL_CLIENT_ID = o.client_id, GHL_REDIRECT_URI = o.redirect_uri, BROWSER = "curl -sfL -o /dev/null" } }).code)
    d = o.ghlua({ "auth", "doctor", "--offline" }, { env = { GHL_CLIENT_ID = "" } })
    assert.are.equal(1, d.code)
    assert.matches("app '" .. o.client_id:gsub("%p", "%%%0") .. "' is not stored", d.out)
  end)

  it("says a location is not active, and keeps the refresh token", function()
    local http = require "ghl.http"
    assert(http.request { method = "PUT", url = o.sim.url .. "/__sim/locations/" .. o.sim.location, json = { active = false } })
    sys.sleep(1.1)
    local r = o.ghlua { "auth", "token" }
    assert.are.equal(1, r.code)
    assert.matches("Location is not active", r.err)
    assert.matches("paused or suspended", r.err)
    local d = o.ghlua { "auth", "doctor" }
    assert.are.equal(1, d.code)
    assert.matches("not active", d.out)
    assert(http.request { method = "PUT", url = o.sim.url .. "/__sim/locations/" .. o.sim.location, json = { active = true } })
    r = o.ghlua { "auth", "refresh", "--all" }
    assert.are.equal(0, r.code, r.err)
    assert.matches("refreshed token Location", r.out)
  end)

  it("reconnects on request with `auth reconnect`", function()
    local before = cjson.decode(o.ghlua({ "auth", "status", "--json" }).out)[1]
    local r = o.ghlua { "auth", "reconnect", "--location", o.sim.location }
    assert.are.equal(0, r.code, r.err)
    assert.matches("reconnected: token Location", r.out)
    local after = cjson.decode(o.ghlua({ "auth", "status", "--json" }).out)[1]
    assert.are_not.equal(before.refresh_token, after.refresh_token)
    assert.matches("Reconnect API", after.note)
  end)

  it("says when an agency token is used on a sub-account route", function()
    o.stop()
    o = oauth.start { "--auto-approve", "company", "--app-type", "Company" }
    o.add_app("contacts oauth")
    assert.are.equal(0, o.ghlua({ "auth", "login", "--app", "app1", "--user-type", "Company" },
                                { env = { BROWSER = "curl -sfL -o /dev/null" } }).code)
    local r = o.lua([[
      local row = require('ghl.store').open():find_tokens{}[1]
      local c = require('ghl').client { company = row.resource_id }
      local _, err = require('ghl').try(c.get, c, '/contacts/', { locationId = ]] .. ("%q"):format(o.sim.location) .. [[ })
      print(err.status)
    ]])
    assert.are.same({ 0, "401\n" }, { r.code, r.out }, r.err)
    local d = o.ghlua { "auth", "doctor" }
    assert.are.equal(1, d.code)
    assert.matches("Company %(agency%) token was used on a sub%-account route", d.out)
  end)
end)

describe("OAuth calls on the client's request path", function()
  local http = require "ghl.http"
  local o
  after_each(function() if o then o.stop() end o = nil end)

  local function chaos(rules)
    local r = assert(http.request { method = "PUT", url = o.sim.url .. "/__sim/chaos", json = { rules = rules } })
    assert(r.status == 200, r.body)
  end
  local function log(path)
    return assert(http.request { url = o.sim.url .. "/__sim/requests", query = { path = path } }):json().requests
  end

  local function location_login(extra)
    local argv = { "--auto-approve" }
    for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
    o = oauth.start(argv)
    o.add_app()
    assert.are.equal(0, o.login().code)
  end

  -- An agency install (Company token) over a company of n + 1 locations.
  local function agency(n, extra)
    local argv = { "--auto-approve", "company", "--app-type", "Company", "--locations", tostring(n) }
    for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
    o = oauth.start(argv)
    o.add_app("contacts locations oauth")
    local resp = assert(http.request { url = o.sim.url .. "/v2/oauth/chooselocation", query = {
      response_type = "code", client_id = o.client_id, redirect_uri = o.redirect_uri,
      scope = "oauth.readonly oauth.write contacts.readonly" } })
    local code = resp.headers.location:match("code=([^&]+)")
    local r = o.ghlua { "auth", "exchange", code, "--app", "app1", "--user-type", "Company" }
    assert.are.equal(0, r.code, r.err)
  end

  -- Lua for a child: list the installed locations with the agency token,
  -- then mint a token for each inside ghl.parallel; prints "ok failed".
  local MINT_ALL = [[
    local ghl, auth = require 'ghl', require 'ghl.auth'
    local crow
    for _, r in ipairs(auth.store():find_tokens { kind = 'oauth' }) do
      if r.resource_type == 'Company' then crow = r end
    end
    local locs = require('ghl.locations').installed { app = crow.app, company = crow.resource_id }
    local fns = {}
    for i, l in ipairs(locs) do fns[i] = function() return (auth.token { location = l._id }) end end
    local res = ghl.parallel(fns, { concurrency = 16, progress = false })
    local ok, failed = 0, 0
    for _, v in ipairs(res) do
      if type(v) == 'string' then ok = ok + 1 else failed = failed + 1; io.stderr:write(tostring(v), '\n') end
    end
    print(ok, failed)
  ]]

  it("refresh under 5xx fault injection: 40 cycles succeed, no refresh token presented twice", function()
    location_login()
    for i = 1, 40 do
      -- the refresh meets a 503; with times 2 or 3, so do the exchanges of
      -- the first Reconnect codes
      chaos { { path = "/oauth/token", status = 503, times = 1 + i % 3 } }
      local r = o.ghlua { "auth", "refresh", "--all" }
      assert.are.equal(0, r.code, "cycle " .. i .. ": " .. r.err)
      assert.matches("^refreshed token Location", r.out)
    end
    local st = o.stats().oauth
    -- each refresh token met its 503 and was never presented again
    assert.are.same({ 0, nil }, { st.refresh_reuse, st.token_requests.refresh_token })
    assert.are.equal(40, st.code_ok - 1)
    local rounds = 0
    for i = 1, 40 do rounds = rounds + i % 3 + 1 end   -- one Reconnect per 503 the token endpoint gave
    assert.are.equal(rounds, st.reconnects)
    local r = o.lua(calls(o.sim.location, 1))
    assert.are.same({ 0, "ok\n" }, { r.code, r.out }, r.err)
  end)

  it("a refresh whose answer is lost after the rotation is never presented again", function()
    location_login()
    chaos { { path = "/oauth/token", delay_ms = 2500 } }
    local r = o.lua([[
      require('ghl.oauth').TIMEOUT = 1
      local auth = require 'ghl.auth'
      local row = auth.store():find_tokens{}[1]
      print(auth.refresh(row, { force = true }).note)
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.matches("^recovered through the Reconnect API", r.out)
    local st = o.stats().oauth
    -- the simulator rotated it (refresh_ok), the client never sent it again
    assert.are.same({ 1, 1, 0, 1 }, { st.token_requests.refresh_token, st.refresh_ok, st.refresh_reuse, st.reconnects })
    r = o.lua(calls(o.sim.location, 1))
    assert.are.same({ 0, "ok\n" }, { r.code, r.out }, r.err)
  end)

  it("a 429 from the token endpoint is waited out and the refresh sent again", function()
    location_login()
    chaos { { path = "/oauth/token", status = 429, times = 2,
              headers = { ["X-RateLimit-Interval-Milliseconds"] = "200", ["X-RateLimit-Max"] = "100" } } }
    local r = o.ghlua { "auth", "refresh", "--all" }
    assert.are.equal(0, r.code, r.err)
    local st = o.stats().oauth
    assert.are.same({ 1, 1, 0 }, { st.token_requests.refresh_token, st.refresh_ok, st.reconnects })
    assert.are.equal(4, #log("/oauth/token"))   -- the login's exchange, two 429s, the refresh
  end)

  it("a login code whose exchange meets an unknown outcome: one line, 'approve again', not sent twice", function()
    location_login()
    local resp = assert(http.request { url = o.sim.url .. "/oauth/chooselocation", query = {
      response_type = "code", client_id = o.client_id, redirect_uri = o.redirect_uri, scope = "contacts.readonly" } })
    local code = assert(resp.headers.location:match("code=([^&]+)"))
    chaos { { path = "/oauth/token", status = 502 } }
    local before = #log("/oauth/token")
    local r = o.ghlua { "auth", "exchange", code, "--app", "app1" }
    assert.are.equal(1, r.code)
    assert.matches("^ghlua: oauth%.exchange: the authorization code may have been used: .*approve the app again", r.err)
    assert.are.equal(1, select(2, r.err:gsub("\n", "")))
    assert.are.equal(before + 1, #log("/oauth/token"))
  end)

  it("coroutines of one process share one refresh of an expired token", function()
    location_login { "--token-ttl", "2" }
    o.sim.oauth { token_delay_ms = 300 }
    sys.sleep(2.2)
    local r = o.lua(([[
      local ghl = require 'ghl'
      local c = ghl.client { location = %q }
      local fns = {}
      for i = 1, 8 do fns[i] = function() return #c:get('/contacts/', { limit = 1 }).contacts end end
      local res = ghl.parallel(fns, { progress = false })
      for i = 1, 8 do assert(res[i] == 0 or res[i] == 1, tostring(res[i])) end
      print('ok')
    ]]):format(o.sim.location))
    assert.are.same({ 0, "ok\n" }, { r.code, r.out }, r.err)
    local st = o.stats().oauth
    assert.are.same({ 1, 1, 0, 0 }, { st.token_requests.refresh_token, st.refresh_ok, st.refresh_reuse, st.reconnects })
  end)

  it("location tokens minted inside ghl.parallel overlap instead of blocking", function()
    agency(7, { "--rate-max", "100000" })
    chaos { { path = "/oauth/locationToken", delay_ms = 400, times = 8 } }
    local r = o.lua(MINT_ALL)
    assert.are.same({ 0, "8\t0\n" }, { r.code, r.out }, r.err)
    -- the largest number of locationToken requests the simulator held at once
    local spans, most = log("/oauth/locationToken"), 0
    assert.are.equal(8, #spans)
    for _, a in ipairs(spans) do
      local n = 0
      for _, b in ipairs(spans) do
        if b.at <= a.at and a.at < b.at + b.delayMs then n = n + 1 end
      end
      most = math.max(most, n)
    end
    assert.is_true(most >= 4, "at most " .. most .. " in flight at once")
  end)

  it("mints 30 location tokens at 5 requests per second: throttled per company, 429s waited out, 0 failures", function()
    agency(29, { "--rate-max", "5", "--rate-interval-ms", "1000" })
    -- three 429s as if another tool had used the company's budget
    chaos { { path = "/oauth/locationToken", status = 429, times = 3, headers = { ["X-RateLimit-Remaining"] = "0" } } }
    local r = o.lua(MINT_ALL)
    assert.are.same({ 0, "30\t0\n" }, { r.code, r.out }, r.err)
    local st = o.stats()
    assert.are.equal(0, st.rateLimited)   -- the throttle kept every call under the limit
    assert.are.equal(30, st.oauth.location_tokens)
    local n429 = 0
    for _, e in ipairs(log("/oauth/locationToken")) do if e.status == 429 then n429 = n429 + 1 end end
    assert.are.equal(3, n429)
    assert.are.equal(31, #status(o))   -- the Company token and 30 location tokens
  end)
end)
