-- create_contact_by_key.lua: create (or update) a contact and set its
-- custom fields by their keys, not their ids. HighLevel wants field ids,
-- which differ in every sub-account; ghl.contacts looks the keys up in the
-- location's custom field catalogue (cached in the token store) and
-- answers an unknown key with the list of the real ones.
--
--   ghlua run examples/create_contact_by_key.lua --param email=ada@example.com \
--     --param first_name=Ada --param fields=budget=5000,lead_source=ads
--
-- fields is a comma-separated list of key=value pairs. A contact that
-- exists already (same email or phone) is reported with its id, and
-- updated with --param update=true. With --dry-run it looks the contact
-- up (a read), says what it would do and shows the request it would send.
recipe {
  name = "create_contact_by_key",
  description = "create a contact with custom fields set by key",
  scopes = { "contacts.readonly", "contacts.write", "locations/customFields.readonly" },
  writes = true,
  params = {
    email = { type = "string", required = true, help = "the contact's email" },
    first_name = { type = "string", help = "first name" },
    last_name = { type = "string", help = "last name" },
    phone = { type = "string", help = "phone number" },
    fields = { type = "list", default = {}, help = "custom fields as key=value,key=value" },
    update = { type = "boolean", default = false, help = "update the contact when it exists" },
  },
}

return function(p, client)
  local custom = {}
  for _, kv in ipairs(p.fields) do
    local k, v = kv:match("^([^=]+)=(.*)$")
    if not k then error("fields takes key=value pairs, got " .. kv, 0) end
    custom[k] = tonumber(v) or v
  end
  local fields = { email = p.email, firstName = p.first_name, lastName = p.last_name, phone = p.phone,
                   customFields = custom }
  local dry = client.dry_run   -- writes are planned, not made: say "would"
  local contact, dup = ghl.contacts.create(client, fields)
  if dup then
    if not p.update then
      print(("contact %s already has this %s; pass --param update=true to update it"):format(dup.id, dup.field))
      return { id = dup.id, created = false }
    end
    fields.email = nil   -- unchanged; update takes no locationId either
    contact = ghl.contacts.update(client, dup.id, fields)
    print(("%s contact %s"):format(dry and "would update" or "updated", contact.id))
    if dry then return { id = contact.id, would_update = true, dry_run = true } end
    return { id = contact.id, created = false, updated = true }
  end
  print(dry and ("would create a contact for " .. p.email) or ("created contact " .. contact.id))
  for _, f in ipairs(contact.customFields or {}) do
    print(("  %-20s %s"):format(f.key or f.id, tostring(f.value)))
  end
  if dry then return { would_create = true, dry_run = true } end
  return { id = contact.id, created = true }
end
