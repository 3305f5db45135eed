-- ghl.sim.notes: contact notes (Contacts family, Version 2021-07-28,
-- scopes contacts.readonly / contacts.write, Location tokens):
--   GET    /contacts/{contactId}/notes        -> {notes: [...]} oldest first
--   POST   /contacts/{contactId}/notes        body {body (required), userId,
--          title, color, pinned} -> 201 {note}
--   GET    /contacts/{contactId}/notes/{id}   -> {note}
--   PUT    /contacts/{contactId}/notes/{id}   -> {note}
--   DELETE /contacts/{contactId}/notes/{id}   -> {succeded: true}
-- A note is {id, body, userId, title, color, pinned, dateAdded, contactId};
-- notes live on the contact and go with it. Handlers raise through
-- reply.raise: 422 for validation, 400 for an unknown contact or note, 403
-- for a contact of another location.
local reply = require "ghl.sim.reply"
local validate = require "ghl.sim.validate"
local auth = require "ghl.sim.auth"

local M = {}

local array = reply.array

local FIELDS = { userId = "string", body = "string", title = "string", color = "string", pinned = "boolean" }
local CREATE = { props = FIELDS, required = { "body" } }
local UPDATE = { props = FIELDS }

local function contact(ctx)
  local c = ctx.state.contacts[ctx.params.contactId]
  if not c then reply.raise(400, "Contact not found") end
  auth.check_location(ctx.token, c.locationId)
  c.notes = c.notes or {}
  return c
end

local function note(ctx)
  local c = contact(ctx)
  for i, n in ipairs(c.notes) do
    if n.id == ctx.params.id then return n, i, c end
  end
  reply.raise(400, "Note not found")
end

local function present(n)
  return { id = n.id, body = n.body, userId = n.userId, title = n.title, color = n.color,
    pinned = n.pinned or false, dateAdded = reply.iso8601(n.added_ms), contactId = n.contactId }
end

local function list(ctx)
  local out = array()
  for _, n in ipairs(contact(ctx).notes) do out[#out + 1] = present(n) end
  return 200, { notes = out }
end

local function create(ctx)
  local body = ctx.body or {}
  validate.assert(body, CREATE)
  local c = contact(ctx)
  local n = { id = ctx.state:new_id(), contactId = c.id, added_ms = ctx.state:now_ms(),
    userId = body.userId or ctx.state.user_id }
  for k in pairs(FIELDS) do if body[k] ~= nil and k ~= "userId" then n[k] = body[k] end end
  c.notes[#c.notes + 1] = n
  return 201, { note = present(n) }
end

local function get(ctx)
  return 200, { note = present(note(ctx)) }
end

local function update(ctx)
  local body = ctx.body or {}
  validate.assert(body, UPDATE)
  local n = note(ctx)
  for k in pairs(FIELDS) do if body[k] ~= nil then n[k] = body[k] end end
  return 200, { note = present(n) }
end

local function delete(ctx)
  local _, i, c = note(ctx)
  table.remove(c.notes, i)
  return 200, { succeded = true }
end

local READ, WRITE = "contacts.readonly", "contacts.write"

M.routes = {
  { method = "GET", path = "/contacts/:contactId/notes", handler = list, scope = READ },
  { method = "POST", path = "/contacts/:contactId/notes", handler = create, scope = WRITE },
  { method = "GET", path = "/contacts/:contactId/notes/:id", handler = get, scope = READ },
  { method = "PUT", path = "/contacts/:contactId/notes/:id", handler = update, scope = WRITE },
  { method = "DELETE", path = "/contacts/:contactId/notes/:id", handler = delete, scope = WRITE },
}
for _, r in ipairs(M.routes) do r.family = "contacts" end

return M
