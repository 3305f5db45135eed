-- ghl.repl.session: one REPL session's state and what it knows.
--   context      `ghl`, and `client` (also `c`) for GHL_LOCATION_ID, the
--                location last chosen with :use, or the only stored one;
--                the banner says which app, location and token expiry.
--   requests     every request a client makes while the session runs is
--                seen (Session:saw, through ghl.client's observe): the
--                client that made it (for :explain and :curl) and its
--                operation (for :save and :scopes).
--   the store    read only when its file exists (the REPL never creates
--                one); a store that cannot be read reads as empty.
--   output       say(), paint() and the small formatters the commands share.
-- new(native) makes the session; M.active is the running one (one per
-- process), or nil.
local sys = require "ghl.sys"

local M = {}

-- The running session, or nil.
M.active = nil

-- Methods that only read (:save's `writes`, :scopes).
M.READS = { GET = true, HEAD = true, OPTIONS = true }
local READS = M.READS

-- ---- Output ----

local out = io.stdout
M.out = out

function M.paint(code, s)
  local session = M.active
  if session and session.color then return "\27[" .. code .. "m" .. s .. "\27[0m" end
  return s
end

function M.say(...)
  out:write(...)
  out:write("\n")
  out:flush()
end
local say = M.say

function M.redact(s)
  if type(s) ~= "string" or s == "" then return "…" end
  return require("ghl.util").redact(s)
end
local redact = M.redact

function M.utc(t)
  return os.date("!%Y-%m-%d %H:%M UTC", math.floor(t))
end
local utc = M.utc

-- "3 days", "5 h 2 min", "4 min", "12 s".
function M.duration(secs)
  secs = math.floor(math.abs(secs))
  if secs >= 2 * 86400 then return (secs // 86400) .. " days" end
  if secs >= 3600 then return string.format("%d h %d min", secs // 3600, secs % 3600 // 60) end
  if secs >= 60 then return (secs // 60) .. " min" end
  return secs .. " s"
end

-- The token a client was made with (token=), kept out of its fields.
function M.static_token(c)
  return require("ghl.client").static_token(c)
end
local static_token = M.static_token

-- ---- Clients ----

function M.is_client(v)
  return type(v) == "table" and type(rawget(v, "base")) == "string" and type(rawget(v, "bucket")) == "table"
end
local is_client = M.is_client

-- ---- The session ----

local Session = {}
Session.__index = Session
M.Session = Session

-- The token store, when its file exists (the REPL never creates one).
function Session:store()
  if self.db ~= nil then return self.db or nil end
  local path = require("ghl.config").store_path()
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

-- A request starts (ghl.client's observer, while the session runs): keep
-- the client that made it (for :explain and :curl) and, while a statement
-- runs, its operation (for :save and :scopes).
function Session:saw(c, req)
  if type(req.method) ~= "string" or type(req.path) ~= "string" then return end
  self.last_client = c
  if self.pending then
    local op = require("ghl.api.ops").match(req.method:upper(), req.path, req.version == "v3")
    self.pending[#self.pending + 1] = { method = req.method:upper(), path = req.path, op = op }
  end
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

function Session:stop_sim()
  local sim = self.sim
  if not sim then return false end
  self.sim = nil
  sim.process.stop()
  return true
end

-- new(native) -> a session over src/repl.c's native table.
function M.new(native)
  local inspect = require "ghl.inspect"
  return setmetatable({ native = native, statements = {}, color = native.tty and inspect.use_color() }, Session)
end

return M
