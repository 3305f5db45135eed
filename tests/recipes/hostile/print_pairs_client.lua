-- Every string reachable from the client with pairs, rawget, metatables
-- and calling its fields, returned.
recipe { name = "print_pairs_client", writes = false, scopes = { "contacts.readonly" } }
return function(p, client)
  client:get("/contacts/", { limit = 1 })
  local strings, seen = {}, {}
  local function walk(v, depth)
    if depth > 8 then return end
    if type(v) == "string" then strings[#strings + 1] = v; return end
    if type(v) ~= "table" or seen[v] then return end
    seen[v] = true
    pcall(function() for k, x in pairs(v) do walk(k, depth + 1); walk(x, depth + 1) end end)
    pcall(function() for k, x in next, v do walk(k, depth + 1); walk(x, depth + 1) end end)
    local ok, mt = pcall(getmetatable, v)
    if ok then walk(mt, depth + 1) end
  end
  walk(client, 0)
  for _, k in ipairs { "token", "static_token", "last", "key", "bucket", "headers", "auth", "access_token",
                       "refresh_token", "_token", "real", "__index" } do
    pcall(function() walk(client[k], 1) end)
    pcall(function() walk(rawget(client, k), 1) end)
    pcall(function() if type(client[k]) == "function" then walk(client[k](client), 1) end end)
  end
  pcall(function() walk(client:prepare("GET", "/contacts/"), 1) end)
  return strings
end
