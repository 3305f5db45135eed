-- `ghlua sim` over real loopback HTTP, through ghl.http: the HighLevel
-- behaviours the rest of ghlua is tested against (Version and token checks,
-- location access, contacts, custom fields and values, pagination over 250
-- contacts, rate limits, validation errors), and the command itself.
package.path = "tests/lua/?.lua;" .. package.path
local http = require "ghl.http"
local cjson = require "cjson"
local sys = require "ghl.sys"
local sim = require "support.sim"
local run = require "support.run"

local LOC = "ve9EPM428h8vShlRW1KT"
local OTHER_LOC = "OtherLocation0000001"
local TOKEN = "sim_spec_token_0123456789abcdef"
local OTHER_TOKEN = "sim_spec_other_0123456789abcdef"

local function isnull(v) return v == nil or v == cjson.null end

-- One API call: returns resp, decoded body.
local function call(s, method, path, opts)
  opts = opts or {}
  local resp = assert(http.request { method = method, url = s.url .. path, query = opts.query,
    json = opts.json, body = opts.body,
    headers = opts.headers or s.headers(opts.token, opts.version), timeout = 10 })
  return resp, resp:json()
end

local function set_of(list, key)
  local t = {}
  for _, v in ipairs(list) do t[key and v[key] or v] = true end
  return t
end

describe("ghlua sim", function()
  local s, tokens_file
  setup(function()
    tokens_file = sim.tmpfile { "# spec tokens", OTHER_TOKEN .. " " .. OTHER_LOC, "" }
    s = sim.start { "--token", TOKEN, "--tokens", tokens_file, "--contacts", "20",
      "--faults", "--rate-max", "100000" }
  end)
  teardown(function()
    if s then s.stop() end
    os.remove(tokens_file)
  end)

  describe("announcement", function()
    it("writes the ready file with url, pid, location and token", function()
      assert.matches("^http://127%.0%.0%.1:%d+$", s.url)
      assert.are.equal(LOC, s.location)
      assert.are.equal(TOKEN, s.token)
      assert.is_true(s.pid > 0)
    end)

    it("generates a token when given none and never prints it in full", function()
      local s2 = sim.start {}
      local token = s2.token
      local f = io.open(s2.log)
      local out = f:read("a")
      f:close()
      s2.stop()
      assert.matches("^sim_%x+$", token)
      assert.truthy(out:find("ghlua sim: listening on " .. s2.url .. " (location " .. LOC .. ")", 1, true))
      assert.truthy(out:find("…" .. token:sub(-4), 1, true))
      assert.is_nil(out:find(token, 1, true))
    end)

    it("honours --location", function()
      local s2 = sim.start { "--location", "AbCdEfGhIjKlMnOpQrSt" }
      local resp = call(s2, "GET", "/contacts/", { query = { locationId = "AbCdEfGhIjKlMnOpQrSt" } })
      s2.stop()
      assert.are.equal("AbCdEfGhIjKlMnOpQrSt", s2.location)
      assert.are.equal(200, resp.status)
    end)

    it("stops cleanly on SIGTERM", function()
      local s2 = sim.start {}
      assert.is_true(s2.stop(), "the simulator did not exit through its clean path")
    end)

    it("rejects bad flags with status 2", function()
      local r = run.ghlua { "sim", "--tls" }
      assert.are.equal(2, r.code)
      assert.matches("%-%-tls needs %-%-cert F and %-%-key F", r.err)
      r = run.ghlua { "sim", "--rate-max", "0" }
      assert.are.equal(2, r.code)
      assert.matches("%-%-rate%-max must be an integer", r.err)
    end)
  end)

  describe("request checks", function()
    it("requires a Version header", function()
      local resp, body = call(s, "GET", "/contacts/", { headers = { Authorization = "Bearer " .. TOKEN },
        query = { locationId = LOC } })
      assert.are.equal(401, resp.status)
      assert.are.equal("version header was not found.", body.message)
      resp, body = call(s, "GET", "/contacts/", { version = "2022-01-01", query = { locationId = LOC } })
      assert.are.equal(401, resp.status)
      assert.are.equal("version header is invalid", body.message)
    end)

    it("accepts every published version", function()
      for _, v in ipairs { "2021-04-15", "2021-07-28", "2023-02-21", "v3" } do
        local resp = call(s, "GET", "/contacts/", { version = v, query = { locationId = LOC, limit = 1 } })
        assert.are.equal(200, resp.status, v)
      end
    end)

    it("answers 401 Invalid JWT without a known bearer token", function()
      for _, h in ipairs { { Version = "2021-07-28" },
                           { Version = "2021-07-28", Authorization = "Bearer nope" },
                           { Version = "2021-07-28", Authorization = TOKEN } } do
        local resp, body = call(s, "GET", "/contacts/", { headers = h, query = { locationId = LOC } })
        assert.are.equal(401, resp.status)
        assert.are.same({ 401, "Invalid JWT", "Unauthorized" }, { body.statusCode, body.message, body.error })
        assert.is_string(body.traceId)
      end
    end)

    it("answers 403 when the token belongs to another location", function()
      local msg = "The token does not have access to this location."
      local resp, body = call(s, "GET", "/contacts/", { query = { locationId = OTHER_LOC } })
      assert.are.same({ 403, msg, "Forbidden" }, { resp.status, body.message, body.error })
      resp, body = call(s, "POST", "/contacts/", { json = { locationId = OTHER_LOC, firstName = "X" } })
      assert.are.same({ 403, msg }, { resp.status, body.message })
      resp, body = call(s, "GET", "/locations/" .. OTHER_LOC .. "/customFields")
      assert.are.same({ 403, msg }, { resp.status, body.message })
      -- a contact of the default location, read with the other location's token
      local _, list = call(s, "GET", "/contacts/", { query = { locationId = LOC, limit = 1 } })
      resp, body = call(s, "GET", "/contacts/" .. list.contacts[1].id, { token = OTHER_TOKEN })
      assert.are.same({ 403, msg }, { resp.status, body.message })
      -- the other token works for its own location
      resp = call(s, "GET", "/contacts/", { token = OTHER_TOKEN, query = { locationId = OTHER_LOC } })
      assert.are.equal(200, resp.status)
    end)

    it("answers 404 Cannot METHOD /path for unknown routes", function()
      local resp, body = call(s, "GET", "/no/such/route")
      assert.are.same({ 404, "Cannot GET /no/such/route", "Not Found" }, { resp.status, body.message, body.error })
      resp, body = call(s, "PATCH", "/contacts/abc")
      assert.are.same({ 404, "Cannot PATCH /contacts/abc" }, { resp.status, body.message })
    end)

    it("answers 400 to a malformed JSON body", function()
      local resp, body = call(s, "POST", "/contacts/search", {
        body = '{"locationId": "' .. LOC .. '", ', headers = {
          Authorization = "Bearer " .. TOKEN, Version = "2021-07-28", ["Content-Type"] = "application/json" } })
      assert.are.equal(400, resp.status)
      assert.are.equal(400, body.statusCode)
      assert.is_string(body.message)
    end)
  end)

  describe("contacts", function()
    it("creates, reads, updates and deletes a contact", function()
      local resp, body = call(s, "POST", "/contacts/", { json = { locationId = LOC, firstName = "Zoë",
        lastName = "Ünal", email = "Zoe.Unal@Example.com", phone = "+1 415-555-0101", tags = { "New" },
        source = "spec" } })
      assert.are.equal(201, resp.status)
      local c = body.contact
      assert.matches("^%w+$", c.id)
      assert.are.equal(20, #c.id)
      assert.are.same({ LOC, "Zoë", "zoe.unal@example.com", "+14155550101", { "new" } },
        { c.locationId, c.firstName, c.email, c.phone, c.tags })
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", c.dateAdded)

      resp, body = call(s, "GET", "/contacts/" .. c.id)
      assert.are.equal(200, resp.status)
      assert.are.equal("Ünal", body.contact.lastName)

      resp, body = call(s, "PUT", "/contacts/" .. c.id, { json = { lastName = "Unal", city = "Lyon" } })
      assert.are.equal(200, resp.status)
      assert.is_true(body.succeded)
      assert.are.same({ "Unal", "Lyon", "zoe.unal@example.com" },
        { body.contact.lastName, body.contact.city, body.contact.email })

      resp, body = call(s, "DELETE", "/contacts/" .. c.id)
      assert.are.same({ 200, true }, { resp.status, body.succeded })
      resp = call(s, "GET", "/contacts/" .. c.id)
      assert.is_true(resp.status == 400 or resp.status == 404)
    end)

    it("rejects unknown and forbidden properties with a 422 message array", function()
      local _, created = call(s, "POST", "/contacts/", { json = { locationId = LOC, firstName = "Val" } })
      local id = created.contact.id
      local resp, body = call(s, "PUT", "/contacts/" .. id, { json = { gender = "male",
        companyName = "X", locationId = LOC, favouriteColour = "red", firstName = "Val" } })
      assert.are.equal(422, resp.status)
      assert.are.equal("Unprocessable Entity", body.error)
      assert.are.same({ "property companyName should not exist", "property favouriteColour should not exist",
        "property gender should not exist", "property locationId should not exist" }, body.message)
      resp, body = call(s, "POST", "/contacts/", { json = { firstName = "NoLocation" } })
      assert.are.equal(422, resp.status)
      assert.truthy(set_of(body.message)["locationId should not be empty"])
      resp, body = call(s, "POST", "/contacts/", { json = { locationId = LOC, email = "not-an-email", tags = "vip" } })
      assert.are.equal(422, resp.status)
      assert.are.same({ "email must be an email", "tags must be an array" }, body.message)
    end)

    it("refuses a duplicate email or phone and names the existing contact", function()
      local _, body = call(s, "POST", "/contacts/", { json = { locationId = LOC, firstName = "Dup", lastName = "One",
        email = "dup@example.com", phone = "(415) 555-0199" } })
      local id = body.contact.id
      local resp
      resp, body = call(s, "POST", "/contacts/", { json = { locationId = LOC, email = "DUP@example.com" } })
      assert.are.equal(400, resp.status)
      assert.are.equal("This location does not allow duplicated contacts.", body.message)
      assert.are.same({ contactId = id, contactName = "Dup One", matchingField = "email" }, body.meta)
      resp, body = call(s, "POST", "/contacts/", { json = { locationId = LOC, phone = "+14155550199" } })
      assert.are.equal(400, resp.status)
      assert.are.same({ id, "phone" }, { body.meta.contactId, body.meta.matchingField })

      resp, body = call(s, "GET", "/contacts/search/duplicate", { query = { locationId = LOC, email = "dup@example.com" } })
      assert.are.same({ 200, id }, { resp.status, body.contact.id })
      resp, body = call(s, "GET", "/contacts/search/duplicate", { query = { locationId = LOC, number = "+14155550199" } })
      assert.are.equal(id, body.contact.id)
      resp, body = call(s, "GET", "/contacts/search/duplicate", { query = { locationId = LOC, email = "none@example.com" } })
      assert.is_true(isnull(body.contact))
    end)

    it("upserts by email, then by phone", function()
      local resp, body = call(s, "POST", "/contacts/upsert", { json = { locationId = LOC,
        email = "upsert@example.com", firstName = "Up" } })
      assert.are.same({ 200, true }, { resp.status, body.new })
      assert.is_string(body.traceId)
      local id = body.contact.id
      resp, body = call(s, "POST", "/contacts/upsert", { json = { locationId = LOC,
        email = "UPSERT@example.com", lastName = "Sert", phone = "+14155550123" } })
      assert.are.same({ 200, false, id, "Up", "Sert" },
        { resp.status, body.new, body.contact.id, body.contact.firstName, body.contact.lastName })
      resp, body = call(s, "POST", "/contacts/upsert", { json = { locationId = LOC, phone = "+1 415 555 0123", city = "Oslo" } })
      assert.are.same({ false, id, "Oslo" }, { body.new, body.contact.id, body.contact.city })
    end)

    it("adds and removes tags", function()
      local _, body = call(s, "POST", "/contacts/", { json = { locationId = LOC, firstName = "Tag", tags = { "a" } } })
      local id = body.contact.id
      local resp
      resp, body = call(s, "POST", "/contacts/" .. id .. "/tags", { json = { tags = { "b", "c", "a" } } })
      assert.is_true(resp.status == 200 or resp.status == 201)
      assert.are.same({ "a", "b", "c" }, body.tags)
      resp, body = call(s, "DELETE", "/contacts/" .. id .. "/tags", { json = { tags = { "a", "c" } } })
      assert.are.same({ 200, { "b" } }, { resp.status, body.tags })
      _, body = call(s, "GET", "/contacts/" .. id)
      assert.are.same({ "b" }, body.contact.tags)
      resp, body = call(s, "POST", "/contacts/" .. id .. "/tags", { json = { tags = "b" } })
      assert.are.equal(422, resp.status)
      assert.is_table(body.message)
    end)
  end)

  describe("custom fields on contacts", function()
    local fields
    setup(function()
      local _, body = call(s, "GET", "/locations/" .. LOC .. "/customFields", { query = { model = "contact" } })
      fields = {}
      for _, f in ipairs(body.customFields) do fields[f.fieldKey] = f end
    end)

    it("accepts key (bare or prefixed) and id, stores and returns {id, value}", function()
      local budget, source, color = fields["contact.budget"], fields["contact.lead_source"], fields["contact.favorite_color"]
      assert.are.equal("NUMERICAL", budget.dataType)
      local resp, body = call(s, "POST", "/contacts/", { json = { locationId = LOC, firstName = "Custom",
        customFields = { { key = "budget", field_value = 1200 }, { key = "contact.lead_source", value = "web" },
          { id = color.id, fieldValue = "Red" } } } })
      assert.are.equal(201, resp.status)
      local id = body.contact.id
      local function by_id(list)
        local t = {}
        for _, f in ipairs(list) do
          local keys = {}
          for k in pairs(f) do keys[#keys + 1] = k end
          table.sort(keys)
          assert.are.same({ "id", "value" }, keys)
          t[f.id] = f.value
        end
        return t
      end
      local want = { [budget.id] = 1200, [source.id] = "web", [color.id] = "Red" }
      assert.are.same(want, by_id(body.contact.customFields))
      _, body = call(s, "GET", "/contacts/" .. id)
      assert.are.same(want, by_id(body.contact.customFields))

      _, body = call(s, "PUT", "/contacts/" .. id, { json = { customFields = { { id = budget.id, field_value = 99 } } } })
      want[budget.id] = 99
      assert.are.same(want, by_id(body.contact.customFields))
    end)

    it("rejects an unknown custom field key or id", function()
      local resp, body = call(s, "POST", "/contacts/", { json = { locationId = LOC,
        customFields = { { key = "no_such_field", field_value = "x" } } } })
      assert.is_true(resp.status == 400 or resp.status == 422)
      assert.matches("no_such_field", type(body.message) == "table" and table.concat(body.message, " ") or body.message)
      resp = call(s, "POST", "/contacts/", { json = { locationId = LOC,
        customFields = { { id = "NoSuchFieldId0000000", field_value = "x" } } } })
      assert.is_true(resp.status == 400 or resp.status == 422)
    end)
  end)

  describe("custom field and custom value catalogues", function()
    local base = "/locations/" .. LOC

    it("lists the seeded fields by model", function()
      local _, body = call(s, "GET", base .. "/customFields", { query = { model = "contact" } })
      local keys = set_of(body.customFields, "fieldKey")
      assert.truthy(keys["contact.budget"] and keys["contact.lead_source"])
      assert.is_nil(keys["opportunity.deal_size"])
      for _, f in ipairs(body.customFields) do
        assert.are.same({ LOC, "contact" }, { f.locationId, f.model })
        assert.is_table(f.picklistOptions)
      end
      _, body = call(s, "GET", base .. "/customFields", { query = { model = "all" } })
      assert.truthy(set_of(body.customFields, "fieldKey")["opportunity.deal_size"])
    end)

    it("creates, reads, updates and deletes a custom field", function()
      local resp, body = call(s, "POST", base .. "/customFields", { json = { name = "Pet Name", dataType = "TEXT",
        placeholder = "Rex" } })
      assert.are.equal(201, resp.status)
      local f = body.customField
      assert.are.same({ "Pet Name", "contact.pet_name", "TEXT", "Rex", LOC },
        { f.name, f.fieldKey, f.dataType, f.placeholder, f.locationId })
      resp, body = call(s, "GET", base .. "/customFields/" .. f.id)
      assert.are.same({ 200, "contact.pet_name" }, { resp.status, body.customField.fieldKey })
      resp, body = call(s, "PUT", base .. "/customFields/" .. f.id, { json = { name = "Pet's Name" } })
      assert.are.same({ 200, "Pet's Name", "contact.pet_name" },
        { resp.status, body.customField.name, body.customField.fieldKey })
      -- usable on a contact at once, by its key
      resp = call(s, "POST", "/contacts/", { json = { locationId = LOC,
        customFields = { { key = "pet_name", field_value = "Rex" } } } })
      assert.are.equal(201, resp.status)
      resp, body = call(s, "DELETE", base .. "/customFields/" .. f.id)
      assert.are.same({ 200, true }, { resp.status, body.succeded })
      resp = call(s, "GET", base .. "/customFields/" .. f.id)
      assert.are.equal(404, resp.status)
      resp, body = call(s, "POST", base .. "/customFields", { json = { name = "No Type" } })
      assert.are.equal(422, resp.status)
      assert.is_table(body.message)
    end)

    it("creates, reads, updates and deletes a custom value", function()
      local resp, body = call(s, "POST", base .. "/customValues", { json = { name = "Office Hours", value = "9-5" } })
      assert.are.equal(201, resp.status)
      local v = body.customValue
      assert.are.same({ "Office Hours", "{{ custom_values.office_hours }}", "9-5", LOC },
        { v.name, v.fieldKey, v.value, v.locationId })
      _, body = call(s, "GET", base .. "/customValues")
      assert.truthy(set_of(body.customValues, "id")[v.id])
      resp, body = call(s, "PUT", base .. "/customValues/" .. v.id, { json = { name = "Office Hours", value = "8-4" } })
      assert.are.same({ 200, "8-4" }, { resp.status, body.customValue.value })
      _, body = call(s, "GET", base .. "/customValues/" .. v.id)
      assert.are.equal("8-4", body.customValue.value)
      resp, body = call(s, "DELETE", base .. "/customValues/" .. v.id)
      assert.are.same({ 200, true }, { resp.status, body.succeded })
      resp = call(s, "GET", base .. "/customValues/" .. v.id)
      assert.are.equal(404, resp.status)
      resp = call(s, "POST", base .. "/customValues", { json = { name = "No value" } })
      assert.are.equal(422, resp.status)
    end)
  end)

  describe("faults and statistics", function()
    it("serves the fault routes without Version or token", function()
      local resp = assert(http.request { url = s.url .. "/__fault/status", query = { code = 503 } })
      assert.are.same({ 503, 503 }, { resp.status, resp:json().statusCode })
      resp = assert(http.request { url = s.url .. "/__fault/html" })
      assert.matches("^text/html", resp.headers["content-type"])
      resp = assert(http.request { url = s.url .. "/__fault/big", query = { bytes = 1000 } })
      assert.are.equal(1000, #resp.body)
      resp = assert(http.request { method = "POST", url = s.url .. "/__fault/echo", query = { q = "a b&c" }, body = "hi" })
      local echo = resp:json()
      assert.are.same({ "POST", "/__fault/echo", "a b&c", "hi" }, { echo.method, echo.path, echo.query.q, echo.body })
    end)

    it("counts requests and records the Version seen per family", function()
      call(s, "GET", "/contacts/", { version = "2021-04-15", query = { locationId = LOC, limit = 1 } })
      call(s, "GET", "/locations/" .. LOC .. "/customValues", { version = "2021-07-28" })
      local resp = assert(http.request { url = s.url .. "/__sim/stats" })
      local st = resp:json()
      assert.are.equal("2021-04-15", st.lastVersion.contacts)
      assert.are.equal("2021-07-28", st.lastVersion.locations)
      assert.is_true(st.versions.contacts["2021-04-15"] >= 1)
      assert.is_true(st.requests > 10)
      assert.is_true(st.status["200"] > 0 and st.status["401"] > 0 and st.status["403"] > 0)
      assert.is_true(st.tokenKinds.static > 0)
      assert.are.equal(0, st.oauth.token_received)
    end)
  end)

  describe("chaos rules after the handler, and raw bodies", function()
    local function set(rules)
      return assert(http.request { method = "PUT", url = s.url .. "/__sim/chaos", json = { rules = rules } })
    end
    local function log(method, path)
      return assert(http.request { url = s.url .. "/__sim/requests", query = { method = method, path = path } })
        :json().requests
    end
    before_each(function()
      assert(http.request { method = "DELETE", url = s.url .. "/__sim/chaos" })
      assert(http.request { method = "DELETE", url = s.url .. "/__sim/requests" })
    end)
    after_each(function()
      assert(http.request { method = "DELETE", url = s.url .. "/__sim/chaos" })
    end)

    it("lets the request take effect, then answers with the rule's status instead, and logs what it handled", function()
      local before = s.stats().locations[LOC].contacts
      assert.are.equal(200, set { { method = "POST", path = "/contacts/", status = 502, after = true } }.status)
      local resp, body = call(s, "POST", "/contacts/", { json = { locationId = LOC, firstName = "After" } })
      assert.are.same({ 502, 502 }, { resp.status, body.statusCode })
      assert.are.equal(before + 1, s.stats().locations[LOC].contacts)
      local e = log("POST", "/contacts/")[1]
      assert.are.same({ 502, 201, true }, { e.status, e.handled, e.chaos })
      -- a rule without after never lets it through
      set { { method = "POST", path = "/contacts/", status = 502 } }
      call(s, "POST", "/contacts/", { json = { locationId = LOC, firstName = "Before" } })
      assert.are.equal(before + 1, s.stats().locations[LOC].contacts)
      assert.is_nil(log("POST", "/contacts/")[2].handled)
    end)

    it("resets the connection once the handler ran", function()
      local before = s.stats().locations[LOC].contacts
      set { { method = "POST", path = "/contacts/", reset = true, after = true } }
      -- on a connection of its own (idempotent = true would let libcurl retry a reused one)
      local resp, err = http.request { method = "POST", url = s.url .. "/contacts/", headers = s.headers(TOKEN),
        json = { locationId = LOC, firstName = "Reset" }, fresh = true }
      assert.is_nil(resp)
      assert.are.equal("network", err.kind)
      assert.are.equal(before + 1, s.stats().locations[LOC].contacts)
      local e = log("POST", "/contacts/")[1]
      assert.are.same({ "reset", 201 }, { e.status, e.handled })
    end)

    it("sends a raw body with the rule's status: empty, or any text", function()
      set { { method = "GET", path = "/contacts/", status = 204, body = "" },
            { method = "GET", path = "/contacts/", status = 200, body = "" },
            { method = "GET", path = "/contacts/", status = 200, body = '{"contacts":[]}', headers = { ["X-Sim"] = "1" } } }
      local q = { query = { locationId = LOC, limit = 1 } }
      local r1 = assert(http.request { url = s.url .. "/contacts/", query = q.query, headers = s.headers(TOKEN) })
      local r2 = assert(http.request { url = s.url .. "/contacts/", query = q.query, headers = s.headers(TOKEN) })
      local r3 = assert(http.request { url = s.url .. "/contacts/", query = q.query, headers = s.headers(TOKEN) })
      assert.are.same({ 204, "" }, { r1.status, r1.body })
      assert.are.same({ 200, "" }, { r2.status, r2.body })
      assert.are.same({ 200, '{"contacts":[]}', "1" }, { r3.status, r3.body, r3.headers["x-sim"] })
      assert.is_string(r3.headers["x-ratelimit-remaining"])
    end)

    it("refuses after and body where they mean nothing", function()
      for _, bad in ipairs {
        { path = "/contacts/", delay_ms = 10, after = true },
        { path = "/contacts/", status = 503, after = "yes" },
        { path = "/contacts/", reset = true, body = "" },
        { path = "/contacts/", status = 200, body = { a = 1 } },
        { path = "/contacts/", status = 200, body = "", message = "x" },
      } do
        local resp = set { bad }
        assert.are.equal(400, resp.status, cjson.encode(bad))
      end
    end)
  end)
end)

describe("ghlua sim pagination over 250 contacts", function()
  local s
  setup(function() s = sim.start { "--contacts", "250", "--seed", "7", "--rate-max", "100000" } end)
  teardown(function() if s then s.stop() end end)

  local function check_complete(ids)
    assert.are.equal(250, #ids)
    local seen = {}
    for _, id in ipairs(ids) do
      assert.is_nil(seen[id], "duplicate " .. id)
      seen[id] = true
    end
  end

  it("pages with page and pageLimit, in a stable order", function()
    local ids, page, total, last_added = {}, 1, nil, ""
    repeat
      local resp, body = call(s, "POST", "/contacts/search", { json = { locationId = LOC, page = page, pageLimit = 7 } })
      assert.are.equal(200, resp.status)
      total = body.total
      for _, c in ipairs(body.contacts) do
        assert.is_true(c.dateAdded >= last_added)
        last_added = c.dateAdded
        assert.is_table(c.searchAfter)
        ids[#ids + 1] = c.id
      end
      page = page + 1
    until #body.contacts < 7
    assert.are.equal(250, total)
    check_complete(ids)
  end)

  it("pages deep with searchAfter, in any sort", function()
    for _, sort in ipairs { {}, { { field = "dateUpdated", direction = "desc" } },
                            { { field = "lastName", direction = "asc" } } } do
      local ids, after = {}, nil
      for _ = 1, 10 do
        local _, body = call(s, "POST", "/contacts/search", { json = { locationId = LOC, pageLimit = 100,
          sort = #sort > 0 and sort or nil, searchAfter = after } })
        if #body.contacts == 0 then break end
        for _, c in ipairs(body.contacts) do ids[#ids + 1] = c.id end
        after = body.contacts[#body.contacts].searchAfter
      end
      check_complete(ids)
    end
  end)

  it("filters by tag and email", function()
    local _, body = call(s, "POST", "/contacts/search", { json = { locationId = LOC, pageLimit = 100,
      filters = { { field = "tags", operator = "eq", value = "vip" } } } })
    assert.are.equal(25, body.total)
    for _, c in ipairs(body.contacts) do assert.truthy(set_of(c.tags).vip) end
    local email = body.contacts[1].email
    _, body = call(s, "POST", "/contacts/search", { json = { locationId = LOC,
      filters = { { field = "email", operator = "eq", value = email:upper() } } } })
    assert.are.same({ 1, email }, { body.total, body.contacts[1].email })
  end)

  it("validates pageLimit and the search body", function()
    local resp, body = call(s, "POST", "/contacts/search", { json = { locationId = LOC, pageLimit = 101 } })
    assert.are.equal(422, resp.status)
    assert.are.same({ "pageLimit must not be greater than 100" }, body.message)
    resp, body = call(s, "POST", "/contacts/search", { json = { locationId = LOC, pageSize = 10 } })
    assert.are.same({ 422, { "property pageSize should not exist" } }, { resp.status, body.message })
  end)

  it("pages the deprecated list by following meta.nextPageUrl", function()
    local ids, url, pages = {}, nil, 0
    local resp, body = call(s, "GET", "/contacts/", { query = { locationId = LOC, limit = 9 } })
    while true do
      assert.are.equal(200, resp.status)
      pages = pages + 1
      assert.are.equal(250, body.meta.total)
      assert.are.equal(pages, body.meta.currentPage)
      for _, c in ipairs(body.contacts) do ids[#ids + 1] = c.id end
      url = body.meta.nextPageUrl
      if isnull(url) then break end
      assert.are.equal(s.url .. "/contacts/?", url:sub(1, #s.url + 11))
      resp = assert(http.request { url = url, headers = s.headers() })
      body = resp:json()
    end
    assert.are.equal(28, pages)
    assert.is_true(isnull(body.meta.nextPage))
    check_complete(ids)
  end)

  it("pages the deprecated list with startAfterId and startAfter", function()
    local ids, query = {}, { locationId = LOC, limit = 100 }
    for _ = 1, 10 do
      local _, body = call(s, "GET", "/contacts/", { query = query })
      if #body.contacts == 0 then break end
      for _, c in ipairs(body.contacts) do ids[#ids + 1] = c.id end
      query = { locationId = LOC, limit = 100, startAfterId = body.meta.startAfterId,
        startAfter = string.format("%d", body.meta.startAfter) }
      if isnull(body.meta.nextPageUrl) then break end
    end
    check_complete(ids)
    local resp, body = call(s, "GET", "/contacts/", { query = { locationId = LOC, limit = 101 } })
    assert.are.same({ 422, { "limit must not be greater than 100" } }, { resp.status, body.message })
  end)

  it("has no /__fault/ routes without --faults", function()
    local resp = assert(http.request { url = s.url .. "/__fault/html" })
    assert.are.equal(404, resp.status)
  end)
end)

describe("ghlua sim rate limits", function()
  local RATE_HEADERS = { "x-ratelimit-limit-daily", "x-ratelimit-daily-remaining",
    "x-ratelimit-interval-milliseconds", "x-ratelimit-max", "x-ratelimit-remaining" }

  it("sends the five headers and answers 429 past --rate-max", function()
    local s = sim.start { "--rate-max", "3", "--rate-interval-ms", "60000" }
    local got = {}
    for i = 1, 4 do
      -- an error after auth counts and carries the headers too
      local path = i == 2 and "/contacts/NoSuchContact0000000" or "/contacts/"
      local resp, body = call(s, "GET", path, { query = { locationId = LOC, limit = 1 } })
      for _, h in ipairs(RATE_HEADERS) do assert.is_string(resp.headers[h], h) end
      got[i] = { resp.status, resp.headers["x-ratelimit-remaining"], body.statusCode }
    end
    s.stop()
    assert.are.same({ 200, "2", nil }, { got[1][1], got[1][2], got[1][3] })
    assert.are.same({ "1" }, { got[2][2] })
    assert.are.same({ 200, "0" }, { got[3][1], got[3][2] })
    assert.are.same({ 429, "0", 429 }, got[4])
  end)

  it("reports the limits it was given", function()
    local s = sim.start { "--rate-max", "7", "--rate-interval-ms", "1234", "--rate-daily", "999" }
    local resp = call(s, "GET", "/contacts/", { query = { locationId = LOC, limit = 1 } })
    s.stop()
    assert.are.same({ "999", "998", "1234", "7", "6" }, {
      resp.headers["x-ratelimit-limit-daily"], resp.headers["x-ratelimit-daily-remaining"],
      resp.headers["x-ratelimit-interval-milliseconds"], resp.headers["x-ratelimit-max"],
      resp.headers["x-ratelimit-remaining"] })
  end)

  it("opens a new window after --rate-interval-ms", function()
    local s = sim.start { "--rate-max", "2", "--rate-interval-ms", "300" }
    local statuses = {}
    for i = 1, 3 do statuses[i] = call(s, "GET", "/contacts/", { query = { locationId = LOC, limit = 1 } }).status end
    require("support.fixture").clock(s, { advance = 0.3 })   -- the simulator's clock
    local status = call(s, "GET", "/contacts/", { query = { locationId = LOC, limit = 1 } }).status
    s.stop()
    assert.are.same({ 200, 200, 429 }, statuses)
    assert.are.equal(200, status)
  end)

  it("answers 429 with X-RateLimit-Daily-Remaining 0 once the day is spent", function()
    local s = sim.start { "--rate-daily", "2" }
    local last
    for _ = 1, 3 do last = call(s, "GET", "/contacts/", { query = { locationId = LOC, limit = 1 } }) end
    local stats = assert(http.request { url = s.url .. "/__sim/stats" }):json()
    s.stop()
    assert.are.equal(429, last.status)
    assert.are.equal("0", last.headers["x-ratelimit-daily-remaining"])
    assert.are.equal(429, last:json().statusCode)
    assert.are.equal(1, stats.rateLimited)
  end)
end)

describe("ghlua sim runs with the same --seed", function()
  -- A run's contact ids (the first page) and the traceIds of a few error answers.
  local function sample()
    local s = sim.start { "--token", TOKEN, "--contacts", "5", "--seed", "11" }
    local ids, traces = {}, {}
    local ok, err = pcall(function()
      local _, body = call(s, "GET", "/contacts/", { query = { locationId = LOC, limit = "5" } })
      for _, c in ipairs(body.contacts) do ids[#ids + 1] = c.id end
      for _ = 1, 3 do
        local resp, e = call(s, "GET", "/contacts/nope-nope")
        assert.is_true(resp.status >= 400)
        traces[#traces + 1] = e.traceId
      end
    end)
    s.stop()
    assert(ok, err)
    return ids, traces
  end

  it("seed the same data, and give traceIds that are new each run", function()
    local ids1, t1 = sample()
    local ids2, t2 = sample()
    assert.are.equal(5, #ids1)
    assert.are.same(ids1, ids2)
    local seen = {}
    for _, t in ipairs { t1[1], t1[2], t1[3], t2[1], t2[2], t2[3] } do
      assert.matches("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$", t)
      assert.is_nil(seen[t], "traceId seen twice: " .. t)
      seen[t] = true
    end
  end)
end)

describe("ghlua sim's JWTs", function()
  local crypto = require "ghl.crypto"

  -- The payload of a JWT as text (base64url decoded).
  local function payload(jwt)
    local p = assert(jwt:match("^[^.]+%.([^.]+)%."), "not a JWT: " .. tostring(jwt))
    p = p:gsub("-", "+"):gsub("_", "/")
    return assert(crypto.base64_decode(p .. ("="):rep((4 - #p % 4) % 4)))
  end

  it("carry iat and exp as whole seconds", function()
    local oauth = require "support.oauth"
    local o = oauth.start { "--auto-approve", "--token-ttl", "3600" }
    finally(o.stop)
    o.add_app()
    assert.are.equal(0, o.login().code)
    local r = o.lua([[
      local row = require('ghl.store').open():find_tokens{}[1]
      print(row.access_token)
      print(row.refresh_token)
    ]])
    assert.are.equal(0, r.code, r.err)
    local access, refresh = r.out:match("^(%S+)\n(%S+)\n$")
    for _, t in ipairs { { access, 3600 }, { refresh, 365 * 86400 } } do
      local text = payload(t[1])
      local iat, exp = text:match('"iat":(%-?[%d.eE+]+)[,}]'), text:match('"exp":(%-?[%d.eE+]+)[,}]')
      assert.matches("^%d+$", iat, text)
      assert.matches("^%d+$", exp, text)
      assert.is_true(math.abs(tonumber(iat) - sys.time()) < 60, text)
      -- exp is the end of the token's life, rounded down to a second
      local life = math.tointeger(tonumber(exp)) - math.tointeger(tonumber(iat))
      assert.are.equal(t[2], life, text)
    end
  end)
end)
