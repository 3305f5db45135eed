-- ghl.sim.v3: the v3 routes the simulator serves (Version "v3", route
-- family "v3"; FACTS §3, §7):
--   GET /oauth/installed-locations   agency OAuth token with oauth.readonly
--     (no PIT); companyId, appId (the app id or the full client id),
--     isInstalled, query, locationId as in the v2 /oauth/installedLocations;
--     AIP-158 paging instead of skip/limit: pageSize (1-100, default 20)
--     and pageToken, an opaque base64url token (the server's own, as
--     {"offset":N}) taken from a previous answer's pagination.
--     -> {items, pagination = {totalRecords (the locations matching the
--        filters, across pages: the v3 spec's wording, unlike the v2
--        count), hasNextPage, hasPrevPage, nextPageToken, prevPageToken
--        (null at either end), currentPageSize}, metadata =
--        {filterApplied, sortApplied}, installToFutureLocations}; no
--        estimatedTotalRecords, which the spec sends only when the exact
--        total is unknown
--   POST /oauth/location-token   agency OAuth token with oauth.write (no
--     PIT); form companyId, locationId, checked as the v2 locationToken
--     (a location where the app is not installed: 400); answers in
--     camelCase: accessToken, tokenType, expiresIn, refreshToken, scope,
--     locationId, userId, planId, appId, versionId
-- Errors: 422 (class-validator messages) for a missing companyId or appId,
-- a bad isInstalled or a pageSize out of range; the AIP envelope
-- {"error": {code, message, details, resolution}} for a pageToken that is
-- not one of ours (400 INVALID_ARGUMENT) and an appId that is not the
-- token's app (404 RESOURCE_NOT_FOUND); 403 for another company. Handlers
-- raise through reply.raise or return the AIP answer.
local reply = require "ghl.sim.reply"
local oauth = require "ghl.sim.oauth"

local M = {}

local array, null = reply.array, reply.null

M.MAX_PAGE_SIZE = 100
M.DEFAULT_PAGE_SIZE = 20

-- ---- Page tokens ----

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

-- Base64url (padding optional) -> bytes, or nil when malformed.
local function base64url_decode(s)
  s = s:gsub("=+$", "")
  if s:find("[^%w%-_]") or #s % 4 == 1 then return nil end
  local out, bits, nbits = {}, 0, 0
  for i = 1, #s do
    bits = (bits << 6) | (B64:find(s:sub(i, i), 1, true) - 1)
    nbits = nbits + 6
    if nbits >= 8 then
      nbits = nbits - 8
      out[#out + 1] = string.char((bits >> nbits) & 0xff)
    end
  end
  return table.concat(out)
end

function M.page_token(offset)
  return reply.base64url(reply.encode { offset = offset })
end

-- The offset in a page token, or nil when the token is not ours.
function M.token_offset(token)
  local raw = base64url_decode(token)
  local t = raw and reply.decode(raw)
  local n = type(t) == "table" and math.tointeger(t.offset)
  if not n or n < 0 then return nil end
  return n
end

-- ---- AIP errors ----

function M.aip_error(status, code, message, details, resolution)
  return reply.json(status, { error = { code = code, message = message, details = details or {},
    resolution = resolution } })
end

-- ---- GET /oauth/installed-locations ----

local function page_size(q)
  local v = q.pageSize
  if v == nil or v == "" then return M.DEFAULT_PAGE_SIZE end
  local n = math.tointeger(tonumber(v))
  if not n then reply.invalid { "pageSize must be an integer number" } end
  if n < 1 then reply.invalid { "pageSize must not be less than 1" } end
  if n > M.MAX_PAGE_SIZE then reply.invalid { "pageSize must not be greater than " .. M.MAX_PAGE_SIZE } end
  return n
end

local function installed_locations(ctx)
  local state, q = ctx.state, ctx.query
  oauth.check_installed_query(q)
  local size = page_size(q)
  local offset = 0
  if q.pageToken ~= nil and q.pageToken ~= "" then
    offset = M.token_offset(q.pageToken)
    if not offset then
      return M.aip_error(400, "INVALID_ARGUMENT", "The page token is invalid.",
        { field = "pageToken", value = q.pageToken },
        "Pass the nextPageToken or prevPageToken of a previous response, or leave pageToken out for the first page.")
    end
  end
  local list, _, _, future = oauth.installed_items(state, ctx.token, q)
  if not list then
    return M.aip_error(404, "RESOURCE_NOT_FOUND", string.format("The requested App '%s' was not found.", q.appId),
      { resource = "App", identifier = q.appId },
      "Verify the App exists and you have permission to access it.")
  end
  local items = array()
  for i = offset + 1, math.min(#list, offset + size) do items[#items + 1] = list[i] end
  local has_next = offset + size < #list
  local has_prev = offset > 0
  local filters = { companyId = q.companyId }
  for _, k in ipairs { "isInstalled", "query", "locationId" } do
    if q[k] ~= nil and q[k] ~= "" then filters[k] = q[k] end
  end
  if filters.isInstalled then filters.isInstalled = filters.isInstalled == "true" end
  state:count_oauth("installed_locations")
  return 200, {
    items = items,
    pagination = {
      totalRecords = #list,
      hasNextPage = has_next, hasPrevPage = has_prev,
      nextPageToken = has_next and M.page_token(offset + size) or null,
      prevPageToken = has_prev and M.page_token(math.max(0, offset - size)) or null,
      currentPageSize = #items,
    },
    metadata = { filterApplied = filters, sortApplied = { createdAt = "asc" } },
    installToFutureLocations = future,
  }
end

-- ---- POST /oauth/location-token ----

local function location_token(ctx)
  local b = oauth.mint_location_token(ctx)
  return 200, { accessToken = b.access_token, tokenType = b.token_type, expiresIn = b.expires_in,
    refreshToken = b.refresh_token, scope = b.scope, locationId = b.locationId, userId = b.userId,
    planId = b.planId, appId = b.appId, versionId = b.versionId, traceId = b.traceId }
end

M.routes = {
  { method = "GET", path = "/oauth/installed-locations", handler = installed_locations,
    scope = "oauth.readonly", classes = { company = true }, oauth_only = true },
  { method = "POST", path = "/oauth/location-token", handler = location_token, scope = "oauth.write",
    classes = { company = true }, oauth_only = true, form = true },
}
for _, r in ipairs(M.routes) do r.family = "v3" end

return M
