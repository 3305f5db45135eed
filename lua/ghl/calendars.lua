-- ghl.calendars: calendars, free slots and appointments (Version
-- 2021-04-15, scopes calendars.readonly, calendars/events.readonly /
-- .write).
--   calendars.list(client) -> calendars
--   calendars.find(client, name_or_id) -> calendar or nil
--   calendars.free_slots(client, calendar_id, from, to) -> ["ISO time", ...]
--       from/to: epoch seconds, epoch ms or "YYYY-MM-DD" (UTC; a date as
--       `to` includes the whole day)
--   calendars.book(client, {calendarId=, contactId=, startTime=, ...})
--       -> appointment
--   calendars.appointment(client, id) -> appointment
-- Also as methods: c.calendars:free_slots(id, from, to). Failures raise the
-- client's ghl.error; a date that cannot be read raises a string.
local R = require "ghl.resource"

local M = {}

M.ENDPOINTS = {
  list = { "GET", "/calendars/" },
  free_slots = { "GET", "/calendars/{calendarId}/free-slots" },
  book = { "POST", "/calendars/events/appointments" },
  appointment = { "GET", "/calendars/events/appointments/{eventId}" },
}

function M.list(client)
  local loc = R.location(client, "calendars.list")
  return client:get(M.ENDPOINTS.list[2], { locationId = loc }).calendars or {}
end

function M.find(client, which)
  for _, c in ipairs(M.list(client)) do
    if c.id == which or (type(which) == "string" and type(c.name) == "string" and c.name:lower() == which:lower()) then
      return c
    end
  end
  return nil
end

-- Epoch milliseconds from seconds, milliseconds or "YYYY-MM-DD" (the
-- day's start, or with end_of_day its last millisecond).
local function ms(v, end_of_day)
  if type(v) == "number" then return math.floor(v < 1e11 and v * 1000 or v) end
  local y, m, d = tostring(v):match("^(%d%d%d%d)-(%d%d)-(%d%d)$")
  if not y then error("a date must be epoch seconds, epoch ms or YYYY-MM-DD, got " .. tostring(v), 3) end
  -- days from the civil date (UTC), without os.time's local zone
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  if m <= 2 then y = y - 1 end
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return (era * 146097 + doe - 719468) * 86400000 + (end_of_day and 86399999 or 0)
end
M.ms = ms

function M.free_slots(client, calendar_id, from, to)
  R.location(client, "calendars.free_slots")
  local r = client:get(R.path(M.ENDPOINTS.free_slots[2], { calendarId = calendar_id }),
    { startDate = ms(from), endDate = ms(to, true) })
  local days, out = {}, {}
  for day, v in pairs(r) do
    if type(v) == "table" and v.slots then days[#days + 1] = day end
  end
  table.sort(days)
  for _, day in ipairs(days) do
    for _, s in ipairs(r[day].slots) do out[#out + 1] = s end
  end
  return out
end

function M.book(client, fields)
  local loc = R.location(client, "calendars.book")
  local body = R.copy(fields)
  body.locationId = body.locationId or loc
  return R.entity(client:post(M.ENDPOINTS.book[2], body), nil, body)
end

function M.appointment(client, id)
  R.location(client, "calendars.appointment")
  local r = client:get(R.path(M.ENDPOINTS.appointment[2], { eventId = id }))
  return r.event or r.appointment or r
end

return R.register(M)
