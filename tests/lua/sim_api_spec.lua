-- `ghlua sim` over real loopback HTTP, for the API client: the Version per
-- family (--strict-version), calendars and conversations, opportunities
-- with paging in both styles, users, locations search and the tag
-- catalogue, v3 AIP paging of installed locations, chaos rules and the
-- request log, and the rate-limit answers.
package.path = "tests/lua/?.lua;" .. package.path
local http = require "ghl.http"
local cjson = require "cjson"
local sys = require "ghl.sys"
local sim = require "support.sim"
local run = require "support.run"
local simlog = require "support.simlog"

local LOC = "ve9EPM428h8vShlRW1KT"
local COMPANY = "5DP4iH6HLkQsiKESj6rh"
local OTHER_LOC = "OtherLocation0000001"
local TOKEN = "sim_api_token_0123456789abcdef"
local OTHER_TOKEN = "sim_api_other_0123456789abcdef"
local REDIRECT = "http://localhost:3000/oauth/callback"
local AGENCY, AGENCY_SECRET = "65f1a2b3c4d5e6f7a8b9c0d2-agcy0002", "agency-secret-0123456789-abcdefghij"
local LIMITED, LIMITED_SECRET = "6740b2b6d9e4a05c1f3a9e22-ltd00001", "limited-secret-0123456789-abcdefghi"

local APPS_JSON = cjson.encode {
  { client_id = AGENCY, client_secret = AGENCY_SECRET, redirect_uris = { REDIRECT }, user_type = "Company",
    scopes = { "oauth.readonly", "oauth.write", "locations.readonly", "users.readonly" } },
  { client_id = LIMITED, client_secret = LIMITED_SECRET, redirect_uris = { REDIRECT }, user_type = "Location",
    scopes = { "calendars.readonly", "calendars/events.readonly", "conversations.readonly",
      "conversations/message.readonly", "opportunities.readonly", "contacts.readonly" } },
}

local function isnull(v) return v == nil or v == cjson.null end

-- One API call: returns resp, decoded body (nil when not JSON).
local function call(s, method, path, opts)
  opts = opts or {}
  local resp = assert(http.request { method = method, url = opts.url or (s.url .. path), query = opts.query,
    json = opts.json, headers = opts.headers or s.headers(opts.token or TOKEN, opts.version),
    timeout = opts.timeout or 10 })
  return resp, resp:json()
end

-- The same call, expected to succeed with status (default 200).
local function ok(s, method, path, opts, status)
  local resp, body = call(s, method, path, opts)
  assert.are.equal(status or 200, resp.status, resp.body)
  return body
end

local function write_file(text)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

-- An OAuth access token of client through the auto-approved consent.
local function oauth_token(s, client, secret, scope)
  local resp = assert(http.request { url = s.url .. "/v2/oauth/chooselocation", timeout = 10,
    query = { response_type = "code", client_id = client, redirect_uri = REDIRECT, scope = scope } })
  assert.are.equal(302, resp.status, resp.body)
  local code = resp.headers.location:match("[?&]code=([^&]+)")
  resp = assert(http.request { method = "POST", url = s.url .. "/oauth/token", timeout = 10,
    form = { client_id = client, client_secret = secret, grant_type = "authorization_code", code = code } })
  assert.are.equal(200, resp.status, resp.body)
  return resp:json().access_token
end

local function set_chaos(s, rules)
  local resp = assert(http.request { method = "PUT", url = s.url .. "/__sim/chaos", json = { rules = rules } })
  assert.are.equal(200, resp.status, resp.body)
  assert.are.equal(200, assert(http.request { method = "DELETE", url = s.url .. "/__sim/requests" }).status)
  return resp:json()
end

local function requests(s, query)
  return assert(http.request { url = s.url .. "/__sim/requests", query = query }):json()
end

local function contact_ids(s, n)
  local body = ok(s, "GET", "/contacts/", { query = { locationId = LOC, limit = n } })
  local ids = {}
  for i, c in ipairs(body.contacts) do ids[i] = c.id end
  return ids
end

describe("ghlua sim API families", function()
  local s, tokens_file, apps_file
  setup(function()
    tokens_file = sim.tmpfile { OTHER_TOKEN .. " " .. OTHER_LOC }
    apps_file = write_file(APPS_JSON)
    s = sim.start { "--token", TOKEN, "--tokens", tokens_file, "--contacts", "40", "--opportunities", "250",
      "--apps", apps_file, "--auto-approve", "--faults", "--rate-max", "100000" }
  end)
  teardown(function()
    if s then s.stop() end
    os.remove(tokens_file)
    os.remove(apps_file)
  end)

  describe("Version per family", function()
    it("records the Version each family was called with, and accepts any published one", function()
      ok(s, "GET", "/calendars/", { query = { locationId = LOC }, version = "2021-04-15" })
      ok(s, "GET", "/conversations/search", { query = { locationId = LOC }, version = "2021-04-15" })
      ok(s, "GET", "/opportunities/pipelines", { query = { locationId = LOC } })
      ok(s, "GET", "/users/", { query = { locationId = LOC } })
      ok(s, "GET", "/calendars/", { query = { locationId = LOC }, version = "2023-02-21" })
      local st = s.stats()
      assert.are.equal("2023-02-21", st.lastVersion.calendars)
      assert.are.equal("2021-04-15", st.lastVersion.conversations)
      assert.are.equal("2021-07-28", st.lastVersion.opportunities)
      assert.are.equal("2021-07-28", st.lastVersion.users)
      assert.is_true(st.versions.calendars["2021-04-15"] >= 1)
      assert.is_true(st.versions.calendars["2023-02-21"] >= 1)
    end)
  end)

  describe("calendars", function()
    local cal
    setup(function()
      cal = ok(s, "GET", "/calendars/", { query = { locationId = LOC }, version = "2021-04-15" }).calendars[1]
    end)

    it("lists the location's calendars", function()
      local body = ok(s, "GET", "/calendars/", { query = { locationId = LOC }, version = "2021-04-15" })
      assert.are.equal(2, #body.calendars)
      for _, c in ipairs(body.calendars) do
        assert.are.equal(LOC, c.locationId)
        assert.is_string(c.id)
        assert.is_string(c.name)
        assert.is_number(c.slotDuration)
      end
      assert.are.equal(0, #ok(s, "GET", "/calendars/", { query = { locationId = LOC, groupId = "nogroup" },
        version = "2021-04-15" }).calendars)
      local resp = call(s, "GET", "/calendars/", { version = "2021-04-15" })
      assert.are.equal(422, resp.status)
    end)

    it("gives free slots keyed by day, inside the range asked", function()
      -- Mon 2024-10-28 00:00 UTC to Wed 2024-10-30 12:00 UTC
      local from, to = 1730073600000, 1730073600000 + 2 * 86400000 + 12 * 3600000
      local body = ok(s, "GET", "/calendars/" .. cal.id .. "/free-slots",
        { query = { startDate = from, endDate = to }, version = "2021-04-15" })
      local days = {}
      for day, v in pairs(body) do
        days[#days + 1] = day
        assert.matches("^%d%d%d%d%-%d%d%-%d%d$", day)
        assert.is_true(#v.slots > 0)
        for _, slot in ipairs(v.slots) do
          assert.are.equal(day .. "T", slot:sub(1, 11))
          assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d[+-]%d%d:%d%d$", slot)
        end
      end
      table.sort(days)
      assert.are.same({ "2024-10-28", "2024-10-29", "2024-10-30" }, days)
      assert.are.equal("2024-10-28T09:00:00+00:00", body["2024-10-28"].slots[1])
      assert.are.equal(16, #body["2024-10-28"].slots)   -- 09:00-17:00 in 30 min slots
      assert.are.equal(7, #body["2024-10-30"].slots)    -- 09:00-12:00: a slot may start at endDate
      -- a Saturday has no slots
      local sat = ok(s, "GET", "/calendars/" .. cal.id .. "/free-slots",
        { query = { startDate = 1730505600000, endDate = 1730591999999 }, version = "2021-04-15" })
      assert.is_nil(next(sat))
    end)

    it("rejects a missing date, a reversed range and an unknown calendar", function()
      local path = "/calendars/" .. cal.id .. "/free-slots"
      assert.are.equal(422, call(s, "GET", path, { query = { startDate = 1 }, version = "2021-04-15" }).status)
      assert.are.equal(400, call(s, "GET", path, { query = { startDate = 10, endDate = 5 }, version = "2021-04-15" }).status)
      assert.are.equal(400, call(s, "GET", path, { query = { startDate = 0, endDate = 40 * 86400000 },
        version = "2021-04-15" }).status)
      assert.are.equal(400, call(s, "GET", "/calendars/NoSuchCalendar000001/free-slots",
        { query = { startDate = 0, endDate = 1 }, version = "2021-04-15" }).status)
    end)

    it("books an appointment in a free slot, which then is no longer free", function()
      local contact = contact_ids(s, 1)[1]
      local day = { startDate = 1730160000000, endDate = 1730246399999 }   -- Tue 2024-10-29
      local before = ok(s, "GET", "/calendars/" .. cal.id .. "/free-slots", { query = day, version = "2021-04-15" })
      local slot = before["2024-10-29"].slots[3]
      -- the same instant written with an offset
      local appt = ok(s, "POST", "/calendars/events/appointments", { version = "2021-04-15",
        json = { calendarId = cal.id, locationId = LOC, contactId = contact, startTime = "2024-10-29T05:00:00-05:00",
          title = "Intro call" } })
      assert.are.equal(slot, appt.startTime)
      assert.are.equal("2024-10-29T10:30:00+00:00", appt.endTime)
      assert.are.same({ cal.id, LOC, contact, "Intro call" }, { appt.calendarId, appt.locationId, appt.contactId, appt.title })
      assert.is_string(appt.id)
      local after = ok(s, "GET", "/calendars/" .. cal.id .. "/free-slots", { query = day, version = "2021-04-15" })
      assert.are.equal(#before["2024-10-29"].slots - 1, #after["2024-10-29"].slots)
      for _, t in ipairs(after["2024-10-29"].slots) do assert.are_not.equal(slot, t) end
      local resp, err = call(s, "POST", "/calendars/events/appointments", { version = "2021-04-15",
        json = { calendarId = cal.id, locationId = LOC, contactId = contact, startTime = slot } })
      assert.are.same({ 400, "The slot you have selected is no longer available." }, { resp.status, err.message })
      assert.are.equal(200, call(s, "POST", "/calendars/events/appointments", { version = "2021-04-15",
        json = { calendarId = cal.id, locationId = LOC, contactId = contact, startTime = slot,
          ignoreFreeSlotValidation = true } }).status)

      local event = ok(s, "GET", "/calendars/events/appointments/" .. appt.id, { version = "2021-04-15" }).event
      assert.are.same({ appt.id, cal.id, contact, slot, "confirmed" },
        { event.id, event.calendarId, event.contactId, event.startTime, event.appointmentStatus })
      assert.is_string(event.dateAdded)
      assert.are.equal(400, call(s, "GET", "/calendars/events/appointments/NoSuchEvent000000001",
        { version = "2021-04-15" }).status)
      assert.are.equal(403, call(s, "GET", "/calendars/events/appointments/" .. appt.id,
        { version = "2021-04-15", token = OTHER_TOKEN }).status)
    end)

    it("validates appointment bodies", function()
      local contact = contact_ids(s, 1)[1]
      local function post(json)
        local resp, body = call(s, "POST", "/calendars/events/appointments", { version = "2021-04-15", json = json })
        return resp.status, body.message
      end
      local st, msg = post { locationId = LOC }
      assert.are.equal(422, st)
      assert.is_table(msg)
      assert.are.equal(422, (post { calendarId = cal.id, locationId = LOC, contactId = contact, startTime = "tuesday" }))
      assert.are.equal(400, (post { calendarId = cal.id, locationId = LOC, contactId = "NoSuchContact0000001",
        startTime = "2024-10-29T09:00:00Z" }))
      assert.are.equal(400, (post { calendarId = cal.id, locationId = LOC, contactId = contact,
        startTime = "2024-10-29T09:10:00Z" }))   -- not on a slot boundary
      assert.are.equal(403, (post { calendarId = cal.id, locationId = OTHER_LOC, contactId = contact,
        startTime = "2024-10-29T09:00:00Z" }))
    end)

    it("needs calendars/events.write to book", function()
      local tok = oauth_token(s, LIMITED, LIMITED_SECRET, "calendars.readonly calendars/events.readonly")
      local resp, body = call(s, "POST", "/calendars/events/appointments", { token = tok, version = "2021-04-15",
        json = { calendarId = cal.id, locationId = LOC, contactId = contact_ids(s, 1)[1],
          startTime = "2024-10-31T09:00:00Z" } })
      assert.are.same({ 401, "The token is not authorized for this scope." }, { resp.status, body.message })
      assert.are.equal(200, call(s, "GET", "/calendars/", { token = tok, version = "2021-04-15",
        query = { locationId = LOC } }).status)
    end)
  end)

  describe("conversations", function()
    it("sends an SMS and an Email into one conversation per contact", function()
      local contact = contact_ids(s, 2)[2]
      local sms = ok(s, "POST", "/conversations/messages", { version = "2021-04-15",
        json = { type = "SMS", contactId = contact, message = "Your appointment is confirmed" } })
      assert.is_string(sms.conversationId)
      assert.is_string(sms.messageId)
      assert.is_string(sms.msg)
      assert.is_nil(sms.emailMessageId)
      local email = ok(s, "POST", "/conversations/messages", { version = "2021-04-15",
        json = { type = "Email", contactId = contact, html = "<p>See you soon</p>", subject = "Reminder" } })
      assert.are.equal(sms.conversationId, email.conversationId)
      assert.are_not.equal(sms.messageId, email.messageId)
      assert.is_string(email.emailMessageId)
      local found = ok(s, "GET", "/conversations/search", { version = "2021-04-15",
        query = { locationId = LOC, contactId = contact } })
      assert.are.equal(1, found.total)
      local cv = found.conversations[1]
      assert.are.same({ sms.conversationId, contact, LOC, "<p>See you soon</p>", "TYPE_EMAIL" },
        { cv.id, cv.contactId, cv.locationId, cv.lastMessageBody, cv.lastMessageType })
    end)

    it("refuses what cannot be sent", function()
      local contact = contact_ids(s, 1)[1]
      local function post(json)
        local resp, body = call(s, "POST", "/conversations/messages", { version = "2021-04-15", json = json })
        return resp.status, body.message
      end
      assert.are.equal(422, (post { type = "SMS" }))
      assert.are.equal(422, (post { type = "Fax", contactId = contact, message = "x" }))
      assert.are.equal(422, (post { type = "SMS", contactId = contact }))
      assert.are.equal(400, (post { type = "WhatsApp", contactId = contact, message = "x" }))
      assert.are.equal(400, (post { type = "SMS", contactId = "NoSuchContact0000001", message = "x" }))
      local mailonly = ok(s, "POST", "/contacts/", { json = { locationId = LOC, email = "mail.only@example.com" } }, 201)
      local st, msg = post { type = "SMS", contactId = mailonly.contact.id, message = "x" }
      assert.are.equal(400, st)
      assert.matches("phone", msg)
      assert.are.equal(200, (post { type = "Email", contactId = mailonly.contact.id, message = "plain" }))
      local tok = oauth_token(s, LIMITED, LIMITED_SECRET, "conversations.readonly conversations/message.readonly")
      local resp = call(s, "POST", "/conversations/messages", { token = tok, version = "2021-04-15",
        json = { type = "SMS", contactId = contact, message = "x" } })
      assert.are.equal(401, resp.status)
    end)

    it("pages conversations newest first with startAfterDate", function()
      for _, id in ipairs(contact_ids(s, 12)) do
        ok(s, "POST", "/conversations/messages", { version = "2021-04-15",
          json = { type = "SMS", contactId = id, message = "hello " .. id } })
      end
      local seen, n, after, last_date = {}, 0, nil, math.huge
      local total
      repeat
        local body = ok(s, "GET", "/conversations/search", { version = "2021-04-15",
          query = { locationId = LOC, limit = 5, startAfterDate = after } })
        total = body.total
        for _, cv in ipairs(body.conversations) do
          assert.is_nil(seen[cv.id], "repeated " .. cv.id)
          assert.is_true(cv.lastMessageDate < last_date)
          seen[cv.id], n, last_date = true, n + 1, cv.lastMessageDate
        end
        after = #body.conversations > 0 and body.conversations[#body.conversations].lastMessageDate or nil
      until not after
      assert.is_true(total >= 12)
      assert.are.equal(total, n)
      local q = ok(s, "GET", "/conversations/search", { version = "2021-04-15",
        query = { locationId = LOC, query = "hello" } })
      assert.is_true(q.total >= 12)
      assert.are.equal(422, call(s, "GET", "/conversations/search", { version = "2021-04-15",
        query = { locationId = LOC, limit = 101 } }).status)
    end)
  end)

  describe("opportunities", function()
    local pipelines
    setup(function()
      pipelines = ok(s, "GET", "/opportunities/pipelines", { query = { locationId = LOC } }).pipelines
    end)

    it("seeds pipelines with stages", function()
      assert.are.equal(2, #pipelines)
      for _, p in ipairs(pipelines) do
        assert.is_string(p.id)
        assert.is_string(p.name)
        assert.are.equal(LOC, p.locationId)
        assert.is_true(#p.stages >= 3)
        for i, st in ipairs(p.stages) do
          assert.is_string(st.id)
          assert.is_string(st.name)
          assert.are.equal(i - 1, st.position)
        end
      end
      assert.are.equal(422, call(s, "GET", "/opportunities/pipelines").status)
    end)

    it("creates, reads, moves, updates and deletes an opportunity", function()
      local contact = contact_ids(s, 3)[3]
      local p, p2 = pipelines[1], pipelines[2]
      local o = ok(s, "POST", "/opportunities/", { json = { pipelineId = p.id, locationId = LOC, name = "Big deal",
        status = "open", contactId = contact, monetaryValue = 1200 } }, 201).opportunity
      assert.are.same({ "Big deal", p.id, p.stages[1].id, "open", contact, 1200, LOC },
        { o.name, o.pipelineId, o.pipelineStageId, o.status, o.contactId, o.monetaryValue, o.locationId })
      assert.are.equal(contact, o.contact.id)
      assert.are.equal(o.createdAt, o.lastStageChangeAt)
      assert.are.same(o, ok(s, "GET", "/opportunities/" .. o.id).opportunity)

      local moved = ok(s, "PUT", "/opportunities/" .. o.id, { json = { pipelineStageId = p.stages[3].id } }).opportunity
      assert.are.same({ p.id, p.stages[3].id, "open" }, { moved.pipelineId, moved.pipelineStageId, moved.status })
      assert.is_true(moved.lastStageChangeAt > o.lastStageChangeAt)
      assert.are.equal(o.lastStatusChangeAt, moved.lastStatusChangeAt)
      local won = ok(s, "PUT", "/opportunities/" .. o.id, { json = { status = "won", monetaryValue = 1500,
        name = "Bigger deal" } }).opportunity
      assert.are.same({ "won", 1500, "Bigger deal", p.stages[3].id }, { won.status, won.monetaryValue, won.name,
        won.pipelineStageId })
      assert.is_true(won.lastStatusChangeAt > o.lastStatusChangeAt)
      local other = ok(s, "PUT", "/opportunities/" .. o.id, { json = { pipelineId = p2.id } }).opportunity
      assert.are.same({ p2.id, p2.stages[1].id }, { other.pipelineId, other.pipelineStageId })

      assert.are.equal(400, call(s, "PUT", "/opportunities/" .. o.id, { json = { pipelineStageId = p.stages[2].id } }).status)
      assert.are.equal(403, call(s, "GET", "/opportunities/" .. o.id, { token = OTHER_TOKEN }).status)
      assert.is_true(ok(s, "DELETE", "/opportunities/" .. o.id).succeded)
      local resp, body = call(s, "GET", "/opportunities/" .. o.id)
      assert.are.same({ 400, "Opportunity not found" }, { resp.status, body.message })
    end)

    it("writes and reads opportunity custom fields", function()
      local contact = contact_ids(s, 1)[1]
      local o = ok(s, "POST", "/opportunities/", { json = { pipelineId = pipelines[1].id, locationId = LOC,
        name = "With fields", status = "open", contactId = contact,
        customFields = { { key = "deal_size", field_value = 5000 } } } }, 201).opportunity
      assert.are.equal(1, #o.customFields)
      assert.are.equal(5000, o.customFields[1].fieldValue)
      assert.are.equal(400, call(s, "POST", "/opportunities/", { json = { pipelineId = pipelines[1].id,
        locationId = LOC, name = "x", status = "open", contactId = contact,
        customFields = { { key = "contact.budget", field_value = 1 } } } }).status)
      ok(s, "DELETE", "/opportunities/" .. o.id)
    end)

    it("validates creates", function()
      local contact = contact_ids(s, 1)[1]
      local function post(json)
        local resp, body = call(s, "POST", "/opportunities/", { json = json })
        return resp.status, body.message
      end
      local base = { pipelineId = pipelines[1].id, locationId = LOC, name = "x", status = "open", contactId = contact }
      local function with(k, v)
        local t = {}
        for kk, vv in pairs(base) do t[kk] = vv end
        t[k] = v
        return t
      end
      local st, msg = post { locationId = LOC }
      assert.are.equal(422, st)
      assert.truthy(table.concat(msg, "\n"):find("pipelineId should not be empty", 1, true))
      assert.are.equal(422, (post(with("status", "all"))))
      assert.are.equal(422, (post(with("source", "web"))))
      assert.are.equal(400, (post(with("pipelineId", "NoSuchPipeline000001"))))
      assert.are.equal(400, (post(with("pipelineStageId", pipelines[2].stages[1].id))))
      assert.are.equal(400, (post(with("contactId", "NoSuchContact0000001"))))
      assert.are.equal(403, (post(with("locationId", OTHER_LOC))))
      local tok = oauth_token(s, LIMITED, LIMITED_SECRET, "opportunities.readonly")
      assert.are.equal(401, call(s, "POST", "/opportunities/", { token = tok, json = base }).status)
      assert.are.equal(200, call(s, "GET", "/opportunities/search", { token = tok,
        query = { location_id = LOC, limit = 1 } }).status)
    end)

    -- Every page of a GET search walk, following meta.nextPageUrl.
    local function walk_next_url(query)
      local list, seen, pages = {}, {}, 0
      local resp, body = call(s, "GET", "/opportunities/search", { query = query })
      while true do
        assert.are.equal(200, resp.status, resp.body)
        pages = pages + 1
        for _, o in ipairs(body.opportunities) do
          assert.is_nil(seen[o.id], "repeated " .. o.id)
          seen[o.id] = true
          list[#list + 1] = o
        end
        if isnull(body.meta.nextPageUrl) then break end
        assert.are.equal(pages + 1, body.meta.nextPage)
        resp, body = call(s, "GET", nil, { url = body.meta.nextPageUrl })
      end
      return list, body.meta, pages
    end

    local function assert_ordered(list)
      for i = 2, #list do
        local a, b = list[i - 1], list[i]
        assert.is_true(a.createdAt < b.createdAt or (a.createdAt == b.createdAt and a.id < b.id),
          "out of order at " .. i)
      end
    end

    it("pages 250 seeded opportunities with GET search: nextPageUrl, no duplicates or gaps", function()
      local list, meta, pages = walk_next_url { location_id = LOC, limit = 100 }
      assert.are.equal(250, #list)
      assert.are.equal(3, pages)
      assert.are.equal(250, meta.total)
      assert_ordered(list)
      local ties = 0
      for i = 2, #list do if list[i].createdAt == list[i - 1].createdAt then ties = ties + 1 end end
      assert.is_true(ties > 50, "the seed should share createdAt between neighbours")
    end)

    it("pages with startAfter/startAfterId by hand and with page numbers, the same records", function()
      local keyset, after, after_id = {}, nil, nil
      repeat
        local body = ok(s, "GET", "/opportunities/search", { query = { location_id = LOC, limit = 37,
          startAfter = after, startAfterId = after_id } })
        for _, o in ipairs(body.opportunities) do keyset[#keyset + 1] = o.id end
        after, after_id = body.meta.startAfter, body.meta.startAfterId
      until #body.opportunities < 37
      local paged = {}
      for page = 1, 8 do
        local body = ok(s, "GET", "/opportunities/search", { query = { location_id = LOC, limit = 37, page = page } })
        assert.are.equal(page, body.meta.currentPage)
        for _, o in ipairs(body.opportunities) do paged[#paged + 1] = o.id end
      end
      assert.are.equal(250, #keyset)
      assert.are.same(keyset, paged)
    end)

    it("filters GET search by status, pipeline, stage, contact and q", function()
      local all = walk_next_url { location_id = LOC, limit = 100 }
      local function count(pred)
        local n = 0
        for _, o in ipairs(all) do if pred(o) then n = n + 1 end end
        return n
      end
      local function total(q)
        q.location_id = q.location_id or LOC
        return ok(s, "GET", "/opportunities/search", { query = q }).meta.total
      end
      local won = total { status = "won" }
      assert.is_true(won > 0)
      assert.are.equal(count(function(o) return o.status == "won" end), won)
      assert.are.equal(250, total { status = "all" })
      local p = pipelines[2]
      assert.are.equal(count(function(o) return o.pipelineId == p.id end), total { pipeline_id = p.id })
      local stage = all[1].pipelineStageId
      assert.are.equal(count(function(o) return o.pipelineStageId == stage end), total { pipeline_stage_id = stage })
      local contact = all[1].contactId
      assert.are.equal(count(function(o) return o.contactId == contact end), total { contact_id = contact })
      local name = all[1].contact.name
      assert.are.equal(count(function(o) return o.contact.name == name or o.name:find(name, 1, true) end),
        total { q = name })
      -- filters carry over into nextPageUrl
      local list = walk_next_url { location_id = LOC, limit = 10, status = "open" }
      assert.are.equal(total { status = "open" }, #list)
      for _, o in ipairs(list) do assert.are.equal("open", o.status) end
    end)

    it("checks GET search parameters", function()
      local function status(q) return call(s, "GET", "/opportunities/search", { query = q }).status end
      assert.are.equal(422, status { limit = 10 })
      assert.are.equal(422, status { location_id = LOC, limit = 101 })
      assert.are.equal(422, status { location_id = LOC, limit = 0 })
      assert.are.equal(422, status { location_id = LOC, status = "pending" })
      assert.are.equal(400, status { location_id = LOC, startAfterId = "NoSuchOpportunity001" })
      assert.are.equal(403, status { location_id = OTHER_LOC })
    end)

    it("pages 250 seeded opportunities with POST search, by page and by searchAfter", function()
      local by_page, seen = {}, {}
      for page = 1, 5 do
        local body = ok(s, "POST", "/opportunities/search", { json = { locationId = LOC, limit = 60, page = page } })
        assert.are.equal(250, body.total)
        for _, o in ipairs(body.opportunities) do
          assert.is_nil(seen[o.id], "repeated " .. o.id)
          seen[o.id] = true
          by_page[#by_page + 1] = o.id
        end
      end
      assert.are.equal(250, #by_page)
      local by_after, sa = {}, nil
      repeat
        local body = ok(s, "POST", "/opportunities/search", { json = { locationId = LOC, limit = 60, searchAfter = sa } })
        for _, o in ipairs(body.opportunities) do
          assert.are.equal(2, #o.searchAfter)
          assert.is_string(o.searchAfter[1])
          assert.are.equal(o.id, o.searchAfter[2])
          by_after[#by_after + 1] = o.id
        end
        sa = #body.opportunities > 0 and body.opportunities[#body.opportunities].searchAfter or nil
      until not sa
      assert.are.same(by_page, by_after)
      assert.are.equal(422, call(s, "POST", "/opportunities/search", { json = { locationId = LOC, limit = 101 } }).status)
      assert.are.equal(422, call(s, "POST", "/opportunities/search", { json = { locationId = LOC, searchAfter = { "x" } } }).status)
      assert.are.equal(422, call(s, "POST", "/opportunities/search", { json = { locationId = LOC, filters = {} } }).status)
      assert.are.equal(403, call(s, "POST", "/opportunities/search", { json = { locationId = OTHER_LOC } }).status)
    end)
  end)

  describe("users and tags", function()
    it("lists a location's users and gets one", function()
      local users = ok(s, "GET", "/users/", { query = { locationId = LOC } }).users
      assert.are.equal(3, #users)
      local ids = {}
      for _, u in ipairs(users) do
        assert.is_string(u.id)
        assert.is_string(u.email)
        assert.is_table(u.roles.locationIds)
        ids[#ids + 1] = u.id
        local one = ok(s, "GET", "/users/" .. u.id)
        assert.are.same({ u.id, u.name, u.email }, { one.id, one.name, one.email })
      end
      assert.are.equal(s.ready.userId, users[1].id)
      assert.are.equal("agency", users[1].roles.type)
      -- the other location sees the agency admin, not this location's own users
      assert.are.equal(200, call(s, "GET", "/users/" .. ids[1], { token = OTHER_TOKEN }).status)
      assert.are.equal(403, call(s, "GET", "/users/" .. ids[2], { token = OTHER_TOKEN }).status)
      assert.are.equal(400, call(s, "GET", "/users/NoSuchUser0000000001").status)
      assert.are.equal(422, call(s, "GET", "/users/").status)
    end)

    it("keeps a tag catalogue seeded from the contacts' tags", function()
      local path = "/locations/" .. LOC .. "/tags"
      local names = {}
      for _, t in ipairs(ok(s, "GET", path).tags) do
        assert.are.equal(LOC, t.locationId)
        names[t.name] = t.id
      end
      assert.is_string(names.seed)
      assert.is_string(names.vip)
      local t = ok(s, "POST", path, { json = { name = "Spring Promo" } }).tag
      assert.are.same({ "Spring Promo", LOC }, { t.name, t.locationId })
      assert.are.equal(400, call(s, "POST", path, { json = { name = "spring promo" } }).status)
      assert.are.equal(422, call(s, "POST", path, { json = {} }).status)
      assert.are.same(t, ok(s, "GET", path .. "/" .. t.id).tag)
      assert.are.equal("Summer Promo", ok(s, "PUT", path .. "/" .. t.id, { json = { name = "Summer Promo" } }).tag.name)
      assert.is_true(ok(s, "DELETE", path .. "/" .. t.id).succeded)
      assert.are.equal(400, call(s, "GET", path .. "/" .. t.id).status)
      assert.are.equal(403, call(s, "GET", path, { token = OTHER_TOKEN }).status)
    end)

    it("shows a Location token only its own location in /locations/search", function()
      local body = ok(s, "GET", "/locations/search", { query = { companyId = COMPANY } })
      assert.are.equal(1, #body.locations)
      assert.are.equal(LOC, body.locations[1].id)
      assert.are.equal(403, call(s, "GET", "/locations/search", { query = { companyId = "OtherCompany00000001" } }).status)
      assert.are.equal(LOC, ok(s, "GET", "/locations/" .. LOC).location.id)
    end)
  end)

  describe("chaos rules and the request log", function()
    after_each(function()
      assert(http.request { method = "DELETE", url = s.url .. "/__sim/chaos" })
    end)

    it("fails the next matching requests, then lets them through, and logs every attempt", function()
      local answer = set_chaos(s, { { method = "GET", path = "/contacts/", times = 2, status = 503 } })
      assert.are.same({ { method = "GET", path = "/contacts", times = 2, status = 503 } }, answer.rules)
      local q = { locationId = LOC, limit = 1 }
      local r1, b1 = call(s, "GET", "/contacts/", { query = q })
      local r2 = call(s, "GET", "/contacts/", { query = q })
      assert.are.same({ 503, 503, "Service Unavailable" }, { r1.status, b1.statusCode, b1.message })
      assert.is_string(b1.traceId)
      assert.are.equal("100000", r1.headers["x-ratelimit-max"])
      assert.are.equal(503, r2.status)
      -- another path is not matched, even one under it
      assert.are.equal(200, call(s, "GET", "/contacts/" .. contact_ids(s, 1)[1]).status)
      assert.are.equal(200, call(s, "GET", "/contacts", { query = q }).status)
      assert.are.equal(0, #assert(http.request { url = s.url .. "/__sim/chaos" }):json().rules)
      local statuses = {}
      for _, e in ipairs(requests(s, { method = "GET", path = "/contacts/" }).requests) do
        statuses[#statuses + 1] = e.status
      end
      assert.are.same({ 503, 503, 200, 200 }, statuses)   -- /contacts/ and /contacts
    end)

    it("logs method, path, query, version, status and the chaos flag", function()
      set_chaos(s, { { method = "GET", path = "/contacts/", status = 502 } })
      call(s, "GET", "/contacts/", { query = { locationId = LOC, limit = 2 } })
      call(s, "GET", "/contacts/", { query = { limit = 2, locationId = LOC } })
      call(s, "GET", "/calendars/", { query = { locationId = LOC }, version = "2021-04-15" })
      call(s, "GET", "/no/such/route")
      assert(http.request { url = s.url .. "/__sim/stats" })
      local log = requests(s)
      assert.are.equal(4, log.total)
      local e1, e2, e3, e4 = table.unpack(log.requests)
      assert.are.same({ "GET", "/contacts/", "limit=2&locationId=" .. LOC, "2021-07-28", 502, true, "/contacts" },
        { e1.method, e1.path, e1.query, e1.version, e1.status, e1.chaos, e1.route })
      assert.are.same({ 200, false }, { e2.status, e2.chaos })
      assert.are.equal(e1.query, e2.query)
      assert.are.same({ "/calendars/", "2021-04-15", 200 }, { e3.path, e3.version, e3.status })
      assert.are.same({ 404, cjson.null }, { e4.status, e4.route })
      assert.is_true(e1.seq < e2.seq and e2.seq < e3.seq)
      assert.is_true(math.abs(e1.at - sys.time() * 1000) < 60000)
      local only = requests(s, { method = "GET", path = "/contacts" })
      assert.are.equal(2, only.total)
    end)

    it("shows a failed POST once, and it created nothing", function()
      local before = s.stats().locations[LOC].contacts
      set_chaos(s, { { method = "POST", path = "/contacts/", status = 503 } })
      local resp = call(s, "POST", "/contacts/", { json = { locationId = LOC, firstName = "Chaos" } })
      assert.are.equal(503, resp.status)
      assert.are.equal(before, s.stats().locations[LOC].contacts)
      assert.are.equal(1, requests(s, { method = "POST", path = "/contacts/" }).total)
      assert.are.equal(201, call(s, "POST", "/contacts/", { json = { locationId = LOC, firstName = "Chaos" } }).status)
      assert.are.equal(before + 1, s.stats().locations[LOC].contacts)
      assert.are.equal(2, requests(s, { method = "POST", path = "/contacts/" }).total)
    end)

    it("resets or closes the connection, fires rules in order, and matches route templates and patterns", function()
      local id = contact_ids(s, 1)[1]
      set_chaos(s, { { path = "/contacts/:contactId", reset = true },
                     { method = "GET", path = "/contacts/:contactId", close = true },
                     { pattern = "^/contacts/%w+$", status = 500, message = "boom", headers = { ["X-Sim"] = "1" } } })
      -- the curl tool on a fresh connection: libcurl retries a request whose
      -- reused connection closed without an answer, which would hide the close
      local function curl()
        return run.sh(string.format("curl -sS --max-time 10 -o /dev/null -H %s -H %s %s",
          run.quote("Authorization: Bearer " .. TOKEN), run.quote("Version: 2021-07-28"),
          run.quote(s.url .. "/contacts/" .. id)), { env = { no_proxy = sim.NO_PROXY, NO_PROXY = sim.NO_PROXY } })
      end
      local r1, r2 = curl(), curl()
      assert.are.equal(56, r1.code, r1.err)   -- CURLE_RECV_ERROR: connection reset
      assert.are.equal(52, r2.code, r2.err)   -- CURLE_GOT_NOTHING: empty reply
      local r3, b3 = call(s, "GET", "/contacts/" .. id)
      assert.are.same({ 500, "boom", "1" }, { r3.status, b3.message, r3.headers["x-sim"] })
      assert.are.equal(200, call(s, "GET", "/contacts/" .. id).status)
      local statuses = {}
      for _, e in ipairs(requests(s).requests) do statuses[#statuses + 1] = e.status end
      assert.are.same({ "reset", "close", 500, 200 }, statuses)
    end)

    it("delays an answer while the request takes effect", function()
      set_chaos(s, { { method = "POST", path = "/contacts/", delay_ms = 600 } })
      local before = s.stats().locations[LOC].contacts
      local resp, err = http.request { method = "POST", url = s.url .. "/contacts/", headers = s.headers(TOKEN),
        json = { locationId = LOC, firstName = "Slow" }, timeout = 0.2 }
      assert.is_nil(resp)
      assert.are.equal("timeout", err.kind)
      assert.are.equal(before + 1, s.stats().locations[LOC].contacts)
      set_chaos(s, { { method = "GET", path = "/contacts/", delay_ms = 300, status = 429 } })
      local r = call(s, "GET", "/contacts/", { query = { locationId = LOC, limit = 1 } })
      assert.are.equal(429, r.status)
      local e = requests(s).requests[1]
      assert.are.same({ 429, true, 300 }, { e.status, e.chaos, e.delayMs })
      -- it counts against the limit like any answer on an API route
      assert.are.equal(tonumber(r.headers["x-ratelimit-remaining"]), e.remaining)
      -- held back: once the answer is in, the simulator's clock is past its due time
      assert.is_true(simlog.now_ms(s) >= simlog.answered(e), "the 429 was not held back")
    end)

    it("also fires on public routes such as the token endpoint, never on /__sim", function()
      set_chaos(s, { { method = "POST", path = "/oauth/token", status = 503 }, { pattern = "^/__sim", status = 500 } })
      local resp = assert(http.request { method = "POST", url = s.url .. "/oauth/token",
        form = { grant_type = "refresh_token", client_id = "x", client_secret = "y", refresh_token = "z" } })
      assert.are.equal(503, resp.status)
      assert.are.equal(200, assert(http.request { url = s.url .. "/__sim/stats" }).status)
      assert.are.equal(1, requests(s).total)
    end)

    it("rejects malformed rules and changes nothing", function()
      set_chaos(s, { { path = "/contacts/", status = 503 } })
      for _, bad in ipairs {
        { rules = { { path = "contacts", status = 503 } } },
        { rules = { { path = "/contacts/", status = 99 } } },
        { rules = { { path = "/contacts/", status = 503, reset = true } } },
        { rules = { { path = "/contacts/" } } },
        { rules = { { path = "/contacts/", status = 503, times = 0 } } },
        { rules = { { pattern = "[", status = 503 } } },
        { rules = { { path = "/contacts/", status = 503, colour = "red" } } },
        { nope = true },
      } do
        local resp = assert(http.request { method = "PUT", url = s.url .. "/__sim/chaos", json = bad })
        assert.are.equal(400, resp.status, cjson.encode(bad))
      end
      local rules = assert(http.request { url = s.url .. "/__sim/chaos" }):json().rules
      assert.are.equal(1, #rules)
    end)

    it("keeps only the last 1000 requests", function()
      assert(http.request { method = "DELETE", url = s.url .. "/__sim/requests" })
      for i = 1, 1010 do assert(http.request { url = s.url .. "/__fault/status", query = { code = 200, i = i } }) end
      local log = requests(s)
      assert.are.equal(1000, log.total)
      assert.are.equal(10, log.dropped)
      assert.are.equal("code=200&i=11", log.requests[1].query)
      assert.are.equal("code=200&i=1010", log.requests[1000].query)
    end)
  end)
end)

describe("ghlua sim --strict-version", function()
  local s
  setup(function() s = sim.start { "--strict-version", "--token", TOKEN, "--contacts", "3" } end)
  teardown(function() if s then s.stop() end end)

  local function status(path, version, query)
    local resp, body = call(s, "GET", path, { version = version, query = query or { locationId = LOC } })
    return resp.status, body.message
  end

  it("answers 401 to another family's published Version", function()
    assert.are.same({ 401, "version header is invalid" }, { status("/contacts/", "2021-04-15") })
    assert.are.same({ 401, "version header is invalid" }, { status("/contacts/", "2023-02-21") })
    assert.are.same({ 401, "version header is invalid" }, { status("/calendars/", "2021-07-28") })
    assert.are.same({ 401, "version header is invalid" }, { status("/conversations/search", "2021-07-28") })
    assert.are.same({ 401, "version header is invalid" }, { status("/opportunities/pipelines", "2021-04-15") })
    assert.are.same({ 401, "version header is invalid" }, { status("/users/", "v3") })
    assert.are.same({ 401, "version header is invalid" },
      { status("/oauth/installed-locations", "2021-07-28", { companyId = COMPANY, appId = "x" }) })
  end)

  it("accepts each family's own Version", function()
    assert.are.equal(200, (status("/contacts/", "2021-07-28")))
    assert.are.equal(200, (status("/locations/" .. LOC .. "/customFields", "2021-07-28")))
    assert.are.equal(200, (status("/opportunities/pipelines", "2021-07-28")))
    assert.are.equal(200, (status("/users/", "2021-07-28")))
    assert.are.equal(200, (status("/calendars/", "2021-04-15")))
    assert.are.equal(200, (status("/conversations/search", "2021-04-15")))
    -- v3 passes the Version check; a static Location token then fails the token kind
    local st, msg = status("/oauth/installed-locations", "v3", { companyId = COMPANY, appId = "x" })
    assert.are.same({ 401, "This authClass type is not allowed to access this scope." }, { st, msg })
    assert.are.same({ 401, "version header was not found." }, { status("/contacts/", "") })
    assert.are.same({ 401, "version header is invalid" }, { status("/contacts/", "2020-01-01") })
  end)

  it("is described as simulator-strict in the help", function()
    local r = run.ghlua { "sim", "--help" }
    assert.are.equal(0, r.code)
    assert.matches("%-%-strict%-version", r.out)
    assert.matches("simulator%-strict", r.out)
    assert.matches("accepts any published version", r.out)
  end)
end)

describe("ghlua sim installed locations and locations search over 250 locations", function()
  local s, apps_file, company
  setup(function()
    apps_file = write_file(APPS_JSON)
    s = sim.start { "--locations", "249", "--apps", apps_file, "--auto-approve", "--rate-max", "100000" }
    company = oauth_token(s, AGENCY, AGENCY_SECRET, "oauth.readonly oauth.write locations.readonly users.readonly")
  end)
  teardown(function()
    if s then s.stop() end
    os.remove(apps_file)
  end)

  it("announces 250 locations", function()
    assert.are.equal(250, #s.ready.locations)
  end)

  it("pages /oauth/installedLocations with skip/limit", function()
    local seen, n, skip = {}, 0, 0
    local count
    repeat
      local body = ok(s, "GET", "/oauth/installedLocations", { token = company,
        query = { companyId = COMPANY, appId = AGENCY, skip = tostring(skip), limit = "100" } })
      count = body.count
      for _, l in ipairs(body.locations) do
        assert.is_nil(seen[l._id], "repeated " .. l._id)
        seen[l._id], n = true, n + 1
      end
      skip = skip + 100
    until #body.locations < 100
    assert.are.same({ 250, 250 }, { count, n })
    for _, loc in ipairs(s.ready.locations) do assert.is_true(seen[loc.id], loc.id) end
  end)

  it("pages /oauth/installed-locations (v3) with pageSize and opaque page tokens", function()
    local function page(q)
      q.companyId, q.appId = COMPANY, q.appId or AGENCY
      local resp, body = call(s, "GET", "/oauth/installed-locations", { token = company, version = "v3", query = q })
      return resp, body
    end
    local seen, ids, token, pages = {}, {}, nil, {}
    repeat
      local resp, body = page { pageSize = 100, pageToken = token }
      assert.are.equal(200, resp.status, resp.body)
      local p = body.pagination
      pages[#pages + 1] = body
      assert.are.equal(250, p.totalRecords)
      assert.are.equal(#body.items, p.currentPageSize)
      assert.are.equal(true, body.installToFutureLocations)   -- "--auto-approve": every location and future ones
      for _, l in ipairs(body.items) do
        assert.is_nil(seen[l._id], "repeated " .. l._id)
        seen[l._id] = true
        ids[#ids + 1] = l._id
        assert.is_string(l.name)
        assert.is_string(l.address)
        assert.is_boolean(l.isInstalled)
      end
      token = p.hasNextPage and p.nextPageToken or nil
      if token then assert.matches("^[%w_-]+$", token) end
    until not token
    assert.are.equal(3, #pages)
    assert.are.equal(250, #ids)
    assert.are.same({ false, true, true }, { pages[1].pagination.hasPrevPage, pages[2].pagination.hasPrevPage,
      pages[3].pagination.hasPrevPage })
    assert.are.same({ true, true, false }, { pages[1].pagination.hasNextPage, pages[2].pagination.hasNextPage,
      pages[3].pagination.hasNextPage })
    assert.is_true(isnull(pages[1].pagination.prevPageToken))
    assert.is_true(isnull(pages[3].pagination.nextPageToken))
    -- prevPageToken of the third page gives the second page again
    local _, again = page { pageSize = 100, pageToken = pages[3].pagination.prevPageToken }
    assert.are.equal(pages[2].items[1]._id, again.items[1]._id)
    -- the default page size, and the v2 order
    local _, first = page {}
    assert.are.equal(20, #first.items)
    local v2 = ok(s, "GET", "/oauth/installedLocations", { token = company,
      query = { companyId = COMPANY, appId = AGENCY, limit = "20" } })
    for i = 1, 20 do assert.are.equal(v2.locations[i]._id, first.items[i]._id) end
  end)

  it("answers v3 errors: 422 for pageSize, AIP envelopes for a bad token and an unknown app", function()
    local function get(q)
      q.companyId = q.companyId or COMPANY
      q.appId = q.appId or AGENCY
      local resp, body = call(s, "GET", "/oauth/installed-locations", { token = company, version = "v3", query = q })
      return resp.status, body
    end
    assert.are.equal(422, (get { pageSize = 101 }))
    assert.are.equal(422, (get { pageSize = 0 }))
    local st, body = get { pageToken = "not a token!" }
    assert.are.same({ 400, "INVALID_ARGUMENT" }, { st, body.error.code })
    assert.is_string(body.error.message)
    st, body = get { appId = "000000000000000000000000" }
    assert.are.same({ 404, "RESOURCE_NOT_FOUND" }, { st, body.error.code })
    assert.is_string(body.error.resolution)
    assert.are.equal(403, (get { companyId = "OtherCompany00000001" }))
    assert.are.equal(422, (get { appId = "" }))
  end)

  it("pages /locations/search with skip/limit for a Company token", function()
    local seen, n = {}, 0
    for skip = 0, 240, 60 do
      local body = ok(s, "GET", "/locations/search", { token = company,
        query = { companyId = COMPANY, skip = tostring(skip), limit = "60" } })
      assert.are.equal(skip < 240 and 60 or 10, #body.locations)
      for _, l in ipairs(body.locations) do
        assert.is_nil(seen[l.id], "repeated " .. l.id)
        assert.are.equal(COMPANY, l.companyId)
        seen[l.id], n = true, n + 1
      end
    end
    assert.are.equal(250, n)
    assert.are.equal(10, #ok(s, "GET", "/locations/search", { token = company }).locations)
    local desc = ok(s, "GET", "/locations/search", { token = company, query = { order = "desc", limit = "1" } })
    assert.are.equal(s.ready.locations[250].id, desc.locations[1].id)
    assert.are.equal(422, call(s, "GET", "/locations/search", { token = company, query = { skip = "-1" } }).status)
  end)

  it("gets users with a Company token", function()
    local body = ok(s, "GET", "/users/" .. s.ready.userId, { token = company })
    assert.are.equal(s.ready.userId, body.id)
    assert.are.equal(250, #body.roles.locationIds)
    -- /users/?locationId= is a sub-account route
    assert.are.equal(401, call(s, "GET", "/users/", { token = company, query = { locationId = LOC } }).status)
  end)
end)

describe("ghlua sim rate-limit answers", function()
  local RATE_HEADERS = { "x-ratelimit-limit-daily", "x-ratelimit-daily-remaining",
    "x-ratelimit-interval-milliseconds", "x-ratelimit-max", "x-ratelimit-remaining" }

  it("sends the five headers with a burst 429, whose message is not the daily one", function()
    local s = sim.start { "--token", TOKEN, "--rate-max", "2", "--rate-interval-ms", "60000" }
    finally(s.stop)
    for _ = 1, 2 do assert.are.equal(200, call(s, "GET", "/contacts/", { query = { locationId = LOC } }).status) end
    local resp, body = call(s, "GET", "/contacts/", { query = { locationId = LOC } })
    assert.are.same({ 429, "Too Many Requests" }, { resp.status, body.message })
    for _, h in ipairs(RATE_HEADERS) do assert.is_string(resp.headers[h], h) end
    assert.are.same({ "0", "199998" }, { resp.headers["x-ratelimit-remaining"], resp.headers["x-ratelimit-daily-remaining"] })
  end)

  it("says the daily limit is reached when X-RateLimit-Daily-Remaining is 0", function()
    local s = sim.start { "--token", TOKEN, "--rate-daily", "2" }
    finally(s.stop)
    for _ = 1, 2 do assert.are.equal(200, call(s, "GET", "/contacts/", { query = { locationId = LOC } }).status) end
    local resp, body = call(s, "GET", "/contacts/", { query = { locationId = LOC } })
    assert.are.equal(429, resp.status)
    for _, h in ipairs(RATE_HEADERS) do assert.is_string(resp.headers[h], h) end
    assert.are.equal("0", resp.headers["x-ratelimit-daily-remaining"])
    assert.matches("daily limit", body.message)
    assert.are.equal(429, body.statusCode)
  end)

  it("uses fixed windows, as the help says", function()
    local r = run.ghlua { "sim", "--help" }
    assert.matches("fixed, not sliding", r.out)
    -- max 2 per 60 s: requests at 0 and 40 s fill the first window; at
    -- 70 s a fixed window is new (two more pass), a sliding one would
    -- still hold the 40 s request (one more passes). The simulator's
    -- clock moves (PUT /__sim/clock), not the real one.
    local s = sim.start { "--token", TOKEN, "--rate-max", "2", "--rate-interval-ms", "60000" }
    finally(s.stop)
    local fixture = require "support.fixture"
    local function get() return call(s, "GET", "/contacts/", { query = { locationId = LOC } }).status end
    assert.are.equal(200, get())
    fixture.clock(s, { advance = 40 })
    assert.are.equal(200, get())
    assert.are.equal(429, get())
    fixture.clock(s, { advance = 30 })
    assert.are.same({ 200, 200 }, { get(), get() })
  end)
end)
