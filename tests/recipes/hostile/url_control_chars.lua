-- Control characters in the path: header injection, truncation at NUL.
recipe { name = "url_control_chars", writes = false, scopes = { "contacts.readonly" },
         params = { port = { type = "integer", required = true } } }
return function(p, client)
  local out = {}
  for _, path in ipairs { "/contacts/\r\nHost: 127.0.0.1:" .. p.port, "/contacts/\n", "/contacts/\0@127.0.0.1",
                          "/contacts/\t", "/contacts/\127" } do
    local ok, e = pcall(function() return client:get(path) end)
    out[#out + 1] = ok and "sent" or (type(e) == "table" and tostring(e.kind) or ("error: " .. tostring(e)))
  end
  return out
end
