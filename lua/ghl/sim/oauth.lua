-- ghl.sim.oauth: HighLevel's OAuth endpoints on services.leadconnectorhq.com
-- (FACTS §2, §3):
--   POST /oauth/token              form only (a JSON body is not read, so it
--                                  fails validation: 422); grant_type
--                                  authorization_code | refresh_token; no
--                                  Version or bearer needed
--   POST /oauth/reconnect          JSON {clientKey, clientSecret, locationId |
--                                  companyId} -> {authorizationCode, expiresAt};
--                                  400 "The app is not installed on this
--                                  location." (or "company") where
--                                  installedLocations does not show it
--   POST /oauth/locationToken      Version; agency OAuth token with oauth.write;
--                                  form (or JSON) companyId, locationId;
--                                  only for a location where the app is
--                                  installed (400 "The app is not installed
--                                  on this location.")
--   GET  /oauth/installedLocations Version; agency OAuth token with
--                                  oauth.readonly; companyId, appId (the
--                                  app id or the full client id), skip,
--                                  limit (default 20), isInstalled, query,
--                                  locationId; count = every location
--                                  under the company (the spec's "total
--                                  location count", whatever the filters);
--                                  installToFutureLocations as consented
-- A location is installed when a consent approved it: its own (a Location
-- install) or a Company consent approving it, all locations, or, with
-- future locations, one added later (ghl.sim.state's install model).
-- Minting a location token installs nothing. A Company token's answer
-- carries approvedLocations (the locations where the app is installed
-- now), isBulkInstallation, approveAllLocations and
-- installToFutureLocations (FACTS §2).
-- Access and refresh tokens are RS256-looking JWTs (random signature) with
-- HighLevel's payload fields; access tokens expire after token_ttl seconds
-- (then 401 Invalid JWT on the API), refresh tokens after a year. Refresh
-- tokens rotate and are single-use. Errors use HighLevel's bodies
-- {statusCode, message, error, traceId}: 422 with a message array for
-- validation, 401 for client credentials, 400 "Invalid grant: ..." for
-- codes and refresh tokens, 400 "Location is not active".
--
-- The token endpoint's answer can be delayed (state.oauth.delay_ms) for
-- crash tests, through the server's delay= response option (the simulator
-- never blocks). Phase "after": the request takes effect at once (a refresh
-- token is already rotated while the answer waits). Phase "before": its
-- effect (code or refresh token consumed, new pair valid) is held until the
-- new pair is first presented, which proves the client got the answer; a
-- request presenting the same code or refresh token again drops the held
-- effect, as if the first request had never been processed. So a client
-- killed during the delay has consumed nothing, however long the test then
-- takes. stats.oauth: token_received counts requests on arrival, in_flight
-- the answers still delayed, held the effects still held. Handlers raise
-- through reply.raise.
local reply = require "ghl.sim.reply"
local scopes_mod = require "ghl.sim.scopes"

local M = {}

local array = reply.array

M.REFRESH_TTL = 365 * 86400

-- The wordings, for specs and the help text.
M.MSG = {
  client = "Invalid client: client credentials are invalid",
  code = "Invalid grant: authorization code is invalid",
  redirect = "Invalid grant: redirect URI does not match the authorization request",
  refresh = "Invalid grant: refresh token is invalid",
  inactive = "Location is not active",
  grant = "Invalid parameter: grantType",
  company = "The token does not have access to this company.",
  app = "The token does not have access to this app.",
  location = "Location not found in this company",
  not_installed_location = "The app is not installed on this location.",
  not_installed_company = "The app is not installed on this company.",
}

local GRANT_TYPES = { authorization_code = true, refresh_token = true, client_credentials = true }
local USER_TYPES = { Company = true, Location = true }

local function present(v)
  return type(v) == "string" and v ~= ""
end

local function copy_list(t)
  return table.move(t, 1, #t, 1, {})
end

-- The scopes of list a token of auth_class can hold.
function M.scopes_for(list, auth_class)
  if auth_class == "Company" then return copy_list(list) end
  local out = {}
  for _, s in ipairs(list) do
    if scopes_mod.holds(s, "Location") then out[#out + 1] = s end
  end
  return out
end

-- The fields of a grant (code, refresh token) that tokens are minted from.
local function grant_of(g)
  return { client_id = g.client_id, auth_class = g.auth_class, location = g.location,
    company = g.company, scopes = g.scopes, user_id = g.user_id }
end

-- ---- Minting tokens ----

local JWT_HEADER = reply.base64url('{"alg":"RS256","typ":"JWT"}')

local function jwt(state, payload)
  return JWT_HEADER .. "." .. reply.base64url(reply.encode(payload)) .. "."
    .. reply.base64url(state:random_raw(256))
end

-- Mint an access/refresh pair for grant {client_id, auth_class ("Location"
-- | "Company"), location, company, scopes (array), user_id}. Returns the
-- token-endpoint body and a commit() that makes the pair valid; nothing is
-- registered before commit() runs. A Company answer describes the app's
-- install on the company as it is now.
function M.issue(ctx, grant)
  local state = ctx.state
  local app = state:app(grant.client_id)
  local ttl = state.oauth.token_ttl
  local now = state.time()
  -- JWT NumericDates in whole seconds (RFC 7519 §2), as HighLevel's; the
  -- token is valid until now + ttl, which exp never passes
  local iat = math.floor(now)
  local class_id = grant.auth_class == "Company" and grant.company or grant.location
  local refresh_id = state:random_hex(12)
  local function payload(exp, extra)
    local p = { authClass = grant.auth_class, authClassId = class_id, source = "INTEGRATION",
      sourceId = grant.client_id, channel = "OAUTH", primaryAuthClassId = class_id,
      oauthMeta = { scopes = array(copy_list(grant.scopes)), client = app.app_id,
        versionId = app.app_id, clientKey = grant.client_id },
      iat = iat, exp = math.floor(exp) }
    for k, v in pairs(extra or {}) do p[k] = v end
    return p
  end
  local access = jwt(state, payload(now + ttl))
  local refresh = jwt(state, payload(now + M.REFRESH_TTL, { refreshTokenId = refresh_id }))
  local body = {
    access_token = access, token_type = "Bearer", expires_in = ttl, refresh_token = refresh,
    scope = table.concat(grant.scopes, " "), refreshTokenId = refresh_id,
    userType = grant.auth_class, companyId = grant.company, userId = grant.user_id,
    isBulkInstallation = false, traceId = ctx.trace_id,
  }
  if grant.auth_class == "Location" then
    body.locationId = grant.location
  else
    local ins = state:installed(grant.client_id, nil)
    body.approvedLocations = array(state:installed_locations(grant.client_id))
    body.isBulkInstallation = ins and ins.bulk or false
    body.approveAllLocations = ins and ins.approve_all or false
    body.installToFutureLocations = ins and ins.future or false
  end
  local function commit()
    state:register_token { token = access, kind = grant.auth_class:lower(), source = "oauth",
      app = grant.client_id, location = grant.location, company = grant.company,
      scopes = scopes_mod.set(grant.scopes), scope_list = copy_list(grant.scopes),
      user_id = grant.user_id, expires_at = now + ttl }
    local r = grant_of(grant)
    r.id, r.expires_at = refresh_id, now + M.REFRESH_TTL
    state.refresh_tokens[refresh] = r
  end
  return body, commit
end

-- ---- POST /oauth/token ----

local function client_or_401(state, id, secret)
  local app = present(id) and state:app(id)
  if not app or secret ~= app.client_secret then
    state:count_oauth("client_invalid")
    reply.raise(401, M.MSG.client)
  end
  return app
end

-- The request's form fields: only an application/x-www-form-urlencoded body
-- is read, as on HighLevel.
local function token_fields(req)
  local ct = (req.headers["content-type"] or ""):lower()
  if ct:find("application/x-www-form-urlencoded", 1, true) then return reply.form_decode(req.body) end
  return {}
end

-- Check and carry out one token request. Returns the success body, the
-- effect (a function that consumes the grant and activates the new pair),
-- and the grant key (code or refresh token).
local function process(ctx, f)
  local state = ctx.state
  local msgs = {}
  if not present(f.grant_type) then
    msgs = { "grant_type must be a valid enum value", "grant_type should not be empty" }
  elseif not GRANT_TYPES[f.grant_type] then
    msgs = { "grant_type must be a valid enum value" }
  end
  if f.user_type ~= nil and not USER_TYPES[f.user_type] then
    msgs[#msgs + 1] = "user_type must be a valid enum value"
  end
  if #msgs > 0 then
    state:count_oauth("invalid_request")
    reply.invalid(msgs)
  end
  local gt = f.grant_type
  local tr = state.stats.oauth.token_requests
  tr[gt] = (tr[gt] or 0) + 1
  local app = client_or_401(state, f.client_id, f.client_secret)

  if gt == "authorization_code" then
    if not present(f.code) then
      state:count_oauth("invalid_request")
      reply.invalid { "code should not be empty" }
    end
    state:drop_held(f.code)
    local g = state:code(f.code)
    if not g or g.client_id ~= app.client_id then
      state:count_oauth("code_invalid")
      reply.raise(400, M.MSG.code)
    end
    if present(f.redirect_uri) and g.redirect_uri and f.redirect_uri ~= g.redirect_uri then
      state:count_oauth("code_invalid")
      reply.raise(400, M.MSG.redirect)
    end
    local body, commit = M.issue(ctx, grant_of(g))
    return body, function()
      if g.used then return end
      g.used = true
      commit()
      state:count_oauth("code_ok")
    end, f.code
  elseif gt == "refresh_token" then
    if not present(f.refresh_token) then
      state:count_oauth("invalid_request")
      reply.invalid { "refresh_token should not be empty" }
    end
    state:drop_held(f.refresh_token)
    local r = state.refresh_tokens[f.refresh_token]
    if not r and state:apply_held(f.refresh_token) then r = state.refresh_tokens[f.refresh_token] end
    if r and r.used and r.client_id == app.client_id then
      state:count_oauth("refresh_reuse")
      reply.raise(400, M.MSG.refresh)
    end
    if not r or r.client_id ~= app.client_id or state.time() >= r.expires_at then
      state:count_oauth("refresh_invalid")
      reply.raise(400, M.MSG.refresh)
    end
    if r.auth_class == "Location" then
      local loc = state:location(r.location)
      if not loc or not loc.active then
        state:count_oauth("refresh_inactive")
        reply.raise(400, M.MSG.inactive)
      end
    end
    local body, commit = M.issue(ctx, grant_of(r))
    return body, function()
      if r.used then return end
      r.used = true
      commit()
      state:count_oauth("refresh_ok")
    end, f.refresh_token
  end
  reply.raise(400, M.MSG.grant)   -- client_credentials: in the enum, no flow
end

local function keep_http_error(e)
  if reply.is_http_error(e) then return e end
  return debug.traceback(tostring(e), 2)
end

local function token(ctx)
  local state = ctx.state
  state:count_oauth("token_received")
  local delay = state.oauth.delay_ms / 1000
  local hold = delay > 0 and state.oauth.delay_phase == "before"
  local ok, body, effect, key = xpcall(process, keep_http_error, ctx, token_fields(ctx.req))
  local resp
  if ok then
    if hold then state:hold(key, effect, { body.access_token, body.refresh_token }) else effect() end
    resp = reply.json(200, body)
  elseif reply.is_http_error(body) then
    resp = ctx.app:error_response(ctx, body.status, body.message, body.extra, body.headers)
  else
    error(body, 0)
  end
  if delay > 0 then
    resp.delay = delay
    state:add_answer(state.real_now() + delay)
  end
  return resp
end

-- ---- POST /oauth/reconnect ----

local function reconnect(ctx)
  local state = ctx.state
  local b = ctx.req.body and reply.decode(ctx.req.body)
  if type(b) ~= "table" then b = {} end
  local msgs = {}
  if not present(b.clientKey) then msgs[#msgs + 1] = "clientKey should not be empty" end
  if not present(b.clientSecret) then msgs[#msgs + 1] = "clientSecret should not be empty" end
  if #msgs > 0 then reply.invalid(msgs) end
  local app = client_or_401(state, b.clientKey, b.clientSecret)
  local grant
  if present(b.locationId) then
    local ins = state:installed(app.client_id, b.locationId)
    if not ins then
      state:count_oauth("not_installed")
      reply.raise(400, M.MSG.not_installed_location)
    end
    grant = { auth_class = "Location", location = b.locationId,
      scopes = M.scopes_for(ins.scopes, "Location") }
  elseif present(b.companyId) then
    local ins = b.companyId == state.company.id and state:installed(app.client_id, nil)
    if not ins then
      state:count_oauth("not_installed")
      reply.raise(400, M.MSG.not_installed_company)
    end
    grant = { auth_class = "Company", scopes = copy_list(ins.scopes) }
  else
    reply.invalid { "locationId or companyId should not be empty" }
  end
  grant.client_id, grant.company, grant.user_id = app.client_id, state.company.id, state.user_id
  local code, expires_at = state:new_code(grant)
  state:count_oauth("reconnects")
  return 200, { authorizationCode = code, expiresAt = reply.iso8601(expires_at * 1000),
    traceId = ctx.trace_id }
end

-- ---- POST /oauth/locationToken ----

-- The checks and the minting POST /oauth/locationToken and its v3 twin
-- share: 422 for a missing companyId or locationId, 403 for another
-- company, 400 for a location outside the company, 400 "The app is not
-- installed on this location." where the app is not installed (no status
-- or wording is documented for it: the spec lists 400 {statusCode,
-- message} among the answers). Returns the token body (v2 field names)
-- with appId and versionId.
function M.mint_location_token(ctx)
  local state, tok = ctx.state, ctx.token
  local f = type(ctx.body) == "table" and ctx.body or {}
  local msgs = {}
  if not present(f.companyId) then msgs[#msgs + 1] = "companyId should not be empty" end
  if not present(f.locationId) then msgs[#msgs + 1] = "locationId should not be empty" end
  if #msgs > 0 then reply.invalid(msgs) end
  if f.companyId ~= tok.company then reply.raise(403, M.MSG.company) end
  local loc = state:location(f.locationId)
  if not loc or loc.company ~= tok.company then reply.raise(400, M.MSG.location) end
  local app = state:app(tok.app)
  if not app then reply.raise(401, M.MSG.client) end
  if not state:installed(app.client_id, loc.id) then
    state:count_oauth("not_installed")
    reply.raise(400, M.MSG.not_installed_location)
  end
  local scopes = M.scopes_for(tok.scope_list or {}, "Location")
  local body, commit = M.issue(ctx, { client_id = app.client_id, auth_class = "Location",
    location = loc.id, company = tok.company, scopes = scopes, user_id = tok.user_id or state.user_id })
  commit()
  state:count_oauth("location_tokens")
  body.appId, body.versionId = app.app_id, app.app_id
  body.isBulkInstallation = nil
  return body
end

local function location_token(ctx)
  return 200, M.mint_location_token(ctx)
end

-- ---- GET /oauth/installedLocations ----

-- The query checks GET /oauth/installedLocations and its v3 twin share:
-- companyId, appId, isInstalled (422).
function M.check_installed_query(q)
  local msgs = {}
  if not present(q.companyId) then msgs[#msgs + 1] = "companyId should not be empty" end
  if not present(q.appId) then msgs[#msgs + 1] = "appId should not be empty" end
  if q.isInstalled ~= nil and q.isInstalled ~= "true" and q.isInstalled ~= "false" then
    msgs[#msgs + 1] = "isInstalled must be a boolean value"
  end
  if #msgs > 0 then reply.invalid(msgs) end
end

-- The company's locations matching q's filters (isInstalled, query,
-- locationId) as {_id, name, address, isInstalled, versionId, installedAt}
-- items, the app, the number of locations under the company and whether
-- the app installs itself on future locations. Raises 403 for another
-- company; returns nil when appId is not the token's app.
function M.installed_items(state, tok, q)
  if q.companyId ~= tok.company then reply.raise(403, M.MSG.company) end
  local app = state:app(tok.app)
  if not app or (q.appId ~= app.app_id and q.appId ~= app.client_id) then return nil end
  local ins = state.installs[app.client_id].locations
  local want = q.isInstalled == "true"
  local words = present(q.query) and q.query:lower()
  local list = {}
  for _, loc in ipairs(state:company_locations()) do
    local installed = ins[loc.id] ~= nil
    if (q.isInstalled == nil or installed == want)
        and (not words or loc.name:lower():find(words, 1, true))
        and (not present(q.locationId) or q.locationId == loc.id) then
      local item = { _id = loc.id, name = loc.name, address = state:address(loc), isInstalled = installed }
      if installed then
        item.versionId = app.app_id
        item.installedAt = reply.iso8601(ins[loc.id].at_ms)
      end
      list[#list + 1] = item
    end
  end
  local company = state:installed(app.client_id, nil)
  return list, app, #state:company_locations(), company and company.future or false
end

local function installed_locations(ctx)
  local state, q = ctx.state, ctx.query
  M.check_installed_query(q)
  local skip, limit = reply.count_param(q, "skip", 0), reply.count_param(q, "limit", 20)
  local list, _, total, future = M.installed_items(state, ctx.token, q)
  if not list then reply.raise(403, M.MSG.app) end
  local page = array()
  for i = skip + 1, math.min(#list, skip + limit) do page[#page + 1] = list[i] end
  state:count_oauth("installed_locations")
  return 200, { locations = page, count = total, installToFutureLocations = future }
end

M.routes = {
  { method = "POST", path = "/oauth/token", handler = token, public = true },
  { method = "POST", path = "/oauth/reconnect", handler = reconnect, public = true },
  { method = "POST", path = "/oauth/locationToken", handler = location_token, scope = "oauth.write",
    classes = { company = true }, oauth_only = true, form = true },
  { method = "GET", path = "/oauth/installedLocations", handler = installed_locations,
    scope = "oauth.readonly", classes = { company = true }, oauth_only = true },
}
for _, r in ipairs(M.routes) do r.family = "oauth" end

return M
