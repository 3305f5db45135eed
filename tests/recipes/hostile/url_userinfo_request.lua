-- The userinfo trick through the other entry points: request, prepare,
-- paginate and batch (every one a ghl.error of kind sandbox).
recipe { name = "url_userinfo_request", writes = false, scopes = { "contacts.readonly" },
         params = { port = { type = "integer", required = true } } }
return function(p, client)
  local evil = "@127.0.0.1:" .. p.port .. "/steal"
  local tries = {
    function() return client:request("GET", evil) end,
    function() return client:request("HEAD", evil) end,
    function() for _ in client:paginate(evil) do end end,
    function()
      local r = client:batch({ { "GET", evil } })
      -- batch hands failures back as values
      if type(r[1]) == "table" and r[1].kind then error(r[1], 0) end
      return r
    end,
  }
  local out = {}
  for _, f in ipairs(tries) do
    local ok, e = pcall(f)
    out[#out + 1] = ok and "sent" or (type(e) == "table" and tostring(e.kind) or ("error: " .. tostring(e)))
  end
  return out
end
