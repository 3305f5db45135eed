-- sync_custom_fields.lua: copy the custom field definitions and the custom
-- values of a template sub-account to the agency's other sub-accounts.
-- Idempotent: a field whose key exists already is left alone, and a
-- custom value that is already equal is not written, so a second run
-- sends nothing.
--
--   ghlua examples/sync_custom_fields.lua TEMPLATE_LOCATION_ID [--to ID,ID,...] [--dry-run]
--
-- Without --to it syncs every location where the app is installed (the
-- agency login, 'ghlua auth login --user-type Company'). --dry-run reads
-- everything and prints the writes it would make. Exit status 1 when a
-- location failed.
local ghl = require "ghl"

local template, targets, dry = nil, "all", false
local i = 1
while arg[i] do
  if arg[i] == "--dry-run" then dry = true
  elseif arg[i] == "--to" then
    targets, i = {}, i + 1
    for id in (arg[i] or ""):gmatch("[^,]+") do targets[#targets + 1] = id end
  else template = arg[i] end
  i = i + 1
end
if not template then
  io.stderr:write("usage: ghlua examples/sync_custom_fields.lua TEMPLATE_LOCATION_ID [--to ID,...] [--dry-run]\n")
  os.exit(2)
end

local src = ghl.client { location = template }
local fields = ghl.custom_fields.list(src)
local values = ghl.custom_values.list(src)
print(("template %s: %d custom fields, %d custom values"):format(template, #fields, #values))

local plan = dry and {} or nil
local report = ghl.each_location(function(client, loc)
  if loc.id == template then return { skipped = true } end
  local have, created, set = {}, 0, 0
  for _, f in ipairs(ghl.custom_fields.list(client)) do have[f.fieldKey] = true end
  for _, f in ipairs(fields) do
    if not have[f.fieldKey] then
      ghl.custom_fields.create(client, { name = f.name, dataType = f.dataType, model = f.model,
        fieldKey = f.fieldKey, placeholder = f.placeholder ~= "" and f.placeholder or nil,
        options = f.picklistOptions and #f.picklistOptions > 0 and f.picklistOptions or nil })
      created = created + 1
    end
  end
  for _, v in ipairs(values) do
    local _, what = ghl.custom_values.set(client, v.name, v.value)
    if what ~= "unchanged" then set = set + 1 end
  end
  return { fields_created = created, values_set = set }
end, { locations = targets, dry_run = plan })

for _, l in ipairs(require("ghl.fanout").summary(report)) do print(l) end
local fc, vs = 0, 0
for _, e in ipairs(report.locations) do
  if e.ok and e.result and not e.result.skipped then
    fc, vs = fc + (e.result.fields_created or 0), vs + (e.result.values_set or 0)
  end
end
print(("%s %d custom fields and %d custom values"):format(dry and "would create/set" or "created/set", fc, vs))
if plan then
  for _, l in ipairs(ghl.recipe.plan_lines(plan)) do print(l) end
end
if report.failed > 0 then os.exit(1) end
