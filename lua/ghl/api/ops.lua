-- ghl.api.ops: what ghlua knows about each HighLevel endpoint (the Version
-- header, scopes, token types, pagination), read from the generated table
-- ghl.api.operations (regenerate with
--   build/ghlua tools/gen_operations.lua /work/shared/highlevel/openapi > lua/ghl/api/operations.lua).
--   ops.match(method, path [, v3]) -> op, params | nil
--   ops.op(method, path [, v3]) -> op | nil (match without params)
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
-- or nil, query = {name, ...} (required query parameters, e.g. locationId;
-- empty: none), body = {name, ...} (required top-level fields of the JSON
-- request body, e.g. locationId; empty: none, or not a JSON body)}; page styles are meta, page, skip, offset, token,
-- page_query, cursor and after (tools/gen_operations.lua says what each
-- means). The table is read lazily: loading ops costs next to nothing, and
-- a lookup parses only the rows of its method under its first segment.
-- Matching is by template: `{x}` matches one segment, the query string and a
-- scheme://host prefix are ignored, a trailing slash is insignificant (the
-- exact template wins a tie), literal segments beat placeholders
-- (/contacts/search over /contacts/{contactId}), and rows of the requested
-- flavour (v2 unless v3 is true) beat the other flavour's. Ops are shared
-- with every caller: treat them as read-only. Lookups never fail; a
-- non-string method or path is a bug and raises a string.
local M = {}

local DEFAULT_VERSION = "2021-07-28"
local TOKEN = { L = "Location", C = "Company" }
local METHODS = { "GET", "POST", "PUT", "PATCH", "DELETE" } -- those of tools/gen_operations.lua
local METHOD_ORDER = {}
for i, m in ipairs(METHODS) do METHOD_ORDER[m] = i end
local DATA_NAME = "ghl.api.operations"

-- Nothing is read at load. The first lookup reads the generated table and
-- keeps its small maps; the rows come in groups, one text per first path
-- segment, and a lookup puts into TRIE the rows of its method in the group
-- of its path's first segment (if not done yet). A row stays a line of text
-- in TRIE until a lookup returns it; only then is its op built, once, so
-- later lookups return the same op.
local DEFAULTS           -- family -> default Version (nil until init)
local FIRST_VERSION      -- first segment -> Version of the family owning most v2 ops there
local GROUPS             -- group -> its text with "\n" before each line, or false until needed
local PARSED = {}        -- method -> {group -> true} once its rows there are in TRIE
local TRIE = {}          -- method -> root node (see add)
local ALL                -- every op in the table's order, once all() or complete() needed it
local TEMPLATES          -- method or "*" -> sorted unique path templates (complete)

local find, sub, byte, match = string.find, string.sub, string.byte, string.match

local function words(s)
  local t = {}
  for w in (s or ""):gmatch("%S+") do t[#t + 1] = w end
  return t
end

-- ---- Reading the generated table ----

-- The generated table is ~100 KB of text: rather than keep it, ops holds it
-- weakly (until the next garbage collection) and reads it again when a group
-- not needed before is needed after that. It is loaded the way require would,
-- without require's cache (package.loaded would keep it).
local cache = setmetatable({}, { __mode = "v" })

local function data()
  local t = cache.t or (package and package.loaded[DATA_NAME])
  if t then cache.t = t; return t end
  if not package then   -- a recipe's own state has require only (ghl.sandbox.child)
    t = require(DATA_NAME)
    cache.t = t
    return t
  end
  local tried = {}
  for _, searcher in ipairs(package.searchers) do
    local loader, extra = searcher(DATA_NAME)
    if type(loader) == "function" then
      t = loader(DATA_NAME, extra)
      cache.t = t
      return t
    end
    if type(loader) == "string" then tried[#tried + 1] = loader end
  end
  error("ops: module '" .. DATA_NAME .. "' not found:" .. table.concat(tried))
end

local function init()
  local t = data()
  DEFAULTS, FIRST_VERSION, GROUPS = t.defaults, t.first, {}
  for group in pairs(t.groups) do GROUPS[group] = false end
end

-- A row's fields (the generated file's header says what each is); trailing
-- empty fields may be missing.
local function fields(line)
  local t, pos = {}, 1
  while true do
    local tab = find(line, "\t", pos, true)
    t[#t + 1] = sub(line, pos, (tab or 0) - 1)
    if not tab then return t end
    pos = tab + 1
  end
end

local function opt(s)
  if s ~= nil and s ~= "" then return s end
  return nil
end

-- The entry of a row: {op, names}, names being the template's placeholder
-- names in order.
local function entry_of(line)
  local f = fields(line)
  local tokens, pit_tokens = {}, {}
  for letter in (f[7] or ""):gmatch(".") do
    tokens[#tokens + 1] = TOKEN[letter:upper()]
    if letter == letter:upper() then pit_tokens[#pit_tokens + 1] = TOKEN[letter] end
  end
  local style, items = opt(f[12]), opt(f[13])
  local op = {
    method = f[1], path = f[2], version = opt(f[4]), scopes = words(f[6]), summary = f[11] or "",
    tokens = tokens, pit = #tokens == 0 or #pit_tokens > 0, pit_tokens = pit_tokens,
    family = f[5], v3 = f[3] == "1", auth = f[8] ~= "0", query = words(f[9]), body = words(f[10]),
    page = (style or items) and {
      style = style, items = items, size = opt(f[14]), cursor = opt(f[15]), next = opt(f[16]),
      body = f[17] == "1",
    } or nil,
  }
  local names = {}
  for seg in op.path:gmatch("[^/]+") do
    names[#names + 1] = seg:match("^{(.+)}$")
  end
  return { op = op, names = names }
end

-- The entry at ends[slash], built from its line the first time.
local function entry(ends, slash)
  local e = ends[slash]
  if type(e) == "string" then e = entry_of(e); ends[slash] = e end
  return e
end

-- A node: lit = {segment -> node}, ph = the node after a placeholder, and
-- for templates ending here v2/v3 = {[ends in slash] = entry or its line}.
local function add(line)
  local method, path, x = match(line, "^([^\t]*)\t([^\t]*)\t?([^\t]*)")
  local node = TRIE[method]
  if not node then node = {}; TRIE[method] = node end
  for seg in path:gmatch("[^/]+") do
    if seg:match("^{(.+)}$") then
      node.ph = node.ph or {}
      node = node.ph
    else
      node.lit = node.lit or {}
      node.lit[seg] = node.lit[seg] or {}
      node = node.lit[seg]
    end
  end
  local flavour = x == "1" and "v3" or "v2"
  node[flavour] = node[flavour] or {}
  local slash = #path > 1 and path:sub(-1) == "/"
  assert(node[flavour][slash] == nil, "duplicate operation " .. method .. " " .. path)
  node[flavour][slash] = line
end

-- The full line of a v3 row written short (its path is `"`): its fields 1
-- and 3 to 5, the others those of the line above (its v2 twin).
local function unshorten(line, above)
  local path, rest = match(above, "^[^\t]*\t([^\t]*)\t[^\t]*\t[^\t]*\t[^\t]*(.*)$")
  local method, mid = match(line, '^([^\t]*)\t"(\t.*)$')
  return method .. "\t" .. path .. mid .. rest
end

-- Puts method's rows of group into TRIE, if not done yet; the first time
-- for method, those of group "" too (templates whose first segment is a
-- placeholder match under any first segment).
local function parse(group, method)
  local done = PARSED[method]
  if not done then
    done = {}
    PARSED[method] = done
    if group ~= "" then parse("", method) end
  end
  if done[group] or GROUPS[group] == nil then return end
  done[group] = true
  local text = GROUPS[group]
  if not text then
    text = "\n" .. data().groups[group]
    GROUPS[group] = text
  end
  local key, pos, above = "\n" .. method .. "\t", 1, nil
  while true do
    local s = find(text, key, pos, true)
    if not s then break end
    local e = find(text, "\n", s + 1, true) or #text + 1
    local line = sub(text, s + 1, e - 1)
    if byte(line, #method + 2) == 34 then line = unshorten(line, above) end
    add(line)
    above, pos = line, e
  end
end

-- Every row in TRIE and every op built; ALL in the table's order (path,
-- method, v2 before v3).
local function load_all()
  if ALL then return end
  if not GROUPS then init() end
  for group in pairs(GROUPS) do
    for _, method in ipairs(METHODS) do parse(group, method) end
  end
  local all = {}
  local function collect(node)
    for _, flavour in ipairs { "v2", "v3" } do
      local ends = node[flavour]
      for _, slash in ipairs { false, true } do
        if ends and ends[slash] ~= nil then all[#all + 1] = entry(ends, slash).op end
      end
    end
    for _, child in pairs(node.lit or {}) do collect(child) end
    if node.ph then collect(node.ph) end
  end
  for _, root in pairs(TRIE) do collect(root) end
  local lines = 0
  for _, text in pairs(GROUPS) do lines = lines + select(2, text:gsub("\n[^\n]", "")) end
  assert(#all == lines, "ops: operations table has rows of a method ops does not know")
  table.sort(all, function(a, b)
    if a.path ~= b.path then return a.path < b.path end
    if a.method ~= b.method then return METHOD_ORDER[a.method] < METHOD_ORDER[b.method] end
    if a.v3 ~= b.v3 then return not a.v3 end
    return a.family < b.family
  end)
  ALL = all
end

-- ---- Lookups ----

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

-- The entry of a template ending at node in the walk's flavour, the one
-- with the same trailing slash first; nil when none ends there.
local function pick(node)
  local ends = node[w_flavour]
  if not ends then return nil end
  if ends[w_slash] ~= nil then return entry(ends, w_slash) end
  return entry(ends, not w_slash)
end

-- The entry for the rest of the path from pos at node: literal segments
-- first, then a placeholder (so earlier literals win), then the template
-- with the same trailing slash.
local function walk(node, pos, depth)
  if pos > w_len then return pick(node) end
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
  return pick(node)
end

-- The entry (see entry_of) of the template path matches, nil for none; the
-- placeholders' segments are left in w_caps.
local function lookup(method, path, v3)
  if not METHOD_ORDER[method] then
    method = method:upper()
    if not METHOD_ORDER[method] then return nil end
  end
  local p, slash, start = normalize(path)
  if start > #p then return nil end
  -- The rows this lookup can match, unless already in TRIE.
  if not GROUPS then init() end
  local e = find(p, "/", start, true)
  parse(sub(p, start, e and e - 1 or #p), method)
  local root = TRIE[method]
  if not root then return nil end
  w_path, w_len, w_slash = p, #p, slash
  w_flavour = v3 and "v3" or "v2"
  local found = greedy(root, start) or walk(root, start, 1)
  if not found then
    w_flavour = v3 and "v2" or "v3"
    found = walk(root, start, 1)
  end
  return found
end

-- match(method, path [, v3]) -> op, params (placeholder name -> segment as
-- written, not decoded) | nil. Rows of the requested flavour first.
function M.match(method, path, v3)
  if type(method) ~= "string" or type(path) ~= "string" then check(method, path) end
  local found = lookup(method, path, v3)
  if not found then return nil end
  local params, names = {}, found.names
  for i = 1, #names do params[names[i]] = w_caps[i] end
  return found.op, params
end

-- op(method, path [, v3]) -> the op match would return, without building
-- params (the client's per-request lookup).
function M.op(method, path, v3)
  if type(method) ~= "string" or type(path) ~= "string" then check(method, path) end
  local found = lookup(method, path, v3)
  return found and found.op
end

-- version(method, path [, v3]) -> the op's Version, else its family's
-- default, else that of the family owning the first path segment, else
-- "2021-07-28" ("v3" when v3 is asked for and nothing matches).
function M.version(method, path, v3)
  check(method, path)
  if not GROUPS then init() end
  local op = M.match(method, path, v3)
  if op then return op.version or DEFAULTS[op.family] or DEFAULT_VERSION end
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
  if not TEMPLATES then
    load_all()
    local sets = {}
    for _, op in ipairs(ALL) do
      for _, key in ipairs { "*", op.method } do
        sets[key] = sets[key] or {}
        sets[key][op.path] = true
      end
    end
    TEMPLATES = {}
    for key, set in pairs(sets) do
      local list = {}
      for p in pairs(set) do list[#list + 1] = p end
      table.sort(list)
      TEMPLATES[key] = list
    end
  end
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
  load_all()
  local t = {}
  for i, op in ipairs(ALL) do t[i] = op end
  return t
end

return M
