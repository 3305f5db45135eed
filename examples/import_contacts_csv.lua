-- import_contacts_csv.lua: upsert contacts from a CSV file. Columns named
-- like contact fields (firstName, lastName, email, phone, companyName,
-- city, ..., tags as "a;b") go to those fields; every other column is a
-- custom field key (budget, lead_source, ...). Upsert matches existing
-- contacts by email, then phone, so running it twice changes nothing new.
-- A malformed row stops the import with its line number; an unknown
-- column (no such custom field) stops it before anything is written, with
-- the location's real keys.
--
--   ghlua run examples/import_contacts_csv.lua --param file=contacts.csv
--
-- The file must be under the working directory (the sandbox). --dry-run
-- shows every upsert it would send.
recipe {
  name = "import_contacts_csv",
  description = "upsert contacts from a CSV; extra columns are custom field keys",
  scopes = { "contacts.write", "locations/customFields.readonly" },
  writes = true,
  params = {
    file = { type = "input_file", required = true, help = "CSV file with a header row" },
    tag = { type = "string", help = "a tag to add to every imported contact" },
  },
}

local STANDARD = { firstName = true, lastName = true, name = true, email = true, phone = true,
  companyName = true, address1 = true, city = true, state = true, postalCode = true, country = true,
  website = true, timezone = true, source = true, dateOfBirth = true }

return function(p, client)
  local rows = {}
  for row, line in ghl.csv.read(p.file) do
    row._line = line
    rows[#rows + 1] = row
  end
  -- resolve every custom field column before the first write: an unknown
  -- one raises here, naming the location's keys
  local custom_columns = {}
  for col in pairs(rows[1] or {}) do
    if col ~= "_line" and col ~= "tags" and not STANDARD[col] then custom_columns[col] = "" end
  end
  ghl.custom_fields.resolve(client, custom_columns)
  local created, updated = 0, 0
  for _, row in ipairs(rows) do
    local fields, custom = {}, {}
    for col, v in pairs(row) do
      if v ~= "" and col ~= "_line" then
        if STANDARD[col] then fields[col] = v
        elseif col == "tags" then
          fields.tags = {}
          for t in v:gmatch("[^;]+") do fields.tags[#fields.tags + 1] = t end
        else custom[col] = tonumber(v) or v end
      end
    end
    if p.tag then
      fields.tags = fields.tags or {}
      fields.tags[#fields.tags + 1] = p.tag
    end
    fields.customFields = custom
    local contact, new_or_err = ghl.try(ghl.contacts.upsert, client, fields)
    if not contact then
      local err = new_or_err
      error(ghl.error.new { kind = err.kind, message = ("line %d: %s"):format(row._line, err.message),
                            hint = err.hint }, 0)
    end
    if new_or_err then created = created + 1 else updated = updated + 1 end
  end
  print(("%d rows: %d created, %d updated"):format(#rows, created, updated))
  return { rows = #rows, created = created, updated = updated }
end
