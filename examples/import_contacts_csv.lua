-- import_contacts_csv.lua: upsert contacts from a CSV file. Columns named
-- like contact fields (firstName, lastName, email, phone, companyName,
-- city, ..., dnd as true/false, tags as "a;b") go to those fields; every
-- other column is a custom field key (budget, lead_source, ...), its
-- cells typed by the field (numbers, "a;b" for multiple options). It takes
-- back what export_contacts_csv.lua writes: the columns HighLevel sets (id,
-- dateAdded, dateUpdated) are skipped, with a note. Upsert matches existing
-- contacts by email, then phone, so running it twice changes nothing new;
-- empty cells leave a field as it is. A malformed row stops the import
-- with its line number; an unknown column (no such custom field) stops it
-- before anything is written, with the location's real keys.
--
--   ghlua run examples/import_contacts_csv.lua --param file=contacts.csv
--   ghlua run examples/import_contacts_csv.lua --param file=contacts.csv --dry-run
--
-- The file must be under the working directory (the sandbox). --dry-run
-- looks every row's contact up (a read) and says how many it would create
-- and update, then shows every upsert it would send. tag= adds a tag to
-- every imported contact (to the row's tags, or through the tag endpoint,
-- so a contact's other tags stay).
recipe {
  name = "import_contacts_csv",
  description = "upsert contacts from a CSV; extra columns are custom field keys",
  scopes = { "contacts.readonly", "contacts.write", "locations/customFields.readonly" },
  writes = true,
  params = {
    file = { type = "input_file", required = true, help = "CSV file with a header row" },
    tag = { type = "string", help = "a tag to add to every imported contact" },
  },
}

local function at(line, err)
  if type(err) ~= "table" then err = { kind = "recipe", message = tostring(err) } end
  error(ghl.error.new { kind = err.kind, message = ("line %d: %s"):format(line, err.message), hint = err.hint }, 0)
end

return function(p, client)
  local rows, lines = {}, {}
  for row, line in ghl.csv.read(p.file) do
    rows[#rows + 1], lines[#rows + 1] = row, line
  end
  -- every column is checked before the first write: an unknown one raises
  -- here, naming the location's keys
  local columns = {}
  for col in pairs(rows[1] or {}) do columns[#columns + 1] = col end
  local skipped = ghl.contacts.import_columns(client, columns)
  if #skipped > 0 then
    print(("not imported: %s (set by HighLevel; contacts are matched by email, then phone)"):format(
      table.concat(skipped, ", ")))
  end
  local all = {}
  for i, row in ipairs(rows) do
    local ok, fields = pcall(ghl.contacts.from_row, client, row)
    if not ok then at(lines[i], fields) end
    all[i] = fields
  end
  local created, updated = 0, 0
  for i, fields in ipairs(all) do
    local tag_after = p.tag and not fields.tags
    if p.tag and fields.tags then fields.tags[#fields.tags + 1] = p.tag end
    local contact, new_or_err = ghl.try(ghl.contacts.upsert, client, fields)
    if not contact then at(lines[i], new_or_err) end
    if tag_after then ghl.contacts.add_tags(client, contact.id, { p.tag }) end
    if new_or_err then created = created + 1 else updated = updated + 1 end
  end
  if client.dry_run then
    print(("dry run: %d rows: would create %d, would update %d"):format(#rows, created, updated))
    return { rows = #rows, would_create = created, would_update = updated, dry_run = true }
  end
  print(("%d rows: %d created, %d updated"):format(#rows, created, updated))
  return { rows = #rows, created = created, updated = updated }
end
