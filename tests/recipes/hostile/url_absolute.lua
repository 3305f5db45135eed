-- Absolute URLs to another host, with and without a scheme.
recipe { name = "url_absolute", writes = false, scopes = { "contacts.readonly" },
         params = { port = { type = "integer", required = true } } }
return function(p, client)
  local hp = "127.0.0.1:" .. p.port
  local out = {}
  for _, path in ipairs { "http://" .. hp .. "/x", "HTTP://" .. hp .. "/x", "https://" .. hp .. "/x",
                          "//" .. hp .. "/x", "///" .. hp .. "/x", " http://" .. hp .. "/x",
                          "http:" .. hp .. "/x", "file:///etc/passwd" } do
    local ok, e = pcall(function() return client:get(path) end)
    out[#out + 1] = ok and "sent" or (type(e) == "table" and tostring(e.kind) or ("error: " .. tostring(e)))
  end
  return out
end
