-- ghl.oauth: HighLevel's OAuth 2.0 endpoints, one call each, with no state
-- of their own (the token store and automatic refresh live in ghl.auth).
--   authorize_url{...}, check_url(url, opts)      (from ghl.oauth.url)
--   exchange{client_id, client_secret, code, redirect_uri?, user_type?}
--   refresh{client_id, client_secret, refresh_token, user_type?}
--   location_token{access_token, company_id, location_id}
--   installed_locations{access_token, company_id, app_id, skip?, limit?, is_installed?}
--   reconnect{client_id, client_secret, location_id | company_id}
--   parse_callback(text) -> code, state   (a redirected URL or a bare code)
-- Every call raises a ghl.error on failure: transport errors as ghl.http
-- reports them, HighLevel's answers as kind "oauth" with status, message
-- (arrays joined), code (invalid_grant, invalid_client, ...) and a hint.
local http = require "ghl.http"
local E = require "ghl.error"
local hints = require "ghl.hints"

local M = {}

M.API_BASE = "https://services.leadconnectorhq.com"

function M.api_base()
  local b = os.getenv("GHLUA_API_BASE")
  return (b and b ~= "") and b:gsub("/+$", "") or M.API_BASE
end

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

-- POST/GET to the API host and decode the JSON answer; raise on failure.
local function call(where, req)
  req.url = M.api_base() .. req.path
  req.path = nil
  req.headers = req.headers or {}
  req.headers.Accept = "application/json"
  req.timeout = req.timeout or 30
  local resp, err = http.request(req)
  if not resp then err.where = where; error(err, 0) end
  local body, derr = resp:json()
  if resp.status >= 200 and resp.status < 300 then
    if type(body) ~= "table" then derr.where = where; error(derr, 0) end
    return body
  end
  error(oauth_error(where, resp, body), 0)
end

local function need(t, field, where)
  if type(t[field]) ~= "string" or t[field] == "" then
    error(string.format("%s: field '%s' must be a non-empty string", where, field), 3)
  end
  return t[field]
end

function M.exchange(t)
  local form = { client_id = need(t, "client_id", "oauth.exchange"),
                 client_secret = need(t, "client_secret", "oauth.exchange"),
                 code = need(t, "code", "oauth.exchange"),
                 grant_type = "authorization_code",
                 redirect_uri = t.redirect_uri, user_type = t.user_type }
  return call("oauth.exchange", { method = "POST", path = "/oauth/token", form = form })
end

function M.refresh(t)
  local form = { client_id = need(t, "client_id", "oauth.refresh"),
                 client_secret = need(t, "client_secret", "oauth.refresh"),
                 refresh_token = need(t, "refresh_token", "oauth.refresh"),
                 grant_type = "refresh_token", user_type = t.user_type,
                 redirect_uri = t.redirect_uri }
  return call("oauth.refresh", { method = "POST", path = "/oauth/token", form = form, timeout = t.timeout })
end

function M.location_token(t)
  return call("oauth.location_token", {
    method = "POST", path = "/oauth/locationToken",
    headers = { Authorization = "Bearer " .. need(t, "access_token", "oauth.location_token"),
                Version = "2021-07-28" },
    form = { companyId = need(t, "company_id", "oauth.location_token"),
             locationId = need(t, "location_id", "oauth.location_token") },
  })
end

function M.installed_locations(t)
  return call("oauth.installed_locations", {
    method = "GET", path = "/oauth/installedLocations",
    headers = { Authorization = "Bearer " .. need(t, "access_token", "oauth.installed_locations"),
                Version = "2021-07-28" },
    query = { companyId = need(t, "company_id", "oauth.installed_locations"),
              appId = need(t, "app_id", "oauth.installed_locations"),
              skip = tostring(t.skip or 0), limit = tostring(t.limit or 100),
              isInstalled = t.is_installed ~= nil and tostring(t.is_installed) or nil },
  })
end

function M.reconnect(t)
  if not t.location_id and not t.company_id then
    error("oauth.reconnect: give location_id or company_id", 2)
  end
  return call("oauth.reconnect", {
    method = "POST", path = "/oauth/reconnect",
    json = { clientKey = need(t, "client_id", "oauth.reconnect"),
             clientSecret = need(t, "client_secret", "oauth.reconnect"),
             locationId = t.location_id, companyId = t.company_id },
  })
end

local function unescape(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

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
