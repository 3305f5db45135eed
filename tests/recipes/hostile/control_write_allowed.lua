-- Positive control for the write check: writes = true and contacts.write
-- declared, run with --yes: the POST goes through.
recipe { name = "control_write_allowed", writes = true, scopes = { "contacts.readonly", "contacts.write" } }
return function(p, client)
  local c = ghl.contacts.create(client, { email = "allowed@control.example", firstName = "Control" })
  return c and c.id and "created" or "not created"
end
