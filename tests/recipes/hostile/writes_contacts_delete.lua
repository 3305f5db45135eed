-- writes = false, yet ghl.contacts.delete of a contact found by a search
-- (the search itself, a POST that only reads, is allowed).
recipe { name = "writes_contacts_delete", writes = false, scopes = { "contacts.readonly", "contacts.write" } }
return function(p, client)
  local first
  for c in ghl.contacts.search(client, { pageLimit = 1 }, { max = 1 }) do first = c end
  return ghl.contacts.delete(client, first.id)
end
