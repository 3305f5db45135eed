-- ghl.sim.users: the read side of the Users API family (Version 2021-07-28,
-- scope users.readonly):
--   GET /users/?locationId=   Location tokens -> {users: [...]}: the
--       location's own two users (an admin and a user, made on the
--       location's first use) and the agency admin
--   GET /users/{userId}       Location or Company token -> the user
--       (top-level, as in the spec); a Location token sees only the users
--       of its location
-- The agency admin is the user who installs apps (the userId of OAuth
-- tokens, state.user_id); its roles.locationIds are all of the company's
-- locations. Handlers raise through reply.raise: 422 for a missing
-- locationId, 400 for an unknown user, 403 for a user of another location.
local reply = require "ghl.sim.reply"

local M = {}

local array = reply.array

local FIRST = { "Grace", "Alan", "Ada", "Linus", "Barbara", "Dennis", "Margaret", "Ken", "Frances", "Edsger" }
local LAST = { "Hopper", "Turing", "Lovelace", "Torvalds", "Liskov", "Ritchie", "Hamilton", "Thompson", "Allen",
  "Dijkstra" }

local PERMISSIONS = { "campaignsEnabled", "contactsEnabled", "workflowsEnabled", "opportunitiesEnabled",
  "appointmentsEnabled", "conversationsEnabled", "settingsEnabled", "tagsEnabled", "marketingEnabled" }

-- ---- The store ----

local function init(state, loc, store, rng)
  store.list = {}
  local index = state:records("users")
  for i, role in ipairs { "admin", "user" } do
    local first, last = rng:pick(FIRST), rng:pick(LAST)
    local u = { id = rng:id(20), firstName = first, lastName = last, type = "account", role = role,
      email = string.format("%s.%s.%d@%s.example.com", first, last, i, loc.id):lower(),
      phone = string.format("+1555%07d", rng:int(9999999)), locations = { loc.id } }
    store.list[#store.list + 1] = u
    index[u.id] = u
  end
end

-- The agency admin (state.user_id), made on first use.
local function agency_admin(state)
  local index = state:records("users")
  local u = index[state.user_id]
  if not u then
    u = { id = state.user_id, firstName = "Sim", lastName = "Agency Admin", type = "agency", role = "admin",
      email = "admin@sim-agency.example.com", phone = "+15550000001" }
    index[u.id] = u
  end
  return u
end

-- The location ids a user may act on.
local function locations_of(state, u)
  if u.type ~= "agency" then return u.locations end
  local out = {}
  for _, loc in ipairs(state:company_locations()) do out[#out + 1] = loc.id end
  return out
end

local function present(state, u)
  local perms = {}
  for _, p in ipairs(PERMISSIONS) do perms[p] = true end
  return {
    id = u.id, name = u.firstName .. " " .. u.lastName, firstName = u.firstName, lastName = u.lastName,
    email = u.email, phone = u.phone, extension = "", permissions = perms, deleted = false,
    roles = { type = u.type, role = u.role, locationIds = array(locations_of(state, u)),
      restrictSubAccount = false },
  }
end

-- ---- Handlers ----

local function list(ctx)
  local q, state = ctx.query, ctx.state
  if q.locationId == nil or q.locationId == "" then
    reply.invalid { "locationId should not be empty", "locationId must be a string" }
  end
  local out = array { present(state, agency_admin(state)) }
  for _, u in ipairs(state:store(q.locationId, "users", init).list) do out[#out + 1] = present(state, u) end
  return 200, { users = out }
end

local function get(ctx)
  local state, tok = ctx.state, ctx.token
  agency_admin(state)
  if tok.kind == "location" then state:store(tok.location, "users", init) end
  local u = state:records("users")[ctx.params.userId]
  if not u then reply.raise(400, "User not found") end
  if tok.kind == "location" then
    local ok = false
    for _, id in ipairs(locations_of(state, u)) do
      if id == tok.location then ok = true end
    end
    if not ok then reply.raise(403, "The token does not have access to this location.") end
  end
  return 200, present(state, u)
end

-- ---- Routes ----

M.routes = {
  { method = "GET", path = "/users/:userId", handler = get, scope = "users.readonly",
    classes = { location = true, company = true } },
  { method = "GET", path = "/users", handler = list, scope = "users.readonly" },
}
for _, r in ipairs(M.routes) do r.family = "users" end

return M
