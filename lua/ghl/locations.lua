-- ghl.locations: sub-accounts (Version 2021-07-28, scope
-- locations.readonly; oauth.readonly for installed).
--   locations.get(client [, id]) -> location (default: the client's)
--   locations.search(client [, params [, {max=}]]) -> iterator over the
--       company's locations (a Company token; skip/limit paging)
--   locations.installed([{app=, company=, installed=}]) -> [{id, name,
--       installed, ...}], crow, items: the company's locations as
--       /oauth/installedLocations lists them (installed = its isInstalled
--       flag; with installed = true, HighLevel lists only those where the
--       app is installed), read with the stored agency (Company) token
--       across every page of 100 (one request each, in the Company's
--       rate-limit bucket), in the order listed, each id once; crow is that
--       Company token's store row, items HighLevel's items as they came.
--       Their names are remembered in the store (see names).
--   locations.company_row([{app=, company=}]) -> the stored Company token row
--   locations.names([rows]) -> {location id -> name}: the names the last
--       installed read saw, for the companies of token rows `rows` (every
--       company stored when nil); never raises (no store: no names)
--   locations.remember(company, items) -> keep the names of items
--       {_id|id, name} (store kv namespace "names", one entry per company);
--       a store that cannot be opened only loses them
-- Also as methods: c.locations:get(). Failures raise ghl.error (kind
-- "auth" when no agency token is stored).
local R = require "ghl.resource"
local E = require "ghl.error"
local cjson = require "cjson.safe"

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

M.PAGE = 100   -- locations per installedLocations page
M.NS = "names"  -- the store's kv namespace of remembered location names

-- The remembered names of company `company` in store db: {id -> name}.
local function names_of(db, company)
  local text = db:kv_get(M.NS, company)
  local t = text and cjson.decode(text)
  return type(t) == "table" and t or {}
end

-- The raw store handle, or nil when it cannot be opened (an expected
-- condition here: the names are only a convenience).
local function raw_store()
  local ok, db = pcall(require("ghl.auth").store)
  if not ok then return nil end
  return db.raw or db
end

function M.remember(company, locs)
  local db = raw_store()
  if not db then return end
  local t, changed = names_of(db, company), false
  for _, l in ipairs(locs) do
    local id, name = l._id or l.id, l.name
    if type(id) == "string" and type(name) == "string" and name ~= "" and t[id] ~= name then
      t[id], changed = name, true
    end
  end
  if changed then db:kv_put(M.NS, company, assert(require("ghl.json").encode(t))) end
end

function M.names(rows)
  local db = raw_store()
  if not db then return {} end
  local companies, out = {}, {}
  for _, r in ipairs(rows or db:find_tokens {} or {}) do
    if r.company_id then companies[r.company_id] = true end
    if r.resource_type == "Company" then companies[r.resource_id] = true end
  end
  for company in pairs(companies) do
    for id, name in pairs(names_of(db, company)) do out[id] = name end
  end
  return out
end

function M.installed(o)
  o = o or {}
  local crow = M.company_row(o)
  if crow.kind == "pit" then
    E.raise { kind = "auth", message = "a Private Integration Token cannot list installed locations",
              hint = "HighLevel accepts only an agency OAuth token on /oauth/installedLocations: log in with 'ghlua auth login --user-type Company'" }
  end
  local auth, oauth = require "ghl.auth", require "ghl.oauth"
  local a = auth.app(crow.app)
  local out, items, seen, skip = {}, {}, {}, 0
  while true do
    local token = auth.token { app = crow.app, company = crow.resource_id }
    local page = oauth.installed_locations { access_token = token, company_id = crow.resource_id,
      app_id = a.client_id:match("^[^-]+"), skip = skip, limit = M.PAGE,
      is_installed = o.installed and true or nil }
    local locs = type(page.locations) == "table" and page.locations or {}
    for _, l in ipairs(locs) do
      local id = type(l) == "table" and (l._id or l.id)
      if type(id) == "string" and not seen[id] then
        seen[id] = true
        local t = {}
        for k, v in pairs(l) do t[k] = v end
        t.id, t.installed = id, l.isInstalled
        out[#out + 1], items[#items + 1] = t, l
      end
    end
    skip = skip + #locs
    -- count is the company's total: a page past it, or an empty one, ends
    if #locs == 0 or (tonumber(page.count) and skip >= tonumber(page.count)) then break end
  end
  M.remember(crow.resource_id, items)
  return out, crow, items
end

return R.register(M)
