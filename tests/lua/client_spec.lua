-- ghl.client against the simulator: Version per family, pagination in every
-- style, the throttle and 429s, the daily limit, retries, hints, and
-- concurrency with ghl.parallel and c:batch.
local ghl = require "ghl"
local sim = require "support.sim"
local fixture = require "support.fixture"
local run = require "support.run"
local http = require "ghl.http"
local simlog = require "support.simlog"

local function client(s, o)
  o = o or {}
  o.token, o.base, o.location = o.token or s.token, s.url, o.location or s.location
  return ghl.client(o)
end

local function stats(s) return assert(http.request { url = s.url .. "/__sim/stats" }):json() end

describe("ghl.client", function()
  local s
  setup(function() s = sim.start { "--contacts", "250", "--faults", "--opportunities", "250", "--rate-max", "100000" } end)
  teardown(function() s.stop() end)

  it("returns decoded JSON and fills {locationId} from its context", function()
    local c = client(s)
    local fields = c:get("/locations/{locationId}/customFields")
    assert.is_table(fields.customFields)
    assert.is_true(#fields.customFields > 0)
    local one = c:get("/contacts/{contactId}", { contactId = c:get("/contacts/", { locationId = s.location, limit = 1 }).contacts[1].id })
    assert.is_string(one.contact.id)
  end)

  it("fills a required locationId query parameter from its context, never over the caller's", function()
    local c = client(s)
    assert.are.equal(2, #c:get("/contacts/", { limit = 2 }).contacts)
    assert.are.equal(s.location, c.last.query.locationId)
    assert.is_table(c:get("/calendars/").calendars)
    assert.are.equal(s.location, c.last.query.locationId)
    -- written in the path, or given: left alone
    c:get("/contacts/?locationId=" .. s.location .. "&limit=1")
    assert.is_nil(c.last.query)
    local _, e = ghl.try(function() return c:get("/contacts/", { locationId = "otherLocation000001" }) end)
    assert.are.equal(403, e.status)
    -- a client without a location fills nothing: the server's 422 explains it
    local bare = ghl.client { token = s.token, base = s.url }
    assert.is_nil(bare:build("GET", "/contacts/").query)
  end)

  it("picks the Version per endpoint family, and lets the caller override it", function()
    local c = client(s)
    c:get("/contacts/", { locationId = s.location, limit = 1 })
    c:get("/calendars/", { locationId = s.location })
    local function keys(t) local k = {} for name in pairs(t or {}) do k[#k + 1] = name end table.sort(k) return k end
    local v = stats(s).versions
    assert.are.same({ "2021-07-28" }, keys(v.contacts))
    assert.are.same({ "2021-04-15" }, keys(v.calendars))
    c:get("/contacts/", { locationId = s.location, limit = 1 }, { version = "2023-02-21" })
    assert.are.equal(1, stats(s).versions.contacts["2023-02-21"])
  end)

  it("prepares a request without sending it, with the token redacted", function()
    local p = client(s):prepare("POST", "/contacts/", { body = { firstName = "Ada" } })
    assert.are.equal("POST", p.method)
    assert.are.equal(s.url .. "/contacts/", p.url)
    assert.are.equal("2021-07-28", p.version)
    assert.matches("^Bearer …", p.headers.Authorization)
    -- with the required locationId filled from the client's location
    assert.are.same({ firstName = "Ada", locationId = s.location }, require("cjson").decode(p.body))
  end)

  describe("pagination, 250 items with no duplicates or gaps", function()
    local function all(iter)
      local ids, n = {}, 0
      for item in iter do
        local id = item.id or item._id
        assert.is_nil(ids[id], "duplicate " .. tostring(id))
        ids[id] = true
        n = n + 1
      end
      return n
    end

    it("meta.nextPageUrl / startAfterId (GET /contacts/)", function()
      assert.are.equal(250, all(client(s):paginate("/contacts/", { limit = 40 })))
    end)

    it("page/pageLimit then searchAfter (POST /contacts/search)", function()
      assert.are.equal(250, all(client(s):paginate("/contacts/search", { pageLimit = 30 })))
    end)

    it("opportunities in both styles", function()
      local c = client(s)
      assert.are.equal(250, all(c:paginate("/opportunities/search", { limit = 60 }, { method = "GET" })))
      assert.are.equal(250, all(c:paginate("/opportunities/search", { limit = 60 }, { method = "POST", style = "page" })))
    end)

    it("stops at max", function()
      assert.are.equal(33, all(client(s):paginate("/contacts/", {}, { max = 33 })))
    end)
  end)

  describe("errors and hints", function()
    it("raises a ghl.error with status, message, traceId, method, path and hint", function()
      local ok, err = pcall(client(s).post, client(s), "/contacts/", { locationId = s.location, email = "dup@example.com" })
      assert.is_true(ok, tostring(err))
      local _, e = ghl.try(client(s).post, client(s), "/contacts/", { locationId = s.location, email = "dup@example.com" })
      assert.are.same({ "http", 400, "POST", "/contacts/", "duplicate_contact" }, { e.kind, e.status, e.method, e.path, e.code })
      assert.is_string(e.traceId)
      assert.is_string(e.meta.contactId)
      assert.matches("upsert", e.hint)
    end)

    it("joins array messages (422)", function()
      local c = client(s)
      local id = c:get("/contacts/", { locationId = s.location, limit = 1 }).contacts[1].id
      local _, e = ghl.try(c.put, c, "/contacts/" .. id, { gender = "x", locationId = s.location })
      assert.are.equal(422, e.status)
      assert.matches("should not exist, .*should not exist", e.message)
      assert.are.equal("unknown_property", e.code)
    end)

    it("explains another location's id (403)", function()
      local _, e = ghl.try(function() return client(s):get("/contacts/", { locationId = "otherLocation000001" }) end)
      assert.are.same({ 403, "wrong_location" }, { e.status, e.code })
      assert.matches("location " .. s.location, e.hint)
    end)

    it("reports a reply that is not JSON as a decode error", function()
      local _, e = ghl.try(function() return client(s):get("/__fault/truncated-json") end)
      assert.are.equal("decode", e.kind)
    end)

    it("gives every catalogue entry a code and a hint", function()
      local hints = require "ghl.hints"
      for _, h in ipairs(hints.catalogue) do
        local code, hint = hints.lookup("xx " .. h[1] .. " yy", { method = "GET", path = "/p", scopes = { "a.readonly" }, location = "L" })
        assert.are.equal(h[2], code)
        assert.is_string(hint)
      end
      local _, hint = hints.lookup("The token is not authorized for this scope.", { method = "GET", path = "/contacts/", scopes = { "contacts.readonly" } })
      assert.matches("contacts%.readonly", hint)
      assert.matches("ghlua auth login %-%-scopes", hint)
    end)
  end)

  describe("concurrency", function()
    it("runs 200 requests with ghl.parallel, in order, one error isolated", function()
      local c = client(s)
      local ids = {}
      for item in c:paginate("/contacts/", {}, { max = 200 }) do ids[#ids + 1] = item.id end
      local fns = {}
      for i = 1, 200 do
        fns[i] = function() return c:get("/contacts/" .. (i == 57 and "missing-id" or ids[i])).contact.id end
      end
      local res = ghl.parallel(fns, { concurrency = 16 })
      for i = 1, 200 do
        if i == 57 then assert.is_true(ghl.error.is(res[i])) else assert.are.equal(ids[i], res[i]) end
      end
    end)

    it("yields inside ghl.parallel instead of blocking", function()
      local c = client(s)
      c:get("/contacts/", { limit = 1 })   -- the bucket knows the limit: no probe goes first
      simlog.clear(s)
      local fns = {}
      for i = 1, 16 do fns[i] = function() return c:get("/__fault/slow", { ms = 1000, i = i }) end end
      local res = ghl.parallel(fns, { concurrency = 16 })
      assert.are.equal(16, #res)
      -- on the simulator's clock: all 16 arrived before the first was answered
      local log = simlog.requests(s, { path = "/__fault/slow" })
      assert.are.equal(16, #log)
      assert.are.equal(16, simlog.peak(log), "16 × 1000 ms ran one after another")
    end)

    it("runs as many coroutines as requests in flight, not one per request", function()
      local c = client(s)
      c:get("/contacts/", { limit = 1 })   -- the bucket knows the limit: no probe goes first
      local threads, n = {}, 0
      local remove = require("ghl.client").observe(function()
        local co = coroutine.running()
        if not threads[co] then threads[co], n = true, n + 1 end
      end)
      finally(remove)
      local reqs = {}
      for i = 1, 60 do reqs[i] = { "GET", "/contacts/", query = { limit = 1, i = i } } end
      reqs[10] = { "GET", "/nope" }   -- a failed request leaves its coroutine to the next
      local res = c:batch(reqs, { concurrency = 6 })
      assert.are.equal(60, #res)
      for i = 1, 60 do
        if i == 10 then assert.are.equal(404, res[i].status) else assert.is_table(res[i].contacts, tostring(res[i])) end
      end
      assert.are.equal(6, n)
      -- and ghl.parallel the same, with functions that raise
      threads, n = {}, 0
      local fns = {}
      for i = 1, 30 do
        fns[i] = function(j)
          if j % 7 == 0 then error("task " .. j .. " broke") end
          return c:get("/contacts/", { limit = 1, i = j }).contacts and j
        end
      end
      local out = ghl.parallel(fns, { concurrency = 4 })
      for i = 1, 30 do
        if i % 7 == 0 then
          assert.is_true(ghl.error.is(out[i]))
          assert.matches("task " .. i .. " broke", out[i].message)
        else
          assert.are.equal(i, out[i])
        end
      end
      assert.are.equal(4, n)
    end)

    it("keeps the concurrency limit when tasks that finish at once and tasks that wait mix", function()
      local loop = require "ghl.loop"
      local active, peak, threads, n = 0, 0, {}, 0
      local function task(i)
        local co = coroutine.running()
        if not threads[co] then threads[co], n = true, n + 1 end
        active = active + 1
        if active > peak then peak = active end
        if i % 3 == 0 then loop.sleep(0.002) end   -- waits; the others finish at once
        active = active - 1
        if i == 20 then error("task 20 broke") end
        return i * 2
      end
      local fns = {}
      for i = 1, 40 do fns[i] = task end
      local res = ghl.parallel(fns, { concurrency = 3 })
      assert.are.equal(40, #res)
      for i = 1, 40 do
        if i == 20 then assert.matches("task 20 broke", res[i].message) else assert.are.equal(i * 2, res[i]) end
      end
      assert.are.equal(3, peak)
      assert.are.equal(3, n)
      -- with each=, every result once, and the same limit
      local seen, got = 0, {}
      active, peak = 0, 0
      local failed = loop.map(40, task, { concurrency = 3, progress = false, each = function(i, v)
        assert.is_nil(got[i]); got[i] = v; seen = seen + 1
      end })
      assert.are.equal(1, failed)
      assert.are.equal(40, seen)
      assert.are.equal(3, peak)
    end)

    it("c:batch returns results in order", function()
      local c = client(s)
      local res = c:batch({ { "GET", "/contacts/", query = { locationId = s.location, limit = 2 } }, { "GET", "/nope" },
                            { "POST", "/contacts/search", body = { locationId = s.location, pageLimit = 3 } } }, { concurrency = 3 })
      assert.are.equal(2, #res[1].contacts)
      assert.are.equal(404, res[2].status)
      assert.are.equal(3, #res[3].contacts)
    end)

    it("hands results to each= as they arrive and keeps none", function()
      local c = client(s)
      c:get("/contacts/", { limit = 1 })   -- the bucket knows the limit: no probe goes first
      local reqs = {}
      for i = 1, 40 do
        reqs[i] = { "GET", "/__fault/slow", query = { ms = i == 1 and 700 or (41 - i) * 4, i = i } }
      end
      reqs[7] = { "GET", "/nope" }
      local order, seen, errs = {}, {}, {}
      local failed = c:batch(reqs, { concurrency = 40, each = function(i, v)
        order[#order + 1] = i
        if ghl.error.is(v) then errs[#errs + 1] = i else seen[i] = true end
      end })
      assert.are.equal(1, failed)
      assert.are.same({ 7 }, errs)
      assert.are.equal(40, #order)
      for i = 1, 40 do assert.is_true(i == 7 or seen[i], "no result for " .. i) end
      -- the slowest (i = 1) finishes last: completion order, not request order
      assert.are.equal(1, order[#order])
      -- ghl.parallel takes the same option
      local n = 0
      assert.are.equal(0, ghl.parallel({ function() return 1 end, function() return 2 end },
        { each = function(_, v) n = n + v end }))
      assert.are.equal(3, n)
    end)
  end)
end)

describe("rate limits", function()
  it("throttles to the server's limit so the caller sees no 429 (5 per second)", function()
    local s = sim.start { "--rate-max", "5", "--rate-interval-ms", "1000" }
    finally(s.stop)
    local c = client(s)
    for _ = 1, 22 do c:get("/contacts/", { locationId = s.location, limit = 1 }) end
    -- not too fast: the simulator's limiter never refused one
    local st = stats(s).status
    assert.are.same({ 22, nil }, { st["200"], st["429"] })
    -- not too slow: on the simulator's records, each of the first four
    -- windows was spent to its last request (22 = 4 × 5 + 2)
    local spent = {}
    for i, e in ipairs(simlog.requests(s, { path = "/contacts/" })) do
      if e.remaining == 0 then spent[#spent + 1] = i end
    end
    assert.are.same({ 5, 10, 15, 20 }, spent)
    local r = c:rate()
    assert.are.same({ 5, 1000 }, { r.max, r.interval_ms })
  end)

  it("learns the limit from a first request before a concurrent burst, so the server sends no 429", function()
    local s = sim.start { "--rate-max", "5", "--rate-interval-ms", "1000" }
    finally(s.stop)
    local c = client(s, { token = s.token })
    local reqs = {}
    for i = 1, 12 do reqs[i] = { "GET", "/contacts/", query = { limit = 1, i = i } } end
    local res = c:batch(reqs, { concurrency = 12 })
    for i = 1, 12 do assert.is_table(res[i].contacts, tostring(res[i])) end
    local st = stats(s).status
    assert.are.same({ 12, nil }, { st["200"], st["429"] })
  end)

  it("does not wait forever on a first request abandoned by an aborted batch", function()
    local s = sim.start { "--faults" }
    finally(s.stop)
    local c = client(s, { token = s.token })
    local loop = require "ghl.loop"
    local ok, err = pcall(ghl.parallel, {
      function() return c:get("/__fault/slow", { ms = 30000 }) end,   -- the probe, left in flight
      function()   -- done once the simulator holds the probe
        while #assert(loop.request { url = s.url .. "/__sim/requests", query = { path = "/__fault/slow" } })
          :json().requests == 0 do loop.sleep(0.02) end
        return 1
      end,
    }, { each = function(i) if i == 2 then error("stop here", 0) end end })
    assert.are.same({ false, "stop here" }, { ok, err })
    assert.is_table(c:get("/contacts/", { limit = 1 }).contacts)
    -- on the simulator's clock: the GET arrived before the probe was answered
    local probe = simlog.requests(s, { path = "/__fault/slow" })[1]
    local get = simlog.requests(s, { path = "/contacts/" })[1]
    assert.is_true(get.at < simlog.answered(probe), "the GET waited for the abandoned probe")
  end)

  it("retries 429s caused by another process after the interval", function()
    local s = sim.start { "--rate-max", "5", "--rate-interval-ms", "1000" }
    finally(s.stop)
    local code = ([[
      local c = require('ghl').client { token = %q, base = %q, location = %q }
      for i = 1, 12 do c:get('/contacts/', { locationId = %q, limit = 1 }) end
      print('ok')
    ]]):format(s.token, s.url, s.location, s.location)
    local a = io.popen(("%s -e %s 2>&1"):format(run.quote(os.getenv("GHLUA")), run.quote(code)))
    local b = run.ghlua { "-e", code }
    local aout = a:read("a")
    a:close()
    assert.are.same({ 0, "ok\n" }, { b.code, b.out }, b.err)
    assert.are.equal("ok\n", aout)
  end)

  it("fails fast when the daily limit is used up, retrying nothing", function()
    local s = sim.start { "--rate-daily", "3" }
    finally(s.stop)
    local c = client(s)
    for _ = 1, 3 do c:get("/contacts/", { locationId = s.location, limit = 1 }) end
    local _, e = ghl.try(c.get, c, "/contacts/", { locationId = s.location, limit = 1 })
    assert.are.equal("rate", e.kind)
    assert.matches("daily request limit", e.message)
    -- nothing sent, so nothing waited for or retried (a client that slept
    -- until the day's reset would never return: ctest's timeout catches it)
    assert.are.equal(3, stats(s).requests)
  end)
end)

describe("retries", function()
  local s
  setup(function() s = sim.start {} end)
  teardown(function() s.stop() end)

  local function chaos(rules)
    assert(http.request { method = "PUT", url = s.url .. "/__sim/chaos", json = { rules = rules } })
    assert(http.request { method = "DELETE", url = s.url .. "/__sim/requests" })
  end
  local function attempts(method, path)
    local log = assert(http.request { url = s.url .. "/__sim/requests" }):json()
    local n = 0
    for _, r in ipairs(log.requests or log) do
      if r.method == method and r.path == path then n = n + 1 end
    end
    return n
  end

  it("retries a GET after 5xx and resets", function()
    chaos { { method = "GET", path = "/contacts/", times = 1, status = 503 },
            { method = "GET", path = "/contacts/", times = 1, reset = true } }
    local v = client(s):get("/contacts/", { locationId = s.location, limit = 1 })
    assert.is_table(v.contacts)
    assert.are.equal(3, attempts("GET", "/contacts/"))
  end)

  it("does not retry a POST unless asked", function()
    chaos { { method = "POST", path = "/contacts/", times = 1, status = 502 } }
    local _, e = ghl.try(function() return client(s):post("/contacts/", { locationId = s.location, firstName = "A" }) end)
    assert.are.equal(502, e.status)
    assert.are.equal(1, attempts("POST", "/contacts/"))
    chaos { { method = "POST", path = "/contacts/", times = 1, status = 502 } }
    local v = client(s):post("/contacts/", { locationId = s.location, firstName = "B" }, { retry = true })
    assert.are.equal("b", v.contact.firstName:lower())
    assert.are.equal(2, attempts("POST", "/contacts/"))
  end)
end)

describe("pagination with an agency token", function()
  local oauth = require "support.oauth"
  local o
  setup(function()
    o = oauth.start { "--auto-approve", "company", "--app-type", "Company", "--locations", "249", "--rate-max", "100000" }
    o.add_app("oauth")
    local resp = assert(http.request { url = o.sim.url .. "/v2/oauth/chooselocation", query = {
      response_type = "code", client_id = o.client_id, redirect_uri = o.redirect_uri, scope = "oauth.readonly oauth.write" } })
    local code = resp.headers.location:match("code=([^&]+)")
    local r = o.ghlua { "auth", "exchange", code, "--app", "app1", "--user-type", "Company" }
    assert(r.code == 0, r.err)
  end)
  teardown(function() o.stop() end)

  -- Count items of a paginated listing in a child process using the store.
  local function count(path, opts)
    local r = o.lua(([[
      local c = require('ghl').client {}
      local seen, n = {}, 0
      for item in c:paginate(%q, { companyId = c.company, appId = %q, %s }, %s) do
        local id = item._id or item.id
        assert(not seen[id], 'duplicate ' .. tostring(id))
        seen[id], n = true, n + 1
      end
      print(n)
    ]]):format(path, o.client_id:match("^[^-]+"), opts.params or "", opts.o or "{}"))
    assert.are.equal(0, r.code, r.err)
    return tonumber(r.out)
  end

  it("skip/limit (GET /oauth/installedLocations)", function()
    assert.are.equal(250, count("/oauth/installedLocations", { params = "limit = 37" }))
  end)

  it("v3 pageSize/pageToken (GET /oauth/installed-locations)", function()
    assert.are.equal(250, count("/oauth/installed-locations", { params = "pageSize = 41", o = "{ version = 'v3' }" }))
  end)
end)

describe("writes whose outcome is unknown, redirects, empty answers, hostile rate-limit headers", function()
  local s, f
  setup(function()
    f = fixture.start({ "--rate-max", "100000", "--faults" }, { location = true })
    s = f.sim
  end)
  teardown(function() f.stop() end)

  local function chaos(rules)
    assert(http.request { method = "PUT", url = s.url .. "/__sim/chaos", json = { rules = rules } })
    assert(http.request { method = "DELETE", url = s.url .. "/__sim/requests" })
  end
  local function sent(method, path)
    return assert(http.request { url = s.url .. "/__sim/requests", query = { method = method, path = path } }):json().total
  end
  local function contacts() return stats(s).locations[s.location].contacts end
  -- `ghlua api ...` with the simulator's token
  local function api(args)
    local argv = { "api" }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    return f.ghlua(argv)
  end

  it("a POST whose answer is held back past the timeout: 'may have been applied', sent once, created once", function()
    local before = contacts()
    chaos { { method = "POST", path = "/contacts/", delay_ms = 2500 } }
    local c = client(s)
    local _, e = ghl.try(c.post, c, "/contacts/", { locationId = s.location, firstName = "Held", email = "held@example.com" }, { timeout = 1 })
    assert.are.same({ "timeout", "outcome_unknown", "POST", "/contacts/" }, { e.kind, e.code, e.method, e.path })
    assert.matches("may have been applied", e.message)
    assert.matches("check whether it took effect", e.hint)
    assert.is_nil(tostring(e):find("\n"))
    assert.are.equal(1, sent("POST", "/contacts/"))
    assert.are.equal(before + 1, contacts())
  end)

  it("a POST or PATCH answered 5xx is not sent again and says so; PUT and read-only POSTs are", function()
    chaos { { method = "POST", path = "/contacts/", status = 503 } }
    local c = client(s)
    local _, e = ghl.try(c.post, c, "/contacts/", { locationId = s.location, firstName = "Five" })
    assert.are.same({ "http", 503, "outcome_unknown" }, { e.kind, e.status, e.code })
    assert.matches("may have been applied: the server answered with an error after receiving it", e.message)
    assert.matches("%(HTTP 503", tostring(e))
    assert.are.equal(1, sent("POST", "/contacts/"))
    chaos {}
    _, e = ghl.try(c.patch, c, "/__fault/status", { firstName = "P" }, { query = { code = 502 } })
    assert.are.same({ 502, "outcome_unknown" }, { e.status, e.code })
    assert.are.equal(1, sent("PATCH", "/__fault/status"))
    local id = c:post("/contacts/", { locationId = s.location, firstName = "Target" }).contact.id
    chaos { { method = "PUT", pattern = "^/contacts/", status = 503 } }
    assert.is_table(c:put("/contacts/" .. id, { firstName = "Put" }).contact)
    assert.are.equal(2, sent("PUT", "/contacts/" .. id))
    chaos { { method = "POST", path = "/contacts/search", status = 503, times = 2 } }
    assert.is_table(c:post("/contacts/search", { locationId = s.location, pageLimit = 1 }).contacts)
    assert.are.equal(3, sent("POST", "/contacts/search"))
  end)

  it("a POST to a refused connection is tried again: nothing was sent", function()
    local port = require("support.oauth").free_port()
    local c = ghl.client { token = s.token, base = "http://127.0.0.1:" .. port, location = s.location }
    local M = require "ghl.client"
    local backoff = M.BACKOFF
    M.BACKOFF = 0.01
    local _, e = ghl.try(c.post, c, "/contacts/", { firstName = "Nobody" })
    M.BACKOFF = backoff
    assert.are.equal("connect", e.kind)
    assert.is_nil(e.code)
    assert.are.equal(M.RETRIES + 1, c.last.attempts)
  end)

  it("a 3xx is an error that names GHLUA_API_BASE, in the API and on the command line", function()
    chaos { { method = "GET", path = "/contacts/", status = 302, times = 2,
              headers = { Location = "https://elsewhere.example/contacts/\27[31m" } } }
    local c = client(s)
    local _, e = ghl.try(c.get, c, "/contacts/", { limit = 1 })
    assert.are.same({ "http", 302, "redirect" }, { e.kind, e.status, e.code })
    assert.matches("^unexpected redirect to https://elsewhere%.example/contacts/%?%[31m$", e.message)
    assert.matches("GHLUA_API_BASE", e.hint)
    local r = api { "GET", "/contacts/", "-q", "limit=1" }
    assert.are.equal(1, r.code)
    assert.matches("^ghlua: GET /contacts/: unexpected redirect to .* %(HTTP 302%)", r.err)
    assert.matches("GHLUA_API_BASE", r.err)
    assert.is_nil(r.err:find("\27", 1, true))
    assert.is_nil(r.err:find("traceback", 1, true))
  end)

  it("an empty 200 to a GET is a decode error; a 204 and an empty answer to a write are true", function()
    chaos { { method = "GET", path = "/contacts/", status = 200, body = "" } }
    local c = client(s)
    local _, e = ghl.try(c.get, c, "/contacts/", { limit = 1 })
    assert.are.equal("decode", e.kind)
    assert.matches("empty reply where JSON was expected", e.message)
    chaos { { method = "GET", path = "/contacts/", status = 204, body = "" } }
    assert.is_true(c:get("/contacts/", { limit = 1 }))
    local id = c:post("/contacts/", { locationId = s.location, firstName = "Gone" }).contact.id
    chaos { { method = "DELETE", pattern = "^/contacts/", status = 200, body = "" } }
    assert.is_true(c:delete("/contacts/" .. id))
    chaos { { method = "GET", path = "/contacts/", status = 200, body = "" } }
    local r = api { "GET", "/contacts/", "-q", "limit=1" }
    assert.are.equal(1, r.code)
    assert.matches("empty reply where JSON was expected", r.err)
  end)

  it("clamps X-RateLimit-* headers and Retry-After, so a hostile answer cannot make it sleep for ages", function()
    local huge = { ["X-RateLimit-Interval-Milliseconds"] = "1e15", ["X-RateLimit-Max"] = "1e15",
                   ["X-RateLimit-Remaining"] = "5", ["Retry-After"] = "1e15" }
    chaos { { method = "GET", path = "/contacts/", status = 200, headers = huge } }
    local c = client(s, { token = s.token .. "", location = s.location })
    c:get("/contacts/", { limit = 1 })
    local rate = c:rate()
    assert.are.same({ 60000, 10000 }, { rate.interval_ms, rate.max })
    -- a 429 that asks for 1e15 ms waits MAX_WAIT at most (lowered here so
    -- the test is quick; the default is 60 s), and then succeeds
    huge["X-RateLimit-Remaining"] = "0"
    chaos { { method = "GET", path = "/contacts/", status = 429, headers = huge } }
    local M = require "ghl.client"
    local max_wait = M.MAX_WAIT
    M.MAX_WAIT = 0.2
    local ok, v = pcall(c.get, c, "/contacts/", { limit = 1 })
    M.MAX_WAIT = max_wait
    assert.is_true(ok, tostring(v))
    assert.is_table(v.contacts)
    assert.are.equal(2, sent("GET", "/contacts/"))
    assert.is_true(c:rate().blocked_for <= 60.1)
  end)
end)

describe("a client with a static token and no store", function()
  local s, home, dir
  setup(function()
    s = sim.start { "--contacts", "30", "--rate-max", "100000" }
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. run.quote(dir)))
    home = dir .. "/home"
  end)
  teardown(function()
    s.stop()
    os.execute("rm -rf " .. run.quote(dir))
  end)

  -- what is under the ghlua home (nothing, or the file names)
  local function files()
    local p = assert(io.popen("find " .. run.quote(home) .. " -type f 2>/dev/null"))
    local out = p:read("a")
    p:close()
    return out
  end
  local function schema_reads()
    return assert(http.request { url = s.url .. "/__sim/requests",
      query = { method = "GET", path = "/locations/" .. s.location .. "/customFields" } }):json().total
  end
  local env = function(extra)
    local e = { GHLUA_API_BASE = s.url, GHLUA_HOME = home, GHLUA_STORE = "", no_proxy = sim.NO_PROXY,
                NO_PROXY = sim.NO_PROXY }
    for k, v in pairs(extra or {}) do e[k] = v end
    return e
  end
  -- a search whose contacts come back with their custom fields named:
  -- the schema was fetched and cached (in memory)
  local SEARCH = [[
    local n, named = 0, 0
    for ct in c.contacts:search({ pageLimit = 10 }, { max = 20 }) do
      n = n + 1
      for _, cf in ipairs(ct.customFields or {}) do if cf.key then named = named + 1 end end
    end
    print(n, named, c.schema_cache)
  ]]

  it("searches with token= and the schema cached in memory, writing no store file", function()
    local before = schema_reads()
    local r = run.ghlua({ "-e", "local ghl = require 'ghl'; local c = ghl.client{ token = os.getenv('T'), "
      .. "location = os.getenv('L') }" .. SEARCH }, { env = env { T = s.token, L = s.location } })
    assert.are.equal(0, r.code, r.err)
    local n, named, where = r.out:match("^(%d+)%s+(%d+)%s+(%a+)")
    assert.are.equal("20", n)
    assert.is_true(tonumber(named) > 0, "no custom field was named: " .. r.out)
    assert.are.equal("memory", where)
    assert.are.equal(1, schema_reads() - before)   -- fetched once, then from memory
    assert.are.equal("", files())
  end)

  it("runs a recipe with GHL_TOKEN ('ghlua run', sandboxed or trusted), writing no store file", function()
    local script = dir .. "/search.lua"
    local f = assert(io.open(script, "w"))
    f:write([[
recipe { name = "search", writes = false, scopes = { "contacts.readonly", "locations/customFields.readonly" } }
return function(params, c)
]], SEARCH, "\nend\n")
    f:close()
    for _, trust in ipairs { false, true } do
      local before = schema_reads()
      local r = run.ghlua({ "run", script, trust and "--trust" or nil },
        { env = env { GHL_TOKEN = s.token, GHL_LOCATION_ID = s.location } })
      assert.are.equal(0, r.code, r.err)
      local n, named = r.out:match("^(%d+)%s+(%d+)")
      assert.are.equal("20", n, r.out)
      assert.is_true(tonumber(named) > 0, "no custom field was named: " .. r.out)
      assert.are.equal(1, schema_reads() - before)
      assert.are.equal("", files())
    end
  end)

  it("keeps the schema in the store only when asked (schema_cache = \"store\")", function()
    assert.has_error(function() ghl.client { token = "t", location = "L", schema_cache = "disk" } end,
      [[ghl.client: schema_cache must be "memory" or "store", not "disk"]])
    local r = run.ghlua({ "-e", "local ghl = require 'ghl'; local c = ghl.client{ token = os.getenv('T'), "
      .. "location = os.getenv('L'), schema_cache = 'store' }" .. SEARCH }, { env = env { T = s.token, L = s.location } })
    assert.are.equal(0, r.code, r.err)
    assert.matches("^20%s+%d+%s+store", r.out)
    assert.matches("ghlua%.db", files())
  end)
end)

describe("ghl.paginate", function()
  it("is still the pager's name for scripts and recipes (ghl.client.paginate)", function()
    assert.are.equal(require "ghl.client.paginate", require "ghl.paginate")
    assert.is_function(require("ghl.paginate").iterate)
  end)
end)
