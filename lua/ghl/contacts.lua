-- ghl.contacts: the Contacts API (Version 2021-07-28, scopes
-- contacts.readonly / contacts.write) with custom fields by key.
--   contacts.create(client, fields) -> contact | nil, duplicate
--   contacts.upsert(client, fields) -> contact, created (boolean)
--   contacts.get(client, id) / update(client, id, fields) / delete(client, id)
--   contacts.search(client [, params [, {max=}]]) -> iterator of contacts
--   contacts.count(client [, params]) -> number of contacts matching
--   contacts.find(client, {email=, phone=}) / find_by_email / find_by_phone
--       -> contact or nil
--   contacts.add_tags(client, id, tags) / remove_tags(client, id, tags) -> tags
--   contacts.notes(client, id) -> notes; add_note(client, id, body [, user_id])
--   contacts.values(contact) -> {key = value} of its custom fields
-- Every call also works on the client: c.contacts:create(fields).
-- fields.customFields may be a map {budget = 5000} or an array of {key=,
-- value=} / {id=, value=}; keys are resolved to ids (ghl.custom_fields), an
-- unknown key raises a ghl.error of kind "field" listing the real keys.
-- Contacts read back carry key, fieldKey and name on each custom field.
-- create answers HighLevel's duplicate-contact error (400, meta.contactId)
-- with nil and a duplicate value {duplicate = true, id, name, field,
-- error}, never a raise; every other failure raises the client's
-- ghl.error. In a dry run, writes return stand-ins with id "dry-run-N".
local R = require "ghl.resource"
local CF = require "ghl.custom_fields"
local E = require "ghl.error"
local cjson = require "cjson.safe"

local M = {}

M.ENDPOINTS = {
  create = { "POST", "/contacts/" },
  upsert = { "POST", "/contacts/upsert" },
  get = { "GET", "/contacts/{contactId}" },
  update = { "PUT", "/contacts/{contactId}" },
  delete = { "DELETE", "/contacts/{contactId}" },
  search = { "POST", "/contacts/search" },
  find = { "GET", "/contacts/search/duplicate" },
  add_tags = { "POST", "/contacts/{contactId}/tags" },
  remove_tags = { "DELETE", "/contacts/{contactId}/tags" },
  notes = { "GET", "/contacts/{contactId}/notes" },
  add_note = { "POST", "/contacts/{contactId}/notes" },
}

local Duplicate = {}
Duplicate.__index = Duplicate
Duplicate.__tostring = function(d)
  return ("duplicate of contact %s (%s matches)"):format(tostring(d.id), tostring(d.field or "?"))
end

-- is_duplicate(v) -> whether v is create's duplicate value.
function M.is_duplicate(v)
  return getmetatable(v) == Duplicate
end

local function path(name, id)
  return R.path(M.ENDPOINTS[name][2], { contactId = id })
end

-- The body to send: customFields resolved, locationId added when asked.
local function body_of(client, fields, with_location)
  local loc = R.location(client, "contacts")
  local body = R.copy(fields)
  if with_location then body.locationId = body.locationId or loc else body.locationId = nil end
  if body.customFields ~= nil then
    body.customFields = CF.resolve(client, body.customFields, "contact")
    if #body.customFields == 0 then body.customFields = nil end   -- {} would go out as a JSON object
  end
  return body
end

local function decorate(client, c)
  if type(c) == "table" then CF.decorate(client, c, "contact") end
  return c
end

function M.create(client, fields)
  local body = body_of(client, fields, true)
  local ok, r = pcall(client.post, client, M.ENDPOINTS.create[2], body)
  if not ok then
    local e = r
    if E.is(e) and e.status == 400 and type(e.meta) == "table" and e.meta.contactId then
      return nil, setmetatable({ duplicate = true, id = e.meta.contactId, name = e.meta.contactName,
        field = e.meta.matchingField, error = e }, Duplicate)
    end
    error(e, 0)
  end
  return decorate(client, R.entity(r, "contact", body))
end

function M.upsert(client, fields)
  local body = body_of(client, fields, true)
  local r = client:post(M.ENDPOINTS.upsert[2], body)
  if r.dryRun then return decorate(client, R.entity(r, nil, body)), nil end
  return decorate(client, r.contact), r.new == true
end

function M.get(client, id)
  R.location(client, "contacts.get")
  return decorate(client, client:get(path("get", id)).contact)
end

function M.update(client, id, fields)
  local body = body_of(client, fields, false)
  return decorate(client, R.entity(client:put(path("update", id), body), "contact", body))
end

function M.delete(client, id)
  R.location(client, "contacts.delete")
  client:delete(path("delete", id))
  return true
end

-- search(client, {query=, filters=, sort=, pageLimit=}, {max=}) -> iterator.
function M.search(client, params, o)
  R.location(client, "contacts.search")
  o = o or {}
  local it = client:paginate(M.ENDPOINTS.search[2], R.copy(params), { max = o.max, style = "page",
    method = "POST", on_page = o.on_page })
  return function()
    local c = it()
    if c ~= nil then decorate(client, c) end
    return c
  end
end

-- count(client [, {query=, filters=}]) -> the number of matching contacts.
function M.count(client, params)
  local loc = R.location(client, "contacts.count")
  local body = R.copy(params)
  body.locationId, body.pageLimit, body.page = loc, 1, 1
  return tonumber(client:post(M.ENDPOINTS.search[2], body).total) or 0
end

-- find(client, {email=, phone=}) -> contact or nil.
function M.find(client, q)
  local loc = R.location(client, "contacts.find")
  if type(q) ~= "table" or (not q.email and not q.phone) then error("contacts.find needs {email=} or {phone=}", 2) end
  local r = client:get(M.ENDPOINTS.find[2], { locationId = loc, email = q.email, number = q.phone })
  local c = r.contact
  if c == nil or c == cjson.null then return nil end
  return decorate(client, c)
end

function M.find_by_email(client, email) return M.find(client, { email = email }) end
function M.find_by_phone(client, phone) return M.find(client, { phone = phone }) end

local function tag_list(tags)
  if type(tags) == "string" then return { tags } end
  if type(tags) ~= "table" then error("tags must be a string or a list of strings", 3) end
  return tags
end

function M.add_tags(client, id, tags)
  R.location(client, "contacts.add_tags")
  local r = client:post(path("add_tags", id), { tags = tag_list(tags) })
  return r.tags or r
end

function M.remove_tags(client, id, tags)
  R.location(client, "contacts.remove_tags")
  local r = client:delete(path("remove_tags", id), { tags = tag_list(tags) })
  return r.tags or r
end

function M.notes(client, id)
  R.location(client, "contacts.notes")
  return client:get(path("notes", id)).notes or {}
end

function M.add_note(client, id, text, user_id)
  R.location(client, "contacts.add_note")
  local body = { body = text, userId = user_id }
  return R.entity(client:post(path("add_note", id), body), "note", body)
end

M.values = CF.values

return R.register(M)
