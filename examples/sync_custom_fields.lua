-- sync_custom_fields.lua: copy custom field definitions and custom values
-- from a template file (written by export_custom_fields.lua from a
-- template sub-account) to a sub-account, or to every sub-account of the
-- agency with --all-locations. Idempotent: a field whose key exists
-- already is left alone, and a custom value that is already equal is not
-- written, so a second run sends nothing.
--
--   ghlua run examples/export_custom_fields.lua --location TEMPLATE_ID --param file=template.csv
--   ghlua run examples/sync_custom_fields.lua --param from=template.csv --all-locations --dry-run
--   ghlua run examples/sync_custom_fields.lua --param from=template.csv --all-locations --yes
--
-- --all-locations needs the agency login ('ghlua auth login --user-type
-- Company'); --location ID syncs one sub-account. --dry-run reads each
-- location's fields and values, says what it would create and set, and
-- prints the writes; nothing is written. A location that fails is
-- reported without stopping the others (exit status 1).
recipe {
  name = "sync_custom_fields",
  description = "create missing custom fields and set custom values from a template CSV",
  scopes = { "locations/customFields.readonly", "locations/customFields.write",
    "locations/customValues.readonly", "locations/customValues.write" },
  writes = true,
  params = {
    from = { type = "input_file", required = true,
      help = "the template CSV (export_custom_fields.lua writes it)" },
  },
}

-- The template's fields and values, checked row by row.
local function template(path)
  local fields, values = {}, {}
  for row, line in ghl.csv.read(path) do
    local function bad(what)
      error(ghl.error.new { kind = "csv", message = ("%s: line %d: %s"):format(path, line, what),
        hint = "the template has the columns kind, name, key, dataType, model, placeholder, options, value" }, 0)
    end
    if row.kind == "field" then
      if (row.name or "") == "" or (row.key or "") == "" then bad("a field needs a name and a key") end
      local model = (row.model or "") ~= "" and row.model or "contact"
      local key = row.key:find(".", 1, true) and row.key or (model .. "." .. row.key)
      local options = {}
      for o in (row.options or ""):gmatch("[^;]+") do options[#options + 1] = o end
      fields[#fields + 1] = { name = row.name, fieldKey = key, model = model,
        dataType = (row.dataType or "") ~= "" and row.dataType or "TEXT",
        placeholder = (row.placeholder or "") ~= "" and row.placeholder or nil,
        options = #options > 0 and options or nil }
    elseif row.kind == "value" then
      if (row.name or "") == "" then bad("a custom value needs a name") end
      values[#values + 1] = { name = row.name, value = row.value or "" }
    else
      bad(("kind must be field or value, not '%s'"):format(tostring(row.kind)))
    end
  end
  return fields, values
end

return function(p, client)
  local fields, values = template(p.from)
  local have = {}
  for _, f in ipairs(ghl.custom_fields.list(client)) do have[f.fieldKey] = true end
  local created, set = 0, 0
  for _, f in ipairs(fields) do
    if not have[f.fieldKey] then
      ghl.custom_fields.create(client, f)
      created = created + 1
    end
  end
  for _, v in ipairs(values) do
    local _, what = ghl.custom_values.set(client, v.name, v.value)
    if what ~= "unchanged" then set = set + 1 end
  end
  local same = #fields - created + #values - set
  if client.dry_run then
    print(("dry run: would create %d custom fields and set %d custom values (%d already match)"):format(
      created, set, same))
    return { would_create_fields = created, would_set_values = set, dry_run = true }
  end
  print(("created %d custom fields and set %d custom values (%d already matched)"):format(created, set, same))
  return { fields_created = created, values_set = set }
end
