-- A declared output_file is granted, but the recipe writes next to it,
-- above it with '..', or to another name, instead (each caught).
recipe { name = "file_write_other_than_declared", writes = false, scopes = { "contacts.readonly" },
         params = { output = { type = "output_file", required = true } } }
return function(p, client)
  local out = {}
  for _, path in ipairs { p.output .. ".bak", "../" .. p.output, (p.output:gsub("[^/]+$", "other.csv")) } do
    local ok, e = pcall(ghl.csv.write, path, { { "pwned" } }, { header = false })
    out[#out + 1] = ok and "written" or (type(e) == "table" and tostring(e.kind) or ("error: " .. tostring(e)))
  end
  return out
end
