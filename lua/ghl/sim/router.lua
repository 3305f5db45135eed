-- ghl.sim.router: a route table matched in order. A route is
--   {method = "GET" | "*", path = "/contacts/:contactId", handler = f,
--    family = "contacts", scope = "contacts.readonly",
--    public = true (no Version, token or rate limit: /__sim, /__fault,
--    /oauth/token, /oauth/reconnect, the consent screen),
--    classes = {location = true, company = true} (the token authClasses
--    accepted; default Location only: a sub-account route),
--    oauth_only = true (Private Integration Tokens refused),
--    form = true (the body may be form-encoded or JSON),
--    body_location = true (the JSON body's locationId is checked against
--    the token, as the DTO carries one)}
-- ":name" segments capture one path segment into params. Trailing slashes
-- are ignored ("/contacts/" and "/contacts" are the same route, as in
-- Express). Route modules export a list of routes; add() appends them, so
-- earlier (more specific) routes win. Matching never raises.
local M = {}
local Router = {}
Router.__index = Router

function M.new()
  return setmetatable({ routes = {} }, Router)
end

local function split(path)
  local segs = {}
  for seg in path:gmatch("[^/]+") do segs[#segs + 1] = seg end
  return segs
end

-- Append routes (one route table or a list of them).
function Router:add(routes)
  if routes.handler then routes = { routes } end
  for _, r in ipairs(routes) do
    assert(r.method and r.path and r.handler, "route needs method, path, handler")
    r.segments = split(r.path)
    self.routes[#self.routes + 1] = r
  end
end

local function match_segments(route_segs, segs)
  if #route_segs ~= #segs then return nil end
  local params = {}
  for i, rs in ipairs(route_segs) do
    if rs:sub(1, 1) == ":" then
      params[rs:sub(2)] = segs[i]
    elseif rs ~= segs[i] then
      return nil
    end
  end
  return params
end

-- Returns route, params for (method, path), or nil when nothing matches.
function Router:match(method, path)
  local segs = split(path)
  for _, r in ipairs(self.routes) do
    if r.method == method or r.method == "*" then
      local params = match_segments(r.segments, segs)
      if params then return r, params end
    end
  end
  return nil
end

return M
