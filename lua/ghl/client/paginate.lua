-- ghl.client.paginate: walking HighLevel's lists, in every style its endpoints
-- use, over any client that has :get and :request (the API client, and a
-- sandboxed recipe's stub of it). The style and the items' key come from
-- the operations table (ghl.api.ops) unless given:
--   meta        GET, startAfterId/startAfter from meta (GET /contacts/)
--   page        POST body page/pageLimit, then searchAfter (contacts search)
--   skip, offset, page_query   counters in the query
--   token       v3 pageSize/pageToken
--   paginate.iterate(client, path, params, {max=, style=, items=, method=,
--       version=, on_page=}) -> iterator over items
-- The iterator pulls: it asks for a page only when the items of the last
-- one are used up, in the caller's own coroutine, so inside ghl.parallel a
-- page request yields to the scheduler like any other request. on_page(n,
-- total) runs once a page's items are all taken (n: items so far).
-- Mistakes (no style known) raise strings; API failures are the client's.
-- A walk the server would keep going forever ends with a ghl.error of kind
-- "pagination": a cursor (startAfterId, searchAfter, pageToken) it sent
-- before, a page holding the same items as the one before (a counter it
-- ignores), more than M.MAX_PAGES pages, or a page that is not a JSON
-- object (an empty reply, a 204).
local json = require "ghl.json"
local E = require "ghl.error"

local ops = require "ghl.api.ops"

local M = {}

-- A bound on any one walk: 100,000 pages is 10 million items at the usual
-- 100 a page. Pass max= to stop sooner.
M.MAX_PAGES = 100000

local function first_array(t)
  if type(t) ~= "table" then return nil end
  local best
  for k, v in pairs(t) do
    if type(v) == "table" and (#v > 0 or next(v) == nil) and k ~= "meta" and k ~= "pagination" then
      if not best or #v > #t[best] then best = k end
    end
  end
  return best
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- ---- Guards: one per walk ----

local Walk = {}
Walk.__index = Walk

local function new_walk(method, path)
  return setmetatable({ what = method .. " " .. path, n = 0, seen = {}, last = nil }, Walk)
end

function Walk:fail(fmt, ...)
  E.raise { kind = "pagination", message = ("%s: " .. fmt .. "; the listing stops here rather than loop forever")
    :format(self.what, ...) }
end

local function describe(v)
  if v == true then return "an empty reply" end
  if v == nil then return "no reply" end
  if v == json.null then return "JSON null" end
  return "a " .. type(v)
end

-- The next page arrived: count it, and check that it is a JSON object.
function Walk:page(page)
  self.n = self.n + 1
  if type(page) ~= "table" then
    E.raise { kind = "pagination", message = ("%s: page %d is %s, not a JSON object"):format(self.what, self.n,
      describe(page)) }
  end
  if self.n > M.MAX_PAGES then
    E.raise { kind = "pagination", message = ("%s: more than %d pages; the listing stops here rather than loop"
      .. " forever"):format(self.what, M.MAX_PAGES),
      hint = { lua = "pass max to take fewer items (the page limit is ghl.client.paginate.MAX_PAGES)",
               cli = "pass --max N to take fewer items" } }
  end
end

-- The items of the page at key k (nil: the first array in it); refuses a
-- page that holds the same items as the one before.
function Walk:items(page, k)
  k = k or first_array(page)
  local items = k ~= nil and page[k] or nil
  if items == nil or items == json.null then return {} end
  if type(items) ~= "table" then self:fail("page %d has %s under '%s', not an array", self.n, describe(items), k) end
  local n = #items
  if n == 0 then self.last = nil; return items end
  local a, b = items[1], items[n]
  local fp
  local ida = type(a) == "table" and (a.id or a._id)
  local idb = type(b) == "table" and (b.id or b._id)
  if ida ~= nil and idb ~= nil then
    fp = n .. "\0" .. tostring(ida) .. "\0" .. tostring(idb)
  else
    fp = json.encode(items)
  end
  if fp ~= nil and fp == self.last then
    self:fail("page %d holds the same items as page %d (the server ignores the paging parameters)", self.n, self.n - 1)
  end
  self.last = fp
  return items
end

-- Numbers as the same text however the JSON decoder typed them (9, 9.0).
local function text(v)
  if type(v) == "number" then return ("%.17g"):format(v) end
  if type(v) == "table" then return json.encode(v) or tostring(v) end
  return tostring(v)
end

-- The cursor of the next request: refused when the walk used it already.
function Walk:cursor(name, value, shown)
  local key = text(value)
  if self.seen[key] then
    shown = text(shown == nil and value or shown)
    if #shown > 60 then shown = shown:sub(1, 57) .. "..." end
    self:fail("the server sent the cursor %s=%s again (after page %d)", name, shown, self.n)
  end
  self.seen[key] = true
end

-- ---- Styles ----
-- Each style(c, path, params, o, walk) returns fetch() -> items, total,
-- last (true when no page follows). A style keeps its state in upvalues.

local STYLES = {}

-- meta: GET with startAfterId/startAfter from meta (GET /contacts/, opportunities)
STYLES.meta = function(c, path, params, o, walk)
  local q = copy(params)
  q.limit = q.limit or 100
  local snake = path:find("/opportunities/search", 1, true)
  if snake and not q.location_id then q.location_id = c.location end
  if not snake and not q.locationId and c.location then q.locationId = c.location end
  local stuck   -- the page that said more follow but gave no cursor
  return function()
    if stuck then walk:fail("page %d points to a next page but gives no startAfterId to ask for it", stuck) end
    walk:cursor("startAfterId", text(q.startAfterId) .. "," .. text(q.startAfter), q.startAfterId)
    local page = c:get(path, q, { version = o.version })
    walk:page(page)
    local items = walk:items(page, o.items)
    local meta = type(page.meta) == "table" and page.meta or {}
    if #items < tonumber(q.limit) or not (meta.nextPageUrl or meta.startAfterId) or meta.nextPageUrl == json.null then
      return items, meta.total, true
    end
    if meta.startAfterId == nil or meta.startAfterId == json.null then stuck = walk.n end
    q.startAfterId, q.startAfter = meta.startAfterId, meta.startAfter
    return items, meta.total, false
  end
end

-- page: POST body page/pageLimit (or limit), switching to searchAfter when
-- the items carry it (deep paging).
STYLES.page = function(c, path, params, o, walk)
  local body = copy(params)
  local sizekey = o.size or (path:find("/opportunities", 1, true) and "limit" or "pageLimit")
  body[sizekey] = body[sizekey] or 100
  if body.searchAfter == nil then body.page = body.page or 1 end
  if not body.locationId and c.location then body.locationId = c.location end
  local stuck   -- the page whose last item gave no searchAfter after searchAfter paging began
  return function()
    if stuck then walk:fail("page %d's last item carries no searchAfter to go on from", stuck) end
    if body.searchAfter ~= nil then walk:cursor("searchAfter", body.searchAfter) end
    local page = c:request(o.method or "POST", path, { body = body, version = o.version })
    walk:page(page)
    local items = walk:items(page, o.items)
    if #items < tonumber(body[sizekey]) then return items, page.total, true end
    local last = items[#items]
    if type(last) == "table" and type(last.searchAfter) == "table" then
      body.searchAfter, body.page = last.searchAfter, nil
    elseif body.page then
      body.page = body.page + 1
    else
      stuck = walk.n
    end
    return items, page.total, false
  end
end

local function counter_style(skipkey, limitkey)
  return function(c, path, params, o, walk)
    local q = copy(params)
    q[limitkey] = q[limitkey] or 100
    local skip = tonumber(q[skipkey]) or (skipkey == "page" and 1 or 0)
    return function()
      q[skipkey] = tostring(skip)
      local page = c:get(path, q, { version = o.version })
      walk:page(page)
      local items = walk:items(page, o.items)
      local total = page.count or page.total
      if #items < tonumber(q[limitkey]) then return items, total, true end
      skip = skip + (skipkey == "page" and 1 or #items)
      return items, total, false
    end
  end
end
STYLES.skip = counter_style("skip", "limit")
STYLES.offset = counter_style("offset", "limit")
STYLES.page_query = counter_style("page", "limit")

-- token: v3 pageSize/pageToken, pagination.nextPageToken
STYLES.token = function(c, path, params, o, walk)
  local q = copy(params)
  q.pageSize = q.pageSize or 100
  return function()
    if q.pageToken ~= nil then walk:cursor("pageToken", q.pageToken) end
    local page = c:get(path, q, { version = o.version or "v3" })
    walk:page(page)
    local items = walk:items(page, o.items or (page.items ~= nil and "items" or nil))
    local p = type(page.pagination) == "table" and page.pagination or {}
    if not p.hasNextPage or not p.nextPageToken or p.nextPageToken == json.null then
      return items, p.totalRecords, true
    end
    q.pageToken = p.nextPageToken
    return items, p.totalRecords, false
  end
end

-- iterate(client, path, params, {max=, style=, items=, method=, version=,
-- on_page=}) -> iterator over items.
function M.iterate(self, path, params, o)
  o = o or {}
  params = params or {}
  local op
  for _, m in ipairs(o.method and { o.method } or { "GET", "POST" }) do
    local candidate = ops.op(m, path, o.version == "v3")
    if candidate and candidate.page and candidate.page.style then op = candidate; break end
  end
  local style = o.style or (op and op.page and op.page.style)
  if not style then
    error(("no pagination style known for %s: pass opts.style (meta, page, skip, offset, token, page_query)"):format(path), 3)
  end
  local make = STYLES[style] or error("unknown pagination style '" .. tostring(style) .. "'", 3)
  o.items = o.items or (op and op.page and op.page.items)
  o.size = o.size or (op and op.page and op.page.size)
  if style == "page" then o.method = o.method or (op and op.method) or "POST" end
  local walk = new_walk(style == "page" and o.method or "GET", path)
  local fetch = make(self, path, params, o, walk)
  local max, count = o.max, 0
  local items, pos, total, last, done = nil, 0, nil, false, max ~= nil and max <= 0
  return function()
    while not done do
      if items and pos < #items then
        if max and count >= max then done = true; break end
        pos, count = pos + 1, count + 1
        return items[pos]
      end
      if items then                                   -- a page used up
        if o.on_page then o.on_page(count, total) end
        items = nil
        if last or (max and count >= max) then done = true; break end
      end
      items, total, last = fetch()
      pos = 0
    end
    return nil
  end
end

return M
