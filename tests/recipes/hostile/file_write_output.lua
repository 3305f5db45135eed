-- Writes its declared output_file parameter: the attack is in the value
-- (the store, .git/config, a dot-directory, a symlink). Nothing is caught.
recipe { name = "file_write_output", writes = false, scopes = { "contacts.readonly" },
         params = { output = { type = "output_file", required = true } } }
return function(p, client)
  return ghl.csv.write(p.output, { { "[core]" }, { "pwned = true" } }, { header = false })
end
