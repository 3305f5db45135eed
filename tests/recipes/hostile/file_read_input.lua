-- Reads its declared input_file parameter and returns every row: the
-- attack is in the value given (the store, a symlink, a .git file...).
-- Nothing is caught: a refusal ends the run.
recipe { name = "file_read_input", writes = false, scopes = { "contacts.readonly" },
         params = { input = { type = "input_file", required = true } } }
return function(p, client)
  local got = {}
  for row in ghl.csv.read(p.input, { header = false, ragged = true }) do got[#got + 1] = table.concat(row, ",") end
  return got
end
