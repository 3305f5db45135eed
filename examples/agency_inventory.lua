-- agency_inventory.lua: count a sub-account's contacts and opportunities.
-- Run over every sub-account where the app is installed with
-- --all-locations: ghlua mints a location token per sub-account from the
-- agency (Company) login, runs the locations concurrently, each within its
-- own rate limit, prints each one's counts under its header, reports a
-- location that fails without stopping the others, and exits 1 if one
-- did. Reads only.
--
--   ghlua auth login --user-type Company      # once: the agency login
--   ghlua run examples/agency_inventory.lua --all-locations [--concurrency N] [--checkpoint FILE]
--   ghlua run examples/agency_inventory.lua --all-locations --json > inventory.json
--   ghlua run examples/agency_inventory.lua --location ID
--
-- With --json the report on stdout lists every location with its result
-- ({contacts, opportunities}), its outcome and time: one line of jq makes
-- it a CSV (jq -r '.locations[] | [.id, .name, .result.contacts,
-- .result.opportunities] | @csv'). With --checkpoint, a run that was
-- stopped goes on where it left off.
recipe {
  name = "agency_inventory",
  description = "count each location's contacts and opportunities (run with --all-locations)",
  scopes = { "contacts.readonly", "opportunities.readonly" },
  writes = false,
}

return function(_, client)
  local contacts, opportunities = ghl.contacts.count(client), ghl.opportunities.count(client)
  print(("%d contacts, %d opportunities"):format(contacts, opportunities))
  return { contacts = contacts, opportunities = opportunities }
end
