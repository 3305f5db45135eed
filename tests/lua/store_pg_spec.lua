-- The PostgreSQL token store against a real server (support/pg.lua): what
-- only a shared server brings. Claims raced by several processes, a new
-- store created by many at once, the server restarted between a claim and
-- its commit, the connection dropped while a refreshed pair commits (an
-- unknown outcome, never success), passwords kept out of every message,
-- bad connection strings, and the OAuth refresh path and `auth doctor`
-- with GHLUA_STORE pointing at PostgreSQL. (store_spec.lua runs the SQLite
-- store's own assertions on this engine too.)
local store = require "ghl.store"
local sys = require "ghl.sys"
local pg = require "support.pg"
local run = require "support.run"
local oauth = require "support.oauth"
local cjson = require "cjson"

local q = run.quote
local GHLUA = os.getenv("GHLUA")
local CHILD = (os.getenv("GHLUA_SRC") or ".") .. "/tests/lua/support/store_child.lua"

local function token(n)
  return { app = "acme", resource_id = "LOC1", resource_type = "Location",
    access_token = "at-" .. n, refresh_token = "rt-" .. n, expires_at = n }
end

local function wait_until(f, what, limit)
  local deadline = sys.now() + (limit or 10)
  while not f() do
    assert(sys.now() < deadline, "timed out waiting for " .. what)
    sys.sleep(0.02)
  end
end

-- Run n copies of a shell command at once; returns their outputs.
local function together(n, cmd)
  local outs, parts = {}, {}
  for i = 1, n do
    outs[i] = os.tmpname()
    parts[#parts + 1] = cmd .. " >" .. q(outs[i]) .. " 2>&1 &"
  end
  parts[#parts + 1] = "wait"
  assert(os.execute(table.concat(parts, " ")))
  local res = {}
  for i = 1, n do
    res[i] = run.slurp(outs[i])
    os.remove(outs[i])
  end
  return res
end

local function child_cmd(...)
  local parts = { q(GHLUA), q(CHILD) }
  for _, a in ipairs { ... } do parts[#parts + 1] = q(a) end
  return table.concat(parts, " ")
end

-- n processes open the store, wait for one signal, claim (app, LOC1) at
-- once and print "ok phase reason", then stay alive until all have
-- printed (a winner that exited would be a dead holder). Their outputs.
local RACER = [[
local url, go, done, lease = ...
local sys = require "ghl.sys"
local db = assert(require("ghl.store").open(url))
while not io.open(go) do sys.sleep(0.005) end
local ok, info = db:claim("acme", "LOC1", tonumber(lease))
assert(ok ~= nil, tostring(info))
io.write(tostring(ok), " ", tostring(info and info.phase), " ", tostring(info and info.reason), "\n")
io.stdout:flush()
while not io.open(done) do sys.sleep(0.01) end
]]
local function race(n, url, lease)
  local script, go, done = os.tmpname(), os.tmpname(), os.tmpname()
  os.remove(go); os.remove(done)
  local f = assert(io.open(script, "w"))
  f:write(RACER)
  f:close()
  local outs, parts = {}, {}
  for i = 1, n do
    outs[i] = os.tmpname()
    parts[#parts + 1] = table.concat({ q(GHLUA), q(script), q(url), q(go), q(done), q(lease) }, " ")
      .. " >" .. q(outs[i]) .. " 2>&1 &"
  end
  local p = io.popen(table.concat(parts, " ") .. " wait; echo end")
  assert(io.open(go, "w")):close()
  wait_until(function()
    for _, o in ipairs(outs) do if not run.slurp(o):find("\n") then return false end end
    return true
  end, "the racers", 30)
  assert(io.open(done, "w")):close()
  p:read("a")
  p:close()
  local res = {}
  for i = 1, n do res[i] = run.slurp(outs[i]); os.remove(outs[i]) end
  os.remove(script); os.remove(go); os.remove(done)
  return res
end

describe("the PostgreSQL store", function()
  local server, url, db

  lazy_setup(function() server = pg.start() end)
  lazy_teardown(function() if server then server:destroy() end end)

  before_each(function()
    if not server.running then server:start() end
    url = server:createdb()
  end)
  after_each(function()
    if db then db:close() end
    db = nil
  end)

  describe("shared by several processes", function()
    it("lets 12 processes create the same new store at once", function()
      local code = "local db = assert(require'ghl.store'.open(" .. ("%q"):format(url) .. "));"
        .. " assert(db:kv_put('n', tostring(math.random()), 'v')); print(db:engine())"
      for i, out in ipairs(together(12, q(GHLUA) .. " -e " .. q(code))) do
        assert.are.equal("postgresql\n", out, "process " .. i)
      end
      db = assert(store.open(url))
      assert.is_true(db:check())
      assert.are.equal("3\n", server:psql("SELECT max(version) FROM ghlua.schema_version", url:match("/(t%d+)")).out)
    end)

    it("gives a free claim to exactly one of 8 processes racing for it", function()
      db = assert(store.open(url))
      assert(db:put_token(token(0)))
      local wins = 0
      for _, out in ipairs(race(8, url, "30")) do
        if out == "true nil nil\n" then wins = wins + 1
        else assert.are.equal("false claimed nil\n", out) end
      end
      assert.are.equal(1, wins)
    end)

    it("hands an expired lease to one taker, keeping its phase 'sending' through takeovers", function()
      db = assert(store.open(url))
      assert(db:put_token(token(0)))
      local ready, log = os.tmpname(), os.tmpname()
      os.remove(ready)
      local p = io.popen("exec 2>/dev/null; " .. child_cmd("hold", url, "acme", "LOC1", "sending", "0.3", ready)
        .. " >" .. q(log) .. " 2>&1 & echo $!")
      local pid = math.tointeger(tonumber(p:read("l")))
      p:close()
      wait_until(function() return io.open(ready) ~= nil end, "the holder")
      assert.is_false((db:claim("acme", "LOC1")))        -- live and leased
      sys.sleep(0.4)
      local wins = 0
      for _, out in ipairs(race(6, url, "0.3")) do
        if out == "true sending expired\n" then wins = wins + 1
        else assert.are.equal("false sending nil\n", out) end
      end
      assert.are.equal(1, wins)
      -- the taker is gone: the next one still sees "sending"
      local ok, prev = db:claim("acme", "LOC1", 30)
      assert.are.same({ true, "sending" }, { ok, prev.phase })
      assert.is_truthy(prev.reason == "dead" or prev.reason == "expired")
      assert.are.equal("sending", db:claim_of("acme", "LOC1").phase)
      assert(sys.kill(pid, 9))
      os.remove(ready); os.remove(log)
    end)
  end)

  describe("when the server goes away", function()
    it("reconnects after a restart between the claim and the commit", function()
      db = assert(store.open(url))
      assert(db:put_token(token(0)))
      assert.is_true(db:claim("acme", "LOC1", 30))
      assert(db:claim_phase("acme", "LOC1", "sending"))
      server:stop()
      server:start()
      assert.is_true(db:commit_refresh("acme", "LOC1", { access_token = "at-1", refresh_token = "rt-1" }))
      local t = db:get_token("acme", "LOC1")
      assert.are.same({ "rt-1", "rt-0" }, { t.refresh_token, t.previous_refresh_token })
      assert.is_nil(db:claim_of("acme", "LOC1"))
    end)

    it("says in one line which store is down, then works once it is back", function()
      db = assert(store.open(url))
      assert(db:put_token(token(0)))
      assert.is_true(db:claim("acme", "LOC1", 30))
      assert(db:claim_phase("acme", "LOC1", "sending"))
      server:stop()
      local ok, err = db:get_token("acme", "LOC1")
      assert.is_nil(ok)
      assert.are.same({ "store", "connection" }, { err.kind, err.code })
      assert.are.equal("token store " .. url .. ": ", err.message:sub(1, #url + 14))
      assert.matches("reconnecting failed: .*is the PostgreSQL server running%?%)$", err.message)
      assert.is_nil(err.message:find("\n"))
      ok, err = db:commit_refresh("acme", "LOC1", { refresh_token = "rt-1" })
      assert.are.same({ "store", "connection" }, { err.kind, err.code })
      server:start()
      -- the claim survived: the same process commits; nothing was lost
      assert.is_true(db:commit_refresh("acme", "LOC1", { access_token = "at-1", refresh_token = "rt-1" }))
      assert.are.equal("rt-1", db:get_token("acme", "LOC1").refresh_token)
    end)

    it("treats a connection lost during the commit of a refreshed pair as uncertain, never as saved", function()
      db = assert(store.open(url))
      assert(db:put_token(token(0)))
      local dbname = url:match("/(t%d+)")
      -- COMMIT runs deferred triggers: this one keeps the COMMIT busy so the
      -- connection can be cut in the middle of it
      local r = server:psql([[
        CREATE FUNCTION public.slow() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$;
        CREATE CONSTRAINT TRIGGER slow AFTER DELETE ON ghlua.claims DEFERRABLE INITIALLY DEFERRED
          FOR EACH ROW EXECUTE FUNCTION public.slow();]], dbname)
      assert.are.equal(0, r.code, r.err)
      local code = ([[
        local db = assert(require('ghl.store').open(%q))
        assert(db:claim('acme', 'LOC1', 30))
        assert(db:claim_phase('acme', 'LOC1', 'sending'))
        local ok, err = db:commit_refresh('acme', 'LOC1', { access_token = 'at-1', refresh_token = 'rt-1' })
        print(ok, err and err.kind, err and err.code)
        print(err and err.message)]]):format(url)
      local out = os.tmpname()
      local p = io.popen(q(GHLUA) .. " -e " .. q(code) .. " >" .. q(out) .. " 2>&1 & echo $!")
      local pid = math.tointeger(tonumber(p:read("l")))
      p:close()
      local function committing()
        return server:psql("SELECT pid FROM pg_stat_activity WHERE query = 'COMMIT' AND state = 'active'"
          .. " AND application_name = 'ghlua'", dbname).out:match("%d+")
      end
      wait_until(committing, "the COMMIT", 20)
      assert.are.equal(0, server:psql("SELECT pg_terminate_backend(" .. committing() .. ")").code)
      wait_until(function() return not sys.kill(pid, 0) end, "the child")
      local lines = run.slurp(out)
      os.remove(out)
      assert.matches("^nil\tstore\tuncertain\n", lines)
      assert.matches("token store " .. url:gsub("%p", "%%%0") .. ": the connection was lost while committing"
        .. " the refreshed token %(.*%), so whether it was saved is unknown; the claim stays in phase 'sending'", lines)
      assert.are.equal(0, server:psql("DROP TRIGGER slow ON ghlua.claims", dbname).code)
      -- not saved, and the next process takes the recovery path
      local t = db:get_token("acme", "LOC1")
      assert.are.equal("rt-0", t.refresh_token)
      local ok, prev = db:claim("acme", "LOC1", 30)
      assert.are.same({ true, "sending", "dead" }, { ok, prev.phase, prev.reason })
    end)
  end)

  describe("connection strings", function()
    it("never shows a password from the URL or the key=value string", function()
      local secret = "Pa55-word-XYZ"
      local with = url:gsub("^postgresql://postgres@", "postgresql://postgres:" .. secret .. "@")
      db = assert(store.open(with .. "&password=" .. secret))
      assert.are.equal(url, db.path)
      assert.is_nil(tostring(db):find(secret, 1, true))
      server:stop()
      local _, err = db:list_apps()
      server:start()
      assert.are.equal("connection", err.code)
      assert.is_nil(err.message:find(secret, 1, true))
      local kv = ("host=%s dbname=nosuchdb user=postgres password='%s x'"):format(server.dir, secret)
      local d, e2 = store.open(kv)
      assert.is_nil(d)
      assert.are.same({ "store", "connect" }, { e2.kind, e2.code })
      assert.matches('database "nosuchdb" does not exist', e2.message)
      assert.is_nil(e2.message:find(secret, 1, true))
      assert.is_nil(e2.message:find("Pa55", 1, true))
      -- and on the command line
      local r = run.ghlua({ "auth", "doctor" }, { env = { GHLUA_STORE = kv } })
      assert.are.equal(1, r.code)
      assert.is_nil((r.out .. r.err):find("Pa55", 1, true))
      assert.matches("nosuchdb", r.out .. r.err)
    end)

    it("hides passwords with '?', '/', '@' or '%' in them and percent-encoded keys", function()
      for _, u in ipairs {
        "postgresql://ghlua:s3cr?t@127.0.0.1:1/ghlua", "postgresql://u:a/b@127.0.0.1:1/db",
        "postgresql://u:a@b@127.0.0.1:1/db", "postgresql://ghlua:p%ss@127.0.0.1:1/ghlua",
        "postgresql://u@127.0.0.1:1/db?passwor%64=hunter2", "postgresql://u@127.0.0.1:1/db?sslpassword=hunter2",
        "postgresql://127.0.0.1:1/db?password=p@ss", "postgresql://u:pa:ss?@127.0.0.1:1/db?%70assword=x",
      } do
        local d, err = store.open(u)
        assert.is_nil(d, u)
        for _, secret in ipairs { "s3cr", "a/b", "a@b", "p%ss", "hunter2", "p@ss", "pa:ss", "=x" } do
          assert.is_nil(err.message:find(secret, 1, true), err.message)
        end
        assert.matches("127.0.0.1", err.message)
        assert.is_nil(err.message:find("USER[:PASSWORD]", 1, true), err.message)
      end
      -- and in db.path and tostring(db) of an open store
      local name = url:match("/(t%d+)")
      for _, u in ipairs {
        ("postgresql://postgres:s3cr?t@/%s?host=%s"):format(name, server.dir),
        ("postgresql://postgres@/%s?host=%s&passwor%%64=hunter2"):format(name, server.dir),
        ("postgresql://postgres@/%s?host=%s&sslpassword=hunter2"):format(name, server.dir),
      } do
        local d <close> = assert(store.open(u))
        for _, secret in ipairs { "s3cr", "hunter2" } do
          assert.is_nil(d.path:find(secret, 1, true), d.path)
          assert.is_nil(tostring(d):find(secret, 1, true))
        end
      end
    end)

    it("explains a bad connection string in one line with the fix", function()
      local bad = "postgresql://postgres@/t?host=" .. server.dir .. "&colour=blue"
      local d, err = store.open(bad)
      assert.is_nil(d)
      assert.are.same({ "store", "conninfo" }, { err.kind, err.code })
      assert.matches('not a valid PostgreSQL connection string: invalid URI query parameter: "colour"; write'
        .. " postgresql://USER@HOST%[:PORT%]/DBNAME .*, with the password in GHLUA_STORE, PGPASSWORD or ~/.pgpass",
        err.message)
      local r = run.ghlua({ "app", "list" }, { env = { GHLUA_STORE = bad } })
      assert.are.equal(1, r.code)
      assert.are.equal(1, select(2, r.err:gsub("\n", "")), r.err)
      assert.matches("GHLUA_STORE", r.err)
    end)

    it("takes key=value strings as well as URIs", function()
      local name = url:match("/(t%d+)")
      db = assert(store.open("host=" .. server.dir .. " user=postgres dbname=" .. name))
      assert.are.equal("postgresql", db:engine())
      assert(db:kv_put("n", "k", "v"))
      local d <close> = assert(store.open((url:gsub("^postgresql:", "postgres:"))))
      assert.are.equal("v", d:kv_get("n", "k"))
    end)
  end)

  describe("with GHLUA_STORE pointing at it", function()
    local o
    before_each(function()
      o = oauth.start { "--auto-approve", "--token-ttl", "2", "--rate-max", "100000" }
      o.env.GHLUA_STORE = url
      o.env.GHLUA_STORE_KEY = ("5a"):rep(32)   -- a PostgreSQL store is always sealed
      o.add_app()
      assert.are.equal(0, o.login().code)
    end)
    after_each(function() o.stop() end)

    local function status()
      local r = o.ghlua { "auth", "status", "--json" }
      assert.are.equal(0, r.code, r.err)
      return cjson.decode(r.out)
    end

    it("stores the login there and refreshes before expiry, keeping the previous refresh token", function()
      assert.is_nil(io.open(o.home .. "/ghlua.db"))   -- no SQLite file
      db = assert(store.open(url))
      assert.are.equal(1, #db:find_tokens())
      local before = status()[1]
      sys.sleep(1.6)
      local r = o.ghlua { "auth", "token" }
      assert.are.equal(0, r.code, r.err)
      local after = status()[1]
      assert.are_not.equal(before.refresh_token, after.refresh_token)
      assert.is_number(after.previous_refreshed_at)
      assert.are.equal(0, o.stats().oauth.refresh_reuse)
    end)

    it("serves 4 processes × 60 calls while the token lives 2 s, presenting no refresh token twice", function()
      local code = ([[
        local loc = %q
        local c = require('ghl').client { location = loc }
        for i = 1, 60 do c:get('/contacts/', { locationId = loc, limit = 1 }); require('ghl.sys').sleep(0.05) end
        print('ok')]]):format(o.sim.location)
      local env = {}
      for k, v in pairs(o.env) do env[#env + 1] = k .. "=" .. q(v) end
      for i, out in ipairs(together(4, "env " .. table.concat(env, " ") .. " " .. q(GHLUA) .. " -e " .. q(code))) do
        assert.are.equal("ok\n", out, "process " .. i)
      end
      local st = o.stats().oauth
      assert.are.equal(0, st.refresh_reuse)
      assert.is_true(st.refresh_ok >= 1, "the token should have expired and been refreshed during the run: "
        .. cjson.encode(st))
    end)

    it("recovers a spent refresh token through the Reconnect API, and auth doctor is happy", function()
      local r = o.lua([[
        local db = require('ghl.auth').store()   -- the secrets opened with GHLUA_STORE_KEY
        local row = db:find_tokens{}[1]
        local tok = require('ghl.oauth').refresh { client_id = ]] .. ("%q"):format(o.client_id) .. [[,
          client_secret = os.getenv('GHL_CLIENT_SECRET'), refresh_token = row.refresh_token }
        print(db:engine(), tok.access_token ~= row.access_token)]])
      assert.are.same({ 0, "postgresql\ttrue\n" }, { r.code, r.out }, r.err)
      sys.sleep(2.1)
      r = o.ghlua { "auth", "token" }
      assert.are.equal(0, r.code, r.err)
      local st = o.stats().oauth
      assert.are.same({ 1, 1 }, { st.reconnects, st.refresh_reuse })
      o.sim.oauth { token_ttl = 3600 }
      local d = o.ghlua { "auth", "doctor" }
      assert.are.equal(0, d.code, d.out .. d.err)
      assert.matches("store: " .. url:gsub("%p", "%%%0") .. " ", d.out)
    end)
  end)
end)
