-- `ghlua auth doctor` and `ghlua auth pit add` asking the API, against the
-- simulator: one cheap authenticated call per token, and a report of what
-- the API said. Doctor: a valid OAuth token, one that lacks the call's
-- scope (still valid, and nothing spent or noted), one whose access token
-- the API refuses (refreshed once), an expired one, a revoked one (the app
-- uninstalled), a bad PIT, an unreachable base URL, several tokens (one
-- call each), and --offline (no call). pit add: a bad PIT, a good one,
-- another location's, an unreachable API, and --offline.
local oauth = require "support.oauth"
local sim = require "support.sim"
local fixture = require "support.fixture"
local run = require "support.run"
local http = require "ghl.http"
local sys = require "ghl.sys"
local cjson = require "cjson"

local PIT = "pit-3f1b2c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"
local PIT2 = "pit-0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"
local OTHER = "zzOtherLocation000001"

-- The API requests the simulator has answered.
local function requests(o)
  return o.stats().requests
end

local function stored(o)
  local r = o.ghlua { "auth", "status", "--json" }
  assert.are.equal(0, r.code, r.err)
  return cjson.decode(r.out)
end

-- A loopback URL where nothing listens.
local function nowhere()
  return "http://127.0.0.1:" .. oauth.free_port()
end

describe("auth doctor online", function()
  local o
  after_each(function() if o then o.stop() o = nil end end)

  it("says a valid OAuth token is valid, with the call it made", function()
    o = oauth.start { "--auto-approve", "--rate-max", "100000" }
    o.add_app()
    assert.are.equal(0, o.login().code)
    local before = requests(o)
    local d = o.ghlua { "auth", "doctor" }
    assert.are.equal(0, d.code, d.out .. d.err)
    assert.matches("\nok: token Location " .. o.sim.location, d.out)
    assert.matches("\n  checked online: GET /contacts/%?limit=1&locationId=" .. o.sim.location .. " answered 200\n",
                   d.out)
    assert.are.equal(before + 1, requests(o))
  end)

  it("takes a refusal for the call's scope as proof that the token is valid, and spends or notes nothing", function()
    o = oauth.start { "--auto-approve", "--rate-max", "100000" }
    o.add_app("custom-fields")
    assert.are.equal(0, o.login().code)
    local d = o.ghlua { "auth", "doctor" }
    assert.are.equal(0, d.code, d.out .. d.err)
    assert.matches("checked online: the API accepts the token %(GET /locations/" .. o.sim.location
      .. " answered 401 The token is not authorized for this scope%.: it lacks that call's scope", d.out)
    assert.are.equal(0, o.stats().oauth.refresh_ok)
    assert.is_nil(stored(o)[1].note)
    assert.are.equal(0, o.ghlua({ "auth", "doctor" }).code)   -- and the next run agrees
  end)

  it("refreshes an access token the API refuses, once, and says so", function()
    o = oauth.start { "--auto-approve", "--rate-max", "100000" }
    o.add_app()
    assert.are.equal(0, o.login().code)
    -- the store still thinks its access token good; the API does not know it
    local r = o.lua([[
      local s = require('ghl.auth').store()
      local row = s:find_tokens{}[1]
      row.access_token = 'eyJhbGciOiJSUzI1NiJ9.not-a-token-the-api-knows.sig'
      assert(s:put_token(row))
    ]])
    assert.are.equal(0, r.code, r.err)
    local d = o.ghlua { "auth", "doctor" }
    assert.are.equal(0, d.code, d.out .. d.err)
    assert.matches("answered 200; recovered: the access token was refused, and a refresh got a new pair", d.out)
    assert.are.equal(1, o.stats().oauth.refresh_ok)
    assert.are_not.equal("….sig", stored(o)[1].access_token)
  end)

  it("gets a new pair for an expired token", function()
    o = oauth.start { "--auto-approve", "--token-ttl", "1", "--rate-max", "100000" }
    o.add_app()
    assert.are.equal(0, o.login().code)
    sys.sleep(1.2)
    local d = o.ghlua { "auth", "doctor" }
    assert.are.equal(0, d.code, d.out .. d.err)
    assert.matches("checked online: GET /contacts/.* answered 200", d.out)
    assert.is_true(o.stats().oauth.refresh_ok >= 1)
  end)

  it("says a revoked token is refused, and what to run", function()
    o = oauth.start { "--auto-approve", "--rate-max", "100000" }
    o.add_app()
    assert.are.equal(0, o.login().code)
    local u = assert(http.request { method = "POST", url = o.sim.url .. "/__sim/uninstall",
                                    json = { locationId = o.sim.location } })
    assert.are.equal(200, u.status, u.body)
    local d = o.ghlua { "auth", "doctor" }
    assert.are.equal(1, d.code, d.out .. d.err)
    assert.matches("Location " .. o.sim.location .. " %(app app1%): the API refuses the token %(GET /contacts/.*"
      .. "answered 401 Invalid JWT%): it is expired, revoked or not a token; a refresh failed too: ", d.out)
    assert.matches("\n  fix: ", d.out)
    assert.is_nil(d.out:find("\nok: ", 1, true))
    assert.are.equal("", d.err)
  end)

  it("checks every token, one call each, and reports them in order: a bad PIT, good ones", function()
    o = oauth.start { "--pit", PIT, "--pit", PIT2 .. ":" .. OTHER, "--rate-max", "100000" }
    for _, t in ipairs { { "a-good", o.sim.location, PIT }, { "b-bad", o.sim.location, "pit-bad-0123456789" },
                         { "c-other", OTHER, PIT2 } } do
      local r = o.ghlua({ "auth", "pit", "add", t[1], "--location", t[2], "--offline" }, { env = { GHL_PIT = t[3] } })
      assert.are.equal(0, r.code, r.err)
    end
    local before = requests(o)
    local d = o.ghlua { "auth", "doctor" }
    assert.are.equal(1, d.code, d.out .. d.err)
    assert.are.equal(before + 3, requests(o))
    local a = d.out:find("ok: PIT Location " .. o.sim.location .. " (app pit:a-good)", 1, true)
    local b = d.out:find("Location " .. o.sim.location .. " (app pit:b-bad): the API refuses the token", 1, true)
    local c = d.out:find("ok: PIT Location " .. OTHER .. " (app pit:c-other)", 1, true)
    assert.is_truthy(a and b and c, d.out)
    assert.is_true(a < b and b < c, d.out)
    assert.matches("fix: check that the whole token was pasted", d.out)
    assert.is_nil(d.out:find("pit-bad-0123456789", 1, true))   -- tokens only as …abcd
  end)

  it("checks several tokens at once", function()
    local pits = { PIT, PIT2, "pit-5c6d7e8f-9a0b-4c1d-8e2f-3a4b5c6d7e8f" }
    local locs = { "zzOverlapLocation0001", "zzOverlapLocation0002", "zzOverlapLocation0003" }
    local argv = { "--rate-max", "100000" }
    for i = 1, 3 do argv[#argv + 1] = "--pit"; argv[#argv + 1] = pits[i] .. ":" .. locs[i] end
    o = oauth.start(argv)
    for i = 1, 3 do
      local r = o.ghlua({ "auth", "pit", "add", "p" .. i, "--location", locs[i], "--offline" }, { env = { GHL_PIT = pits[i] } })
      assert.are.equal(0, r.code, r.err)
    end
    -- each answer held back 1.5 s: one check after the other would reach the
    -- simulator 1.5 s apart
    local put = assert(http.request { method = "PUT", url = o.sim.url .. "/__sim/chaos",
      json = { rules = { { pattern = "^/locations/zzOverlap", delay_ms = 1500, times = 3 } } } })
    assert.are.equal(200, put.status, put.body)
    local d = o.ghlua { "auth", "doctor" }
    assert.are.equal(0, d.code, d.out .. d.err)
    local log = assert(http.request { url = o.sim.url .. "/__sim/requests" }):json().requests
    local at = {}
    for _, e in ipairs(log) do
      if e.path:find("^/locations/zzOverlap") then at[#at + 1] = e.at end
    end
    assert.are.equal(3, #at)
    table.sort(at)
    assert.is_true(at[3] - at[1] < 1500, "the three checks did not overlap: " .. table.concat(at, " "))
  end)

  it("names the base URL when the API cannot be reached, and --offline makes no call", function()
    o = oauth.start { "--pit", PIT }
    assert.are.equal(0, o.ghlua({ "auth", "pit", "add", "ops", "--location", o.sim.location }, { stdin = PIT }).code)
    local base = nowhere()
    local d = o.ghlua({ "auth", "doctor" }, { env = { GHLUA_API_BASE = base } })
    assert.are.equal(1, d.code, d.out .. d.err)
    assert.matches("%(app pit:ops%): cannot reach the API at " .. base:gsub("%p", "%%%0") .. " %(", d.out)
    assert.matches("fix: check the network, or GHLUA_API_BASE %(requests go to " .. base:gsub("%p", "%%%0"), d.out)
    local before = requests(o)
    d = o.ghlua({ "auth", "doctor", "--offline" })
    assert.are.equal(0, d.code, d.out .. d.err)
    assert.is_nil(d.out:find("checked online", 1, true))
    assert.are.equal(before, requests(o))
  end)
end)

describe("auth pit add online", function()
  local s, env, home

  local function pit_add(args, token, extra)
    local e = {}
    for k, v in pairs(env) do e[k] = v end
    for k, v in pairs(extra or {}) do e[k] = v end
    local argv = { "auth", "pit", "add" }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    return run.ghlua(argv, { env = e, stdin = token .. "\n" })
  end

  local function names()
    local r = run.ghlua({ "auth", "status", "--json" }, { env = env })
    assert.are.equal(0, r.code, r.err)
    local t = {}
    for _, row in ipairs(cjson.decode(r.out)) do t[#t + 1] = row.app end
    table.sort(t)
    return t
  end

  local f
  setup(function()
    f = fixture.start({ "--pit", PIT, "--pit", PIT2 .. ":" .. OTHER }, { token = false })
    s, env, home = f.sim, f.env, f.home
  end)
  teardown(function() f.stop() end)

  it("refuses a PIT the API does not accept, with one call, and stores nothing", function()
    local before = s.stats().requests
    local r = pit_add({ "bad", "--location", s.location }, "pit-00000000-dead-4bad-8bad-000000000000")
    assert.are.equal(1, r.code)
    assert.matches("^ghlua: PIT bad %(…0000%) not stored: the API refuses the token %(GET /locations/"
      .. s.location .. " answered 401 Invalid JWT%)", r.err)
    assert.matches("hint: check that the whole token was pasted", r.err)
    assert.are.equal(1, select(2, r.err:gsub("\n", "")))
    assert.are.equal("", r.out)
    assert.are.equal(before + 1, s.stats().requests)
    assert.are.same({}, names())
  end)

  it("stores a PIT the API accepts, saying what it checked", function()
    local r = pit_add({ "good", "--location", s.location }, PIT)
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("stored PIT good for location " .. s.location .. " (…4c5d); checked online: GET /locations/"
      .. s.location .. " answered 200\n", r.out)
    assert.are.same({ "pit:good" }, names())
  end)

  it("refuses another location's PIT, naming the flag to fix", function()
    local r = pit_add({ "mixed", "--location", s.location }, PIT2)
    assert.are.equal(1, r.code)
    assert.matches("not stored: the token does not have access to location " .. s.location, r.err)
    assert.matches("hint: give the location the token belongs to %(%-%-location ID%)", r.err)
    r = pit_add({ "other", "--location", OTHER }, PIT2)
    assert.are.equal(0, r.code, r.err)
    assert.are.same({ "pit:good", "pit:other" }, names())
  end)

  it("stores nothing when the API cannot be reached, unless --offline", function()
    local base = nowhere()
    local r = pit_add({ "later", "--location", s.location }, PIT, { GHLUA_API_BASE = base })
    assert.are.equal(1, r.code)
    assert.matches("not stored: cannot reach the API at " .. base:gsub("%p", "%%%0"), r.err)
    assert.matches("or store it without checking with %-%-offline", r.err)
    assert.is_nil(r.err:find(PIT, 1, true))
    local before = s.stats().requests
    r = pit_add({ "later", "--location", s.location, "--offline" }, PIT, { GHLUA_API_BASE = base })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("stored PIT later for location " .. s.location .. " (…4c5d)\n", r.out)
    assert.are.equal(before, s.stats().requests)
    assert.are.same({ "pit:good", "pit:later", "pit:other" }, names())
  end)
end)
