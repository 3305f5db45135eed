-- `ghlua store migrate --to postgresql://...` from a SQLite store, then
-- `ghlua store info|check|seal` on PostgreSQL, against a real server
-- (support/pg.lua): the counts checked, the rotation state and a claim
-- left "sending" kept, secrets sealed on the way in (never in clear in the
-- database), a second migrate refused, and db:transaction / kv_list /
-- schema on the PostgreSQL engine (what those commands stand on).
local oauth = require "support.oauth"
local pg = require "support.pg"
local run = require "support.run"
local store = require "ghl.store"

local KEY = ("0123456789abcdef"):rep(4)

-- Fill the store of o: a PIT, an orphan token with a previous refresh
-- token (rotation state), a claim left "sending" by a process that is gone
-- (this child), a kv entry and two events.
local FILL = [[
local s = require('ghl.auth').store()
assert(s:put_token{ app = 'pit:p', name = 'p', kind = 'pit', resource_id = 'locPIT', resource_type = 'Location',
  access_token = 'pit-0000-SECRETPITVALUE' })
assert(s:put_token{ app = 'gone', resource_id = 'locGONE', resource_type = 'Location',
  access_token = 'ORPHAN-ACCESS-TOKEN', refresh_token = 'ORPHAN-REFRESH-TOKEN',
  previous_refresh_token = 'ORPHAN-PREVIOUS-RT', previous_refreshed_at = 1700000000, status = 'uncertain',
  note = 'left by a test' })
local t = s:find_tokens{ app = 'app1' }[1]
assert(s:claim('app1', t.resource_id, 60))
assert(s:claim_phase('app1', t.resource_id, 'sending'))
assert(s:kv_put('repl', 'location', t.resource_id))
assert(s:put_event{ id = 'ev1', body = '{}', status = 'failed' })
assert(s:put_event{ id = 'ev2', body = '{"a":1}' })
]]

local function one_line(s)
  return select(2, s:gsub("\n", "")) == 1
end

describe("the PostgreSQL store", function()
  local server

  -- The database's contents as pg_dump writes them (without its random
  -- \restrict token).
  local function dump_of(dbname)
    local r = run.sh(("%s/pg_dump -h %s -U postgres -d %s"):format(pg.BIN, run.quote(server.dir), dbname))
    assert(r.code == 0, r.err)
    return (r.out:gsub("\n\\u?n?restrict [^\n]*", ""))
  end

  lazy_setup(function() server = pg.start() end)
  lazy_teardown(function() if server then server:destroy() end end)

  it("runs db:transaction, kv_list and schema as the SQLite store does", function()
    local db = assert(store.open((server:createdb())))
    assert.are.equal(3, db:schema())
    -- all of it or none: a raise, a nil/err return, a failed statement
    assert.has_error(function()
      db:transaction(function(t) assert(t:kv_put("a", "1", "x")); error("boom") end)
    end)
    local ok, err = db:transaction(function(t) assert(t:kv_put("a", "2", "x")); return nil, "mine" end)
    assert.are.same({ nil, "mine" }, { ok, err })
    ok, err = db:transaction(function(t)
      assert(t:kv_put("a", "3", "x"))
      -- not UTF-8: the server refuses the statement
      local r, e = t:kv_put("a", "\255\254", "x")
      assert.is_nil(r)
      assert.are.equal("store", e.kind)
      -- and the transaction is spoilt: nothing more runs in it
      r, e = t:kv_put("a", "5", "x")
      assert.is_nil(r)
      assert.truthy(e.message:find("an earlier statement of this transaction failed", 1, true), e.message)
    end)
    assert.is_nil(ok)
    assert.truthy(err.message:find("a write failed inside a transaction; nothing of it was written", 1, true), err.message)
    assert.are.same({}, db:kv_list())
    assert.has_error(function() db:transaction(function(t) t:transaction(function() end) end) end,
      "store transactions do not nest")
    -- methods inside join one transaction: committed together, in order
    assert.are.same({ "r1", "r2" }, { db:transaction(function(t)
      assert(t:kv_put("b", "k2", "v2"))
      assert(t:kv_put("a", "k1", "v1"))
      assert(t:claim("app", "LOC", 30))
      assert(t:claim_phase("app", "LOC", "sending"))
      assert(t:put_event { id = "e1", body = "{}" })
      assert.is_false(t:put_event { id = "e1", body = "{}" })
      return "r1", "r2"
    end) })
    local kv = db:kv_list()
    assert.are.same({ "a", "k1", "v1", "b", "k2", "v2" }, { kv[1].ns, kv[1].key, kv[1].value, kv[2].ns, kv[2].key, kv[2].value })
    assert.are.same({ "b" }, { db:kv_list("b")[1].ns })
    assert.are.equal(1, #db:kv_list("b"))
    assert.are.equal("sending", db:claim_of("app", "LOC").phase)
    assert.is_true(db:transaction(function() end))
    db:close()
  end)

  describe("ghlua store", function()
    local o
    before_each(function()
      o = oauth.start { "--auto-approve" }
      o.add_app()
      assert.are.equal(0, o.login().code)
    end)
    after_each(function() o.stop() end)

    it("migrate --to postgresql:// keeps counts, rotation state and a 'sending' claim, sealed; info and check there", function()
      assert.are.equal(0, o.lua(FILL).code)
      local src = o.home .. "/ghlua.db"
      local before = run.slurp(src)
      local url, dbname = server:createdb()
      -- PostgreSQL needs the key
      local r = o.ghlua { "store", "migrate", "--to", url }
      assert.are.equal(1, r.code)
      assert.is_true(one_line(r.err), r.err)
      assert.truthy(r.err:find("GHLUA_STORE_KEY", 1, true), r.err)
      local keyed = { env = { GHLUA_STORE_KEY = KEY } }
      r = o.ghlua({ "store", "migrate", "--to", url }, keyed)
      assert.are.equal(0, r.code, r.err)
      assert.truthy(r.out:find("(postgresql): apps 1, tokens 3 (oauth 2, pit 1), claims 1 (sending 1), events 2, kv 1, secrets sealed", 1, true), r.out)
      assert.is_true(before == run.slurp(src), "the source changed")
      -- no secret in clear anywhere in the database
      local dump = { out = dump_of(dbname) }
      assert.truthy(dump.out:find("ghlua.tokens", 1, true))
      for _, secret in ipairs { "ORPHAN-ACCESS-TOKEN", "ORPHAN-REFRESH-TOKEN", "ORPHAN-PREVIOUS-RT", "SECRETPITVALUE", o.secret } do
        assert.is_nil(dump.out:find(secret, 1, true), secret .. " in clear in PostgreSQL")
      end
      local on_pg = { env = { GHLUA_STORE = url, GHLUA_STORE_KEY = KEY } }
      -- info on PostgreSQL: engine, schema, sealing, the same counts
      r = o.ghlua({ "store", "info" }, on_pg)
      assert.are.equal(0, r.code, r.err)
      assert.truthy(r.out:find("engine    postgresql\n", 1, true), r.out)
      assert.truthy(r.out:find("location  postgresql://postgres@/" .. dbname, 1, true), r.out)
      assert.truthy(r.out:find("schema    3\n", 1, true), r.out)
      assert.truthy(r.out:find("sealed    yes, AES%-256%-GCM %(key id %x+; the key set matches%)"), r.out)
      assert.truthy(r.out:find("tokens    3 (oauth 2, pit 1)\nclaims    1 (sending 1)\nevents    2 (failed 1, received 1)\nkv        1\n", 1, true), r.out)
      -- check names the copied findings (the orphan, the dead 'sending' claim)
      r = o.ghlua({ "store", "check" }, on_pg)
      assert.are.equal(1, r.code)
      assert.truthy(r.out:find("token gone Location locGONE: its app 'gone' is not stored", 1, true), r.out)
      assert.truthy(r.out:find("in phase 'sending', which died", 1, true), r.out)
      assert.truthy(r.err:find("2 findings in token store postgresql://postgres@/" .. dbname, 1, true), r.err)
      -- a wrong key opens nothing and changes nothing
      r = o.ghlua({ "store", "check" }, { env = { GHLUA_STORE = url, GHLUA_STORE_KEY = ("f"):rep(64) } })
      assert.are.equal(1, r.code)
      assert.truthy(r.out:find("sealed values: not checked: the key set", 1, true), r.out)
      -- the rotation state came along: a taker-over sees "sending"; the
      -- previous refresh token, status and note are kept; secrets open
      r = o.lua(([[
        local s = require('ghl.auth').store()
        local got, prev = s:claim('app1', %q, 60)
        local g = s:get_token('gone', 'locGONE')
        print(got, prev and prev.phase, g.refresh_token, g.previous_refresh_token, g.previous_refreshed_at, g.status,
          g.note, s:get_app('app1').client_secret == %q, s.native:engine())
      ]]):format(o.sim.location, o.secret), on_pg)
      assert.are.same({ 0, "true\tsending\tORPHAN-REFRESH-TOKEN\tORPHAN-PREVIOUS-RT\t1700000000\tuncertain\tleft by a test\ttrue\tpostgresql\n" },
        { r.code, r.out }, r.err)
      -- auth doctor recovers the claim left 'sending' on PostgreSQL, then
      -- check is clean but for the orphan
      r = o.ghlua({ "auth", "doctor" }, on_pg)
      r = o.ghlua({ "store", "check" }, on_pg)
      assert.is_nil(r.out:find("phase 'sending'", 1, true), r.out)
      -- a second migrate is refused and changes nothing
      local dump1 = dump_of(dbname)
      r = o.ghlua({ "store", "migrate", "--to", url }, keyed)
      assert.are.equal(1, r.code)
      assert.truthy(r.err:find("already holds 1 app and 3 tokens; nothing was copied", 1, true), r.err)
      assert.is_true(one_line(r.err), r.err)
      assert.is_true(dump1 == dump_of(dbname))
    end)

    it("info and check work on an empty PostgreSQL store, and seal says it is sealed", function()
      local url = server:createdb()
      local on_pg = { env = { GHLUA_STORE = url, GHLUA_STORE_KEY = KEY } }
      local r = o.ghlua({ "store", "check" }, on_pg)
      assert.are.same({ 0, "ok: postgresql store " .. url .. "\n" }, { r.code, r.out }, r.err)
      r = o.ghlua({ "store", "info", "--json" }, on_pg)
      assert.are.equal(0, r.code, r.err)
      local j = require("cjson").decode(r.out)
      assert.are.same({ "postgresql", 3, false, 0 }, { j.engine, j.schema, j.sealed, j.apps })
      -- the connection's timeouts: ours by default, the user's when the
      -- connection string sets them
      r = o.ghlua({ "store", "info" }, on_pg)
      assert.truthy(r.out:find("\ntimeouts  statement 30s, idle in transaction 1min, connect 10s, keepalives on"
        .. " (idle 10s, every 5s, 3 probes), tcp_user_timeout 30s\n", 1, true), r.out)
      r = o.ghlua({ "store", "info", "--json" }, { env = { GHLUA_STORE_KEY = KEY,
        GHLUA_STORE = url .. "&keepalives_idle=99&options=-c%20statement_timeout%3D5s" } })
      assert.are.equal(0, r.code, r.err)
      local st = require("cjson").decode(r.out).settings
      assert.are.same({ "5s", "99", "30000", "1min" }, { st.statement_timeout, st.keepalives_idle, st.tcp_user_timeout,
        st.idle_in_transaction_session_timeout })
      r = o.ghlua({ "store", "seal" }, on_pg)
      assert.are.equal(0, r.code, r.err)
      r = o.ghlua({ "store", "info", "--json" }, on_pg)
      assert.is_true(require("cjson").decode(r.out).sealed, r.out)
      r = o.ghlua({ "store", "seal" }, on_pg)
      assert.are.equal(0, r.code, r.err)
      assert.truthy(r.out:find("is sealed already", 1, true), r.out)
    end)
  end)
end)
