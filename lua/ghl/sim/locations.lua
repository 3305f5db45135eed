-- ghl.sim.locations: the location-scoped catalogue routes (Version
-- 2021-07-28): GET /locations/{id}, GET /locations/search (skip/limit),
-- custom fields (fieldKey "contact.<snake_name>", dataType from the
-- published enum), custom values (fieldKey "{{ custom_values.<snake_name>
-- }}") and the tag catalogue (/locations/{id}/tags: it starts with the tags
-- of the location's contacts at its first use, at start-up for the default
-- location), plus the seed fields of the default location. The router has
-- already checked that the token may use the {locationId} in the path (GET
-- /locations/{id} and /locations/search also take a Company token; the
-- others are sub-account routes, Location tokens only). Handlers raise
-- through reply.raise: 422 for validation, 404 for unknown custom fields,
-- values and locations, 400 for unknown tags (the spec lists no 404 there)
-- and for a key or tag name that already exists, 403 for another company.
local reply = require "ghl.sim.reply"
local validate = require "ghl.sim.validate"

local M = {}

local array, null = reply.array, reply.null

M.DATA_TYPES = { "TEXT", "LARGE_TEXT", "NUMERICAL", "PHONE", "MONETORY", "CHECKBOX",
  "SINGLE_OPTIONS", "MULTIPLE_OPTIONS", "DATE", "TEXTBOX_LIST", "FILE_UPLOAD",
  "RADIO", "EMAIL" }
local MODELS = { "contact", "opportunity" }

local FIELD_OPTIONAL = {
  placeholder = "string", acceptedFormat = "array", isMultipleFile = "boolean",
  maxNumberOfFiles = "number", textBoxListOptions = "array", position = "number",
  model = { "string", enum = MODELS }, options = "string[]",
  picklistOptions = "string[]", parentId = "string", description = "string",
}

local function with(extra)
  local t = {}
  for k, v in pairs(FIELD_OPTIONAL) do t[k] = v end
  for k, v in pairs(extra) do t[k] = v end
  return t
end

local CREATE_FIELD = { props = with { name = "string",
  dataType = { "string", enum = M.DATA_TYPES }, fieldKey = "string" },
  required = { "name", "dataType" } }
local UPDATE_FIELD = { props = with { name = "string" }, required = { "name" } }
local VALUE = { props = { name = "string", value = "string" }, required = { "name", "value" } }

-- ---- Presenting ----

function M.present_field(f)
  return {
    id = f.id, name = f.name, fieldKey = f.fieldKey, placeholder = f.placeholder or "",
    dataType = f.dataType, position = f.position, locationId = f.locationId,
    model = f.model, picklistOptions = array({ table.unpack(f.picklistOptions or {}) }),
    picklistImageOptions = array(), isAllowedCustomOption = false,
    isMultiFileAllowed = f.isMultipleFile or false, maxFileLimit = f.maxNumberOfFiles,
    parentId = f.parentId, description = f.description,
  }
end

function M.present_value(v)
  return { id = v.id, name = v.name, fieldKey = v.fieldKey, value = v.value,
    locationId = v.locationId }
end

-- ---- Custom fields ----

local function field_or_404(ctx)
  local f = ctx.state:custom_field(ctx.params.locationId, ctx.params.id)
  if not f then reply.raise(404, "Custom field not found") end
  return f
end

local function copy_optional(f, body)
  for k in pairs(FIELD_OPTIONAL) do
    local v = body[k]
    if v ~= nil then
      if v == null then v = nil end
      f[k] = v
    end
  end
  if body.options ~= nil and body.options ~= null then f.picklistOptions = body.options end
  f.options = nil
end

local function list_fields(ctx)
  local model = ctx.query.model or "all"
  if model ~= "all" and model ~= "contact" and model ~= "opportunity" then
    reply.invalid { "model must be one of the following values: contact, opportunity, all" }
  end
  local loc = ctx.state:location(ctx.params.locationId)
  local out = array()
  for _, f in ipairs(loc and loc.custom_fields or {}) do
    if model == "all" or f.model == model then out[#out + 1] = M.present_field(f) end
  end
  return 200, { customFields = out }
end

local function create_field(ctx)
  local body = ctx.body or {}
  validate.assert(body, CREATE_FIELD)
  local state, loc_id = ctx.state, ctx.params.locationId
  local model = body.model or "contact"
  local key = body.fieldKey
  if key then
    key = key:gsub("^" .. model .. "%.", "")
  else
    key = reply.snake_case(body.name)
  end
  if key == "" then reply.invalid { "name must contain a letter or digit" } end
  local full = model .. "." .. key
  if state:custom_field_by_key(loc_id, full) then
    reply.raise(400, "A custom field with fieldKey " .. full .. " already exists")
  end
  local f = { name = body.name, dataType = body.dataType, fieldKey = full, model = model }
  copy_optional(f, body)
  f.model = model
  state:add_custom_field(loc_id, f)
  return 201, { customField = M.present_field(f) }
end

local function get_field(ctx)
  return 200, { customField = M.present_field(field_or_404(ctx)) }
end

local function update_field(ctx)
  local body = ctx.body or {}
  validate.assert(body, UPDATE_FIELD)
  local f = field_or_404(ctx)
  local model = f.model
  f.name = body.name
  copy_optional(f, body)
  f.model = model   -- a field does not move between models
  return 200, { customField = M.present_field(f) }
end

local function delete_field(ctx)
  local f, i = field_or_404(ctx)
  local state = ctx.state
  table.remove(state:location(ctx.params.locationId).custom_fields, i)
  for _, c in ipairs(state:contacts_in(ctx.params.locationId)) do
    for j = #c.customFields, 1, -1 do
      if c.customFields[j].id == f.id then table.remove(c.customFields, j) end
    end
  end
  return 200, { succeded = true }
end

-- ---- Custom values ----

local function value_key(name)
  return "{{ custom_values." .. reply.snake_case(name) .. " }}"
end

local function value_or_404(ctx)
  local loc = ctx.state:location(ctx.params.locationId)
  for i, v in ipairs(loc and loc.custom_values or {}) do
    if v.id == ctx.params.id then return v, i end
  end
  reply.raise(404, "Custom value not found")
end

local function check_value_name(ctx, name, except)
  local key = value_key(name)
  for _, v in ipairs(ctx.state:location(ctx.params.locationId).custom_values) do
    if v ~= except and v.fieldKey == key then
      reply.raise(400, "A custom value with fieldKey " .. key .. " already exists")
    end
  end
end

local function list_values(ctx)
  local loc = ctx.state:location(ctx.params.locationId)
  local out = array()
  for _, v in ipairs(loc and loc.custom_values or {}) do out[#out + 1] = M.present_value(v) end
  return 200, { customValues = out }
end

local function create_value(ctx)
  local body = ctx.body or {}
  validate.assert(body, VALUE)
  check_value_name(ctx, body.name)
  local v = ctx.state:add_custom_value(ctx.params.locationId,
    { name = body.name, value = body.value, fieldKey = value_key(body.name) })
  return 201, { customValue = M.present_value(v) }
end

local function get_value(ctx)
  return 200, { customValue = M.present_value(value_or_404(ctx)) }
end

local function update_value(ctx)
  local body = ctx.body or {}
  validate.assert(body, VALUE)
  local v = value_or_404(ctx)
  check_value_name(ctx, body.name, v)
  v.name, v.value, v.fieldKey = body.name, body.value, value_key(body.name)
  return 200, { customValue = M.present_value(v) }
end

local function delete_value(ctx)
  local _, i = value_or_404(ctx)
  table.remove(ctx.state:location(ctx.params.locationId).custom_values, i)
  return 200, { succeded = true }
end

-- ---- Tags ----

local TAG = { props = { name = "string" }, required = { "name" } }

local function present_tag(t)
  return { id = t.id, name = t.name, locationId = t.locationId }
end

-- The catalogue starts with the distinct tags of the location's contacts.
local function init_tags(state, loc, store, rng)
  store.list = {}
  local names, seen = {}, {}
  for _, c in ipairs(state:contacts_in(loc.id)) do
    for _, t in ipairs(c.tags or {}) do
      if not seen[t] then
        seen[t] = true
        names[#names + 1] = t
      end
    end
  end
  table.sort(names)
  for _, n in ipairs(names) do
    store.list[#store.list + 1] = { id = rng:id(20), name = n, locationId = loc.id }
  end
end

local function tags_of(ctx)
  return ctx.state:store(ctx.params.locationId, "tags", init_tags).list
end

local function tag_or_400(ctx)
  for i, t in ipairs(tags_of(ctx)) do
    if t.id == ctx.params.tagId then return t, i end
  end
  reply.raise(400, "Tag not found")
end

local function check_tag_name(ctx, name, except)
  name = name:gsub("^%s+", ""):gsub("%s+$", "")
  if name == "" then reply.invalid { "name should not be empty" } end
  for _, t in ipairs(tags_of(ctx)) do
    if t ~= except and t.name:lower() == name:lower() then
      reply.raise(400, "A tag named " .. name .. " already exists")
    end
  end
  return name
end

local function list_tags(ctx)
  local out = array()
  for _, t in ipairs(tags_of(ctx)) do out[#out + 1] = present_tag(t) end
  return 200, { tags = out }
end

local function create_tag(ctx)
  local body = ctx.body or {}
  validate.assert(body, TAG)
  local name = check_tag_name(ctx, body.name)
  local list = tags_of(ctx)
  local t = { id = ctx.state.rng:id(20), name = name, locationId = ctx.params.locationId }
  list[#list + 1] = t
  return 200, { tag = present_tag(t) }
end

local function get_tag(ctx)
  return 200, { tag = present_tag(tag_or_400(ctx)) }
end

local function update_tag(ctx)
  local body = ctx.body or {}
  validate.assert(body, TAG)
  local t = tag_or_400(ctx)
  t.name = check_tag_name(ctx, body.name, t)
  return 200, { tag = present_tag(t) }
end

local function delete_tag(ctx)
  local _, i = tag_or_400(ctx)
  table.remove(tags_of(ctx), i)
  return 200, { succeded = true }
end

-- Build the default location's catalogue now, from its seeded contacts.
function M.seed_tags(state, location_id)
  state:store(location_id, "tags", init_tags)
end

-- ---- Locations ----

local function present_location(loc)
  return { id = loc.id, companyId = loc.company, name = loc.name,
    address = loc.address1, city = loc.city, state = loc.state, postalCode = loc.postalCode,
    timezone = "America/New_York", country = loc.country,
    settings = { allowDuplicateContact = false } }
end

-- GET /locations/search: the company's locations in creation order (a
-- Location token sees only its own); skip/limit paging (limit default 10);
-- order asc | desc. email is accepted and ignored.
local function search_locations(ctx)
  local state, tok, q = ctx.state, ctx.token, ctx.query
  local skip, limit = reply.count_param(q, "skip", 0), reply.count_param(q, "limit", 10)
  local order = q.order or "asc"
  if order ~= "asc" and order ~= "desc" then
    reply.invalid { "order must be one of the following values: asc, desc" }
  end
  if q.companyId and q.companyId ~= "" and q.companyId ~= tok.company then
    reply.raise(403, "The token does not have access to this company.")
  end
  local list = {}
  for _, loc in ipairs(state:company_locations()) do
    if tok.kind == "company" or loc.id == tok.location then list[#list + 1] = loc end
  end
  if order == "desc" then
    for i = 1, #list // 2 do list[i], list[#list - i + 1] = list[#list - i + 1], list[i] end
  end
  local out = array()
  for i = skip + 1, math.min(#list, skip + limit) do out[#out + 1] = present_location(list[i]) end
  return 200, { locations = out }
end

local function get_location(ctx)
  local loc = ctx.state:location(ctx.params.locationId)
  if not loc then reply.raise(404, "Location not found") end
  return 200, { location = present_location(loc) }
end

-- ---- Routes ----

local CF, CV, TG = "locations/customFields", "locations/customValues", "locations/tags"

M.routes = {
  { method = "GET", path = "/locations/search", handler = search_locations, scope = "locations.readonly",
    classes = { location = true, company = true } },
  { method = "GET", path = "/locations/:locationId/customFields", handler = list_fields, scope = CF .. ".readonly" },
  { method = "POST", path = "/locations/:locationId/customFields", handler = create_field, scope = CF .. ".write" },
  { method = "GET", path = "/locations/:locationId/customFields/:id", handler = get_field, scope = CF .. ".readonly" },
  { method = "PUT", path = "/locations/:locationId/customFields/:id", handler = update_field, scope = CF .. ".write" },
  { method = "DELETE", path = "/locations/:locationId/customFields/:id", handler = delete_field, scope = CF .. ".write" },
  { method = "GET", path = "/locations/:locationId/customValues", handler = list_values, scope = CV .. ".readonly" },
  { method = "POST", path = "/locations/:locationId/customValues", handler = create_value, scope = CV .. ".write" },
  { method = "GET", path = "/locations/:locationId/customValues/:id", handler = get_value, scope = CV .. ".readonly" },
  { method = "PUT", path = "/locations/:locationId/customValues/:id", handler = update_value, scope = CV .. ".write" },
  { method = "DELETE", path = "/locations/:locationId/customValues/:id", handler = delete_value, scope = CV .. ".write" },
  { method = "GET", path = "/locations/:locationId/tags", handler = list_tags, scope = TG .. ".readonly" },
  { method = "POST", path = "/locations/:locationId/tags", handler = create_tag, scope = TG .. ".write" },
  { method = "GET", path = "/locations/:locationId/tags/:tagId", handler = get_tag, scope = TG .. ".readonly" },
  { method = "PUT", path = "/locations/:locationId/tags/:tagId", handler = update_tag, scope = TG .. ".write" },
  { method = "DELETE", path = "/locations/:locationId/tags/:tagId", handler = delete_tag, scope = TG .. ".write" },
  { method = "GET", path = "/locations/:locationId", handler = get_location, scope = "locations.readonly",
    classes = { location = true, company = true } },
}
for _, r in ipairs(M.routes) do r.family = "locations" end

-- ---- Seed ----

-- The catalogue every simulated default location starts with.
function M.seed(state, location_id)
  local fields = {
    { name = "Budget", dataType = "NUMERICAL", fieldKey = "contact.budget", placeholder = "Budget" },
    { name = "Lead Source", dataType = "TEXT", fieldKey = "contact.lead_source" },
    { name = "Favorite Color", dataType = "SINGLE_OPTIONS", fieldKey = "contact.favorite_color",
      picklistOptions = { "Red", "Green", "Blue" } },
    { name = "Deal Size", dataType = "MONETORY", fieldKey = "opportunity.deal_size" },
  }
  for _, f in ipairs(fields) do
    f.model = f.fieldKey:match("^(%w+)%.")
    state:add_custom_field(location_id, f)
  end
  state:add_custom_value(location_id, { name = "Company Phone", value = "+1 555 010 0000",
    fieldKey = "{{ custom_values.company_phone }}" })
end

return M
