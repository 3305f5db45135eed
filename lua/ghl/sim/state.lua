-- ghl.sim.state: everything the simulator remembers, kept apart from the
-- routes so new route families add data here without touching the router.
-- Holds the clocks and random sources (injectable, so specs can drive
-- time), the company (agency) and its locations with their contacts,
-- custom fields and custom values, the per-location records of the other
-- route families (State:store: opportunities, calendars, conversations,
-- users, tags), the OAuth apps, installs (on the company and per
-- location, HighLevel's agency model: see State:install), authorization
-- codes and refresh tokens, the access-token registry (static tokens, PITs
-- and OAuth tokens), the held token-endpoint effects, and the request
-- statistics served at /__sim/stats. Nothing here raises on bad input from
-- clients; callers validate first.
local M = {}
local State = {}
State.__index = State

-- ---- Deterministic random numbers (splitmix64; integer maths wraps) ----

local Rng = {}
Rng.__index = Rng

function M.rng(seed)
  return setmetatable({ s = math.tointeger(seed) or 0 }, Rng)
end

function Rng:next()
  self.s = self.s + 0x9E3779B97F4A7C15
  local z = self.s
  z = (z ~ (z >> 30)) * 0xBF58476D1CE4E5B9
  z = (z ~ (z >> 27)) * 0x94D049BB133111EB
  return z ~ (z >> 31)
end

-- Integer in 1..n.
function Rng:int(n)
  return (self:next() >> 1) % n + 1
end

function Rng:pick(list)
  return list[self:int(#list)]
end

local ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

-- A HighLevel-looking id: 20 alphanumeric characters.
function Rng:id(len)
  local t = {}
  for i = 1, len or 20 do
    local k = self:int(#ALNUM)
    t[i] = ALNUM:sub(k, k)
  end
  return table.concat(t)
end

-- uuid-v4-looking string, for traceId (from State.trace_rng, seeded per
-- run: see M.entropy).
function Rng:uuid()
  local h = {}
  for i = 1, 4 do h[i] = string.format("%08x", self:next() & 0xffffffff) end
  local s = table.concat(h)
  return string.format("%s-%s-4%s-%x%s-%s", s:sub(1, 8), s:sub(9, 12), s:sub(14, 16),
    8 + (tonumber(s:sub(17, 17), 16) & 3), s:sub(18, 20), s:sub(21, 32))
end

-- A seed that differs from run to run: 8 bytes of random_bytes(n) when it
-- gives them, else the clocks and an address mixed.
function M.entropy(random_bytes)
  local b = random_bytes and random_bytes(8)
  if type(b) == "string" and #b == 8 then return (string.unpack("<i8", b)) end
  local addr = tonumber(tostring({}):match("0x(%x+)") or "0", 16) or 0
  return math.floor(os.time()) ~ (math.floor(os.clock() * 1e6) << 20) ~ addr
end

-- ---- State ----

M.DEFAULT_LOCATION = "ve9EPM428h8vShlRW1KT"
M.DEFAULT_COMPANY = "5DP4iH6HLkQsiKESj6rh"
M.APP = "sim"

-- Names and addresses given to the company's locations, in creation order.
local PLACES = {
  { "Sim Dental Downtown", "47 W 13th St", "New York", "NY", "10011" },
  { "Sim Roofing Co", "1600 Pennsylvania Ave", "Austin", "TX", "78701" },
  { "Sim Yoga Studio", "500 Market St", "San Francisco", "CA", "94105" },
  { "Sim Auto Repair", "221 Baker Ave", "Denver", "CO", "80202" },
  { "Sim Law Partners", "12 Beacon St", "Boston", "MA", "02108" },
  { "Sim Pet Grooming", "880 Peachtree St", "Atlanta", "GA", "30309" },
  { "Sim Coffee House", "1 Pike Pl", "Seattle", "WA", "98101" },
  { "Sim HVAC Services", "300 Congress Ave", "Phoenix", "AZ", "85004" },
}

-- The counters under "oauth" in /__sim/stats (all start at 0).
local OAUTH_COUNTERS = {
  "token_received", "refresh_ok", "refresh_reuse", "refresh_invalid", "refresh_inactive",
  "code_ok", "code_invalid", "client_invalid", "invalid_request", "superseded",
  "codes_issued", "consent_shown", "consent_approved", "consent_denied", "consent_errors",
  "location_tokens", "installed_locations", "reconnects", "not_installed", "locations_added",
}

-- config: location (default location id), company (company id), seed
-- (integer or nil), now() monotonic seconds, time() epoch seconds (both
-- on the simulator's clock), real_now() the real monotonic clock,
-- random_bytes(n).
function M.new(config)
  config = config or {}
  local seed = config.seed
  if seed == nil then
    local bytes = config.random_bytes and config.random_bytes(8)
    seed = bytes and string.unpack("<i8", bytes) or os.time()
  end
  local oauth_stats = { token_requests = {} }
  for _, k in ipairs(OAUTH_COUNTERS) do oauth_stats[k] = 0 end
  local self = setmetatable({
    now = config.now or os.clock,
    time = config.time or os.time,
    real_now = config.real_now or config.now or os.clock,   -- delayed answers
    clock = { offset = 0 },   -- the simulator's clock offset (ghl.sim.init)
    random_bytes = config.random_bytes,
    seed = seed,
    rng = M.rng(seed),
    -- traceIds differ from run to run, whatever the seed: HighLevel's are
    -- unique per request, and a log line must never match another run's
    trace_rng = M.rng(M.entropy(config.random_bytes)),
    oauth_rng = M.rng(seed ~ 0x6f617574),   -- company/location/user ids
    default_location = config.location or M.DEFAULT_LOCATION,
    company = { id = config.company or M.DEFAULT_COMPANY, name = "Sim Agency" },
    locations = {},     -- id -> location
    location_order = {},-- ids, creation order (picker, installedLocations)
    contacts = {},      -- id -> contact, all locations
    tokens = {},        -- access token -> record (see register_token)
    apps = {},          -- client_id -> app (see add_app)
    app_order = {},     -- client ids, in order added
    codes = {},         -- authorization code -> grant (see new_code)
    refresh_tokens = {},-- refresh token -> grant record
    installs = {},      -- client_id -> {company = install?, locations = {id -> install}} (see install)
    held = {},          -- token-endpoint effects waiting for their new pair's first use
    answers = {},       -- deadlines of delayed token-endpoint answers (in_flight)
    oauth = {           -- token endpoint settings (ghl.sim.oauth)
      token_ttl = 86399, code_ttl = 600, delay_ms = 0, delay_phase = "after",
    },
    last_ms = 0,
    stats = {
      requests = 0,
      status = {},        -- "200" -> count
      rate_limited = 0,   -- 429s from the limiter
      versions = {},      -- family -> {version -> count}
      last_version = {},  -- family -> version
      token_kinds = {},   -- "static" | "pit" | "location" | "company" -> API requests
      oauth = oauth_stats,
    },
  }, State)
  self.user_id = self.oauth_rng:id(20)   -- the user who installs apps
  self:add_location(self.default_location)
  return self
end

-- Wall clock in integer milliseconds, strictly increasing so that records
-- created in one burst still get distinct, ordered timestamps.
function State:now_ms()
  local ms = math.floor(self.time() * 1000)
  if ms <= self.last_ms then ms = self.last_ms + 1 end
  self.last_ms = ms
  return ms
end

function State:new_id()
  local id
  repeat id = self.rng:id(20) until not self.contacts[id]
  return id
end

function State:trace_id()
  return self.trace_rng:uuid()
end

-- Add a location of the company (unless it exists). fields: name,
-- address1, city, state, postalCode, country, active (default true).
function State:add_location(id, fields)
  local loc = self.locations[id]
  if loc then return loc end
  fields = fields or {}
  local n = #self.location_order + 1
  local place = PLACES[(n - 1) % #PLACES + 1]
  loc = {
    id = id,
    name = fields.name or (n <= #PLACES and place[1] or (place[1] .. " " .. n)),
    address1 = fields.address1 or place[2], city = fields.city or place[3],
    state = fields.state or place[4], postalCode = fields.postalCode or place[5],
    country = fields.country or "US",
    company = self.company.id,
    active = fields.active ~= false,
    contacts = {},        -- id -> contact
    contact_count = 0,
    custom_fields = {},   -- array, kept in position order
    custom_values = {},   -- array, creation order
  }
  self.locations[id] = loc
  self.location_order[n] = id
  return loc
end

-- n more locations with generated ids; returns their ids.
function State:add_locations(n)
  local ids = {}
  for i = 1, n do
    local id
    repeat id = self.oauth_rng:id(20) until not self.locations[id]
    self:add_location(id)
    ids[i] = id
  end
  return ids
end

function State:location(id)
  return self.locations[id]
end

-- "47 W 13th St, New York, NY 10011, US"
function State:address(loc)
  return string.format("%s, %s, %s %s, %s", loc.address1, loc.city, loc.state, loc.postalCode, loc.country)
end

-- The company's locations, in creation order.
function State:company_locations()
  local out = {}
  for _, id in ipairs(self.location_order) do
    local loc = self.locations[id]
    if loc.company == self.company.id then out[#out + 1] = loc end
  end
  return out
end

-- ---- Randomness for secrets (never the seeded generators) ----

function State:random_hex(nbytes)
  local b = self.random_bytes and self.random_bytes(nbytes)
  if not b then
    local t = {}
    for i = 1, nbytes do t[i] = string.char(math.random(0, 255)) end
    b = table.concat(t)
  end
  return require("ghl.util").hex(b)
end

function State:random_raw(nbytes)
  return (self:random_hex(nbytes):gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
end

-- A uuid-v4-looking random string (client secrets).
function State:random_uuid()
  local s = self:random_hex(16)
  return string.format("%s-%s-4%s-%x%s-%s", s:sub(1, 8), s:sub(9, 12), s:sub(14, 16),
    8 + (tonumber(s:sub(17, 17), 16) & 3), s:sub(18, 20), s:sub(21, 32))
end

-- A realistic client id: "<24 hex>-<8 lowercase alnum>".
function State:random_client_id()
  local alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
  local tail = self:random_raw(8):gsub(".", function(c)
    local k = c:byte() % #alnum + 1
    return alnum:sub(k, k)
  end)
  return self:random_hex(12) .. "-" .. tail
end

-- ---- OAuth apps and installs ----

-- Register an app: {client_id, client_secret, redirect_uris = {...},
-- scopes = {...} (the app's configured scope set), user_type = "Location" |
-- "Company", whitelabel, name}. Adds app_id (the part before '-') and
-- scope_set.
function State:add_app(app)
  app.app_id = app.client_id:match("^([^-]+)") or app.client_id
  app.scope_set = {}
  for _, s in ipairs(app.scopes) do app.scope_set[s] = true end
  if not self.apps[app.client_id] then self.app_order[#self.app_order + 1] = app.client_id end
  self.apps[app.client_id] = app
  self.installs[app.client_id] = self.installs[app.client_id] or { locations = {} }
  return app
end

function State:app(client_id)
  return client_id and self.apps[client_id]
end

-- The install model (FACTS §3): an app is installed on the company (the
-- agency consented) and on each location separately. A Company consent
-- approves all of the company's locations or a chosen list, and may ask
-- for future locations too; a location is installed only when approved
-- (or installed by its own consent), and only installed locations can get
-- a location token, be reconnected, or count as installed.
--   installs[client_id] = {company = rec?, locations = {id -> rec}}
--   location rec: {scopes, at_ms}
--   company rec:  {scopes, location_scopes, at_ms, approve_all, future, bulk}
-- Every first install is announced with an INSTALL webhook (ghl.sim.webhooks).

-- Record an install of client_id on a location (location_id) or on the
-- company (location_id nil). fields: extra INSTALL webhook fields (a
-- future-location install leaves userId out). Returns the record and
-- whether it is new; a repeated install keeps the first record's date and
-- takes the new scopes.
function State:install(client_id, location_id, scopes, fields)
  local ins = self.installs[client_id]
  local old = location_id and ins.locations[location_id] or (not location_id and ins.company)
  if old then
    old.scopes = scopes
    return old, false
  end
  local rec = { scopes = scopes, at_ms = self:now_ms() }
  if location_id then ins.locations[location_id] = rec else ins.company = rec end
  if self.webhooks then self.webhooks:install(client_id, location_id, fields) end
  return rec, true
end

-- A Company consent of client_id: install on the company with scopes
-- (Company token scopes) and on the approved locations with
-- location_scopes: every location of the company when approved is "all",
-- else the ids in approved (an array; unknown ids are the caller's to
-- refuse). future: install on locations added later (create_location).
-- One INSTALL for the company, then one per newly installed location, in
-- the company's location order. Returns the company record.
function State:install_company(client_id, scopes, location_scopes, approved, future)
  local all = approved == "all"
  local wanted = {}
  if not all then for _, id in ipairs(approved) do wanted[id] = true end end
  local rec = self:install(client_id, nil, scopes)
  rec.location_scopes = location_scopes
  rec.approve_all, rec.future = all, future and true or false
  local n = 0
  for _, loc in ipairs(self:company_locations()) do
    if all or wanted[loc.id] then
      self:install(client_id, loc.id, location_scopes)
      n = n + 1
    end
  end
  -- a bulk installation: the agency installed the app on sub-accounts
  rec.bulk = rec.bulk or n > 0
  return rec
end

-- The install of client_id on a location (its own record: a Company
-- install covers only the locations it approved), or the company install
-- when location_id is nil.
function State:installed(client_id, location_id)
  local ins = self.installs[client_id]
  if not ins then return nil end
  if location_id == nil then return ins.company end
  return ins.locations[location_id]
end

-- The ids of the company's locations where client_id is installed, in
-- the company's location order.
function State:installed_locations(client_id)
  local ins, out = self.installs[client_id], {}
  if not ins then return out end
  for _, loc in ipairs(self:company_locations()) do
    if ins.locations[loc.id] then out[#out + 1] = loc.id end
  end
  return out
end

-- Remove client_id's install from a location (or, location_id nil, from
-- the company and every location of it, as HighLevel's uninstall of an
-- agency install does). Returns the ids of the locations uninstalled and
-- whether the company was; the caller revokes tokens and sends UNINSTALL.
function State:uninstall(client_id, location_id)
  local ins = self.installs[client_id]
  if location_id then
    if not ins.locations[location_id] then return {}, false end
    ins.locations[location_id] = nil
    return { location_id }, false
  end
  if not ins.company then return {}, false end
  local gone = self:installed_locations(client_id)
  for _, id in ipairs(gone) do ins.locations[id] = nil end
  ins.company = nil
  return gone, true
end

-- A new location of the company, added after start (POST /__sim/locations):
-- every app whose Company install asked for future locations is installed
-- on it, with its INSTALL webhook (no userId: HighLevel's note on future
-- installs). Returns the location and the client ids installed, or nil
-- when the id is taken.
function State:create_location(id, fields)
  if self.locations[id] then return nil end
  local loc = self:add_location(id, fields)
  local installed = {}
  for _, cid in ipairs(self.app_order) do
    local c = self.installs[cid].company
    if c and c.future then
      self:install(cid, id, c.location_scopes or {}, { future = true })
      installed[#installed + 1] = cid
    end
  end
  return loc, installed
end

-- ---- Authorization codes ----

-- A new single-use code for grant {client_id, redirect_uri, auth_class,
-- location, company, scopes (array), user_id}; expires after code_ttl s.
function State:new_code(grant)
  local code = self:random_hex(20)
  grant.expires_at = self.time() + self.oauth.code_ttl
  self.codes[code] = grant
  self.stats.oauth.codes_issued = self.stats.oauth.codes_issued + 1
  return code, grant.expires_at
end

-- The grant behind a live code, or nil (unknown, used or expired).
function State:code(code)
  local g = code and self.codes[code]
  if not g or g.used or self.time() >= g.expires_at then return nil end
  return g
end

-- ---- Tokens ----

-- Access-token records: {token, kind = "location" | "company" (the
-- authClass, lower case), source = "static" | "pit" | "oauth", app (client
-- id, or "sim"), location (Location tokens), company, resource (location or
-- company id: the rate-limit bucket), scopes (nil = every scope, else a set
-- {["contacts.readonly"] = true}), expires_at (epoch seconds; nil = never)}.
function State:register_token(rec)
  rec.company = rec.company or self.company.id
  rec.resource = rec.resource or (rec.kind == "company" and rec.company or rec.location)
  self.tokens[rec.token] = rec
  return rec
end

-- Register a static token (--token/--tokens): a Location token with every
-- scope that never expires. kind and scopes are kept for older callers.
function State:add_token(token, location, kind, scopes)
  location = location or self.default_location
  self:add_location(location)
  return self:register_token { token = token, kind = kind or "location", source = "static",
    app = M.APP, location = location, scopes = scopes }
end

-- Register a Private Integration Token: every scope, never expires. On the
-- company when resource is the company id, else on location resource
-- (default: the default location).
function State:add_pit(token, resource)
  if resource == self.company.id then
    return self:register_token { token = token, kind = "company", source = "pit", app = M.APP }
  end
  local location = resource or self.default_location
  self:add_location(location)
  return self:register_token { token = token, kind = "location", source = "pit", app = M.APP,
    location = location }
end

-- The record of a live token, or nil (unknown or expired). A token from a
-- held answer becomes live here, on first use.
function State:token(token)
  if not token then return nil end
  local rec = self.tokens[token]
  if not rec and self:apply_held(token) then rec = self.tokens[token] end
  if rec and rec.expires_at and self.time() >= rec.expires_at then return nil end
  return rec
end

-- ---- Delayed token-endpoint answers ----

-- Remember that a token-endpoint answer goes out at deadline (monotonic s).
function State:add_answer(deadline)
  self.answers[#self.answers + 1] = deadline
end

-- Hold back the effect of a token request (fn) until the new pair it
-- answered with (tokens: {access, refresh}) is first presented; key is the
-- grant the request presented (code or refresh token).
function State:hold(key, fn, tokens)
  self.held[#self.held + 1] = { key = key, fn = fn, tokens = tokens }
end

-- Drop held effects presenting key (their client gave up, or was killed,
-- and the grant is presented again); returns how many.
function State:drop_held(key)
  local n = 0
  for i = #self.held, 1, -1 do
    if self.held[i].key == key then
      table.remove(self.held, i)
      n = n + 1
    end
  end
  self.stats.oauth.superseded = self.stats.oauth.superseded + n
  return n
end

-- Apply the held effect that answered with token (an access or refresh
-- token), if any: its client got the answer. Returns true when applied.
function State:apply_held(token)
  for i, h in ipairs(self.held) do
    for _, t in ipairs(h.tokens) do
      if t == token then
        table.remove(self.held, i)
        h.fn()
        return true
      end
    end
  end
  return false
end

-- Forget delayed answers already sent.
function State:run_due()
  local now = self.real_now()
  for j = #self.answers, 1, -1 do
    if self.answers[j] <= now then table.remove(self.answers, j) end
  end
end

-- ---- Contacts store ----

function State:put_contact(c)
  local loc = self:add_location(c.locationId)
  if not loc.contacts[c.id] then loc.contact_count = loc.contact_count + 1 end
  loc.contacts[c.id] = c
  self.contacts[c.id] = c
  loc.sorted = nil
end

function State:delete_contact(c)
  local loc = self.locations[c.locationId]
  if loc and loc.contacts[c.id] then
    loc.contacts[c.id] = nil
    loc.contact_count = loc.contact_count - 1
    loc.sorted = nil
  end
  self.contacts[c.id] = nil
end

-- The location's contacts ordered by (dateAdded, id): the stable order every
-- list uses, cached until the set changes.
function State:contacts_in(location_id)
  local loc = self.locations[location_id]
  if not loc then return {} end
  if not loc.sorted then
    local list = {}
    for _, c in pairs(loc.contacts) do list[#list + 1] = c end
    table.sort(list, function(a, b)
      if a.added_ms ~= b.added_ms then return a.added_ms < b.added_ms end
      return a.id < b.id
    end)
    loc.sorted = list
  end
  return loc.sorted
end

-- ---- Custom fields and values ----

function State:custom_field(location_id, id)
  local loc = self.locations[location_id]
  if not loc then return nil end
  for i, f in ipairs(loc.custom_fields) do
    if f.id == id then return f, i end
  end
end

-- Find a field by key: "budget" or "contact.budget" (model contact unless
-- the key carries another prefix).
function State:custom_field_by_key(location_id, key)
  local loc = self.locations[location_id]
  if not loc or type(key) ~= "string" then return nil end
  local full = key:find(".", 1, true) and key or ("contact." .. key)
  for _, f in ipairs(loc.custom_fields) do
    if f.fieldKey == full then return f end
  end
end

function State:add_custom_field(location_id, f)
  local loc = self:add_location(location_id)
  f.id = f.id or self.rng:id(20)
  f.locationId = location_id
  if f.position == nil then f.position = #loc.custom_fields end
  loc.custom_fields[#loc.custom_fields + 1] = f
  return f
end

function State:add_custom_value(location_id, v)
  local loc = self:add_location(location_id)
  v.id = v.id or self.rng:id(20)
  v.locationId = location_id
  loc.custom_values[#loc.custom_values + 1] = v
  return v
end

-- ---- Records of the other route families ----

-- FNV-1a over s, as a 64-bit integer (seeds per-location generators).
local function hash(s)
  local h = -3750763034362895579   -- 0xcbf29ce484222325
  for i = 1, #s do h = (h ~ s:byte(i)) * 0x100000001b3 end
  return h
end

-- The location's records of a route family (name: "opportunities",
-- "calendars", "conversations", "users", "tags"), a table made on first
-- use: init(state, location, store, rng) fills it with seed data, rng being
-- a generator of its own for (seed, name, location), so what a location
-- starts with does not depend on the order of requests. nil when the
-- location is unknown.
function State:store(location_id, name, init)
  local loc = self.locations[location_id]
  if not loc then return nil end
  loc.stores = loc.stores or {}
  local s = loc.stores[name]
  if not s then
    s = {}
    loc.stores[name] = s
    if init then init(self, loc, s, M.rng((math.tointeger(self.seed) or 0) ~ hash(name .. "/" .. location_id))) end
  end
  return s
end

-- An index of a family's records by id across locations (id -> record).
function State:records(name)
  self.indexes = self.indexes or {}
  local t = self.indexes[name]
  if not t then
    t = {}
    self.indexes[name] = t
  end
  return t
end

-- ---- Statistics ----

function State:count_request(status)
  local st = self.stats
  st.requests = st.requests + 1
  local k = tostring(status)
  st.status[k] = (st.status[k] or 0) + 1
end

function State:count_version(family, version)
  local st = self.stats
  st.versions[family] = st.versions[family] or {}
  st.versions[family][version] = (st.versions[family][version] or 0) + 1
  st.last_version[family] = version
end

-- Count an authenticated API request by the kind of its token.
function State:count_token_kind(rec)
  local k = rec.source == "oauth" and rec.kind or rec.source
  local tk = self.stats.token_kinds
  tk[k] = (tk[k] or 0) + 1
end

-- Add one to an oauth counter (a name from OAUTH_COUNTERS).
function State:count_oauth(name)
  local o = self.stats.oauth
  o[name] = o[name] + 1
end

-- A JSON-ready copy of the counters.
function State:stats_snapshot()
  local st = self.stats
  local locations = {}
  for id, loc in pairs(self.locations) do
    locations[id] = { contacts = loc.contact_count,
      customFields = #loc.custom_fields, customValues = #loc.custom_values,
      active = loc.active }
  end
  local oauth = {}
  for k, v in pairs(st.oauth) do oauth[k] = v end
  local now, in_flight = self.real_now(), 0
  for _, d in ipairs(self.answers) do
    if d > now then in_flight = in_flight + 1 end
  end
  oauth.in_flight, oauth.held = in_flight, #self.held
  oauth.token_delay_ms, oauth.token_delay_phase = self.oauth.delay_ms, self.oauth.delay_phase
  return {
    requests = st.requests,
    status = st.status,
    rateLimited = st.rate_limited,
    versions = st.versions,
    lastVersion = st.last_version,
    locations = locations,
    defaultLocation = self.default_location,
    companyId = self.company.id,
    tokenKinds = st.token_kinds,
    oauth = oauth,
  }
end

M.State = State
return M
