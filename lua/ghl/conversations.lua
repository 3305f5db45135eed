-- ghl.conversations: sending messages (Version 2021-04-15, scopes
-- conversations/message.write, conversations.readonly).
--   conversations.send(client, {type = "SMS" | "Email", contactId=, ...})
--       -> {conversationId, messageId, ...}
--   conversations.send_sms(client, contact_id, text [, extra])
--   conversations.send_email(client, contact_id, {subject=, html= |
--       message=, emailFrom=, ...})
--   conversations.search(client [, params]) -> {conversations, total}
-- Also as methods: c.conversations:send_sms(id, "hi"). Failures raise the
-- client's ghl.error; in a dry run a send is recorded, not made.
local R = require "ghl.resource"

local M = {}

M.ENDPOINTS = {
  send = { "POST", "/conversations/messages" },
  search = { "GET", "/conversations/search" },
}

function M.send(client, msg)
  R.location(client, "conversations.send")
  if type(msg) ~= "table" or not msg.type or not msg.contactId then
    error("conversations.send needs {type=, contactId=, ...}", 2)
  end
  return client:post(M.ENDPOINTS.send[2], R.copy(msg))
end

function M.send_sms(client, contact_id, text, extra)
  local m = R.copy(extra)
  m.type, m.contactId, m.message = "SMS", contact_id, text
  return M.send(client, m)
end

function M.send_email(client, contact_id, email)
  local m = R.copy(email)
  m.type, m.contactId = "Email", contact_id
  return M.send(client, m)
end

function M.search(client, params)
  local loc = R.location(client, "conversations.search")
  local q = R.copy(params)
  q.locationId = q.locationId or loc
  return client:get(M.ENDPOINTS.search[2], q)
end

return R.register(M)
