-- ghl.locations: sub-accounts (Version 2021-07-28, scope
-- locations.readonly; oauth.readonly for installed).
--   locations.get(client [, id]) -> location (default: the client's)
--   locations.search(client [, params [, {max=}]]) -> iterator over the
--       company's locations (a Company token; skip/limit paging)
--   locations.installed([{app=, company=}]) -> [{id, name, ...}]: the
--       locations where the app is installed, read with the stored agency
--       (Company) token across every page
--   locations.company_row([{app=, company=}]) -> the stored Company token row
-- Also as methods: c.locations:get(). Failures raise ghl.error (kind
-- "auth" when no agency token is stored).
local R = require "ghl.resource"
local E = require "ghl.error"

local M = {}

M.ENDPOINTS = {
  get = { "GET", "/locations/{locationId}" },
  search = { "GET", "/locations/search" },
  installed = { "GET", "/oauth/installedLocations" },
}

function M.get(client, id)
  R.client(client, "locations.get")
  id = id or client.location or error("locations.get needs an id or a location client", 2)
  return client:get(R.path("/locations/{id}", { id = id })).location
end

function M.search(client, params, o)
  R.client(client, "locations.search")
  o = o or {}
  local q = R.copy(params)
  q.companyId = q.companyId or client.company
  return client:paginate(M.ENDPOINTS.search[2], q, { max = o.max, style = "skip" })
end

function M.company_row(o)
  o = o or {}
  local auth = require "ghl.auth"
  for _, r in ipairs(auth.store():find_tokens { app = o.app, company = o.company }) do
    if r.resource_type == "Company" then return r end
  end
  E.raise { kind = "auth", code = "no_agency_token", message = "no agency (Company) token stored",
            hint = "log in as the agency: 'ghlua auth login --user-type Company'" }
end

function M.installed(o)
  local crow = M.company_row(o)
  local out = {}
  for _, l in ipairs(require("ghl.cli.auth.locations").list(crow)) do
    local t = {}
    for k, v in pairs(l) do t[k] = v end
    t.id = l._id or l.id
    out[#out + 1] = t
  end
  return out, crow
end

return R.register(M)
