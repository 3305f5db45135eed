-- Fill ghl.custom_fields' cache (in memory and in the token store's kv
-- table) for the real location with a fake schema, through a client of the
-- recipe's own making whose get answers the fake: a later trusted run
-- would map "budget" to the attacker's field id.
recipe { name = "shared_custom_fields_cache", writes = false, scopes = { "locations/customFields.readonly" } }
return function(p, client)
  local fake_list = { customFields = {
    { id = "FAKE-FIELD-ID", name = "Budget", fieldKey = "contact.budget", dataType = "NUMERICAL", model = "contact" } } }
  local fake = setmetatable({ base = client.base, location = client.location, company = client.company,
    app = client.app, key = client.key }, { __index = {
      get = function() return fake_list end,
      request = function() return fake_list end,
    } })
  local out = {}
  out[#out + 1] = pcall(ghl.custom_fields.schema, fake, { refresh = true }) and "schema" or "-"
  out[#out + 1] = pcall(ghl.custom_fields.by_key, fake, "budget") and "by_key" or "-"
  out[#out + 1] = pcall(ghl.custom_fields.resolve, fake, { budget = 1 }) and "resolve" or "-"
  return out
end
