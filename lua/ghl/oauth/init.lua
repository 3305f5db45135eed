-- ghl.oauth: HighLevel's OAuth 2.0 endpoints, one call each, with no state
-- of their own (the token store and automatic refresh live in ghl.auth).
--   authorize_url{...}, check_url(url, opts)      (from ghl.oauth.url)
--   exchange{client_id, client_secret, code, redirect_uri?, user_type?,
--            location_id? | company_id?}   (a Reconnect code's resource)
--   refresh{client_id, client_secret, refresh_token, user_type?,
--           location_id? | company_id?}    (the resource refreshed)
--   location_token{access_token, company_id, location_id, client_id?}
--   installed_locations{access_token, company_id, app_id, skip?, limit?, is_installed?}
--   reconnect{client_id, client_secret, location_id | company_id}
--   parse_callback(text) -> code, state   (a redirected URL or a bare code)
-- Every call raises a ghl.error on failure: transport errors as ghl.http
-- reports them, HighLevel's answers as kind "oauth" with status, message
-- (arrays joined), code (invalid_grant, invalid_client, ...) and a hint.
-- They all go through ghl.client's request path (throttle, 429s, a yield
-- inside ghl.parallel, one retry rule). Exchange and refresh are never
-- sent again once they may have reached HighLevel: their unknown outcome
-- is code "outcome_unknown".
local E = require "ghl.error"
local hints = require "ghl.hints"

local M = {}

local config = require "ghl.config"
M.API_BASE = config.API_BASE
M.TIMEOUT = 30   -- seconds per OAuth request, unless the call gives timeout

M.api_base = config.api_base

local message_of = hints.message_of
M.message_of = message_of

-- Turn a non-2xx token-endpoint answer into a ghl.error.
local function oauth_error(where, resp, body)
  local msg = message_of(body) or ("HTTP " .. resp.status .. " with no message")
  local code, hint = hints.lookup(msg)
  code = code or ("http_" .. resp.status)
  return E.new { kind = "oauth", where = where, status = resp.status, message = msg, code = code,
                 hint = hint, traceId = type(body) == "table" and body.traceId or nil }
end

-- Call the API host and decode the JSON answer; raise on failure. Every
-- call goes through ghl.client's request path (M.perform): the throttle
-- bucket of (app, resource), 429s waited out, a yield inside ghl.parallel,
-- and the one retry rule (ghl.client's M.decide). o: client_id and
-- resource (the bucket), owner (for messages), safe (may be sent again
-- after it may have reached the server), learns (false: the token endpoint
-- sends no rate-limit headers), unknown(why) -> the error when the outcome
-- is unknown.
local function call(where, req, o)
  local client = require "ghl.client"
  local path = req.path
  req.url = M.api_base() .. path
  req.path = nil
  req.headers = req.headers or {}
  req.headers.Accept = "application/json"
  req.timeout = req.timeout or M.TIMEOUT
  local x = { req = req, key = client.bucket_key(o.client_id, o.resource), owner = o.owner,
    where = where, path = path, safe = o.safe, learns = o.learns, unknown = o.unknown,
    answer_error = function(resp) return oauth_error(where, resp, resp:json()) end }
  local resp, err = client.perform(x)
  if not resp then error(err, 0) end
  local body, derr = resp:json()
  if type(body) ~= "table" then
    derr = derr or E.new { kind = "decode", message = "the answer is not a JSON object" }
    -- answered, but unreadable: for a refresh or an exchange the grant
    -- was used and the new pair is lost
    if not o.safe then
      local e = o.unknown(("HighLevel answered HTTP %d but the answer could not be read (%s)")
        :format(resp.status, derr.message))
      e.kind, e.code, e.where, e.status = e.kind or "oauth", "outcome_unknown", where, resp.status
      error(e, 0)
    end
    derr.where = where
    error(derr, 0)
  end
  return body
end

local function need(t, field, where)
  if type(t[field]) ~= "string" or t[field] == "" then
    error(string.format("%s: field '%s' must be a non-empty string", where, field), 3)
  end
  return t[field]
end

-- The resource id of t.location_id / t.company_id and "location ID" /
-- "company ID" for messages, or nil.
local function resource_of(t)
  if t.location_id then return t.location_id, "location " .. t.location_id end
  if t.company_id then return t.company_id, "company " .. t.company_id end
  return nil
end

-- exchange{client_id, client_secret, code, redirect_uri?, user_type?,
-- location_id? | company_id?}: the token-endpoint call for an authorization
-- code. Never sent again once it may have reached HighLevel (a code is
-- single-use): an unknown outcome raises code "outcome_unknown". The
-- location or company a Reconnect code is for picks the throttle bucket; a
-- login code's resource is unknown until the answer, so it uses the app's
-- token-endpoint bucket ("APPID:token").
function M.exchange(t)
  local client_id = need(t, "client_id", "oauth.exchange")
  local form = { client_id = client_id,
                 client_secret = need(t, "client_secret", "oauth.exchange"),
                 code = need(t, "code", "oauth.exchange"),
                 grant_type = "authorization_code",
                 redirect_uri = t.redirect_uri, user_type = t.user_type }
  local rid, owner = resource_of(t)
  return call("oauth.exchange", { method = "POST", path = "/oauth/token", form = form, timeout = t.timeout }, {
    client_id = client_id, resource = rid or "token", owner = owner or ("the token endpoint of app " .. client_id),
    safe = false, learns = false,
    unknown = function(why)
      return E.new { kind = "oauth", message = "the authorization code may have been used: " .. why,
        hint = "a code works once: approve the app again ('ghlua auth login') to get a new one" }
    end })
end

-- refresh{client_id, client_secret, refresh_token, user_type?,
-- location_id? | company_id?}:
-- never sent again once it may have reached HighLevel (the refresh token
-- rotates): an unknown outcome raises code "outcome_unknown", and the
-- caller must treat the refresh token as spent (ghl.auth recovers without
-- presenting it). The location or company refreshed is the bucket.
function M.refresh(t)
  local client_id = need(t, "client_id", "oauth.refresh")
  local form = { client_id = client_id,
                 client_secret = need(t, "client_secret", "oauth.refresh"),
                 refresh_token = need(t, "refresh_token", "oauth.refresh"),
                 grant_type = "refresh_token", user_type = t.user_type,
                 redirect_uri = t.redirect_uri }
  local rid, owner = resource_of(t)
  return call("oauth.refresh", { method = "POST", path = "/oauth/token", form = form, timeout = t.timeout }, {
    client_id = client_id, resource = rid or "token", owner = owner or ("the token endpoint of app " .. client_id),
    safe = false, learns = false,
    unknown = function(why)
      return E.new { kind = "oauth", message = "the refresh may have reached HighLevel, so the refresh token may be spent: " .. why,
        hint = "it is never presented again: 'ghlua auth doctor' recovers the token through the Reconnect API" }
    end })
end

-- location_token{access_token, company_id, location_id, client_id?}: an
-- agency call, throttled in the Company's bucket (client_id names the app;
-- without it the bucket is the company's for any app). Minting again only
-- yields another token, so it is retried like an idempotent request.
function M.location_token(t)
  local company = need(t, "company_id", "oauth.location_token")
  return call("oauth.location_token", {
    method = "POST", path = "/oauth/locationToken",
    headers = { Authorization = "Bearer " .. need(t, "access_token", "oauth.location_token"),
                Version = "2021-07-28" },
    form = { companyId = company,
             locationId = need(t, "location_id", "oauth.location_token") },
  }, { client_id = t.client_id or "agency", resource = company, owner = "company " .. company, safe = true })
end

-- installed_locations{access_token, company_id, app_id, skip?, limit?,
-- is_installed?}: a read, in the Company's bucket.
function M.installed_locations(t)
  local company = need(t, "company_id", "oauth.installed_locations")
  local app_id = need(t, "app_id", "oauth.installed_locations")
  return call("oauth.installed_locations", {
    method = "GET", path = "/oauth/installedLocations",
    headers = { Authorization = "Bearer " .. need(t, "access_token", "oauth.installed_locations"),
                Version = "2021-07-28" },
    query = { companyId = company, appId = app_id,
              skip = tostring(t.skip or 0), limit = tostring(t.limit or 100),
              isInstalled = t.is_installed ~= nil and tostring(t.is_installed) or nil },
  }, { client_id = app_id, resource = company, owner = "company " .. company, safe = true })
end

-- reconnect{client_id, client_secret, location_id | company_id}: a fresh
-- authorization code for an existing install. Each call only yields a new
-- code, so it is retried like an idempotent request.
function M.reconnect(t)
  if not t.location_id and not t.company_id then
    error("oauth.reconnect: give location_id or company_id", 2)
  end
  local client_id = need(t, "client_id", "oauth.reconnect")
  local rid, owner = resource_of(t)
  return call("oauth.reconnect", {
    method = "POST", path = "/oauth/reconnect",
    json = { clientKey = client_id,
             clientSecret = need(t, "client_secret", "oauth.reconnect"),
             locationId = t.location_id, companyId = t.company_id },
  }, { client_id = client_id, resource = rid, owner = owner, safe = true, learns = false })
end

local unescape = require("ghl.util").urldecode

-- Parse a query string into a table (last value wins).
function M.parse_query(q)
  local t = {}
  for pair in (q or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    t[unescape(k)] = unescape(v)
  end
  return t
end

-- parse_callback(text) -> code, state. Accepts the URL the browser was
-- redirected to, or the bare code. An error callback raises kind "oauth".
function M.parse_callback(text)
  text = (text or ""):match("^%s*(.-)%s*$")
  if text == "" then E.raise("usage", "no code given: paste the redirected URL or the code") end
  local query = text:match("^%a[%w+.-]*://[^?#]*%?([^#]*)") or text:match("^%?(.*)$")
  if not query then
    if text:find("[%s/?&=]") then
      E.raise("usage", "that is neither a redirected URL nor a code: paste the whole URL from the address bar")
    end
    return text, nil
  end
  local q = M.parse_query(query)
  if q.error then
    E.raise { kind = "oauth", code = q.error,
              message = "authorization refused: " .. q.error .. (q.error_description and (": " .. q.error_description) or ""),
              hint = "approve the app in the browser, or check its scopes with 'ghlua auth check'" }
  end
  if not q.code or q.code == "" then
    E.raise("usage", "the URL has no code parameter: copy the address after approving the app")
  end
  return q.code, q.state
end

setmetatable(M, { __index = function(t, k)
  if k == "authorize_url" or k == "check_url" then
    local url = require "ghl.oauth.url"
    rawset(t, "authorize_url", url.authorize_url)
    rawset(t, "check_url", url.check_url)
    return rawget(t, k)
  end
end })

return M
