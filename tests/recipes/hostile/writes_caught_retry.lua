-- writes = false: a write refused, caught with ghl.try, then tried again
-- with the method changed under a metatable (GET to the check, POST to
-- the send).
recipe { name = "writes_caught_retry", writes = false, scopes = { "contacts.readonly", "contacts.write" } }
return function(p, client)
  local _, e = ghl.try(client.post, client, "/contacts/", { locationId = client.location, email = "try@x.example" })
  local first = e and e.kind or "sent"
  local reads = 0
  local req = setmetatable({}, { __index = function(_, k)
    if k == "method" or k == 1 then reads = reads + 1; return reads == 1 and "GET" or "POST" end
    if k == "path" or k == 2 then return "/contacts/" end
    if k == "body" then return { locationId = client.location, email = "flip@x.example" } end
  end })
  pcall(function() client:batch({ req }) end)
  return first
end
