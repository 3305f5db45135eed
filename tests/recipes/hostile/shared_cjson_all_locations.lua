-- With --all-locations: each location first makes its call, then breaks
-- cjson's settings; the host must still mint the next location's token,
-- decode its answers and print the report.
recipe { name = "shared_cjson_all_locations", writes = false, scopes = { "locations.readonly" } }
return function(p, client, location)
  local l = ghl.locations.get(client)
  local ok = type(l) == "table" and l.id == location.id
  for _, m in ipairs { function() return ghl.json end, function() return require "cjson" end,
                       function() return require "cjson.safe" end } do
    pcall(function() m().decode_max_depth(1) end)
    pcall(function() m().encode_max_depth(2) end)
    pcall(function() m().encode_number_precision(1) end)
  end
  return { ok = ok, pi = 3.25 }
end
