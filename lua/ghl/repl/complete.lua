-- ghl.repl.complete: Tab completion for the REPL (src/repl.c calls
-- complete_line through lua_pcall).
--   complete_line(line, start, stop): globals, fields and methods (also
--   through __index), API paths inside a string passed to c:get("/… etc.
--   (ghl.api.ops), scope names in strings and after :scopes, location ids
--   after :use, command names after ":". It never runs user code: tables
--   are read with next/rawget, metatables with debug.getmetatable; an
--   __index that is a table is followed, one that is a function never
--   called (the metatable's own method names and a `__complete` table of
--   names stand in for it). Never raises on any line.
local commands = require "ghl.repl.commands"
local session = require "ghl.repl.session"

local M = {}

local KEYWORDS = { "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
  "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while" }

local function is_name(s)
  return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil
end

-- The value of v[k] as far as it can be known without running code: raw
-- fields, then plain-table __index chains; a metatable whose __index is a
-- function lends its own fields (the class-table shape).
local function peek(v, k)
  for _ = 1, 32 do
    if type(v) == "table" then
      local r = rawget(v, k)
      if r ~= nil then return r end
    end
    local mt = debug.getmetatable(v)
    if type(mt) ~= "table" then return nil end
    local idx = rawget(mt, "__index")
    if type(idx) == "table" then
      v = idx
    else
      if idx ~= nil and type(k) == "string" and k:sub(1, 2) ~= "__" then return rawget(mt, k) end
      return nil
    end
  end
  return nil
end
M.peek = peek

-- The names reachable from v: name -> value (false when only declared).
local function names_of(v)
  local found = {}
  local function add(k, val)
    if is_name(k) and found[k] == nil then found[k] = val == nil and false or val end
  end
  local function declared(list)
    if type(list) ~= "table" then return end
    for k, val in next, list do
      if type(k) == "string" then add(k, false) elseif type(val) == "string" then add(val, false) end
    end
  end
  for _ = 1, 32 do
    if type(v) == "table" then
      for k, val in next, v do add(k, val) end
    end
    local mt = debug.getmetatable(v)
    if type(mt) ~= "table" then break end
    local idx = rawget(mt, "__index")
    declared(rawget(mt, "__complete"))
    if type(idx) == "table" then
      v = idx
    else
      if idx ~= nil then
        for k, val in next, mt do
          if type(k) == "string" and k:sub(1, 2) ~= "__" then add(k, val) end
        end
      end
      break
    end
  end
  return found
end

local function common_prefix(list)
  local p = list[1] or ""
  for i = 2, #list do
    local s = list[i]
    local n = 0
    while n < #p and n < #s and p:byte(n + 1) == s:byte(n + 1) do n = n + 1 end
    p = p:sub(1, n)
  end
  return p
end

-- Candidates for a dotted expression `word` (a.b.c, a.b:c) from env.
local function expr_candidates(word, env)
  local head, sep, last = word:match("^(.-)([%.:])([%a_]?[%w_]*)$")
  local out = {}
  if not head then
    for k, val in pairs(names_of(env)) do
      if k:sub(1, #word) == word and (k:sub(1, 2) ~= "__" or word:sub(1, 2) == "__") then out[#out + 1] = k .. (type(val) == "function" and "(" or "") end
    end
    for _, k in ipairs(KEYWORDS) do
      if k:sub(1, #word) == word and #word > 0 then out[#out + 1] = k end
    end
    return out
  end
  if head == "" or head:find(":", 1, true) then return out end
  local v = env
  for seg in head:gmatch("[^%.]+") do
    if not is_name(seg) then return out end
    v = peek(v, seg)
    if v == nil then return out end
  end
  for k, val in pairs(names_of(v)) do
    if k:sub(1, #last) == last and (sep == "." or type(val) == "function")
       and (k:sub(1, 2) ~= "__" or last:sub(1, 2) == "__") then
      out[#out + 1] = head .. sep .. k .. (type(val) == "function" and "(" or "")
    end
  end
  return out
end

-- Where the cursor is: "string", the opening quote's position and the
-- string's content so far; "comment"; or nil (in code).
local function context(before)
  local i, n, quote, start = 1, #before, nil, nil
  while i <= n do
    local ch = before:sub(i, i)
    if quote then
      if ch == "\\" then i = i + 1
      elseif ch == quote then quote = nil end
    elseif ch == '"' or ch == "'" then
      quote, start = ch, i
    elseif ch == "-" and before:sub(i, i + 1) == "--" then
      return "comment"
    end
    i = i + 1
  end
  if quote then return "string", start, before:sub(start + 1) end
  return nil
end

local METHOD_CALLS = { get = "GET", post = "POST", put = "PUT", patch = "PATCH", delete = "DELETE",
  paginate = false }

-- The HTTP method a call before a string implies: c:get(" -> GET;
-- c:request("POST", " -> POST; false when any method fits; nil when the
-- string is not a path argument at all.
local function call_method(prefix)
  local name = prefix:match("[%.:]([%a_]+)%s*%(%s*$")
  if name and METHOD_CALLS[name] ~= nil then return METHOD_CALLS[name] end
  local m = prefix:match("[%.:]request%s*%(%s*[\"'](%a+)[\"']%s*,%s*$")
    or prefix:match("[%.:]prepare%s*%(%s*[\"'](%a+)[\"']%s*,%s*$")
  if m then return m:upper() end
  return nil
end

local function scope_candidates(prefix)
  local out = {}
  for _, r in ipairs(require("ghl.scopes").rows()) do
    if r.scope:sub(1, #prefix) == prefix then out[#out + 1] = r.scope end
  end
  return out
end

local function location_candidates(prefix)
  local seen, out = {}, {}
  for _, id in ipairs(session.active and session.active:locations() or {}) do
    if not seen[id] and id:sub(1, #prefix) == prefix then seen[id] = true; out[#out + 1] = id end
  end
  return out
end

-- candidates(before, env) -> start, list: completions of the text before
-- the cursor; each replaces before:sub(start).
function M.candidates(before, env)
  env = env or _G
  local cmd = before:match("^%s*:(%w*)$")
  if cmd then
    local out = {}
    for _, c in ipairs(commands.COMMANDS) do
      if c[1]:sub(1, #cmd) == cmd then out[#out + 1] = ":" .. c[1] end
    end
    return #before - #cmd, out
  end
  local arg = before:match("^%s*:scopes%s+(%S*)$")
  if arg then return #before - #arg + 1, scope_candidates(arg) end
  arg = before:match("^%s*:use%s+(%S*)$")
  if arg then return #before - #arg + 1, location_candidates(arg) end
  if before:match("^%s*:") then return #before + 1, {} end

  local where, qpos, text = context(before)
  if where == "comment" then return #before + 1, {} end
  if where == "string" then
    local start = qpos + 1
    if text:sub(1, 1) == "/" then
      local method = call_method(before:sub(1, qpos - 1))
      return start, require("ghl.api.ops").complete(text, method or nil)
    end
    if text:match("^[%w%./]+$") then return start, scope_candidates(text) end
    return start, {}
  end
  local word = before:match("[%a_][%w_%.:]*$") or ""
  local start = #before - #word + 1
  if start > 1 and before:sub(start - 1, start - 1):match("[%w_%.:%]%)\"']") then return start, {} end
  return start, expr_candidates(word, env)
end

-- complete_line(line, start, stop [, env]) -> {replacement, candidates...}
-- | {}: libedit's hook (src/repl.c). start and stop are the 0-based offsets
-- of the word libedit will replace (it ends at the cursor); the entries are
-- adjusted to that word, whatever our own idea of the word is.
function M.complete_line(line, start, stop, env)
  local before = line:sub(1, stop)
  local mine, list = M.candidates(before, env)
  if #list == 0 then return {} end
  table.sort(list)
  local theirs = start + 1
  local res = {}
  for _, cand in ipairs(list) do
    local r
    if mine > theirs then r = before:sub(theirs, mine - 1) .. cand
    else r = cand:sub(theirs - mine + 1) end
    if res[#res] ~= r then res[#res + 1] = r end
  end
  if #res == 1 then return res end
  table.insert(res, 1, common_prefix(res))
  return res
end

return M
