-- ghl.paginate: walking HighLevel's lists, in every style its endpoints
-- use, over any client that has :get and :request (the API client, and a
-- sandboxed recipe's stub of it). The style and the items' key come from
-- the operations table (ghl.api.ops) unless given:
--   meta        GET, startAfterId/startAfter from meta (GET /contacts/)
--   page        POST body page/pageLimit, then searchAfter (contacts search)
--   skip, offset, page_query   counters in the query
--   token       v3 pageSize/pageToken
--   paginate.iterate(client, path, params, {max=, style=, items=, method=,
--       version=, on_page=}) -> iterator over items
-- Mistakes (no style known) raise strings; API failures are the client's.
local cjson = require "cjson.safe"

local ops_ok, ops = pcall(require, "ghl.api.ops")
if not ops_ok then ops = nil end

local M = {}

local function op_for(method, path, v3)
  if not ops then return nil end
  return ops.op(method, path, v3)
end

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

local STYLES = {}

-- meta: GET with startAfterId/startAfter from meta (GET /contacts/, opportunities)
STYLES.meta = function(c, path, params, o, emit)
  local q = {}
  for k, v in pairs(params) do q[k] = v end
  q.limit = q.limit or 100
  local snake = path:find("/opportunities/search", 1, true)
  if snake and not q.location_id then q.location_id = c.location end
  if not snake and not q.locationId and c.location then q.locationId = c.location end
  while true do
    local page = c:get(path, q, { version = o.version })
    local items = page[o.items or first_array(page)] or {}
    if not emit(items, page.meta and page.meta.total) then return end
    local meta = page.meta or {}
    if #items < tonumber(q.limit) or not (meta.nextPageUrl or meta.startAfterId) or meta.nextPageUrl == cjson.null then return end
    q.startAfterId, q.startAfter = meta.startAfterId, meta.startAfter
  end
end

-- page: POST body page/pageLimit (or limit), switching to searchAfter when
-- the items carry it (deep paging).
STYLES.page = function(c, path, params, o, emit)
  local body = {}
  for k, v in pairs(params) do body[k] = v end
  local sizekey = o.size or (path:find("/opportunities", 1, true) and "limit" or "pageLimit")
  body[sizekey] = body[sizekey] or 100
  body.page = body.page or 1
  if not body.locationId and c.location then body.locationId = c.location end
  while true do
    local page = c:request(o.method or "POST", path, { body = body, version = o.version })
    local items = page[o.items or first_array(page)] or {}
    if not emit(items, page.total) then return end
    if #items < tonumber(body[sizekey]) then return end
    local last = items[#items]
    if type(last) == "table" and type(last.searchAfter) == "table" then
      body.searchAfter, body.page = last.searchAfter, nil
    else
      body.page = body.page + 1
    end
  end
end

local function counter_style(skipkey, limitkey)
  return function(c, path, params, o, emit)
    local q = {}
    for k, v in pairs(params) do q[k] = v end
    q[limitkey] = q[limitkey] or 100
    local skip = tonumber(q[skipkey]) or (skipkey == "page" and 1 or 0)
    while true do
      q[skipkey] = tostring(skip)
      local page = c:get(path, q, { version = o.version })
      local items = page[o.items or first_array(page)] or {}
      if not emit(items, page.count or page.total) then return end
      if #items < tonumber(q[limitkey]) then return end
      skip = skip + (skipkey == "page" and 1 or #items)
    end
  end
end
STYLES.skip = counter_style("skip", "limit")
STYLES.offset = counter_style("offset", "limit")
STYLES.page_query = counter_style("page", "limit")

-- token: v3 pageSize/pageToken, pagination.nextPageToken
STYLES.token = function(c, path, params, o, emit)
  local q = {}
  for k, v in pairs(params) do q[k] = v end
  q.pageSize = q.pageSize or 100
  while true do
    local page = c:get(path, q, { version = o.version or "v3" })
    local items = page[o.items or (page.items and "items") or first_array(page)] or {}
    local p = page.pagination or {}
    if not emit(items, p.totalRecords) then return end
    if not p.hasNextPage or not p.nextPageToken or p.nextPageToken == cjson.null then return end
    q.pageToken = p.nextPageToken
  end
end

-- iterate(client, path, params, {max=, style=, items=, method=, version=,
-- on_page=}) -> iterator over items.
function M.iterate(self, path, params, o)
  o = o or {}
  params = params or {}
  local op
  for _, m in ipairs(o.method and { o.method } or { "GET", "POST" }) do
    local candidate = op_for(m, path, o.version == "v3")
    if candidate and candidate.page and candidate.page.style then op = candidate; break end
  end
  local style = o.style or (op and op.page and op.page.style)
  if not style then
    error(("no pagination style known for %s: pass opts.style (meta, page, skip, offset, token, page_query)"):format(path), 3)
  end
  local run = STYLES[style] or error("unknown pagination style '" .. tostring(style) .. "'", 3)
  o.items = o.items or (op and op.page and op.page.items)
  o.size = o.size or (op and op.page and op.page.size)
  if style == "page" then o.method = o.method or (op and op.method) or "POST" end
  local max, count = o.max, 0
  return coroutine.wrap(function()
    run(self, path, params, o, function(items, total)
      for _, item in ipairs(items) do
        if max and count >= max then return false end
        count = count + 1
        coroutine.yield(item)
      end
      if o.on_page then o.on_page(count, total) end
      return not (max and count >= max)
    end)
  end)
end

return M
