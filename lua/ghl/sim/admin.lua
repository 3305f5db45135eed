-- ghl.sim.admin: the simulator's own routes under /__sim/, for tests and
-- tooling rather than HighLevel clients. No Version header, no token, no
-- rate limit, and they are not counted in the statistics they report.
--   GET /__sim/stats   counters: requests, per-status counts, 429s from the
--                      limiter, Version values seen per route family and the
--                      last one per family, per-location record counts and
--                      active flag, API requests per token kind
--                      (tokenKinds: static, pit, location, company), and
--                      the OAuth counters (oauth: token_received,
--                      token_requests per grant, refresh_ok, refresh_reuse,
--                      in_flight, held, ...; see ghl.sim.state).
--   GET /__sim/health  {"ok":true}
--   GET /__sim/oauth   the OAuth settings (below) and the company id
--   PUT /__sim/oauth   JSON {token_delay_ms, token_delay_phase, token_ttl,
--                      code_ttl, auto_approve (a location id, "company",
--                      "company:ID,ID", "default", or false: see
--                      ghl.sim.consent), deny}: change them at run time;
--                      answers as GET
--   POST /__sim/locations   JSON {id, name, address1, city, state,
--                      postalCode, country, active} (all optional; id
--                      default: a generated one): a new location of the
--                      company, as if the agency created a sub-account;
--                      apps installed with future locations are installed
--                      on it, each with its INSTALL webhook. 201 {id, name,
--                      companyId, active, installed (client ids)}; 409 when
--                      the id exists
--   PUT /__sim/locations/{locationId}   JSON {active = bool}: pause or
--                      resume a location (refresh then answers 400
--                      "Location is not active")
--   GET /__sim/clock   {now (epoch seconds on the simulator's clock),
--                      offset (seconds it is ahead of the real clock)}
--   PUT /__sim/clock   JSON {advance = seconds} or {now = epoch seconds}:
--                      move the simulator's clock forward (never back);
--                      token and code expiry, JWT iat/exp, rate-limit
--                      windows and webhook retries follow it; answers as GET
-- Bad bodies get a 400 with the HighLevel error shape.
local reply = require "ghl.sim.reply"

local M = {}

local function stats(ctx)
  return 200, ctx.state:stats_snapshot()
end

local function health()
  return 200, { ok = true }
end

local function settings(state)
  local o = state.oauth
  return { token_delay_ms = o.delay_ms, token_delay_phase = o.delay_phase, token_ttl = o.token_ttl,
    code_ttl = o.code_ttl, auto_approve = o.auto_approve or false, deny = o.deny or false,
    companyId = state.company.id }
end

local function json_body(ctx)
  local b = ctx.req.body and reply.decode(ctx.req.body)
  if type(b) ~= "table" then reply.raise(400, "Expected a JSON object body") end
  return b
end

local function get_oauth(ctx)
  return 200, settings(ctx.state)
end

local function put_oauth(ctx)
  local b, o = json_body(ctx), ctx.state.oauth
  local function int(name, min)
    local v = b[name]
    if v == nil then return nil end
    local n = math.tointeger(v)
    if not n or n < min then reply.raise(400, name .. " must be an integer >= " .. min) end
    return n
  end
  local delay, ttl, code_ttl = int("token_delay_ms", 0), int("token_ttl", 1), int("code_ttl", 1)
  local phase = b.token_delay_phase
  if phase ~= nil and phase ~= "before" and phase ~= "after" then
    reply.raise(400, "token_delay_phase must be before or after")
  end
  local auto = b.auto_approve
  if auto ~= nil and auto ~= false then
    local consent = require "ghl.sim.consent"
    local choice, why = consent.parse_choice(auto)
    if not choice then reply.raise(400, "auto_approve: " .. why) end
    local unknown = consent.unknown_locations(ctx.state, choice)
    if #unknown > 0 then reply.raise(400, "auto_approve: no location " .. table.concat(unknown, ", ")) end
  end
  if b.deny ~= nil and type(b.deny) ~= "boolean" then reply.raise(400, "deny must be a boolean") end
  o.delay_ms = delay or o.delay_ms
  o.delay_phase = phase or o.delay_phase
  o.token_ttl = ttl or o.token_ttl
  o.code_ttl = code_ttl or o.code_ttl
  if auto ~= nil then o.auto_approve = auto or nil end
  if b.deny ~= nil then o.deny = b.deny end
  return 200, settings(ctx.state)
end

local FIELDS = { "name", "address1", "city", "state", "postalCode", "country" }

local function post_location(ctx)
  local state = ctx.state
  local b = ctx.req.body and ctx.req.body:match("%S") and json_body(ctx) or {}
  local id = b.id
  if id ~= nil and (type(id) ~= "string" or not id:match("^[%w_%-]+$")) then
    reply.raise(400, "id must be letters, digits, '_' or '-'")
  end
  local fields = {}
  for _, k in ipairs(FIELDS) do
    if b[k] ~= nil then
      if type(b[k]) ~= "string" then reply.raise(400, k .. " must be a string") end
      fields[k] = b[k]
    end
  end
  if b.active ~= nil and type(b.active) ~= "boolean" then reply.raise(400, "active must be a boolean") end
  fields.active = b.active
  if not id then
    repeat id = state.oauth_rng:id(20) until not state:location(id)
  end
  local loc, installed = state:create_location(id, fields)
  if not loc then reply.raise(409, "Location " .. id .. " already exists") end
  state:count_oauth("locations_added")
  return 201, { id = loc.id, name = loc.name, companyId = loc.company, active = loc.active,
    installed = reply.array(installed) }
end

local function put_location(ctx)
  local b = json_body(ctx)
  local loc = ctx.state:location(ctx.params.locationId)
  if not loc then reply.raise(404, "Location not found") end
  if b.active ~= nil then
    if type(b.active) ~= "boolean" then reply.raise(400, "active must be a boolean") end
    loc.active = b.active
  end
  return 200, { id = loc.id, name = loc.name, companyId = loc.company, active = loc.active }
end

local function clock(state)
  return { now = state.time(), offset = state.clock.offset }
end

local function get_clock(ctx)
  return 200, clock(ctx.state)
end

local function put_clock(ctx)
  local b, state = json_body(ctx), ctx.state
  local advance, now = b.advance, b.now
  if (advance == nil) == (now == nil) then
    reply.raise(400, "Expected {\"advance\": seconds} or {\"now\": epoch seconds}")
  end
  if now ~= nil then
    if type(now) ~= "number" or now ~= now or now == math.huge then reply.raise(400, "now must be a number (epoch seconds)") end
    advance = now - state.time()
    if advance < 0 then
      reply.raise(400, "now is in the simulator's past: the clock only moves forward (it is "
        .. string.format("%.3f", state.time()) .. ")")
    end
  elseif type(advance) ~= "number" or advance ~= advance or advance < 0 or advance == math.huge then
    reply.raise(400, "advance must be a number of seconds >= 0")
  end
  state.clock.offset = state.clock.offset + advance
  return 200, clock(state)
end

M.routes = {
  { method = "GET", path = "/__sim/stats", handler = stats },
  { method = "GET", path = "/__sim/health", handler = health },
  { method = "GET", path = "/__sim/oauth", handler = get_oauth },
  { method = "PUT", path = "/__sim/oauth", handler = put_oauth },
  { method = "POST", path = "/__sim/locations", handler = post_location },
  { method = "PUT", path = "/__sim/locations/:locationId", handler = put_location },
  { method = "GET", path = "/__sim/clock", handler = get_clock },
  { method = "PUT", path = "/__sim/clock", handler = put_clock },
}
for _, r in ipairs(M.routes) do
  r.public, r.uncounted, r.family = true, true, "sim"
end

return M
