-- writes = false: client:request with each writing method, spelled in
-- several ways, and with opts.read = true (which the dry run trusts).
-- Every one caught; the spec wants kind sandbox for each and no write.
recipe { name = "writes_request_methods", writes = false, scopes = { "contacts.readonly", "contacts.write" } }
return function(p, client)
  local id = client:get("/contacts/", { limit = 1 }).contacts[1].id
  local out = {}
  for _, t in ipairs {
    { "POST", "/contacts/", { body = { locationId = client.location, email = "req@hostile.example" } } },
    { "post", "/contacts/", { body = { locationId = client.location, email = "req2@hostile.example" } } },
    { "Put", "/contacts/" .. id, { body = { firstName = "X" } } },
    { "PATCH", "/contacts/" .. id, { body = { firstName = "X" } } },
    { "DELETE", "/contacts/" .. id },
    { "delete", "/contacts/" .. id },
    { "POST", "/contacts/", { read = true, body = { locationId = client.location, email = "read@hostile.example" } } },
    { "DELETE", "/contacts/" .. id, { read = true } },
    { "POST", "/contacts/" .. id .. "/tags", { body = { tags = { "x" } } } },
  } do
    local ok, e = pcall(function() return client:request(t[1], t[2], t[3]) end)
    out[#out + 1] = ok and "sent" or (type(e) == "table" and tostring(e.kind) or ("error: " .. tostring(e)))
  end
  return out
end
