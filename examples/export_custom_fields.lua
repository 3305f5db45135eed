-- export_custom_fields.lua: write a location's custom field definitions
-- and custom values to a CSV file, the template sync_custom_fields.lua
-- copies to other sub-accounts. One row per field (kind "field": name, key,
-- dataType, model, placeholder, options as "a;b") and one per custom value
-- (kind "value": name, value). Reads only; the file can be edited before
-- it is synced.
--
--   ghlua run examples/export_custom_fields.lua --location TEMPLATE_ID --param file=template.csv
--
-- The file is written under the working directory (the sandbox); one that
-- exists is replaced only with --force.
recipe {
  name = "export_custom_fields",
  description = "write a location's custom fields and custom values to a CSV template",
  scopes = { "locations/customFields.readonly", "locations/customValues.readonly" },
  writes = false,
  params = {
    file = { type = "output_file", default = "custom_fields.csv", help = "the CSV file to write" },
  },
}

local COLUMNS = { "kind", "name", "key", "dataType", "model", "placeholder", "options", "value" }

return function(p, client)
  local rows, nfields = {}, 0
  for _, f in ipairs(ghl.custom_fields.list(client)) do
    local options = {}
    for i, o in ipairs(type(f.picklistOptions) == "table" and f.picklistOptions or {}) do options[i] = tostring(o) end
    rows[#rows + 1] = { kind = "field", name = f.name, key = f.fieldKey, dataType = f.dataType, model = f.model,
      placeholder = f.placeholder, options = table.concat(options, ";") }
    nfields = nfields + 1
  end
  for _, v in ipairs(ghl.custom_values.list(client)) do
    rows[#rows + 1] = { kind = "value", name = v.name, value = v.value }
  end
  ghl.csv.write(p.file, rows, { columns = COLUMNS })
  print(("%s %d custom fields and %d custom values to %s"):format(client.dry_run and "dry run: would write" or "wrote",
    nfields, #rows - nfields, p.file))
  return { fields = nfields, values = #rows - nfields, file = p.file, dry_run = client.dry_run or nil }
end
