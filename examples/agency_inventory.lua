-- agency_inventory.lua: for every sub-account where the app is installed,
-- count its contacts and opportunities, and write one CSV row per
-- location. A script, not a recipe: it uses ghl.each_location itself,
-- which mints a location token per sub-account from the agency (Company)
-- login, runs the locations concurrently, each within its own rate limit,
-- and reports a location that fails without stopping the others.
--
--   ghlua auth login --user-type Company      # once: the agency login
--   ghlua examples/agency_inventory.lua [OUT.csv] [--concurrency N] [--checkpoint FILE]
--
-- OUT.csv defaults to inventory.csv. With --checkpoint, a run that was
-- stopped continues where it left off (locations already counted keep
-- their counts from the checkpoint). Exit status 1 when a location failed.
local ghl = require "ghl"

local out, concurrency, checkpoint = "inventory.csv", nil, nil   -- concurrency: the library's default
local i = 1
while arg[i] do
  if arg[i] == "--concurrency" then concurrency, i = tonumber(arg[i + 1]), i + 1
  elseif arg[i] == "--checkpoint" then checkpoint, i = arg[i + 1], i + 1
  else out = arg[i] end
  i = i + 1
end

local report = ghl.each_location(function(client)
  return { contacts = ghl.contacts.count(client), opportunities = ghl.opportunities.count(client) }
end, { concurrency = concurrency, checkpoint = checkpoint })

local rows, contacts, opportunities = {}, 0, 0
for _, e in ipairs(report.locations) do
  local r = e.result or {}
  rows[#rows + 1] = { location_id = e.id, name = e.name, contacts = r.contacts, opportunities = r.opportunities,
                      status = e.ok and "ok" or ("error: " .. tostring(e.error and e.error.message or e.error)) }
  contacts, opportunities = contacts + (r.contacts or 0), opportunities + (r.opportunities or 0)
end
ghl.csv.write(out, rows, { columns = { "location_id", "name", "contacts", "opportunities", "status" } })
print(("%d locations (%d failed): %d contacts, %d opportunities; written to %s"):format(
  report.total, report.failed, contacts, opportunities, out))
for _, e in ipairs(report.locations) do
  if not e.ok then io.stderr:write(("%s: %s\n"):format(e.id, tostring(e.error))) end
end
if report.failed > 0 then os.exit(1) end
