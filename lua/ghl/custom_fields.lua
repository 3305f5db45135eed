-- ghl.custom_fields: a location's custom field catalogue
-- (/locations/{locationId}/customFields, Version 2021-07-28) and the id <->
-- key mapping HighLevel leaves to its callers.
--   custom_fields.list(client [, {model = "contact"|"opportunity"|"all"}])
--   custom_fields.create(client, {name=, dataType=, fieldKey=, model=, ...})
--   custom_fields.get(client, id) / update(client, id, fields) / delete(client, id)
--   custom_fields.by_key(client, key [, model]) / by_name(client, name [, model])
--   custom_fields.by_id(client, id)
--   custom_fields.schema(client [, {refresh = true}]) -> {list, by_id, by_key,
--       by_name}, fetched (boolean)
--   custom_fields.resolve(client, input [, model]) -> [{id, field_value}]
--   custom_fields.decorate(client, record_or_list [, model]) -> the same
--   custom_fields.values(record) -> {key = value}
-- A key is the catalogue's fieldKey ("contact.budget") or its bare form
-- ("budget"); resolve also accepts a field's name ("Budget"). The schema of
-- each location is cached in memory, and with the client's schema_cache =
-- "store" in the token store too (ghl.store kv, namespace "custom_fields";
-- M.db picks another store for every client, false none), for
-- M.TTL seconds, and fetched again once when
-- a key or id is not in it (a field made since). Writes take customFields
-- as a map {budget = 5000}, or an array of {key=, value=} or {id=, value=}
-- (field_value and fieldValue are accepted for value), and send
-- [{id, field_value}]. An unknown key raises a ghl.error of kind "field"
-- (code "unknown_custom_field") that lists the location's keys. Reads
-- decorate each {id, value} with key (bare), fieldKey and name, and
-- opportunity fields ({id, fieldValue}) with value too.
local E = require "ghl.error"
local R = require "ghl.resource"
local json = require "ghl.json"

local M = {}

M.TTL = 600          -- seconds a location's schema is trusted
M.NS = "custom_fields"

M.ENDPOINTS = {
  list = { "GET", "/locations/{locationId}/customFields" },
  create = { "POST", "/locations/{locationId}/customFields" },
  get = { "GET", "/locations/{locationId}/customFields/{id}" },
  update = { "PUT", "/locations/{locationId}/customFields/{id}" },
  delete = { "DELETE", "/locations/{locationId}/customFields/{id}" },
}

local memory = {}    -- cache key -> {at = epoch seconds, schema}

local function cache_key(client)
  return (client.base or "") .. " " .. R.location(client, "custom fields")
end

-- M.db: the store holding the cache (default: the token store,
-- ghl.auth.store(), for a client made with schema_cache = "store", else
-- none; false: memory only).
M.db = nil

local function store(client)
  if M.db ~= nil then return M.db or nil end
  if client.schema_cache ~= "store" then return nil end
  local ok, db = pcall(function() return require("ghl.auth").store() end)
  if ok then return db.raw or db end   -- a cache: a failing store is a miss, not an error
  return nil
end

-- The bare key of a fieldKey: "contact.budget" -> "budget".
local function bare(field_key)
  if type(field_key) ~= "string" then return nil end
  return field_key:match("^[%w_]+%.(.+)$") or field_key
end
M.bare = bare

-- Build the lookup tables from the catalogue's list.
local function index(list)
  local s = { list = list, by_id = {}, by_key = {}, by_name = {} }
  for _, f in ipairs(list) do
    f.key = bare(f.fieldKey)
    s.by_id[f.id] = f
    if f.fieldKey then s.by_key[f.fieldKey] = f end
    if f.name then s.by_name[f.name:lower()] = s.by_name[f.name:lower()] or f end
  end
  return s
end

-- Only what the mapping needs goes into the store.
local KEEP = { "id", "name", "fieldKey", "dataType", "model", "picklistOptions", "position" }

local function slim(list)
  local out = {}
  for i, f in ipairs(list) do
    local t = {}
    for _, k in ipairs(KEEP) do t[k] = f[k] end
    out[i] = t
  end
  return out
end

-- list(client, {model=}) -> the catalogue's fields (each with key added).
function M.list(client, o)
  o = o or {}
  R.location(client, "custom_fields.list")
  local r = client:get(M.ENDPOINTS.list[2], { model = o.model or "all" })
  local list = r.customFields or {}
  for _, f in ipairs(list) do f.key = bare(f.fieldKey) end
  return list
end

-- invalidate(client): forget the cached schema of the client's location.
function M.invalidate(client)
  local key = cache_key(client)
  memory[key] = nil
  local db = store(client)
  if db then db:kv_delete(M.NS, key) end
end

-- schema(client, {refresh=}) -> {list, by_id, by_key, by_name}, and
-- whether it was fetched from the API by this call.
function M.schema(client, o)
  o = o or {}
  local key = cache_key(client)
  local now = os.time()
  if not o.refresh then
    local m = memory[key]
    if m and now - m.at < M.TTL then return m.schema, false end
    local db = store(client)
    if db then
      local text, at = db:kv_get(M.NS, key)
      if type(text) == "string" and at and now - at < M.TTL then
        local list = json.decode(text)
        if type(list) == "table" then
          local s = index(list)
          memory[key] = { at = at, schema = s, missing = {} }
          return s, false
        end
      end
    end
  end
  local list = slim(M.list(client))
  local s = index(list)
  memory[key] = { at = now, schema = s, missing = {} }
  local db = store(client)
  if db then db:kv_put(M.NS, key, json.encode(list)) end
  return s, true
end

local function find_key(s, key, model)
  if type(key) ~= "string" then return nil end
  local f = s.by_key[key]
  if f and (not model or f.model == nil or f.model == model) then return f end
  if model then
    f = s.by_key[model .. "." .. key]
    if f then return f end
  else
    for _, m in ipairs { "contact", "opportunity" } do
      f = s.by_key[m .. "." .. key]
      if f then return f end
    end
  end
  return nil
end

local function find_name(s, name, model)
  if type(name) ~= "string" then return nil end
  for _, f in ipairs(s.list) do
    if f.name and f.name:lower() == name:lower() and (not model or f.model == model) then return f end
  end
  return nil
end

-- Look something up, fetching the schema again once when it is missing;
-- what is still missing then is remembered until the next fetch, so a
-- stale id on many records costs one request, not one each.
local function lookup(client, finder, what, model)
  local s, fetched = M.schema(client)
  local f = finder(s, what, model)
  if f then return f end
  local m = memory[cache_key(client)]
  local tag = tostring(model) .. "\0" .. tostring(what)
  if m and m.missing[tag] then return nil end
  if not fetched then
    f = finder(M.schema(client, { refresh = true }), what, model)
    m = memory[cache_key(client)]
  end
  if not f and m then m.missing[tag] = true end
  return f
end

-- by_key(client, key [, model]) -> field or nil.
function M.by_key(client, key, model)
  return lookup(client, find_key, key, model)
end

-- by_name(client, name [, model]) -> field or nil (case-insensitive).
function M.by_name(client, name, model)
  return lookup(client, find_name, name, model)
end

-- by_id(client, id) -> field or nil.
function M.by_id(client, id)
  return lookup(client, function(s, x) return s.by_id[x] end, id)
end

-- The location's keys for a model, sorted, for error messages.
local function keys_of(s, model)
  local keys = {}
  for _, f in ipairs(s.list) do
    if not model or f.model == model then keys[#keys + 1] = f.key end
  end
  table.sort(keys)
  return keys
end

local function value_of(item)
  if item.value ~= nil then return item.value end
  if item.field_value ~= nil then return item.field_value end
  if item.fieldValue ~= nil then return item.fieldValue end
  return json.null
end

local function is_array(t)
  return #t > 0 or next(t) == nil
end

-- resolve(client, input, model) -> array of {id, field_value} for a write.
function M.resolve(client, input, model)
  if input == nil then return nil end
  model = model or "contact"
  if type(input) ~= "table" then error("customFields must be a table (a map of key = value, or an array)", 2) end
  local items = {}
  if is_array(input) then
    items = input
  else
    local names = {}
    for k in pairs(input) do names[#names + 1] = k end
    table.sort(names, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(names) do items[#items + 1] = { key = k, value = input[k] } end
  end
  local out = {}
  for i, item in ipairs(items) do
    if type(item) ~= "table" then error(("customFields[%d] must be a table {key=, value=} or {id=, value=}"):format(i), 2) end
    if item.id ~= nil then
      out[#out + 1] = { id = item.id, field_value = value_of(item) }
    elseif item.key ~= nil then
      local key = tostring(item.key)
      local f = M.by_key(client, key, model) or M.by_name(client, key, model)
      if not f then
        local s = M.schema(client)
        local keys = keys_of(s, model)
        E.raise { kind = "field", code = "unknown_custom_field", key = key, location = client.location,
          message = ("unknown %s custom field key '%s' in location %s"):format(model, key, client.location),
          hint = #keys > 0 and ("the location's " .. model .. " keys are: " .. table.concat(keys, ", "))
            or { lua = "the location has no " .. model .. " custom fields; create one with ghl.custom_fields.create",
                 cli = "the location has no " .. model .. " custom fields; create one with"
                   .. " 'ghlua api POST /locations/{locationId}/customFields'" },
          keys = keys }
      end
      out[#out + 1] = { id = f.id, field_value = value_of(item) }
    else
      error(("customFields[%d] needs a key or an id"):format(i), 2)
    end
  end
  return out
end

-- decorate(client, record | list, model) -> the same, with key, fieldKey and
-- name on each custom field (and value for opportunity fields).
function M.decorate(client, x, model)
  if type(x) ~= "table" then return x end
  local records = x.customFields and { x } or (is_array(x) and x or { x })
  for _, rec in ipairs(records) do
    for _, cf in ipairs(type(rec.customFields) == "table" and rec.customFields or {}) do
      if type(cf) == "table" and cf.id then
        local f = M.by_id(client, cf.id)
        if f then cf.key, cf.fieldKey, cf.name = f.key, f.fieldKey, f.name end
        if cf.value == nil then
          if cf.field_value ~= nil then cf.value = cf.field_value   -- a dry run's stand-in
          elseif cf.fieldValue ~= nil then cf.value = cf.fieldValue
          elseif cf.fieldValueString ~= nil then cf.value = cf.fieldValueString end
        end
      end
    end
  end
  return x
end

-- values(record) -> {key = value} from a decorated record (fields without
-- a known key are under their id).
function M.values(rec)
  local t = {}
  for _, cf in ipairs(type(rec) == "table" and rec.customFields or {}) do
    t[cf.key or cf.id] = cf.value
  end
  return t
end

-- create(client, {name=, dataType=, model=, fieldKey=, ...}) -> the field.
function M.create(client, fields)
  R.location(client, "custom_fields.create")
  local body = R.copy(fields)
  body.dataType = body.dataType or "TEXT"
  local r = client:post(M.ENDPOINTS.create[2], body)
  M.invalidate(client)
  local f = R.entity(r, "customField", body)
  if type(f) == "table" then f.key = f.key or bare(f.fieldKey) end
  return f
end

function M.get(client, id)
  R.location(client, "custom_fields.get")
  local f = client:get(R.path(M.ENDPOINTS.get[2], { id = id })).customField
  if f then f.key = bare(f.fieldKey) end
  return f
end

function M.update(client, id, fields)
  R.location(client, "custom_fields.update")
  local r = client:put(R.path(M.ENDPOINTS.update[2], { id = id }), R.copy(fields))
  M.invalidate(client)
  return R.entity(r, "customField", fields, id)
end

function M.delete(client, id)
  R.location(client, "custom_fields.delete")
  client:delete(R.path(M.ENDPOINTS.delete[2], { id = id }))
  M.invalidate(client)
  return true
end

return R.register(M)
