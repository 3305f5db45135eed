-- ghl.sim.conversations: two routes of the Conversations API family
-- (Version 2021-04-15, Location tokens):
--   POST /conversations/messages            conversations/message.write
--        {type = "SMS" | "Email", contactId, message (SMS; Email: html or
--        message), subject, ...} -> {conversationId, messageId, msg} (and
--        emailMessageId for an Email); the message goes into the contact's
--        one conversation, made on first use. Nothing is delivered.
--   GET  /conversations/search?locationId=   conversations.readonly
--        contactId, query (contact name, email, phone, last message),
--        status (all | read | unread | starred | recents), sort (asc |
--        desc by last message date, default desc), startAfterDate (epoch
--        ms: the lastMessageDate of the last conversation seen), limit
--        (1-100, default 20) -> {conversations, total}
-- The other message types of the spec's enum (WhatsApp, IG, ...) answer
-- 400: the simulator sends only SMS and Email. Handlers raise through
-- reply.raise: 422 for validation, 400 for an unknown contact or one
-- without the phone number or email the type needs, 403 for a contact of
-- another location.
local reply = require "ghl.sim.reply"
local validate = require "ghl.sim.validate"
local auth = require "ghl.sim.auth"
local contacts = require "ghl.sim.contacts"

local M = {}

local array, null = reply.array, reply.null

M.TYPES = { "SMS", "RCS", "Email", "WhatsApp", "IG", "FB", "Custom", "Live_Chat", "TIKTOK" }
M.MAX_LIMIT = 100

local SEND = { props = {
  type = { "string", enum = M.TYPES }, subType = "any", contactId = "string", appointmentId = "string",
  attachments = "string[]", emailFrom = "string", emailCc = "string[]", emailBcc = "string[]",
  html = "string", message = "string", subject = "string", replyMessageId = "string",
  templateId = "string", threadId = "string", scheduledTimestamp = "number",
  conversationProviderId = "string", emailTo = "string", customSubtypeId = "string",
  emailReplyMode = { "string", enum = { "reply", "reply_all" } }, fromNumber = "string",
  toNumber = "string", forward = "object", status = { "string", enum = { "delivered", "failed", "pending", "read" } },
  usesNativeSchedulingAi = "boolean", optimizationPeriod = { "string", enum = { "24h", "48h", "72h" } } },
  required = { "type", "contactId" } }

local STATUSES = { all = true, read = true, unread = true, starred = true, recents = true }

-- ---- The store ----

local function init(_, _, store)
  store.by_contact = {}   -- contact id -> conversation
end

local function store_of(state, location_id)
  return state:store(location_id, "conversations", init)
end

local function present_text(v)
  return type(v) == "string" and v ~= "" and v or nil
end

local function present(state, cv)
  local c = state.contacts[cv.contactId] or {}
  local last = cv.messages[#cv.messages]
  return {
    id = cv.id, contactId = cv.contactId, locationId = cv.locationId,
    lastMessageBody = last and last.body or "", lastMessageType = last and last.kind or null,
    lastMessageDirection = "outbound", lastMessageDate = cv.last_ms,
    type = cv.channel, unreadCount = 0, starred = false,
    fullName = contacts.full_name(c), contactName = contacts.full_name(c), email = c.email or null, phone = c.phone or null,
    dateAdded = cv.added_ms, dateUpdated = cv.last_ms,
  }
end

-- ---- Handlers ----

local function send(ctx)
  local body, state = ctx.body or {}, ctx.state
  validate.assert(body, SEND)
  if body.type ~= "SMS" and body.type ~= "Email" then
    reply.raise(400, "The simulator sends only SMS and Email messages, not " .. body.type)
  end
  local c = state.contacts[body.contactId]
  if not c then reply.raise(400, "Contact not found") end
  auth.check_location(ctx.token, c.locationId, state)
  local text
  if body.type == "SMS" then
    text = present_text(body.message)
    if not text then reply.invalid { "message should not be empty" } end
    if not c.phone then reply.raise(400, "The contact has no phone number") end
  else
    text = present_text(body.html) or present_text(body.message)
    if not text then reply.invalid { "html or message should not be empty" } end
    if not c.email then reply.raise(400, "The contact has no email address") end
  end
  local store, ms = store_of(state, c.locationId), state:now_ms()
  local cv = store.by_contact[c.id]
  if not cv then
    cv = { id = state.rng:id(20), contactId = c.id, locationId = c.locationId, messages = {},
      added_ms = ms, channel = body.type == "SMS" and "TYPE_PHONE" or "TYPE_EMAIL" }
    store.by_contact[c.id] = cv
  end
  local m = { id = state.rng:id(20), type = body.type, kind = body.type == "SMS" and "TYPE_SMS" or "TYPE_EMAIL",
    body = text, subject = body.subject, at_ms = ms }
  cv.messages[#cv.messages + 1] = m
  cv.last_ms = ms
  local out = { conversationId = cv.id, messageId = m.id, msg = "Message queued successfully." }
  if body.type == "Email" then
    m.email_id = state.rng:id(20)
    out.emailMessageId = m.email_id
  end
  return 200, out
end

local function search(ctx)
  local q, state = ctx.query, ctx.state
  if q.locationId == nil or q.locationId == "" then
    reply.invalid { "locationId should not be empty", "locationId must be a string" }
  end
  local limit = 20
  if q.limit ~= nil and q.limit ~= "" then
    limit = validate.to_int(q.limit)
    if not limit then reply.invalid { "limit must be a number conforming to the specified constraints" } end
    if limit < 1 then reply.invalid { "limit must not be less than 1" } end
    if limit > M.MAX_LIMIT then reply.invalid { "limit must not be greater than " .. M.MAX_LIMIT } end
  end
  local sort = q.sort or "desc"
  if sort ~= "asc" and sort ~= "desc" then reply.invalid { "sort must be one of the following values: asc, desc" } end
  local status = q.status or "all"
  if not STATUSES[status] then
    reply.invalid { "status must be one of the following values: all, read, unread, starred, recents" }
  end
  local after
  if q.startAfterDate ~= nil and q.startAfterDate ~= "" then
    after = tonumber(q.startAfterDate)
    if not after then reply.invalid { "startAfterDate must be a number" } end
  end
  local words = q.query and q.query ~= "" and q.query:lower() or nil
  local list = {}
  for _, cv in pairs(store_of(state, q.locationId).by_contact) do
    local c = state.contacts[cv.contactId] or {}
    local ok = (q.contactId == nil or q.contactId == "" or cv.contactId == q.contactId)
      and status ~= "unread" and status ~= "starred"   -- every message is outbound: nothing unread
    if ok and words then
      ok = false
      for _, v in ipairs { contacts.full_name(c), c.email or "", c.phone or "", cv.messages[#cv.messages].body } do
        if v:lower():find(words, 1, true) then ok = true end
      end
    end
    if ok then list[#list + 1] = cv end
  end
  -- last_ms values are distinct (state:now_ms), so the order is total
  table.sort(list, function(a, b)
    if sort == "asc" then return a.last_ms < b.last_ms end
    return a.last_ms > b.last_ms
  end)
  local total, out = #list, array()
  for _, cv in ipairs(list) do
    if #out >= limit then break end
    if not after or (sort == "asc" and cv.last_ms > after) or (sort == "desc" and cv.last_ms < after) then
      out[#out + 1] = present(state, cv)
    end
  end
  return 200, { conversations = out, total = total }
end

-- ---- Routes ----

M.routes = {
  { method = "POST", path = "/conversations/messages", handler = send, scope = "conversations/message.write" },
  { method = "GET", path = "/conversations/search", handler = search, scope = "conversations.readonly" },
}
for _, r in ipairs(M.routes) do r.family = "conversations" end

return M
