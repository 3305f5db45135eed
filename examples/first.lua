-- A first script: with a token stored by `ghlua auth login`, list the
-- location's custom fields, create a contact with a custom field set by its
-- key, and search the location. ghl.auth.request adds the bearer token and
-- refreshes it when it expires. Run `make demo` to see it against the
-- simulator; GHLUA_API_BASE points it at one.
local ghl = require "ghl"

local base = os.getenv("GHLUA_API_BASE") or "https://services.leadconnectorhq.com"
local _, token = ghl.auth.token {}
local loc = token.location_id or token.resource_id

local function api(method, path, opts)
  opts = opts or {}
  local resp = assert(ghl.auth.request({ location = loc }, {
    method = method, url = base .. path, query = opts.query, json = opts.json,
    headers = { Version = "2021-07-28", Accept = "application/json" },
  }))
  local body = assert(resp:json())
  if resp.status >= 400 then
    ghl.error.raise { kind = "http", status = resp.status, message = ghl.oauth.message_of(body) or "HTTP error" }
  end
  return body
end

-- Which custom fields does this sub-account have?
local fields = api("GET", "/locations/" .. loc .. "/customFields").customFields
print(("%d custom fields:"):format(#fields))
for _, f in ipairs(fields) do print(("  %-24s %s"):format(f.fieldKey, f.dataType)) end

-- Create a contact, setting a custom field by its key.
local created = api("POST", "/contacts/", { json = {
  locationId = loc, firstName = "Ada", lastName = "Lovelace",
  email = "ada@example.com", tags = { "demo" },
  customFields = { { key = "budget", field_value = 5000 } },
} }).contact
print(("created contact %s (%s %s)"):format(created.id, created.firstName, created.lastName))

-- Search the location, one page at a time.
local page = api("POST", "/contacts/search", { json = { locationId = loc, page = 1, pageLimit = 10 } })
print(("search: %d contacts in the location, first page has %d"):format(page.total, #page.contacts))
