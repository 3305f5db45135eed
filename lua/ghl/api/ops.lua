-- ghl.api.ops: what ghlua knows about each HighLevel endpoint (the Version
-- header, scopes, token types, pagination), read from the generated table
-- ghl.api.operations (regenerate with
--   build/ghlua tools/gen_operations.lua /work/shared/highlevel/openapi > lua/ghl/api/operations.lua).
--   ops.match(method, path [, v3]) -> op, params | nil
--   ops.version(method, path [, v3]) -> Version header value (never nil)
--   ops.scopes_for(method, path [, v3]) -> {scope, ...}
--   ops.accepts(op, token_type, is_pit) -> boolean
--   ops.complete(prefix [, method]) -> sorted path templates (REPL completion)
--   ops.all() -> every op
-- An op is {method, path, version (nil: none declared), scopes = {...},
-- summary, tokens = {"Location", "Company"} (empty: not declared), pit
-- (false: no token type takes a Private Integration Token), pit_tokens (the
-- types that do), family (spec file stem), v3, auth (false: no bearer token,
-- e.g. POST /oauth/token), page = {style, items, size, cursor, next, body}
-- or nil}; page styles are meta, page, skip, offset, token, page_query,
-- cursor and after (tools/gen_operations.lua says what each means).
-- Matching is by template: `{x}` matches one segment, the query string and a
-- scheme://host prefix are ignored, a trailing slash is insignificant (the
-- exact template wins a tie), literal segments beat placeholders
-- (/contacts/search over /contacts/{contactId}), and rows of the requested
-- flavour (v2 unless v3 is true) beat the other flavour's. Ops are shared
-- with every caller: treat them as read-only. Lookups never fail; a
-- non-string method or path is a bug and raises a string.
local DATA = require "ghl.api.operations"

local M = {}

local DEFAULT_VERSION = "2021-07-28"
local TOKEN = { L = "Location", C = "Company" }

local ROWS = {}
local TRIE = {}          -- method -> root node (see add)
local FIRST_VERSION = {} -- first segment -> Version of the family owning most v2 ops there
local TEMPLATES = {}     -- method or "*" -> sorted unique path templates

local function words(s)
  local t = {}
  for w in (s or ""):gmatch("%S+") do t[#t + 1] = w end
  return t
end

-- ---- Building the index at load ----

-- A node: lit = {segment -> node}, ph = the node after a placeholder, and
-- for templates ending here v2/v3 = {[ends in slash] = {op, names}}, names
-- being the template's placeholder names in order.
local function add(op)
  local node = TRIE[op.method]
  if not node then node = {}; TRIE[op.method] = node end
  local names = {}
  for seg in op.path:gmatch("[^/]+") do
    local name = seg:match("^{(.+)}$")
    if name then
      names[#names + 1] = name
      node.ph = node.ph or {}
      node = node.ph
    else
      node.lit = node.lit or {}
      node.lit[seg] = node.lit[seg] or {}
      node = node.lit[seg]
    end
  end
  local flavour = op.v3 and "v3" or "v2"
  node[flavour] = node[flavour] or {}
  local slash = #op.path > 1 and op.path:sub(-1) == "/"
  assert(not node[flavour][slash], "duplicate operation " .. op.method .. " " .. op.path)
  node[flavour][slash] = { op = op, names = names }
end

local first_counts = {}
for _, r in ipairs(DATA.rows) do
  local tokens, pit_tokens = {}, {}
  for letter in (r.t or ""):gmatch(".") do
    tokens[#tokens + 1] = TOKEN[letter:upper()]
    if letter == letter:upper() then pit_tokens[#pit_tokens + 1] = TOKEN[letter] end
  end
  local g = r.g
  local op = {
    method = r.m, path = r.p, version = r.v, scopes = words(r.s), summary = r.d or "",
    tokens = tokens, pit = #tokens == 0 or #pit_tokens > 0, pit_tokens = pit_tokens,
    family = r.f, v3 = r.x == true, auth = r.a ~= false,
    page = g and { style = g.s, items = g.i, size = g.n, cursor = g.c, next = g.r, body = g.b == true } or nil,
  }
  ROWS[#ROWS + 1] = op
  add(op)

  local first = r.p:match("^/([^/]+)")
  if not op.v3 and first then
    local c = first_counts[first] or {}
    first_counts[first] = c
    c[r.f] = (c[r.f] or 0) + 1
  end

  for _, key in ipairs { "*", r.m } do
    local set = TEMPLATES[key] or {}
    TEMPLATES[key] = set
    set[r.p] = true
  end
end

for first, counts in pairs(first_counts) do
  local fams = {}
  for f in pairs(counts) do fams[#fams + 1] = f end
  table.sort(fams)
  local best, n = nil, 0
  for _, f in ipairs(fams) do
    if counts[f] > n then best, n = f, counts[f] end
  end
  FIRST_VERSION[first] = DATA.defaults[best] or DEFAULT_VERSION
end

for key, set in pairs(TEMPLATES) do
  local list = {}
  for p in pairs(set) do list[#list + 1] = p end
  table.sort(list)
  TEMPLATES[key] = list
end

-- ---- Lookups ----

local find, sub, byte = string.find, string.sub, string.byte

local function check(method, path)
  if type(method) ~= "string" then error("ops: method must be a string, got " .. type(method), 3) end
  if type(path) ~= "string" then error("ops: path must be a string, got " .. type(path), 3) end
end

-- The path part of path (no scheme://host, query or fragment, no trailing
-- slash), whether it ended in a slash, and where its first segment starts.
local function normalize(path)
  if byte(path, 1) ~= 47 then path = path:match("^%a[%w+.-]*://[^/]*(.*)$") or path end
  local cut = find(path, "?", 1, true) or find(path, "#", 1, true)
  if cut then path = sub(path, 1, cut - 1) end
  local slash = false
  while #path > 1 and byte(path, -1) == 47 do path, slash = sub(path, 1, -2), true end
  return path, slash, byte(path, 1) == 47 and 2 or 1
end

-- State of the current walk (match never yields, so one set suffices).
local w_path, w_len, w_slash, w_flavour
local w_caps = {}

-- The entry for the rest of the path from pos at node: literal segments
-- first, then a placeholder (so earlier literals win), then the template
-- with the same trailing slash.
local function walk(node, pos, depth)
  if pos > w_len then
    local ends = node[w_flavour]
    return ends and (ends[w_slash] or ends[not w_slash]) or nil
  end
  local e = find(w_path, "/", pos, true)
  local stop = e and e - 1 or w_len
  local seg = sub(w_path, pos, stop)
  local child = node.lit and node.lit[seg]
  if child then
    local found = walk(child, stop + 2, depth)
    if found then return found end
  end
  if node.ph and stop >= pos then
    w_caps[depth] = seg
    return walk(node.ph, stop + 2, depth + 1)
  end
  return nil
end

-- The common case without backtracking: follow literals when there is
-- one, else the placeholder; nil when that path leads nowhere (walk then
-- searches properly).
local function greedy(node, pos)
  local depth = 1
  while pos <= w_len do
    local e = find(w_path, "/", pos, true)
    local stop = e and e - 1 or w_len
    local seg = sub(w_path, pos, stop)
    local child = node.lit and node.lit[seg]
    if child then
      node = child
    elseif node.ph and stop >= pos then
      w_caps[depth], depth, node = seg, depth + 1, node.ph
    else
      return nil
    end
    pos = stop + 2
  end
  local ends = node[w_flavour]
  return ends and (ends[w_slash] or ends[not w_slash]) or nil
end

-- match(method, path [, v3]) -> op, params (placeholder name -> segment as
-- written, not decoded) | nil. Rows of the requested flavour first.
function M.match(method, path, v3)
  if type(method) ~= "string" or type(path) ~= "string" then check(method, path) end
  local root = TRIE[method] or TRIE[method:upper()]
  if not root then return nil end
  local p, slash, start = normalize(path)
  w_path, w_len, w_slash = p, #p, slash
  if start > w_len then return nil end
  w_flavour = v3 and "v3" or "v2"
  local found = greedy(root, start) or walk(root, start, 1)
  if not found then
    w_flavour = v3 and "v2" or "v3"
    found = walk(root, start, 1)
  end
  if not found then return nil end
  local params, names = {}, found.names
  for i = 1, #names do params[names[i]] = w_caps[i] end
  return found.op, params
end

-- version(method, path [, v3]) -> the op's Version, else its family's
-- default, else that of the family owning the first path segment, else
-- "2021-07-28" ("v3" when v3 is asked for and nothing matches).
function M.version(method, path, v3)
  check(method, path)
  local op = M.match(method, path, v3)
  if op then return op.version or DATA.defaults[op.family] or DEFAULT_VERSION end
  if v3 then return "v3" end
  local p, _, start = normalize(path)
  local first = p:match("^[^/]+", start)
  return first and FIRST_VERSION[first] or DEFAULT_VERSION
end

-- scopes_for(method, path [, v3]) -> a fresh array (empty when unknown).
function M.scopes_for(method, path, v3)
  check(method, path)
  local op = M.match(method, path, v3)
  local t = {}
  for i, s in ipairs(op and op.scopes or {}) do t[i] = s end
  return t
end

-- accepts(op, token_type, is_pit) -> whether a token of that type
-- ("Location" or "Company"; a PIT when is_pit) is allowed on op. Ops that
-- declare no token types, or take no bearer token, accept anything.
function M.accepts(op, token_type, is_pit)
  if type(op) ~= "table" then error("ops.accepts: op must be a table", 2) end
  if not op.auth or #op.tokens == 0 then return true end
  for _, t in ipairs(is_pit and op.pit_tokens or op.tokens) do
    if t == token_type then return true end
  end
  return false
end

-- complete(prefix [, method]) -> sorted unique templates starting with prefix.
function M.complete(prefix, method)
  if type(prefix) ~= "string" then error("ops.complete: prefix must be a string", 2) end
  local list = TEMPLATES[method and method:upper() or "*"] or {}
  local lo, hi = 1, #list + 1
  while lo < hi do                      -- first template >= prefix
    local mid = (lo + hi) // 2
    if list[mid] < prefix then lo = mid + 1 else hi = mid end
  end
  local out = {}
  for i = lo, #list do
    if list[i]:sub(1, #prefix) ~= prefix then break end
    out[#out + 1] = list[i]
  end
  return out
end

-- all() -> a fresh array of every op, in the table's order (path, method,
-- v2 before v3).
function M.all()
  local t = {}
  for i, op in ipairs(ROWS) do t[i] = op end
  return t
end

return M
