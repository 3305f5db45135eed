-- client.observe: the hook through which the REPL sees requests (its
-- :explain, :curl, :scopes and :save), against the simulator.
local ghl = require "ghl"
local client = require "ghl.client"
local sim = require "support.sim"

-- Does v hold the string needle anywhere (keys and values, nested)?
local function holds(v, needle, seen)
  if type(v) == "string" then return v:find(needle, 1, true) ~= nil end
  if type(v) ~= "table" then return false end
  seen = seen or {}
  if seen[v] then return false end
  seen[v] = true
  for k, x in pairs(v) do
    if holds(k, needle, seen) or holds(x, needle, seen) then return true end
  end
  return false
end

describe("client.observe", function()
  local s
  setup(function() s = sim.start { "--contacts", "7" } end)
  teardown(function() if s then s.stop() end end)

  it("sees each request any client starts, even one that fails, until removed", function()
    local seen = {}
    local remove = client.observe(function(c, req) seen[#seen + 1] = { c = c, req = req } end)
    local finished = false
    finally(function() if not finished then remove() end end)
    local c = ghl.client { token = s.token, base = s.url, location = s.location }
    local d = ghl.client { token = s.token, base = s.url, location = s.location }
    c:get("/contacts/", { locationId = s.location, limit = 2 })
    d:request("GET", "/locations/{locationId}", { version = "2021-07-28" })
    assert.is_false(pcall(c.get, c, "/contacts/{contactId}", { contactId = "nope" }))
    local n = 0
    for _ in c:paginate("/contacts/", { locationId = s.location, limit = 3 }) do n = n + 1 end
    assert.are.equal(7, n)
    remove()
    finished = true
    c:get("/contacts/", { locationId = s.location, limit = 1 })

    assert.are.same({ c, "GET", "/contacts/" }, { seen[1].c, seen[1].req.method, seen[1].req.path })
    assert.are.same({ d, "GET", "/locations/{locationId}", "2021-07-28" },
      { seen[2].c, seen[2].req.method, seen[2].req.path, seen[2].req.version })
    assert.are.same({ c, "/contacts/{contactId}" }, { seen[3].c, seen[3].req.path })
    -- three pages of 3 (the last one short), each a request of its own
    assert.are.equal(3 + 3, #seen)
    for i = 4, #seen do assert.are.same({ c, "GET" }, { seen[i].c, seen[i].req.method }) end
  end)

  it("never hands the token over; the client's last request shows only its end", function()
    local reqs = {}
    local remove = client.observe(function(_, req) reqs[#reqs + 1] = req end)
    local c = ghl.client { token = s.token, base = s.url, location = s.location }
    local ok = pcall(c.post, c, "/contacts/", { firstName = "Obs", email = "obs@example.com" },
      { headers = { Authorization = "Bearer " .. s.token } })
    remove()
    assert.is_true(ok)
    assert.are.equal(1, #reqs)
    assert.is_false(holds(reqs[1], s.token))
    assert.is_false(holds(reqs[1], "obs@example.com"))   -- nor the body
    assert.are.same({ "POST", "/contacts/" }, { reqs[1].method, reqs[1].path })
    assert.are.equal("…" .. s.token:sub(-4), c.last.token_hint)
    assert.are.equal(201, c.last.status)
  end)
  it("c.last shows the last request whole, after an answer and after a refusal, and a record the caller kept stays its own", function()
    local c = ghl.client { token = s.token, base = s.url, location = s.location }
    c:get("/contacts/", { limit = 1 })
    local l = c.last
    assert.are.same({ "GET", s.url .. "/contacts/", 200, 1, "…" .. s.token:sub(-4) },
      { l.method, l.url, l.status, l.attempts, l.token_hint })
    assert.are.same({ limit = 1, locationId = s.location }, l.query)
    assert.is_string(l.version)
    assert.is_nil(l.error)
    assert.is_number(l.time)
    assert.is_number(l.rate.max)
    local first = l
    local ok, err = pcall(c.get, c, "/nope")
    assert.is_false(ok)
    assert.are.equal(404, err.status)
    l = c.last
    assert.are.same({ "GET", s.url .. "/nope", 404, 1 }, { l.method, l.url, l.status, l.attempts })
    assert.is_nil(l.query)
    assert.is_nil(l.op)
    assert.are.same({ s.url .. "/contacts/", 200, 1 }, { first.url, first.status, first.query.limit })
    assert.is_number(first.rate.max)
    -- a record the caller replaced is not written into: the next request makes its own
    local mine = { kept = true }
    c.last = mine
    c:get("/contacts/", { limit = 2 })
    assert.are.same({ kept = true }, mine)
    assert.are.equal(200, c.last.status)
    assert.are.equal(2, c.last.query.limit)
  end)
end)
