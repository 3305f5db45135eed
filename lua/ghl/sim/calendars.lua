-- ghl.sim.calendars: a few routes of the Calendars API family (Version
-- 2021-04-15, Location tokens), enough for a client's per-family Version
-- and for booking:
--   GET  /calendars/?locationId=[&groupId=]       calendars.readonly
--        -> {calendars: [...]}: every location starts with two calendars,
--        "Sim Consultations" (30 min, Mon-Fri 09:00-17:00) and "Sim Demo
--        Calls" (60 min, Mon-Thu 13:00-17:00)
--   GET  /calendars/{calendarId}/free-slots?startDate=&endDate=
--        (epoch ms, at most 31 days apart)            calendars.readonly
--        -> {"YYYY-MM-DD": {slots: ["2024-10-28T10:00:00+00:00", ...]}}
--        for the days that have a free slot starting in [startDate,
--        endDate]; a slot overlapping a booked (not cancelled) appointment
--        is not free
--   POST /calendars/events/appointments                calendars/events.write
--        calendarId, locationId, contactId, startTime (ISO 8601 with Z or an
--        offset) required; endTime defaults to one slot later; the start
--        must be a free slot unless ignoreFreeSlotValidation -> the
--        appointment (200, as in the spec)
--   GET  /calendars/events/appointments/{eventId}      calendars/events.readonly
--        -> {event: {...}}
-- The simulator works in UTC: open hours are UTC hours, the timezone query
-- parameter is ignored and times are written with a +00:00 offset.
-- Handlers raise through reply.raise: 422 for validation, 400 for an
-- unknown calendar, contact or appointment, a bad date range or a slot that
-- is not free, 403 for a record of another location.
local reply = require "ghl.sim.reply"
local validate = require "ghl.sim.validate"
local auth = require "ghl.sim.auth"
local util = require "ghl.util"

local M = {}

local array, null = reply.array, reply.null

local MINUTE, HOUR, DAY = 60000, 3600000, 86400000
M.MAX_RANGE_DAYS = 31

local CALENDARS = {
  { name = "Sim Consultations", slug = "sim-consultations", duration = 30, days = { 1, 2, 3, 4, 5 },
    open = 9, close = 17, description = "A 30 minute consultation" },
  { name = "Sim Demo Calls", slug = "sim-demo-calls", duration = 60, days = { 1, 2, 3, 4 },
    open = 13, close = 17, description = "A one hour product demo" },
}

M.APPOINTMENT_STATUSES = { "new", "confirmed", "cancelled", "showed", "noshow", "invalid" }

local CREATE = { props = {
  title = "string", meetingLocationType = { "string", enum = { "custom", "zoom", "gmeet", "phone",
    "address", "ms_teams", "google" } },
  meetingLocationId = "string", overrideLocationConfig = "boolean",
  appointmentStatus = { "string", enum = M.APPOINTMENT_STATUSES }, assignedUserId = "string",
  description = "string", address = "string", ignoreDateRange = "boolean", toNotify = "boolean",
  ignoreFreeSlotValidation = "boolean", rrule = "string", calendarId = "string", locationId = "string",
  contactId = "string", startTime = "string", endTime = "string" },
  required = { "calendarId", "locationId", "contactId", "startTime" } }

-- ---- Times ----

-- "2024-10-28T10:00:00+00:00" from epoch ms.
function M.iso(ms)
  return util.iso8601(ms // 1000, "+00:00")
end

-- Epoch ms from ISO 8601 "YYYY-MM-DDTHH:MM[:SS[.fff]]" followed by Z, an
-- offset (+05:30, -0500) or nothing (UTC); nil when malformed.
function M.parse_time(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d)(.*)$")
  if not y then return nil end
  local sec, r = rest:match("^:(%d%d)(.*)$")
  if sec then rest = r else sec = "00" end
  local frac
  frac, r = rest:match("^%.(%d+)(.*)$")
  if frac then rest = r end
  local offset = 0
  if rest ~= "Z" and rest ~= "" then
    local sign, oh, om = rest:match("^([+-])(%d%d):?(%d%d)$")
    if not sign then return nil end
    offset = (tonumber(oh) * 60 + tonumber(om)) * MINUTE * (sign == "+" and 1 or -1)
  end
  if tonumber(d) < 1 or tonumber(d) > 31 or tonumber(h) > 23 or tonumber(mi) > 59 or tonumber(sec) > 59 then
    return nil
  end
  local ms = reply.parse_iso8601(string.format("%s-%s-%sT%s:%s:%sZ", y, mo, d, h, mi, sec))
  if not ms then return nil end
  if frac then ms = ms + math.floor(tonumber("0." .. frac) * 1000 + 0.5) end
  return ms - offset
end

-- ---- The store ----

local function init(state, loc, store, rng)
  store.calendars, store.appointments = {}, {}
  local index = state:records("calendars")
  for _, c in ipairs(CALENDARS) do
    local days = {}
    for _, d in ipairs(c.days) do days[d] = true end
    local cal = { id = rng:id(20), locationId = loc.id, name = c.name, slug = c.slug,
      description = c.description, duration = c.duration, days = c.days, day_set = days,
      open = c.open, close = c.close }
    store.calendars[#store.calendars + 1] = cal
    index[cal.id] = cal
  end
end

local function store_of(state, location_id)
  return state:store(location_id, "calendars", init)
end

-- The calendar named by id, or raise 400 (unknown) / 403 (other location).
local function calendar_or_400(ctx, id)
  local cal = ctx.state:records("calendars")[id]
  if not cal then reply.raise(400, "Calendar not found") end
  auth.check_location(ctx.token, cal.locationId, ctx.state)
  return cal
end

-- Is [s, e) free of the calendar's booked appointments?
local function unbooked(state, cal, s, e)
  for _, a in pairs(store_of(state, cal.locationId).appointments) do
    if a.calendarId == cal.id and a.appointmentStatus ~= "cancelled" and a.start_ms < e and s < a.end_ms then
      return false
    end
  end
  return true
end

-- Is t (epoch ms) the start of an open, free slot?
local function is_free_slot(state, cal, t)
  local day = t // DAY
  local from, to = day * DAY + cal.open * HOUR, day * DAY + cal.close * HOUR
  local dur = cal.duration * MINUTE
  return cal.day_set[(day + 4) % 7] and t >= from and t + dur <= to and (t - from) % dur == 0
    and unbooked(state, cal, t, t + dur)
end

-- ---- Presenting ----

local function present_calendar(cal)
  local days = array({ table.unpack(cal.days) })
  return {
    id = cal.id, locationId = cal.locationId, name = cal.name, description = cal.description,
    slug = cal.slug, widgetSlug = cal.slug, calendarType = "event", widgetType = "classic",
    eventTitle = "{{contact.name}}", eventColor = "#039be5", isActive = true,
    slotDuration = cal.duration, slotDurationUnit = "mins", slotInterval = cal.duration,
    slotIntervalUnit = "mins", slotBuffer = 0, preBuffer = 0, appoinmentPerSlot = 1,
    openHours = array { { daysOfTheWeek = days, hours = array { { openHour = cal.open, openMinute = 0,
      closeHour = cal.close, closeMinute = 0 } } } },
    teamMembers = array(), autoConfirm = true, allowReschedule = true, allowCancellation = true,
  }
end

local function present_appointment(a)
  return {
    id = a.id, calendarId = a.calendarId, locationId = a.locationId, contactId = a.contactId,
    startTime = M.iso(a.start_ms), endTime = M.iso(a.end_ms), title = a.title,
    meetingLocationType = a.meetingLocationType or "custom", appointmentStatus = a.appointmentStatus,
    assignedUserId = a.assignedUserId or null, address = a.address or null, isRecurring = false,
  }
end

local function present_event(a)
  local e = present_appointment(a)
  e.meetingLocationType = nil
  e.groupId = ""
  e.users = array { a.assignedUserId }
  e.notes = a.notes or null
  e.description = a.description or null
  e.dateAdded, e.dateUpdated = M.iso(a.added_ms), M.iso(a.updated_ms)
  e.createdBy = { source = "third_party" }
  return e
end

-- ---- Handlers ----

local function list_calendars(ctx)
  local q = ctx.query
  if q.locationId == nil or q.locationId == "" then
    reply.invalid { "locationId should not be empty", "locationId must be a string" }
  end
  local out = array()
  if q.groupId == nil or q.groupId == "" then   -- the seeded calendars are in no group
    for _, cal in ipairs(store_of(ctx.state, q.locationId).calendars) do out[#out + 1] = present_calendar(cal) end
  end
  return 200, { calendars = out }
end

local function ms_param(q, name)
  local v = q[name]
  if v == nil or v == "" then
    reply.invalid { name .. " should not be empty", name .. " must be a number conforming to the specified constraints" }
  end
  local n = tonumber(v)
  if not n or n ~= n or n < 0 or n > 2^53 then
    reply.invalid { name .. " must be a number conforming to the specified constraints" }
  end
  return math.floor(n)
end

local function free_slots(ctx)
  local q = ctx.query
  local cal = calendar_or_400(ctx, ctx.params.calendarId)
  local s, e = ms_param(q, "startDate"), ms_param(q, "endDate")
  if e < s then reply.raise(400, "endDate must not be before startDate") end
  if e - s > M.MAX_RANGE_DAYS * DAY then
    reply.raise(400, string.format("The date range must not exceed %d days", M.MAX_RANGE_DAYS))
  end
  local out, dur = {}, cal.duration * MINUTE
  for day = s // DAY, e // DAY do
    if cal.day_set[(day + 4) % 7] then
      local slots = array()
      for t = day * DAY + cal.open * HOUR, day * DAY + cal.close * HOUR - dur, dur do
        if t >= s and t <= e and unbooked(ctx.state, cal, t, t + dur) then slots[#slots + 1] = M.iso(t) end
      end
      if #slots > 0 then out[os.date("!%Y-%m-%d", day * 86400)] = { slots = slots } end
    end
  end
  return 200, out
end

local function create_appointment(ctx)
  local body, state = ctx.body or {}, ctx.state
  validate.assert(body, CREATE)
  store_of(state, body.locationId)
  local cal = state:records("calendars")[body.calendarId]
  if not cal or cal.locationId ~= body.locationId then reply.raise(400, "Calendar not found") end
  local c = state.contacts[body.contactId]
  if not c or c.locationId ~= body.locationId then reply.raise(400, "Contact not found") end
  local start = M.parse_time(body.startTime)
  if not start then reply.invalid { "startTime must be a valid ISO 8601 date string" } end
  local finish = start + cal.duration * MINUTE
  if body.endTime ~= nil then
    finish = M.parse_time(body.endTime)
    if not finish then reply.invalid { "endTime must be a valid ISO 8601 date string" } end
    if finish <= start then reply.raise(400, "endTime must be after startTime") end
  end
  if not body.ignoreFreeSlotValidation
      and not (is_free_slot(state, cal, start) and unbooked(state, cal, start, finish)) then
    reply.raise(400, "The slot you have selected is no longer available.")
  end
  local ms = state:now_ms()
  local a = { id = state.rng:id(20), calendarId = cal.id, locationId = cal.locationId, contactId = c.id,
    start_ms = start, end_ms = finish, title = body.title or cal.name,
    meetingLocationType = body.meetingLocationType, appointmentStatus = body.appointmentStatus or "confirmed",
    assignedUserId = body.assignedUserId, address = body.address, description = body.description,
    added_ms = ms, updated_ms = ms }
  store_of(state, cal.locationId).appointments[a.id] = a
  state:records("appointments")[a.id] = a
  return 200, present_appointment(a)
end

local function get_appointment(ctx)
  local a = ctx.state:records("appointments")[ctx.params.eventId]
  if not a then reply.raise(400, "Appointment not found") end
  auth.check_location(ctx.token, a.locationId, ctx.state)
  return 200, { event = present_event(a) }
end

-- ---- Routes ----

M.routes = {
  { method = "GET", path = "/calendars/events/appointments/:eventId", handler = get_appointment,
    scope = "calendars/events.readonly" },
  { method = "POST", path = "/calendars/events/appointments", handler = create_appointment,
    scope = "calendars/events.write", body_location = true },
  { method = "GET", path = "/calendars/:calendarId/free-slots", handler = free_slots, scope = "calendars.readonly" },
  { method = "GET", path = "/calendars", handler = list_calendars, scope = "calendars.readonly" },
}
for _, r in ipairs(M.routes) do r.family = "calendars" end

return M
