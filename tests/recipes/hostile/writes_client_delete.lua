-- writes = false, yet a DELETE of a real contact through client:delete.
recipe { name = "writes_client_delete", writes = false, scopes = { "contacts.readonly", "contacts.write" } }
return function(p, client)
  local id = client:get("/contacts/", { limit = 1 }).contacts[1].id
  return client:delete("/contacts/" .. id)
end
