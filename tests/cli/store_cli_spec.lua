-- `ghlua store`: info, check, migrate (counts, claim phases, refusal,
-- sealing on the way in), key new, and its usage errors.
local oauth = require "support.oauth"
local run = require "support.run"

local KEY = ("0123456789abcdef"):rep(4)

-- Fill the store of o: a PIT, an orphan token, a claim left "sending" by a
-- process that is gone (this child), a kv entry and two events.
local FILL = [[
local s = require('ghl.auth').store()
assert(s:put_token{ app = 'pit:p', name = 'p', kind = 'pit', resource_id = 'locPIT', resource_type = 'Location',
  access_token = 'pit-0000-SECRETPITVALUE' })
assert(s:put_token{ app = 'gone', resource_id = 'locGONE', resource_type = 'Location',
  access_token = 'ORPHAN-ACCESS-TOKEN', refresh_token = 'ORPHAN-REFRESH-TOKEN' })
local t = s:find_tokens{ app = 'app1' }[1]
assert(s:claim('app1', t.resource_id, 60))
assert(s:claim_phase('app1', t.resource_id, 'sending'))
assert(s:kv_put('repl', 'location', t.resource_id))
assert(s:put_event{ id = 'ev1', body = '{}', status = 'failed' })
assert(s:put_event{ id = 'ev2', body = '{}' })
]]

local function one_line(s)
  return select(2, s:gsub("\n", "")) == 1
end

describe("ghlua store", function()
  local o
  before_each(function()
    o = oauth.start { "--auto-approve" }
    o.add_app()
    assert.are.equal(0, o.login().code)
  end)
  after_each(function() o.stop() end)

  it("exits 2 on usage errors, one line each", function()
    for _, argv in ipairs {
      { "store" }, { "store", "bogus" }, { "store", "migrate" }, { "store", "info", "--bogus" },
      { "store", "key" }, { "store", "key", "old" }, { "store", "check", "extra" }, { "store", "seal", "--nope" },
    } do
      local r = o.ghlua(argv)
      assert.are.equal(2, r.code, table.concat(argv, " ") .. ": " .. r.err)
      assert.is_true(one_line(r.err), r.err)
      assert.are.equal("", r.out)
    end
    local r = o.ghlua { "store", "--help" }
    assert.are.equal(0, r.code)
    for _, sub in ipairs { "info", "check", "seal", "migrate", "key" } do
      assert.truthy(r.out:find("\n  " .. sub .. " ", 1, true), sub)
    end
    r = o.ghlua { "store", "migrate", "--help" }
    assert.are.equal(0, r.code)
    assert.truthy(r.out:find("GHLUA_STORE_KEY", 1, true))
  end)

  it("info shows the engine, location, schema, sealing and counts", function()
    assert.are.equal(0, o.lua(FILL).code)
    local r = o.ghlua { "store", "info" }
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(table.concat({
      "engine    sqlite",
      "location  " .. o.home .. "/ghlua.db",
      "schema    2",
      "sealed    no (set GHLUA_STORE_KEY and run 'ghlua store seal' to seal it)",
      "apps      1",
      "tokens    3 (oauth 2, pit 1)",
      "claims    1 (sending 1)",
      "events    2 (failed 1, received 1)",
      "kv        1", "" }, "\n"), r.out)
    r = o.ghlua { "store", "info", "--json" }
    local j = require("cjson").decode(r.out)
    assert.are.same({ oauth = 2, pit = 1 }, j.tokens)
    assert.are.same({ sending = 1 }, j.claims)
    assert.is_false(j.sealed)
  end)

  it("check is quiet on a sound store and names each finding, exit 1", function()
    local r = o.ghlua { "store", "check" }
    assert.are.same({ 0, "ok: sqlite store " .. o.home .. "/ghlua.db\n" }, { r.code, r.out }, r.err)
    assert.are.equal(0, o.lua(FILL).code)
    r = o.ghlua { "store", "check" }
    assert.are.equal(1, r.code)
    local lines = {}
    for l in r.out:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.equal(2, #lines, r.out)
    assert.truthy(r.out:find("token gone Location locGONE: its app 'gone' is not stored", 1, true), r.out)
    assert.truthy(r.out:find("claim on app1 Location " .. o.sim.location .. ": held by process %d+ in phase 'sending', which died"), r.out)
    assert.truthy(r.out:find("run 'ghlua auth doctor'", 1, true))
    assert.truthy(r.err:find("2 findings", 1, true), r.err)
    for _, secret in ipairs { "ORPHAN-ACCESS-TOKEN", "SECRETPITVALUE" } do
      assert.is_nil((r.out .. r.err):find(secret, 1, true))
    end
  end)

  it("migrate copies everything with the claim phases, seals on the way in, and refuses a full target", function()
    assert.are.equal(0, o.lua(FILL).code)
    local src = o.home .. "/ghlua.db"
    local before = run.slurp(src)
    local target = o.home .. "/target.db"
    local keyed = { env = { GHLUA_STORE_KEY = KEY } }
    local r = o.ghlua({ "store", "migrate", "--to", target }, keyed)
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("apps 1, tokens 3 (oauth 2, pit 1), claims 1 (sending 1), events 2, kv 1, secrets sealed", 1, true), r.out)
    assert.is_true(before == run.slurp(src), "the source changed")
    -- the target, read as the user will: the same counts, sealed
    local info = o.ghlua({ "store", "info" }, { env = { GHLUA_STORE = target, GHLUA_STORE_KEY = KEY } })
    assert.are.equal(0, info.code, info.err)
    assert.truthy(info.out:find("claims    1 (sending 1)", 1, true), info.out)
    assert.truthy(info.out:find("sealed    yes, AES%-256%-GCM %(key id %x+; the key set matches%)"), info.out)
    local bytes = run.slurp(target) .. run.slurp(target .. "-wal")
    for _, secret in ipairs { "ORPHAN-ACCESS-TOKEN", "SECRETPITVALUE", o.secret } do
      assert.is_nil(bytes:find(secret, 1, true), secret .. " in clear in the target")
    end
    -- the rotation state came along: the next process taking the claim
    -- over sees "sending" (so it will not present the refresh token), and
    -- the tokens and secret open with the key
    r = o.lua(([[
      local s = require('ghl.auth').store()
      local t = s:get_token('app1', %q)
      local got, prev = s:claim('app1', %q, 60)
      print(got, prev and prev.phase, s:get_token('gone', 'locGONE').refresh_token, s:get_app('app1').client_secret == %q)
    ]]):format(o.sim.location, o.sim.location, o.secret), { env = { GHLUA_STORE = target, GHLUA_STORE_KEY = KEY } })
    assert.are.same({ 0, "true\tsending\tORPHAN-REFRESH-TOKEN\ttrue\n" }, { r.code, r.out }, r.err)
    -- a second migrate into the same target is refused, and changes nothing
    local tbefore = run.slurp(target)
    r = o.ghlua({ "store", "migrate", "--to", target }, keyed)
    assert.are.equal(1, r.code)
    assert.truthy(r.err:find("already holds 1 app and 3 tokens; nothing was copied", 1, true), r.err)
    assert.is_true(one_line(r.err), r.err)
    assert.is_true(tbefore == run.slurp(target))
    -- without a key, a SQLite target is a plain copy
    r = o.ghlua { "store", "migrate", "--to", o.home .. "/plain.db" }
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("secrets not sealed", 1, true), r.out)
  end)

  it("migrate refuses a source whose refresh is running", function()
    local r = o.lua(([[
      local s = require('ghl.auth').store()
      assert(s:claim('app1', %q, 60))
      assert(s:claim_phase('app1', %q, 'sending'))
      local r = io.popen(os.getenv('GHLUA') .. ' store migrate --to ' .. os.getenv('GHLUA_HOME') .. '/t2.db 2>&1; echo rc=$?')
      io.write(r:read('a'))
      r:close()
    ]]):format(o.sim.location, o.sim.location))
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("is refreshing app1 " .. o.sim.location .. " right now (phase sending)", 1, true), r.out)
    assert.truthy(r.out:find("rc=1", 1, true), r.out)
  end)

  it("a process that opened the store before a seal writes nothing in clear; seal again seals what was", function()
    local r = o.lua(([[
      local s = require('ghl.auth').store()
      local row = s:find_tokens{ app = 'app1' }[1]
      assert(os.execute('GHLUA_STORE_KEY=%s ' .. os.getenv('GHLUA') .. ' store seal >/dev/null'))
      row.access_token, row.created_at = 'NEW-ACCESS-TOKEN-CLEAR', nil
      local ok, e = pcall(s.put_token, s, row)
      io.write(tostring(ok), ' ', e.kind, ' ', e.message, '\n')
      ok, e = s.raw:commit_refresh('app1', row.resource_id, { access_token = 'X-ACCESS-CLEAR', refresh_token = 'X-REFRESH-CLEAR' })
      io.write(tostring(ok), ' ', e.message, '\n')
      -- a clear value that got in anyway (the engine itself): seal seals it
      assert(s.native:put_token{ app = 'pit:c', name = 'c', kind = 'pit', resource_id = 'locC', resource_type = 'Location',
        access_token = 'pit-CLEAR-IN-SEALED-STORE' })
    ]]):format(KEY))
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("false store token store .- was sealed while this process ran"), r.out)
    assert.truthy(r.out:find("nil token store .- was sealed while this process ran"), r.out)
    local keyed = { env = { GHLUA_STORE_KEY = KEY } }
    r = o.ghlua({ "auth", "status" }, keyed)
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("locC%s.-unreadable"), r.out)
    assert.truthy(r.err:find("run 'ghlua store seal'", 1, true), r.err)
    r = o.ghlua({ "store", "seal" }, keyed)
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("sealed already .- sealed 0 app secrets, 1 token"), r.out)
    r = o.ghlua({ "store", "check" }, keyed)
    assert.are.equal(0, r.code, r.out .. r.err)
    r = o.lua("io.write(require('ghl.auth').store():get_token('pit:c', 'locC').access_token)", keyed)
    assert.are.equal("pit-CLEAR-IN-SEALED-STORE", r.out, r.err)
    r = o.lua("io.write(require('ghl.auth').store():get_token('app1', " .. ("%q"):format(o.sim.location) .. ").access_token)", keyed)
    assert.are.equal(0, r.code, r.err)
    assert.is_nil(r.out:find("CLEAR", 1, true))
    r = o.lua("io.write(require('ghl.auth').store().native:get_token('app1', " .. ("%q"):format(o.sim.location) .. ").access_token)", keyed)
    assert.truthy(r.out:find("^sealed1:"), r.out)
  end)

  it("seal refuses while a refresh is running", function()
    local r = o.lua(([[
      local s = require('ghl.auth').store()
      assert(s:claim('app1', %q, 60))
      local p = io.popen('GHLUA_STORE_KEY=%s ' .. os.getenv('GHLUA') .. ' store seal 2>&1; echo rc=$?')
      io.write(p:read('a'))
      p:close()
    ]]):format(o.sim.location, KEY))
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("is refreshing app1 " .. o.sim.location .. " right now (phase claimed); nothing was sealed", 1, true), r.out)
    assert.truthy(r.out:find("rc=1", 1, true), r.out)
    r = o.ghlua { "store", "info" }
    assert.truthy(r.out:find("sealed%s+no"), r.out)
  end)

  it("one row that does not open is refused alone: status lists it, logout and re-adding fix it, migrate refuses", function()
    local keyed = { env = { GHLUA_STORE_KEY = KEY } }
    assert.are.equal(0, o.ghlua({ "store", "seal" }, keyed).code)
    local r = o.ghlua({ "auth", "pit", "add", "p", "--location", "locPIT", "--offline" },
      { env = keyed.env, stdin = "pit-aaaaaaaaaaaaaaaaaaaa1111\n" })
    assert.are.equal(0, r.code, r.err)
    -- alter the PIT's sealed value
    r = o.lua([[
      local s = require('ghl.auth').store()
      local row = assert(s.native:get_token('pit:p', 'locPIT'))
      row.access_token = row.access_token:sub(1, -5) .. 'AAAA'
      assert(s.native:put_token(row))
    ]], keyed)
    assert.are.equal(0, r.code, r.err)
    r = o.ghlua({ "auth", "status" }, keyed)
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("locPIT%s.-unreadable"), r.out)
    assert.truthy(r.out:find(o.sim.location, 1, true), r.out)
    assert.truthy(r.err:find("'ghlua auth logout --location locPIT'", 1, true), r.err)
    -- the other token still works; the bad one fails alone, in one line
    r = o.lua("io.write(type(require('ghl.auth').token{ location = " .. ("%q"):format(o.sim.location) .. " }))", keyed)
    assert.are.equal("string", r.out, r.err)
    r = o.ghlua({ "api", "GET", "/locations/locPIT", "--location", "locPIT" }, keyed)
    assert.are.equal(1, r.code, r.err)
    assert.is_true(one_line(r.err:gsub("\n  hint:", " hint:")), r.err)
    assert.truthy(r.err:find("does not open with the store key", 1, true), r.err)
    -- migrate refuses, naming the row, no traceback
    r = o.ghlua({ "store", "migrate", "--to", o.home .. "/m.db" }, keyed)
    assert.are.equal(1, r.code, r.err)
    assert.truthy(r.err:find("(token pit:p locPIT); nothing was copied", 1, true), r.err)
    assert.is_nil(r.err:find("traceback", 1, true))
    -- re-adding writes over it without opening it
    r = o.ghlua({ "auth", "pit", "add", "p", "--location", "locPIT", "--offline" },
      { env = keyed.env, stdin = "pit-bbbbbbbbbbbbbbbbbbbb2222\n" })
    assert.are.equal(0, r.code, r.err)
    r = o.ghlua({ "auth", "status" }, keyed)
    assert.is_nil(r.out:find("unreadable", 1, true), r.out)
    -- alter it again: logout --location forgets it
    assert.are.equal(0, o.lua([[
      local s = require('ghl.auth').store()
      local row = assert(s.native:get_token('pit:p', 'locPIT'))
      row.access_token = row.access_token:sub(1, -5) .. 'AAAA'
      assert(s.native:put_token(row))
    ]], keyed).code)
    r = o.ghlua({ "auth", "logout", "--location", "locPIT" }, keyed)
    assert.are.equal(0, r.code, r.err)
    r = o.ghlua({ "auth", "status" }, keyed)
    assert.is_nil(r.out:find("locPIT", 1, true), r.out)
  end)

  it("key new prints a fresh key that seals a store", function()
    local a, b = o.ghlua { "store", "key", "new" }, o.ghlua { "store", "key", "new" }
    assert.are.equal(0, a.code)
    assert.truthy(a.out:match("^%x+\n$") and #a.out == 65, a.out)
    assert.are_not.equal(a.out, b.out)
    assert.truthy(a.err:find("mode 0600", 1, true))
    local r = o.ghlua({ "store", "seal" }, { env = { GHLUA_STORE_KEY = a.out:sub(1, 64) } })
    assert.are.equal(0, r.code, r.err)
  end)
end)
