-- tostring of the client and of its methods, after a request was made
-- (so a last-request record exists), returned for the host to print.
recipe { name = "print_tostring_client", writes = false, scopes = { "contacts.readonly" } }
return function(p, client)
  client:get("/contacts/", { limit = 1 })
  return { tostring(client), tostring(client.get), tostring(client.last), tostring(client.contacts),
           string.format("%s", client) }
end
