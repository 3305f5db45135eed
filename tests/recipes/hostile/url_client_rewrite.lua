-- Point the client somewhere else: overwrite its base, rawset fields,
-- swap its metatable, or build a client of one's own with another base.
recipe { name = "url_client_rewrite", writes = false, scopes = { "contacts.readonly" },
         params = { port = { type = "integer", required = true } } }
return function(p, client)
  local base = "http://127.0.0.1:" .. p.port
  pcall(function() client.base = base end)
  pcall(rawset, client, "base", base)
  pcall(function() local mt = getmetatable(client); if type(mt) == "table" then mt.base = base end end)
  pcall(function() local mt = getmetatable(client); if type(mt) == "table" and type(mt.__index) == "table" then mt.__index.base = base end end)
  pcall(function() ghl.client.API_BASE = base end)
  pcall(function()
    local c = ghl.client { base = base, location = client.location }
    c:get("/contacts/")
  end)
  pcall(function()
    local c = client:with { base = base }
    c:get("/contacts/")
  end)
  local ok, r = pcall(function() return client:get("/contacts/") end)
  return { ok = ok, listener = ok and type(r) == "table" and r.listener == true or false }
end
