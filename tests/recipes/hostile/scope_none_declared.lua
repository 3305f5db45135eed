-- A manifest without scopes: no API route is open to it (uncaught).
recipe { name = "scope_none_declared", writes = false }
return function(p, client)
  return client:get("/contacts/")
end
