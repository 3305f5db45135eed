-- ghl.sim.chaos: fault injection on the simulator's routes, and a log of
-- the requests it served, so retry tests can make the next few requests
-- fail and then count the attempts. Routes under /__sim/ (no Version, no
-- token, no rate limit, not counted, not logged):
--   PUT    /__sim/chaos     JSON {rules = [rule, ...]}: replaces the rules;
--                           answers as GET
--   GET    /__sim/chaos     {rules = [...]}: the rules left, each with the
--                           times it will still fire
--   DELETE /__sim/chaos     drops every rule
--   GET    /__sim/requests  {requests = [entry, ...], total, dropped}; the
--                           query may filter on method and path
--   DELETE /__sim/requests  empties the log
-- A rule: {method = "GET" (default: any), path = "/contacts/" or pattern =
-- "^/contacts/%w+$" (default: any route), times = N (default 1), and what
-- to do: status = 503 (a HighLevel error body, optional message and
-- headers, or body = "raw text" to send instead of that body: "" for an
-- empty answer), reset = true (TCP reset, no answer), close = true
-- (connection closed, no answer), delay_ms = N (alone, or before one of the
-- others), after = true (with status, reset or close: let the request take
-- effect first, then answer that way instead; a proxy that drops the
-- connection once the upstream has answered)}.
-- path matches the request path or the route's template
-- ("/contacts/:contactId"), trailing slashes ignored, never a prefix;
-- pattern is a Lua pattern searched in the request path. Rules are tried in
-- order; the first that matches fires and loses one of its times, and a
-- spent rule is dropped, so two rules on one path fire one after the other.
-- Where a rule fires: after routing (an unknown path is a 404, never a
-- fault); on API routes after the Version, token, scope and rate-limit
-- checks, so those errors are never hidden, an injected answer carries the
-- X-RateLimit headers and counts against the limit; on the public routes
-- (/oauth/token, /oauth/reconnect, the consent screen, /__fault) at once.
-- Before the body is read and the handler runs, so an injected status,
-- reset or close means the request had no effect, unless the rule says
-- after = true: then the handler runs (and its status is logged as
-- handled) and the injected answer replaces its own. delay_ms alone lets
-- the request take effect and holds its answer back (a client that times
-- out has still created the record).
-- The log keeps the last LOG_MAX requests of every route but /__sim/'s:
-- {seq, method, path (as sent), query (the query string, keys sorted),
-- route (the template matched, or null), version (the Version header, or
-- null), status (a number, or "close" / "reset"), at (epoch ms), chaos
-- (true when a rule fired), delayMs (when held back), handled (with an
-- after rule: the status the handler answered, never sent), remaining (on
-- rate-limited routes: the X-RateLimit-Remaining sent, the window's budget
-- left after this request)}; dropped counts the entries pushed out. The
-- answer of an entry leaves no earlier than at + delayMs. A malformed PUT body is a 400 that changes nothing.
local reply = require "ghl.sim.reply"

local M = {}
local Chaos = {}
Chaos.__index = Chaos

M.LOG_MAX = 1000
M.MAX_DELAY_MS = 600000

function M.new(config)
  config = config or {}
  return setmetatable({ rules = {}, log = {}, first = 1, n = 0, seq = 0, dropped = 0,
    log_max = config.log_max or M.LOG_MAX }, Chaos)
end

-- ---- Rules ----

local function strip(path)
  path = path:gsub("/+$", "")
  return path == "" and "/" or path
end

-- Check one rule from a PUT body; returns the rule the simulator keeps.
-- Raises 400 naming rules[i].
local function check_rule(r, i)
  local where = string.format("rules[%d]", i - 1)
  local function bad(msg) reply.raise(400, where .. msg) end
  if type(r) ~= "table" then bad(" must be an object") end
  local known = { method = true, path = true, pattern = true, times = true, status = true,
    message = true, headers = true, reset = true, close = true, delay_ms = true, after = true,
    body = true }
  for k in pairs(r) do
    if not known[k] then bad(" has an unknown field " .. tostring(k)) end
  end
  local rule = {}
  if r.method ~= nil then
    if type(r.method) ~= "string" or not r.method:match("^%a+$") and r.method ~= "*" then
      bad(".method must be an HTTP method or *")
    end
    rule.method = r.method:upper()
  end
  if r.path ~= nil and r.pattern ~= nil then bad(" takes path or pattern, not both") end
  if r.path ~= nil then
    if type(r.path) ~= "string" or r.path:sub(1, 1) ~= "/" then bad(".path must start with /") end
    rule.path = strip(r.path)
  end
  if r.pattern ~= nil then
    if type(r.pattern) ~= "string" or not pcall(string.find, "", r.pattern) then
      bad(".pattern must be a valid Lua pattern")
    end
    rule.pattern = r.pattern
  end
  local times = r.times == nil and 1 or math.tointeger(r.times)
  if not times or times < 1 then bad(".times must be an integer >= 1") end
  rule.times = times
  local actions = 0
  if r.status ~= nil then
    local st = math.tointeger(r.status)
    if not st or st < 100 or st > 599 then bad(".status must be an HTTP status from 100 to 599") end
    rule.status, actions = st, actions + 1
  end
  for _, k in ipairs { "reset", "close" } do
    if r[k] ~= nil and type(r[k]) ~= "boolean" then bad("." .. k .. " must be a boolean") end
    if r[k] then rule[k], actions = true, actions + 1 end
  end
  if actions > 1 then bad(" takes one of status, reset and close") end
  if r.delay_ms ~= nil then
    local ms = math.tointeger(r.delay_ms)
    if not ms or ms < 0 or ms > M.MAX_DELAY_MS then
      bad(".delay_ms must be an integer from 0 to " .. M.MAX_DELAY_MS)
    end
    rule.delay_ms = ms
  end
  if actions == 0 and not rule.delay_ms then bad(" needs status, reset, close or delay_ms") end
  if r.message ~= nil then
    if not rule.status or type(r.message) ~= "string" then bad(".message must be a string, with status") end
    rule.message = r.message
  end
  if r.body ~= nil then
    if not rule.status or type(r.body) ~= "string" then bad(".body must be a string, with status") end
    if r.message ~= nil then bad(" takes message or body, not both") end
    rule.body = r.body
  end
  if r.after ~= nil then
    if type(r.after) ~= "boolean" then bad(".after must be a boolean") end
    if r.after and actions == 0 then bad(".after needs status, reset or close") end
    rule.after = r.after or nil
  end
  if r.headers ~= nil then
    if not rule.status or type(r.headers) ~= "table" then bad(".headers must be an object, with status") end
    rule.headers = {}
    for k, v in pairs(r.headers) do
      if type(k) ~= "string" or (type(v) ~= "string" and type(v) ~= "number") then
        bad(".headers must map names to strings")
      end
      rule.headers[k] = tostring(v)
    end
  end
  return rule
end

-- Replace the rules with those of a decoded PUT body (raises 400).
function Chaos:set(body)
  if type(body) ~= "table" or type(body.rules) ~= "table" then
    reply.raise(400, "Expected a JSON object {rules: [...]}")
  end
  local rules = {}
  for i, r in ipairs(body.rules) do rules[i] = check_rule(r, i) end
  self.rules = rules
end

function Chaos:clear()
  self.rules = {}
end

local function matches(rule, method, path, route)
  if rule.method and rule.method ~= "*" and rule.method ~= method then return false end
  if rule.path then
    return rule.path == strip(path) or (route ~= nil and rule.path == strip(route.path))
  end
  if rule.pattern then return path:find(rule.pattern) ~= nil end
  return true
end

-- The rule that fires for this request, if any (it loses one of its times).
function Chaos:fire(method, path, route)
  for i, rule in ipairs(self.rules) do
    if matches(rule, method, path, route) then
      rule.times = rule.times - 1
      if rule.times <= 0 then table.remove(self.rules, i) end
      return rule
    end
  end
  return nil
end

-- The injected answer of a rule that fired, or nil when it only delays.
-- ctx gives the trace id. The pipeline asks before the handler runs, or
-- after it for an after rule.
function M.response(rule, ctx)
  if rule.reset then return { reset = true } end
  if rule.close then return { close = true } end
  if rule.status and rule.body then
    local h = { ["Content-Type"] = "application/json; charset=utf-8" }
    for k, v in pairs(rule.headers or {}) do h[k] = v end
    return { status = rule.status, headers = h, body = rule.body }
  end
  if rule.status then
    local msg = rule.message or reply.reason(rule.status)
    if rule.status < 400 then return reply.json(rule.status, { ok = true }, rule.headers) end
    return reply.json(rule.status, reply.error_body(rule.status, msg, ctx.trace_id), rule.headers)
  end
  return nil
end

local function present_rule(r)
  local o = {}
  for k, v in pairs(r) do o[k] = v end
  return o
end

-- ---- The request log ----

-- The query string of a request, keys sorted (the server hands the query
-- over decoded, so this is a canonical rebuild, not the bytes sent).
function M.query_string(req)
  local all, pairs_list = req.query_all, {}
  if type(all) ~= "table" then
    all = {}
    for k, v in pairs(req.query or {}) do all[k] = { v } end
  end
  local keys = {}
  for k in pairs(all) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local vs = all[k]
    if type(vs) ~= "table" then vs = { vs } end
    for _, v in ipairs(vs) do pairs_list[#pairs_list + 1] = { k, v } end
  end
  return reply.query_string(pairs_list)
end

-- Append one entry (fields as in the header); past log_max the oldest
-- goes. The log is the window [first, first + n) of self.log.
function Chaos:record(entry)
  self.seq = self.seq + 1
  entry.seq = self.seq
  self.log[self.first + self.n] = entry
  self.n = self.n + 1
  if self.n > self.log_max then
    self.log[self.first] = nil
    self.first, self.n = self.first + 1, self.n - 1
    self.dropped = self.dropped + 1
  end
end

function Chaos:entries()
  local out = {}
  for i = self.first, self.first + self.n - 1 do out[#out + 1] = self.log[i] end
  return out
end

function Chaos:clear_log()
  self.log, self.first, self.n, self.dropped = {}, 1, 0, 0
end

-- ---- Routes ----

local function chaos_of(ctx)
  return ctx.app.chaos
end

local function get_rules(ctx)
  local out = reply.array()
  for _, r in ipairs(chaos_of(ctx).rules) do out[#out + 1] = present_rule(r) end
  return 200, { rules = out }
end

local function put_rules(ctx)
  local body = ctx.req.body and reply.decode(ctx.req.body)
  chaos_of(ctx):set(body)
  return get_rules(ctx)
end

local function delete_rules(ctx)
  chaos_of(ctx):clear()
  return 200, { rules = reply.array() }
end

local function get_requests(ctx)
  local c, q = chaos_of(ctx), ctx.query
  local method = q.method and q.method ~= "" and q.method:upper() or nil
  local path = q.path and q.path ~= "" and strip(q.path) or nil
  local out = reply.array()
  for _, e in ipairs(c:entries()) do
    if (not method or e.method == method) and (not path or strip(e.path) == path) then
      out[#out + 1] = e
    end
  end
  return 200, { requests = out, total = #out, dropped = c.dropped }
end

local function delete_requests(ctx)
  chaos_of(ctx):clear_log()
  return 200, { requests = reply.array(), total = 0, dropped = 0 }
end

M.routes = {
  { method = "GET", path = "/__sim/chaos", handler = get_rules },
  { method = "PUT", path = "/__sim/chaos", handler = put_rules },
  { method = "DELETE", path = "/__sim/chaos", handler = delete_rules },
  { method = "GET", path = "/__sim/requests", handler = get_requests },
  { method = "DELETE", path = "/__sim/requests", handler = delete_requests },
}
for _, r in ipairs(M.routes) do
  r.public, r.uncounted, r.family = true, true, "sim"
end


return M
