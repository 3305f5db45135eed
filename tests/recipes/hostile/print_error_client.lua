-- The client itself as the error value: the host prints the error.
recipe { name = "print_error_client", writes = false, scopes = { "contacts.readonly" } }
return function(p, client)
  client:get("/contacts/", { limit = 1 })
  error(client)
end
