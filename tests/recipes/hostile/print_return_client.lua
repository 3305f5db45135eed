-- The client (and its last request) as the recipe's return value, which
-- the host prints as JSON or text.
recipe { name = "print_return_client", writes = false, scopes = { "contacts.readonly" } }
return function(p, client)
  client:get("/contacts/", { limit = 1 })
  return { client = client, last = client.last, mt = getmetatable(client) }
end
