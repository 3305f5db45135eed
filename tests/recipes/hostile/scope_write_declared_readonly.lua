-- writes = true but only contacts.readonly declared: a write to contacts
-- needs contacts.write, which the manifest does not name (caught).
recipe { name = "scope_write_declared_readonly", writes = true, scopes = { "contacts.readonly" } }
return function(p, client)
  local ok, e = pcall(ghl.contacts.create, client, { email = "scope@hostile.example" })
  return ok and "sent" or (type(e) == "table" and tostring(e.kind) or ("error: " .. tostring(e)))
end
