-- A first script: with a token stored by `ghlua auth login`, list the
-- location's custom fields, create a contact with a custom field set by its
-- key, and search the location. ghl.client picks the Version header, adds
-- the bearer token (refreshed when it expires) and respects rate limits.
-- README.md's "A first session" runs it against the simulator (so does
-- `make demo`): `eval "$(ghlua sim env)"` points the client at it.
local ghl = require "ghl"

local c = ghl.client {}          -- the only stored token's location

-- Which custom fields does this sub-account have?
local fields = c:get("/locations/{locationId}/customFields").customFields
print(("%d custom fields:"):format(#fields))
for _, f in ipairs(fields) do print(("  %-24s %s"):format(f.fieldKey, f.dataType)) end

-- Create a contact, setting a custom field by its key.
local created = c:post("/contacts/", {
  locationId = c.location, firstName = "Ada", lastName = "Lovelace",
  email = "ada@example.com", tags = { "demo" },
  customFields = { { key = "budget", field_value = 5000 } },
}).contact
print(("created contact %s (%s %s)"):format(created.id, created.firstName, created.lastName))

-- Search the location, one page at a time, and count every contact.
local n = 0
for _ in c:paginate("/contacts/search", { pageLimit = 10 }, { style = "page" }) do n = n + 1 end
print(("search: %d contacts in the location"):format(n))
