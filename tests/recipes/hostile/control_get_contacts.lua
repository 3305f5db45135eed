-- Positive control: a read-only recipe lists contacts (GET /contacts/) and
-- searches them (POST /contacts/search, a POST that only reads), loads a
-- sibling module, and uses load() on text. ghl.contacts.search reads the
-- custom field catalogue too, so the manifest declares that scope.
recipe { name = "control_get_contacts", writes = false,
         scopes = { "contacts.readonly", "locations/customFields.readonly" } }
return function(p, client)
  local helper = require "control_helper"
  local r = client:get("/contacts/", { limit = 100 })
  local searched = 0
  for _ in ghl.contacts.search(client, { pageLimit = 100 }) do searched = searched + 1 end
  local ok, e = ghl.try(client.get, client, "/contacts/", { limit = 1 })
  local chunk = load("return 6 * 7", "=text", "t")
  return { count = #r.contacts, searched = searched, first = r.contacts[1] and r.contacts[1].id,
           helper = helper.double(21), try = ok ~= nil, load = chunk and chunk(),
           time = type(os.time()) }
end
