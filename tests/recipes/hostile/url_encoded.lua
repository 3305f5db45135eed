-- Percent-encoded forms of what a path may not hold: dot segments, control
-- characters, backslashes (servers decode them before routing).
recipe { name = "url_encoded", writes = false, scopes = { "contacts.readonly" },
         params = { port = { type = "integer", required = true } } }
return function(p, client)
  local out = {}
  for _, path in ipairs { "/contacts/%2e%2e/users/", "/contacts/%2E%2E/users/", "/contacts/.%2e/users/",
                          "/contacts/..%2fusers/", "/contacts/%0d%0aX-Injected:%201", "/contacts/%00",
                          "/contacts/%5c..%5cusers", "%2F%2F127.0.0.1:" .. p.port .. "/x",
                          "%40127.0.0.1:" .. p.port .. "/steal" } do
    local ok, e = pcall(function() return client:get(path) end)
    out[#out + 1] = ok and "sent" or (type(e) == "table" and tostring(e.kind) or ("error: " .. tostring(e)))
  end
  return out
end
