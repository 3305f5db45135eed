-- Recovery that is crash-safe itself. Process A is killed with -9 while its
-- refresh is in flight (the simulator rotated the refresh token and holds
-- the answer back), so its refresh token may be spent. Process B recovers
-- without presenting it, and is killed with -9 at each step of each
-- recovery path: the Reconnect call, the exchange of its code, the commit
-- (mint from a Company token: the locationToken call, the commit; `auth
-- doctor` and `auth reconnect` the same way). Each step is held open by the
-- simulator (a chaos delay_ms rule: the request takes effect, its answer
-- waits) or, for the commit, by another process holding the store's write
-- lock while B's trace shows the answer arrived. Then process C runs, and
-- the simulator must have seen no refresh token presented twice, the store
-- must be consistent, and the token must work.
-- The one step between two store writes with no HTTP call (B's takeover of
-- A's claim, then "uncertain" on the token) cannot be held from outside;
-- store_spec.lua checks that a takeover keeps the phase, so a process
-- killed there leaves the claim exactly as A left it, the case C handles.
local oauth = require "support.oauth"
local run = require "support.run"
local sys = require "ghl.sys"
local http = require "ghl.http"
local cjson = require "cjson"

local function wait_until(f, what, limit)
  local deadline = sys.now() + (limit or 15)
  while not f() do
    assert(sys.now() < deadline, "timed out waiting for " .. what)
    sys.sleep(0.02)
  end
end

local function env_prefix(o, extra)
  local env = {}
  for k, v in pairs(o.env) do env[#env + 1] = k .. "=" .. run.quote(v) end
  for k, v in pairs(extra or {}) do env[#env + 1] = k .. "=" .. run.quote(v) end
  return "env " .. table.concat(env, " ")
end

-- Start `ghlua ARGS` in the background (tracing HTTP to its stderr file).
local function spawn(o, args)
  local parts = {}
  for _, a in ipairs(args) do parts[#parts + 1] = run.quote(a) end
  local err = os.tmpname()
  local p = io.popen(("%s %s %s >/dev/null 2>%s & echo $!"):format(env_prefix(o, { GHLUA_TRACE = "1" }),
    run.quote(os.getenv("GHLUA")), table.concat(parts, " "), run.quote(err)))
  local pid = tonumber(p:read("a"):match("%d+"))
  p:close()
  return { pid = pid, err = err }
end

local function kill(p)
  assert(sys.kill(p.pid, 9))
  wait_until(function() return not sys.kill(p.pid, 0) end, "process " .. p.pid .. " to die")
  os.remove(p.err)
end

local function sim_put(o, path, body)
  local r = assert(http.request { method = "PUT", url = o.sim.url .. path, json = body })
  assert(r.status == 200, r.body)
end

local function chaos(o, rules)
  sim_put(o, "/__sim/chaos", { rules = rules })
end

-- How many requests the simulator logged for method and path.
local function logged(o, method, path)
  local r = assert(http.request { url = o.sim.url .. "/__sim/requests", query = { method = method, path = path } })
  return r:json().total
end

-- Take the store's write lock from another process (sqlite3 reading a
-- fifo); returns a function that releases it.
local function lock_store(db)
  local fifo, out = os.tmpname(), os.tmpname()
  os.remove(fifo)
  assert(os.execute("mkfifo " .. run.quote(fifo)))
  assert(os.execute(("sqlite3 %s <%s >%s 2>&1 &"):format(run.quote(db), run.quote(fifo), run.quote(out))))
  local w = assert(io.open(fifo, "w"))
  w:write(".timeout 10000\nBEGIN IMMEDIATE;\n.print locked\n")
  w:flush()
  wait_until(function() return run.slurp(out):find("locked", 1, true) end, "the store's write lock")
  return function()
    w:write("ROLLBACK;\n.quit\n")
    w:close()
    os.remove(fifo)
    os.remove(out)
  end
end

-- B's trace shows n answers "200" in all.
local function answered(p, n)
  local _, count = run.slurp(p.err):gsub("\n< 200 ", "")
  return count >= n
end

local function store_row(o)
  local r = o.lua([[
    local db = require('ghl.store').open()
    local row = db:find_tokens{}[1]
    local c = db:claim_of(row.app, row.resource_id)
    print(require('cjson').encode { status = row.status, note = row.note or '', claim = c and c.phase or '' })
  ]])
  assert(r.code == 0, r.err)
  return cjson.decode(r.out)
end

-- Lua for a child: one API call with the stored token.
local CALL = [[
local c = require('ghl').client { location = %q }
assert(c:get('/contacts/', { limit = 1 }).contacts)
print('ok')
]]

-- A Location login; process A killed with -9 while its forced refresh is
-- in flight and the simulator has already rotated the refresh token.
local function start_and_kill_a(extra)
  local o = oauth.start(extra or { "--auto-approve" })
  o.add_app()
  assert.are.equal(0, o.login().code)
  o.db = o.home .. "/ghlua.db"
  o.sim.oauth { token_delay_ms = 8000, token_delay_phase = "after" }
  local a = spawn(o, { "auth", "refresh", "--all" })
  wait_until(function() return (o.stats().oauth.in_flight or 0) >= 1 end, "A's refresh request")
  kill(a)
  o.sim.oauth { token_delay_ms = 0 }
  assert.are.equal(1, o.stats().oauth.token_requests.refresh_token)
  return o
end

-- The checks after C: no refresh token presented twice (and only A ever
-- presented one, for a Location token), the store consistent, the token
-- recovered and working, doctor content.
local function check_after(o, location, presented)
  local ic = run.sh("sqlite3 " .. run.quote(o.db) .. " 'PRAGMA integrity_check'")
  assert.are.same({ 0, "ok\n" }, { ic.code, ic.out })
  local st = o.stats().oauth
  assert.are.equal(0, st.refresh_reuse)
  if presented then assert.are.equal(presented, st.token_requests.refresh_token or 0) end
  local row = store_row(o)
  assert.are.same({ "ok", "" }, { row.status, row.claim })
  local r = o.lua(CALL:format(location))
  assert.are.same({ 0, "ok\n" }, { r.code, r.out }, r.err)
  local d = o.ghlua { "auth", "doctor" }
  assert.are.equal(0, d.code, d.out)
  assert.are.equal(0, o.stats().oauth.refresh_reuse)
end

describe("kill -9 twice in a row: A during its refresh, then B during its recovery", function()
  local o
  after_each(function() if o then o.stop() end o = nil end)

  -- the recovering command B and the one that finishes, C
  local commands = {
    { name = "auth refresh", b = { "auth", "refresh", "--all" }, c = { "auth", "refresh", "--all" } },
    { name = "auth doctor", b = { "auth", "doctor" }, c = { "auth", "doctor" } },
  }

  for _, cmd in ipairs(commands) do
    it("B (" .. cmd.name .. ") killed during the Reconnect call", function()
      o = start_and_kill_a()
      chaos(o, { { path = "/oauth/reconnect", delay_ms = 4000 } })
      local b = spawn(o, cmd.b)
      wait_until(function() return logged(o, "POST", "/oauth/reconnect") >= 1 end, "B's Reconnect call")
      kill(b)
      local row = store_row(o)
      assert.are.same({ "uncertain", "recovering" }, { row.status, row.claim })
      local c = o.ghlua(cmd.c)
      assert.are.equal(0, c.code, c.out .. c.err)
      assert.are.equal(2, o.stats().oauth.reconnects)
      check_after(o, o.sim.location, 1)
    end)

    it("B (" .. cmd.name .. ") killed during the exchange of the Reconnect code", function()
      o = start_and_kill_a()
      chaos(o, { { path = "/oauth/token", delay_ms = 4000 } })
      local n = logged(o, "POST", "/oauth/token")
      local b = spawn(o, cmd.b)
      wait_until(function() return logged(o, "POST", "/oauth/token") > n end, "B's exchange")
      kill(b)
      assert.are.equal(2, o.stats().oauth.token_requests.authorization_code)   -- the login's, then B's
      local c = o.ghlua(cmd.c)
      assert.are.equal(0, c.code, c.out .. c.err)
      check_after(o, o.sim.location, 1)
    end)

    it("B (" .. cmd.name .. ") killed while committing the recovered pair", function()
      o = start_and_kill_a()
      chaos(o, { { path = "/oauth/token", delay_ms = 2500 } })
      local n = logged(o, "POST", "/oauth/token")
      local b = spawn(o, cmd.b)
      wait_until(function() return logged(o, "POST", "/oauth/token") > n end, "B's exchange")
      local unlock = lock_store(o.db)
      -- the Reconnect answer and the exchange answer: B is at its commit,
      -- which waits for the lock (the store still says "uncertain")
      local ok, err = pcall(function()
        wait_until(function() return answered(b, 2) end, "B's exchange answer")
        assert.are.equal("uncertain", store_row(o).status)
      end)
      kill(b)
      unlock()
      assert(ok, err)
      local c = o.ghlua(cmd.c)
      assert.are.equal(0, c.code, c.out .. c.err)
      check_after(o, o.sim.location, 1)
    end)
  end

  it("`auth reconnect` killed during the exchange of its code: the next refresh does not present the refresh token", function()
    o = oauth.start { "--auto-approve" }
    o.add_app()
    assert.are.equal(0, o.login().code)
    o.db = o.home .. "/ghlua.db"
    chaos(o, { { path = "/oauth/token", delay_ms = 4000 } })
    local n = logged(o, "POST", "/oauth/token")
    local b = spawn(o, { "auth", "reconnect", "--location", o.sim.location })
    wait_until(function() return logged(o, "POST", "/oauth/token") > n end, "the exchange of the Reconnect code")
    kill(b)
    assert.are.equal("recovering", store_row(o).claim)
    local c = o.ghlua { "auth", "refresh", "--all" }
    assert.are.equal(0, c.code, c.err)
    check_after(o, o.sim.location, 0)
  end)

  it("three processes killed in a row during recoveries, then one that finishes", function()
    o = start_and_kill_a()
    for round = 1, 2 do
      chaos(o, { { path = "/oauth/token", delay_ms = 4000 } })
      local n = logged(o, "POST", "/oauth/token")
      local b = spawn(o, { "auth", "refresh", "--all" })
      wait_until(function() return logged(o, "POST", "/oauth/token") > n end, "round " .. round .. "'s exchange")
      kill(b)
    end
    local c = o.ghlua { "auth", "refresh", "--all" }
    assert.are.equal(0, c.code, c.err)
    check_after(o, o.sim.location, 1)
  end)

  it("after expiry: A killed in flight, B killed during Reconnect, then `auth token` recovers", function()
    o = oauth.start { "--auto-approve", "--token-ttl", "1", "--token-delay-ms", "6000", "--token-delay-phase", "after" }
    o.add_app()
    assert.are.equal(0, o.login().code)
    o.db = o.home .. "/ghlua.db"
    sys.sleep(1.1)
    local a = spawn(o, { "auth", "token" })
    wait_until(function() return (o.stats().oauth.in_flight or 0) >= 1 end, "A's refresh request")
    kill(a)
    o.sim.oauth { token_delay_ms = 0 }
    chaos(o, { { path = "/oauth/reconnect", delay_ms = 4000 } })
    local b = spawn(o, { "auth", "token" })
    wait_until(function() return logged(o, "POST", "/oauth/reconnect") >= 1 end, "B's Reconnect call")
    kill(b)
    local c = o.ghlua { "auth", "token" }
    assert.are.equal(0, c.code, c.err)
    local st = o.stats().oauth
    assert.are.same({ 0, 1 }, { st.refresh_reuse, st.token_requests.refresh_token })
    assert.matches("Reconnect API", store_row(o).note)
  end)
end)

describe("kill -9 during a recovery that mints from the agency token", function()
  local o, loc
  after_each(function() if o then o.stop() end o = nil end)

  -- An agency login and one location token minted from it; A killed
  -- during that location token's refresh.
  local function agency()
    o = oauth.start { "--auto-approve", "company", "--app-type", "Company", "--locations", "3" }
    o.add_app("contacts locations oauth")
    o.db = o.home .. "/ghlua.db"
    local resp = assert(http.request { url = o.sim.url .. "/v2/oauth/chooselocation", query = {
      response_type = "code", client_id = o.client_id, redirect_uri = o.redirect_uri,
      scope = "oauth.readonly oauth.write contacts.readonly" } })
    local code = resp.headers.location:match("code=([^&]+)")
    local r = o.ghlua { "auth", "exchange", code, "--app", "app1", "--user-type", "Company" }
    assert.are.equal(0, r.code, r.err)
    loc = o.sim.location
    r = o.ghlua { "auth", "token", "--location", loc }
    assert.are.equal(0, r.code, r.err)
    o.sim.oauth { token_delay_ms = 8000, token_delay_phase = "after" }
    local a = spawn(o, { "auth", "refresh", "--location", loc })
    wait_until(function() return (o.stats().oauth.in_flight or 0) >= 1 end, "A's refresh request")
    kill(a)
    o.sim.oauth { token_delay_ms = 0 }
  end

  local function location_row()
    local r = o.lua(([[
      local db = require('ghl.store').open()
      local row = db:find_tokens{ location = %q }[1]
      local c = db:claim_of(row.app, row.resource_id)
      print(row.status, c and c.phase or '-', row.note or '')
    ]]):format(loc))
    assert(r.code == 0, r.err)
    return r.out
  end

  local function finish()
    local c = o.ghlua { "auth", "refresh", "--location", loc }
    assert.are.equal(0, c.code, c.err)
    assert.matches("^ok%s+%-%s+minted again from the agency token", location_row())
    local ic = run.sh("sqlite3 " .. run.quote(o.db) .. " 'PRAGMA integrity_check'")
    assert.are.same({ 0, "ok\n" }, { ic.code, ic.out })
    local st = o.stats().oauth
    assert.are.same({ 0, 1, 0 }, { st.refresh_reuse, st.token_requests.refresh_token, st.reconnects })
    local r = o.lua(CALL:format(loc))
    assert.are.same({ 0, "ok\n" }, { r.code, r.out }, r.err)
  end

  it("B killed during the locationToken call", function()
    agency()
    chaos(o, { { path = "/oauth/locationToken", delay_ms = 4000 } })
    local n = logged(o, "POST", "/oauth/locationToken")
    local b = spawn(o, { "auth", "refresh", "--location", loc })
    wait_until(function() return logged(o, "POST", "/oauth/locationToken") > n end, "B's locationToken call")
    kill(b)
    assert.matches("^uncertain%s+recovering", location_row())
    finish()
  end)

  it("B killed while committing the minted token", function()
    agency()
    chaos(o, { { path = "/oauth/locationToken", delay_ms = 2500 } })
    local n = logged(o, "POST", "/oauth/locationToken")
    local b = spawn(o, { "auth", "refresh", "--location", loc })
    wait_until(function() return logged(o, "POST", "/oauth/locationToken") > n end, "B's locationToken call")
    local unlock = lock_store(o.db)
    local ok, err = pcall(function()
      wait_until(function() return answered(b, 1) end, "B's locationToken answer")
      assert.matches("^uncertain", location_row())
    end)
    kill(b)
    unlock()
    assert(ok, err)
    assert.matches("^uncertain%s+recovering", location_row())
    finish()
  end)
end)
