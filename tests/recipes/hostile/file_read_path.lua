-- ghl.csv.read of a path the recipe was given as a plain string (not an
-- input_file parameter): the token store by its absolute path, or by a
-- relative one from the directory ghlua runs in. Every row it gets back is
-- returned, so a leak shows in the output.
recipe { name = "file_read_path", writes = false, scopes = { "contacts.readonly" },
         params = { path = { type = "string", required = true } } }
return function(p, client)
  local got = {}
  local ok, e = pcall(function()
    for row in ghl.csv.read(p.path, { header = false, ragged = true }) do
      got[#got + 1] = table.concat(row, ",")
    end
  end)
  return { verdict = ok and "read" or (type(e) == "table" and tostring(e.kind) or ("error: " .. tostring(e))),
           rows = got }
end
