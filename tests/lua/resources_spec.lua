-- The resource modules (ghl.contacts, ghl.custom_fields, ...) against the
-- simulator: custom fields by key in both directions, checked in the
-- simulator's stored contact by field id; the schema cache in the store;
-- duplicates as values; the other families; Version and scopes from the
-- operations table; the client as method receiver; the dry run.
local ghl = require "ghl"
local sim = require "support.sim"
local run = require "support.run"
local http = require "ghl.http"
local store = require "ghl.store"
local CF = require "ghl.custom_fields"
local R = require "ghl.resource"

local s, c, home

-- Raw API calls that bypass the library, to see what the simulator stored.
local function raw(method, path, body)
  local resp = assert(http.request { method = method, url = s.url .. path, headers = s.headers(),
                                     json = body })
  return assert(resp:json()), resp.status
end

-- The location's field ids by fieldKey, straight from the catalogue.
local function field_ids()
  local ids = {}
  for _, f in ipairs(raw("GET", "/locations/" .. s.location .. "/customFields").customFields) do
    ids[f.fieldKey] = f.id
  end
  return ids
end

-- The stored contact's custom values by field id.
local function stored(id)
  local t = {}
  for _, f in ipairs(raw("GET", "/contacts/" .. id).contact.customFields) do t[f.id] = f.value end
  return t
end

local function requests(q)
  return assert(assert(http.request { url = s.url .. "/__sim/requests", query = q }):json()).requests
end

local function clear_log()
  assert(http.request { method = "DELETE", url = s.url .. "/__sim/requests" })
end

local function writes()
  local n = 0
  for _, r in ipairs(requests()) do
    if r.method ~= "GET" and not r.path:find("/search$") then n = n + 1 end
  end
  return n
end

setup(function()
  s = sim.start { "--contacts", "30", "--opportunities", "12" }
  home = os.tmpname()
  os.remove(home)
  CF.db = assert(store.open(home .. "/ghlua.db"))
  c = ghl.client { token = s.token, base = s.url, location = s.location }
end)

teardown(function()
  CF.db:close()
  CF.db = nil
  s.stop()
  os.execute("rm -rf " .. run.quote(home))
end)

describe("custom fields by key", function()
  it("sets them on create, from a map, stored by field id", function()
    local ids = field_ids()
    local ct = ghl.contacts.create(c, { email = "key-create@example.com", firstName = "Key",
      customFields = { budget = 5000, lead_source = "ads" } })
    local st = stored(ct.id)
    assert.are.equal(5000, math.tointeger(st[ids["contact.budget"]]))
    assert.are.equal("ads", st[ids["contact.lead_source"]])
  end)

  it("sets them on upsert and update, from arrays of {key=} and {id=}, and from full keys", function()
    local ids = field_ids()
    local ct, created = ghl.contacts.upsert(c, { email = "key-upsert@example.com",
      customFields = { { key = "favorite_color", value = "Green" }, { key = "contact.budget", field_value = 12 } } })
    assert.is_true(created)
    local st = stored(ct.id)
    assert.are.equal("Green", st[ids["contact.favorite_color"]])
    assert.are.equal(12, math.tointeger(st[ids["contact.budget"]]))
    local again, created2 = ghl.contacts.upsert(c, { email = "key-upsert@example.com", customFields = { budget = 13 } })
    assert.are.same({ ct.id, false }, { again.id, created2 })
    assert.are.equal(13, math.tointeger(stored(ct.id)[ids["contact.budget"]]))
    ghl.contacts.update(c, ct.id, { customFields = { { id = ids["contact.lead_source"], value = "referral" },
                                                     { key = "Favorite Color", value = "Blue" } } })
    st = stored(ct.id)
    assert.are.equal("referral", st[ids["contact.lead_source"]])
    assert.are.equal("Blue", st[ids["contact.favorite_color"]])
    assert.are.equal(13, math.tointeger(st[ids["contact.budget"]]))
  end)

  it("refuses an unknown key with the location's real keys, sending nothing", function()
    clear_log()
    local _, err = ghl.try(ghl.contacts.create, c, { email = "nokey@example.com", customFields = { budgett = 1 } })
    assert.are.same({ "field", "unknown_custom_field", "budgett" }, { err.kind, err.code, err.key })
    assert.matches("unknown contact custom field key 'budgett' in location " .. s.location, err.message)
    assert.matches("budget, favorite_color, lead_source", err.hint)
    assert.are.equal(0, writes())
    -- an opportunity key is not a contact key
    local _, err2 = ghl.try(ghl.contacts.create, c, { email = "nokey@example.com", customFields = { deal_size = 1 } })
    assert.are.equal("unknown_custom_field", err2.code)
  end)

  it("decorates every read with key, fieldKey and name", function()
    local ct = ghl.contacts.create(c, { email = "decorated@example.com", customFields = { budget = 7, lead_source = "x" } })
    local function check(contact)
      assert.is_true(#contact.customFields >= 2)
      for _, f in ipairs(contact.customFields) do
        assert.is_string(f.key)
        assert.are.equal("contact." .. f.key, f.fieldKey)
        assert.is_string(f.name)
      end
      local v = ghl.contacts.values(contact)
      assert.are.same({ 7, "x" }, { math.tointeger(v.budget), v.lead_source })
    end
    check(ct)
    check(ghl.contacts.get(c, ct.id))
    local byemail = ghl.contacts.find_by_email(c, "decorated@example.com")
    check(byemail)
    local found
    for x in ghl.contacts.search(c, { query = "decorated@" }) do found = x end
    check(found)
    local by_name = ghl.custom_fields.by_name(c, "lead source")
    assert.are.same({ "lead_source", "Lead Source" }, { by_name.key, by_name.name })
    assert.are.equal(by_name.id, ghl.custom_fields.by_key(c, "contact.lead_source").id)
    assert.is_nil(ghl.custom_fields.by_key(c, "nope"))
  end)

  it("caches the schema in memory and in the store, with a TTL", function()
    local function catalogue_reads()
      return #requests { method = "GET", path = "/locations/" .. s.location .. "/customFields" }
    end
    local budget_id = field_ids()["contact.budget"]
    CF.invalidate(c)
    clear_log()
    for _ = 1, 3 do ghl.contacts.create(c, { customFields = { budget = 1 } }) end
    assert.are.equal(1, catalogue_reads())
    -- another process (whose client keeps the schema in the store) reads
    -- the cache from the store, not the API
    local code = ([[
      local ghl = require "ghl"
      local c = ghl.client { token = %q, base = %q, location = %q, schema_cache = "store" }
      print(ghl.custom_fields.by_key(c, "budget").id)
    ]]):format(s.token, s.url, s.location)
    local r = run.ghlua({ "-e", code }, { env = { GHLUA_HOME = home } })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(budget_id .. "\n", r.out)
    assert.are.equal(1, catalogue_reads())
    -- past the TTL it is read again
    local ttl = CF.TTL
    CF.TTL = -1
    ghl.custom_fields.by_key(c, "budget")
    CF.TTL = ttl
    assert.are.equal(2, catalogue_reads())
    -- a field made elsewhere is found by fetching the schema once more
    raw("POST", "/locations/" .. s.location .. "/customFields", { name = "Shoe Size", dataType = "NUMERICAL" })
    local ct = ghl.contacts.create(c, { customFields = { shoe_size = 44 } })
    assert.are.equal(3, catalogue_reads())
    assert.are.equal("shoe_size", ct.customFields[1].key)
  end)

  it("creates fields and invalidates the cache", function()
    local f = ghl.custom_fields.create(c, { name = "Plan Tier", dataType = "TEXT" })
    assert.are.same({ "plan_tier", "contact.plan_tier" }, { f.key, f.fieldKey })
    assert.are.equal(f.id, ghl.custom_fields.by_key(c, "plan_tier").id)
    local listed = ghl.custom_fields.list(c, { model = "opportunity" })
    assert.are.same({ "deal_size" }, { listed[1].key })
  end)
end)

describe("ghl.contacts", function()
  it("turns a duplicate-contact error into a value with the existing id", function()
    local first = ghl.contacts.create(c, { email = "dup-value@example.com" })
    local again, dup = ghl.contacts.create(c, { email = "DUP-value@example.com" })
    assert.is_nil(again)
    assert.is_true(ghl.contacts.is_duplicate(dup))
    assert.are.same({ first.id, "email", 400 }, { dup.id, dup.field, dup.error.status })
    assert.matches(first.id, tostring(dup))
  end)

  it("finds by email and phone, tags, notes, deletes", function()
    local ct = ghl.contacts.create(c, { email = "misc@example.com", phone = "+1 555 777 0001", tags = { "a" } })
    assert.are.equal(ct.id, ghl.contacts.find_by_phone(c, "+15557770001").id)
    assert.is_nil(ghl.contacts.find_by_email(c, "nobody@example.com"))
    assert.are.same({ "a", "b", "c" }, ghl.contacts.add_tags(c, ct.id, { "b", "c" }))
    assert.are.same({ "a", "c" }, ghl.contacts.remove_tags(c, ct.id, "b"))
    local note = ghl.contacts.add_note(c, ct.id, "called, call back Monday")
    assert.are.equal("called, call back Monday", note.body)
    assert.are.equal(1, #ghl.contacts.notes(c, ct.id))
    assert.is_true(ghl.contacts.count(c) >= 30)
    assert.is_true(ghl.contacts.delete(c, ct.id))
    local _, err = ghl.try(ghl.contacts.get, c, ct.id)
    assert.are.equal(400, err.status)
  end)

  it("works with the client as the method receiver", function()
    local ct = c.contacts:create { email = "method@example.com", customFields = { budget = 3 } }
    assert.are.equal(ct.id, c.contacts:get(ct.id).id)
    assert.are.equal(ct.id, c.contacts.get(ct.id).id)
    assert.are.equal("budget", c.contacts:get(ct.id).customFields[1].key)
    assert.is_table(c.custom_fields:schema().by_key["contact.budget"])
  end)

  it("says what is wrong when called without a client or a location", function()
    local ok, err = pcall(ghl.contacts.get, "abc")
    assert.is_false(ok)
    assert.matches("first argument must be a client", err)
    local company = ghl.client { token = s.token, base = s.url, company = s.company }
    company.location = nil
    ok, err = pcall(ghl.contacts.create, company, {})
    assert.matches("needs a location", err)
  end)
end)

describe("the other families", function()
  it("custom values: get and set by name, idempotently", function()
    assert.are.equal("+1 555 010 0000", ghl.custom_values.get(c, "Company Phone"))
    assert.are.equal("+1 555 010 0000", ghl.custom_values.get(c, "company_phone"))
    local v, what = ghl.custom_values.set(c, "Company Phone", "+1 555 010 9999")
    assert.are.same({ "updated", "+1 555 010 9999" }, { what, v.value })
    assert.are.equal("unchanged", select(2, ghl.custom_values.set(c, "company_phone", "+1 555 010 9999")))
    assert.are.equal("created", select(2, ghl.custom_values.set(c, "Support Email", "help@example.com")))
    assert.are.equal("help@example.com", ghl.custom_values.get(c, "support_email"))
    assert.is_true(ghl.custom_values.delete(c, "Support Email"))
    assert.is_nil(ghl.custom_values.get(c, "support_email"))
  end)

  it("tags: list, ensure, rename, delete", function()
    local t, created = ghl.tags.ensure(c, "Spring Promo")
    assert.is_true(created)
    assert.are.same({ t.id, false }, { ghl.tags.ensure(c, "spring promo").id, select(2, ghl.tags.ensure(c, "spring promo")) })
    assert.are.equal("Summer Promo", ghl.tags.rename(c, "spring promo", "Summer Promo").name)
    assert.is_true(ghl.tags.delete(c, "summer promo"))
    assert.is_nil(ghl.tags.find(c, "summer promo"))
    assert.is_true(#ghl.tags.list(c) > 0)
  end)

  it("opportunities: pipelines, create by names with custom fields by key, move stage, search", function()
    local sales = ghl.opportunities.pipeline(c, "sales pipeline")
    assert.are.equal("New Lead", sales.stages[1].name)
    local ct = ghl.contacts.create(c, { email = "opp@example.com" })
    local o = ghl.opportunities.create(c, { name = "Roof", contactId = ct.id, pipeline = "Sales Pipeline",
      stage = "Contacted", monetaryValue = 900, customFields = { deal_size = 900 } })
    assert.are.equal(ghl.opportunities.stage(sales, "Contacted").id, o.pipelineStageId)
    assert.are.same({ "deal_size", "Deal Size", 900 }, { o.customFields[1].key, o.customFields[1].name,
      math.tointeger(o.customFields[1].value) })
    local moved = ghl.opportunities.move(c, o.id, "Negotiation")
    assert.are.equal(ghl.opportunities.stage(sales, "negotiation").id, moved.pipelineStageId)
    local n = 0
    for x in ghl.opportunities.search(c, { pipeline = "Sales Pipeline", stage = "Negotiation" }) do
      n = n + 1
      assert.are.equal(moved.pipelineStageId, x.pipelineStageId)
    end
    assert.is_true(n >= 1)
    assert.are.equal(13, ghl.opportunities.count(c))
    local _, err = ghl.try(ghl.opportunities.move, c, o.id, "Nowhere")
    assert.are.equal("usage", err.kind)
    assert.matches("New Lead, Contacted", err.hint)
  end)

  it("users, locations, conversations and calendars", function()
    local users = ghl.users.list(c)
    assert.is_true(#users >= 3)
    assert.are.equal(users[2].id, ghl.users.get(c, users[2].id).id)
    assert.are.equal(users[2].id, ghl.users.find(c, users[2].email:upper()).id)
    assert.are.equal(s.location, ghl.locations.get(c).id)
    local ct = ghl.contacts.create(c, { email = "talk@example.com", phone = "+15557770002" })
    assert.is_string(ghl.conversations.send_sms(c, ct.id, "hello").messageId)
    assert.is_string(ghl.conversations.send_email(c, ct.id, { subject = "Hi", html = "<p>hi</p>" }).emailMessageId)
    assert.are.equal(1, ghl.conversations.search(c, { contactId = ct.id }).total)
    local cal = ghl.calendars.find(c, "Sim Consultations")
    local slots = ghl.calendars.free_slots(c, cal.id, "2030-01-07", "2030-01-07")
    assert.are.equal("2030-01-07T09:00:00+00:00", slots[1])
    local ap = ghl.calendars.book(c, { calendarId = cal.id, contactId = ct.id, startTime = slots[1] })
    assert.are.equal(ap.id, ghl.calendars.appointment(c, ap.id).id)
    assert.are_not.equal(slots[1], ghl.calendars.free_slots(c, cal.id, "2030-01-07", "2030-01-07")[1])
  end)

  it("carries each endpoint's Version and scopes from the operations table", function()
    assert.are.same({ "contacts.write" }, R.scopes(ghl.contacts, "create"))
    assert.are.same({ "contacts.write" }, ghl.contacts.scopes("create"))
    assert.are.same({ "users.readonly" }, c.users:scopes().list)
    assert.are.equal("2021-04-15", c.calendars:version("book"))
    assert.are.same({ "contacts.readonly" }, R.scopes(ghl.contacts, "search"))
    assert.are.same({ "locations/customFields.readonly" }, R.scopes(ghl.custom_fields, "list"))
    assert.are.same({ "conversations/message.write" }, R.scopes(ghl.conversations, "send"))
    assert.are.same({ "opportunities.write" }, R.scopes(ghl.opportunities).update)
    assert.are.equal("2021-04-15", R.version(ghl.calendars, "free_slots"))
    assert.are.equal("2021-04-15", R.version(ghl.conversations, "send"))
    assert.are.equal("2021-07-28", R.version(ghl.contacts, "create"))
    local v = assert(http.request { url = s.url .. "/__sim/stats" }):json().versions
    assert.are.same({ "2021-04-15" }, (function() local k = {} for x in pairs(v.calendars) do k[#k + 1] = x end return k end)())
    assert.is_nil(v.contacts["2021-04-15"])
  end)
end)

describe("a dry run", function()
  it("performs reads, records writes and sends none of them", function()
    local plan = {}
    local d = ghl.client { token = s.token, base = s.url, location = s.location, dry_run = plan }
    clear_log()
    local ct = ghl.contacts.create(d, { email = "dry@example.com", customFields = { budget = 1 } })
    assert.are.same({ "dry-run-1", "budget", 1 }, { ct.id, ct.customFields[1].key, ct.customFields[1].value })
    local first
    for x in ghl.contacts.search(d, {}, { max = 1 }) do first = x end
    ghl.contacts.update(d, first.id, { firstName = "Changed" })
    ghl.contacts.add_tags(d, first.id, { "t" })
    ghl.contacts.delete(d, first.id)
    ghl.custom_values.set(d, "Company Phone", "0")
    ghl.opportunities.create(d, { name = "x", contactId = first.id, pipeline = "Onboarding" })
    assert.are.equal(6, #plan)
    assert.are.same({ "POST", "/contacts/" }, { plan[1].method, plan[1].path })
    assert.are.equal("DELETE", plan[4].method)
    assert.are.equal(0, writes())
    local reads = 0
    for _, r in ipairs(requests()) do if r.method == "GET" or r.path:find("/search$") then reads = reads + 1 end end
    assert.is_true(reads >= 3)
    assert.are_not.equal("Changed", ghl.contacts.get(c, first.id).firstName)
  end)
end)

describe("a dry run's answers", function()
  local function dry()
    local plan = {}
    return ghl.client { token = s.token, base = s.url, location = s.location, dry_run = plan }, plan
  end

  it("say a write was planned, not made, and what the real run would meet", function()
    local existing = raw("POST", "/contacts/", { locationId = s.location, email = "met@example.com",
      phone = "+15550202020", firstName = "Met" }).contact
    local d, plan = dry()
    assert.is_truthy(d.dry_run)
    assert.is_false(c.dry_run)
    clear_log()
    -- upsert: a new email would be created, a known one (or phone) updated
    local new, created = ghl.contacts.upsert(d, { email = "nobody@example.com", firstName = "N" })
    assert.are.same({ true, true, "dry-run-1" }, { new.dryRun, created, new.id })
    local upd, created2 = ghl.contacts.upsert(d, { email = "MET@example.com", firstName = "M" })
    assert.are.same({ true, false, existing.id }, { upd.dryRun, created2, upd.id })
    local by_phone, created3 = ghl.contacts.upsert(d, { phone = "(555) 020-2020" })
    assert.are.same({ false, existing.id }, { created3, by_phone.id })
    -- a contact planned earlier in the same run is met by the next write
    local _, again = ghl.contacts.upsert(d, { email = "nobody@example.com", phone = "+15553030303" })
    assert.is_false(again)
    local _, by_new_phone = ghl.contacts.upsert(d, { phone = "+1 555 303 0303" })
    assert.is_false(by_new_phone)
    local _, neither = ghl.contacts.upsert(d, { firstName = "No key" })
    assert.is_true(neither)
    -- create: the duplicate the real run would get back, as a value (named
    -- as the upsert above would have left it)
    local none, dup = ghl.contacts.create(d, { email = "met@example.com" })
    assert.is_nil(none)
    assert.are.same({ true, existing.id, "email", "M" }, { ghl.contacts.is_duplicate(dup), dup.id, dup.field, dup.name })
    local _, dup_api = ghl.contacts.create(dry(), { phone = "+15550202020" })
    assert.are.same({ existing.id, "phone", "Met" }, { dup_api.id, dup_api.field, dup_api.name })
    local fresh, no_dup = ghl.contacts.create(d, { email = "fresh@example.com" })
    assert.are.same({ true, nil }, { fresh.dryRun, no_dup })
    local _, dup2 = ghl.contacts.create(d, { email = "fresh@example.com" })
    assert.are.equal(fresh.id, dup2.id)
    -- update keeps the id it would change; tags answer the tags sent
    assert.are.same({ existing.id, true }, { ghl.contacts.update(d, existing.id, { firstName = "X" }).id,
      ghl.contacts.update(d, existing.id, { firstName = "X" }).dryRun })
    local tags = ghl.contacts.add_tags(d, existing.id, { "a", "b" })
    assert.are.same({ "a", "b" }, { tags[1], tags[2] })
    assert.is_true(tags.dryRun)
    -- custom values and tags: what set and ensure say is what they would do
    local v, what = ghl.custom_values.set(d, "Company Phone", "+1 555 000 1111")
    assert.are.same({ "updated", true }, { what, v.dryRun })
    assert.are.equal(raw("GET", "/locations/" .. s.location .. "/customValues").customValues[1].id, v.id)
    local _, what2 = ghl.custom_values.set(d, "Brand New", "x")
    assert.are.equal("created", what2)
    local t, made = ghl.tags.ensure(d, "dry-only-tag")
    assert.are.same({ true, true }, { made, t.dryRun })
    -- nothing was sent; the lookups were
    assert.are.equal(0, writes())
    assert.is_true(#requests { method = "GET", path = "/contacts/search/duplicate" } >= 5)
    assert.is_true(#plan >= 12)
    assert.are.equal(require("cjson").null,
      raw("GET", "/contacts/search/duplicate?locationId=" .. s.location .. "&email=fresh@example.com").contact)
  end)
end)

describe("contacts as CSV rows", function()
  it("turns a contact into a row and the row back into the fields it was made from", function()
    local made = ghl.contacts.create(c, { email = "row@example.com", firstName = "Ro", lastName = "W",
      companyName = "Rows Ltd", dnd = true, tags = { "x", "y z" },
      customFields = { budget = 12.5, favorite_color = "Green", lead_source = "a;b" } })
    local keys = {}
    for _, f in ipairs(raw("GET", "/locations/" .. s.location .. "/customFields?model=contact").customFields) do
      keys[#keys + 1] = (f.fieldKey:gsub("^contact%.", ""))
    end
    table.sort(keys)
    local cols, ncustom = ghl.contacts.csv_columns(c)
    assert.are.equal(#keys, ncustom)
    assert.are.same({ "id", "firstName" }, { cols[1], cols[2] })
    assert.are.same(keys, { table.unpack(cols, #cols - #keys + 1) })
    assert.are.equal("tags", cols[#cols - #keys])
    local row = ghl.contacts.to_row(ghl.contacts.get(c, made.id))
    assert.are.same({ made.id, "Ro", true, "x;y z", 12.5, "Green", "a;b" },
      { row.id, row.firstName, row.dnd, row.tags, row.budget, row.favorite_color, row.lead_source })
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT", row.dateAdded)
    -- as the CSV gives it back: strings
    local text = {}
    for k, v in pairs(row) do text[k] = tostring(v) end
    text.city, text.dateOfBirth = "", "1990-04-02T00:00:00.000Z"
    assert.are.same({ "dateAdded", "dateUpdated", "id" }, ghl.contacts.import_columns(c, { "id", "email", "dateAdded",
      "dateUpdated", "tags", "budget", "contact.lead_source" }))
    local fields = ghl.contacts.from_row(c, text)
    local ids = field_ids()
    table.sort(fields.customFields, function(a, b) return a.id < b.id end)
    local want = { { id = ids["contact.budget"], value = 12.5 }, { id = ids["contact.favorite_color"], value = "Green" },
      { id = ids["contact.lead_source"], value = "a;b" } }
    table.sort(want, function(a, b) return a.id < b.id end)
    assert.are.same(want, fields.customFields)
    assert.are.same({ "Ro", "W", "Rows Ltd", true, { "x", "y z" }, "1990-04-02" },
      { fields.firstName, fields.lastName, fields.companyName, fields.dnd, fields.tags, fields.dateOfBirth })
    assert.is_nil(fields.id)
    assert.is_nil(fields.city)
    assert.is_nil(fields.dateAdded)
    -- an unknown column is named with the location's keys
    local ok, e = pcall(ghl.contacts.import_columns, c, { "email", "hat_size" })
    assert.is_false(ok)
    assert.are.same({ "field", "unknown_custom_field" }, { e.kind, e.code })
    assert.matches("unknown contact custom field key 'hat_size'", e.message)
    assert.matches("budget, favorite_color, lead_source", e.hint)
  end)
end)
