-- ghl.sim.contacts: the Contacts API family (Version 2021-07-28): create,
-- get, update, delete, upsert, advanced search (page/pageLimit and
-- searchAfter), the deprecated keyset list GET /contacts/, duplicate lookup,
-- tags, and the deterministic seed data for --contacts N. Every list is
-- ordered by (dateAdded, id) unless a search asks for another sort, always
-- with id as the last key, so paging never repeats or skips a contact.
-- Handlers raise through reply.raise: 422 for body validation, 400 for
-- duplicates, unknown custom fields and unknown contacts, 403 for a contact
-- of another location. Writes queue webhooks (ContactCreate, ContactUpdate,
-- ContactDelete, ContactTagUpdate) when the simulator sends them.
local reply = require "ghl.sim.reply"
local validate = require "ghl.sim.validate"
local auth = require "ghl.sim.auth"

local M = {}

local array, null = reply.array, reply.null

-- ---- Request schemas (contacts.json DTOs) ----

local COMMON_PROPS = {
  firstName = "string", lastName = "string", name = "string", email = "email",
  phone = "string", address1 = "string", city = "string", state = "string",
  postalCode = "string", website = "string", timezone = "string",
  dnd = "boolean", dndSettings = "object", inboundDndSettings = "object",
  tags = "string[]", customFields = "array", source = "string",
  dateOfBirth = "any", country = "string", assignedTo = "string",
}

local function props(extra)
  local t = {}
  for k, v in pairs(COMMON_PROPS) do t[k] = v end
  for k, v in pairs(extra) do t[k] = v end
  return t
end

local CREATE = { props = props { locationId = "string", gender = "string",
  companyName = "string" }, required = { "locationId" } }
local UPSERT = { props = props { locationId = "string", gender = "string",
  companyName = "string", createNewIfDuplicateAllowed = "boolean" },
  required = { "locationId" } }
local UPDATE = { props = props {} }
local TAGS = { props = { tags = "string[]" }, required = { "tags" } }
local SEARCH = { props = { locationId = "string", page = "integer",
  pageLimit = "integer", query = "string", filters = "array", sort = "array",
  searchAfter = "array" }, required = { "locationId" } }

-- Plain fields copied from a request body onto a contact.
local SCALARS = { "firstName", "lastName", "name", "email", "phone", "address1",
  "city", "state", "postalCode", "website", "timezone", "dnd", "dndSettings",
  "inboundDndSettings", "source", "dateOfBirth", "country", "companyName",
  "assignedTo", "gender" }

-- Fields shown on read, beside id, locationId, tags, customFields, dates.
local SHOWN = { "firstName", "lastName", "email", "phone", "companyName",
  "address1", "city", "state", "postalCode", "country", "website", "timezone",
  "dnd", "dndSettings", "inboundDndSettings", "source", "dateOfBirth",
  "assignedTo", "gender", "type" }

-- ---- Normalisation ----

-- E.164-ish: keep digits; a leading + stays; 10 digits get +1 (US).
function M.normalize_phone(p)
  if type(p) ~= "string" or p == "" then return p end
  local digits = p:gsub("%D", "")
  if digits == "" then return p end
  if p:match("^%s*%+") then return "+" .. digits end
  if #digits == 10 then return "+1" .. digits end
  return "+" .. digits
end

local function normalize_tags(list)
  local out, seen = {}, {}
  for _, t in ipairs(list) do
    t = t:gsub("^%s+", ""):gsub("%s+$", ""):lower()
    if t ~= "" and not seen[t] then
      seen[t] = true
      out[#out + 1] = t
    end
  end
  return out
end

-- The contact's display name: first and last name, else its name.
local function full_name(c)
  local n = ((c.firstName or "") .. " " .. (c.lastName or "")):gsub("^%s+", ""):gsub("%s+$", "")
  if n == "" then n = c.name or "" end
  return n
end

-- ---- Reading ----

local function copy_array(list, f)
  local out = array()
  for i, v in ipairs(list or {}) do out[i] = f and f(v) or v end
  return out
end

M.full_name = full_name

-- The contact as the API returns it. customFields are [{id, value}] only.
function M.present(c)
  local o = {
    id = c.id,
    locationId = c.locationId,
    tags = copy_array(c.tags),
    customFields = copy_array(c.customFields, function(f)
      return { id = f.id, value = f.value }
    end),
    dateAdded = reply.iso8601(c.added_ms),
    dateUpdated = reply.iso8601(c.updated_ms),
  }
  for _, k in ipairs(SHOWN) do o[k] = c[k] end
  local n = full_name(c)
  if n ~= "" then o.contactName = n end
  return o
end

-- ---- Writing ----

local function field_value(item)
  for _, k in ipairs { "field_value", "fieldValue", "value" } do
    if item[k] ~= nil then return item[k] end
  end
  return null
end

-- Resolve a request's customFields into {id, value} pairs for the location.
-- Elements: {id|key, field_value|fieldValue|value}; a key is bare ("budget")
-- or full ("contact.budget"). model is "contact" (default) or
-- "opportunity"; for opportunities an id must name an opportunity field
-- too. Raises 422 for malformed elements, 400 for unknown ones.
function M.resolve_custom_fields(state, location_id, list, model)
  model = model or "contact"
  local label = model == "contact" and "custom field" or (model .. " custom field")
  local out = {}
  for i, item in ipairs(list or {}) do
    if not validate.is_object(item) then
      reply.invalid { "each value in customFields must be an object" }
    end
    local f, what
    if item.id ~= nil then
      f, what = type(item.id) == "string" and state:custom_field(location_id, item.id), "id"
      if f and model ~= "contact" and f.model ~= model then f = nil end
    elseif item.key ~= nil and (model == "contact" or type(item.key) == "string") then
      local key = item.key
      if type(key) == "string" and not key:find(".", 1, true) then key = model .. "." .. key end
      f, what = state:custom_field_by_key(location_id, key), "key"
      if f and f.model ~= model then f = nil end
    else
      reply.invalid { "each value in customFields must have an id or a key" }
    end
    if not f then
      reply.raise(400, string.format("customFields[%d]: %s with %s '%s' not found in this location",
        i - 1, label, what, tostring(item[what])))
    end
    out[#out + 1] = { id = f.id, value = field_value(item) }
  end
  return out
end

-- Merge resolved {id, value} pairs into a record's customFields; null or ""
-- removes a value.
function M.merge_custom_fields(c, resolved)
  for _, r in ipairs(resolved) do
    local idx
    for i, f in ipairs(c.customFields) do
      if f.id == r.id then idx = i end
    end
    local remove = r.value == null or r.value == ""
    if idx and remove then
      table.remove(c.customFields, idx)
    elseif idx then
      c.customFields[idx].value = r.value
    elseif not remove then
      c.customFields[#c.customFields + 1] = { id = r.id, value = r.value }
    end
  end
end
local merge_custom_fields = M.merge_custom_fields

-- Copy body fields onto c (skip: set of names to ignore). JSON null clears.
local function apply(c, body, resolved, skip)
  skip = skip or {}
  for _, k in ipairs(SCALARS) do
    local v = body[k]
    if v ~= nil and not skip[k] then
      if v == null then v = nil end
      if k == "email" and v then v = v:lower() end
      if k == "email" and v == "" then v = nil end
      if k == "phone" then v = M.normalize_phone(v) end
      if k == "phone" and v == "" then v = nil end
      c[k] = v
    end
  end
  if type(body.name) == "string" and body.firstName == nil and body.lastName == nil then
    local first, last = body.name:match("^%s*(%S+)%s*(.-)%s*$")
    c.firstName = first
    c.lastName = (last ~= "" and last) or nil
  end
  if body.tags ~= nil and body.tags ~= null and not skip.tags then
    c.tags = normalize_tags(body.tags)
  end
  if resolved then merge_custom_fields(c, resolved) end
end

-- The contact of the location with this email (lower-cased) or phone
-- (normalised), other than except_id. Returns contact, "email"|"phone".
function M.find_duplicate(state, location_id, email, phone, except_id)
  local loc = state:location(location_id)
  if not loc then return nil end
  email = type(email) == "string" and email ~= "" and email:lower() or nil
  phone = type(phone) == "string" and phone ~= "" and M.normalize_phone(phone) or nil
  local by_phone
  for _, c in pairs(loc.contacts) do   -- emails and phones are unique: order is moot
    if c.id ~= except_id then
      if email and c.email == email then return c, "email" end
      if phone and not by_phone and c.phone == phone then by_phone = c end
    end
  end
  if by_phone then return by_phone, "phone" end
  return nil
end

-- Send a webhook about c (kind: ContactCreate, ContactUpdate,
-- ContactDelete, ContactTagUpdate) when the simulator has an emitter
-- (ghl.sim.webhooks); it only queues, so this never waits.
local function notify(state, kind, c)
  if state.webhooks then state.webhooks:contact(kind, M.present(c)) end
end

local function raise_duplicate(c, field)
  reply.raise(400, "This location does not allow duplicated contacts.", {
    meta = { contactId = c.id, contactName = full_name(c), matchingField = field },
  })
end

local function new_contact(state, location_id)
  local ms = state:now_ms()
  return { id = state:new_id(), locationId = location_id, added_ms = ms,
    updated_ms = ms, tags = {}, customFields = {}, type = "lead" }
end

-- The contact named by the path, or raise 400 (unknown) / 403 (other location).
local function lookup(ctx)
  local c = ctx.state.contacts[ctx.params.contactId]
  if not c then reply.raise(400, "Contact not found") end
  auth.check_location(ctx.token, c.locationId)
  return c
end

-- ---- Handlers ----

local function create(ctx)
  local body = ctx.body or {}
  validate.assert(body, CREATE)
  local state, loc = ctx.state, body.locationId
  local resolved = M.resolve_custom_fields(state, loc, body.customFields or {})
  local dup, field = M.find_duplicate(state, loc, body.email, body.phone)
  if dup then raise_duplicate(dup, field) end
  local c = new_contact(state, loc)
  apply(c, body, resolved)
  state:put_contact(c)
  notify(state, "ContactCreate", c)
  return 201, { contact = M.present(c) }
end

local function get(ctx)
  return 200, { contact = M.present(lookup(ctx)) }
end

local function update(ctx)
  local body = ctx.body or {}
  validate.assert(body, UPDATE)
  local c = lookup(ctx)
  local state = ctx.state
  local resolved = M.resolve_custom_fields(state, c.locationId, body.customFields or {})
  local dup, field = M.find_duplicate(state, c.locationId,
    body.email ~= null and body.email or nil, body.phone ~= null and body.phone or nil, c.id)
  if dup then raise_duplicate(dup, field) end
  apply(c, body, resolved)
  c.updated_ms = state:now_ms()
  notify(state, "ContactUpdate", c)
  return 200, { succeded = true, contact = M.present(c) }
end

local function delete(ctx)
  local c = lookup(ctx)
  ctx.state:delete_contact(c)
  notify(ctx.state, "ContactDelete", c)
  return 200, { succeded = true }
end

-- Upsert: match by email, then phone. When the email matches one contact and
-- the phone another, the email match is updated and the phone is ignored.
-- gender is ignored on existing contacts (observed, ISS-313).
local function upsert(ctx)
  local body = ctx.body or {}
  validate.assert(body, UPSERT)
  local state, loc = ctx.state, body.locationId
  local resolved = M.resolve_custom_fields(state, loc, body.customFields or {})
  local c, field = M.find_duplicate(state, loc, body.email, nil)
  if not c then c, field = M.find_duplicate(state, loc, nil, body.phone) end
  if c then
    local skip = { gender = true }
    if field == "email" and body.phone ~= nil then
      local other = M.find_duplicate(state, loc, nil, body.phone, c.id)
      if other then skip.phone = true end
    end
    apply(c, body, resolved, skip)
    c.updated_ms = state:now_ms()
    notify(state, "ContactUpdate", c)
    return 200, { new = false, contact = M.present(c), traceId = ctx.trace_id }
  end
  c = new_contact(state, loc)
  apply(c, body, resolved)
  state:put_contact(c)
  notify(state, "ContactCreate", c)
  return 200, { new = true, contact = M.present(c), traceId = ctx.trace_id }
end

local function add_tags(ctx)
  local body = ctx.body or {}
  validate.assert(body, TAGS)
  local c = lookup(ctx)
  local all = {}
  for _, t in ipairs(c.tags) do all[#all + 1] = t end
  for _, t in ipairs(body.tags) do all[#all + 1] = t end
  c.tags = normalize_tags(all)
  c.updated_ms = ctx.state:now_ms()
  notify(ctx.state, "ContactTagUpdate", c)
  return 201, { tags = copy_array(c.tags) }
end

local function remove_tags(ctx)
  local body = ctx.body or {}
  validate.assert(body, TAGS)
  local c = lookup(ctx)
  local drop = {}
  for _, t in ipairs(normalize_tags(body.tags)) do drop[t] = true end
  local keep = {}
  for _, t in ipairs(c.tags) do
    if not drop[t] then keep[#keep + 1] = t end
  end
  c.tags = keep
  c.updated_ms = ctx.state:now_ms()
  notify(ctx.state, "ContactTagUpdate", c)
  return 200, { tags = copy_array(c.tags) }
end

-- ---- Searching ----

local lower = reply.lower

local function matches_query(c, q)
  if q == nil or q == "" then return true end
  q = q:lower()
  local fields = { full_name(c), c.firstName, c.lastName, c.email, c.phone, c.companyName }
  for i = 1, 6 do   -- not ipairs: a missing name must not hide the email
    local v = fields[i]
    if v and lower(v):find(q, 1, true) then return true end
  end
  return false
end

local OPERATORS = { "eq", "not_eq", "contains", "not_contains", "exists", "not_exists", "range" }

local function ms_value(c, field)
  if field == "dateAdded" then return c.added_ms end
  if field == "dateUpdated" then return c.updated_ms end
  return tonumber(c[field])
end

local function bound(v)
  if type(v) == "number" then return v end
  return reply.parse_iso8601(v) or tonumber(v)
end

local function any_value(value, pred)
  if type(value) == "table" then
    for _, v in ipairs(value) do if pred(v) then return true end end
    return false
  end
  return pred(value)
end

local match_filter

local function match_one(c, f, where)
  local field, op, value = f.field, f.operator, f.value
  if type(field) ~= "string" or field == "" then
    reply.invalid { where .. ".field should not be empty" }
  end
  local known = false
  for _, o in ipairs(OPERATORS) do if o == op then known = true end end
  if not known then
    reply.invalid { where .. ".operator must be one of the following values: " .. table.concat(OPERATORS, ", ") }
  end
  local raw = c[field]
  if field == "tags" then raw = c.tags end
  if op == "exists" or op == "not_exists" then
    local present = raw ~= nil and raw ~= "" and not (type(raw) == "table" and #raw == 0)
    if op == "exists" then return present else return not present end
  end
  if op == "range" then
    if type(value) ~= "table" then reply.invalid { where .. ".value must be an object for range" } end
    local v = ms_value(c, field)
    if not v then return false end
    if value.gt and not (v > bound(value.gt)) then return false end
    if value.gte and not (v >= bound(value.gte)) then return false end
    if value.lt and not (v < bound(value.lt)) then return false end
    if value.lte and not (v <= bound(value.lte)) then return false end
    return true
  end
  local hit
  if field == "tags" then
    hit = any_value(value, function(v)
      v = lower(v)
      for _, t in ipairs(c.tags) do
        if (op == "eq" or op == "not_eq") and t == v then return true end
        if (op == "contains" or op == "not_contains") and t:find(v, 1, true) then return true end
      end
      return false
    end)
  else
    hit = any_value(value, function(v)
      if type(raw) == "boolean" or type(v) == "boolean" then return raw == v end
      if op == "eq" or op == "not_eq" then return lower(raw) == lower(v) end
      return raw ~= nil and lower(raw):find(lower(v), 1, true) ~= nil
    end)
  end
  if op == "not_eq" or op == "not_contains" then return not hit end
  return hit
end

-- A filter is {field, operator, value} or {group = "AND"|"OR", filters = {...}}.
function match_filter(c, f, where)
  if type(f) ~= "table" then reply.invalid { where .. " must be an object" } end
  if f.group ~= nil or f.filters ~= nil then
    local group = type(f.group) == "string" and f.group:upper() or "AND"
    local list = f.filters or {}
    for i, sub in ipairs(list) do
      local ok = match_filter(c, sub, where .. ".filters." .. (i - 1))
      if group == "OR" and ok then return true end
      if group ~= "OR" and not ok then return false end
    end
    return group ~= "OR" or #list == 0
  end
  return match_one(c, f, where)
end

-- Sort keys: dates compare as epoch ms, strings lower-cased, id always last.
local SORTABLE = { dateAdded = "ms", dateUpdated = "ms", firstName = "str",
  lastName = "str", email = "str", phone = "str", companyName = "str",
  source = "str", city = "str", country = "str" }

local function parse_sort(sort)
  local out = {}
  for i, s in ipairs(sort or {}) do
    local where = "sort." .. (i - 1)
    if type(s) ~= "table" or not SORTABLE[s.field] then
      local names = {}
      for k in pairs(SORTABLE) do names[#names + 1] = k end
      table.sort(names)
      reply.invalid { where .. ".field must be one of the following values: " .. table.concat(names, ", ") }
    end
    local dir = s.direction and tostring(s.direction):lower() or "asc"
    if dir ~= "asc" and dir ~= "desc" then
      reply.invalid { where .. ".direction must be one of the following values: asc, desc" }
    end
    out[#out + 1] = { field = s.field, desc = dir == "desc", kind = SORTABLE[s.field] }
  end
  if #out == 0 then out[1] = { field = "dateAdded", desc = false, kind = "ms" } end
  return out
end

local function sort_key(c, spec)
  local key = {}
  for i, s in ipairs(spec) do
    if s.kind == "ms" then key[i] = ms_value(c, s.field) else key[i] = lower(c[s.field]) end
  end
  key[#spec + 1] = c.id
  return key
end

-- Is key a before key b under spec? (the id, last, is always ascending)
local function key_less(a, b, spec)
  for i = 1, #spec do
    if a[i] ~= b[i] then
      if spec[i].desc then return a[i] > b[i] end
      return a[i] < b[i]
    end
  end
  return a[#spec + 1] < b[#spec + 1]
end

local function check_search_after(sa, spec)
  if #sa ~= #spec + 1 then
    reply.invalid { string.format("searchAfter must contain %d values (the sort values and the id), as in a contact's searchAfter", #spec + 1) }
  end
  for i, s in ipairs(spec) do
    local want = s.kind == "ms" and "number" or "string"
    if type(sa[i]) ~= want then
      reply.invalid { string.format("searchAfter[%d] must be a %s", i - 1, want) }
    end
  end
  if type(sa[#spec + 1]) ~= "string" then
    reply.invalid { string.format("searchAfter[%d] must be a string (a contact id)", #spec) }
  end
end

M.MAX_PAGE_LIMIT = 100
M.MAX_WINDOW = 10000

local function search(ctx)
  local body = ctx.body or {}
  validate.assert(body, SEARCH)
  local limit = validate.to_int(body.pageLimit) or 20
  local page = validate.to_int(body.page) or 1
  if limit > M.MAX_PAGE_LIMIT then reply.invalid { "pageLimit must not be greater than " .. M.MAX_PAGE_LIMIT } end
  if limit < 1 then reply.invalid { "pageLimit must not be less than 1" } end
  if page < 1 then reply.invalid { "page must not be less than 1" } end
  local spec = parse_sort(body.sort)
  local sa = body.searchAfter
  if sa ~= nil and sa ~= null then check_search_after(sa, spec) else sa = nil end
  if not sa and page * limit > M.MAX_WINDOW then
    reply.raise(400, string.format("page * pageLimit must not exceed %d; use searchAfter for deep paging", M.MAX_WINDOW))
  end

  local matched = {}
  for _, c in ipairs(ctx.state:contacts_in(body.locationId)) do
    if matches_query(c, body.query) then
      local ok = true
      for i, f in ipairs(body.filters or {}) do
        if not match_filter(c, f, "filters." .. (i - 1)) then ok = false break end
      end
      if ok then matched[#matched + 1] = { c = c, key = sort_key(c, spec) } end
    end
  end
  table.sort(matched, function(a, b) return key_less(a.key, b.key, spec) end)

  local first = (page - 1) * limit + 1
  if sa then
    first = #matched + 1
    for i, m in ipairs(matched) do
      if key_less(sa, m.key, spec) then first = i break end
    end
  end
  local out = array()
  for i = first, math.min(first + limit - 1, #matched) do
    local o = M.present(matched[i].c)
    o.searchAfter = array(matched[i].key)
    out[#out + 1] = o
  end
  return 200, { contacts = out, total = #matched }
end

-- GET /contacts/ (deprecated): keyset paging on (dateAdded, id).
local function list(ctx)
  local q, state = ctx.query, ctx.state
  if not q.locationId or q.locationId == "" then
    reply.invalid { "locationId should not be empty", "locationId must be a string" }
  end
  local limit = 20
  if q.limit ~= nil then
    limit = validate.to_int(q.limit)
    if not limit then reply.invalid { "limit must be a number conforming to the specified constraints" } end
    if limit > M.MAX_PAGE_LIMIT then reply.invalid { "limit must not be greater than " .. M.MAX_PAGE_LIMIT } end
    if limit < 1 then reply.invalid { "limit must not be less than 1" } end
  end
  local after_ms, after_id
  if q.startAfter ~= nil and q.startAfter ~= "" then
    after_ms = tonumber(q.startAfter)
    if not after_ms then reply.invalid { "startAfter must be a number conforming to the specified constraints" } end
  end
  if q.startAfterId ~= nil and q.startAfterId ~= "" then
    local c = state.contacts[q.startAfterId]
    if c and c.locationId == q.locationId then after_ms = c.added_ms end
    if not after_ms then reply.raise(400, "Contact with startAfterId not found") end
    after_id = q.startAfterId
  end

  local matched = {}
  for _, c in ipairs(state:contacts_in(q.locationId)) do
    if matches_query(c, q.query) then matched[#matched + 1] = c end
  end
  local first = 1
  if after_ms then
    first = #matched + 1
    for i, c in ipairs(matched) do
      if c.added_ms > after_ms or (c.added_ms == after_ms and after_id and c.id > after_id) then
        first = i
        break
      end
    end
  end
  local out = array()
  local last_i = math.min(first + limit - 1, #matched)
  for i = first, last_i do out[#out + 1] = M.present(matched[i]) end

  local current = (first - 1) // limit + 1
  local more = last_i < #matched
  local last = matched[last_i]
  local meta = {
    total = #matched,
    currentPage = current,
    nextPage = more and current + 1 or null,
    prevPage = current > 1 and current - 1 or null,
    startAfterId = (#out > 0 and last.id) or null,
    startAfter = (#out > 0 and last.added_ms) or null,
    nextPageUrl = null,
  }
  if more then
    local params = { { "locationId", q.locationId }, { "startAfter", last.added_ms },
      { "startAfterId", last.id } }
    if q.limit then params[#params + 1] = { "limit", limit } end
    if q.query and q.query ~= "" then params[#params + 1] = { "query", q.query } end
    meta.nextPageUrl = ctx.base_url .. "/contacts/?" .. reply.query_string(params)
  end
  return 200, { contacts = out, meta = meta }
end

local function duplicate(ctx)
  local q = ctx.query
  if not q.locationId or q.locationId == "" then
    reply.invalid { "locationId should not be empty", "locationId must be a string" }
  end
  local email = q.email ~= "" and q.email or nil
  local number = q.number ~= "" and q.number or nil
  if not email and not number then
    reply.raise(400, "Pass at least one of number, email query parameter")
  end
  local c = M.find_duplicate(ctx.state, q.locationId, email, nil)
  if not c then c = M.find_duplicate(ctx.state, q.locationId, nil, number) end
  return 200, { contact = c and M.present(c) or null }
end

-- ---- Routes ----

local READ, WRITE = "contacts.readonly", "contacts.write"

M.routes = {
  { method = "POST", path = "/contacts/search", handler = search, scope = READ, body_location = true },
  { method = "GET", path = "/contacts/search/duplicate", handler = duplicate, scope = READ },
  { method = "POST", path = "/contacts/upsert", handler = upsert, scope = WRITE, body_location = true },
  { method = "GET", path = "/contacts", handler = list, scope = READ },
  { method = "POST", path = "/contacts", handler = create, scope = WRITE, body_location = true },
  { method = "POST", path = "/contacts/:contactId/tags", handler = add_tags, scope = WRITE },
  { method = "DELETE", path = "/contacts/:contactId/tags", handler = remove_tags, scope = WRITE },
  { method = "GET", path = "/contacts/:contactId", handler = get, scope = READ },
  { method = "PUT", path = "/contacts/:contactId", handler = update, scope = WRITE },
  { method = "DELETE", path = "/contacts/:contactId", handler = delete, scope = WRITE },
}
for _, r in ipairs(M.routes) do r.family = "contacts" end

-- ---- Seed data ----

local FIRST = { "Ava", "Liam", "Olivia", "Noah", "Emma", "Mateo", "Sofia", "Lucas",
  "Mia", "Ethan", "Amara", "Kenji", "Zoe", "Ravi", "Chloe", "Diego", "Hana",
  "Omar", "Ingrid", "Tomas", "Leila", "Marco", "Priya", "Jonas" }
local LAST = { "Smith", "Garcia", "Nguyen", "Okafor", "Müller", "Rossi", "Kowalski",
  "Tanaka", "Silva", "Haddad", "Johansson", "Patel", "Dubois", "O'Brien", "Kim",
  "Novak", "Fischer", "Lopez", "Ahmed", "Walker" }
local COMPANIES = { "Acme Roofing", "Blue Fern Dental", "Northwind Realty",
  "Summit Fitness", "Harbor Law", "Copper Kettle Cafe" }
local EXTRA_TAGS = { "lead", "customer", "newsletter", "webinar", "cold" }
local SOURCES = { "google", "referral", "facebook", "walk-in" }

M.SEED_EPOCH_MS = 1704067200000   -- 2024-01-01T00:00:00.000Z

-- Add n deterministic contacts to location_id (uses state.rng). Every third
-- contact shares its dateAdded with its neighbours, so ties must be broken
-- by id. Tags: all carry "seed"; every 10th carries "vip".
function M.seed(state, location_id, n)
  local rng = state.rng
  local budget = state:custom_field_by_key(location_id, "contact.budget")
  local lead_source = state:custom_field_by_key(location_id, "contact.lead_source")
  for i = 1, n do
    local first, last = rng:pick(FIRST), rng:pick(LAST)
    local added = M.SEED_EPOCH_MS + ((i - 1) // 3) * 97 * 60000
    local c = {
      id = state:new_id(), locationId = location_id, type = "lead",
      added_ms = added, updated_ms = added + rng:int(86400000),
      firstName = first, lastName = last,
      email = string.format("%s.%s.%d@example.com", first, last, i):lower():gsub("[^%w%.@%-]", ""),
      phone = string.format("+1555%07d", i),
      source = "sim seed", country = "US", tags = { "seed" }, customFields = {},
    }
    if i % 10 == 0 then c.tags[#c.tags + 1] = "vip" end
    for _, t in ipairs(EXTRA_TAGS) do
      if rng:int(4) == 1 then c.tags[#c.tags + 1] = t end
    end
    if rng:int(3) == 1 then c.companyName = rng:pick(COMPANIES) end
    if budget and i % 4 == 0 then
      c.customFields[#c.customFields + 1] = { id = budget.id, value = 1000 * (i % 17 + 1) }
    end
    if lead_source and rng:int(2) == 1 then
      c.customFields[#c.customFields + 1] = { id = lead_source.id, value = rng:pick(SOURCES) }
    end
    state:put_contact(c)
  end
end

return M
