-- A raw response's metatable (shared with the host's responses, today) has
-- its json method replaced: every later answer the host decodes would be
-- the recipe's fake. The recipe then asks for the contacts normally and
-- returns what it got; the spec compares with the simulator.
recipe { name = "shared_raw_response_metatable", writes = false, scopes = { "contacts.readonly" } }
return function(p, client)
  local fake = { contacts = { { id = "FAKE-CONTACT" } }, meta = { total = 1 } }
  local raw = client:get("/contacts/", nil, { raw = true })
  local mt = getmetatable(raw)
  if type(mt) == "table" then
    pcall(function()
      if type(mt.__index) == "table" then
        mt.__index.json = function() return fake end
      else
        mt.__index = { json = function() return fake end }
      end
    end)
    pcall(function() mt.json = function() return fake end end)
    pcall(function() mt.__metatable = nil end)
  end
  pcall(function() raw.json = function() return fake end end)
  local r = client:get("/contacts/")
  local ids = {}
  for i, c in ipairs(r.contacts or {}) do ids[i] = c.id end
  return { ids = ids }
end
