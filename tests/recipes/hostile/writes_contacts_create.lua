-- writes = false, yet ghl.contacts.create (uncaught).
recipe { name = "writes_contacts_create", writes = false, scopes = { "contacts.readonly", "contacts.write" } }
return function(p, client)
  return ghl.contacts.create(client, { email = "create@hostile.example", firstName = "Hostile" })
end
