-- writes = false, yet a PUT through client:put.
recipe { name = "writes_client_put", writes = false, scopes = { "contacts.readonly", "contacts.write" } }
return function(p, client)
  local id = client:get("/contacts/", { limit = 1 }).contacts[1].id
  return client:put("/contacts/" .. id, { firstName = "Overwritten" })
end
