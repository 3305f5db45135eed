-- ghl.repl: the interactive loop behind `ghlua` on a terminal (and
-- `ghlua -i`). src/repl.c gives it libedit and signals (native.readline,
-- add_history, call); everything else is here:
--   the loop     lua.c's shape: a line is tried as an expression (printed,
--                no `return` or `=` needed), else as a statement; while
--                either reading says the chunk ends too early (<eof>) more
--                lines are read. `_` holds the last result, `_err` the last
--                error. Ctrl-C at the prompt drops the line; while a
--                statement runs it interrupts it (an HTTP request is
--                aborted, the session stays); Ctrl-D exits.
--   context      `ghl`, and `client` (also `c`) for GHL_LOCATION_ID, the
--                location last chosen with :use, or the only stored one;
--                the banner says which app, location and token expiry.
--   commands     :help :whoami :use :scopes :explain :curl :more :save :sim
--                :quit (M.COMMANDS).
--   completion   complete_line(line, start, stop): globals, fields and
--                methods (also through __index), API paths inside a
--                string passed to c:get("/… etc. (ghl.api.ops), scope
--                names in strings and after :scopes, location ids after
--                :use. It never runs user code: tables are read with
--                next/rawget, metatables with debug.getmetatable; an
--                __index that is a table is followed, one that is a
--                function never called (the metatable's own method names
--                and a `__complete` table of names stand in for it).
--   history      $GHLUA_HOME/history (or $GHLUA_HISTFILE; /dev/null turns
--                it off), mode 0600, one statement a line (newlines as \n).
--                A statement that holds a secret (secret(): a stored or
--                session token or client secret, or text shaped like one)
--                stays out of the file.
--   :save FILE   the session's successful statements as a recipe for
--                `ghlua run`, with the scopes its requests needed (from the
--                operations table) and `writes` set when one wrote.
--   :sim         `ghlua sim` as a child in its own session (Ctrl-C here does
--                not reach it), `client` pointed at it with its token; it
--                is stopped by :sim stop or when the REPL ends.
-- Requests are seen by wrapping the client class's request method once per
-- process (see instrument). Errors in user code are printed, never raised;
-- a failing command prints a ghl.error like any statement.
local E = require "ghl.error"
local inspect = require "ghl.inspect"
local sys = require "ghl.sys"

-- The token a client was made with (token=), kept out of its fields.
local function static_token(c)
  return require("ghl.client").static_token(c)
end

local M = {}

M.PROMPT, M.PROMPT2 = "ghlua> ", ">> "
M.HISTORY_MAX = 1000
M.SIM_TIMEOUT = 15
M.SIM_ARGS = { "--contacts", "25", "--opportunities", "10" }

local KEYWORDS = { "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if",
  "in", "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while" }

local READS = { GET = true, HEAD = true, OPTIONS = true }

local session           -- the running session (one per process), or nil

-- ---- Output ----

local out = io.stdout

local function paint(code, s)
  if session and session.color then return "\27[" .. code .. "m" .. s .. "\27[0m" end
  return s
end

local function say(...)
  out:write(...)
  out:write("\n")
  out:flush()
end

local function shell_quote(s)
  s = tostring(s)
  if s:match("^[%w@%%+=:,./_-]+$") then return s end
  return "'" .. s:gsub("'", "'\\''") .. "'"
end
M.shell_quote = shell_quote

local function redact(s)
  if type(s) ~= "string" or s == "" then return "…" end
  return require("ghl.http").redact(s)
end

local function utc(t)
  return os.date("!%Y-%m-%d %H:%M UTC", math.floor(t))
end

-- "3 days", "5 h 2 min", "4 min", "12 s".
function M.duration(secs)
  secs = math.floor(math.abs(secs))
  if secs >= 2 * 86400 then return (secs // 86400) .. " days" end
  if secs >= 3600 then return string.format("%d h %d min", secs // 3600, secs % 3600 // 60) end
  if secs >= 60 then return (secs // 60) .. " min" end
  return secs .. " s"
end

-- ---- Secrets ----

-- Text shaped like a secret, whatever its value: PITs, JWTs (HighLevel's
-- access and refresh tokens are JWTs), bearer headers, and the names under
-- which secrets travel. Matched on the line in lower case.
M.SECRET_PATTERNS = {
  { "%f[%w]pit%-%w", "a Private Integration Token (pit-…)" },
  { "eyj[%w_%-][%w_%-][%w_%-][%w_%-]", "a JWT (eyJ…)" },
  { "bearer%s", "a bearer token" },
  { "client_?secret", "a client secret" },
  { "refresh_?token", "a refresh token" },
  { "access_?token", "an access token" },
  { "ghl_pit", "GHL_PIT" },
  { "authorization", "an Authorization header" },
}

-- secret(line, known) -> reason | nil: whether the line holds one of the
-- strings in `known` (actual secrets; those shorter than 8 bytes are
-- ignored) or text shaped like a secret.
function M.secret(line, known)
  for _, s in ipairs(known or {}) do
    if type(s) == "string" and #s >= 8 and line:find(s, 1, true) then return "a secret of this session" end
  end
  local low = line:lower()
  for _, p in ipairs(M.SECRET_PATTERNS) do
    if low:find(p[1]) then return p[2] end
  end
  return nil
end

-- ---- History file ----

-- One entry a line: backslash and newline escaped.
function M.history_encode(entry)
  return (entry:gsub("\\", "\\\\"):gsub("\n", "\\n"))
end

function M.history_decode(line)
  return (line:gsub("\\(.)", function(ch) return ch == "n" and "\n" or ch end))
end

-- The history file's path, or nil (turned off, or no home to keep it in).
function M.history_path()
  local p = os.getenv("GHLUA_HISTFILE")
  if p and p ~= "" then
    if p == "/dev/null" then return nil end
    return p
  end
  local home = os.getenv("GHLUA_HOME")
  if not home or home == "" then
    local db = require("ghl.store").default_path()
    home = db and db:match("^(.*)/[^/]*$")
  end
  return home and home ~= "" and (home .. "/history") or nil
end

local function read_lines(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local list = {}
  for line in f:lines() do
    if line ~= "" then list[#list + 1] = line end
  end
  f:close()
  return list
end

-- Open (create, 0600) the history file and return its entries, oldest
-- first, keeping only the last HISTORY_MAX. Returns nil, err when it cannot
-- be used.
function M.history_open(path)
  local dir = path:match("^(.*)/[^/]*$")
  if dir and dir ~= "" and not sys.stat(dir) then
    local ok, err = sys.mkdir(dir, tonumber("700", 8))
    if not ok then return nil, err end
  end
  local st = sys.stat(path)
  if st and st.type ~= "file" then return nil, E.new { kind = "io", message = path .. " is not a regular file" } end
  if not st then
    local f, err = io.open(path, "ab")
    if not f then return nil, E.new { kind = "io", message = err } end
    f:close()
  end
  local ok, err = sys.chmod(path, tonumber("600", 8))
  if not ok then return nil, err end
  local lines = read_lines(path) or {}
  if #lines > M.HISTORY_MAX then
    lines = table.move(lines, #lines - M.HISTORY_MAX + 1, #lines, 1, {})
    local tmp = path .. ".tmp"
    local f = io.open(tmp, "wb")
    if f then
      sys.chmod(tmp, tonumber("600", 8))
      f:write(table.concat(lines, "\n"), "\n")
      f:close()
      os.rename(tmp, path)
    end
  end
  local entries = {}
  for i, l in ipairs(lines) do entries[i] = M.history_decode(l) end
  return entries
end

-- Append one entry to the history file (kept 0600).
function M.history_append(path, entry)
  local st = sys.stat(path)
  if st and st.mode ~= tonumber("600", 8) then sys.chmod(path, tonumber("600", 8)) end
  local f = io.open(path, "ab")
  if not f then return false end
  f:write(M.history_encode(entry), "\n")
  f:close()
  return true
end

-- ---- Completion ----

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
  for _, id in ipairs(session and session:locations() or {}) do
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
    for _, c in ipairs(M.COMMANDS) do
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
      local ok, ops = pcall(require, "ghl.api.ops")
      if not ok then return start, {} end
      return start, ops.complete(text, method or nil)
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

-- ---- Requests of the session ----

local instrumented = false

-- Wrap the client class's request method (once per process) so that the
-- session sees every request: the client that made it (for :explain and
-- :curl) and its operation (for :save and :scopes).
local function instrument(c)
  if instrumented or type(c) ~= "table" then return end
  local mt = getmetatable(c)
  if type(mt) ~= "table" or type(rawget(mt, "request")) ~= "function" then return end
  instrumented = true
  local request = rawget(mt, "request")
  rawset(mt, "request", function(self, method, path, opts)
    local s = session
    if s and type(method) == "string" and type(path) == "string" then
      s.last_client = self
      if s.pending then
        local okm, ops = pcall(require, "ghl.api.ops")
        local op = okm and ops.match(method:upper(), path, type(opts) == "table" and opts.version == "v3") or nil
        s.pending[#s.pending + 1] = { method = method:upper(), path = path, op = op }
      end
    end
    return request(self, method, path, opts)
  end)
end

local function is_client(v)
  return type(v) == "table" and type(rawget(v, "base")) == "string" and type(rawget(v, "bucket")) == "table"
end

-- ---- The session ----

local Session = {}
Session.__index = Session

-- The token store, when its file exists (the REPL never creates one).
function Session:store()
  if self.db ~= nil then return self.db or nil end
  local path = os.getenv("GHLUA_STORE")
  if not path or path == "" then path = require("ghl.store").default_path() end
  if not path or not sys.stat(path) then return nil end
  local ok, db = pcall(require("ghl.auth").store)
  if not ok then
    self.store_error = db
    return nil
  end
  self.db = db.raw or db   -- optional reads: a failing store reads as empty here
  return self.db
end

function Session:rows()
  local db = self:store()
  if not db then return {} end
  return db:find_tokens {} or {}
end

-- Location ids the session knows: stored tokens and the simulator's.
function Session:locations()
  local out = {}
  for _, r in ipairs(self:rows()) do
    if r.resource_type == "Location" then out[#out + 1] = r.resource_id end
  end
  if self.sim then
    for _, l in ipairs(self.sim.ready.locations or {}) do
      if type(l) == "table" and l.id then out[#out + 1] = l.id elseif type(l) == "string" then out[#out + 1] = l end
    end
    out[#out + 1] = self.sim.location
  end
  table.sort(out)
  return out
end

-- Every secret the session knows of, for keeping them out of the history.
function Session:secrets()
  local list = {}
  local function add(s) if type(s) == "string" and #s >= 8 then list[#list + 1] = s end end
  for _, r in ipairs(self:rows()) do
    add(r.access_token); add(r.refresh_token); add(r.previous_refresh_token)
  end
  local db = self:store()
  if db then
    for _, a in ipairs(db:list_apps() or {}) do add(a.client_secret) end
  end
  add(os.getenv("GHL_CLIENT_SECRET")); add(os.getenv("GHL_PIT")); add(os.getenv("GHL_TOKEN"))
  for _, name in ipairs { "client", "c" } do
    local v = rawget(_G, name)
    if is_client(v) then add(static_token(v)) end
  end
  if self.last_client then add(static_token(self.last_client)) end
  if self.sim then for _, s in ipairs(self.sim.secrets) do add(s) end end
  return list
end

-- The stored token row behind client c (nil for a static token), and the
-- Company row that would mint it.
function Session:row_of(c)
  if not is_client(c) or static_token(c) or not self:store() then return nil end
  local ok, row, crow = pcall(require("ghl.auth").find, { app = c.app, location = c.location,
    company = not c.location and c.company or nil })
  if not ok then return nil end
  return row, crow
end

-- One line about client c: app, location or company, token and expiry.
function Session:describe(c)
  if self.sim and static_token(c) == self.sim.token then
    return string.format("simulator %s · location %s · static token %s (every scope, never expires)",
      self.sim.url, tostring(c.location), redact(self.sim.token))
  end
  if static_token(c) then
    return string.format("%s %s · static token %s", c.location and "location" or "company",
      tostring(c.location or c.company), redact(static_token(c)))
  end
  local where = c.location and ("location " .. c.location) or ("company " .. tostring(c.company))
  local row, crow = self:row_of(c)
  if not row then
    if crow then
      return string.format("app %s · %s · a location token is minted from the agency token on first use",
        tostring(c.app), where)
    end
    return string.format("app %s · %s · no stored token", tostring(c.app), where)
  end
  local tok
  if row.kind == "pit" then
    tok = "Private Integration Token" .. (row.name and (" '" .. row.name .. "'") or "")
  else
    tok = "OAuth " .. tostring(row.resource_type) .. " token"
  end
  local exp = ""
  if row.kind ~= "pit" and row.expires_at then
    local left = row.expires_at - sys.time()
    if left > 0 then
      exp = string.format(", expires in %s (%s)", M.duration(left), utc(row.expires_at))
    else
      exp = string.format(", expired %s ago (%s; refreshed on the next request)", M.duration(left), utc(row.expires_at))
    end
  end
  local app = row.kind == "pit" and "" or ("app " .. tostring(row.app) .. " · ")
  return string.format("%s%s · %s%s", app, where, tok, exp)
end

-- Make c the session's client: globals `client` and `c`. With keep, a
-- global that already holds something else (set by `ghlua -i SCRIPT` or
-- -e) is left alone.
function Session:set_client(c, keep)
  instrument(c)
  for _, name in ipairs { "client", "c" } do
    if not keep or rawget(_G, name) == nil then rawset(_G, name, c) end
  end
  self.client = c
end

-- The client the commands describe: the global `client` when it still is
-- one, else the last that made a request.
function Session:current()
  local v = rawget(_G, "client")
  if is_client(v) then return v end
  return self.client or self.last_client
end

-- Pick the starting location: GHL_LOCATION_ID, the one last chosen with
-- :use, or the only one stored (else the only company). Returns the
-- client options, or nil and a line to print.
function Session:default_target()
  local rows = self:rows()
  if #rows == 0 then
    if self.store_error then return nil, "the token store cannot be read: " .. tostring(self.store_error) end
    return nil, "no stored tokens: log in with 'ghlua auth login' (or 'ghlua auth pit add'), or type :sim to practise on a local simulator"
  end
  local locs, comps, seenl, seenc = {}, {}, {}, {}
  for _, r in ipairs(rows) do
    if r.resource_type == "Location" and not seenl[r.resource_id] then seenl[r.resource_id] = true; locs[#locs + 1] = r.resource_id end
    if r.resource_type == "Company" and not seenc[r.resource_id] then seenc[r.resource_id] = true; comps[#comps + 1] = r.resource_id end
  end
  local env = os.getenv("GHL_LOCATION_ID")
  if env and env ~= "" then return { location = env } end
  local db = self:store()
  local last = db and db:kv_get("repl", "location")
  if last and (seenl[last] or #comps > 0) then return { location = last } end
  if #locs == 1 then return { location = locs[1] } end
  if #locs == 0 and #comps == 1 then return { company = comps[1] } end
  if #locs == 0 then
    return nil, string.format("%d agencies are stored (%s): choose a location with :use LOCATION", #comps,
      table.concat(comps, ", "))
  end
  return nil, string.format("%d locations are stored (%s): choose one with :use LOCATION", #locs,
    table.concat(locs, ", "))
end

-- Globals for a new session: `ghl`, and `client` and `c` when the store
-- says which location. Returns nil, or a line saying why there is no client.
function Session:setup(keep)
  if not keep or rawget(_G, "ghl") == nil then rawset(_G, "ghl", require "ghl") end
  local target, why = self:default_target()
  if not target then return why end
  local ok, c = pcall(require("ghl.client").new, target)
  if not ok then return "no client: " .. tostring(c) end
  self:set_client(c, keep)
  return nil
end

function Session:banner()
  local ghl = require "ghl"
  say(string.format("%s (%s, HighLevel API): :help for commands, Tab completes, Ctrl-D exits",
    ghl._VERSION, _VERSION))
  local why = self:setup(true)
  if why then say(why) return end
  say(self:describe(self.client))
  say("`client` (also `c`) is ready: try c:get(\"/contacts/\", {locationId = c.location, limit = 5})")
end

-- ---- Printing results and errors ----

local function prune_traceback(msg)
  local lines = {}
  for l in (msg .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = l end
  for i, l in ipairs(lines) do
    if l:find("lua/ghl/repl.lua:", 1, true) then
      local cut = i
      if i > 1 and lines[i - 1]:match("^%s*%[C%]: in ") then cut = i - 1 end
      return table.concat(lines, "\n", 1, cut - 1)
    end
  end
  return msg
end

-- Print an error value: a ghl.error as its one-line form and its hint.
function Session:report(err)
  out:flush()
  local w = io.stderr
  if E.is(err) then
    local ok, line = pcall(tostring, err)
    line = ok and line or "?"
    local hint = rawget(err, "hint")
    if hint ~= nil then
      local suffix = " — hint: " .. tostring(hint):gsub("\n", " ")
      if line:sub(-#suffix) == suffix then line = line:sub(1, -#suffix - 1) end
    end
    w:write(paint("31", "error: ") .. E.sanitize(line), "\n")
    if hint ~= nil then w:write(paint("2", "hint: ") .. E.sanitize(hint), "\n") end
    local tb = rawget(err, "traceback")
    if type(tb) == "string" then w:write(E.sanitize(prune_traceback(tb), true), "\n") end
  else
    local msg = type(err) == "string" and err or ("(error object is a " .. type(err) .. " value)")
    w:write(paint("31", "error: ") .. E.sanitize(prune_traceback(msg), true), "\n")
  end
  w:flush()
end

local function print_values(color, ...)
  local summarised = false
  for i = 1, select("#", ...) do
    local text, s = inspect.render((select(i, ...)), { color = color })
    out:write(text, "\n")
    summarised = summarised or s
  end
  if summarised then out:write(paint("2", "(long arrays summarised: :more prints the last result in full)"), "\n") end
  out:flush()
end

-- ---- Commands ----

M.COMMANDS = {
  { "help", "", "this list" },
  { "whoami", "", "the token in use: type, location or company, scopes, expiry" },
  { "use", "LOCATION", "point `client` at another location (no argument: list them)" },
  { "scopes", "[WORD]", "the token's scopes and those this session's requests needed; WORD searches the catalogue" },
  { "explain", "", "the last request: method, URL, Version, token, status, time, rate-limit headroom" },
  { "curl", "", "the last request as a curl command (token redacted)" },
  { "more", "", "print the last result (_) in full, long arrays included" },
  { "save", "FILE", "write this session's successful statements as a recipe (:save! FILE overwrites)" },
  { "sim", "[stop | FLAGS]", "start a local simulator (ghlua sim FLAGS) and point `client` at it" },
  { "quit", "", "leave (Ctrl-D does too)" },
}

local cmd = {}

function cmd.help(s)
  say("Commands:")
  for _, c in ipairs(M.COMMANDS) do
    say(string.format("  %-18s %s", ":" .. c[1] .. (c[2] ~= "" and (" " .. c[2]) or ""), c[3]))
  end
  say("")
  say("Type Lua: an expression is printed (JSON-like), a statement is run; an")
  say("unfinished one continues on the next line. `_` is the last result, `_err`")
  say("the last error; ghl.inspect.all(v) prints v in full.")
  say("`client` (also `c`) is the API client: c:get(path, query), c:post(path, body),")
  say("c:put, c:patch, c:delete, c:paginate(path, params), c:request(method, path, opts).")
  say("Tab completes names, methods, API paths inside c:get(\"/… and scope names.")
  say("Ctrl-C stops a running request, or clears the line; Ctrl-D exits.")
  say("History: " .. (s.history or "off") .. " (lines holding secrets are never written).")
end

local function need_client(s)
  local c = s:current()
  if not c then
    E.raise { kind = "usage", message = "no client in this session",
      hint = "log in with 'ghlua auth login', then :use LOCATION, or type :sim" }
  end
  return c
end

function cmd.whoami(s)
  local c = need_client(s)
  local function line(k, v) say(string.format("%-9s %s", k, v)) end
  if static_token(c) then
    local sim = s.sim and static_token(c) == s.sim.token
    line("token", "static token " .. redact(static_token(c)) .. (sim and " (the simulator's)" or ""))
    if c.location then line("location", c.location) else line("company", tostring(c.company)) end
    line("base", c.base)
    line("scopes", sim and "every scope (a simulator token)" or "not known for a static token")
    line("expires", sim and "never" or "not known")
    return
  end
  local row, crow = s:row_of(c)
  row = row or crow
  if not row then E.raise { kind = "auth", message = "no stored token for this client" } end
  local kind = row.kind == "pit" and "Private Integration Token" or ("OAuth " .. tostring(row.resource_type) .. " token")
  line("token", kind .. (row.kind == "pit" and (" '" .. tostring(row.name) .. "'") or (" · app " .. tostring(row.app)))
    .. " " .. redact(row.access_token) .. (crow and not s:row_of(c) and " (agency token: mints the location's)" or ""))
  if c.location then line("location", c.location) end
  if c.company or row.company_id then line("company", tostring(c.company or row.company_id)) end
  if row.user_id then line("user", row.user_id) end
  local scopes = {}
  for w in tostring(row.scope or ""):gmatch("%S+") do scopes[#scopes + 1] = w end
  table.sort(scopes)
  line("scopes", #scopes > 0 and (table.concat(scopes, " ") .. " (" .. #scopes .. ")")
    or (row.kind == "pit" and "chosen when the PIT was made (not recorded)" or "none recorded"))
  if row.kind == "pit" then
    line("expires", "not recorded (PITs last until rotated)")
  elseif row.expires_at then
    local left = row.expires_at - sys.time()
    line("expires", utc(row.expires_at) .. (left > 0 and (" (in " .. M.duration(left) .. ")")
      or (" (" .. M.duration(left) .. " ago; refreshed on the next request)")))
  end
  if row.status and row.status ~= "ok" then line("status", row.status .. (row.note and (": " .. row.note) or "")) end
  line("base", c.base)
end

local function scope_set(s)
  local c = s:current()
  local row = c and s:row_of(c)
  if not row or not row.scope then return nil end
  local set = {}
  for w in row.scope:gmatch("%S+") do set[w] = true end
  return set
end

-- The scopes this session's requests needed, from the operations table:
-- scope -> list of "METHOD /path" that needed it; only ok statements.
function Session:used_scopes(all)
  local used, writes = {}, false
  for _, st in ipairs(self.statements) do
    if st.ok or all then
      for _, r in ipairs(st.requests) do
        if not READS[r.method] then writes = true end
        for _, sc in ipairs(r.op and r.op.scopes or {}) do
          used[sc] = used[sc] or {}
          local what = r.op.method .. " " .. r.op.path
          local seen = false
          for _, x in ipairs(used[sc]) do if x == what then seen = true end end
          if not seen then table.insert(used[sc], what) end
        end
      end
    end
  end
  return used, writes
end

function cmd.scopes(s, args)
  local scopes = require "ghl.scopes"
  if args[1] then
    local word = table.concat(args, " ")
    local g = scopes.group(word)
    local rows = g and {} or scopes.search(word)
    if g then for _, sc in ipairs(g.scopes) do rows[#rows + 1] = scopes.info(sc) or { scope = sc } end end
    if #rows == 0 then say("no scope matches '" .. word .. "'") return end
    for _, r in ipairs(rows) do
      say(string.format("  %-40s %s%s", r.scope, r.tokens or "", r.note and ("  " .. r.note) or ""))
    end
    return
  end
  local granted = scope_set(s)
  local c = s:current()
  if granted then
    local list = {}
    for k in pairs(granted) do list[#list + 1] = k end
    table.sort(list)
    say("granted (" .. #list .. "):")
    for _, sc in ipairs(list) do say("  " .. sc) end
  elseif c then
    say("granted: not known for this token (" .. (static_token(c) and "a static token" or "none recorded") .. ")")
  end
  local used = s:used_scopes(true)
  local names = {}
  for k in pairs(used) do names[#names + 1] = k end
  table.sort(names)
  if #names == 0 then
    say("used: none yet (each request's scopes come from the operations table)")
    return
  end
  say("used by this session's requests:")
  for _, sc in ipairs(names) do
    local mark = granted and (granted[sc] and "✓ " or "✗ ") or "  "
    say(string.format("  %s%-38s %s", mark, sc, table.concat(used[sc], ", ")))
  end
end

local function last_request(s)
  local c = s.last_client
  local l = c and rawget(c, "last")
  if not l then E.raise { kind = "usage", message = "no request has been made in this session yet" } end
  return l, c
end

local function full_url(l)
  local url = l.url
  if l.query and next(l.query) then
    local q = require("ghl.http").encode(l.query)
    if q and q ~= "" then url = url .. (url:find("?", 1, true) and "&" or "?") .. q end
  end
  return url
end

function cmd.explain(s)
  local l, c = last_request(s)
  local function line(k, v) say(string.format("  %-9s %s", k, v)) end
  say(l.method .. " " .. full_url(l))
  line("Version", tostring(l.version))
  local tok
  if static_token(c) then
    tok = "static token " .. redact(static_token(c)) .. (s.sim and static_token(c) == s.sim.token and " (the simulator's)" or "")
  else
    local row = s:row_of(c)
    if row and row.kind == "pit" then tok = "Private Integration Token '" .. tostring(row.name) .. "'"
    else tok = "OAuth " .. tostring(row and row.resource_type or "") .. " token of app " .. tostring(c.app) end
    tok = tok .. " for " .. (c.location and ("location " .. c.location) or ("company " .. tostring(c.company)))
      .. " " .. tostring(l.token_hint)
  end
  line("token", tok)
  local status = l.status and tostring(l.status)
    or ("no response (" .. tostring(l.error and (l.error.kind .. ": " .. tostring(l.error.message)) or "?") .. ")")
  line("status", string.format("%s in %.0f ms%s", status, (l.time or 0) * 1000,
    (l.attempts or 1) > 1 and (", " .. l.attempts .. " attempts") or ""))
  local r = l.rate
  if r then
    local parts = {}
    if r.remaining then
      parts[#parts + 1] = string.format("%s of %s left in the %g s window", r.remaining, r.max, (r.interval_ms or 0) / 1000)
    end
    if r.daily_remaining then parts[#parts + 1] = string.format("%s of %s left today", r.daily_remaining, tostring(r.daily_limit)) end
    if (r.blocked_for or 0) > 0 then parts[#parts + 1] = string.format("paused for %.1f s", r.blocked_for) end
    line("rate", #parts > 0 and table.concat(parts, "; ") or "no rate-limit headers seen")
  end
  if l.op then
    line("operation", l.op.method .. " " .. l.op.path .. (l.op.summary ~= "" and (" (" .. l.op.summary .. ")") or ""))
    line("scopes", #l.op.scopes > 0 and table.concat(l.op.scopes, " ") or "none declared")
  end
end

function cmd.curl(s)
  local l = last_request(s)
  local parts = { "curl -sS" .. (l.method ~= "GET" and (" -X " .. l.method) or "") }
  parts[#parts + 1] = "'" .. full_url(l):gsub("'", "'\\''") .. "'"
  parts[#parts + 1] = "-H " .. shell_quote("Authorization: Bearer " .. tostring(l.token_hint))
  parts[#parts + 1] = "-H " .. shell_quote("Version: " .. tostring(l.version))
  parts[#parts + 1] = "-H " .. shell_quote("Accept: application/json")
  if l.body ~= nil then
    local body = type(l.body) == "string" and l.body or require("cjson").encode(l.body)
    parts[#parts + 1] = "-H " .. shell_quote("Content-Type: application/json")
    parts[#parts + 1] = "--data " .. shell_quote(body)
  end
  say(table.concat(parts, " \\\n  "))
end

function cmd.more()
  inspect.all(rawget(_G, "_"))
end

function cmd.quit(s)
  s.done = true
end

-- Does the statement only look at a value (a name or a dotted path)?
local function view_only(code)
  local t = code:match("^%s*(.-)%s*$")
  return t:match("^[%a_][%w_]*$") ~= nil or (t:match("^[%a_][%w_%.]*[%w_]$") ~= nil and not t:find("..", 1, true))
end

-- recipe(name, statements, opts) -> the text of a recipe file for
-- ghl.recipe: a manifest skeleton (scopes, writes) and the statements as
-- its main function, expressions assigned to `_`, which it returns.
-- statements: {code=, expression=}; opts: scopes (list), writes, date.
function M.recipe(name, statements, opts)
  opts = opts or {}
  local body = {}
  for _, st in ipairs(statements) do
    local code = st.expression and ("_ = " .. st.code) or st.code
    if code:find("%[=*%[") then
      body[#body + 1] = code
    else
      body[#body + 1] = "  " .. code:gsub("\n", "\n  ")
    end
  end
  local scopes = {}
  for _, sc in ipairs(opts.scopes or {}) do scopes[#scopes + 1] = string.format("%q", sc) end
  local lines = {
    "-- " .. name .. ": saved from the ghlua REPL (:save) on " .. (opts.date or os.date("!%Y-%m-%d")) .. ".",
    "-- Describe it, declare its params, then: ghlua run " .. name .. ".lua [--location ID]",
    "recipe{",
    "  name = " .. string.format("%q", name) .. ",",
    "  description = \"TODO: what this recipe does\",",
    "  scopes = { " .. table.concat(scopes, ", ") .. (#scopes > 0 and " " or "") .. "},",
    "  writes = " .. tostring(opts.writes == true) .. ",",
    "  params = {},",
    "}",
    "",
    "return function(params, client)   -- `ghl` is there too (sandboxed unless --trust)",
  }
  lines[#lines + 1] = "  local c = client"
  lines[#lines + 1] = "  local _"
  for _, b in ipairs(body) do lines[#lines + 1] = b end
  lines[#lines + 1] = "  return _"
  lines[#lines + 1] = "end"
  return table.concat(lines, "\n") .. "\n"
end

function cmd.save(s, args, force)
  local file = args[1]
  if not file or args[2] then E.raise { kind = "usage", message = "usage: :save FILE" } end
  if not force and sys.stat(file) then
    E.raise { kind = "usage", message = file .. " exists", hint = "use :save! " .. file .. " to overwrite it" }
  end
  local keep, skipped_secret = {}, 0
  local known = s:secrets()
  local scopes_set, writes = {}, false
  for _, st in ipairs(s.statements) do
    if st.ok and not view_only(st.code) then
      if M.secret(st.code, known) then
        skipped_secret = skipped_secret + 1
      else
        keep[#keep + 1] = st
        for _, r in ipairs(st.requests) do
          if not READS[r.method] then writes = true end
          for _, sc in ipairs(r.op and r.op.scopes or {}) do scopes_set[sc] = true end
        end
      end
    end
  end
  if #keep == 0 then E.raise { kind = "usage", message = "nothing to save: no successful statements yet" } end
  local scopes = {}
  for k in pairs(scopes_set) do scopes[#scopes + 1] = k end
  table.sort(scopes)
  local name = (file:match("([^/]+)$") or file):gsub("%.lua$", ""):gsub("[^%w_%-]", "_")
  local text = M.recipe(name, keep, { scopes = scopes, writes = writes })
  local ok, err = load(text, "=" .. file, "t", {})
  if not ok then E.raise { kind = "bug", message = "the recipe does not compile: " .. tostring(err) } end
  local f, ferr = io.open(file, "wb")
  if not f then E.raise { kind = "io", message = "cannot write " .. file .. ": " .. tostring(ferr) } end
  f:write(text)
  f:close()
  say(string.format("saved %d statement%s to %s (scopes: %s; writes: %s)%s", #keep, #keep == 1 and "" or "s", file,
    #scopes > 0 and table.concat(scopes, " ") or "none", tostring(writes),
    skipped_secret > 0 and string.format("; %d holding secrets left out", skipped_secret) or ""))
  say("run it with: ghlua run " .. shell_quote(file))
end

-- The locations :use lists, as {id=, name=}: those with a stored token,
-- the simulator's when one runs, and, with a stored agency (Company)
-- token, those where the app is installed (read from HighLevel; their
-- tokens are minted on first use). Names come from the simulator, from
-- that read, or from what `ghlua auth locations` last saw. Returns the
-- list (by name, then id) and a line saying what could not be read.
local function use_list(s)
  local by_id, list, why = {}, {}, nil
  local function add(id, name)
    if type(id) ~= "string" then return end
    local e = by_id[id]
    if not e then
      e = { id = id }
      by_id[id] = e
      list[#list + 1] = e
    end
    if type(name) == "string" and name ~= "" then e.name = e.name or name end
  end
  if s.sim then
    for _, l in ipairs(s.sim.ready.locations or {}) do
      if type(l) == "table" then add(l.id, l.name) else add(l) end
    end
    add(s.sim.location)
  end
  local rows = s:rows()
  local ok, locations = pcall(require, "ghl.cli.auth.locations")
  local names = ok and locations.names(rows) or {}
  local on_sim = s.sim and s.client and static_token(s.client) == s.sim.token
  for _, r in ipairs(rows) do
    if r.resource_type == "Location" then add(r.resource_id, names[r.resource_id]) end
    if r.resource_type == "Company" and r.kind == "oauth" and ok and not on_sim then
      local lok, installed = pcall(locations.list, r, { installed = true })
      if lok then
        for _, l in ipairs(installed) do add(l._id or l.id, l.name) end
      else
        why = "the locations installed under company " .. r.resource_id .. " could not be read: "
          .. (E.is(installed) and installed.message or tostring(installed))
      end
    end
  end
  local columns = require "ghl.cli.columns"
  table.sort(list, function(a, b) return columns.name_less(a, b, "id") end)
  return list, why
end

function cmd.use(s, args)
  local id = args[1]
  if not id then
    local cur = s:current()
    local list, why = use_list(s)
    if #list == 0 then
      say(why and E.sanitize(why) or "no locations known: log in with 'ghlua auth login', or type :sim")
      return
    end
    for _, l in ipairs(list) do l.name = l.name or "" end
    local lines = require("ghl.cli.columns").render({ { key = "id" }, { key = "name", max = 40 } }, list)
    for i, l in ipairs(lines) do say(((cur and cur.location == list[i].id) and "* " or "  ") .. l) end
    if why then say(E.sanitize(why)) end
    return
  end
  local c
  if s.sim and (not s:store() or s.client and static_token(s.client) == s.sim.token) then
    c = require("ghl.client").new { token = s.sim.token, base = s.sim.url, location = id }
  else
    c = require("ghl.client").new { location = id }
    local db = s:store()
    if db then db:kv_put("repl", "location", id) end
  end
  s:set_client(c)
  say(s:describe(c))
end

-- ---- The simulator ----

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local d = f:read("a")
  f:close()
  return d
end

function Session:stop_sim()
  local sim = self.sim
  if not sim then return false end
  self.sim = nil
  if sys.alive(sim.pid) then
    sys.kill(sim.pid, 15)
    local limit = sys.now() + 3
    while sys.alive(sim.pid) and sys.now() < limit do sys.sleep(0.02) end
    if sys.alive(sim.pid) then sys.kill(sim.pid, 9) end
  end
  for _, p in ipairs { sim.ready_file, sim.ready_file .. ".tmp", sim.log } do os.remove(p) end
  os.remove(sim.dir)
  return true
end

function cmd.sim(s, args)
  if args[1] == "stop" then
    if s:stop_sim() then
      say("simulator stopped")
      if s.client and s.sim_client == s.client then
        rawset(_G, "client", nil); rawset(_G, "c", nil); s.client = nil
        s:setup()
        if s.client then say(s:describe(s.client)) end
      end
    else
      say("no simulator is running")
    end
    return
  end
  if s.sim then
    say("a simulator is already running at " .. s.sim.url .. " (:sim stop ends it)")
    return
  end
  local dir = os.tmpname()
  os.remove(dir)
  assert(sys.mkdir(dir, tonumber("700", 8)))
  local ready, log = dir .. "/ready.json", dir .. "/sim.log"
  local argv = { shell_quote(s.native.exe), "sim", "--port", "0", "--ready-file", shell_quote(ready), "--quiet" }
  for _, a in ipairs(#args > 0 and args or M.SIM_ARGS) do argv[#argv + 1] = shell_quote(a) end
  local line = table.concat(argv, " ")
  -- its own session, so Ctrl-C at this terminal does not reach it
  local sh = string.format("(if command -v setsid >/dev/null 2>&1; then exec setsid %s; else exec %s; fi)"
    .. " </dev/null >%s 2>&1 & echo $! >%s", line, line, shell_quote(log), shell_quote(dir .. "/pid"))
  if not os.execute(sh) then E.raise { kind = "sim", message = "cannot start the simulator: " .. line } end
  local pid = tonumber((slurp(dir .. "/pid") or ""):match("%d+"))
  os.remove(dir .. "/pid")
  local sim = { pid = pid, dir = dir, ready_file = ready, log = log }
  local deadline = sys.now() + M.SIM_TIMEOUT
  local info
  while true do
    local text = slurp(ready)
    info = text and require("cjson.safe").decode(text)
    if type(info) == "table" and info.url then break end
    if not pid or not sys.alive(pid) or sys.now() > deadline then
      local why = slurp(log) or ""
      s.sim = sim
      s:stop_sim()
      E.raise { kind = "sim", message = "the simulator did not start" .. (why ~= "" and (": " .. why:gsub("%s+$", "")) or ""),
        hint = "try it in a shell: " .. line }
    end
    sys.sleep(0.02)
  end
  sim.url, sim.token, sim.location, sim.ready = info.url, info.token, info.locationId, info
  sim.secrets = { info.token }
  for _, a in ipairs(info.apps or {}) do sim.secrets[#sim.secrets + 1] = a.client_secret end
  for _, p in ipairs(info.pits or {}) do sim.secrets[#sim.secrets + 1] = p.token end
  s.sim = sim
  local c = require("ghl.client").new { token = sim.token, base = sim.url, location = sim.location }
  s:set_client(c)
  s.sim_client = c
  say(string.format("simulator running at %s (pid %d, log %s); :sim stop ends it", sim.url, pid, log))
  say(s:describe(c))
  say("`client` (also `c`) now talks to it: try c:get(\"/contacts/\", {locationId = c.location, limit = 5})")
end

-- Run ":name args" (name may end in "!").
function Session:command(line)
  local name, bang, rest = line:match("^%s*:(%a*)(!?)%s*(.-)%s*$")
  local matches = {}
  for _, c in ipairs(M.COMMANDS) do
    if c[1] == name then matches = { c[1] }; break end
    if name ~= "" and c[1]:sub(1, #name) == name then matches[#matches + 1] = c[1] end
  end
  if #matches ~= 1 then
    E.raise { kind = "usage", message = #matches == 0 and ("unknown command :" .. tostring(name))
      or ("ambiguous command :" .. name .. " (" .. table.concat(matches, ", ") .. ")"), hint = ":help lists the commands" }
  end
  local args = {}
  for w in rest:gmatch("%S+") do args[#args + 1] = w end
  return cmd[matches[1]](self, args, bang == "!")
end

-- ---- Reading statements ----

local function incomplete(err)
  return type(err) == "string" and err:sub(-5) == "<eof>"
end

-- Read one statement. Returns code, chunk, is_expression; code, nil, err
-- for a syntax error; "" when Ctrl-C dropped the input; nil at the end.
function Session:read()
  local rl = self.native.readline
  local line = rl(M.PROMPT)
  if line == nil then return nil end
  if line == false then out:write("\n") return "" end
  if line:match("^%s*$") then return "" end
  if line:match("^%s*:[^:]") or line:match("^%s*:$") then return line, "command" end
  local buf = line
  while true do
    local text = buf:gsub("^%s*=", "", 1)
    local f, eerr = load("return " .. text, "=stdin", "t", _G)
    if f then return buf, f, true end
    local g, serr = load(buf, "=stdin", "t", _G)
    if g then return buf, g, false end
    if not (incomplete(serr) or incomplete(eerr)) then return buf, nil, serr end
    local more = rl(M.PROMPT2)
    if more == nil then return buf, nil, serr end
    if more == false then out:write("\n") return "" end
    buf = buf .. "\n" .. more
  end
end

-- Keep a complete statement in the histories (the file only when it holds
-- no secret).
function Session:remember(code)
  if not self.native.tty then return end
  self.native.add_history(code)
  if self.history and not M.secret(code, self:secrets()) then
    M.history_append(self.history, code)
  end
end

-- Run one statement and print what it gives.
function Session:eval(code, f, expression)
  self.pending = {}
  local r = table.pack(self.native.call(f))
  local rec = { code = code, expression = expression, ok = r[1], requests = self.pending }
  self.pending = nil
  self.statements[#self.statements + 1] = rec
  if not r[1] then
    rawset(_G, "_err", r[2])
    self:report(r[2])
    return
  end
  if r.n >= 2 then
    if r[2] ~= nil then rawset(_G, "_", r[2]) end
    local p = table.pack(self.native.call(print_values, self.color, table.unpack(r, 2, r.n)))
    if not p[1] then self:report(p[2]) end
  end
end

function Session:loop()
  while not self.done do
    local code, f, extra = self:read()
    if code == nil then break end
    if code ~= "" then
      self:remember(code)
      if f == "command" then
        local r = table.pack(self.native.call(self.command, self, code))
        if not r[1] then
          rawset(_G, "_err", r[2])
          self:report(r[2])
        end
      elseif f then
        self:eval(code, f, extra)
      else
        rawset(_G, "_err", extra)
        self:report(extra)
      end
    end
  end
end

-- run(native): the REPL, until Ctrl-D or :quit (src/repl.c calls it).
function M.run(native)
  local s = setmetatable({ native = native, statements = {}, color = native.tty and inspect.use_color() }, Session)
  session = s
  if native.tty then
    local path = M.history_path()
    if path then
      local entries, err = M.history_open(path)
      if entries then
        s.history = path
        for _, e in ipairs(entries) do native.add_history(e) end
      else
        io.stderr:write("ghlua: history is off: ", tostring(err), "\n")
      end
    end
    local r = table.pack(native.call(s.banner, s))
    if not r[1] then s:report(r[2]) end
  else
    local r = table.pack(native.call(s.setup, s, true))
    if not r[1] then s:report(r[2]) end
  end
  local ok, err = pcall(s.loop, s)
  s:stop_sim()
  session = nil
  if native.tty then out:write("\n") end
  out:flush()
  if not ok then error(err, 0) end
end

return M
