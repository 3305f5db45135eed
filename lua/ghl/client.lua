-- ghl.client: the API client every script, recipe and REPL line goes
-- through.
--   local c = ghl.client{location=ID | company=ID | app=NAME | token=T, base=URL}
--   c:get(path, query, opts) / c:post(path, body, opts) / put / patch / delete
--   c:request(method, path, opts)      opts: query, body (a value, sent as
--                                       JSON), data (JSON text, sent as is),
--                                       form, version, headers, raw (the
--                                       response; resp.error for >= 400),
--                                       timeout, retry
--   c:paginate(path, params, opts)     iterator over items, every style
--   c:batch(requests, {concurrency=N}) results in order (value or ghl.error)
--   c:rate()                           the throttle's view of the limits
--   c:prepare(method, path, opts)      the request it would send (dry run)
--   c.contacts:create{...}             the resource modules (ghl.contacts, ...)
--                                       bound to the client
-- With dry_run = PLAN (a table), every write (a method other than GET/HEAD,
-- unless the operations table says the route only reads, like POST
-- /contacts/search) is appended to PLAN as {method, path, url, query, body,
-- version, location} instead of being sent, and answers {dryRun = true,
-- id = "dry-run-N"}; reads are sent as usual.
-- Path placeholders such as {locationId} come from the client's context,
-- and so do required locationId/companyId query parameters the caller left
-- out (GET /contacts/ needs no explicit locationId).
-- The Version header comes from the operations table (ghl.api.ops), tokens
-- from the store with automatic refresh (ghl.auth), and every request waits
-- for the per-(app, resource) throttle fed by the X-RateLimit-* headers, so
-- a 429 it could have seen coming never happens. 429s are retried after the
-- interval; network errors and 5xx are retried with backoff for idempotent
-- methods (or when opts.retry is set). HighLevel errors are raised as
-- ghl.error {kind="http", status, message, traceId, method, path, hint}.
local E = require "ghl.error"
local loop = require "ghl.loop"
local sys = require "ghl.sys"
local hints = require "ghl.hints"

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

-- One bucket per (app, resource), shared by every client and coroutine of
-- the process. A sliding log of send times keeps at most `max` requests in
-- any `interval`; the server's headers correct it.
local buckets = {}

local function bucket(key)
  local b = buckets[key]
  if not b then
    b = { max = 100, interval = 10, sent = {}, head = 1, daily_remaining = nil, daily_limit = nil,
          remaining = nil, blocked_until = 0, probing = false, answered = false }
    buckets[key] = b
  end
  return b
end

local MARGIN = 0.02 -- seconds added to each wait: our clock starts before the server's

-- What a client's budget is for, in messages: "location ID".
local function owner(c)
  return c.location and ("location " .. c.location) or ("company " .. tostring(c.company))
end

local PROBE_WAIT = 2 -- seconds others wait for a bucket's first answer at most

-- Wait until one more request of client c fits, then count it as sent.
-- Until a bucket has had an answer it does not know the server's limit, so
-- its first request goes alone (the probe) and the others wait for it, for
-- PROBE_WAIT at most (a probe abandoned by Ctrl-C never settles). Returns
-- true for the probe: its caller must call settle(b, got_answer).
local function acquire(c)
  local b = c.bucket
  while true do
    if b.daily_remaining == 0 then
      E.raise { kind = "rate", message = "the daily request limit of " .. (b.daily_limit or "?") ..
        " is used up for " .. owner(c), hint = "nothing will succeed until the daily window resets; retry tomorrow" }
    end
    local now = sys.now()
    while b.head <= #b.sent and b.sent[b.head] <= now - b.interval do b.head = b.head + 1 end
    if b.head > 256 then
      b.sent = table.move(b.sent, b.head, #b.sent, 1, {})
      b.head = 1
    end
    local count = #b.sent - b.head + 1
    local wait = 0
    if b.probing and b.probing > now then wait = 0.005
    elseif b.blocked_until > now then wait = b.blocked_until - now
    elseif count >= b.max then wait = b.sent[b.head] + b.interval - now + MARGIN end
    if wait <= 0 then
      b.sent[#b.sent + 1] = now
      if not b.answered then b.probing = now + PROBE_WAIT; return true end
      return false
    end
    loop.sleep(wait)
  end
end

-- The probe of bucket b ended, with an answer or not (then the next
-- request probes again).
local function settle(b, answered)
  b.probing = false
  b.answered = b.answered or answered
end

-- Feed the bucket from a response's X-RateLimit-* headers.
local function observe(b, h)
  local max = tonumber(h["x-ratelimit-max"])
  local interval = tonumber(h["x-ratelimit-interval-milliseconds"])
  local remaining = tonumber(h["x-ratelimit-remaining"])
  if max and max > 0 then b.max = max end
  if interval and interval > 0 then b.interval = interval / 1000 end
  b.daily_remaining = tonumber(h["x-ratelimit-daily-remaining"]) or b.daily_remaining
  b.daily_limit = tonumber(h["x-ratelimit-limit-daily"]) or b.daily_limit
  b.remaining = remaining
  -- Others (another process, another tool) may share the budget: if the
  -- server has none left, wait a whole interval.
  if remaining == 0 then b.blocked_until = math.max(b.blocked_until, sys.now() + b.interval + MARGIN) end
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
  return (d:sub(1, 8):gsub(".", function(ch) return ("%02x"):format(ch:byte()) end))
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
      E.raise { kind = "auth", message = "no stored token for " .. (c.location and ("location " .. c.location)
        or c.company and ("company " .. c.company) or "this client"),
        hint = "log in with 'ghlua auth login', store a PIT with 'ghlua auth pit add', or pass token=" }
    end
    row = row or crow
    c.app = c.app or row.app
    if not c.location and not c.company then
      if row.resource_type == "Location" then c.location = row.resource_id else c.company = row.resource_id end
    end
    c.company = c.company or row.company_id
    c.kind = row.kind
    c.key = c.app .. ":" .. (c.location or c.company)
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

local function urlencode_segment(s)
  return (tostring(s):gsub("[^%w%-._~]", function(ch) return ("%%%02X"):format(ch:byte()) end))
end

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
  local version = opts.version or self.version or (op and op.version)
    or (ops and ops.version(method, bare, opts.version == "v3")) or "2021-07-28"
  local headers = { Version = version, Accept = "application/json" }
  if opts.data then headers["Content-Type"] = "application/json" end
  if opts.headers then
    for k, v in pairs(opts.headers) do headers[k] = v end
  end
  return {
    method = method, url = self.base .. filled, query = query, headers = headers,
    json = body, form = opts.form, body = opts.data, timeout = opts.timeout or self.timeout or 60,
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
  req.headers.Authorization = "Bearer " .. (token and http.redact(token) or "…")
  local url = req.url
  if req.query and next(req.query) then url = url .. (url:find("?", 1, true) and "&" or "?") .. assert(http.encode(req.query)) end
  local body = req.body
  if req.json ~= nil then body = require("cjson").encode(req.json)
  elseif req.form then body = assert(http.encode(req.form)) end
  return { method = req.method, url = url, headers = req.headers, body = body, version = req.headers.Version }
end

-- ---- Errors ----

local function http_error(self, req, resp, body, op, path)
  local msg = hints.message_of(body) or ("HTTP " .. resp.status)
  local code, hint = hints.lookup(msg, { method = req.method, path = op and op.path or path,
    scopes = op and op.scopes, location = self.location, status = resp.status })
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

-- request(method, path, opts) -> decoded JSON (or the raw response with
-- opts.raw). Raises ghl.error. With dry_run, a write is recorded instead.
function Client:request(method, path, opts)
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
  local idempotent = IDEMPOTENT[req.method] or opts.retry
  local attempt, n429, refreshed = 0, 0, false
  local t0 = sys.now()
  while true do
    attempt = attempt + 1
    local probe = acquire(self)
    req.headers.Authorization = "Bearer " .. token
    local rok, resp, err = pcall(loop.request, req)
    if probe then settle(self.bucket, rok and resp ~= nil) end
    if not rok then error(resp, 0) end
    self.last = { method = req.method, url = req.url, query = req.query, version = req.headers.Version,
      token_hint = #token >= 12 and "\u{2026}" .. token:sub(-4) or "\u{2026}",   -- never the token itself
      status = resp and resp.status, time = sys.now() - t0, attempts = attempt,
      error = err, op = op, body = req.json }
    if not resp then
      -- a connect failure sent nothing, so any method may try again
      if (idempotent or err.kind == "connect") and attempt <= M.RETRIES and err.kind ~= "interrupted"
         and err.kind ~= "encode" then
        loop.sleep(backoff(attempt))
      else
        err.method, err.path, err.where = req.method, filled, req.method .. " " .. filled
        error(err, 0)
      end
    else
      observe(self.bucket, resp.headers)
      local b = self.bucket   -- a constant-time snapshot for :explain
      self.last.rate = { max = b.max, remaining = b.remaining, interval_ms = math.floor(b.interval * 1000),
                         daily_limit = b.daily_limit, daily_remaining = b.daily_remaining }
      local status = resp.status
      if status == 429 then
        if self.bucket.daily_remaining == 0 then
          E.raise { kind = "rate", status = 429, method = req.method, path = filled,
            message = ("the daily request limit (%s) is used up for %s"):format(self.bucket.daily_limit or "?",
              owner(self)),
            hint = "nothing will succeed until the daily window resets; no request was retried" }
        end
        n429 = n429 + 1
        if n429 > M.RETRIES_429 then
          error(http_error(self, req, resp, resp:json(), op, filled), 0)
        end
        local retry_after = tonumber(resp.headers["retry-after"])
        local wait = retry_after or (self.bucket.interval)
        loop.sleep(math.min(wait, M.BACKOFF_CAP) * (1 + math.random() * 0.1) + MARGIN)
        attempt = attempt - 1
      elseif status == 401 and not refreshed and row and row.kind ~= "pit"
             and hints.message_of(resp:json()) == "Invalid JWT" then
        refreshed = true
        row = require("ghl.auth").refresh(row, { stale = token })
        token = row.access_token
        attempt = attempt - 1
      elseif status >= 500 and idempotent and attempt <= M.RETRIES then
        loop.sleep(backoff(attempt))
      elseif status >= 400 then
        local body = resp:json()
        local e = http_error(self, req, resp, body, op, filled)
        if row and (status == 401 or status == 403) and e.code ~= "invalid_token" then
          require("ghl.auth").store():set_status(row.app, row.resource_id, row.status or "ok",
            ("%s %s was refused at %s: %s"):format(req.method, filled:gsub("%?.*", ""), os.date("!%Y-%m-%dT%H:%M:%SZ"), e.message))
        end
        if opts.raw then resp.error = e; return resp end
        error(e, 0)
      else
        if opts.raw then return resp end
        if resp.body == "" then return true end
        local v, derr = resp:json()
        if v == nil then derr.method, derr.path = req.method, filled; error(derr, 0) end
        return v
      end
    end
  end
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
           blocked_for = math.max(0, b.blocked_until - now) }
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
