-- Dot segments: a path the host checks as one route and the server sees
-- as another.
recipe { name = "url_dotdot", writes = false, scopes = { "contacts.readonly" } }
return function(p, client)
  local out = {}
  for _, path in ipairs { "/contacts/../users/", "/../contacts/", "/contacts/..", "/contacts/./../users/",
                          "/contacts/x/../../users/" } do
    local ok, e = pcall(function() return client:get(path) end)
    out[#out + 1] = ok and "sent" or (type(e) == "table" and tostring(e.kind) or ("error: " .. tostring(e)))
  end
  return out
end
