-- writes = false, yet POSTs and DELETEs in a client:batch, and a write in
-- a ghl.parallel function.
recipe { name = "writes_batch", writes = false, scopes = { "contacts.readonly", "contacts.write" } }
return function(p, client)
  local id = client:get("/contacts/", { limit = 1 }).contacts[1].id
  local reqs = {}
  for i = 1, 4 do
    reqs[#reqs + 1] = { "POST", "/contacts/", body = { locationId = client.location, email = i .. "@batch.example" } }
  end
  reqs[#reqs + 1] = { method = "DELETE", path = "/contacts/" .. id }
  local kinds = {}
  pcall(function()
    client:batch(reqs, { concurrency = 2, each = function(_, v)
      kinds[#kinds + 1] = type(v) == "table" and v.kind or "sent"
    end })
  end)
  pcall(function()
    ghl.parallel({ function() return client:post("/contacts/", { locationId = client.location, email = "par@x.example" }) end })
  end)
  return "done"
end
