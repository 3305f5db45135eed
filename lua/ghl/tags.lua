-- ghl.tags: a location's tag catalogue, /locations/{locationId}/tags
-- (Version 2021-07-28, scopes locations/tags.readonly / .write). Tags on a
-- contact are ghl.contacts.add_tags / remove_tags.
--   tags.list(client) -> [{id, name}]
--   tags.find(client, name) -> tag or nil (case-insensitive)
--   tags.create(client, name) -> tag
--   tags.ensure(client, name) -> tag, created (boolean): idempotent
--   tags.rename(client, name_or_id, new_name) -> tag
--   tags.delete(client, name_or_id) -> true, or false when absent
-- Also as methods: c.tags:ensure("vip"). Failures raise the client's
-- ghl.error. In a dry run (client.dry_run) ensure still reads first, so
-- its created is what it would do; a tag it would create or rename is a
-- stand-in marked dryRun = true.
local R = require "ghl.resource"

local M = {}

M.ENDPOINTS = {
  list = { "GET", "/locations/{locationId}/tags" },
  create = { "POST", "/locations/{locationId}/tags" },
  update = { "PUT", "/locations/{locationId}/tags/{tagId}" },
  delete = { "DELETE", "/locations/{locationId}/tags/{tagId}" },
}

function M.list(client)
  R.location(client, "tags.list")
  return client:get(M.ENDPOINTS.list[2]).tags or {}
end

function M.find(client, name)
  local want = tostring(name):lower()
  for _, t in ipairs(M.list(client)) do
    if t.name:lower() == want or t.id == name then return t end
  end
  return nil
end

function M.create(client, name)
  R.location(client, "tags.create")
  local body = { name = name }
  return R.entity(client:post(M.ENDPOINTS.create[2], body), "tag", body)
end

function M.ensure(client, name)
  local t = M.find(client, name)
  if t then return t, false end
  return M.create(client, name), true
end

function M.rename(client, name, new_name)
  local t = M.find(client, name)
  if not t then error("no tag named '" .. tostring(name) .. "'", 2) end
  local body = { name = new_name }
  return R.entity(client:put(R.path(M.ENDPOINTS.update[2], { tagId = t.id }), body), "tag", body, t.id)
end

function M.delete(client, name)
  local t = M.find(client, name)
  if not t then return false end
  client:delete(R.path(M.ENDPOINTS.delete[2], { tagId = t.id }))
  return true
end

return R.register(M)
