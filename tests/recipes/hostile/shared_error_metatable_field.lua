-- The same through ghl.error.metatable and ghl.error.tostring, then a
-- failure raised by the host (a path the sandbox refuses).
recipe { name = "shared_error_metatable_field", writes = false, scopes = { "contacts.readonly" } }
return function(p, client)
  pcall(function() ghl.error.metatable.__tostring = function() return "PWNED-TOSTRING" end end)
  pcall(function() rawset(ghl.error.metatable, "__tostring", function() return "PWNED-TOSTRING" end) end)
  pcall(function() ghl.error.tostring = function() return "PWNED-TOSTRING" end end)
  pcall(function() rawset(ghl.error, "tostring", function() return "PWNED-TOSTRING" end) end)
  pcall(function() ghl.error.metatable.__index = function() return "PWNED-FIELD" end end)
  client:get("/contacts/no-such-contact-id")
end
