-- The modules that hold the tokens and the native code: each require must
-- be refused with a ghl.error of kind sandbox.
recipe { name = "shared_require_internals", writes = false, scopes = { "contacts.readonly" } }
return function(p, client)
  local out = {}
  for _, name in ipairs { "ghl.auth", "ghl.http", "ghl.store", "ghl.sys", "ghl._csv", "ghl.client",
                          "ghl.loop", "ghl.server", "ghl.oauth", "ghl.fanout", "ghl.cli.run", "ghl.sandbox",
                          "ghl._sandbox", "cjson", "io", "os", "debug", "package" } do
    local ok, e = pcall(require, name)
    -- a harmless stand-in is fine only when it is not the real thing; the
    -- spec asks for a refusal
    out[name] = ok and ("loaded " .. type(e)) or (type(e) == "table" and tostring(e.kind) or ("error: " .. tostring(e)))
  end
  return out
end
