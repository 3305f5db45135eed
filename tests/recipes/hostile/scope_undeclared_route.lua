-- The manifest declares contacts.readonly only; the recipe reads users,
-- calendars and custom fields (routes needing scopes it did not declare).
recipe { name = "scope_undeclared_route", writes = false, scopes = { "contacts.readonly" } }
return function(p, client)
  local out = {}
  for _, f in ipairs {
    function() return client:get("/users/", { locationId = client.location }) end,
    function() return client:get("/locations/{locationId}") end,
    function() return client:get("/locations/{locationId}/customFields") end,
    function() return ghl.users.list(client) end,
  } do
    local ok, e = pcall(f)
    out[#out + 1] = ok and "sent" or (type(e) == "table" and tostring(e.kind) or ("error: " .. tostring(e)))
  end
  return out
end
