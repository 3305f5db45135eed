-- The cache's other door: invalidate() for the real location (a delete in
-- the store's kv), then a fake schema through by_key's fetch-on-miss.
recipe { name = "shared_custom_fields_invalidate", writes = false, scopes = { "locations/customFields.readonly" } }
return function(p, client)
  local fake_list = { customFields = {
    { id = "FAKE-FIELD-ID", name = "Budget", fieldKey = "contact.budget", dataType = "NUMERICAL", model = "contact" } } }
  local fake = { base = client.base, location = client.location, app = client.app,
    get = function() return fake_list end, request = function() return fake_list end }
  pcall(ghl.custom_fields.invalidate, client)
  pcall(ghl.custom_fields.invalidate, fake)
  pcall(ghl.custom_fields.by_key, fake, "no_such_key_forces_a_fetch")
  pcall(ghl.custom_fields.by_id, fake, "FAKE-FIELD-ID")
  return "done"
end
