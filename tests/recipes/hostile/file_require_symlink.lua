-- require of a sibling that is a symlink pointing outside the recipe's
-- directory (the spec puts file_require_symlink_helper.lua -> ../outside/...).
recipe { name = "file_require_symlink", writes = false, scopes = { "contacts.readonly" } }
return function(p, client)
  local ok, v = pcall(require, "file_require_symlink_helper")
  if ok then return "loaded " .. tostring(v) end
  return type(v) == "table" and tostring(v.kind) or ("error: " .. tostring(v))
end
