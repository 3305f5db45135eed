-- ghl.custom_values: a location's custom values, the merge values used in
-- templates ({{ custom_values.company_phone }}), through
-- /locations/{locationId}/customValues (Version 2021-07-28, scopes
-- locations/customValues.readonly / .write).
--   custom_values.list(client) -> [{id, name, fieldKey, value}]
--   custom_values.find(client, name) -> the entry or nil; name is the
--       name ("Company Phone"), its key ("company_phone") or the fieldKey
--   custom_values.get(client, name) -> value or nil
--   custom_values.set(client, name, value) -> entry, "created" |
--       "updated" | "unchanged" (idempotent: no write when equal)
--   custom_values.delete(client, name) -> true, or false when absent
-- Also as methods: c.custom_values:set(name, value). Failures raise the
-- client's ghl.error. In a dry run (client.dry_run) set still reads first,
-- so what it says is what it would do; its entry is then a stand-in marked
-- dryRun = true.
local R = require "ghl.resource"

local M = {}

M.ENDPOINTS = {
  list = { "GET", "/locations/{locationId}/customValues" },
  create = { "POST", "/locations/{locationId}/customValues" },
  update = { "PUT", "/locations/{locationId}/customValues/{id}" },
  delete = { "DELETE", "/locations/{locationId}/customValues/{id}" },
}

-- "Company Phone" -> "company_phone"; "{{ custom_values.x }}" -> "x".
local function key_of(s)
  s = tostring(s)
  local k = s:match("^{{%s*custom_values%.([%w_]+)%s*}}$")
  if k then return k end
  return (s:lower():gsub("[^%w]+", "_"):gsub("^_+", ""):gsub("_+$", ""))
end
M.key = key_of

function M.list(client)
  R.location(client, "custom_values.list")
  local list = client:get(M.ENDPOINTS.list[2]).customValues or {}
  for _, v in ipairs(list) do v.key = key_of(v.fieldKey or v.name) end
  return list
end

function M.find(client, name)
  local want = key_of(name)
  for _, v in ipairs(M.list(client)) do
    if v.name == name or v.key == want then return v end
  end
  return nil
end

function M.get(client, name)
  local v = M.find(client, name)
  return v and v.value
end

function M.set(client, name, value)
  value = tostring(value)
  local v = M.find(client, name)
  if v and v.value == value then return v, "unchanged" end
  if v then
    local body = { name = v.name, value = value }
    local r = client:put(R.path(M.ENDPOINTS.update[2], { id = v.id }), body)
    return R.entity(r, "customValue", body, v.id), "updated"
  end
  local body = { name = name, value = value }
  return R.entity(client:post(M.ENDPOINTS.create[2], body), "customValue", body), "created"
end

function M.delete(client, name)
  local v = M.find(client, name)
  if not v then return false end
  client:delete(R.path(M.ENDPOINTS.delete[2], { id = v.id }))
  return true
end

return R.register(M)
