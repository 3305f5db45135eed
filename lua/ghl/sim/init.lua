-- ghl.sim: a HighLevel API simulator that runs inside ghlua. sim.new(config)
-- builds an app: a state (ghl.sim.state), a rate limiter (ghl.sim.ratelimit)
-- and a route table (ghl.sim.router) filled from the route modules (admin,
-- contacts, notes, locations, opportunities, calendars, conversations, users, the
-- OAuth endpoints (v2 and v3) and the consent screen, the chaos rules and
-- request log, and faults when enabled). app:handle(req) is the request
-- pipeline, for ghl.server's handler contract:
--   0. forget delayed token-endpoint answers already sent (stats in_flight);
--   1. match the route (404 "Cannot GET /path" when none);
--   2. public routes (/__sim, /__fault, /oauth/token, /oauth/reconnect, the
--      consent screen) run at once, after any chaos rule (ghl.sim.chaos);
--   3. Version header (401), with --strict-version the family's own (401),
--      bearer token (401 Invalid JWT: unknown or expired), token kind (401:
--      PIT on an OAuth-only route, wrong authClass), scope (401);
--   4. rate limit for (app, token's location or company) (429, its message
--      naming the daily limit when that is the one spent); from here on
--      every response carries the five X-RateLimit-* headers;
--   4b. a chaos rule that matches answers instead (status, reset, close),
--      or holds the answer back (delay_ms); an after rule answers instead
--      once the handler has run (the request took effect);
--   5. body: JSON (400 when malformed), or form/JSON on form routes;
--      locationId in path/query/body (403);
--   6. the handler: returns status, value[, headers] for a JSON reply, or a
--      raw response table; raises reply.raise(...) for API errors.
-- Every request but /__sim/'s goes into the request log (GET /__sim/requests).
-- A handler that fails any other way is a simulator bug: 500, logged with a
-- traceback on stderr. app:handle never raises; sim.new raises (a string)
-- only on a malformed config.
local reply = require "ghl.sim.reply"
local state_mod = require "ghl.sim.state"
local ratelimit = require "ghl.sim.ratelimit"
local router_mod = require "ghl.sim.router"
local auth = require "ghl.sim.auth"
local scopes = require "ghl.sim.scopes"
local chaos_mod = require "ghl.sim.chaos"

local M = {}
local App = {}
App.__index = App

-- Route modules mounted by default; faults are added with config.faults.
M.MODULES = { "ghl.sim.admin", "ghl.sim.chaos", "ghl.sim.contacts", "ghl.sim.notes", "ghl.sim.locations",
  "ghl.sim.opportunities", "ghl.sim.calendars", "ghl.sim.conversations", "ghl.sim.users",
  "ghl.sim.oauth", "ghl.sim.v3", "ghl.sim.consent", "ghl.sim.webhooks" }

M.DEFAULT_REDIRECT = "http://localhost:3000/oauth/callback"

-- Fill in an app's defaults: a realistic client id, a random secret, the
-- default redirect URI, target user Location, every scope valid for it.
function M.complete_app(state, app)
  app = app or {}
  app.user_type = app.user_type or "Location"
  app.client_id = app.client_id or state:random_client_id()
  app.client_secret = app.client_secret or state:random_uuid()
  if not app.redirect_uris or #app.redirect_uris == 0 then app.redirect_uris = { M.DEFAULT_REDIRECT } end
  app.scopes = app.scopes or scopes.all_for(app.user_type)
  app.whitelabel = app.whitelabel or false
  app.name = app.name or "Sim App"
  return app
end

-- config fields (all optional):
--   location      default location id        seed        integer seed
--   company       company (agency) id         locations   extra locations
--   inactive      array of location ids marked not active (added if new)
--   contacts      seed contacts in the default location
--   opportunities seed opportunities in the default location
--   strict_version  a published Version other than the route family's
--                 own gets 401 (the live API accepts any published one)
--   tokens        array of {token=, location=} (location nil: default)
--   pits          array of {token=, resource=} (a location id or the
--                 company id; nil: the default location)
--   apps          array of {client_id, client_secret, redirect_uris,
--                 scopes, user_type, whitelabel, name} (missing fields get
--                 defaults; no apps: one default app)
--   oauth         {token_ttl, code_ttl, auto_approve = nil | "default" |
--                 LOCATION_ID | "company" | "company:ID,ID" (see
--                 ghl.sim.consent), deny, delay_ms, delay_phase =
--                 "before" | "after"}
--   rate          {max=, interval_ms=, daily=}
--   faults        mount /__fault/ routes      base_url    "http://host:port"
--   now, time, random_bytes   real clocks and entropy (default: ghl.sys);
--                 the simulator's own clock adds state.clock.offset to them
--   log           function(line) for request lines; nil = no request log
--   warn          function(text) for bug reports (default: io.stderr)
--   webhooks      {url, key, legacy_rsa, retry_delay, log}: sign and send
--                 webhook events (ghl.sim.webhooks; app.webhooks)
function M.new(config)
  config = config or {}
  local now, time, random_bytes = config.now, config.time, config.random_bytes
  if not (now and time and random_bytes) then
    local sys = require "ghl.sys"
    now, time, random_bytes = now or sys.now, time or sys.time, random_bytes or sys.random_bytes
  end
  -- The simulator's clock: the real clocks plus an offset that only grows
  -- (PUT /__sim/clock). Everything the simulated HighLevel decides by time
  -- reads it: token and code expiry, JWT iat/exp, rate-limit windows,
  -- webhook retries. Delayed answers (in_flight) and request durations
  -- stay on the real clock: they measure what the server really does.
  local clock = { offset = 0 }
  local real_now = now
  local function sim_now() return real_now() + clock.offset end
  local function sim_time() return time() + clock.offset end
  local state = state_mod.new { location = config.location, company = config.company,
    seed = config.seed, now = sim_now, time = sim_time, real_now = real_now, random_bytes = random_bytes }
  state.clock = clock
  local rate = config.rate or {}
  local app = setmetatable({
    state = state,
    limiter = ratelimit.new { max = rate.max, interval_ms = rate.interval_ms,
      daily = rate.daily, now = sim_now },
    router = router_mod.new(),
    base_url = config.base_url or "http://127.0.0.1",
    log = config.log,
    warn = config.warn or function(text) io.stderr:write(text, "\n") end,
    now = now,
    strict_version = config.strict_version or false,
    chaos = chaos_mod.new(),
  }, App)

  for _, name in ipairs(M.MODULES) do app.router:add(require(name).routes) end
  if config.faults then app.router:add(require("ghl.sim.faults").routes) end
  if config.webhooks then
    -- signed deliveries of contact and install events (ghl.sim.webhooks)
    app.webhooks = require("ghl.sim.webhooks").new(config.webhooks, state)
    state.webhooks = app.webhooks
  end

  state:add_locations(config.locations or 0)
  for _, t in ipairs(config.tokens or {}) do state:add_token(t.token, t.location) end
  for _, t in ipairs(config.pits or {}) do state:add_pit(t.token, t.resource) end
  for _, id in ipairs(config.inactive or {}) do state:add_location(id).active = false end
  local apps = config.apps or {}
  if #apps == 0 then apps = { {} } end
  for _, a in ipairs(apps) do state:add_app(M.complete_app(state, a)) end
  for k, v in pairs(config.oauth or {}) do state.oauth[k] = v end
  require("ghl.sim.locations").seed(state, state.default_location)
  if config.contacts and config.contacts > 0 then
    require("ghl.sim.contacts").seed(state, state.default_location, config.contacts)
  end
  require("ghl.sim.locations").seed_tags(state, state.default_location)
  if config.opportunities and config.opportunities > 0 then
    require("ghl.sim.opportunities").seed(state, state.default_location, config.opportunities)
  end
  return app
end

-- The server's own base URL, for absolute links such as meta.nextPageUrl.
function App:set_base_url(url)
  self.base_url = (url:gsub("/+$", ""))
end

-- A function(req) for ghl.server.listen{handler=...}.
function App:handler()
  return function(req) return self:handle(req) end
end

-- ---- The pipeline ----

local function merge(into, from)
  for k, v in pairs(from or {}) do into[k] = v end
  return into
end

-- Turn a handler's results into a response table.
local function to_response(a, b, c)
  if type(a) == "number" then return reply.json(a, b, c) end
  if type(a) == "table" then return a end
  error("route handler returned " .. type(a) .. " instead of a status or a response", 0)
end

function App:error_response(ctx, status, message, extra, headers)
  return reply.json(status, reply.error_body(status, message, ctx.trace_id, extra), headers)
end

-- Fire the chaos rule matching this request, if any: returns its injected
-- response, or nil (no rule, one that only delays, or an after rule, whose
-- answer handle() puts in once the handler ran: ctx.chaos keeps it).
function App:inject(ctx)
  local rule = self.chaos:fire(ctx.req.method, ctx.req.path, ctx.route)
  if not rule then return nil end
  ctx.chaos = rule
  if rule.after then return nil end
  return chaos_mod.response(rule, ctx)
end

-- Steps 1-6 above; raises reply errors, which handle() converts.
function App:dispatch(ctx)
  local req = ctx.req
  local route, params = self.router:match(req.method, req.path)
  if not route then
    reply.raise(404, string.format("Cannot %s %s", req.method, req.path))
  end
  ctx.route, ctx.params = route, params
  if route.public then
    local injected = not route.uncounted and self:inject(ctx)
    if injected then return injected end
    return to_response(route.handler(ctx))
  end

  local version = auth.check_version(req)
  self.state:count_version(route.family or "other", version)
  if self.strict_version then auth.check_family_version(route, version) end
  local token = auth.check_token(self.state, req)
  self.state:count_token_kind(token)
  auth.check_class(token, route)
  auth.check_scope(token, route.scope)
  ctx.token = token

  local ok, headers, why = self.limiter:take(token.app .. ":" .. token.resource)
  ctx.rate_headers = headers
  if not ok then
    -- which limit: X-RateLimit-Daily-Remaining 0 and the message
    self.state.stats.rate_limited = self.state.stats.rate_limited + 1
    if why == "daily" then
      reply.raise(429, string.format("Too Many Requests: the daily limit of %d requests is reached", self.limiter.daily))
    end
    reply.raise(429, "Too Many Requests")
  end
  local injected = self:inject(ctx)
  if injected then return injected end

  if route.form then
    -- form-encoded (HighLevel's documented encoding) or JSON
    local ct = (req.headers["content-type"] or ""):lower()
    if ct:find("application/x-www-form-urlencoded", 1, true) then
      ctx.body = reply.form_decode(req.body)
    elseif req.body and req.body:match("%S") then
      ctx.body = reply.decode(req.body)
    end
  elseif req.body and req.body:match("%S") then
    local body, err = reply.decode(req.body)
    if body == nil then
      local pos = tostring(err):match("character (%d+)")
      reply.raise(400, pos and string.format("Unexpected token in JSON at position %d", tonumber(pos) - 1)
        or ("Malformed JSON body: " .. tostring(err)))
    end
    ctx.body = body
  end
  for _, loc in ipairs(auth.request_locations(params, ctx.query, ctx.body, route.body_location)) do
    auth.check_location(token, loc, self.state)
  end
  return to_response(route.handler(ctx))
end

-- Handle one request; always returns a response table.
function App:handle(req)
  local t0 = self.now()
  local due_ok, due_err = xpcall(self.state.run_due, debug.traceback, self.state)
  if not due_ok then self.warn("ghlua sim: internal error: " .. tostring(due_err)) end
  req.headers = req.headers or {}
  -- absolute-form request target (the client took us for a proxy)
  req.path = req.path:match("^%a[%w+.-]*://[^/]*(/.*)$") or req.path
  local ctx = { app = self, state = self.state, req = req, query = req.query or {},
    base_url = self.base_url, trace_id = self.state:trace_id() }
  local ok, resp = xpcall(self.dispatch, function(e)
    if reply.is_http_error(e) then return e end
    return debug.traceback(tostring(e), 2)
  end, self, ctx)
  if not ok then
    local e = resp
    if reply.is_http_error(e) then
      resp = self:error_response(ctx, e.status, e.message, e.extra, e.headers)
    else
      self.warn("ghlua sim: internal error on " .. req.method .. " " .. req.path .. ": " .. tostring(e))
      resp = self:error_response(ctx, 500, "Internal server error")
    end
  end
  local handled
  if ctx.chaos and ctx.chaos.after then
    handled = resp.status or 0
    resp = chaos_mod.response(ctx.chaos, ctx)
  end
  if ctx.rate_headers then
    resp.headers = merge(merge({}, ctx.rate_headers), resp.headers)
  end
  if ctx.chaos and ctx.chaos.delay_ms and ctx.chaos.delay_ms > 0 then
    resp.delay = (resp.delay or 0) + ctx.chaos.delay_ms / 1000
  end
  local status = resp.status or 0
  if not (ctx.route and ctx.route.uncounted) then
    self.state:count_request(status)
    self.chaos:record { method = req.method, path = req.path, query = chaos_mod.query_string(req),
      route = ctx.route and ctx.route.path or reply.null, version = req.headers["version"] or reply.null,
      status = resp.reset and "reset" or resp.close and "close" or status,
      at = math.floor(self.state.time() * 1000), chaos = ctx.chaos ~= nil,
      delayMs = resp.delay and math.floor(resp.delay * 1000 + 0.5) or nil, handled = handled,
      remaining = ctx.rate_headers and tonumber(ctx.rate_headers["X-RateLimit-Remaining"]) }
  end
  if self.log then
    self.log(string.format("%s %s %s %.1fms", req.method, req.path,
      resp.close and "close" or resp.reset and "reset" or tostring(status),
      (self.now() - t0) * 1000))
  end
  return resp
end

return M
