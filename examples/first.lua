-- A first script: talk to the HighLevel API (here, the local simulator that
-- `ghlua sim` runs) with nothing but ghl.http.
--   ghlua sim --ready-file /tmp/sim.json &
--   ghlua examples/first.lua /tmp/sim.json
local ghl = require "ghl"
local cjson = require "cjson"

local ready = assert(io.open(arg[1] or "/tmp/sim.json")):read("a")
local sim = cjson.decode(ready)

local function api(method, path, opts)
  opts = opts or {}
  local resp = assert(ghl.http.request {
    method = method,
    url = sim.url .. path,
    query = opts.query,
    json = opts.json,
    headers = {
      Authorization = "Bearer " .. sim.token,
      Version = "2021-07-28",
      Accept = "application/json",
    },
  })
  local body = assert(resp:json())
  if resp.status >= 400 then
    error(ghl.error.new { kind = "http", status = resp.status, message = tostring(body.message) })
  end
  return body
end

-- Which custom fields does this sub-account have?
local fields = api("GET", "/locations/" .. sim.locationId .. "/customFields").customFields
print(("%d custom fields:"):format(#fields))
for _, f in ipairs(fields) do print(("  %-24s %s"):format(f.fieldKey, f.dataType)) end

-- Create a contact, setting a custom field by its key.
local created = api("POST", "/contacts/", { json = {
  locationId = sim.locationId, firstName = "Ada", lastName = "Lovelace",
  email = "ada@example.com", tags = { "demo" },
  customFields = { { key = "budget", field_value = 5000 } },
} }).contact
print(("created contact %s (%s %s)"):format(created.id, created.firstName, created.lastName))

-- Search the location, one page at a time.
local page = api("POST", "/contacts/search", { json = {
  locationId = sim.locationId, page = 1, pageLimit = 10,
} })
print(("search: %d contacts in the location, first page has %d"):format(page.total, #page.contacts))
