-- ghl.client: the API client every script, recipe and REPL line goes
-- through.
--   local c = ghl.client{location=ID | company=ID | app=NAME | token=T, base=URL}
--   c:get(path, query, opts) / c:post(path, body, opts) / put / patch / delete
--   c:request(method, path, opts)      opts: query, body (a value, sent as
--                                       JSON), data (JSON text, sent as is),
--                                       form, version, headers, raw (the
--                                       response; resp.error for >= 400,
--                                       a 3xx, an empty GET answer or an
--                                       unknown outcome), timeout, retry
--                                       (safe to send again: see M.decide)
--   c:paginate(path, params, opts)     iterator over items, every style
--   c:batch(requests, {concurrency=N}) results in order (value or ghl.error)
--   c:rate()                           the throttle's view of the limits
--   c:prepare(method, path, opts)      the request it would send (dry run)
--   client.observe(fn) -> remove       fn(c, req) at the start of every
--                                       request (see M.observe)
--   c.contacts:create{...}             the resource modules (ghl.contacts, ...)
--                                       bound to the client
-- With dry_run = PLAN (a table), every write (a method other than GET/HEAD,
-- unless the operations table says the route only reads, like POST
-- /contacts/search) is appended to PLAN as {method, path, url, query, body,
-- version, location} instead of being sent, and answers {dryRun = true,
-- id = "dry-run-N"}; reads are sent as usual. c.dry_run is then truthy (the
-- plan; true in a sandboxed recipe's client), so a caller can tell a
-- planned write from a made one and say "would create 3", never "created".
-- Path placeholders such as {locationId} come from the client's context,
-- and so do required locationId/companyId query parameters and JSON body
-- fields the caller left out (GET /contacts/ and POST /contacts/ need no
-- explicit locationId); one the caller gave is never replaced.
-- The Version header comes from the operations table (ghl.api.ops), tokens
-- from the store with automatic refresh (ghl.auth), and every request waits
-- for the per-(app, resource) throttle fed by the X-RateLimit-* headers, so
-- a 429 it could have seen coming never happens. One request path serves
-- this client and ghl.oauth: M.send sends once, M.decide is the one retry
-- policy (its comment is the rule: 429s and refused connections are sent
-- again, other failures only for idempotent requests), M.perform loops.
-- HighLevel errors are raised as ghl.error {kind="http", status, message,
-- traceId, method, path, hint}; a 3xx is an error too (no redirect is
-- followed); a write whose outcome is unknown (a timeout, a reset or a 5xx
-- after it was sent) raises code "outcome_unknown": "may have been applied".
local E = require "ghl.error"
local loop = require "ghl.loop"
local sys = require "ghl.sys"
local hints = require "ghl.hints"
local notice = require "ghl.notice"

local M = {}
local Client = {}

-- Resource modules reachable as bound views: c.contacts:create(fields) is
-- ghl.contacts.create(c, fields).
M.RESOURCES = require("ghl.resource").NAMES

Client.__index = function(c, k)
  local v = Client[k]
  if v ~= nil or not M.RESOURCES[k] then return v end
  local view = require("ghl.resource").bind(require("ghl." .. k), c)
  rawset(c, k, view)
  return view
end
Client.__complete = M.RESOURCES   -- names for the REPL's completion (ghl.repl)

M.API_BASE = "https://services.leadconnectorhq.com"
M.RETRIES = 3           -- network errors and 5xx, idempotent methods
M.RETRIES_429 = 6
M.BACKOFF = 0.5         -- seconds, doubled each time, with jitter
M.BACKOFF_CAP = 30

local IDEMPOTENT = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true }

local ops_ok, ops = pcall(require, "ghl.api.ops")
if not ops_ok then ops = nil end

-- ---- The throttle ----

-- One bucket per (app, resource), shared by every client, coroutine and
-- OAuth call of the process (ghl.oauth sends through M.perform too). A
-- sliding log of send times keeps at most `max` requests in any
-- `interval`; the server's headers correct it.
--
-- Inside ghl.parallel the requests waiting for a bucket queue up in
-- arrival order (b.queue), and only the first of them waits for time: it
-- sleeps exactly until its slot opens (or the probe's answer, below, wakes
-- it), takes the slot and wakes the next, which either finds a slot free
-- at once or sleeps until its own. So 300 coroutines behind one agency
-- (Company) bucket cost one timer, never a poll, and when a window opens
-- they go in order, one wake-up each, with no stampede of waiters that
-- find the window full again. A waiter that is closed (Ctrl-C, an error
-- elsewhere) leaves the queue as it goes (a to-be-closed variable).
local buckets = {}

-- What the server's rate-limit headers may make the client do, at most:
-- a burst window of 100 ms to 60 s, 1 to 10000 requests per window, and
-- no single wait (Retry-After, a window, a backoff) longer than MAX_WAIT.
-- HighLevel sends 10000 ms and 100 requests; anything outside these
-- bounds is a broken or hostile answer, not a reason to sleep for days.
M.INTERVAL_MS = { 100, 60000 }
M.MAX_REQUESTS = { 1, 10000 }
M.MAX_WAIT = 60

local function clamp(v, lo, hi)
  if v ~= v then return lo end   -- NaN
  return math.max(lo, math.min(hi, v))
end

local function bucket(key)
  local b = buckets[key]
  if not b then
    b = { max = 100, interval = 10, sent = {}, head = 1, daily_remaining = nil, daily_limit = nil,
          remaining = nil, others = 0, others_until = 0, probing = false, answered = false, queue = {} }
    buckets[key] = b
  end
  return b
end
M.bucket = bucket

local MARGIN = 0.02 -- seconds added to each wait: our clock starts before the server's

-- What a client's budget is for, in messages: "location ID".
local function owner(c)
  return c.location and ("location " .. c.location) or ("company " .. tostring(c.company))
end

local PROBE_WAIT = 2 -- seconds others wait for a bucket's first answer at most

-- Sleep s seconds, never more than MAX_WAIT (yields inside ghl.parallel).
local function wait(s)
  loop.sleep(clamp(s, 0, M.MAX_WAIT))
end

M.NOTICE_AFTER = 1   -- seconds: a longer rate-limit wait is announced (ghl.notice)

-- Tell a person at the terminal that the budget of bucket b (`who`'s)
-- holds requests back for s seconds: one line per bucket per wait.
local function announce_wait(b, who, s, why)
  if s <= M.NOTICE_AFTER then return end
  s = math.min(s, M.MAX_WAIT)
  notice.say("rate", b, ("waiting %s for the rate limit of %s (%d per %s)%s"):format(notice.seconds(s), who,
    b.max, notice.seconds(b.interval):gsub("%.0 s$", " s"), why or ""), s)
end

-- The log keeps sends for SLACK seconds past the interval: an answer
-- arriving now may come from a server window that still counts them.
local SLACK = 2

-- Sends in bucket b's log after time t (the log is in time order).
local function since(b, t)
  local lo, hi = b.head, #b.sent + 1
  while lo < hi do
    local mid = (lo + hi) // 2
    if b.sent[mid] > t then hi = mid else lo = mid + 1 end
  end
  return #b.sent - lo + 1
end

-- Sends in bucket b's log within the last interval (dropping the ones
-- older than interval + SLACK).
local function in_window(b, now)
  local old = now - b.interval - math.min(SLACK, b.interval)
  while b.head <= #b.sent and b.sent[b.head] <= old do b.head = b.head + 1 end
  if b.head > 256 then
    b.sent = table.move(b.sent, b.head, #b.sent, 1, {})
    b.head = 1
  end
  return since(b, now - b.interval)
end

-- Seconds until one more request fits in bucket b (0: now), and whether
-- the wait is for the probe's answer (which settle() may end early).
-- Until a bucket has had an answer it does not know the server's limit,
-- so its first request goes alone (the probe) and the others wait for it,
-- for PROBE_WAIT at most (a probe abandoned by Ctrl-C never settles).
-- Requests the server counted that were not ours (b.others, see observe)
-- fill the window until b.others_until, when its window has surely ended.
local function delay(b, now)
  if b.probing and b.probing > now then return b.probing - now, true end
  local count = in_window(b, now)
  if b.others_until > now and count + b.others >= b.max then return b.others_until - now end
  if count >= b.max then
    -- the max-th most recent send leaves the window (with the limit
    -- lowered by a header, the ones beyond it leave first)
    return b.sent[#b.sent - b.max + 1] + b.interval - now + MARGIN
  end
  return 0
end

-- wait_for(key) -> seconds a request in the bucket `key` (M.bucket_key)
-- would wait for the throttle now; 0 when it would go at once. For a
-- caller that must not block (the webhook receiver) and comes back later.
function M.wait_for(key)
  return (delay(bucket(key), sys.now()))
end

local function check_daily(b, who)
  if b.daily_remaining == 0 then
    E.raise { kind = "rate", message = "the daily request limit of " .. (b.daily_limit or "?") ..
      " is used up for " .. who, hint = "nothing will succeed until the daily window resets; retry tomorrow" }
  end
end

-- Count one request as sent now; true when it is the bucket's probe.
local function take(b, now)
  b.sent[#b.sent + 1] = now
  if not b.answered then b.probing = now + PROBE_WAIT; return true end
  return false
end

-- Wake the first waiter of bucket b (it looks at the bucket again).
local function kick(b)
  local co = b.queue[1]
  if co then loop.wake(co) end
end

-- Leave bucket b's queue; the next waiter, if co was first, looks again.
local function leave(b, co)
  local q = b.queue
  for i = 1, #q do
    if q[i] == co then
      table.remove(q, i)
      if i == 1 then kick(b) end
      return
    end
  end
end

-- Wait until one more request fits in bucket b (whose budget is `who`'s,
-- for messages), then count it as sent. Returns true for the probe: its
-- caller must call settle(b, got_answer).
local function acquire(b, who)
  local co = loop.current()
  if not co then
    -- outside ghl.parallel nothing else runs: wait for the slot and take it
    while true do
      check_daily(b, who)
      local now = sys.now()
      local w, probe = delay(b, now)
      if w <= 0 then return take(b, now) end
      if not probe then announce_wait(b, who, w) end
      wait(w)
    end
  end
  local q = b.queue
  local now = sys.now()
  if #q == 0 then
    check_daily(b, who)
    if delay(b, now) <= 0 then return take(b, now) end
  end
  q[#q + 1] = co
  local _ <close> = setmetatable({}, { __close = function() leave(b, co) end })
  while true do
    local first = q[1]
    if first ~= co and coroutine.status(first) == "dead" then
      leave(b, first)      -- cannot happen (a waiter leaves as it goes); never wait on it
    elseif first ~= co then
      -- until the waiter before it has its slot (the time limit is only a
      -- safety net: the wake comes from leave)
      loop.park(M.MAX_WAIT)
    else
      check_daily(b, who)
      now = sys.now()
      local w, probe = delay(b, now)
      if w <= 0 then return take(b, now) end   -- leaving wakes the next
      if not probe then announce_wait(b, who, w) end
      loop.park(math.min(w, M.MAX_WAIT))
    end
  end
end

-- The probe of bucket b ended, with an answer that told the limits or not
-- (then the next request probes again); the first waiter looks again.
local function settle(b, answered)
  b.probing = false
  b.answered = b.answered or answered
  kick(b)
end

-- Feed the bucket from a response's X-RateLimit-* headers, clamped (see
-- INTERVAL_MS, MAX_REQUESTS). Returns true when the answer carried them.
-- A window or a limit that changed wakes the first waiter, to look again.
local function observe(b, h)
  local max = tonumber(h["x-ratelimit-max"])
  local interval = tonumber(h["x-ratelimit-interval-milliseconds"])
  local remaining = tonumber(h["x-ratelimit-remaining"])
  local before_max, before_interval = b.max, b.interval
  if max and max > 0 then b.max = math.floor(clamp(max, M.MAX_REQUESTS[1], M.MAX_REQUESTS[2])) end
  if interval and interval > 0 then b.interval = clamp(interval, M.INTERVAL_MS[1], M.INTERVAL_MS[2]) / 1000 end
  local daily = tonumber(h["x-ratelimit-daily-remaining"])
  if daily then b.daily_remaining = math.max(0, daily) end
  b.daily_limit = tonumber(h["x-ratelimit-limit-daily"]) or b.daily_limit
  b.remaining = remaining
  -- The server's window holds max - remaining requests. When that is more
  -- than our log holds in the last interval (and the slack before it: the
  -- server counts a request when it arrives, we when we send it), the
  -- rest are not ours:
  -- another process or tool shares the budget, or a run just before this
  -- one used it (a process starts with an empty log). They are counted
  -- until the server's window has surely ended (one interval after the
  -- answer that showed the most of them, at most MAX_WAIT), so the next
  -- request is sent only when it fits; with none left at all, that is a
  -- whole interval's wait. Our log also holds our requests still on their
  -- way (32 mints in flight, say), which the server had not counted yet,
  -- so each answer shows at most the others' number: the largest is kept.
  if remaining then
    local now = sys.now()
    if b.others_until <= now then b.others = 0 end
    in_window(b, now)
    local others = (b.max - remaining) - since(b, now - b.interval - math.min(SLACK, b.interval))
    if others > b.others then
      b.others, b.others_until = others, now + math.min(b.interval, M.MAX_WAIT) + MARGIN
    end
  end
  if b.max ~= before_max or b.interval ~= before_interval or b.daily_remaining == 0 then kick(b) end
  return max ~= nil or interval ~= nil or remaining ~= nil
end

-- The bucket of an app's budget for a resource: HighLevel counts "per
-- Marketplace app per location or company" (FACTS §6), so the app is named
-- by its app id (the client id up to "-": installedLocations' appId).
function M.bucket_key(client_id, resource)
  client_id = tostring(client_id)
  return (client_id:match("^([^-]+)%-") or client_id) .. ":" .. tostring(resource)
end

-- ---- Construction ----

-- A client's static token lives here, not in a field: nothing that prints
-- or walks the client (ghl.inspect, the REPL, a recipe) can reach it.
local static = setmetatable({}, { __mode = "k" })

-- static_token(c) -> the token the client was made with (token=), or nil.
function M.static_token(c)
  return static[c]
end

local function token_id(token)
  local ok, crypto = pcall(require, "ghl.crypto")
  local d = ok and crypto.digest("sha256", token)
  if not d then return tostring(#token) end
  return require("ghl.util").hex(d:sub(1, 8))
end

-- new{location=, company=, app=, token=, base=, version=} -> client
function M.new(o)
  o = o or {}
  if type(o) == "string" then o = { location = o } end
  local c = setmetatable({
    base = (o.base or os.getenv("GHLUA_API_BASE") or M.API_BASE):gsub("/+$", ""),
    location = o.location, company = o.company, app = o.app,
    -- false, not nil: a missing field would go through Client.__index
    version = o.version or false, timeout = o.timeout or false, dry_run = o.dry_run or false,
    guard = false,
  }, Client)
  if o.token then
    static[c] = o.token
    c.location = c.location or os.getenv("GHL_LOCATION_ID")
    -- the bucket is the token's: named by a digest, never by its characters
    c.key = "token:" .. token_id(o.token) .. ":" .. (c.location or c.company or "")
  else
    local auth = require "ghl.auth"
    local row, crow = auth.find { location = c.location, company = c.company, app = c.app }
    if not row and not crow then
      local what = c.location and ("location " .. c.location) or c.company and ("company " .. c.company)
      E.raise { kind = "auth", message = { lua = "no stored token for " .. (what or "this client"),
                                           cli = "no stored token" .. (what and (" for " .. what) or "") },
        hint = { lua = "log in with 'ghlua auth login', store a PIT with 'ghlua auth pit add', or pass token=",
                 cli = "log in with 'ghlua auth login', store a PIT with 'ghlua auth pit add', or set GHL_TOKEN" } }
    end
    row = row or crow
    c.app = c.app or row.app
    if not c.location and not c.company then
      if row.resource_type == "Location" then c.location = row.resource_id else c.company = row.resource_id end
    end
    c.company = c.company or row.company_id
    c.kind = row.kind
    local a = auth.app(c.app, true)
    c.key = M.bucket_key(a and a.client_id or c.app, c.location or c.company)
  end
  c.bucket = bucket(c.key)
  return c
end

setmetatable(M, { __call = function(_, o) return M.new(o) end })

-- The bearer token and its store row (nil for a static token).
function Client:token()
  local t = static[self]
  if t then return t end
  local q = { app = self.app }
  if self.location then q.location = self.location else q.company = self.company end
  return require("ghl.auth").token(q)
end

-- ---- Building requests ----

local find = string.find

local urlencode_segment = require("ghl.util").urlencode

-- Fill {placeholders}: locationId/companyId from the client, others from
-- params (removed from it). Raises for one that stays empty.
function Client:fill(path, params)
  if not find(path, "{", 1, true) then return path end
  return (path:gsub("{([%w_]+)}", function(name)
    local v
    if params and params[name] ~= nil then v = params[name]; params[name] = nil
    elseif name == "locationId" then v = self.location
    elseif name == "companyId" then v = self.company end
    if v == nil then error(("path placeholder {%s} has no value: pass it in the params"):format(name), 4) end
    return urlencode_segment(v)
  end))
end

-- Required query parameters the client's context can answer.
local CONTEXT_PARAMS = { locationId = "location", location_id = "location",
                         companyId = "company", company_id = "company" }

-- Fill op's required locationId/companyId query parameters (and their
-- snake_case forms) from the client unless the caller gave them, in query
-- or in the path's own query string (from q on). Returns the query table.
function Client:fill_query(op, query, path, q)
  for _, name in ipairs(op.query) do
    local from = CONTEXT_PARAMS[name]
    local v = from and self[from]
    if v and not (query and query[name] ~= nil)
       and not (q and find(path, "[?&]" .. name .. "=", q)) then
      query = query or {}
      query[name] = v
    end
  end
  return query
end

-- The context values (name -> value) for op's required body fields that
-- the client can answer (locationId, companyId and their snake_case
-- forms), in the table's order; nil when there are none.
local function body_context(self, op)
  local list
  for _, name in ipairs(op.body) do
    local from = CONTEXT_PARAMS[name]
    local v = from and self[from]
    if v then
      list = list or {}
      list[#list + 1] = { name, v }
    end
  end
  return list
end

-- Fill op's required locationId/companyId body fields from the client
-- unless the caller gave them (null counts as given): in body, a plain
-- table the caller's copy of which build made (a table with a metatable,
-- an array, is left alone), or in data, JSON text, where a top-level
-- object gets the missing fields appended (the rest of the text stays as
-- written). Without either (and without a form) the body is made of the
-- fields alone. Returns body, data.
function Client:fill_body(op, body, data, form)
  local fields = body_context(self, op)
  if not fields or form ~= nil then return body, data end
  if data ~= nil then
    if type(data) ~= "string" or not data:find("^%s*{") then return body, data end
    local t = require("cjson.safe").decode(data)
    if type(t) ~= "table" then return body, data end   -- not JSON (the server will say), or too deep
    local jq, add = require "ghl.jq", {}
    for _, f in ipairs(fields) do
      if t[f[1]] == nil then add[#add + 1] = jq.encode(f[1]) .. ":" .. jq.encode(f[2]) end
    end
    if #add == 0 then return body, data end
    local head = data:match("^(.-)%s*}%s*$")
    if not head then return body, data end
    local sep = next(t) == nil and "" or ","
    return body, head .. sep .. table.concat(add, ",") .. "}"
  end
  if body == nil then body = {} end
  if type(body) ~= "table" or getmetatable(body) or body[1] ~= nil then return body, data end
  for _, f in ipairs(fields) do
    if body[f[1]] == nil then body[f[1]] = f[2] end
  end
  return body, data
end

local function op_for(method, path, v3)
  if not ops then return nil end
  return ops.op(method, path, v3)
end

-- The request table for method/path/opts, before the token is added.
function Client:build(method, path, opts)
  method = method:upper()
  opts = opts or {}
  local query
  if opts.query then
    query = {}
    for k, v in pairs(opts.query) do query[k] = v end
  end
  local body = opts.body
  if type(body) == "table" and not getmetatable(body) then
    local copy = {}
    for k, v in pairs(body) do copy[k] = v end
    body = copy
  end
  local filled = Client.fill(self, path, query or (type(body) == "table" and body) or nil)
  local q = find(filled, "?", 1, true)
  local bare = q and filled:sub(1, q - 1) or filled
  local op = op_for(method, bare, opts.version == "v3")
  if op and #op.query > 0 then query = Client.fill_query(self, op, query, filled, q) end
  local data = opts.data
  if op and #op.body > 0 then body, data = Client.fill_body(self, op, body, data, opts.form) end
  local version = opts.version or self.version or (op and op.version)
    or (ops and ops.version(method, bare, opts.version == "v3")) or "2021-07-28"
  local headers = { Version = version, Accept = "application/json" }
  if data then headers["Content-Type"] = "application/json" end
  if opts.headers then
    for k, v in pairs(opts.headers) do headers[k] = v end
  end
  return {
    method = method, url = self.base .. filled, query = query, headers = headers,
    json = body, form = opts.form, body = data, timeout = opts.timeout or self.timeout or 60,
  }, op, filled
end

-- prepare(method, path, opts) -> {method, url, headers (token redacted), body, version}
function Client:prepare(method, path, opts)
  local req = self:build(method, path, opts)
  local http = require "ghl.http"
  local token = static[self]
  if not token then   -- the stored token as it is: a dry run never refreshes
    local row = require("ghl.auth").find { app = self.app, location = self.location,
                                           company = not self.location and self.company or nil }
    token = row and row.access_token
  end
  req.headers.Authorization = "Bearer " .. (token and require("ghl.util").redact(token) or "…")
  local url = req.url
  if req.query and next(req.query) then url = url .. (url:find("?", 1, true) and "&" or "?") .. assert(http.encode(req.query)) end
  local body = req.body
  if req.json ~= nil then body = require("cjson").encode(req.json)
  elseif req.form then body = assert(http.encode(req.form)) end
  return { method = req.method, url = url, headers = req.headers, body = body, version = req.headers.Version }
end

-- ---- Errors ----

local function http_error(self, req, resp, body, op, path, row)
  local msg = hints.message_of(body) or ("HTTP " .. resp.status)
  local code, hint = hints.lookup(msg, { method = req.method, path = op and op.path or path,
    scopes = op and op.scopes, location = self.location, status = resp.status, token = row,
    static = static[self] ~= nil, meta = type(body) == "table" and body.meta or nil })
  if not hint and resp.status == 404 then hint = "check the path and the ids in it" end
  local err = E.new { kind = "http", status = resp.status, message = msg, code = code, hint = hint,
    traceId = type(body) == "table" and body.traceId or resp.headers["x-trace-id"],
    method = req.method, path = path, where = req.method .. " " .. path,
    meta = type(body) == "table" and body.meta or nil, body = resp.body }
  return err
end

local function backoff(attempt)
  local d = math.min(M.BACKOFF * 2 ^ (attempt - 1), M.BACKOFF_CAP)
  return d / 2 + math.random() * d / 2
end

-- Printable, bounded text from a header the server chose.
local function printable(s)
  s = tostring(s or ""):gsub("[%c\127]", "?")
  if #s > 200 then s = s:sub(1, 200) .. "\u{2026}" end
  return s
end

-- The origin (scheme://host:port) of a URL.
local function origin(url)
  return url:match("^(%a[%w+.-]*://[^/?#]*)") or url
end

-- A 3xx answer: ghlua follows no redirect, so it is an error that says
-- where the server pointed and which setting is likely wrong.
local function redirect_error(x, resp)
  local to = resp.headers.location
  return E.new { kind = "http", code = "redirect", status = resp.status, where = x.where,
    method = x.req.method, path = x.path,
    message = "unexpected redirect" .. (to and (" to " .. printable(to)) or ""),
    hint = ("ghlua follows no redirects: check GHLUA_API_BASE (requests go to %s)"):format(origin(x.req.url)) }
end

-- The error for a request that may have reached the server and whose
-- outcome is unknown: `why` says what happened (a transport error or an
-- HTTP 5xx answer). x.unknown words it for its caller (ghl.oauth: "the
-- refresh token may be spent"); the default is the one for API writes.
local function unknown_error(x, resp, err)
  local why
  if resp then
    why = "the server answered with an error after receiving it: "
      .. printable(hints.message_of(resp:json()) or ("HTTP " .. resp.status))
  else
    why = err.reason or ("no complete answer arrived (%s)"):format(tostring(err.message or err.kind))
  end
  local e = x.unknown and x.unknown(why, resp, err) or E.new {
    kind = resp and "http" or err.kind,
    message = "the request may have been applied: " .. why,
    hint = "the outcome is unknown: check whether it took effect (look the record up) before sending it again" }
  e.code = "outcome_unknown"
  e.status = e.status or (resp and resp.status or nil)
  e.where = e.where or x.where
  e.method, e.path = e.method or x.req.method, e.path or x.path
  if resp then e.body = resp.body end
  return e
end

-- ---- The request path: send once, then one policy ----

M.RETRY_KINDS = { connect = true, timeout = true, network = true, tls = true }

-- decide(x, resp, err) -> action, value: what to do after one send of the
-- request described by x (see M.perform) that got response `resp`, or the
-- transport error `err`. Actions: "done" (resp is the answer), "retry"
-- (send again after `value` seconds of backoff), "wait" (a 429: send again
-- after `value` seconds), "refresh" (401 Invalid JWT: refresh the token
-- and send again), "fail" (raise `value`, a ghl.error).
--
-- THE RETRY RULE. A request is sent again only when sending it twice
-- cannot do twice what it does:
--   * A 429 had no effect: every request waits it out and is sent again,
--     after Retry-After when the server gives one, else the burst window
--     (X-RateLimit-Interval-Milliseconds), both clamped to MAX_WAIT; and a
--     used-up daily budget fails at once.
--   * A transport error of kind "connect" (connection refused, DNS
--     failure) means nothing was sent: every request may try again.
--   * An idempotent request (GET, HEAD, PUT, DELETE, OPTIONS, a route the
--     operations table says only reads, like POST /contacts/search, and
--     whatever the caller marks safe: opts.retry, Reconnect, locationToken)
--     is also sent again after any other network error (timeout, reset,
--     TLS) or a 5xx, with exponential backoff, RETRIES times at most.
--   * A non-idempotent request (any other POST, PATCH; token exchange and
--     refresh always) is NEVER sent again after a timeout, a reset, a
--     connection that died after the request went out, or a 5xx once the
--     body was sent: the server may have acted on it (created the record,
--     rotated the refresh token). It fails with code "outcome_unknown"
--     ("may have been applied"), and its caller decides: an API write
--     tells the user to check before sending it again; a refresh treats
--     its refresh token as spent and recovers without presenting it
--     (ghl.auth); a login code exchange asks for a new approval.
--   * A TLS handshake error sends nothing, but trying again does not fix
--     a certificate: a non-idempotent request fails at once, as it is.
--   * 401 "Invalid JWT" refreshes the token once, when the caller can.
--   * A 3xx is an error (ghlua follows no redirect), a 4xx is the
--     server's refusal, and neither is sent again.
function M.decide(x, resp, err)
  if not resp then
    local kind = err.kind
    if not M.RETRY_KINDS[kind] then   -- interrupted, encode (nothing sent), too_large (answered)
      if kind == "too_large" and not x.safe then return "fail", unknown_error(x, nil, err) end
      if kind == "interrupted" and not x.safe then
        err.hint = "the request may have been applied: check whether it took effect before sending it again"
      end
      return "fail", err
    end
    if (kind == "connect" or x.safe) and x.attempt <= M.RETRIES then
      return "retry", backoff(x.attempt)
    end
    if kind == "connect" or kind == "tls" or x.safe then return "fail", err end
    return "fail", unknown_error(x, nil, err)
  end
  local status = resp.status
  if status == 429 then
    local b = x.bucket
    if b.daily_remaining == 0 then
      return "fail", E.new { kind = "rate", status = 429, method = x.req.method, path = x.path, where = x.where,
        message = ("the daily request limit (%s) is used up for %s"):format(b.daily_limit or "?", x.owner),
        hint = "nothing will succeed until the daily window resets; no request was retried" }
    end
    if x.n429 >= M.RETRIES_429 then return "fail", x.answer_error(resp) end
    local retry_after = tonumber(resp.headers["retry-after"])
    local w = (retry_after and retry_after >= 0) and retry_after or b.interval
    return "wait", clamp(w, 0, M.MAX_WAIT) * (1 + math.random() * 0.1) + MARGIN
  end
  if status == 401 and x.refresh and not x.refreshed and hints.message_of(resp:json()) == "Invalid JWT" then
    return "refresh"
  end
  if status >= 500 then
    if not x.safe then return "fail", unknown_error(x, resp, nil) end
    if x.attempt <= M.RETRIES then return "retry", backoff(x.attempt) end
    return "fail", x.answer_error(resp)
  end
  if status >= 400 then return "fail", x.answer_error(resp) end
  if status >= 300 then return "fail", redirect_error(x, resp) end
  if status < 200 then return "fail", x.answer_error(resp) end
  return "done"
end

-- send(x) -> resp | nil, err: one attempt, through the throttle of x.bucket
-- and ghl.loop (so it yields inside ghl.parallel). Rate-limit headers of
-- the answer feed the bucket; x.learns = false (the token endpoint, which
-- sends none) leaves a bucket that has not learnt its limits probing.
function M.send(x)
  local probe = acquire(x.bucket, x.owner)
  local rok, resp, err = pcall(loop.request, x.req)
  local told = rok and resp ~= nil and observe(x.bucket, resp.headers)
  if probe then settle(x.bucket, rok and resp ~= nil and (told or x.learns ~= false)) end
  if not rok then error(resp, 0) end
  return resp, err
end

-- failed(x, err, resp, tries, elapsed) -> err, in the words M.perform
-- promises: the tries when the request was sent again or waited for
-- (elapsed seconds since the first) and failed the way it was retried for
-- (a transport error, a 5xx, a 429), and for a transport error the
-- request's name and a hint.
local function failed(x, err, resp, tries, elapsed)
  if elapsed and tries > 1 and (not resp or resp.status == 429 or resp.status >= 500) then
    err.tries = tries
    err.message = ("%s after %d tries over %s"):format(tostring(err.message), tries, notice.seconds(elapsed))
  end
  if not resp and M.RETRY_KINDS[err.kind] then
    if err.code ~= "outcome_unknown" then err.where = x.where end
    err.hint = err.hint or hints.transport(err)
  end
  return err
end

-- perform(x) -> resp | nil, err [, resp]: send the request x.req until the
-- policy (M.decide) says done or fail. resp is a 2xx answer; on failure err
-- is the ghl.error to raise and resp the answer it came with, if any.
-- x: req (a ghl.http request), key (bucket: M.bucket_key) or bucket,
-- owner ("location ID", for messages), where ("POST /contacts/"), path,
-- safe (may be sent again after it may have reached the server: see the
-- rule at M.decide), answer_error(resp) -> ghl.error for a refused
-- request, refresh() -> the new bearer token (optional), unknown(why,
-- resp, err) -> the outcome-unknown error (optional), learns (false: the
-- answers carry no rate-limit headers), on_send(resp, err) (optional).
--
-- Its words, not its rule: a request sent again after a failure is
-- announced on a terminal (ghl.notice: "retrying GET /contacts/ in 0.4 s
-- (try 2 of 4): ..."), and so is a wait for the rate limit; an error after
-- such retries or waits says how many tries were made and over how long
-- ("... after 4 tries over 1.9 s", err.tries); a transport error is named
-- by the request (err.where) and gets a hint (ghl.hints.transport).
function M.perform(x)
  x.bucket = x.bucket or bucket(x.key)
  x.attempt, x.n429, x.refreshed = 0, 0, false
  -- the same rule one layer down: libcurl may silently send a request
  -- again on a fresh connection only when the policy would (ghl.http)
  x.req.idempotent = x.safe and true or false
  x.where = x.where or (x.req.method .. " " .. (x.path or x.req.url))
  local t0, tries, again = sys.now(), 0, false
  while true do
    x.attempt, tries = x.attempt + 1, tries + 1
    local resp, err = M.send(x)
    if x.on_send then x.on_send(resp, err) end
    local action, v = M.decide(x, resp, err)
    if action == "done" then return resp end
    if action == "fail" then return nil, failed(x, v, resp, tries, again and sys.now() - t0), resp end
    if action == "wait" then
      x.n429, x.attempt, again = x.n429 + 1, x.attempt - 1, true
      announce_wait(x.bucket, x.owner, v, ", after a 429 answer")
      wait(v)
    elseif action == "refresh" then
      x.refreshed, x.attempt = true, x.attempt - 1
      local token = x.refresh()
      if not token then return nil, x.answer_error(resp), resp end
      x.req.headers.Authorization = "Bearer " .. token
    else
      again = true
      local why = resp and ("HTTP " .. resp.status) or tostring(err.reason or err.message)
      notice.say("retry", err and err.origin or x.bucket, ("retrying %s in %s (try %d of %d): %s"):format(
        x.where, notice.seconds(v), x.attempt + 1, M.RETRIES + 1, why), v)
      wait(v)
    end
  end
end

-- ---- Dry run ----

-- Does this request only read? GET and HEAD do; so does another method on
-- a route whose scopes are all ".readonly" (POST /contacts/search), or
-- when opts.read says so.
function M.is_read(method, op, opts)
  if method == "GET" or method == "HEAD" or (opts and opts.read) then return true end
  if not op or #op.scopes == 0 then return false end
  for _, s in ipairs(op.scopes) do
    if not s:find("%.readonly$") then return false end
  end
  return true
end

-- Record a write in the dry-run plan instead of sending it.
function Client:record(req, filled, opts)
  local plan = self.dry_run
  local n = #plan + 1
  plan[n] = { method = req.method, path = filled, url = req.url, query = req.query,
    body = req.json ~= nil and req.json or req.form or req.body, version = req.headers.Version,
    location = self.location, company = not self.location and self.company or nil }
  local v = { dryRun = true, id = "dry-run-" .. n }
  if opts.raw then
    return { status = 200, headers = {}, body = "", dry_run = v, json = function() return v end }
  end
  return v
end

-- ---- Sending ----

-- May this request be sent again after it may have reached the server?
-- (the rule at M.decide)
function M.retry_safe(method, op, opts)
  return IDEMPOTENT[method] or M.is_read(method, op, opts) or (opts and opts.retry) and true or false
end

-- ---- Observers ----

local observers = {}

-- observe(fn) -> remove: fn(c, req) is called at the start of every
-- request any client makes (c:request and all built on it: get, post, put,
-- patch, delete, paginate, batch, the resource views), before it is built
-- or sent, with req = {method=, path=, version=} as the caller gave them:
-- never a token, a header or a body. Once sent, what came of it is c.last
-- ({method, url, query, version, token_hint = "…abcd", status, time,
-- attempts, error, op, body, rate}). fn must not raise: its error would
-- be the request's. remove() unregisters fn. (The REPL's :explain, :curl,
-- :scopes and :save see requests through this.)
function M.observe(fn)
  assert(type(fn) == "function", "client.observe: fn must be a function")
  observers[#observers + 1] = fn
  return function()
    for i = #observers, 1, -1 do
      if observers[i] == fn then table.remove(observers, i) break end
    end
  end
end

-- request(method, path, opts) -> decoded JSON (or the raw response with
-- opts.raw). Raises ghl.error. With dry_run, a write is recorded instead.
function Client:request(method, path, opts)
  for i = 1, #observers do
    observers[i](self, { method = method, path = path, version = type(opts) == "table" and opts.version or nil })
  end
  opts = opts or {}
  local req, op, filled = Client.build(self, method, path, opts)
  if self.guard then self.guard(self, req, op) end   -- a sandboxed recipe's checks (ghl.sandbox)
  if self.dry_run and not M.is_read(req.method, op, opts) then return self:record(req, filled, opts) end
  local token, row = Client.token(self)
  if op and op.pit == false and row and row.kind == "pit" then
    E.raise { kind = "auth", code = "pit_refused", method = req.method, path = filled,
      message = ("%s %s does not accept Private Integration Tokens"):format(req.method, op.path),
      hint = "use an OAuth token for this call ('ghlua auth login')" }
  end
  req.headers.Authorization = "Bearer " .. token
  local t0 = sys.now()
  local x = { req = req, bucket = self.bucket, owner = owner(self), path = filled,
    where = req.method .. " " .. filled, safe = M.retry_safe(req.method, op, opts) }
  function x.answer_error(resp)
    return http_error(self, req, resp, resp:json(), op, filled, row)
  end
  if row and row.kind ~= "pit" then
    function x.refresh()
      row = require("ghl.auth").refresh(row, { stale = token })
      token = row.access_token
      return token
    end
  end
  function x.on_send(resp, err)
    self.last = { method = req.method, url = req.url, query = req.query, version = req.headers.Version,
      token_hint = #token >= 12 and "\u{2026}" .. token:sub(-4) or "\u{2026}",   -- never the token itself
      status = resp and resp.status, time = sys.now() - t0, attempts = x.attempt,
      error = err, op = op, body = req.json }
    if resp then
      local b = self.bucket   -- a constant-time snapshot for :explain
      self.last.rate = { max = b.max, remaining = b.remaining, interval_ms = math.floor(b.interval * 1000),
                         daily_limit = b.daily_limit, daily_remaining = b.daily_remaining }
    end
  end
  local resp, err, answered = M.perform(x)
  if not resp then
    err.method, err.path = err.method or req.method, err.path or filled
    err.where = err.where or (req.method .. " " .. filled)
    local status = answered and answered.status
    if row and (status == 401 or status == 403) and err.code ~= "invalid_token" then
      require("ghl.auth").store():set_status(row.app, row.resource_id, row.status or "ok",
        ("%s %s was refused at %s: %s"):format(req.method, filled:gsub("%?.*", ""), require("ghl.util").iso8601(), err.message))
    end
    if opts.raw and answered and err.kind ~= "rate" then answered.error = err; return answered end
    error(err, 0)
  end
  -- 204 No Content, or an empty answer to a write: nothing to decode. A
  -- GET promised JSON, so an empty body there is a decode error.
  local empty_get = resp.body == "" and resp.status ~= 204 and req.method == "GET"
  if opts.raw then
    if empty_get then
      local _, derr = resp:json()
      derr.method, derr.path = req.method, filled
      resp.error = derr
    end
    return resp
  end
  if resp.status == 204 or (resp.body == "" and not empty_get) then return true end
  local v, derr = resp:json()
  if v == nil then derr.method, derr.path = req.method, filled; error(derr, 0) end
  return v
end

function Client:get(path, query, opts)
  opts = opts or {}
  opts.query = query or opts.query
  return self:request("GET", path, opts)
end

for _, m in ipairs { "post", "put", "patch" } do
  Client[m] = function(self, path, body, opts)
    opts = opts or {}
    opts.body = body
    return self:request(m:upper(), path, opts)
  end
end

function Client:delete(path, body, opts)
  opts = opts or {}
  opts.body = body
  return self:request("DELETE", path, opts)
end

-- rate() -> the throttle's view: max, remaining, interval_ms, daily_limit,
-- daily_remaining, in_window (requests sent in the current interval).
function Client:rate()
  local b = self.bucket
  local now, n = sys.now(), 0
  for i = b.head, #b.sent do if b.sent[i] > now - b.interval then n = n + 1 end end
  return { max = b.max, remaining = b.remaining, interval_ms = math.floor(b.interval * 1000),
           daily_limit = b.daily_limit, daily_remaining = b.daily_remaining, in_window = n,
           blocked_for = b.others_until > now and b.others > 0 and (b.others_until - now) or 0 }
end

-- ---- Pagination ----

-- paginate(path, params, {max=, style=, items=, method=, version=, on_page=})
-- -> iterator over items (ghl.paginate: every style).
function Client:paginate(path, params, o)
  return require("ghl.paginate").iterate(self, path, params, o)
end

-- ---- Concurrency ----

-- batch({{method, path, query=, body=, version=}, ...}, {concurrency=N})
-- -> results in order, each a decoded value or a ghl.error. With each =
-- function(i, v), results go to it as they arrive instead of being kept
-- (ghl.loop.run), and batch returns the number of errors.
function Client:batch(requests, o)
  o = o or {}
  local fns = {}
  for i, r in ipairs(requests) do
    fns[i] = function()
      return self:request(r.method or r[1] or "GET", r.path or r[2], { query = r.query, body = r.body,
        version = r.version, retry = r.retry })
    end
  end
  return loop.run(fns, { concurrency = o.concurrency, progress = o.progress, each = o.each })
end

return M
