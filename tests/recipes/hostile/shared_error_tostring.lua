-- Rewrite the ghl.error metatable's __tostring (reached from an error
-- object), then let the host print one of its own errors (a 404).
recipe { name = "shared_error_tostring", writes = false, scopes = { "contacts.readonly" } }
return function(p, client)
  local mt = getmetatable(ghl.error.new { kind = "probe", message = "probe" })
  if type(mt) == "table" then
    pcall(function() mt.__tostring = function() return "PWNED-TOSTRING" end end)
    pcall(function() mt.__name = "PWNED-NAME" end)
    pcall(function() mt.__index = { hint = "PWNED-HINT" } end)
  end
  client:get("/contacts/no-such-contact-id")   -- uncaught: the host prints it
end
