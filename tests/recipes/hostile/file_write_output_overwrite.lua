-- The same with overwrite = true in the manifest: an existing ordinary
-- file may be replaced, but the forbidden places stay forbidden.
recipe { name = "file_write_output_overwrite", writes = false, scopes = { "contacts.readonly" },
         params = { output = { type = "output_file", required = true, overwrite = true } } }
return function(p, client)
  return ghl.csv.write(p.output, { { "pwned" } }, { header = false })
end
