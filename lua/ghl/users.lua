-- ghl.users: the users of a location (Version 2021-07-28, scope
-- users.readonly).
--   users.list(client) -> [{id, firstName, lastName, email, role, ...}]
--   users.get(client, id) -> user
--   users.find(client, email) -> user or nil (case-insensitive)
-- Also as methods: c.users:list(). Failures raise the client's ghl.error.
local R = require "ghl.resource"

local M = {}

M.ENDPOINTS = {
  list = { "GET", "/users/" },
  get = { "GET", "/users/{userId}" },
}

function M.list(client)
  local loc = R.location(client, "users.list")
  return client:get(M.ENDPOINTS.list[2], { locationId = loc }).users or {}
end

function M.get(client, id)
  R.client(client, "users.get")
  return client:get(R.path(M.ENDPOINTS.get[2], { userId = id }))
end

function M.find(client, email)
  email = tostring(email):lower()
  for _, u in ipairs(M.list(client)) do
    if type(u.email) == "string" and u.email:lower() == email then return u end
  end
  return nil
end

return R.register(M)
