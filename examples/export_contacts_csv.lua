-- export_contacts_csv.lua: write every contact of the location to a CSV
-- file, one column per standard field and one per custom field, named by
-- its key (budget, lead_source, ...) rather than its id: the columns an
-- import_contacts_csv.lua run takes back. Reads only.
--
--   ghlua run examples/export_contacts_csv.lua --param file=contacts.csv
--
-- The file is written under the working directory (the sandbox). Contacts
-- are read with the search endpoint, 100 at a time, deep pages included.
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

local STANDARD = { "id", "firstName", "lastName", "email", "phone", "companyName", "city", "country",
  "source", "dateAdded" }

return function(p, client)
  local keys = {}
  for _, f in ipairs(ghl.custom_fields.list(client, { model = "contact" })) do keys[#keys + 1] = f.key end
  table.sort(keys)
  local columns = {}
  for _, c in ipairs(STANDARD) do columns[#columns + 1] = c end
  columns[#columns + 1] = "tags"
  for _, k in ipairs(keys) do columns[#columns + 1] = k end

  local rows = {}
  for contact in ghl.contacts.search(client, { query = p.query, pageLimit = 100 }) do
    local row = {}
    for _, c in ipairs(STANDARD) do row[c] = contact[c] end
    row.tags = table.concat(contact.tags or {}, ";")
    for k, v in pairs(ghl.contacts.values(contact)) do row[k] = v end
    rows[#rows + 1] = row
  end
  ghl.csv.write(p.file, rows, { columns = columns })
  print(("wrote %d contacts to %s (%d custom field columns)"):format(#rows, p.file, #keys))
  return { contacts = #rows, file = p.file }
end
