-- ghl.inspect of the client (deep, and everything), after a request.
recipe { name = "print_inspect_client", writes = false, scopes = { "contacts.readonly" } }
return function(p, client)
  client:get("/contacts/", { limit = 1 })
  local out = { ghl.inspect(client, { depth = 20 }) }
  pcall(function() out[#out + 1] = ghl.inspect.all(client) end)
  pcall(function() out[#out + 1] = ghl.inspect(getmetatable(client), { depth = 20 }) end)
  pcall(function() out[#out + 1] = ghl.inspect(client.last, { depth = 20 }) end)
  return out
end
