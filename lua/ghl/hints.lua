-- ghl.hints: the catalogue of HighLevel error messages we know, what they
-- mean and what to do. One catalogue serves the token endpoint (ghl.oauth)
-- and the API client (ghl.client). lookup(message, ctx) returns a short code
-- and a one-line hint; ctx may carry {method, path, scopes (the operation's),
-- location (the client's), status, token (the stored token row used:
-- its granted scopes, app and type), static (the client was given its
-- token: token= or GHL_TOKEN), meta (the error body's meta)}. A hint that
-- names a way to do something differs by surface: under the command line
-- it names commands, flags and environment variables, under the Lua API
-- the call; such a hint is a table {lua = TEXT, cli = TEXT}, resolved for
-- the process's surface (ghl.error.wording) when it is looked up.
-- transport(err) gives the hint for a network error of the API client.
local E = require "ghl.error"

local M = {}

local function words(text)
  local out = {}
  for w in (text or ""):gmatch("%S+") do out[#out + 1] = w end
  return out
end

-- union(granted, needed) -> every scope of granted (a list or a
-- space-separated string) then those of needed it lacks; and the list of
-- those it lacked. A login grants only what it asks for, so a login asking
-- for more must ask for this union, never the needed ones alone.
function M.union(granted, needed)
  if type(granted) == "string" then granted = words(granted) end
  local out, seen, missing = {}, {}, {}
  for _, s in ipairs(granted or {}) do
    if not seen[s] then seen[s] = true; out[#out + 1] = s end
  end
  for _, s in ipairs(needed or {}) do
    if not seen[s] then seen[s] = true; out[#out + 1] = s; missing[#missing + 1] = s end
  end
  return out, missing
end

-- The login behind token row `row`: its flags and the scopes it granted.
-- A Location token minted from a stored agency (Company) token gets its
-- scopes from the agency's login, so that is the one to repeat.
local function login_of(row)
  if row.resource_type == "Location" and row.company_id then
    local ok, crow = pcall(function()
      return require("ghl.auth").store():get_token(row.app, row.company_id)
    end)
    if ok and crow and crow.kind == "oauth" and crow.resource_type == "Company" then
      return { flags = "--app " .. row.app .. " --user-type Company", granted = crow.scope, minted = true }
    end
  end
  return { flags = "--app " .. row.app .. (row.resource_type == "Company" and " --user-type Company" or ""),
           granted = row.scope }
end

-- more_scopes(row, needed) -> "ghlua auth login ... --scopes \"...\"", the
-- scopes it lacked, and whose login it is ("the agency token" for a
-- minted location token, else "the token"): the login that gives token
-- row `row` the needed scopes while keeping every scope it has.
-- Returns nil when the granted scopes are not known.
function M.more_scopes(row, needed)
  local login = login_of(row)
  if not login.granted then return nil end
  local all, missing = M.union(login.granted, needed)
  local cmd = ("ghlua auth login %s --scopes \"%s\""):format(login.flags, table.concat(all, " "))
  if login.minted then
    cmd = cmd .. (" (as the agency), then 'ghlua auth logout --app %s --location %s' so its location token is"
      .. " minted again with them"):format(row.app, row.resource_id)
  end
  return cmd, missing, login.minted and "the agency token" or "the token"
end

local function scope_hint(ctx)
  local need = ctx.scopes or {}
  local row = ctx.token
  if #need == 0 then
    return "the token lacks a scope this call needs: add it to the app, then log in again asking for it"
      .. " together with every scope the token has ('ghlua auth status --long' lists them)"
  end
  local want = table.concat(need, " ")
  local head = ("%s %s needs the scope %s"):format(ctx.method or "this call", ctx.path or "", want)
  if type(row) == "table" and row.kind == "pit" then
    return head .. (": add it to the Private Integration Token '%s' in HighLevel (Settings > Private Integrations),"
      .. " or use an OAuth token that has it"):format(row.name or row.app)
  end
  local cmd, missing, whose
  if type(row) == "table" and row.app then cmd, missing, whose = M.more_scopes(row, need) end
  if not cmd then
    -- the grant is not known here: a login grants only what it asks for
    return ("%s: add it to the app, then log in again asking for every scope the token has and that one:"
      .. " ghlua auth login --scopes \"<the scopes it has> %s\""):format(head, want)
  end
  if #missing == 0 then
    return ("%s, which %s was granted, yet HighLevel refused it: approve the app again: %s"):format(head, whose, cmd)
  end
  return ("%s: add %s to the app's scopes in the marketplace portal, then log in again asking for every scope"
    .. " %s has and %s: %s"):format(head, table.concat(missing, " "), whose, #missing == 1 and "that one" or "those", cmd)
end

-- Ordered: the first entry whose text occurs in the message wins.
M.catalogue = {
  { "refresh token is invalid", "invalid_grant",
    "the refresh token was already used or revoked; run 'ghlua auth doctor'" },
  { "authorization code", "invalid_grant",
    "authorization codes are single-use and short-lived: approve again with 'ghlua auth login'" },
  { "redirect URI does not match", "redirect_uri_mismatch",
    "the redirect URI must be exactly one registered on the app (scheme, host, port and path)" },
  { "Invalid client", "invalid_client",
    "check the client id (with its -suffix) and the client secret ('ghlua app add' or GHL_CLIENT_SECRET)" },
  { "Location is not active", "location_inactive",
    "the sub-account is paused or suspended; the same refresh token works again once it is active" },
  { "not authorized for this scope", "missing_scope", scope_hint },
  { "authClass type is not allowed", "wrong_token_type", {
    lua = "an agency (Company) token was used on a sub-account route: use a Location token"
      .. " ('ghl.client{location=ID}' mints one from the agency token)",
    cli = "an agency (Company) token was used on a sub-account route: use a Location token"
      .. " (--location ID mints one from a stored agency login)" } },
  { "does not have access to this location", "wrong_location", function(ctx)
    local whose = (ctx.location or "") ~= ""
      and ("the token belongs to location %s, but the request names another location: "):format(ctx.location)
      or "the token does not belong to the location the request names: "
    return { lua = whose .. "use a client for that location (ghl.client{location=ID})",
             cli = whose .. "use a token of that location (--location ID)" }
  end },
  { "Private Integration Tokens cannot", "pit_refused",
    "this endpoint needs an OAuth token; a Private Integration Token is refused here" },
  { "version header was not found", "missing_version", {
    lua = "send a Version header (ghlua picks it per endpoint; a custom request needs opts.version)",
    cli = "send a Version header (ghlua picks it per endpoint; for one it does not know, pass --version V)" } },
  { "version header is invalid", "bad_version",
    "use a published Version: 2021-07-28 (most endpoints), 2021-04-15 (calendars, conversations) or v3" },
  { "does not allow duplicated contacts", "duplicate_contact", function(ctx)
    local id = type(ctx.meta) == "table" and type(ctx.meta.contactId) == "string" and ctx.meta.contactId or nil
    return { lua = "a contact with this email or phone exists (its id is in err.meta.contactId): update it, or use ghl.contacts.upsert",
             cli = ("a contact with this email or phone exists%s: update it (PUT /contacts/%s), or send it to"
               .. " POST /contacts/upsert"):format(id and (" (id " .. id .. ")") or "", id or "{contactId}") }
  end },
  { "should not exist", "unknown_property",
    "remove the property from the body: this endpoint does not accept it (PUT /contacts/{id} refuses locationId, gender and companyName)" },
  { "Invalid JWT", "invalid_token", function(ctx)
    if ctx.static then
      return { lua = "the token given with token= is expired, revoked or unknown to this API",
               cli = "the token in GHL_TOKEN is expired, revoked or unknown to this API: set a valid one, or log in"
                 .. " ('ghlua auth login', refreshed automatically) and unset GHL_TOKEN" }
    end
    return "the access token is expired or revoked; it is refreshed automatically when stored by 'ghlua auth login'"
  end },
  { "Too Many Requests", "rate_limited", "slow down: ghlua throttles per app and location from the X-RateLimit headers" },
}

-- lookup(message, ctx) -> code, hint (nil, nil when unknown)
function M.lookup(message, ctx)
  if type(message) ~= "string" then return nil end
  for _, h in ipairs(M.catalogue) do
    if message:find(h[1], 1, true) then
      local hint = h[3]
      if type(hint) == "function" then hint = hint(ctx or {}) end
      return h[2], E.wording(hint)
    end
  end
  return nil
end

-- ---- Network errors ----

-- Hosts of HighLevel's API (and its other names): a failure to reach one
-- of them is the network's; any other host was named by GHLUA_API_BASE
-- (or a client's base), most often the simulator.
M.HIGHLEVEL_HOSTS = { "leadconnectorhq.com", "gohighlevel.com", "msgsndr.com" }

local function highlevel(origin)
  local host = tostring(origin or ""):match("^%a[%w+.-]*://%[?([^%]/:]*)")
  if not host then return false end
  host = host:lower()
  for _, h in ipairs(M.HIGHLEVEL_HOSTS) do
    if host == h or host:sub(-#h - 1) == "." .. h then return true end
  end
  return false
end
M.is_highlevel = highlevel

-- transport(err) -> hint for a transport error of the API client (ghl.http's
-- fields: kind, cause, origin, timeout), or nil. A host that is not
-- HighLevel's, or a refused connection, points at GHLUA_API_BASE and the
-- simulator; a certificate that does not verify at GHLUA_CA_BUNDLE (never
-- at turning verification off); a timeout at the setting that raises it.
function M.transport(err)
  local cause = err.cause
  local hl = highlevel(err.origin)
  local hint
  if cause == "tls_verify" then
    hint = "if the server has a certificate from a private CA, add that CA with GHLUA_CA_BUNDLE=FILE.pem (for"
      .. " 'ghlua sim --tls', its --cert file); else check the host name and this machine's clock"
  elseif cause == "tls" then
    hint = hl and "a proxy or firewall may be intercepting TLS: add its CA with GHLUA_CA_BUNDLE=FILE.pem"
      or { lua = "check the scheme in GHLUA_API_BASE (or the client's base=): https:// for a TLS server, http://"
             .. " for a plain one such as 'ghlua sim' without --tls",
           cli = "check the scheme in GHLUA_API_BASE: https:// for a TLS server, http:// for a plain one such as"
             .. " 'ghlua sim' without --tls" }
  elseif cause == "timeout" then
    local t = err.timeout and (" of " .. string.format("%g", err.timeout) .. " s") or ""
    hint = { lua = ("the server took longer than the request timeout%s: allow more with timeout = SECONDS"
               .. " (ghl.client{timeout = ...} or the request's opts.timeout)"):format(t),
             cli = ("the server took longer than the request timeout%s: allow more with --timeout SECONDS"
               .. " ('ghlua api')"):format(t) }
  elseif cause == "resolve_proxy" then
    hint = "check the proxy settings (https_proxy, http_proxy, no_proxy)"
  elseif hl then
    hint = "check this machine's network connection, DNS and proxy settings (https_proxy, no_proxy); to work"
      .. " offline, start the simulator ('ghlua sim') and point GHLUA_API_BASE at it"
  elseif cause == "resolve" then
    hint = { lua = "correct the host name in GHLUA_API_BASE (or the client's base=), or start the simulator"
               .. " ('ghlua sim') and point GHLUA_API_BASE at the URL it prints",
             cli = "correct the host name in GHLUA_API_BASE, or start the simulator ('ghlua sim') and point"
               .. " GHLUA_API_BASE at the URL it prints" }
  elseif cause == "refused" or cause == "unreachable" or cause == "connect_timeout" then
    hint = { lua = "nothing answers there: start the simulator ('ghlua sim') and point GHLUA_API_BASE (or the"
               .. " client's base=) at the URL it prints, or unset it to use HighLevel's API",
             cli = "nothing answers there: start the simulator ('ghlua sim') and point GHLUA_API_BASE at the URL"
               .. " it prints, or unset GHLUA_API_BASE to use HighLevel's API" }
  elseif err.kind == "network" then
    hint = { lua = "check that GHLUA_API_BASE (or the client's base=) points at HighLevel's API or the simulator,"
               .. " with the right scheme",
             cli = "check that GHLUA_API_BASE points at HighLevel's API or the simulator, with the right scheme" }
  end
  return hint and E.wording(hint)
end

local json = require "ghl.json"

local MAX_DEPTH = 8      -- nested error objects followed at most this deep
local MAX_PART = 200     -- bytes of an element shown as JSON

local text_of

-- The message of one array element: its own message, else the element
-- itself as compact JSON (cut at MAX_PART bytes).
local function part_of(v, depth)
  local m = text_of(v, depth)
  if m or type(v) ~= "table" then return m end
  local j = json.encode(v)
  if not j then return nil end
  return #j > MAX_PART and (j:sub(1, MAX_PART) .. "…") or j
end

-- The text of a JSON value as a message, or nil: a string as it is, a
-- number or boolean written out, an array's elements joined with ", ", an
-- object's `message`, else its `error`. Never raises, whatever the value.
text_of = function(v, depth)
  local t = type(v)
  if t == "string" then return v ~= "" and v or nil end
  if t == "number" then return v == v and string.format("%.14g", v) or "NaN" end
  if t == "boolean" then return tostring(v) end
  if t ~= "table" or depth > MAX_DEPTH then return nil end
  if v[1] ~= nil then
    local parts = {}
    for i = 1, #v do
      local m = part_of(v[i], depth + 1)
      if m then parts[#parts + 1] = m end
    end
    return #parts > 0 and table.concat(parts, ", ") or nil
  end
  return text_of(v.message, depth + 1) or text_of(v.error, depth + 1)
end

-- The human message of a HighLevel error body (decoded JSON, any shape):
-- message (arrays joined with ", "; nested error objects followed), else
-- error (a string or {message}); a body that is a JSON string is its own
-- message; else nil. Total: any value gives a string or nil.
function M.message_of(body)
  if type(body) ~= "table" and type(body) ~= "string" then return nil end
  return text_of(body, 0)
end

return M
