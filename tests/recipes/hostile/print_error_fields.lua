-- The errors the host hands back (an HTTP 404, a refused path) with every
-- field they carry: none may hold the Authorization header or the token.
recipe { name = "print_error_fields", writes = false, scopes = { "contacts.readonly" } }
return function(p, client)
  local out = {}
  for _, f in ipairs {
    function() return client:get("/contacts/no-such-contact") end,
    function() return client:get("/contacts/", nil, { raw = true, headers = { Authorization = "x" } }) end,
    function() return client:get("//example.invalid/x") end,
  } do
    local ok, e = pcall(f)
    out[#out + 1] = ghl.inspect(e, { depth = 20 })
    if type(e) == "table" then
      for k, v in pairs(e) do out[#out + 1] = tostring(k) .. "=" .. tostring(v) end
    end
    out[#out + 1] = tostring(e)
  end
  return out
end
