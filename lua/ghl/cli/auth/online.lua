-- ghl.cli.auth.online: does the API accept a token? One cheap
-- authenticated GET per token, for `auth doctor` and `auth pit add`.
--   online.check{token=, type="Location"|"Company", id=, scopes=, pit=} -> result
--   online.check_all({fn, ...}) -> results in order, CONCURRENCY at a time
-- The call is GET /locations/{id} for a Location token (or, when the
-- token's granted scopes are known and lack locations.readonly but have
-- contacts.readonly, GET /contacts/?locationId=ID&limit=1) and GET
-- /locations/search?companyId=ID&limit=1 for a Company token. It goes
-- through ghl.client with the token as a static bearer token, so it
-- presents no refresh token and writes nothing to the store: the caller
-- decides what to do about the answer. What the answer proves:
--   2xx                                  ok: the token works
--   401 "not authorized for this scope"  ok: HighLevel read the token, and
--                                        only refused the call's scope
--   401 "Invalid JWT" (or "Invalid token") invalid: expired, revoked, or
--                                        not a token at all
--   "Location is not active"             inactive
--   403 "does not have access to this location"  the token is another
--                                        location's
--   401 "authClass type is not allowed"  the token is of the other type
--   no answer (refused, DNS, timeout, TLS)  unreachable, naming the base URL
--   anything else (5xx, 404, ...)        unknown: what the API said
-- result = {ok = boolean, state = "ok" | "ok_scope" | "invalid" |
-- "inactive" | "wrong_location" | "wrong_type" | "unreachable" | "error",
-- call = "GET /locations/ID", status = HTTP status or nil, says = what
-- happened (a phrase, secrets never in it), fix = what to run (nil when
-- ok)}. Never raises for what the API or the network does.
local E = require "ghl.error"

local M = {}

M.CONCURRENCY = 8
M.TIMEOUT = 20   -- seconds per try

local function has(scopes, s)
  if type(scopes) == "string" then return (" " .. scopes .. " "):find(" " .. s .. " ", 1, true) ~= nil end
  for _, v in ipairs(scopes or {}) do if v == s then return true end end
  return false
end

-- The call for a token: method, path (template), query.
local function probe(t)
  if t.type == "Company" then
    return "/locations/search", { companyId = t.id, limit = "1" }
  end
  if t.scopes and not has(t.scopes, "locations.readonly") and has(t.scopes, "contacts.readonly") then
    return "/contacts/", { locationId = t.id, limit = "1" }
  end
  return "/locations/{locationId}", nil
end

local OTHER = { Location = "Company", Company = "Location" }

-- check{token, type, id, scopes (granted, when known), pit (a Private
-- Integration Token: the fixes say so)} -> result (see above)
function M.check(t)
  local path, query = probe(t)
  local co = { token = t.token, timeout = M.TIMEOUT }
  if t.type == "Company" then co.company = t.id else co.location = t.id end
  local ok, c = pcall(require("ghl.client").new, co)
  if not ok then error(c, 0) end   -- a bug: new with a token raises for nothing expected
  local shown = path:gsub("{locationId}", t.id)
  local call = "GET " .. shown .. (query and ("?" .. require("ghl.http").encode(query)) or "")
  local r = { call = call }
  local sent, resp = pcall(c.request, c, "GET", path, { query = query, raw = true })
  if not sent then
    local err = resp
    if not E.is(err) then error(err, 0) end
    local why = tostring(err.message or err.kind):gsub("^%u+ %S+: ", "")
    if err.kind == "rate" then
      r.ok, r.state, r.status = true, "ok", 429
      r.says = "the API accepts the token (its request budget is used up for now: " .. why .. ")"
      return r
    end
    r.ok, r.state = false, "unreachable"
    r.says = ("cannot reach the API at %s (%s)"):format(c.base, why)
    r.fix = "check the network, or GHLUA_API_BASE (requests go to " .. c.base .. "); 'ghlua sim' serves an"
      .. " offline API"
    return r
  end
  r.status = resp.status
  local err = resp.error
  if not err then
    r.ok, r.state, r.says = true, "ok", ("%s answered %d"):format(call, resp.status)
    return r
  end
  local msg = tostring(err.message)
  local said = ("%s answered %s%s"):format(call, resp.status, msg ~= "" and (" " .. msg) or "")
  local code = err.code
  if code == "missing_scope" or code == "pit_refused" then
    r.ok, r.state = true, "ok_scope"
    r.says = ("the API accepts the token (%s: it lacks that call's scope, which proves the token was read)")
      :format(said)
  elseif code == "invalid_token" or (resp.status == 401 and msg:find("Invalid token", 1, true)) then
    r.ok, r.state = false, "invalid"
    r.says = ("the API refuses the token (%s): it is expired, revoked or not a token"):format(said)
    if t.pit then
      r.fix = "check that the whole token was pasted; a deleted or rotated PIT must be made again in HighLevel"
        .. " (Settings > Private Integrations) and stored with 'ghlua auth pit add'"
    else
      r.fix = "log in again ('ghlua auth login" .. (t.type == "Company" and " --user-type Company" or "") .. "')"
    end
  elseif code == "location_inactive" then
    r.ok, r.state = false, "inactive"
    r.says = ("HighLevel says the location is not active (%s)"):format(said)
    r.fix = "reactivate the sub-account in HighLevel; the token works again afterwards"
  elseif code == "wrong_location" then
    r.ok, r.state = false, "wrong_location"
    r.says = ("the token does not have access to location %s (%s): it is another location's"):format(t.id, said)
    r.fix = "give the location the token belongs to (--location ID)"
  elseif code == "wrong_token_type" then
    r.ok, r.state = false, "wrong_type"
    r.says = ("it is not a %s token (%s): it looks like a %s token"):format(t.type, said, OTHER[t.type] or "other")
    r.fix = ("store it as a %s token (--%s ID)"):format(OTHER[t.type], (OTHER[t.type] or "location"):lower())
  else
    r.ok, r.state = false, "error"
    r.says = ("the check could not tell (%s)"):format(said)
    r.fix = err.hint or "try again later; run with -v to see the exchange"
  end
  return r
end

-- check_all({fn, ...}) -> {result, ...} in order: each fn() returns a
-- result (it calls check, and maybe more), at most CONCURRENCY at a time
-- (ghl.parallel, so their requests overlap). A function that fails gives a
-- result that says so.
function M.check_all(fns)
  local results = require("ghl.loop").run(fns, { concurrency = M.CONCURRENCY, progress = false })
  for i, v in ipairs(results) do
    if E.is(v) or type(v) ~= "table" then
      results[i] = { ok = false, state = "error", call = "",
                     says = "the check failed: " .. tostring(E.is(v) and v.message or v),
                     fix = "run with GHLUA_DEBUG=1 and report the error" }
    end
  end
  return results
end

return M
