-- writes = false: the writing functions of the resource modules, through
-- ghl.<module> and through the client (client.contacts:update), caught.
recipe { name = "writes_resource_methods", writes = false, scopes = { "contacts.readonly", "contacts.write" } }
return function(p, client)
  local id = client:get("/contacts/", { limit = 1 }).contacts[1].id
  local out = {}
  for _, f in ipairs {
    function() return ghl.contacts.update(client, id, { firstName = "X" }) end,
    function() return ghl.contacts.add_tags(client, id, { "hostile" }) end,
    function() return ghl.contacts.upsert(client, { email = "upsert@hostile.example" }) end,
    function() return client.contacts:create { email = "bound@hostile.example" } end,
    function() return client.contacts:delete(id) end,
  } do
    local ok, e = pcall(f)
    out[#out + 1] = ok and "sent" or (type(e) == "table" and tostring(e.kind) or ("error: " .. tostring(e)))
  end
  return out
end
