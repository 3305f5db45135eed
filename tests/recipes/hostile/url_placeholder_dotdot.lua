-- Placeholder values and resource ids carrying dot segments and '@':
-- /contacts/{contactId} filled with "../users/" is a request to /users/.
recipe { name = "url_placeholder_dotdot", writes = false, scopes = { "contacts.readonly" },
         params = { port = { type = "integer", required = true } } }
return function(p, client)
  local out = {}
  for _, f in ipairs {
    function() return client:get("/contacts/{contactId}", { contactId = "../users/" }) end,
    function() return client:get("/contacts/{contactId}", { contactId = ".." }) end,
    function() return ghl.contacts.get(client, "../users/") end,
    function() return ghl.contacts.get(client, "..") end,
    function() return ghl.contacts.get(client, "@127.0.0.1:" .. p.port) end,
  } do
    out[#out + 1] = pcall(f) and "returned" or "raised"
  end
  return out
end
