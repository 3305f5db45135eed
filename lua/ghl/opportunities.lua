-- ghl.opportunities: pipelines and opportunities (Version 2021-07-28,
-- scopes opportunities.readonly / opportunities.write).
--   opportunities.pipelines(client) -> [{id, name, stages = [{id, name}]}]
--   opportunities.pipeline(client, name_or_id) -> pipeline or nil
--   opportunities.stage(pipeline, name_or_id) -> stage or nil
--   opportunities.search(client [, params [, {max=}]]) -> iterator; params
--       are the API's snake_case query (q, status, contact_id, ...) plus
--       pipeline and stage by name or id
--   opportunities.count(client [, params]) -> number matching
--   opportunities.create(client, {name=, contactId=, pipeline= (name or
--       id) | pipelineId=, stage= | pipelineStageId=, status= ("open"),
--       monetaryValue=, customFields=}) -> opportunity
--   opportunities.get(client, id) / update(client, id, fields) / delete
--   opportunities.move(client, id, stage [, pipeline]) -> opportunity:
--       to a stage (name or id) of its pipeline, or of pipeline
-- customFields by key as in ghl.contacts (model "opportunity"); reads are
-- decorated with key, fieldKey, name and value. An unknown pipeline or
-- stage name raises a ghl.error of kind "usage" listing the real ones;
-- API failures raise the client's ghl.error. Also as methods:
-- c.opportunities:move(id, "Won").
local R = require "ghl.resource"
local CF = require "ghl.custom_fields"
local E = require "ghl.error"

local M = {}

M.ENDPOINTS = {
  pipelines = { "GET", "/opportunities/pipelines" },
  search = { "GET", "/opportunities/search" },
  create = { "POST", "/opportunities/" },
  get = { "GET", "/opportunities/{id}" },
  update = { "PUT", "/opportunities/{id}" },
  delete = { "DELETE", "/opportunities/{id}" },
}

function M.pipelines(client)
  local loc = R.location(client, "opportunities.pipelines")
  return client:get(M.ENDPOINTS.pipelines[2], { locationId = loc }).pipelines or {}
end

local function names(list)
  local t = {}
  for _, x in ipairs(list) do t[#t + 1] = x.name end
  return table.concat(t, ", ")
end

function M.pipeline(client, which)
  for _, p in ipairs(M.pipelines(client)) do
    if p.id == which or (type(which) == "string" and p.name:lower() == which:lower()) then return p end
  end
  return nil
end

function M.stage(p, which)
  for _, s in ipairs(p and p.stages or {}) do
    if s.id == which or (type(which) == "string" and s.name:lower() == which:lower()) then return s end
  end
  return nil
end

local function need_pipeline(client, which, list)
  list = list or M.pipelines(client)
  for _, p in ipairs(list) do
    if p.id == which or (type(which) == "string" and p.name:lower() == which:lower()) then return p end
  end
  E.raise { kind = "usage", message = ("no pipeline '%s' in location %s"):format(tostring(which), client.location),
    hint = "its pipelines are: " .. names(list) }
end

local function need_stage(p, which)
  local s = M.stage(p, which)
  if s then return s end
  E.raise { kind = "usage", message = ("no stage '%s' in pipeline %s"):format(tostring(which), p.name),
    hint = "its stages are: " .. names(p.stages or {}) }
end

local function decorate(client, o)
  if type(o) == "table" then CF.decorate(client, o, "opportunity") end
  return o
end

function M.search(client, params, o)
  R.location(client, "opportunities.search")
  o = o or {}
  local q = R.copy(params)
  if q.pipeline or q.stage then
    local p = need_pipeline(client, q.pipeline or error("stage needs pipeline", 2))
    q.pipeline_id = p.id
    if q.stage then q.pipeline_stage_id = need_stage(p, q.stage).id end
    q.pipeline, q.stage = nil, nil
  end
  local it = client:paginate(M.ENDPOINTS.search[2], q, { max = o.max, method = "GET", style = "meta" })
  return function()
    local x = it()
    if x ~= nil then decorate(client, x) end
    return x
  end
end

-- count(client [, params]) -> the number of opportunities matching.
function M.count(client, params)
  local loc = R.location(client, "opportunities.count")
  local q = R.copy(params)
  q.location_id, q.limit = loc, 1
  local meta = client:get(M.ENDPOINTS.search[2], q).meta
  return tonumber(type(meta) == "table" and meta.total) or 0
end

-- Turn pipeline/stage names into ids and resolve customFields.
local function body_of(client, fields, creating)
  local body = R.copy(fields)
  if body.pipeline or body.stage then
    local p = need_pipeline(client, body.pipeline or body.pipelineId or error("stage needs pipeline", 3))
    body.pipelineId = p.id
    if body.stage then body.pipelineStageId = need_stage(p, body.stage).id end
    body.pipeline, body.stage = nil, nil
  end
  if creating then
    body.locationId = body.locationId or client.location
    body.status = body.status or "open"
  end
  if body.customFields ~= nil then
    body.customFields = CF.resolve(client, body.customFields, "opportunity")
    if #body.customFields == 0 then body.customFields = nil end   -- {} would go out as a JSON object
  end
  return body
end

function M.create(client, fields)
  R.location(client, "opportunities.create")
  local body = body_of(client, fields, true)
  return decorate(client, R.entity(client:post(M.ENDPOINTS.create[2], body), "opportunity", body))
end

function M.get(client, id)
  R.location(client, "opportunities.get")
  return decorate(client, client:get(R.path(M.ENDPOINTS.get[2], { id = id })).opportunity)
end

function M.update(client, id, fields)
  R.location(client, "opportunities.update")
  local body = body_of(client, fields, false)
  return decorate(client, R.entity(client:put(R.path(M.ENDPOINTS.update[2], { id = id }), body), "opportunity", body, id))
end

function M.delete(client, id)
  R.location(client, "opportunities.delete")
  client:delete(R.path(M.ENDPOINTS.delete[2], { id = id }))
  return true
end

-- move(client, id, stage [, pipeline]) -> the opportunity in its new stage.
function M.move(client, id, stage, pipeline)
  local pid = pipeline
  if not pid then pid = M.get(client, id).pipelineId end
  local p = need_pipeline(client, pid)
  return M.update(client, id, { pipelineId = p.id, pipelineStageId = need_stage(p, stage).id })
end

return R.register(M)
