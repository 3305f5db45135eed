-- ghl.store: the token store. File modes and refusals (SQLite), then on
-- both engines, SQLite and PostgreSQL (a real server, support/pg.lua), the
-- same assertions: apps, tokens, key/value, and refresh claims across
-- processes (support/store_child.lua): live holders block, dead or expired
-- ones are taken over, commits are serialised and survive kill -9.
local store = require "ghl.store"
local pg = require "support.pg"
local sys = require "ghl.sys"
local run = require "support.run"

local q = run.quote
local GHLUA = os.getenv("GHLUA")
local CHILD = (os.getenv("GHLUA_SRC") or ".") .. "/tests/lua/support/store_child.lua"

local tmpdir = require("support.fixture").tmpdir   -- a new 0700 directory

local function mode(p)
  local st = sys.stat(p)
  return st and string.format("%04o", st.mode)
end

local function exists(p) return io.open(p) ~= nil end

local function child_cmd(args)
  local parts = { q(GHLUA), q(CHILD) }
  for _, a in ipairs(args) do parts[#parts + 1] = q(a) end
  return table.concat(parts, " ")
end

-- Run a child to completion: {code=, out=, err=}.
local function child(args) return run.sh(child_cmd(args)) end

-- Start a child in the background under a shell that reaps it: returns
-- {pid=, wait()} where wait() returns its exit status once it has ended.
local function spawn(args, log)
  local p = io.popen("exec 2>/dev/null; " .. child_cmd(args) .. " >" .. q(log)
    .. " 2>&1 & echo $!; wait $!; echo $?")
  local pid = math.tointeger(tonumber(p:read("l")))
  return { pid = pid, wait = function()
    local status = p:read("l")
    p:close()
    return tonumber(status)
  end }
end

local function wait_file(file, log, seconds)
  local deadline = sys.now() + (seconds or 10)
  while not exists(file) do
    assert(sys.now() < deadline, "child did not get ready: " .. run.slurp(log))
    sys.sleep(0.01)
  end
  return run.slurp(file)
end

local function token(n)
  return { app = "acme", resource_id = "LOC1", resource_type = "Location",
    access_token = "at-" .. n, refresh_token = "rt-" .. n, expires_at = n }
end

for _, engine in ipairs { "sqlite", "postgresql" } do
describe("ghl.store (" .. engine .. ")", function()
  local dir, home, path, db, server

  if engine == "postgresql" then
    lazy_setup(function() server = pg.start() end)
    lazy_teardown(function() if server then server:destroy() end end)
  end

  before_each(function()
    dir = tmpdir()
    home = dir .. "/home"
    path = engine == "sqlite" and home .. "/ghlua.db" or server:createdb()
  end)

  after_each(function()
    if db then db:close() end
    db = nil
    os.execute("rm -rf " .. q(dir))
  end)

  if engine == "sqlite" then describe("files", function()
    it("finds the store from GHLUA_HOME, XDG_CONFIG_HOME or HOME", function()
      local code = "print(require'ghl.store'.default_path())"
      local function where(env)
        local set = ""
        for k, v in pairs(env) do set = set .. k .. "=" .. q(v) .. " " end
        return run.sh("env -u GHLUA_HOME -u XDG_CONFIG_HOME -u HOME " .. set .. q(GHLUA) .. " -e " .. q(code))
      end
      assert.are.equal("/g/ghlua.db\n", where { GHLUA_HOME = "/g", XDG_CONFIG_HOME = "/x", HOME = "/h" }.out)
      assert.are.equal("/x/ghlua/ghlua.db\n", where { XDG_CONFIG_HOME = "/x", HOME = "/h" }.out)
      assert.are.equal("/h/.config/ghlua/ghlua.db\n", where { XDG_CONFIG_HOME = "rel", HOME = "/h" }.out)
      local r = where {}
      assert.matches("nil\tcannot locate the token store", r.out)
    end)

    it("creates the directory 0700 and the files 0600 even with umask 000", function()
      local code = [[
        local store, sys = require "ghl.store", require "ghl.sys"
        local db = assert(store.open())
        assert(db:put_app { name = "a", client_id = "c" })
        for _, p in ipairs { db.path:match("^(.*)/"), db.path, db.path .. "-wal", db.path .. "-shm" } do
          local st = sys.stat(p)
          print(st and string.format("%04o", st.mode) or "missing")
        end
        db:close()]]
      local r = run.sh("sh -c " .. q("umask 000; exec " .. q(GHLUA) .. " -e " .. q(code)),
        { env = { GHLUA_HOME = dir .. "/a/b" } })
      assert.are.equal("", r.err)
      assert.are.equal("0700\n0600\n0600\n0600\n", r.out)
      assert.are.equal("0700", mode(dir .. "/a"))
    end)

    it("refuses a store that others can read, naming the fix", function()
      assert(store.open(path)):close()
      assert(sys.chmod(path, tonumber("644", 8)))
      local d, err = store.open(path)
      assert.is_nil(d)
      assert.are.equal("permissions", err.kind)
      assert.are.equal(path .. " is readable by others (mode 0644); run: chmod 600 " .. path, err.message)
      assert(sys.chmod(path, tonumber("600", 8)))
      assert(sys.chmod(home, tonumber("750", 8)))
      d, err = store.open(path)
      assert.is_nil(d)
      assert.are.equal("permissions", err.kind)
      assert.are.equal(home .. " is readable by others (mode 0750); run: chmod 700 " .. home, err.message)
      assert(sys.chmod(home, tonumber("700", 8)))
      db = assert(store.open(path))
    end)

    it("refuses a readable -wal file", function()
      db = assert(store.open(path))
      assert(db:kv_put("n", "k", "v"))
      assert.is_true(exists(path .. "-wal"))
      assert(sys.chmod(path .. "-wal", tonumber("640", 8)))
      local d, err = store.open(path)
      assert.is_nil(d)
      assert.are.equal("permissions", err.kind)
      assert.matches("chmod 600 " .. path .. "-wal", err.message, 1, true)
    end)

    it("refuses a store owned by another user", function()
      if run.sh("id -u").out ~= "0\n" then pending("needs root to chown") return end
      assert(store.open(path)):close()
      assert(os.execute("chown 65534 " .. q(path)))
      local d, err = store.open(path)
      assert.is_nil(d)
      assert.are.equal("permissions", err.kind)
      assert.matches("owned by uid 65534", err.message)
    end)

    it("refuses a file that is not SQLite and leaves it unchanged", function()
      assert(sys.mkdir(home, tonumber("700", 8)))
      local text = "not a database, just some notes\n" .. string.rep("x", 5000)
      local f = assert(io.open(path, "wb"))
      f:write(text)
      f:close()
      assert(sys.chmod(path, tonumber("600", 8)))
      local d, err = store.open(path)
      assert.is_nil(d)
      assert.are.equal("store", err.kind)
      assert.are.equal("notadb", err.code)
      assert.matches("not a database.*left unchanged", err.message)
      assert.are.equal(text, run.slurp(path))
      assert.is_false(exists(path .. "-wal"))
      -- A SQLite header followed by garbage: corrupt, also left alone.
      text = "SQLite format 3\0" .. string.rep("\255", 4096)
      f = assert(io.open(path, "wb"))
      f:write(text)
      f:close()
      d, err = store.open(path)
      assert.is_nil(d)
      assert.are.equal("store", err.kind)
      assert.are.equal(text, run.slurp(path))
    end)

    it("refuses another program's SQLite database", function()
      if not os.execute("command -v sqlite3 >/dev/null") then pending("no sqlite3 CLI") return end
      assert(sys.mkdir(home, tonumber("700", 8)))
      assert(os.execute("umask 077; sqlite3 " .. q(path) .. " 'CREATE TABLE t(x); INSERT INTO t VALUES(1)'"))
      local before = run.slurp(path)
      local d, err = store.open(path)
      assert.is_nil(d)
      assert.are.equal("foreign", err.code)
      assert.are.equal(before, run.slurp(path))
    end)

    it("lets 12 processes create the same new store at once", function()
      local code = "local db = assert(require'ghl.store'.open()); assert(db:kv_put('n', tostring(math.random()), 'v'))"
      local cmd = {}
      for i = 1, 12 do
        cmd[#cmd + 1] = "GHLUA_HOME=" .. q(home) .. " " .. q(GHLUA) .. " -e " .. q(code)
          .. " 2>" .. q(dir .. "/err" .. i) .. " &"
      end
      cmd[#cmd + 1] = "wait"
      assert(os.execute(table.concat(cmd, " ")))
      for i = 1, 12 do assert.are.equal("", run.slurp(dir .. "/err" .. i)) end
      db = assert(store.open(path))
      assert.is_true(db:check())
    end)
  end) end

  it("is a closable handle with a path, naming its engine", function()
    db = assert(store.open(path))
    assert.are.equal(path, db.path)
    assert.matches("ghl.store: " .. path, tostring(db), 1, true)
    assert.are.equal(engine, db:engine())
    do
      local d <close> = assert(store.open(path))
      assert(d:list_apps())
    end
    db:close()
    db:close()
    assert.has_error(function() db:list_apps() end, "attempt to use a closed store")
    db = nil
  end)

  describe("records", function()
    before_each(function() db = assert(store.open(path)) end)

    it("changes data_version on every write, its own or another connection's, and not on reads", function()
      assert(db:put_token(token(0)))
      local v0 = db:data_version()
      assert.is_true(math.type(v0) == "integer")
      assert(db:get_token("acme", "LOC1"))
      assert(db:list_apps())
      assert.are.equal(v0, db:data_version())
      assert(db:kv_put("ns", "k", "v"))
      local v1 = db:data_version()
      assert.are_not.equal(v0, v1)
      assert.are.equal(v1, db:data_version())
      local other = assert(store.open(path))
      assert(other:kv_put("ns", "k", "w"))
      other:close()
      local v2 = db:data_version()
      assert.are_not.equal(v1, v2)
      assert.are.equal(v2, db:data_version())
      -- another process
      local r = run.sh(("%s -e %s"):format(q(os.getenv("GHLUA")),
        q(("local s = assert(require'ghl.store'.open(%q)); assert(s:kv_put('ns', 'k', 'x'))"):format(path))))
      assert.are.equal(0, r.code, r.err)
      assert.are_not.equal(v2, db:data_version())
    end)

    it("stores apps", function()
      local app = { name = "zeta", client_id = "cid-z", client_secret = "sec", redirect_uri = "http://localhost:8765/cb",
        scopes = "contacts.readonly locations.readonly", whitelabel = true, user_type = "Location" }
      assert.is_true(db:put_app(app))
      assert(db:put_app { name = "alpha", client_id = "cid-a", user_type = "Company" })
      local got = db:get_app("zeta")
      assert.is_number(got.created_at)
      got.created_at, got.updated_at = nil, nil
      assert.are.same(app, got)
      assert.are.same({ "alpha", "zeta" }, { db:list_apps()[1].name, db:list_apps()[2].name })
      assert.is_false(db:get_app("alpha").whitelabel)
      assert.is_nil(db:get_app("nope"))
      assert.has_error(function() db:put_app { name = "x", client_id = "y", scope = "typo" } end,
        "put_app: unknown field 'scope'")
      assert.has_error(function() db:put_app { name = "x" } end, "put_app: field 'client_id' is required")
      assert.has_error(function() db:put_app { name = "x", client_id = "y", user_type = "Agency" } end)
    end)

    it("stores tokens and finds them", function()
      local full = { app = "acme", resource_id = "LOC1", resource_type = "Location", kind = "oauth",
        access_token = "at", refresh_token = "rt", expires_at = 1700000000, scope = "a b",
        requested_scope = "a b c", company_id = "CO1", location_id = "LOC1", user_id = "U1",
        user_type = "Location", name = "Shop", status = "ok", note = "hello" }
      assert.is_true(db:put_token(full))
      local got = db:get_token("acme", "LOC1")
      assert.is_number(got.created_at)
      got.created_at = nil
      assert.are.same(full, got)
      assert(db:put_token { app = "acme", resource_id = "CO1", resource_type = "Company", access_token = "c" })
      assert(db:put_token { app = "pit:mine", resource_id = "LOC1", resource_type = "Location", kind = "pit",
        access_token = "pit-x" })
      assert(db:put_token { app = "other", resource_id = "LOC2", resource_type = "Location" })
      local function ids(filter)
        local out = {}
        for _, t in ipairs(assert(db:find_tokens(filter))) do out[#out + 1] = t.app .. "/" .. t.resource_id end
        return table.concat(out, " ")
      end
      assert.are.equal("acme/CO1 acme/LOC1 other/LOC2 pit:mine/LOC1", ids())
      assert.are.equal("acme/CO1 acme/LOC1", ids { app = "acme" })
      assert.are.equal("acme/LOC1 pit:mine/LOC1", ids { location = "LOC1" })
      assert.are.equal("acme/CO1", ids { company = "CO1" })
      assert.are.equal("", ids { company = "LOC1" })
      assert.are.equal("pit:mine/LOC1", ids { kind = "pit" })
      assert.are.equal("acme/LOC1", ids { resource_id = "LOC1", kind = "oauth" })
      assert.are.equal("oauth", db:get_token("acme", "CO1").kind)
      assert.are.equal("ok", db:get_token("acme", "CO1").status)
      assert.is_true(db:set_status("acme", "CO1", "uninstalled", "app removed"))
      assert.are.same({ "uninstalled", "app removed" },
        { db:get_token("acme", "CO1").status, db:get_token("acme", "CO1").note })
      assert.is_false(db:set_status("acme", "nope", "x"))
      assert.is_true(db:delete_token("other", "LOC2"))
      assert.is_false(db:delete_token("other", "LOC2"))
      assert.has_error(function() db:put_token { app = "a", resource_id = "r", resource_type = "Agency" } end)
      assert.has_error(function() db:put_token { app = "a", resource_id = "r", resource_type = "Location",
        expires_at = "soon" } end, "put_token: field 'expires_at' must be a number, got string")
      assert.has_error(function() db:find_tokens { locaton = "x" } end)
    end)

    it("keeps created_at when a token is replaced", function()
      local t = token(1)
      t.created_at = 1000
      assert(db:put_token(t))
      assert(db:put_token(token(2)))
      assert.are.equal(1000, db:get_token("acme", "LOC1").created_at)
    end)

    it("removes an app with its tokens and claims", function()
      assert(db:put_app { name = "acme", client_id = "c" })
      assert(db:put_token(token(1)))
      assert(db:put_token { app = "acme", resource_id = "CO1", resource_type = "Company" })
      assert(db:put_token { app = "keep", resource_id = "LOC1", resource_type = "Location" })
      assert(db:claim("acme", "LOC1"))
      assert.is_true(db:remove_app("acme"))
      assert.is_nil(db:get_app("acme"))
      assert.are.same({}, db:find_tokens { app = "acme" })
      assert.is_false(db:release("acme", "LOC1"))
      assert.are.equal(1, #db:find_tokens())
      assert.is_false(db:remove_app("acme"))
    end)

    it("keeps key/value pairs", function()
      assert.is_nil(db:kv_get("schema", "contacts"))
      assert.is_true(db:kv_put("schema", "contacts", "{\"a\":1}\0bin"))
      local v, at = db:kv_get("schema", "contacts")
      assert.are.equal("{\"a\":1}\0bin", v)
      assert.is_true(math.abs(at - os.time()) < 5)
      assert.is_nil(db:kv_get("other", "contacts"))
      assert.is_true(db:kv_delete("schema", "contacts"))
      assert.is_false(db:kv_delete("schema", "contacts"))
      assert.is_true(db:check())
    end)
  end)

  describe("claims", function()
    local ready, log, held
    before_each(function()
      db = assert(store.open(path))
      assert(db:put_token(token(0)))
      ready, log = dir .. "/ready", dir .. "/log"
    end)
    after_each(function()
      if held then pcall(sys.kill, held.pid, 9); held.wait() end
      held = nil
    end)

    local function hold(rid, phase, lease)
      held = spawn({ "hold", path, "acme", rid, phase, tostring(lease or 60), ready }, log)
      assert.are.equal(tostring(held.pid), wait_file(ready, log))
      return held
    end

    it("makes a second process wait while the first holds it", function()
      local h = hold("LOC1", "sending")
      local ok, holder = db:claim("acme", "LOC1", 30)
      assert.is_false(ok)
      assert.are.same({ h.pid, "sending" }, { holder.pid, holder.phase })
      assert.is_true(holder.lease_until > sys.time() + 50)
      -- and the other way round
      assert.is_true(db:claim("acme", "CO1", 30))
      assert(db:claim_phase("acme", "CO1", "sending"))
      local r = child { "claim", path, "acme", "CO1" }
      assert.are.equal(string.format("false %d sending nil\n", sys.getpid()), r.out)
    end)

    it("does not block other resources", function()
      local h = hold("LOC1", "sending")
      assert(db:put_token { app = "acme", resource_id = "LOC2", resource_type = "Location", refresh_token = "r" })
      local ok, prev = db:claim("acme", "LOC2", 30)
      assert.is_true(ok)
      assert.is_nil(prev)
      assert(db:commit_refresh("acme", "LOC2", { refresh_token = "r2" }))
      -- all that while the other process still held LOC1: it is alive and
      -- its claim is still there, unchanged
      assert.is_truthy(sys.kill(h.pid, 0))
      local held_ok, holder = db:claim("acme", "LOC1")
      assert.is_false(held_ok)
      assert.are.same({ h.pid, "sending" }, { holder.pid, holder.phase })
    end)

    it("takes over the claim of a process killed with -9, reporting its phase", function()
      local h = hold("LOC1", "sending")
      assert(sys.kill(h.pid, 9))
      h.wait()
      held = nil
      local ok, prev = db:claim("acme", "LOC1", 30)
      assert.is_true(ok)
      assert.are.same({ h.pid, "sending", "dead" }, { prev.pid, prev.phase, prev.reason })
      assert.is_number(prev.started_at)
    end)

    it("takes over the claim of a process that exited without releasing it", function()
      local r = child { "exit", path, "acme", "LOC1", "claimed" }
      assert.are.equal(0, r.code, r.err)
      local ok, prev = db:claim("acme", "LOC1", 30)
      assert.is_true(ok)
      assert.are.same({ "claimed", "dead" }, { prev.phase, prev.reason })
    end)

    it("keeps the phase of a claim it takes over, however many owners die in a row", function()
      assert.are.equal(0, child { "exit", path, "acme", "LOC1", "sending" }.code)
      -- B takes it over and dies at once, before doing anything
      assert.matches("^true %d+ sending dead\n$", child { "claim", path, "acme", "LOC1" }.out)
      -- C still sees "sending", not the "claimed" a fresh claim would have
      assert.matches("^true %d+ sending dead\n$", child { "claim", path, "acme", "LOC1" }.out)
      local ok, prev = db:claim("acme", "LOC1", 30)
      assert.are.same({ true, "sending", "dead" }, { ok, prev.phase, prev.reason })
      local c = db:claim_of("acme", "LOC1")
      assert.are.same({ sys.getpid(), "sending", "own" }, { c.pid, c.phase, c.reason })
      -- a later phase is kept as well; a released claim starts afresh
      assert(db:claim_phase("acme", "LOC1", "recovering"))
      assert.is_true(db:release("acme", "LOC1"))
      assert.is_nil(db:claim_of("acme", "LOC1"))
      ok, prev = db:claim("acme", "LOC1", 30)
      assert.are.same({ true, nil, "claimed" }, { ok, prev, db:claim_of("acme", "LOC1").phase })
    end)

    it("tells its holder about its own claim left unfinished", function()
      assert.is_true(db:claim("acme", "LOC1", 30))
      assert(db:claim_phase("acme", "LOC1", "sending"))
      local ok, prev = db:claim("acme", "LOC1", 30)
      assert.are.same({ true, "sending", "own", sys.getpid() }, { ok, prev.phase, prev.reason, prev.pid })
    end)

    it("reads a claim without taking it (claim_of)", function()
      assert.is_nil(db:claim_of("acme", "LOC1"))
      local h = hold("LOC1", "sending")
      local c = db:claim_of("acme", "LOC1")
      assert.are.same({ h.pid, "sending", nil }, { c.pid, c.phase, c.reason })
      assert(sys.kill(h.pid, 9))
      h.wait()
      held = nil
      c = db:claim_of("acme", "LOC1")
      assert.are.same({ h.pid, "dead" }, { c.pid, c.reason })
      assert.are.equal(h.pid, db:claim_of("acme", "LOC1").pid)   -- nothing was taken
      assert.has_error(function() db:claim_of("acme") end)
    end)

    it("takes over an expired lease from a live process", function()
      local h = hold("LOC1", "sending", 0.3)
      assert.is_false((db:claim("acme", "LOC1")))
      sys.sleep(0.4)
      local ok, prev = db:claim("acme", "LOC1", 30)
      assert.is_true(ok)
      assert.are.same({ h.pid, "sending", "expired" }, { prev.pid, prev.phase, prev.reason })
      assert.is_true(sys.kill(h.pid, 0))   -- it is still alive
    end)

    it("lets the holder claim again, extending its lease", function()
      assert.is_true(db:claim("acme", "LOC1", 0.2))
      sys.sleep(0.3)
      local ok, err = db:claim_phase("acme", "LOC1", "sending")
      assert.is_nil(ok)
      assert.are.equal("claim", err.kind)
      assert.matches("expired", err.message)
      local again, prev = db:claim("acme", "LOC1", 30)
      assert.is_true(again)
      assert.is_nil(prev)
      assert.is_true(db:claim_phase("acme", "LOC1", "sending"))
      assert.are.equal(string.format("false %d sending nil\n", sys.getpid()),
        child { "claim", path, "acme", "LOC1" }.out)
    end)

    it("commits a refresh, keeping the previous refresh token and its time", function()
      local created = db:get_token("acme", "LOC1").created_at
      assert(db:set_status("acme", "LOC1", "spent", "invalid_grant"))
      assert(db:claim("acme", "LOC1", 30))
      assert(db:claim_phase("acme", "LOC1", "sending"))
      assert.is_true(db:commit_refresh("acme", "LOC1", { access_token = "at-1", refresh_token = "rt-1",
        expires_at = 1, scope = "x y" }))
      local t = db:get_token("acme", "LOC1")
      assert.are.same({ "at-1", "rt-1", 1, "x y", "rt-0", created, "ok", sys.getpid() },
        { t.access_token, t.refresh_token, t.expires_at, t.scope, t.previous_refresh_token,
          t.previous_refreshed_at, t.status, t.refreshed_by })
      assert.is_nil(t.note)
      assert.is_true(math.abs(t.refreshed_at - os.time()) < 5)
      assert.is_false(db:release("acme", "LOC1"))      -- the commit released it
      local first = t.refreshed_at
      assert(db:claim("acme", "LOC1", 30))
      assert(db:commit_refresh("acme", "LOC1", { access_token = "at-2", refresh_token = "rt-2" }))
      t = db:get_token("acme", "LOC1")
      assert.are.same({ "rt-2", "rt-1", first, 1 },
        { t.refresh_token, t.previous_refresh_token, t.previous_refreshed_at, t.expires_at })
      -- no new refresh token: nothing rotates
      assert(db:claim("acme", "LOC1", 30))
      assert(db:commit_refresh("acme", "LOC1", { access_token = "at-3" }))
      t = db:get_token("acme", "LOC1")
      assert.are.same({ "at-3", "rt-2", "rt-1" }, { t.access_token, t.refresh_token, t.previous_refresh_token })
      assert.has_error(function() db:commit_refresh("acme", "LOC1", { app = "x" }) end)
    end)

    it("refuses a commit once the claim is lost", function()
      local ok, err = db:commit_refresh("acme", "LOC1", { refresh_token = "rt-x" })
      assert.is_nil(ok)
      assert.are.equal("claim", err.kind)
      assert(db:claim("acme", "LOC1", 30))
      assert.is_true(db:release("acme", "LOC1"))
      ok, err = db:commit_refresh("acme", "LOC1", { refresh_token = "rt-x" })
      assert.are.equal("claim", err.kind)
      -- taken over by another process after our lease ran out
      assert(db:claim("acme", "LOC1", 0.1))
      sys.sleep(0.2)
      local r = child { "claim", path, "acme", "LOC1" }
      assert.matches("^true %d+ claimed expired\n$", r.out)
      ok, err = db:commit_refresh("acme", "LOC1", { refresh_token = "rt-x" })
      assert.is_nil(ok)
      assert.are.equal("claim", err.kind)
      assert.matches("held by pid %d+", err.message)
      assert.are.equal("rt-0", db:get_token("acme", "LOC1").refresh_token)
      ok, err = db:claim_phase("acme", "LOC1", "sending")
      assert.are.equal("claim", err.kind)
    end)

    it("commits a refresh of a missing token as an error", function()
      assert(db:claim("acme", "GONE", 30))
      local ok, err = db:commit_refresh("acme", "GONE", { refresh_token = "x" })
      assert.is_nil(ok)
      assert.are.same({ "store", "not_found" }, { err.kind, err.code })
      assert.is_true(db:release("acme", "GONE"))
    end)
  end)

  describe("across processes", function()
    before_each(function()
      db = assert(store.open(path))
      assert(db:put_token(token(0)))
    end)

    it("serialises 8 processes x 100 refreshes of one token", function()
      local cmd = {}
      for i = 1, 8 do
        cmd[#cmd + 1] = child_cmd { "loop", path, "acme", "LOC1", "100", dir .. "/out" .. i }
          .. " 2>" .. q(dir .. "/err" .. i) .. " &"
      end
      cmd[#cmd + 1] = "wait"
      assert(os.execute(table.concat(cmd, " ")))
      local committed, presented, lines = {}, {}, 0
      for i = 1, 8 do
        assert.are.equal("", run.slurp(dir .. "/err" .. i))
        for new, rt in run.slurp(dir .. "/out" .. i):gmatch("(%d+) (%S+) %d+\n") do
          lines = lines + 1
          new = tonumber(new)
          assert.is_nil(committed[new], "value committed twice: " .. new)
          assert.is_nil(presented[rt], "refresh token presented twice: " .. rt)
          committed[new], presented[rt] = true, true
        end
      end
      assert.are.equal(800, lines)
      for n = 1, 800 do assert.is_true(committed[n]) end
      local t = db:get_token("acme", "LOC1")
      assert.are.same({ 800, "at-800", "rt-800", "rt-799" },
        { t.expires_at, t.access_token, t.refresh_token, t.previous_refresh_token })
      assert.is_true(db:check())
    end)

    it("stays consistent when a committing process is killed with -9", function()
      local ready, log, last = dir .. "/ready", dir .. "/log", 0
      for round = 1, 6 do
        os.remove(ready)
        local c = spawn({ "crash", path, "acme", "LOC1", ready }, log)
        wait_file(ready, log)
        sys.sleep(0.02 + (round % 3) * 0.04)
        assert(sys.kill(c.pid, 9))
        assert.are.equal(137, c.wait())
        local d <close> = assert(store.open(path))
        assert.is_true(d:check())
        local t = assert(d:get_token("acme", "LOC1"))
        local n = t.expires_at
        assert.is_true(n > last, "no progress in round " .. round)
        assert.are.same({ "at-" .. n, "rt-" .. n, "rt-" .. (n - 1) },
          { t.access_token, t.refresh_token, t.previous_refresh_token })
        last = n
      end
      -- a claim the last child left behind is taken over
      local ok, prev = db:claim("acme", "LOC1")
      assert.is_true(ok)
      if prev then assert.are.equal("dead", prev.reason) end
    end)
  end)
end)
end
