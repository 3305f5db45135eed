-- Positive control: reads its declared input_file (and the old type
-- "file", an alias), writes its declared output_file, and parses and
-- encodes CSV text.
recipe { name = "control_files", writes = false, scopes = { "contacts.readonly" },
         params = { input = { type = "input_file", required = true }, old = { type = "file" },
                    output = { type = "output_file", required = true } } }
return function(p, client)
  local rows = {}
  for row in ghl.csv.read(p.input) do rows[#rows + 1] = { name = row.name:upper(), n = tonumber(row.n) * 2 } end
  if p.old then for row in ghl.csv.read(p.old) do rows[#rows + 1] = { name = row.name, n = tonumber(row.n) } end end
  local written = ghl.csv.write(p.output, rows, { columns = { "name", "n" } })
  local parsed = ghl.csv.parse("a,b\n1,2\n")
  local text_rows = 0
  for _ in ghl.csv.read("x,y\n3,4\n5,6\n") do text_rows = text_rows + 1 end
  return { written = written, parsed = parsed[1].b, text_rows = text_rows,
           encoded = ghl.csv.encode({ { a = "1" } }) }
end
