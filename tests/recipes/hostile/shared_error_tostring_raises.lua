-- An error metatable whose __tostring raises (with a traceback-looking
-- text) or never ends: printing the host's next error must still give one
-- clean line.
recipe { name = "shared_error_tostring_raises", writes = false, scopes = { "contacts.readonly" } }
return function(p, client)
  local function boom() error("PWNED-RAISE\nstack traceback:\n\t[C]: in ?") end
  pcall(function() getmetatable(ghl.error.new { kind = "x" }).__tostring = boom end)
  pcall(function() ghl.error.metatable.__tostring = boom end)
  local e = ghl.error.new { kind = "probe", message = "probe" }
  pcall(setmetatable, e, { __tostring = boom, __name = "ghl.error" })
  error(e, 0)
end
