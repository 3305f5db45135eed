-- ghl.sim.state: everything the simulator remembers, kept apart from the
-- routes so new route families (and later OAuth apps and token kinds) add
-- data here without touching the router. Holds the clocks and random
-- sources (injectable, so specs can drive time), the locations with their
-- contacts, custom fields and custom values, the token registry, and the
-- request statistics served at /__sim/stats. Nothing here raises on bad
-- input from clients; callers validate first.
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

-- uuid-v4-looking string, for traceId.
function Rng:uuid()
  local h = {}
  for i = 1, 4 do h[i] = string.format("%08x", self:next() & 0xffffffff) end
  local s = table.concat(h)
  return string.format("%s-%s-4%s-%x%s-%s", s:sub(1, 8), s:sub(9, 12), s:sub(14, 16),
    8 + (tonumber(s:sub(17, 17), 16) & 3), s:sub(18, 20), s:sub(21, 32))
end

-- ---- State ----

M.DEFAULT_LOCATION = "ve9EPM428h8vShlRW1KT"
M.APP = "sim"

-- config: location (default location id), seed (integer or nil),
-- now() monotonic seconds, time() epoch seconds, random_bytes(n).
function M.new(config)
  config = config or {}
  local seed = config.seed
  if seed == nil then
    local bytes = config.random_bytes and config.random_bytes(8)
    seed = bytes and string.unpack("<i8", bytes) or os.time()
  end
  local self = setmetatable({
    now = config.now or os.clock,
    time = config.time or os.time,
    rng = M.rng(seed),
    trace_rng = M.rng(seed ~ 0x5bd1e995),
    default_location = config.location or M.DEFAULT_LOCATION,
    locations = {},     -- id -> location
    contacts = {},      -- id -> contact, all locations
    tokens = {},        -- token string -> {token, kind, app, location, scopes}
    last_ms = 0,
    stats = {
      requests = 0,
      status = {},        -- "200" -> count
      rate_limited = 0,   -- 429s from the limiter
      versions = {},      -- family -> {version -> count}
      last_version = {},  -- family -> version
    },
  }, State)
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

function State:add_location(id, fields)
  local loc = self.locations[id]
  if loc then return loc end
  loc = {
    id = id,
    name = (fields and fields.name) or ("Sim location " .. id:sub(1, 4)),
    contacts = {},        -- id -> contact
    contact_count = 0,
    custom_fields = {},   -- array, kept in position order
    custom_values = {},   -- array, creation order
  }
  self.locations[id] = loc
  return loc
end

function State:location(id)
  return self.locations[id]
end

-- ---- Tokens ----

-- Register a token. kind: "location" (a sub-account token; today the only
-- kind); scopes: nil for all scopes, else a set {["contacts.readonly"]=true}.
function State:add_token(token, location, kind, scopes)
  location = location or self.default_location
  self:add_location(location)
  local rec = { token = token, kind = kind or "location", app = M.APP,
    location = location, scopes = scopes }
  self.tokens[token] = rec
  return rec
end

function State:token(token)
  return self.tokens[token]
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

-- A JSON-ready copy of the counters.
function State:stats_snapshot()
  local st = self.stats
  local locations = {}
  for id, loc in pairs(self.locations) do
    locations[id] = { contacts = loc.contact_count,
      customFields = #loc.custom_fields, customValues = #loc.custom_values }
  end
  return {
    requests = st.requests,
    status = st.status,
    rateLimited = st.rate_limited,
    versions = st.versions,
    lastVersion = st.last_version,
    locations = locations,
    defaultLocation = self.default_location,
  }
end

M.State = State
return M
