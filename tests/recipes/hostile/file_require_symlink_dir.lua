-- require of a module in a sibling directory that is a symlink to a
-- directory outside the recipe's own (the spec makes lib -> ../outside).
recipe { name = "file_require_symlink_dir", writes = false, scopes = { "contacts.readonly" } }
return function(p, client)
  local ok, v = pcall(require, "lib.evil")
  if ok then return "loaded " .. tostring(v) end
  return type(v) == "table" and tostring(v.kind) or ("error: " .. tostring(v))
end
