-- ghl.client fills a required locationId (or companyId) of a JSON body from
-- its context, as it does for query strings, and never replaces one the
-- caller gave: a table body, JSON text (opts.data), no body at all, and
-- bodies it must leave alone (a form, an array, a route without the field).
local ghl = require "ghl"
local sim = require "support.sim"
local cjson = require "cjson"

describe("ghl.client's required body fields", function()
  local s, c
  setup(function()
    s = sim.start { "--rate-max", "100000", "--contacts", "0" }
    c = ghl.client { token = s.token, location = s.location, base = s.url }
  end)
  teardown(function() s.stop() end)

  it("fills locationId into a table body and the record is made there", function()
    local fields = { firstName = "Filled", email = "filled@example.com" }
    local made = c:post("/contacts/", fields).contact
    assert.are.equal(s.location, made.locationId)
    assert.is_nil(fields.locationId)   -- the caller's table is not changed
    assert.are.equal(s.location, c:get("/contacts/{contactId}", { contactId = made.id }).contact.locationId)
  end)

  it("never replaces a locationId the caller gave, even null", function()
    local p = c:prepare("POST", "/contacts/", { body = { firstName = "K", locationId = "otherLocation000001" } })
    assert.are.same({ firstName = "K", locationId = "otherLocation000001" }, cjson.decode(p.body))
    local _, e = ghl.try(c.post, c, "/contacts/", { firstName = "K", locationId = "otherLocation000001" })
    assert.are.equal(403, e.status)   -- the simulator got the caller's location
    p = c:prepare("POST", "/contacts/", { data = '{"firstName":"N","locationId":null}' })
    assert.are.equal('{"firstName":"N","locationId":null}', p.body)
  end)

  it("appends it to JSON text, keeping the text as written", function()
    local p = c:prepare("POST", "/contacts/", { data = ' {"tags": [], "n": 1.50} \n' })
    assert.are.equal(' {"tags": [], "n": 1.50,"locationId":"' .. s.location .. '"}', p.body)
    p = c:prepare("POST", "/contacts/upsert", { data = "{ }" })
    assert.are.equal('{"locationId":"' .. s.location .. '"}', p.body)
    local made = cjson.decode(c:request("POST", "/contacts/", { data = '{"firstName":"Text"}', raw = true }).body)
    assert.are.equal(s.location, made.contact.locationId)
  end)

  it("makes a body of the field alone when there is none", function()
    local p = c:prepare("POST", "/contacts/", {})
    assert.are.same({ locationId = s.location }, cjson.decode(p.body))
  end)

  it("leaves alone what is not a JSON object, and routes that do not need it", function()
    assert.are.equal("[1,2]", c:prepare("POST", "/contacts/", { data = "[1,2]" }).body)
    assert.are.equal('"x"', c:prepare("POST", "/contacts/", { data = '"x"' }).body)
    local arr = setmetatable({ 1 }, require("ghl.jq").array_mt)
    assert.is_nil(rawget(c:build("POST", "/contacts/", { body = arr }).json, "locationId"))
    assert.is_nil(c:build("POST", "/contacts/", { form = { a = "b" } }).json)
    local req = c:build("PUT", "/contacts/abc", { body = { firstName = "P" } })   -- PUT refuses locationId
    assert.are.same({ firstName = "P" }, req.json)
    req = c:build("POST", "/contacts/abc/tags", { body = { tags = { "t" } } })
    assert.is_nil(req.json.locationId)
  end)

  it("fills companyId for an agency client", function()
    local agency = ghl.client { token = s.token, company = "5DP4iH6HLkQsiKESj6rh", base = s.url }
    local req = agency:build("POST", "/locations/", { body = { name = "New" } })
    assert.are.equal("5DP4iH6HLkQsiKESj6rh", req.json.companyId)
  end)
end)
