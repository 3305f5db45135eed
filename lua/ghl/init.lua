-- require "ghl": the library scripts use. It gathers the native modules
-- (http, server, sys, error) and the Lua ones; submodules load on first use,
-- so `ghl.http` costs nothing until touched. Expected failures are ghl.error
-- objects: native functions return nil, err; helpers here raise them, and
-- ghl.try turns a raise back into nil, err.
local E = require "ghl.error"

local ghl = { _VERSION = "ghlua 0.1.0", error = E }

-- Submodules by name, loaded lazily.
local lazy = {
  http = "ghl.http", server = "ghl.server", sys = "ghl.sys",
  inspect = "ghl.inspect", json = "ghl.json",
  oauth = "ghl.oauth", auth = "ghl.auth", scopes = "ghl.scopes", store = "ghl.store",
  crypto = "ghl.crypto", sso = "ghl.sso", webhooks = "ghl.webhooks",
  contacts = "ghl.contacts", custom_fields = "ghl.custom_fields", custom_values = "ghl.custom_values",
  tags = "ghl.tags", opportunities = "ghl.opportunities", users = "ghl.users", locations = "ghl.locations",
  conversations = "ghl.conversations", calendars = "ghl.calendars", csv = "ghl.csv", recipe = "ghl.recipe",
}

setmetatable(ghl, {
  __complete = lazy,   -- the names __index provides, for REPL completion (never called)
  __index = function(t, k)
    local name = lazy[k]
    if name then
      local m = require(name)
      rawset(t, k, m)
      return m
    end
  end,
})

-- client{location=, company=, app=, token=} -> an API client (ghl.client).
function ghl.client(o)
  return require("ghl.client").new(o)
end

-- parallel(fns, {concurrency=N, each=}) -> results in order, each a value or a
-- ghl.error; HTTP requests inside the functions run concurrently. With
-- each = function(i, v), results are handed over as they arrive and not
-- kept; parallel then returns the number of errors.
function ghl.parallel(fns, o)
  return require("ghl.loop").run(fns, o)
end

-- each_location(fn, {locations = list | "all", concurrency = N, checkpoint =
-- FILE, app =, company =, dry_run = PLAN}) -> report: fn(client, location)
-- once per location of the agency, concurrently (ghl.fanout).
function ghl.each_location(fn, o)
  return require("ghl.fanout").each_location(fn, o)
end

-- try(f, ...) -> f's results, or nil, err when f raised. A ghl.error comes
-- back as it is; any other error value (a bug) is re-raised, so mistakes are
-- not silently swallowed.
function ghl.try(f, ...)
  local r = table.pack(pcall(f, ...))
  if r[1] then return table.unpack(r, 2, r.n) end
  if E.is(r[2]) then return nil, r[2] end
  error(r[2], 0)
end

return ghl
