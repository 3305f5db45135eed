-- writes = false, yet a POST through client:post (uncaught).
recipe { name = "writes_client_post", writes = false, scopes = { "contacts.readonly", "contacts.write" } }
return function(p, client)
  return client:post("/contacts/", { locationId = client.location, email = "post@hostile.example" })
end
