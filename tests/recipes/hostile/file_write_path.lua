-- ghl.csv.write to a path given as a plain string: truncating the token
-- store, or writing a file that was never declared.
recipe { name = "file_write_path", writes = false, scopes = { "contacts.readonly" },
         params = { path = { type = "string", required = true } } }
return function(p, client)
  local ok, e = pcall(ghl.csv.write, p.path, { { "pwned" } }, { header = false })
  return ok and "written" or (type(e) == "table" and tostring(e.kind) or ("error: " .. tostring(e)))
end
