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
--   contacts.csv_columns(client) -> the columns of a contacts CSV: id,
--       the writable fields (M.CSV_FIELDS), dateAdded, dateUpdated, tags,
--       then one per custom field, by key; and how many of those
--   contacts.to_row(contact) -> {column = value} for such a file (tags and
--       multi-valued fields joined with ";")
--   contacts.import_columns(client, columns) -> the columns an import skips
--       (M.CSV_SYSTEM: set by HighLevel, like id and dateAdded); raises kind
--       "field" for a column that is neither a field nor a custom field key
--   contacts.from_row(client, row) -> the fields to create or upsert from a
--       row of such a file (empty cells left out; custom values typed by
--       their field's dataType), the inverse of to_row
-- Every call also works on the client: c.contacts:create(fields).
-- fields.customFields may be a map {budget = 5000} or an array of {key=,
-- value=} / {id=, value=}; keys are resolved to ids (ghl.custom_fields), an
-- unknown key raises a ghl.error of kind "field" listing the real keys.
-- Contacts read back carry key, fieldKey and name on each custom field.
-- create answers HighLevel's duplicate-contact error (400, meta.contactId)
-- with nil and a duplicate value {duplicate = true, id, name, field,
-- error}, never a raise; every other failure raises the client's
-- ghl.error. In a dry run (client.dry_run) every write is planned, not
-- made, and answers a stand-in marked dryRun = true (id "dry-run-N", or
-- the id of the contact it would change); create and upsert look the
-- contact up first (GET /contacts/search/duplicate, a read, so the token
-- needs contacts.readonly), so upsert's created and create's duplicate are
-- what the real run would meet, contacts the same run planned included.
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

-- ---- Dry runs: what a create or an upsert would meet ----

-- The contacts a dry run planned, per client: "email:x" / "phone:digits"
-- -> the stand-in, so a second row with the same email is an update.
local planned = setmetatable({}, { __mode = "k" })

local function norm(field, v)
  if type(v) ~= "string" or v == "" then return nil end
  if field == "email" then return "email:" .. v:lower() end
  local digits = v:gsub("%D", "")
  return digits ~= "" and ("phone:" .. digits) or nil
end

-- The contact a write of body would meet: email first, then phone, as
-- HighLevel matches; -> contact (or a planned stand-in), field.
local function meets(client, body)
  local memo = planned[client] or {}
  local ke, kp = norm("email", body.email), norm("phone", body.phone)
  if ke and memo[ke] then return memo[ke], "email" end
  if not ke and not kp then return nil end
  local c = M.find(client, { email = ke and body.email or nil, phone = kp and body.phone or nil })
  if c then
    return c, (ke and type(c.email) == "string" and c.email:lower() == body.email:lower()) and "email" or "phone"
  end
  if kp and memo[kp] then return memo[kp], "phone" end
  return nil
end

local function plan(client, contact)
  local memo = planned[client] or {}
  planned[client] = memo
  for _, f in ipairs { "email", "phone" } do
    local k = norm(f, contact[f])
    if k then memo[k] = contact end
  end
end

local function duplicate(id, name, field, e)
  return setmetatable({ duplicate = true, id = id, name = name, field = field, error = e }, Duplicate)
end

local function name_of(c)
  local n = ((c.firstName or "") .. " " .. (c.lastName or "")):gsub("^%s+", ""):gsub("%s+$", "")
  return n ~= "" and n or c.contactName or c.name
end

function M.create(client, fields)
  local body = body_of(client, fields, true)
  local ok, r = pcall(client.post, client, M.ENDPOINTS.create[2], body)
  if not ok then
    local e = r
    if E.is(e) and e.status == 400 and type(e.meta) == "table" and e.meta.contactId then
      return nil, duplicate(e.meta.contactId, e.meta.contactName, e.meta.matchingField, e)
    end
    error(e, 0)
  end
  if type(r) == "table" and r.dryRun then
    local c, field = meets(client, body)
    if c then return nil, duplicate(c.id, name_of(c), field) end
    local stand_in = decorate(client, R.entity(r, "contact", body))
    plan(client, stand_in)
    return stand_in
  end
  return decorate(client, R.entity(r, "contact", body))
end

function M.upsert(client, fields)
  local body = body_of(client, fields, true)
  local r = client:post(M.ENDPOINTS.upsert[2], body)
  if r.dryRun then
    local c = meets(client, body)
    local stand_in = decorate(client, R.entity(r, nil, body, c and c.id))
    plan(client, stand_in)
    return stand_in, c == nil
  end
  return decorate(client, r.contact), r.new == true
end

function M.get(client, id)
  R.location(client, "contacts.get")
  return decorate(client, client:get(path("get", id)).contact)
end

function M.update(client, id, fields)
  local body = body_of(client, fields, false)
  return decorate(client, R.entity(client:put(path("update", id), body), "contact", body, id))
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

-- The tags an answer carries; in a dry run, the tags sent, marked dryRun.
local function tags_of(r, sent)
  if type(r) == "table" and r.dryRun then
    local t = { dryRun = true }
    for i, tag in ipairs(sent) do t[i] = tag end
    return t
  end
  return r.tags or r
end

function M.add_tags(client, id, tags)
  R.location(client, "contacts.add_tags")
  local list = tag_list(tags)
  return tags_of(client:post(path("add_tags", id), { tags = list }), list)
end

function M.remove_tags(client, id, tags)
  R.location(client, "contacts.remove_tags")
  local list = tag_list(tags)
  return tags_of(client:delete(path("remove_tags", id), { tags = list }), list)
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

-- ---- CSV rows ----

-- The writable fields a contacts CSV carries, in its column order.
M.CSV_FIELDS = { "firstName", "lastName", "email", "phone", "companyName", "address1", "city", "state",
  "postalCode", "country", "website", "timezone", "dateOfBirth", "gender", "source", "dnd" }

-- Columns HighLevel sets: exported, skipped on import.
M.CSV_SYSTEM = { id = true, dateAdded = true, dateUpdated = true, locationId = true, contactName = true,
  type = true }

-- Columns an import takes as contact fields (name and assignedTo are
-- not exported: a name is first and last, a user id belongs to its
-- location).
local IMPORT = { name = true, assignedTo = true }
for _, f in ipairs(M.CSV_FIELDS) do IMPORT[f] = true end

local MULTI = { CHECKBOX = true, MULTIPLE_OPTIONS = true }
local NUMBER = { NUMERICAL = true, MONETORY = true, MONETARY = true }

-- The column of a custom field: its bare key, or its full fieldKey when
-- the bare key is also a contact field's column ("contact.city").
local function column_of(key, field_key)
  if key and (IMPORT[key] or M.CSV_SYSTEM[key] or key == "tags") then return field_key or key end
  return key
end

function M.csv_columns(client)
  local cols = { "id" }
  for _, f in ipairs(M.CSV_FIELDS) do cols[#cols + 1] = f end
  for _, f in ipairs { "dateAdded", "dateUpdated", "tags" } do cols[#cols + 1] = f end
  local custom = {}
  for _, f in ipairs(CF.schema(client).list) do
    if f.model == nil or f.model == "contact" then custom[#custom + 1] = column_of(f.key, f.fieldKey) end
  end
  table.sort(custom)
  for _, c in ipairs(custom) do cols[#cols + 1] = c end
  return cols, #custom
end

local function joined(v)
  if type(v) == "table" and next(v) == nil then return "" end
  if type(v) == "table" and #v > 0 then
    for _, x in ipairs(v) do if type(x) == "table" then return v end end
    local parts = {}
    for i, x in ipairs(v) do parts[i] = tostring(x) end
    return table.concat(parts, ";")
  end
  return v
end

function M.to_row(c)
  local row = { id = c.id, dateAdded = c.dateAdded, dateUpdated = c.dateUpdated }
  for _, f in ipairs(M.CSV_FIELDS) do row[f] = c[f] end
  row.tags = table.concat(type(c.tags) == "table" and c.tags or {}, ";")
  for _, cf in ipairs(type(c.customFields) == "table" and c.customFields or {}) do
    if type(cf) == "table" and cf.value ~= nil then
      row[column_of(cf.key, cf.fieldKey) or cf.id] = joined(cf.value)
    end
  end
  return row
end

local function custom_field(client, col)
  local f = CF.by_key(client, col, "contact") or CF.by_name(client, col, "contact")
  if not f then CF.resolve(client, { [col] = "" }, "contact") end   -- raises, naming the real keys
  return f
end

function M.import_columns(client, columns)
  local skipped = {}
  local sorted = {}
  for i, c in ipairs(columns) do sorted[i] = c end
  table.sort(sorted)
  for _, col in ipairs(sorted) do
    if M.CSV_SYSTEM[col] then skipped[#skipped + 1] = col
    elseif not IMPORT[col] and col ~= "tags" then custom_field(client, col) end
  end
  return skipped
end

local function split(v)
  local list = {}
  for x in v:gmatch("[^;]+") do
    x = x:gsub("^%s+", ""):gsub("%s+$", "")
    if x ~= "" then list[#list + 1] = x end
  end
  return list
end

local BOOL = { ["true"] = true, yes = true, ["1"] = true, ["false"] = false, no = false, ["0"] = false }

function M.from_row(client, row)
  local fields, custom, cols = {}, {}, {}
  for col in pairs(row) do cols[#cols + 1] = col end
  table.sort(cols)
  for _, col in ipairs(cols) do
    local v = row[col]
    if type(v) == "number" or type(v) == "boolean" then v = tostring(v) end
    if type(v) == "string" and v ~= "" and not M.CSV_SYSTEM[col] then
      if col == "tags" then
        fields.tags = split(v)
      elseif col == "dnd" then
        local b = BOOL[v:lower()]
        if b == nil then
          E.raise { kind = "csv", message = ("dnd takes true or false, got '%s'"):format(v) }
        end
        fields.dnd = b
      elseif IMPORT[col] then
        -- a date of birth exported as a timestamp goes back as its date
        fields[col] = col == "dateOfBirth" and v:match("^(%d%d%d%d%-%d%d%-%d%d)T") or v
      else
        local f = custom_field(client, col)
        local value = v
        if MULTI[f.dataType] then value = split(v)
        elseif NUMBER[f.dataType] then value = tonumber(v) or v end
        custom[#custom + 1] = { id = f.id, value = value }
      end
    end
  end
  if #custom > 0 then fields.customFields = custom end
  return fields
end

return R.register(M)
