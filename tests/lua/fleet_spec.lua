-- The fleet: three "machines" (separate GHLUA_HOMEs, no shared files) on
-- one PostgreSQL token store (the same GHLUA_STORE and key), against the
-- simulator with a 2 s access-token lifetime, so the shared token is
-- refreshed over and over by whichever process finds it expiring.
--
-- First, a process is killed with -9 at each phase of a refresh, each on
-- a machine of its own: holding the claim ("claimed", before anything was
-- sent), with the POST sent and not yet taken effect ("sending"), and with
-- the refresh token already rotated by the server while its answer is
-- under way (after the POST, before the commit). Each time another
-- machine's next call works, `ghlua auth doctor` exits 0 and `ghlua store
-- check` is clean.
--
-- Then 8 processes per machine make 50 GETs each through ghl.client, and
-- PostgreSQL is restarted (pg_ctl stop -m fast, start) in the middle of the
-- run. A call that meets the store down gets the store's one-line error
-- (kind "store"); the worker waits and calls again, and counts it: every
-- call is eventually answered 200. At the end: no refresh token presented
-- twice (the simulator counts reuse), no API answer but 200, the store
-- consistent.
local oauth = require "support.oauth"
local pg = require "support.pg"
local run = require "support.run"
local sim = require "support.sim"
local sys = require "ghl.sys"
local http = require "ghl.http"
local cjson = require "cjson"

local q = run.quote
local KEY = ("0123456789abcdef"):rep(4)
local MACHINES, PROCS, CALLS = 3, 8, 50

local function wait_until(f, what, limit)
  local deadline = sys.now() + (limit or 20)
  while true do
    local v = f()
    if v then return v end
    assert(sys.now() < deadline, "timed out waiting for " .. what)
    sys.sleep(0.02)
  end
end

-- A worker: n GETs (PAUSE seconds apart, so the run spans several token
-- lifetimes) through ghl.client for the location; a call that
-- fails with kind "store" (the server restarting) is made again after a
-- pause, for up to 60 s. Prints one JSON line: {ok=, retried=, codes=}.
local WORKER = [[
local loc, n, pause = ...
local sys = require "ghl.sys"
local c = require("ghl").client { location = loc }
local ok, retried, codes = 0, 0, {}
for _ = 1, tonumber(n) do
  local deadline = sys.now() + 60
  while true do
    local good, res = pcall(c.get, c, "/contacts/", { limit = 1 })
    if good then
      assert(type(res.contacts) == "table")
      ok = ok + 1
      if pause then sys.sleep(tonumber(pause)) end
      break
    end
    if type(res) ~= "table" or res.kind ~= "store" or sys.now() > deadline then error(res, 0) end
    retried = retried + 1
    codes[tostring(res.code)] = (codes[tostring(res.code)] or 0) + 1
    sys.sleep(0.2)
  end
end
io.write(require("cjson").encode { ok = ok, retried = retried, codes = codes }, "\n")
]]

describe("a fleet of three machines on one PostgreSQL store", function()
  local server, o, worker, machines = nil, nil, nil, {}
  local tmp, clean = require("support.fixture").scratch()


  -- ghlua on machine m (1..3): o.env with its own GHLUA_HOME.
  local function on(m, args, extra)
    local env = {}
    for k, v in pairs(machines[m]) do env[k] = v end
    for k, v in pairs(extra or {}) do env[k] = v end
    return run.ghlua(args, { env = env })
  end

  local function env_prefix(m, extra)
    local parts = { "env" }
    for k, v in pairs(machines[m]) do parts[#parts + 1] = k .. "=" .. q(v) end
    for k, v in pairs(extra or {}) do parts[#parts + 1] = k .. "=" .. q(v) end
    return table.concat(parts, " ")
  end

  -- Start `ghlua ARGS` on machine m in the background; returns its pid.
  local function spawn(m, args)
    local parts = {}
    for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
    local p = io.popen(("%s %s %s >/dev/null 2>&1 & echo $!"):format(env_prefix(m), q(os.getenv("GHLUA")),
      table.concat(parts, " ")))
    local pid = tonumber(p:read("a"):match("%d+"))
    p:close()
    return pid
  end

  local function kill(pid)
    assert(sys.kill(pid, 9))
    wait_until(function() return not sys.kill(pid, 0) end, "process " .. pid .. " to die")
  end

  local function claim_phase()
    local r = on(1, { "-e", ([[
      local c = require('ghl.auth').store():claim_of('app1', %q)
      print(c and c.phase or '-')
    ]]):format(o.sim.location) })
    assert(r.code == 0, r.err)
    return r.out:match("%S+")
  end

  -- After a kill: machine m's next call works, then auth doctor exits 0
  -- and store check is clean; nothing presented twice.
  local function consistent(m)
    local r = on(m, { worker, o.sim.location, "1" })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(1, cjson.decode(r.out).ok)
    r = on(m, { "auth", "doctor" })
    assert.are.equal(0, r.code, r.out .. r.err)
    r = on(m, { "store", "check" })
    assert.are.same({ 0, "ok: postgresql store " .. machines[m].GHLUA_STORE .. "\n" }, { r.code, r.out }, r.err)
    assert.are.equal("-", claim_phase())
    assert.are.equal(0, o.stats().oauth.refresh_reuse)
  end

  setup(function()
    server = pg.start()
    local url = server:createdb()
    o = oauth.start { "--auto-approve", "--token-ttl", "2", "--rate-max", "1000000" }
    o.env.GHLUA_STORE, o.env.GHLUA_STORE_KEY = url, KEY
    for m = 1, MACHINES do
      local env = {}
      for k, v in pairs(o.env) do env[k] = v end
      env.GHLUA_HOME = tmp()
      os.remove(env.GHLUA_HOME)
      machines[m] = env
    end
    machines[1].GHLUA_HOME = o.home
    worker = tmp(WORKER)
    o.add_app()
    assert.are.equal(0, o.login().code)
  end)

  teardown(function()
    if o then o.stop() end
    if server then server:destroy() end
    clean()
  end)

  it("recovers from a process killed with -9 at each phase of a refresh", function()
    -- 1. holding the claim, nothing sent (machine 1)
    local pid = spawn(1, { "-e", ([[
      assert(require('ghl.auth').store():claim('app1', %q, 60))
      require('ghl.sys').sleep(60)
    ]]):format(o.sim.location) })
    wait_until(function() return claim_phase() == "claimed" end, "the claim")
    kill(pid)
    -- the next refresh (another machine's) takes the dead claim over; a
    -- call alone refreshes only when the 2 s token has expired by then
    local r = on(2, { "auth", "refresh", "--all" })
    assert.are.equal(0, r.code, r.err)
    consistent(2)
    -- 2. "sending": the POST is under way and has not taken effect
    -- (machine 2); the next user must not present the refresh token
    o.sim.oauth { token_delay_ms = 8000, token_delay_phase = "before" }
    local before = o.stats().oauth.token_received
    pid = spawn(2, { "auth", "refresh", "--all" })
    wait_until(function() return o.stats().oauth.token_received > before end, "the refresh POST")
    assert.are.equal("sending", claim_phase())
    kill(pid)
    o.sim.oauth { token_delay_ms = 0 }
    consistent(3)
    -- 3. after the POST, before the commit: the server rotated the
    -- refresh token and the answer is on its way (machine 3)
    o.sim.oauth { token_delay_ms = 8000, token_delay_phase = "after" }
    before = o.stats().oauth.refresh_ok
    pid = spawn(3, { "auth", "refresh", "--all" })
    wait_until(function() return o.stats().oauth.refresh_ok > before end, "the rotation")
    assert.are.equal("sending", claim_phase())
    kill(pid)
    o.sim.oauth { token_delay_ms = 0 }
    consistent(1)
  end)

  it("makes 8 x 50 calls per machine, all answered 200, no refresh token presented twice, through a PostgreSQL restart", function()
    local start = o.stats()
    local outs, parts = {}, {}
    for m = 1, MACHINES do
      for p = 1, PROCS do
        local out = tmp()
        outs[#outs + 1] = out
        parts[#parts + 1] = ("%s %s %s %s %d 0.1 >%s 2>&1 &"):format(env_prefix(m), q(os.getenv("GHLUA")), q(worker),
          q(o.sim.location), CALLS, q(out))
      end
    end
    local done = tmp()
    os.remove(done)
    assert(os.execute("(" .. table.concat(parts, " ") .. " wait; touch " .. q(done) .. ") >/dev/null 2>&1 &"))
    -- the restart, once a third of the calls are answered
    local total = MACHINES * PROCS * CALLS
    local function answered() return (o.stats().requests or 0) - (start.requests or 0) end
    wait_until(function() return answered() >= total / 3 or io.open(done) end, "a third of the calls", 60)
    local at = answered()
    server:stop()
    sys.sleep(1)
    server:start()
    wait_until(function() return io.open(done) end, "the workers", 120)
    -- every worker made its calls: every call eventually answered
    local ok, retried, codes = 0, 0, {}
    for _, out in ipairs(outs) do
      local text = run.slurp(out)
      local okj, j = pcall(cjson.decode, text)
      assert(okj and type(j) == "table", "a worker failed: " .. text)
      ok, retried = ok + j.ok, retried + j.retried
      for k, v in pairs(j.codes) do codes[k] = (codes[k] or 0) + v end
    end
    local st = o.stats()
    print(("\nfleet: %d calls ok, restart after %d answered, %d store errors retried %s; %d refreshes, reuse %d"):format(
      ok, at, retried, cjson.encode(codes), st.oauth.refresh_ok - start.oauth.refresh_ok, st.oauth.refresh_reuse))
    assert.are.equal(total, ok)
    assert.is_true(at < total, "the restart came after the run")
    assert.are.equal(0, st.oauth.refresh_reuse)
    assert.is_true(st.oauth.refresh_ok - start.oauth.refresh_ok >= 2, "the token was not refreshed during the run")
    assert.are.same(start.status and start.status["401"], st.status and st.status["401"])
    -- the store is consistent and the next call works
    for m = 1, MACHINES do consistent(m) end
  end)
end)
