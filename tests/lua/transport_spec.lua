-- The transport's promises against the simulator over loopback HTTP:
-- a non-idempotent request is never sent twice, even when a connection that
-- was kept alive dies after the server acted on it (the simulator's chaos
-- rule with after = true plays the proxy that resets the connection once
-- the upstream has answered); a failure after the request went out says it
-- may have been applied, and kind "connect" keeps meaning nothing was sent;
-- query and form encoding raise nothing that leaks and use no globals;
-- pagination pulls its pages in the caller's coroutine (so pages of several
-- walks overlap inside ghl.parallel) and ends with a one-line error on a
-- repeated cursor, a page repeated, or a page that is not a JSON object.
local ghl = require "ghl"
local http = require "ghl.http"
local cjson = require "cjson"
local sim = require "support.sim"
local run = require "support.run"

local function chaos(s, rules)
  local resp = assert(http.request { method = "PUT", url = s.url .. "/__sim/chaos", json = { rules = rules } })
  assert.are.equal(200, resp.status, resp.body)
end

local function requests(s, q)
  return assert(assert(http.request { url = s.url .. "/__sim/requests", query = q }):json()).requests
end

local function forget(s)
  assert(http.request { method = "DELETE", url = s.url .. "/__sim/chaos" })
  assert(http.request { method = "DELETE", url = s.url .. "/__sim/requests" })
end

local function client(s)
  return ghl.client { token = s.token, base = s.url, location = s.location }
end

describe("a non-idempotent request", function()
  local s
  setup(function() s = sim.start { "--faults", "--rate-max", "100000" } end)
  teardown(function() s.stop() end)
  before_each(function() forget(s) end)

  it("is never sent twice: 50 creates with the connection reset after the answer on some of them", function()
    local c = client(s)
    local ok, failed = 0, {}
    for i = 1, 50 do
      if i % 5 == 0 then
        -- set on the connection the create then reuses: kept alive, as a
        -- proxy's would be, so libcurl would retry on a fresh one
        chaos(s, { { method = "POST", path = "/contacts/", after = true,
          reset = i % 10 == 0 or nil, close = i % 10 ~= 0 or nil } })
      end
      local v, err = ghl.try(c.post, c, "/contacts/", { locationId = s.location, firstName = "create-" .. i })
      if v then
        assert.are.equal("create-" .. i, v.contact.firstName)
        ok = ok + 1
      else
        failed[#failed + 1] = err
      end
    end
    -- every create was processed once: as many contacts as requests, no name twice
    local posts = requests(s, { method = "POST", path = "/contacts/" })
    assert.are.equal(50, #posts)
    local dropped = 0
    for _, e in ipairs(posts) do
      if e.status == "reset" or e.status == "close" then
        dropped = dropped + 1
        assert.are.equal(201, e.handled)
      end
    end
    assert.are.equal(10, dropped)
    local names = {}
    for item in c:paginate("/contacts/", { limit = 100 }) do
      names[item.firstName] = (names[item.firstName] or 0) + 1
    end
    local n = 0
    for name, count in pairs(names) do
      assert.are.equal(1, count, name .. " was created " .. count .. " times")
      n = n + 1
    end
    assert.are.equal(#posts, n)
    -- the ten whose answer was lost fail, as transport errors that say so
    assert.are.equal(40, ok)
    assert.are.equal(10, #failed)
    for _, e in ipairs(failed) do
      assert.is_true(ghl.error.is(e), tostring(e))
      assert.are.equal("network", e.kind)
      assert.are_not.equal("connect", e.kind)
      assert.are.equal("outcome_unknown", e.code)
      assert.matches("the request may have been applied: the connection to http://[^ ]+ closed before an answer", e.message)
      assert.matches("before sending it again", e.hint)
    end
  end)

  -- the fault on a connection kept alive by the GET before it
  local function dropped_once(req)
    assert.are.equal(200, assert(http.request { url = s.url .. "/__fault/status", query = { code = 200 } }).status)
    chaos(s, { { path = "/__fault/echo", after = true, reset = true } })
    req.url = s.url .. "/__fault/echo"
    local resp, err = http.request(req)
    return resp, err, #requests(s, { path = "/__fault/echo" })
  end

  it("goes out once even with no body to rewind", function()
    for _, method in ipairs { "POST", "PATCH" } do
      forget(s)
      local resp, err, attempts = dropped_once { method = method }
      assert.is_nil(resp)
      assert.are.same({ "network", "outcome_unknown" }, { err.kind, err.code })
      assert.matches("^" .. method .. " /__fault/echo: the connection to http://[^ /]+ closed before an answer; "
        .. "the request may have been applied, so it was not sent again — hint: ", tostring(err))
      assert.are.equal(1, attempts)
    end
  end)

  it("is every method but GET, HEAD, PUT, DELETE and OPTIONS, unless the request says otherwise", function()
    for _, case in ipairs {
      { { method = "POST", body = "x" }, 1 },
      { { method = "PATCH", json = { a = 1 } }, 1 },
      { { method = "PUT", json = { a = 1 }, idempotent = false }, 1 },
      { { method = "POST", json = { query = "x" }, idempotent = true }, 2 },   -- a read: libcurl may retry it
      { { method = "PUT", json = { a = 1 } }, 2 },
      { { method = "GET" }, 2 },
    } do
      local req, want = case[1], case[2]
      local label = req.method .. " idempotent=" .. tostring(req.idempotent)
      forget(s)
      local resp, err, attempts = dropped_once(req)
      assert.are.equal(want, attempts, label)
      if want == 1 then
        assert.is_nil(resp, label)
        assert.are.equal("outcome_unknown", err.code, label)
      else
        assert.are.equal(200, resp.status, label)   -- sent again on a fresh connection
      end
    end
  end)

  it("refuses an idempotent or fresh field that is not a boolean", function()
    assert.has_error(function() http.request { url = s.url, idempotent = "yes" } end,
      "http.request: 'idempotent' must be a boolean, got string")
    assert.has_error(function() http.request { url = s.url, fresh = 1 } end,
      "http.request: 'fresh' must be a boolean, got number")
  end)

  it("says kind connect only when nothing was sent", function()
    -- port 9 (discard) has no listener on loopback: the connection is refused
    local resp, err = http.request { method = "POST", url = "http://127.0.0.1:9/", json = { a = 1 }, timeout = 5 }
    assert.is_nil(resp)
    assert.are.equal("connect", err.kind)
    assert.is_nil(err.code)
    assert.is_nil(err.message:find("may have been applied", 1, true))
  end)

  it("says a timed-out write may have been applied", function()
    chaos(s, { { method = "POST", path = "/__fault/echo", delay_ms = 2000 } })
    local resp, err = http.request { method = "POST", url = s.url .. "/__fault/echo", json = { a = 1 }, timeout = 0.3 }
    assert.is_nil(resp)
    assert.are.same({ "timeout", "outcome_unknown" }, { err.kind, err.code })
    assert.matches("; the request may have been applied$", err.message)
  end)
end)

describe("ghl.http encoding", function()
  local s
  setup(function() s = sim.start { "--faults" } end)
  teardown(function() s.stop() end)

  it("sorts keys in byte order, in C", function()
    assert.are.equal("A=4&B=5&a=2&a%20b=3&ab=6&b=1", http.encode { b = 1, a = 2, ["a b"] = 3, A = 4, B = 5, ab = 6 })
    assert.are.equal("", http.encode {})
  end)

  it("raises on a bad value again and again without leaking (checked under ASan)", function()
    for _ = 1, 200 do
      local ok, msg = pcall(http.encode, { a = "x", b = { {} } })
      assert.is_false(ok)
      assert.matches("parameter 'b': expected string, number, boolean or array, got table", msg)
      ok, msg = pcall(http.request, { url = s.url .. "/__fault/echo", query = { a = "x", f = print } })
      assert.is_false(ok)
      assert.matches("parameter 'f'", msg)
      ok, msg = pcall(http.request, { method = "POST", url = s.url .. "/__fault/echo", form = { z = { 1, {} } } })
      assert.is_false(ok)
      assert.matches("parameter 'z'", msg)
      ok = pcall(http.request, { url = s.url .. "/__fault/echo", query = { [1] = "x" } })
      assert.is_false(ok)
    end
    local v, err = http.encode { bad = "\xff" }
    assert.is_nil(v)
    assert.are.equal("encode", err.kind)
    assert.are.equal(0, http.pending())
  end)

  it("encodes JSON bodies and sorts keys with no table, require or cjson globals", function()
    local saved = { table = table, require = require, cjson = package.loaded.cjson }
    _G.table, _G.require, package.loaded.cjson = nil, nil, nil
    local ok, resp, err = pcall(http.request, { method = "POST", url = s.url .. "/__fault/echo",
      json = { name = "Zoë" }, query = { z = 1, a = 2 } })
    _G.table, _G.require, package.loaded.cjson = saved.table, saved.require, saved.cjson
    assert(ok, resp)
    assert(resp, tostring(err))
    local got = resp:json()
    assert.are.same({ name = "Zoë" }, cjson.decode(got.body))
    assert.matches("%?a=2&z=1$", resp.url)
  end)

  it("keeps the method it read even when the request table made it on the fly", function()
    -- a long string nothing else holds: the collections below free it
    local method = "REPORT-" .. ("X"):rep(40)
    local req = setmetatable({ url = s.url .. "/__fault/echo", body = "x" }, { __index = function(_, k)
      if k == "method" then return ("report-"):upper() .. ("x"):rep(40):upper() end
      if k == "headers" then collectgarbage(); collectgarbage() end   -- would free a method not copied
    end })
    local got = assert(assert(http.request(req)):json())
    assert.are.equal(method, got.method)
  end)
end)

describe("pagination", function()
  local s
  setup(function() s = sim.start { "--contacts", "40", "--faults", "--rate-max", "100000" } end)
  teardown(function() s.stop() end)
  before_each(function() forget(s) end)

  it("pulls pages in the caller's coroutine: walks inside ghl.parallel overlap", function()
    local c = client(s)
    chaos(s, { { method = "GET", path = "/contacts/", delay_ms = 300, times = 12 } })
    local fns = {}
    for t = 1, 4 do
      fns[t] = function()
        local ids, n = {}, 0
        for item in c:paginate("/contacts/", { limit = 13 + t }) do
          assert(not ids[item.id], "twice: " .. item.id)
          ids[item.id], n = true, n + 1
        end
        return n
      end
    end
    assert.are.same({ 40, 40, 40, 40 }, ghl.parallel(fns, { concurrency = 4 }))
    -- each walk: three pages, told apart by their limit
    local log = requests(s, { method = "GET", path = "/contacts/" })
    assert.are.equal(12, #log)
    local by = {}
    for _, e in ipairs(log) do
      local limit = tonumber(e.query:match("limit=(%d+)"))
      by[limit] = by[limit] or {}
      table.insert(by[limit], e)
      assert.are.equal(300, e.delayMs)
    end
    -- every walk had a page held by the simulator at the same time as
    -- another walk's: [at, at + delayMs) intersect (walks that blocked one
    -- another would follow each other, each page after the last answer)
    for limit = 14, 17 do
      assert.are.equal(3, #by[limit], "pages with limit " .. limit)
      local overlapped = 0
      for _, mine in ipairs(by[limit]) do
        for other, theirs in pairs(by) do
          if other ~= limit then
            for _, e in ipairs(theirs) do
              if e.at < mine.at + mine.delayMs and mine.at < e.at + e.delayMs then overlapped = overlapped + 1 end
            end
          end
        end
      end
      assert.is_true(overlapped >= 3, "the walk with limit " .. limit .. " overlapped " .. overlapped .. " times")
    end
  end)

  local function page(items, meta)
    local list = {}
    for i, id in ipairs(items) do list[i] = { id = id, firstName = id } end
    return cjson.encode { contacts = list, meta = meta }
  end

  local function walk(c, path, params, o)
    local n = 0
    local ok, err = ghl.try(function() for _ in c:paginate(path, params, o) do n = n + 1 end return true end)
    assert.is_nil(ok)
    return err, n
  end

  local traps = {
    { "a repeated startAfterId", "GET", "/contacts/", { limit = 2 }, nil, {
        page({ "a1", "a2" }, { startAfterId = "a2", startAfter = 2, nextPageUrl = "x" }),
        page({ "b1", "b2" }, { startAfterId = "a2", startAfter = 2, nextPageUrl = "x" }) },
      "GET /contacts/: the server sent the cursor startAfterId=a2 again %(after page 2%); the listing stops here rather than loop forever", 4 },
    { "a cursor the walk began with", "GET", "/contacts/", { limit = 2, startAfterId = "z9", startAfter = 9 }, nil, {
        page({ "a1", "a2" }, { startAfterId = "z9", startAfter = 9, nextPageUrl = "x" }) },
      "sent the cursor startAfterId=z9 again %(after page 1%)", 2 },
    { "a repeated pageToken", "GET", "/contacts/", { pageSize = 2 }, { style = "token", version = "2021-07-28" }, {
        cjson.encode { contacts = { { id = "a1" }, { id = "a2" } }, pagination = { hasNextPage = true, nextPageToken = "t1" } },
        cjson.encode { contacts = { { id = "b1" }, { id = "b2" } }, pagination = { hasNextPage = true, nextPageToken = "t1" } } },
      "the server sent the cursor pageToken=t1 again %(after page 2%)", 4 },
    { "a repeated searchAfter", "POST", "/contacts/search", { pageLimit = 2 }, nil, {
        cjson.encode { contacts = { { id = "a1" }, { id = "a2", searchAfter = { 5, "a2" } } }, total = 9 },
        cjson.encode { contacts = { { id = "b1" }, { id = "b2", searchAfter = { 5, "a2" } } }, total = 9 } },
      "POST /contacts/search: the server sent the cursor searchAfter=%[5,\"a2\"%] again %(after page 2%)", 4 },
    { "a next page with no cursor to ask for it", "GET", "/contacts/", { limit = 2 }, nil, {
        page({ "a1", "a2" }, { total = 9, nextPageUrl = "x" }) },
      "GET /contacts/: page 1 points to a next page but gives no startAfterId to ask for it", 2 },
    { "a counter the server ignores", "GET", "/contacts/", { limit = 2 }, { style = "skip" }, {
        page({ "a1", "a2" }), page({ "a1", "a2" }) },
      "page 2 holds the same items as page 1 %(the server ignores the paging parameters%)", 2 },
  }
  for _, trap in ipairs(traps) do
    local name, method, path, params, o, bodies, message, items = table.unpack(trap)
    it("ends on " .. name .. " with a one-line error", function()
      local rules = {}
      for i, b in ipairs(bodies) do rules[i] = { method = method, path = path, status = 200, body = b } end
      chaos(s, rules)
      local err, n = walk(client(s), path, params, o)
      assert.are.equal("pagination", err.kind)
      assert.matches(message, err.message)
      assert.is_nil(tostring(err):find("\n"))
      assert.are.equal(items, n)
    end)
  end

  for _, case in ipairs {
    { "a 204", 204, 1 }, { "an empty 200", 200, 1 }, { "an empty 200 after a full page", 200, 2 },
  } do
    local name, status, at = table.unpack(case)
    it("ends on " .. name .. " with a one-line error, not a traceback", function()
      local rules = {}
      if at == 2 then rules[1] = { method = "GET", path = "/contacts/", status = 200,
        body = page({ "a1", "a2" }, { startAfterId = "a2", startAfter = 2, nextPageUrl = "x" }) } end
      rules[#rules + 1] = { method = "GET", path = "/contacts/", status = status, body = "" }
      chaos(s, rules)
      local err, n = walk(client(s), "/contacts/", { limit = 2 })
      if status == 204 then
        assert.are.equal("pagination", err.kind)
        assert.are.equal(("GET /contacts/: page %d is an empty reply, not a JSON object"):format(at), err.message)
      else   -- the client itself refuses an empty answer to a GET
        assert.are.equal("decode", err.kind)
        assert.matches("empty reply where JSON was expected", err.message, 1, true)
      end
      assert.is_nil(tostring(err):find("\n"))
      assert.are.equal(at == 2 and 2 or 0, n)
    end)
  end

  it("ends `ghlua api --paginate` on a page served again with one line and exit 1", function()
    chaos(s, { { method = "GET", path = "/contacts/", status = 200, times = 5,
      body = page({ "a1", "a2" }, { startAfterId = "a2", startAfter = 2, nextPageUrl = "x" }) } })
    local home = os.tmpname()
    os.remove(home)
    finally(function() os.execute("rm -rf " .. run.quote(home)) end)
    local r = run.ghlua({ "api", "GET", "/contacts/", "-q", "locationId=" .. s.location, "-q", "limit=2", "--paginate" },
      { env = { GHL_TOKEN = s.token, GHLUA_API_BASE = s.url, GHLUA_HOME = home, no_proxy = sim.NO_PROXY,
        NO_PROXY = sim.NO_PROXY } })
    assert.are.equal(1, r.code)
    assert.matches("^ghlua: [^\n]*page 2 holds the same items as page 1[^\n]*\n$", r.err)
  end)

  it("still walks every style to the end", function()
    local c = client(s)
    local n = 0
    for _ in c:paginate("/contacts/", { limit = 7 }) do n = n + 1 end
    assert.are.equal(40, n)
    n = 0
    for _ in c:paginate("/contacts/search", { pageLimit = 9 }) do n = n + 1 end
    assert.are.equal(40, n)
    local pages = {}
    n = 0
    for _ in c:paginate("/contacts/", { limit = 15 }, { max = 32, on_page = function(k) pages[#pages + 1] = k end }) do
      n = n + 1
    end
    assert.are.equal(32, n)
    assert.are.same({ 15, 30 }, pages)
    local none = 0
    for _ in c:paginate("/contacts/", {}, { max = 0 }) do none = none + 1 end
    assert.are.equal(0, none)
  end)
end)
