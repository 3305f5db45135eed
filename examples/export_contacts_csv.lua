-- export_contacts_csv.lua: write every contact of the location to a CSV
-- file: id, the contact fields (firstName, lastName, email, phone,
-- companyName, address, ...), dateAdded, dateUpdated, tags ("a;b"), then
-- one column per custom field, named by its key (budget, lead_source, ...)
-- rather than its id. It is the file import_contacts_csv.lua takes back,
-- into the same location (updates) or another one (creates). Reads only.
--
--   ghlua run examples/export_contacts_csv.lua --param file=contacts.csv
--
-- The file is written under the working directory (the sandbox); one that
-- exists is replaced only with --force. Contacts are read with the search
-- endpoint, 100 at a time, deep pages included. With --dry-run it reads
-- everything and writes no file.
recipe {
  name = "export_contacts_csv",
  description = "export all contacts to CSV, custom fields as key columns",
  scopes = { "contacts.readonly", "locations/customFields.readonly" },
  writes = false,
  params = {
    file = { type = "output_file", default = "contacts.csv", help = "the CSV file to write" },
    query = { type = "string", help = "only contacts matching this search" },
  },
}

return function(p, client)
  local columns, custom = ghl.contacts.csv_columns(client)
  local rows = {}
  for contact in ghl.contacts.search(client, { query = p.query, pageLimit = 100 }) do
    rows[#rows + 1] = ghl.contacts.to_row(contact)
  end
  ghl.csv.write(p.file, rows, { columns = columns })
  if client.dry_run then
    print(("dry run: would write %d contacts to %s (%d custom field columns); no file written"):format(#rows,
      p.file, custom))
    return { would_write = #rows, file = p.file, dry_run = true }
  end
  print(("wrote %d contacts to %s (%d custom field columns)"):format(#rows, p.file, custom))
  return { contacts = #rows, file = p.file }
end
