-- Backslashes, which some URL parsers read as slashes.
recipe { name = "url_backslash", writes = false, scopes = { "contacts.readonly" },
         params = { port = { type = "integer", required = true } } }
return function(p, client)
  local out = {}
  for _, path in ipairs { "/\\127.0.0.1:" .. p.port .. "/x", "\\\\127.0.0.1:" .. p.port .. "/x",
                          "/contacts\\..\\users\\", "/contacts/\\" } do
    local ok, e = pcall(function() return client:get(path) end)
    out[#out + 1] = ok and "sent" or (type(e) == "table" and tostring(e.kind) or ("error: " .. tostring(e)))
  end
  return out
end
