-- The recipe bench/fanout.lua runs once per location: `calls` reads of the
-- location (GET /locations/{id}, in the location's own rate-limit bucket),
-- one line of output. Not a useful recipe; a measured one.
recipe {
  name = "fanout_bench",
  description = "N reads per location, for bench/fanout.lua",
  scopes = { "locations.readonly" },
  writes = false,
  params = { calls = { type = "integer", default = 3, help = "reads per location" } },
}

return function(p, client)
  local name
  for _ = 1, p.calls do name = ghl.locations.get(client).name end
  print(("%s: %d reads"):format(name, p.calls))
  return p.calls
end
