-- `ghlua auth locations`: the company's sub-accounts and whether the app is
-- installed on each, read with the agency (Company) token across every
-- page (ghl.locations.installed). The names HighLevel gives are remembered
-- in the store, so `ghlua auth status`, the REPL's :use and "several
-- tokens match" can show them without asking HighLevel again.
local args = require "ghl.cli.args"
local locations = require "ghl.locations"
local E = require "ghl.error"
local json = require "ghl.json"

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

local function installed(l)
  if l.installed == true then return "yes" end
  if l.installed == false then return "no" end
  return "?"
end

function M.run(argv)
  local o = args.parse(argv, M.flags, M.usage)
  local list, crow, items = locations.installed { app = o.app, company = o.company, installed = o.installed }
  if o.json then
    io.stdout:write(assert(json.encode(items, { empty = "array" })), "\n")
    return 0
  end
  local rows, n = {}, 0
  for i, l in ipairs(list) do
    rows[i] = { id = l.id, name = l.name, installed = installed(l) }
    if l.installed == true then n = n + 1 end
  end
  if #rows > 0 then
    local lines = require("ghl.columns").render({
      { key = "id", title = "LOCATION" }, { key = "name", title = "NAME", max = 40 },
      { key = "installed", title = "INSTALLED" } }, rows, { header = true })
    io.stdout:write(table.concat(lines, "\n"), "\n")
  end
  io.stderr:write(("%d location%s, the app installed on %d (company %s)\n"):format(#list, #list == 1 and "" or "s",
    n, E.sanitize(crow.resource_id)))
  return 0
end

return M
