-- ghl.sim.opportunities: the Opportunities API family (Version 2021-07-28,
-- scopes opportunities.readonly / opportunities.write, Location tokens):
--   GET    /opportunities/pipelines?locationId=   two seeded pipelines with
--          their stages (every location starts with them)
--   POST   /opportunities/           create (pipelineId, locationId, name,
--          status, contactId required; pipelineStageId defaults to the
--          pipeline's first stage; monetaryValue, assignedTo, customFields)
--   GET    /opportunities/{id}       PUT /opportunities/{id} (update, moving
--          pipeline or stage)        DELETE /opportunities/{id}
--   GET    /opportunities/search     snake_case query: location_id
--          (required), pipeline_id, pipeline_stage_id, contact_id, status
--          (open|won|lost|abandoned|all), assigned_to, q, limit (1-100,
--          default 20), page, startAfter (epoch ms) and startAfterId ->
--          {opportunities, meta = {total, nextPageUrl, startAfterId,
--          startAfter, currentPage, nextPage, prevPage}}
--   POST   /opportunities/search     body locationId, query, limit, page,
--          searchAfter, additionalDetails -> {opportunities (each with its
--          searchAfter, [createdAt ms as a string, id]), total}
-- Every list is ordered by (createdAt, id), oldest first (order is not
-- read), so paging in either style never repeats or skips a record.
-- customFields are written as [{id | key, field_value | fieldValue |
-- value}] against the location's opportunity fields and read as [{id,
-- fieldValue}]. M.seed adds the records of --opportunities N, spread over
-- the location's contacts (ten are seeded first when it has none), a third
-- of them sharing their createdAt with a neighbour so ties are broken by id.
-- Handlers raise through reply.raise: 422 for validation, 400 for an
-- unknown opportunity, pipeline, stage, contact or custom field, 403 for a
-- record of another location.
local reply = require "ghl.sim.reply"
local validate = require "ghl.sim.validate"
local auth = require "ghl.sim.auth"

local M = {}

local array, null = reply.array, reply.null

M.STATUSES = { "open", "won", "lost", "abandoned" }
M.MAX_LIMIT = 100
M.SEED_EPOCH_MS = 1706745600000   -- 2024-02-01T00:00:00.000Z

local PIPELINES = {
  { name = "Sales Pipeline", stages = { "New Lead", "Contacted", "Proposal Sent", "Negotiation", "Closed" } },
  { name = "Onboarding", stages = { "Kickoff", "Setup", "Live" } },
}

local PRODUCTS = { "Website redesign", "Annual plan", "Roof repair", "Consultation package",
  "Marketing retainer", "Equipment lease", "Premium support" }

local STATUS_RULE = { "string", enum = M.STATUSES }

local CREATE = { props = { pipelineId = "string", locationId = "string", name = "string",
  pipelineStageId = "string", status = STATUS_RULE, contactId = "string", monetaryValue = "number",
  assignedTo = "string", customFields = "array" },
  required = { "pipelineId", "locationId", "name", "status", "contactId" } }
local UPDATE = { props = { pipelineId = "string", name = "string", pipelineStageId = "string",
  status = STATUS_RULE, monetaryValue = "number", assignedTo = "string", customFields = "array" } }
local SEARCH = { props = { locationId = "string", query = "string", limit = "integer", page = "integer",
  searchAfter = "array", additionalDetails = "object" }, required = { "locationId" } }

-- ---- The store ----

local function init(state, loc, store, rng)
  store.pipelines, store.byid = {}, {}
  for _, p in ipairs(PIPELINES) do
    local pl = { id = rng:id(20), name = p.name, locationId = loc.id, stages = {} }
    for i, name in ipairs(p.stages) do pl.stages[i] = { id = rng:uuid(), name = name, position = i - 1 } end
    store.pipelines[#store.pipelines + 1] = pl
  end
end

local function store_of(state, location_id)
  return state:store(location_id, "opportunities", init)
end

local function put(state, o)
  local store = store_of(state, o.locationId)
  store.byid[o.id] = o
  store.sorted = nil
  state:records("opportunities")[o.id] = o
end

local function remove(state, o)
  local store = store_of(state, o.locationId)
  store.byid[o.id] = nil
  store.sorted = nil
  state:records("opportunities")[o.id] = nil
end

-- The location's opportunities ordered by (created_ms, id), cached.
local function sorted(state, location_id)
  local store = store_of(state, location_id)
  if not store then return {} end
  if not store.sorted then
    local list = {}
    for _, o in pairs(store.byid) do list[#list + 1] = o end
    table.sort(list, function(a, b)
      if a.created_ms ~= b.created_ms then return a.created_ms < b.created_ms end
      return a.id < b.id
    end)
    store.sorted = list
  end
  return store.sorted
end

local function pipeline(state, location_id, id)
  for _, p in ipairs(store_of(state, location_id).pipelines) do
    if p.id == id then return p end
  end
end

local function stage_of(p, id)
  for _, st in ipairs(p.stages) do
    if st.id == id then return st end
  end
end

-- ---- Presenting ----

local function contact_name(c)
  return require("ghl.sim.contacts").full_name(c)
end

local function present_pipeline(p)
  local stages = array()
  for i, st in ipairs(p.stages) do
    stages[i] = { id = st.id, name = st.name, position = st.position, showInFunnel = true, showInPieChart = true }
  end
  return { id = p.id, name = p.name, stages = stages, showInFunnel = true, showInPieChart = true,
    locationId = p.locationId }
end

function M.present(state, o)
  local c = state.contacts[o.contactId]
  local fields = array()
  for i, f in ipairs(o.customFields) do fields[i] = { id = f.id, fieldValue = f.value } end
  local iso = reply.iso8601
  return {
    id = o.id, name = o.name, monetaryValue = o.monetaryValue or 0, pipelineId = o.pipelineId,
    pipelineStageId = o.pipelineStageId, assignedTo = o.assignedTo or null, status = o.status,
    source = o.source or "", lastStatusChangeAt = iso(o.status_ms), lastStageChangeAt = iso(o.stage_ms),
    lastActionDate = iso(o.updated_ms), createdAt = iso(o.created_ms), updatedAt = iso(o.updated_ms),
    contactId = o.contactId, locationId = o.locationId, customFields = fields, followers = array(),
    contact = c and { id = c.id, name = contact_name(c), companyName = c.companyName or null,
      email = c.email or null, phone = c.phone or null, tags = array({ table.unpack(c.tags or {}) }) } or null,
  }
end

-- ---- Writing ----

-- customFields are shared with contacts (same shapes, another model).
local function resolve_fields(state, location_id, list)
  return require("ghl.sim.contacts").resolve_custom_fields(state, location_id, list, "opportunity")
end

local function merge_fields(o, resolved)
  require("ghl.sim.contacts").merge_custom_fields(o, resolved)
end

local function pipeline_or_400(state, location_id, id)
  local p = pipeline(state, location_id, id)
  if not p then reply.raise(400, "Pipeline not found") end
  return p
end

local function stage_or_400(p, id)
  if id == nil then return p.stages[1] end
  local st = stage_of(p, id)
  if not st then reply.raise(400, "Pipeline stage not found in this pipeline") end
  return st
end

-- The opportunity named by the path: 400 unknown, 403 another location.
local function lookup(ctx)
  local o = ctx.state:records("opportunities")[ctx.params.id]
  if not o then reply.raise(400, "Opportunity not found") end
  auth.check_location(ctx.token, o.locationId, ctx.state)
  return o
end

local function create(ctx)
  local body, state = ctx.body or {}, ctx.state
  validate.assert(body, CREATE)
  local loc = body.locationId
  local p = pipeline_or_400(state, loc, body.pipelineId)
  local st = stage_or_400(p, body.pipelineStageId)
  local c = state.contacts[body.contactId]
  if not c or c.locationId ~= loc then reply.raise(400, "Contact not found") end
  local resolved = resolve_fields(state, loc, body.customFields)
  local ms = state:now_ms()
  local o = { id = state.rng:id(20), locationId = loc, name = body.name, pipelineId = p.id,
    pipelineStageId = st.id, status = body.status, contactId = c.id, monetaryValue = body.monetaryValue,
    assignedTo = body.assignedTo, source = "api", customFields = {},
    created_ms = ms, updated_ms = ms, status_ms = ms, stage_ms = ms }
  merge_fields(o, resolved)
  put(state, o)
  return 201, { opportunity = M.present(state, o) }
end

local function get(ctx)
  return 200, { opportunity = M.present(ctx.state, lookup(ctx)) }
end

local function update(ctx)
  local body, state = ctx.body or {}, ctx.state
  validate.assert(body, UPDATE)
  local o = lookup(ctx)
  if body.name == "" then reply.invalid { "name should not be empty" } end
  local p = pipeline_or_400(state, o.locationId, body.pipelineId or o.pipelineId)
  local stage_id = body.pipelineStageId
  if stage_id == nil and p.id == o.pipelineId then stage_id = o.pipelineStageId end
  local st = stage_or_400(p, stage_id)
  local resolved = resolve_fields(state, o.locationId, body.customFields)
  local ms = state:now_ms()
  if st.id ~= o.pipelineStageId then o.stage_ms = ms end
  if body.status and body.status ~= o.status then o.status_ms = ms end
  o.pipelineId, o.pipelineStageId = p.id, st.id
  o.name = body.name or o.name
  o.status = body.status or o.status
  if body.monetaryValue ~= nil then o.monetaryValue = body.monetaryValue end
  if body.assignedTo ~= nil then o.assignedTo = body.assignedTo end
  merge_fields(o, resolved)
  o.updated_ms = ms
  return 200, { opportunity = M.present(state, o) }
end

local function delete(ctx)
  remove(ctx.state, lookup(ctx))
  return 200, { succeded = true }
end

local function list_pipelines(ctx)
  local loc = ctx.query.locationId
  if loc == nil or loc == "" then reply.invalid { "locationId should not be empty", "locationId must be a string" } end
  local out = array()
  for _, p in ipairs(store_of(ctx.state, loc).pipelines) do out[#out + 1] = present_pipeline(p) end
  return 200, { pipelines = out }
end

-- ---- Searching ----

local lower = reply.lower

-- A predicate for the filters f = {pipeline_id, pipeline_stage_id,
-- contact_id, status, assigned_to, q}.
local function matcher(state, f)
  local q = f.q and f.q ~= "" and f.q:lower() or nil
  return function(o)
    if f.pipeline_id and o.pipelineId ~= f.pipeline_id then return false end
    if f.pipeline_stage_id and o.pipelineStageId ~= f.pipeline_stage_id then return false end
    if f.contact_id and o.contactId ~= f.contact_id then return false end
    if f.assigned_to and o.assignedTo ~= f.assigned_to then return false end
    if f.status and f.status ~= "all" and o.status ~= f.status then return false end
    if q then
      local c = state.contacts[o.contactId]
      local hay = { o.name, c and contact_name(c), c and c.email, c and c.phone, c and c.companyName }
      for i = 1, 5 do
        if hay[i] and lower(hay[i]):find(q, 1, true) then return true end
      end
      return false
    end
    return true
  end
end

local function filtered(state, location_id, pred)
  local out = {}
  for _, o in ipairs(sorted(state, location_id)) do
    if pred(o) then out[#out + 1] = o end
  end
  return out
end

-- The index of the first record after (ms, id) in list (#list + 1 if none).
local function after(list, ms, id)
  for i, o in ipairs(list) do
    if o.created_ms > ms or (o.created_ms == ms and id ~= nil and o.id > id) then return i end
  end
  return #list + 1
end

-- An integer from the query or a JSON body within [min, max].
local function int_value(v, name, default, min, max)
  if v == nil or v == "" then return default end
  local n = validate.to_int(v)
  if not n then reply.invalid { name .. " must be a number conforming to the specified constraints" } end
  if n < min then reply.invalid { string.format("%s must not be less than %d", name, min) } end
  if max and n > max then reply.invalid { string.format("%s must not be greater than %d", name, max) } end
  return n
end

local STATUS_FILTER = { props = { status = { "string", enum = { "open", "won", "lost", "abandoned", "all" } } } }
local FILTERS = { "pipeline_id", "pipeline_stage_id", "contact_id", "status", "assigned_to", "q" }

local function search_get(ctx)
  local q, state = ctx.query, ctx.state
  local loc = q.location_id
  if loc == nil or loc == "" then
    reply.invalid { "location_id should not be empty", "location_id must be a string" }
  end
  auth.check_location(ctx.token, loc, state)
  local limit = int_value(q.limit, "limit", 20, 1, M.MAX_LIMIT)
  local page = int_value(q.page, "page", 1, 1)
  local f = {}
  for _, k in ipairs(FILTERS) do
    if q[k] ~= nil and q[k] ~= "" then f[k] = q[k] end
  end
  validate.assert({ status = f.status }, STATUS_FILTER)
  local after_ms, after_id
  if q.startAfter ~= nil and q.startAfter ~= "" then
    after_ms = tonumber(q.startAfter)
    if not after_ms then reply.invalid { "startAfter must be a number conforming to the specified constraints" } end
  end
  if q.startAfterId ~= nil and q.startAfterId ~= "" then
    local o = state:records("opportunities")[q.startAfterId]
    if not o or o.locationId ~= loc then reply.raise(400, "Opportunity with startAfterId not found") end
    after_ms, after_id = o.created_ms, o.id
  end

  local matched = filtered(state, loc, matcher(state, f))
  local first = after_ms and after(matched, after_ms, after_id) or (page - 1) * limit + 1
  local last_i = math.min(first + limit - 1, #matched)
  local out = array()
  for i = first, last_i do out[#out + 1] = M.present(state, matched[i]) end
  local current = (first - 1) // limit + 1
  local more = last_i < #matched
  local last = matched[last_i]
  local meta = {
    total = #matched, currentPage = current,
    nextPage = more and current + 1 or null, prevPage = current > 1 and current - 1 or null,
    startAfterId = #out > 0 and last.id or null, startAfter = #out > 0 and last.created_ms or null,
    nextPageUrl = null,
  }
  if more then
    local params = { { "location_id", loc } }
    for _, k in ipairs(FILTERS) do params[#params + 1] = { k, f[k] } end
    params[#params + 1] = { "limit", limit }
    params[#params + 1] = { "startAfter", last.created_ms }
    params[#params + 1] = { "startAfterId", last.id }
    params[#params + 1] = { "page", current + 1 }
    meta.nextPageUrl = ctx.base_url .. "/opportunities/search?" .. reply.query_string(params)
  end
  return 200, { opportunities = out, meta = meta }
end

local function search_post(ctx)
  local body, state = ctx.body or {}, ctx.state
  validate.assert(body, SEARCH)
  local limit = int_value(body.limit, "limit", 20, 1, M.MAX_LIMIT)
  local page = int_value(body.page, "page", 1, 1)
  local sa = body.searchAfter
  local after_ms, after_id
  if sa ~= nil and sa ~= null and #sa > 0 then
    after_ms, after_id = tonumber(sa[1]), sa[2]
    if #sa ~= 2 or not after_ms or type(after_id) ~= "string" then
      reply.invalid { "searchAfter must be the searchAfter of an opportunity: [createdAt in epoch ms, id]" }
    end
  end
  local matched = filtered(state, body.locationId, matcher(state, { q = body.query }))
  local first = after_ms and after(matched, after_ms, after_id) or (page - 1) * limit + 1
  local out = array()
  for i = first, math.min(first + limit - 1, #matched) do
    local o = matched[i]
    local p = M.present(state, o)
    p.searchAfter = array { tostring(o.created_ms), o.id }
    out[#out + 1] = p
  end
  return 200, { opportunities = out, total = #matched }
end

-- ---- Routes ----

local READ, WRITE = "opportunities.readonly", "opportunities.write"

M.routes = {
  { method = "GET", path = "/opportunities/search", handler = search_get, scope = READ },
  { method = "POST", path = "/opportunities/search", handler = search_post, scope = READ, body_location = true },
  { method = "GET", path = "/opportunities/pipelines", handler = list_pipelines, scope = READ },
  { method = "POST", path = "/opportunities", handler = create, scope = WRITE, body_location = true },
  { method = "GET", path = "/opportunities/:id", handler = get, scope = READ },
  { method = "PUT", path = "/opportunities/:id", handler = update, scope = WRITE },
  { method = "DELETE", path = "/opportunities/:id", handler = delete, scope = WRITE },
}
for _, r in ipairs(M.routes) do r.family = "opportunities" end

-- ---- Seed data ----

-- Add n deterministic opportunities to location_id (uses state.rng).
function M.seed(state, location_id, n)
  local contacts = state:contacts_in(location_id)
  if #contacts == 0 then
    require("ghl.sim.contacts").seed(state, location_id, math.min(n, 10))
    contacts = state:contacts_in(location_id)
  end
  local store, rng = store_of(state, location_id), state.rng
  for i = 1, n do
    local c = contacts[(i - 1) % #contacts + 1]
    local p = store.pipelines[i % 3 == 0 and 2 or 1]
    local st = p.stages[rng:int(#p.stages)]
    local created = M.SEED_EPOCH_MS + ((i - 1) // 3) * 53 * 60000
    local status = i % 11 == 0 and "abandoned" or i % 7 == 0 and "lost" or i % 5 == 0 and "won" or "open"
    put(state, { id = state.rng:id(20), locationId = location_id,
      name = string.format("%s - %s", contact_name(c), rng:pick(PRODUCTS)),
      pipelineId = p.id, pipelineStageId = st.id, status = status, contactId = c.id,
      monetaryValue = 250 * (i % 20 + 1), source = "sim seed", customFields = {},
      created_ms = created, updated_ms = created + rng:int(86400000), status_ms = created, stage_ms = created })
  end
end

return M
