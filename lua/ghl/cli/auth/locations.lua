-- `ghlua auth locations`: the company's sub-accounts and whether the app is
-- installed on each, read with the agency (Company) token across every
-- page. The names HighLevel gives are remembered in the store (kv
-- namespace "names", one entry per company: {location id -> name}), so
-- `ghlua auth status`, the REPL's :use and "several tokens match" can show
-- them without asking HighLevel again.
local args = require "ghl.cli.args"
local auth = require "ghl.auth"
local oauth = require "ghl.oauth"
local E = require "ghl.error"

local M = {}

M.summary = "list the company's locations and where the app is installed (agency token)"
M.usage = "ghlua auth locations [--app NAME] [--company ID] [--installed] [--json]"
M.help = [[
One line per location: its id, its name and whether the app is installed
there (INSTALLED yes or no), read from HighLevel's installedLocations with
the stored agency (Company) token. --installed lists only those where it
is installed. --json prints HighLevel's items as they came.
]]
M.flags = { app = args.APP, company = args.COMPANY, json = "flag", installed = "flag" }

M.NS = "names"

local cjson = require "cjson.safe"

-- The remembered names of company `company`: {id -> name} (empty when none).
local function names_of(db, company)
  local text = db:kv_get(M.NS, company)
  local t = text and cjson.decode(text)
  return type(t) == "table" and t or {}
end

-- remember(company, locations): keep the names of items {_id|id, name}.
-- A store that cannot be written only loses the names.
function M.remember(company, locs)
  local ok, db = pcall(auth.store)
  if not ok then return end
  db = db.raw or db
  local t, changed = names_of(db, company), false
  for _, l in ipairs(locs) do
    local id, name = l._id or l.id, l.name
    if type(id) == "string" and type(name) == "string" and name ~= "" and t[id] ~= name then
      t[id], changed = name, true
    end
  end
  if changed then db:kv_put(M.NS, company, require("ghl.json").encode(t)) end
end

-- names(rows) -> {location id -> name} for the companies token rows
-- `rows` belong to (every company stored when rows is nil). Never raises:
-- a store that cannot be read gives no names.
function M.names(rows)
  local ok, db = pcall(auth.store)
  if not ok then return {} end
  db = db.raw or db
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

-- All the company's locations for Company row `crow` (with opts.installed,
-- only those where the app is installed), as HighLevel's items
-- {_id, name, isInstalled, ...}; their names are remembered.
function M.list(crow, opts)
  opts = opts or {}
  if crow.kind == "pit" then
    E.raise { kind = "auth", message = "a Private Integration Token cannot list installed locations",
              hint = "HighLevel accepts only an agency OAuth token on /oauth/installedLocations" }
  end
  local a = auth.app(crow.app)
  local all, skip = {}, 0
  repeat
    local token = auth.token { app = crow.app, company = crow.resource_id }
    local page = oauth.installed_locations { access_token = token, company_id = crow.resource_id,
      app_id = a.client_id:match("^[^-]+"), skip = skip, limit = 100,
      is_installed = opts.installed and true or nil }
    local locs = page.locations or {}
    for _, l in ipairs(locs) do all[#all + 1] = l end
    skip = skip + #locs
  until #locs == 0 or (page.count and skip >= page.count)
  M.remember(crow.resource_id, all)
  return all
end

local function installed(l)
  if l.isInstalled == true then return "yes" end
  if l.isInstalled == false then return "no" end
  return "?"
end

function M.run(argv)
  local o = args.parse(argv, M.flags, M.usage)
  local crow
  for _, r in ipairs(auth.store():find_tokens { app = o.app, company = o.company }) do
    if r.resource_type == "Company" then crow = r break end
  end
  if not crow then
    E.raise { kind = "auth", message = "no agency (Company) token stored",
              hint = "log in as the agency: 'ghlua auth login --user-type Company'" }
  end
  local locs = M.list(crow, { installed = o.installed })
  if o.json then
    io.stdout:write(#locs == 0 and "[]" or assert(require("ghl.json").encode(locs)), "\n")
    return 0
  end
  local rows, n = {}, 0
  for i, l in ipairs(locs) do
    rows[i] = { id = l._id or l.id, name = l.name, installed = installed(l) }
    if l.isInstalled == true then n = n + 1 end
  end
  if #rows > 0 then
    local lines = require("ghl.cli.columns").render({
      { key = "id", title = "LOCATION" }, { key = "name", title = "NAME", max = 40 },
      { key = "installed", title = "INSTALLED" } }, rows, { header = true })
    io.stdout:write(table.concat(lines, "\n"), "\n")
  end
  io.stderr:write(("%d location%s, the app installed on %d (company %s)\n"):format(#locs, #locs == 1 and "" or "s",
    n, E.sanitize(crow.resource_id)))
  return 0
end

return M
