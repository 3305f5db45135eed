-- ghl.sim.auth: the checks every API route goes through before its handler,
-- with HighLevel's observed answers: the Version header (401 "version header
-- was not found." / "version header is invalid"), the bearer token (401
-- "Invalid JWT": unknown or expired), the token kind (401 for a Private
-- Integration Token on an OAuth-only route, and "This authClass type is not
-- allowed to access this scope." for a Company token on a sub-account route
-- or a Location token on an agency route), the token's scope (401 "The
-- token is not authorized for this scope.") and the location the request
-- names (403 "The token does not have access to this location."); with
-- --strict-version also the family's own Version (401). Each check raises
-- through reply.raise.
local reply = require "ghl.sim.reply"

local M = {}

-- The published API versions (FACTS §5).
M.VERSIONS = {
  ["2021-04-15"] = true, ["2021-07-28"] = true, ["2023-02-21"] = true, ["v3"] = true,
}

-- Returns the Version header value, or raises 401.
function M.check_version(req)
  local v = req.headers["version"]
  if v == nil or v == "" then
    reply.raise(401, "version header was not found.")
  end
  if not M.VERSIONS[v] then
    reply.raise(401, "version header is invalid")
  end
  return v
end

-- Each route family's own Version (FACTS §5); route.version overrides.
M.FAMILY_VERSIONS = {
  contacts = "2021-07-28", locations = "2021-07-28", opportunities = "2021-07-28",
  oauth = "2021-07-28", users = "2021-07-28",
  calendars = "2021-04-15", conversations = "2021-04-15",
  v3 = "v3",
}

-- --strict-version: raises 401 "version header is invalid" when version
-- (already known to be published) is not the route family's own. Stricter
-- than HighLevel, which accepts any published version (FACTS §14).
function M.check_family_version(route, version)
  local own = route.version or M.FAMILY_VERSIONS[route.family]
  if own and version ~= own then
    reply.raise(401, "version header is invalid")
  end
end

-- Returns the token record for the request's bearer token, or raises 401.
function M.check_token(state, req)
  local h = req.headers["authorization"] or ""
  local token = h:match("^[Bb][Ee][Aa][Rr][Ee][Rr]%s+(%S+)%s*$")
  local rec = token and state:token(token)
  if not rec then reply.raise(401, "Invalid JWT") end
  return rec
end

M.PIT_REFUSED = "Private Integration Tokens cannot be used on this route: use an Agency OAuth access token."
M.WRONG_CLASS = "This authClass type is not allowed to access this scope."
M.NO_SCOPE = "The token is not authorized for this scope."

-- Token kinds a route accepts when it does not say (route.classes):
-- sub-account routes take Location tokens only.
M.LOCATION_ONLY = { location = true }

-- Raises 401 unless the route accepts this kind of token: route.oauth_only
-- refuses PITs (Agency-Access-Only / Location-Access-Only in the specs);
-- route.classes is a set of authClasses ({location=true, company=true}).
function M.check_class(token, route)
  if route.oauth_only and token.source == "pit" then reply.raise(401, M.PIT_REFUSED) end
  if not (route.classes or M.LOCATION_ONLY)[token.kind] then reply.raise(401, M.WRONG_CLASS) end
end

-- Raises 401 unless the token carries scope (nil scopes = every scope).
function M.check_scope(token, scope)
  if scope and token.scopes and not token.scopes[scope] then
    reply.raise(401, M.NO_SCOPE)
  end
end

-- Can this token act on location_id? A Location token on its own location;
-- a Company token on its company's locations (state needed to tell).
function M.can_access(token, location_id, state)
  if token.kind == "location" then return token.location == location_id end
  if token.kind == "company" and state then
    local loc = state:location(location_id)
    return loc ~= nil and loc.company == token.company
  end
  return false
end

-- Raises 403 unless the token may act on location_id.
function M.check_location(token, location_id, state)
  if location_id ~= nil and not M.can_access(token, location_id, state) then
    reply.raise(403, "The token does not have access to this location.")
  end
end

-- Every locationId a request names: path parameter, query, and the JSON
-- body when the route's DTO has a locationId (with_body); on other routes a
-- body locationId is left to the DTO validation (422).
function M.request_locations(params, query, body, with_body)
  local out = {}
  if params and params.locationId then out[#out + 1] = params.locationId end
  if query and query.locationId then out[#out + 1] = query.locationId end
  if with_body and type(body) == "table" and type(body.locationId) == "string" then
    out[#out + 1] = body.locationId
  end
  return out
end

return M
