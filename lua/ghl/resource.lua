-- ghl.resource: what the resource modules (ghl.contacts, ghl.custom_fields,
-- ...) share. Each module lists its endpoints in M.ENDPOINTS ({name =
-- {METHOD, PATH}}); the client takes the Version header from the
-- operations table, and resource.scopes gives the scopes a call needs from
-- the same table (also as module.scopes([name]) and module.version(name):
-- see register). bind(module, client) is the view behind c.contacts:
-- every function of the module with the client put first, callable as
-- view:create(fields) or view.create(fields). entity(answer, key, fields)
-- unwraps {contact = {...}}, or makes a stand-in from the fields sent when
-- the client is in a dry run (client.dry_run): a write planned, not made,
-- is always marked dryRun = true, so a caller can say "would create". Mistakes (no location on the client, a bad
-- argument) raise strings; API failures are the client's ghl.error raises.
local ops = require "ghl.api.ops"

local M = {}

-- The resource modules, by their name under ghl (ghl.contacts, ...): a
-- client's c.contacts is the module bound to it.
M.NAMES = { contacts = true, custom_fields = true, custom_values = true, tags = true,
  opportunities = true, users = true, locations = true, conversations = true, calendars = true }

-- scopes(module [, name]) -> {name = {scope, ...}} for every endpoint, or
-- the list for one; read from the operations table.
function M.scopes(mod, name)
  local function of(e)
    local op = ops.match(e[1], e[2])
    local t = {}
    for i, s in ipairs(op and op.scopes or {}) do t[i] = s end
    return t
  end
  if name then
    local e = mod.ENDPOINTS[name]
    if not e then error("no endpoint named '" .. tostring(name) .. "'", 2) end
    return of(e)
  end
  local all = {}
  for n, e in pairs(mod.ENDPOINTS) do all[n] = of(e) end
  return all
end

-- version(module, name) -> the Version header the client sends for it.
function M.version(mod, name)
  local e = mod.ENDPOINTS[name] or error("no endpoint named '" .. tostring(name) .. "'", 2)
  return ops.version(e[1], e[2])
end

-- register(module) -> module, with module.scopes([name]) and
-- module.version(name) reading its endpoints in the operations table
-- (a client passed first, as through a bound view, is ignored).
function M.register(mod)
  mod.scopes = function(a, b)
    if type(a) == "table" then a = b end
    return M.scopes(mod, a)
  end
  mod.version = function(a, b)
    if type(a) == "table" then a = b end
    return M.version(mod, a)
  end
  return mod
end

-- bind(module, client) -> a view whose functions take the client first.
function M.bind(mod, client)
  local view = {}
  return setmetatable(view, {
    __index = function(t, k)
      local f = mod[k]
      if type(f) ~= "function" then return f end
      local g = function(first, ...)
        if first == t then return f(client, ...) end
        return f(client, first, ...)
      end
      rawset(t, k, g)
      return g
    end,
    __tostring = function() return "ghl resource view" end,
  })
end

-- The client's location id, or raise naming the call.
function M.location(client, what)
  if type(client) ~= "table" or type(client.request) ~= "function" then
    error((what or "this call") .. ": the first argument must be a client (ghl.client{...})", 3)
  end
  local loc = client.location
  if not loc then
    error((what or "this call") .. " needs a location: use a client made with location=ID", 3)
  end
  return loc
end

-- Check the client argument.
function M.client(client, what)
  if type(client) ~= "table" or type(client.request) ~= "function" then
    error((what or "this call") .. ": the first argument must be a client (ghl.client{...})", 3)
  end
  return client
end

-- entity(answer, key, sent [, id]) -> answer[key]; in a dry run, a copy
-- of what was sent marked dryRun = true, with the id of the record it
-- would change (id, for an update) or the placeholder ("dry-run-N").
function M.entity(answer, key, sent, id)
  if type(answer) == "table" and answer.dryRun then
    local t = {}
    for k, v in pairs(sent or {}) do t[k] = v end
    t.id, t.dryRun = id or answer.id, true
    return t
  end
  if type(answer) ~= "table" then return answer end
  if key and answer[key] ~= nil then return answer[key] end
  return answer
end

-- path(template, {name = value}) -> the template with {name} filled and
-- escaped ({locationId} and {companyId} are left for the client).
function M.path(template, params)
  return (template:gsub("{([%w_]+)}", function(name)
    if name == "locationId" or name == "companyId" then return nil end
    local v = params[name]
    if v == nil then error(("%s needs %s"):format(template, name), 3) end
    return require("ghl.util").urlencode(v)
  end))
end

-- copy(t) -> a shallow copy (nil stays nil).
function M.copy(t)
  if t == nil then return {} end
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

return M
