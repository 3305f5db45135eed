-- Generates lua/ghl/api/operations.lua, the operations table behind
-- ghl.api.ops (Version header, scopes, token types, pagination, required
-- query parameters and required JSON body fields per endpoint), from
-- HighLevel's OpenAPI specs (FACTS §5, §7, §12). Run from the repository
-- root:
--   build/ghlua tools/gen_operations.lua /work/shared/highlevel/openapi > lua/ghl/api/operations.lua
-- Reads every operation of apps/*.json and apps/v3/*.json (the shared
-- common-schemas files have no paths) and writes one row per operation,
-- sorted by path, method and flavour (v2 before v3), so the output is
-- deterministic; rows are lines of text, one long string per first path
-- segment, so that loading the table builds nothing and ghl.api.ops parses
-- only the rows its lookups need. An operation that declares no scopes (or
-- no token types) takes those of its twin in the other flavour (same method
-- and path). Where the specs are silent or wrong, FIXUPS below says what
-- FACTS knows instead.
-- A spec file that does not decode, an unknown security scheme, or a fix-up
-- that no longer finds its operation is a bug in the input or here: the
-- script stops with an error.
local cjson = require "cjson"

local dir = assert(arg[1], "usage: ghlua tools/gen_operations.lua OPENAPI_DIR > lua/ghl/api/operations.lua")

local METHODS = { "GET", "POST", "PUT", "PATCH", "DELETE" }
local METHOD_ORDER = {}
for i, m in ipairs(METHODS) do METHOD_ORDER[m] = i end

-- Security scheme → token type letter; lower case = OAuth token only (no PIT).
local SCHEMES = {
  bearer = "L", ["Location-Access"] = "L", ["Location-Access-Only"] = "l",
  ["Agency-Access"] = "C", ["Agency-Access-Only"] = "c",
}

-- Known facts the specs leave out (FACTS §2, §7, §13.10), keyed "METHOD path"
-- for v2 rows and "METHOD path v3" for v3 rows. `page` replaces the derived
-- pagination; `auth = false` marks calls made with client credentials
-- instead of a bearer token. (GET /contacts/ needs none: its startAfterId and
-- startAfter make it "meta" although its response schema lacks the meta.)
local FIXUPS = {
  -- Empty SearchBodyV2DTO and no 200 schema; fields observed by the community.
  ["POST /contacts/search"] = { page = { s = "page", i = "contacts", n = "pageLimit", b = true } },
  ["POST /contacts/search v3"] = { page = { s = "page", i = "contacts", n = "pageLimit", b = true } },
  -- The token endpoint takes client credentials in the body, no bearer token.
  ["POST /oauth/token"] = { auth = false },
  ["POST /oauth/token v3"] = { auth = false },
}

-- ---- Reading the specs ----

local function stem(file)
  return file:match("([^/]+)%.json$")
end

local function decode(file)
  local f = assert(io.open(file, "rb"))
  local text = f:read("a")
  f:close()
  local ok, doc = pcall(cjson.decode, text)
  assert(ok, file .. ": " .. tostring(doc))
  return doc
end

-- A schema with local $refs followed and allOf merged; nil for refs into
-- other files (the shared error DTOs) or cycles.
local function resolve(doc, s, depth)
  depth = depth or 0
  if type(s) ~= "table" or depth > 16 then return nil end
  local ref = s["$ref"]
  if ref then
    local name = ref:match("^#/components/schemas/(.+)$")
    local schemas = type(doc.components) == "table" and doc.components.schemas
    return name and type(schemas) == "table" and resolve(doc, schemas[name], depth + 1) or nil
  end
  if type(s.allOf) == "table" then
    local merged = { type = "object", properties = {}, required = {} }
    for _, part in ipairs(s.allOf) do
      local p = resolve(doc, part, depth + 1)
      if p and type(p.properties) == "table" then
        for k, v in pairs(p.properties) do merged.properties[k] = v end
      end
      for _, name in ipairs(p and type(p.required) == "table" and p.required or {}) do
        merged.required[#merged.required + 1] = name
      end
    end
    return merged
  end
  return s
end

local function json_schema(doc, content)
  if type(content) ~= "table" then return nil end
  local c = content["application/json"]
  if type(c) ~= "table" then
    local types = {}
    for ct in pairs(content) do types[#types + 1] = ct end
    table.sort(types)
    c = content[types[1]]
  end
  return c and resolve(doc, c.schema)
end

local function props(schema)
  return schema and type(schema.properties) == "table" and schema.properties or {}
end

-- The Version header of an operation: its enum (first value) or default.
local function version_of(op)
  for _, p in ipairs(type(op.parameters) == "table" and op.parameters or {}) do
    if p.name == "Version" and p["in"] == "header" and type(p.schema) == "table" then
      local enum = p.schema.enum
      if type(enum) == "table" and type(enum[1]) == "string" then return enum[1] end
      if type(p.schema.default) == "string" then return p.schema.default end
    end
  end
  return nil
end

-- Scopes (sorted, unique, space-separated) and token letters ("L", "C",
-- "lC", ...; Location first) from the security requirements.
local function security_of(op)
  local scopes, seen, letters = {}, {}, {}
  for _, req in ipairs(type(op.security) == "table" and op.security or {}) do
    for scheme, list in pairs(req) do
      local letter = assert(SCHEMES[scheme], "unknown security scheme " .. scheme)
      local up = letter:upper()
      -- A type once allowed with a PIT stays so.
      if letters[up] == nil or letter == up then letters[up] = letter end
      for _, s in ipairs(list) do
        if not seen[s] then seen[s] = true; scopes[#scopes + 1] = s end
      end
    end
  end
  table.sort(scopes)
  return table.concat(scopes, " "), (letters.L or "") .. (letters.C or "")
end

-- The array property holding the items of the 200 response: the only array,
-- else the one named like a literal path segment (last first), "items" or
-- "data".
local function items_of(doc, op, path)
  local r = type(op.responses) == "table" and (op.responses["200"] or op.responses["201"])
  local schema = type(r) == "table" and json_schema(doc, r.content)
  local arrays = {}
  for k, v in pairs(props(schema)) do
    local t = resolve(doc, v)
    if t and t.type == "array" then arrays[#arrays + 1] = k end
  end
  if #arrays == 1 then return arrays[1] end
  local wanted = { "items", "data" }
  for seg in path:gmatch("[^/]+") do
    if not seg:find("{", 1, true) then table.insert(wanted, 1, seg) end
  end
  for _, want in ipairs(wanted) do
    for _, k in ipairs(arrays) do
      if k == want then return k end
    end
  end
  return nil
end

-- Pagination (FACTS §7): style s, items i, page-size parameter n, cursor
-- parameter c (token, cursor and after styles), response field r holding the
-- next cursor, b = the paging fields go in the JSON body.
--   meta        query startAfterId + startAfter, response meta.nextPageUrl
--   token       v3 AIP-158 query pageSize + pageToken, pagination.nextPageToken
--   skip/offset query (or body) skip or offset + limit
--   cursor      query cursor (or next): an opaque value from the response
--   page_query  query page (+ limit or pageSize)
--   after       query startAfter*/last*Id: the id or sort value of the last item
--   page        body page + pageLimit or limit, with searchAfter
local function paging_of(doc, op, method, path)
  local q, last = {}, nil
  for _, p in ipairs(type(op.parameters) == "table" and op.parameters or {}) do
    if p["in"] == "query" and type(p.name) == "string" then
      q[p.name] = p
      if p.name:match("^last%u%w*Id$") then last = p.name end
    end
  end
  local body = {}
  if type(op.requestBody) == "table" then body = props(json_schema(doc, op.requestBody.content)) end
  local r = type(op.responses) == "table" and op.responses["200"]
  local resp = type(r) == "table" and props(json_schema(doc, r.content)) or {}
  local meta = props(resolve(doc, resp.meta))
  local pagination = props(resolve(doc, resp.pagination))
  local function numeric(p)
    local s = type(p.schema) == "table" and p.schema or {}
    return s.type == "number" or s.type == "integer" or tonumber(p.example or s.example or s.default) ~= nil
  end
  local size = q.limit and "limit" or q.pageSize and "pageSize" or nil
  local page
  if (q.startAfterId and q.startAfter) or ((q.startAfterId or q.startAfter) and meta.nextPageUrl) then
    page = { s = "meta", n = size }
  elseif q.pageToken then
    page = { s = "token", n = size, c = "pageToken", r = pagination.nextPageToken and "pagination.nextPageToken" or nil }
  elseif q.skip then
    page = { s = "skip", n = size }
  elseif q.offset then
    page = { s = "offset", n = size }
  elseif q.cursor or q.next then
    local field
    for _, k in ipairs { "nextCursor", "next", "cursor" } do
      if resp[k] then field = field or k end
    end
    page = { s = "cursor", n = size, c = q.cursor and "cursor" or "next", r = field }
  elseif q.page and numeric(q.page) then
    page = { s = "page_query", n = size }
  elseif q.startAfterId or q.startAfter or q.startAfterDate or last then
    page = { s = "after", n = size,
             c = q.startAfterId and "startAfterId" or q.startAfter and "startAfter" or q.startAfterDate and "startAfterDate" or last }
  elseif body.page then
    page = { s = "page", n = body.pageLimit and "pageLimit" or body.limit and "limit" or nil, b = true }
  elseif body.skip then
    page = { s = "skip", n = body.limit and "limit" or nil, b = true }
  elseif body.offset then
    page = { s = "offset", n = body.limit and "limit" or nil, b = true }
  end
  local items = (page or method == "GET") and items_of(doc, op, path) or nil
  if not page and not items then return nil end
  page = page or {}
  page.i = items
  return page
end

-- Names of the required query parameters, in the spec's order: the
-- operation's own and those of its path item (an operation's parameter
-- replaces the path item's of the same name and location), local $refs
-- (#/components/parameters/...) followed.
local function query_of(doc, item, op)
  local function param(p)
    local ref = type(p) == "table" and p["$ref"]
    if ref then
      local name = ref:match("^#/components/parameters/(.+)$")
      local params = type(doc.components) == "table" and doc.components.parameters
      p = name and type(params) == "table" and params[name] or nil
    end
    return type(p) == "table" and type(p.name) == "string" and p or nil
  end
  local list, seen = {}, {}
  local function add(params)
    for _, raw in ipairs(type(params) == "table" and params or {}) do
      local p = param(raw)
      if p then
        local key = tostring(p["in"]) .. " " .. p.name
        if not seen[key] then
          seen[key] = true
          if p["in"] == "query" and p.required == true then
            assert(not p.name:find("%s"), "query parameter name with a space: " .. p.name)
            list[#list + 1] = p.name
          end
        end
      end
    end
  end
  add(op.parameters)
  add(item.parameters)
  return table.concat(list, " ")
end

-- Names of the required top-level fields of the JSON request body, in the
-- spec's order (unique); empty when the body is not JSON (a form, a file
-- upload) or declares none.
local function body_of(doc, op)
  local rb = type(op.requestBody) == "table" and op.requestBody
  local content = rb and type(rb.content) == "table" and rb.content
  local c = content and content["application/json"]
  local schema = type(c) == "table" and resolve(doc, c.schema)
  local list, seen = {}, {}
  for _, name in ipairs(schema and type(schema.required) == "table" and schema.required or {}) do
    if type(name) == "string" and not seen[name] then
      assert(not name:find("%s"), "body field name with a space: " .. name)
      seen[name] = true
      list[#list + 1] = name
    end
  end
  return table.concat(list, " ")
end

local function summary_of(op)
  local s = type(op.summary) == "string" and op.summary or ""
  s = s:gsub("%s+", " "):match("^%s*(.-)%s*$")
  if #s > 80 then s = s:sub(1, 77):gsub("[\128-\191]*$", ""):gsub("%s*%S*$", "") .. "..." end
  return s
end

-- ---- Collecting rows ----

local files = {}
local find = assert(io.popen("find '" .. dir:gsub("'", "'\\''") .. "/apps' -name '*.json'"))
for file in find:lines() do
  if not file:find("/common/", 1, true) then files[#files + 1] = file end
end
find:close()
table.sort(files)
assert(#files > 0, "no spec files under " .. dir .. "/apps")

local rows, defaults, used = {}, {}, {}
for _, file in ipairs(files) do
  local doc = decode(file)
  local family, v3 = stem(file), file:find("/v3/[^/]+$") ~= nil
  local counts = {}
  for path, item in pairs(type(doc.paths) == "table" and doc.paths or {}) do
    for key, op in pairs(item) do
      local method = key:upper()
      if METHOD_ORDER[method] and type(op) == "table" then
        local scopes, tokens = security_of(op)
        local row = {
          m = method, p = path, v = version_of(op), s = scopes, d = summary_of(op), t = tokens,
          f = family, x = v3 or nil, g = paging_of(doc, op, method, path), q = query_of(doc, item, op),
          b = body_of(doc, op),
        }
        local fix = FIXUPS[method .. " " .. path .. (v3 and " v3" or "")]
        if fix then
          used[method .. " " .. path .. (v3 and " v3" or "")] = true
          if fix.page then row.g = fix.page end
          if fix.auth == false then row.a = false end
        end
        if row.v then counts[row.v] = (counts[row.v] or 0) + 1 end
        rows[#rows + 1] = row
      end
    end
  end
  -- The family's default Version: the one most of its operations declare.
  local best, n = v3 and "v3" or "2021-07-28", 0
  local names = {}
  for v in pairs(counts) do names[#names + 1] = v end
  table.sort(names)
  for _, v in ipairs(names) do
    if counts[v] > n then best, n = v, counts[v] end
  end
  defaults[family] = best
end
for k in pairs(FIXUPS) do assert(used[k], "fix-up finds no operation: " .. k) end

-- v2 and v3 twins (same method and path) are one backend route: where one
-- declares no scopes or no token types, take the other's.
local twins = {}
for _, r in ipairs(rows) do
  local k, flavour = r.m .. " " .. r.p, r.x and "v3" or "v2"
  twins[k] = twins[k] or {}
  assert(not twins[k][flavour], "two " .. flavour .. " specs declare " .. k)
  twins[k][flavour] = r
end
for _, r in ipairs(rows) do
  local other = twins[r.m .. " " .. r.p][r.x and "v2" or "v3"]
  if other then
    if r.s == "" then r.s = other.s end
    if r.t == "" then r.t = other.t end
  end
end

table.sort(rows, function(a, b)
  if a.p ~= b.p then return a.p < b.p end
  if a.m ~= b.m then return METHOD_ORDER[a.m] < METHOD_ORDER[b.m] end
  if (a.x or false) ~= (b.x or false) then return not a.x end
  return a.f < b.f
end)

-- ---- Writing ----

local function q(s) return string.format("%q", s) end

-- A path's first segment (nil for the root path): the key of `first`, and
-- the group its row is filed under, except that rows whose first segment is
-- a placeholder (or that have none) go to group "", which ghl.api.ops reads
-- before any other.
local function first_segment(path)
  return path:match("^/([^/]+)")
end

local function group_of(path)
  local seg = first_segment(path)
  if not seg or seg:match("^{(.+)}$") then return "" end
  return seg
end

-- A row's fields (see the header written below), as strings.
local function cells_of(r)
  local g = r.g or {}
  assert(not r.g or g.s or g.i, "pagination without style or items: " .. r.m .. " " .. r.p)
  assert(r.p ~= '"', "a path of \" (the short form's mark): " .. r.m)
  local cells = {
    r.m, r.p, r.x and "1" or "", r.v or "", r.f, r.s, r.t, r.a == false and "0" or "", r.q, r.b, r.d,
    g.s or "", g.i or "", g.n or "", g.c or "", g.r or "", g.b and "1" or "",
  }
  for _, c in ipairs(cells) do
    assert(not c:find("[\t\r\n]"), "tab or line break in a field of " .. r.m .. " " .. r.p)
  end
  return cells
end

-- The line of row r, prev being the row above in its group: the short form
-- when r is the v3 twin of prev and differs only in fields 3 to 5, else
-- every field with the trailing empty ones left out.
local function row_text(r, prev)
  local cells = cells_of(r)
  if prev and r.x and not prev.x and r.m == prev.m and r.p == prev.p then
    local above, same = cells_of(prev), true
    for i = 6, #cells do same = same and cells[i] == above[i] end
    if same then return table.concat({ r.m, '"', cells[3], cells[4], cells[5] }, "\t") end
  end
  while cells[#cells] == "" do cells[#cells] = nil end
  return table.concat(cells, "\t")
end

-- first: the default Version of the family owning most v2 operations under
-- each first segment (ties: the family that sorts first).
local first_counts = {}
for _, r in ipairs(rows) do
  local seg = first_segment(r.p)
  if not r.x and seg then
    local c = first_counts[seg] or {}
    first_counts[seg] = c
    c[r.f] = (c[r.f] or 0) + 1
  end
end
local first = {}
for seg, counts in pairs(first_counts) do
  local names = {}
  for f in pairs(counts) do names[#names + 1] = f end
  table.sort(names)
  local best, n = nil, 0
  for _, f in ipairs(names) do
    if counts[f] > n then best, n = f, counts[f] end
  end
  first[seg] = assert(defaults[best])
end

-- groups: the rows under each group, one per line, in the order of `rows`.
local groups, last = {}, {}
for _, r in ipairs(rows) do
  local key = group_of(r.p)
  groups[key] = groups[key] or {}
  table.insert(groups[key], row_text(r, last[key]) .. "\n")
  last[key] = r
end
for key, lines in pairs(groups) do groups[key] = table.concat(lines) end

-- The level of the long brackets around the groups: the lowest whose
-- closing bracket occurs in no group, so no row can end its string early.
local level = 0
for _, text in pairs(groups) do
  while text:find("]" .. ("="):rep(level) .. "]", 1, true) do level = level + 1 end
end
local open, close = "[" .. ("="):rep(level) .. "[", "]" .. ("="):rep(level) .. "]"

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

local out = {
  "-- GENERATED by tools/gen_operations.lua from HighLevel's OpenAPI specs (FACTS §5, §7, §12); do not edit.",
  "-- Regenerate from the repository root with:",
  "--   build/ghlua tools/gen_operations.lua /work/shared/highlevel/openapi > lua/ghl/api/operations.lua",
  "-- defaults: spec family (file stem) -> the Version most of its operations declare.",
  "-- first: first path segment -> the default Version of the family owning most v2",
  "-- operations under it.",
  "-- groups: first path segment (\"\": a placeholder or none) -> its operations, one per",
  "-- line, sorted by path, method and flavour (v2 first), ghl.api.ops parsing a group",
  "-- only when a lookup needs it. Fields, tab-separated, trailing empty ones left out:",
  "--   1 method, 2 path template, 3 v3 spec (1 or empty), 4 Version header (empty: none",
  "--   declared), 5 family, 6 scopes (space-separated), 7 token types (L Location, C",
  "--   Company; lower case = OAuth token only, no PIT; empty = not declared), 8 bearer",
  "--   token (0: none), 9 required query parameters (space-separated), 10 required",
  "--   top-level fields of the JSON request body (space-separated; empty: none, or not",
  "--   a JSON body), 11 summary; pagination (all empty: none): 12 style (meta | page |",
  "--   skip | offset | token | page_query | cursor | after), 13 items array property,",
  "--   14 page size parameter, 15 cursor parameter, 16 response field with the next",
  "--   cursor, 17 paging fields go in the JSON body (1 or empty).",
  "-- A v3 row right after its v2 twin (same method and path) that differs from it only in",
  "-- fields 3 to 5 is written short: fields 1 to 5, with \" for the path; the other fields",
  "-- are those of the row above.",
  "return {",
  "defaults = {",
}
for _, f in ipairs(sorted_keys(defaults)) do out[#out + 1] = string.format("[%s]=%s,", q(f), q(defaults[f])) end
out[#out + 1] = "},"
out[#out + 1] = "first = {"
for _, seg in ipairs(sorted_keys(first)) do out[#out + 1] = string.format("[%s]=%s,", q(seg), q(first[seg])) end
out[#out + 1] = "},"
out[#out + 1] = "groups = {"
for _, key in ipairs(sorted_keys(groups)) do
  -- The line break after the opening bracket is not part of the string.
  out[#out + 1] = string.format("[%s]=%s\n%s%s,", q(key), open, groups[key], close)
end
out[#out + 1] = "},"
out[#out + 1] = "}"
io.stdout:write(table.concat(out, "\n"), "\n")
