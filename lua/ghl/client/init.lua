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
-- schema_cache = "memory" (the default) | "store": where the custom-field
-- schema (ghl.custom_fields) is cached; "store" keeps it in the token
-- store across processes. A client made with token= and the default
-- touches no store at all.
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
-- for the per-(app, resource) throttle fed by the X-RateLimit-* headers
-- (ghl.client.throttle, pure; its scheduler is here), so a 429 it could
-- have seen coming never happens. One request path serves this client and
-- ghl.oauth: M.send sends once, M.decide(outcome, attempt, ctx) -> action
-- is the one policy (its comment is the rule: 429s and refused
-- connections are sent again, other failures only for idempotent
-- requests), M.perform carries the actions out.
-- HighLevel errors are raised as ghl.error {kind="http", status, message,
-- traceId, method, path, hint}; a 3xx is an error too (no redirect is
-- followed); a write whose outcome is unknown (a timeout, a reset or a 5xx
-- after it was sent) raises code "outcome_unknown": "may have been applied".
local E = require "ghl.error"
local loop = require "ghl.loop"
local sys = require "ghl.sys"
local config = require "ghl.config"
local notice = require "ghl.notice"
local throttle = require "ghl.client.throttle"

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

M.RETRIES = 3           -- network errors and 5xx, idempotent methods
M.RETRIES_429 = 6
M.BACKOFF = 0.5         -- seconds, doubled each time, with jitter
M.BACKOFF_CAP = 30

local IDEMPOTENT = { GET = true, HEAD = true, PUT = true, DELETE = true, OPTIONS = true }

local ops = require "ghl.api.ops"

-- ---- The throttle (ghl.client.throttle) and its scheduler ----

-- What a client's budget is for, in messages: "location ID".
local function owner(c)
  return c.location and ("location " .. c.location) or ("company " .. tostring(c.company))
end

-- The budget's owner and the request's name ("GET /contacts/"), for
-- messages only: made when a message needs them, not for every request.
-- x.owner and x.where when the caller gave them (ghl.oauth), else from
-- the client (x.client) and the request.
local function owner_of(x)
  return x.owner or (x.client and owner(x.client)) or "this budget"
end

local function where_of(x)
  return x.where or (x.req.method .. " " .. (x.path or x.req.url))
end

-- ghl.hints (messages and hints for errors), loaded on the first error.
local function hints()
  return require "ghl.hints"
end

-- The throttle's bounds live in ghl.client.throttle; ghl.client's fields
-- of these names read and set them there. ghl.client{...} is M.new.
local THROTTLE_FIELDS = { MAX_WAIT = true, INTERVAL_MS = true, MAX_REQUESTS = true }

setmetatable(M, {
  __call = function(_, o) return M.new(o) end,
  __index = function(_, k) if THROTTLE_FIELDS[k] then return throttle[k] end end,
  __newindex = function(t, k, v)
    if THROTTLE_FIELDS[k] then throttle[k] = v else rawset(t, k, v) end
  end,
})

local clamp, MARGIN = throttle.clamp, throttle.MARGIN

-- The process's throttle, on ghl.sys's clock.
local T = throttle.new { now = function() return sys.now() end }

-- bucket(key) -> the process's bucket for key (M.bucket_key).
function M.bucket(key) return T:bucket(key) end
M.bucket_key = throttle.bucket_key

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

-- wait_for(key) -> seconds a request in the bucket `key` (M.bucket_key)
-- would wait for the throttle now; 0 when it would go at once. For a
-- caller that must not block (the webhook receiver) and comes back later.
function M.wait_for(key)
  return (T:delay(T:bucket(key)))
end

-- The scheduler. Inside ghl.parallel the requests waiting for a bucket
-- queue up in arrival order (queues[b]), and only the first of them waits
-- for time: it sleeps exactly until its slot opens (or the probe's
-- answer wakes it), takes the slot and wakes the next, which either finds
-- a slot free at once or sleeps until its own. So 300 coroutines behind
-- one agency (Company) bucket cost one timer, never a poll, and when a
-- window opens they go in order, one wake-up each, with no stampede of
-- waiters that find the window full again. A waiter that is closed
-- (Ctrl-C, an error elsewhere) leaves the queue as it goes (a
-- to-be-closed variable).
local queues = setmetatable({}, { __mode = "k" })

local function queue(b)
  local q = queues[b]
  if not q then q = {}; queues[b] = q end
  return q
end

-- Wake the first waiter of bucket b (it looks at the bucket again).
local function kick(b)
  local q = queues[b]
  local co = q and q[1]
  if co then loop.wake(co) end
end

-- Leave bucket b's queue; the next waiter, if co was first, looks again.
local function leave(b, co)
  local q = queue(b)
  for i = 1, #q do
    if q[i] == co then
      table.remove(q, i)
      if i == 1 then kick(b) end
      return
    end
  end
end

-- Wait until one more request fits in bucket b for the request x (whose
-- budget is owner_of(x)'s, for messages), then count it as sent. Returns
-- true for the probe (its caller must call settle(b, got_answer)), and the
-- time it was counted at.
local function acquire(b, x)
  local co = loop.current()
  if not co then
    -- outside ghl.parallel nothing else runs: wait for the slot and take it
    while true do
      local ok, w, for_probe = T:acquire(b, owner_of, x)
      if ok then return w, for_probe end   -- taken: the probe flag and the time
      if not for_probe then announce_wait(b, owner_of(x), w) end
      wait(w)
    end
  end
  local q = queues[b]
  if not q or #q == 0 then
    local ok, probe, now = T:acquire(b, owner_of, x)
    if ok then return probe, now end
    q = q or queue(b)
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
      local ok, w, for_probe = T:acquire(b, owner_of, x)
      if ok then return w, for_probe end   -- taken (the probe flag and the time); leaving wakes the next
      if not for_probe then announce_wait(b, owner_of(x), w) end
      loop.park(math.min(w, M.MAX_WAIT))
    end
  end
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
  return require("ghl.util").hex(require("ghl.crypto").digest("sha256", token):sub(1, 8))
end

-- The places a client may keep a location's custom-field schema
-- (ghl.custom_fields): "memory", the process only (the default: a client
-- writes no file of its own), or "store", the token store too, so the
-- next process within the TTL does not fetch it again.
M.SCHEMA_CACHES = { memory = true, store = true }

-- new{location=, company=, app=, token=, base=, version=, timeout=,
-- dry_run=, schema_cache=} -> client
function M.new(o)
  o = o or {}
  if type(o) == "string" then o = { location = o } end
  if o.schema_cache ~= nil and not M.SCHEMA_CACHES[o.schema_cache] then
    error(("ghl.client: schema_cache must be \"memory\" or \"store\", not %s"):format(
      type(o.schema_cache) == "string" and ("\"" .. o.schema_cache .. "\"") or type(o.schema_cache)), 2)
  end
  local c = setmetatable({
    base = (o.base or config.api_base()):gsub("/+$", ""),   -- config: GHLUA_API_BASE or HighLevel's
    location = o.location, company = o.company, app = o.app,
    -- false, not nil: a missing field would go through Client.__index
    version = o.version or false, timeout = o.timeout or false, dry_run = o.dry_run or false,
    guard = false, schema_cache = o.schema_cache or "memory",
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
  c.bucket = T:bucket(c.key)
  return c
end

-- Stored tokens, per (app, resource) in the process: key -> {token, row,
-- the store handle, its data_version before the row was read}. The store
-- stays the single source of truth: the row is used again only while the
-- store's data_version is the one it was read at (nothing was written
-- since, by this process or another: a refresh anywhere, a rotation, a
-- logout change it) and the token is not near expiry (ghl.auth's own
-- rule, auth.fresh); otherwise ghl.auth reads it (and refreshes it) as
-- always.
local tokens = {}

-- The bearer token and its store row (nil for a static token).
function Client:token()
  local t = static[self]
  if t then return t end
  local auth = require "ghl.auth"
  local location, company = self.location, self.company
  local key = tostring(self.app) .. "\0" .. (location and ("L" .. location) or ("C" .. tostring(company)))
  local db = auth.store()
  local native = db.native
  local version = native and native.data_version and native:data_version()
  local e = tokens[key]
  if e and version and e[3] == db and e[4] == version and auth.fresh(e[2]) then return e[1], e[2] end
  local q = { app = self.app }
  if location then q.location = location else q.company = company end
  local token, row = auth.token(q)
  if version then tokens[key] = { token, row, db, version } else tokens[key] = nil end
  return token, row
end

-- ---- Building requests ----

local find = string.find
local floor = math.floor

-- The options of a request given none (read only: nothing writes into a
-- request's opts).
local NO_OPTS = setmetatable({}, { __newindex = function() error("ghl.client: NO_OPTS is read-only", 2) end })

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
    local json, add = require "ghl.json", {}
    for _, f in ipairs(fields) do
      if t[f[1]] == nil then add[#add + 1] = assert(json.encode(f[1])) .. ":" .. assert(json.encode(f[2])) end
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

-- route(method, path, v3) -> op | false, its Version, the position of
-- path's "?" | false: ops.op and ops.version for the path without its
-- query string, kept per (flavour, method, path without the query) so
-- that a path asked for again (every page of a listing, every call on one
-- record, with any query) is neither matched nor searched again. Ops are
-- read-only and a path always matches the same op; the cache is emptied
-- when it holds ROUTES_MAX paths (a batch over many ids).
local ROUTES_MAX = 1024
local routes, nroutes = { [false] = {}, [true] = {} }, 0

local function route(method, path, v3)
  local q = find(path, "?", 1, true) or false
  local bare = q and path:sub(1, q - 1) or path
  local by_method = routes[v3][method]
  local r = by_method and by_method[bare]
  if r then return r[1], r[2], q end
  if nroutes >= ROUTES_MAX then routes, nroutes = { [false] = {}, [true] = {} }, 0 end
  by_method = routes[v3][method]
  if not by_method then by_method = {}; routes[v3][method] = by_method end
  local op = ops.op(method, bare, v3) or false
  local version = op and op.version or ops.version(method, bare, v3)
  by_method[bare], nroutes = { op, version }, nroutes + 1
  return op, version, q
end

-- Methods as given (most often already in capitals) -> in capitals.
local UPPER = { GET = "GET", POST = "POST", PUT = "PUT", PATCH = "PATCH", DELETE = "DELETE", HEAD = "HEAD",
  OPTIONS = "OPTIONS", get = "GET", post = "POST", put = "PUT", patch = "PATCH", delete = "DELETE" }

-- The request table for method/path/opts, before the token is added.
function Client:build(method, path, opts)
  method = UPPER[method] or method:upper()
  opts = opts or NO_OPTS
  local query
  if opts.query then
    query = {}
    for k, v in pairs(opts.query) do query[k] = v end
  end
  local body = opts.body
  local tbody = type(body) == "table"
  if tbody and not getmetatable(body) then
    local copy = {}
    for k, v in pairs(body) do copy[k] = v end
    body = copy
  end
  local filled = Client.fill(self, path, query or (tbody and body) or nil)
  local op, route_version, q = route(method, filled, opts.version == "v3")
  op = op or nil
  if op and #op.query > 0 then query = Client.fill_query(self, op, query, filled, q) end
  local data = opts.data
  if op and #op.body > 0 then body, data = Client.fill_body(self, op, body, data, opts.form) end
  local version = opts.version or self.version or route_version
  -- (room for the Authorization the caller adds: no table grows)
  local headers = { Version = version, Accept = "application/json", Authorization = nil }
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
  if req.json ~= nil then body = assert(require("ghl.json").encode(req.json))
  elseif req.form then body = assert(http.encode(req.form)) end
  return { method = req.method, url = url, headers = req.headers, body = body, version = req.headers.Version }
end

-- ---- Errors ----

local function http_error(self, req, resp, body, op, path, row)
  local msg = hints().message_of(body) or ("HTTP " .. resp.status)
  local code, hint = hints().lookup(msg, { method = req.method, path = op and op.path or path,
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
  return E.new { kind = "http", code = "redirect", status = resp.status, where = where_of(x),
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
      .. printable(hints().message_of(resp:json()) or ("HTTP " .. resp.status))
  else
    why = err.reason or ("no complete answer arrived (%s)"):format(tostring(err.message or err.kind))
  end
  local e = x.unknown and x.unknown(why, resp, err) or E.new {
    kind = resp and "http" or err.kind,
    message = "the request may have been applied: " .. why,
    hint = "the outcome is unknown: check whether it took effect (look the record up) before sending it again" }
  e.code = "outcome_unknown"
  e.status = e.status or (resp and resp.status or nil)
  e.where = e.where or where_of(x)
  e.method, e.path = e.method or x.req.method, e.path or x.path
  if resp then e.body = resp.body end
  return e
end

-- ---- The request path: send once, then one policy ----

M.RETRY_KINDS = { connect = true, timeout = true, network = true, tls = true }

-- decide(outcome, attempt, ctx) -> action: the one policy. After one send
-- (M.send) of the request ctx describes (see M.perform), the outcome
-- {resp = the answer | nil, err = the transport error | nil, after = what
-- the throttle made of a 429 (ghl.client.throttle: seconds, or false when
-- the daily budget is used up)} and the attempt so far {n = this try's
-- number among the tries the retry budget counts, n429 = 429s waited
-- out, refreshed = whether the token was refreshed} give the action:
--   {kind = "done"}                 resp is the answer
--   {kind = "retry", after = s}     send again after s seconds of backoff
--   {kind = "wait", after = s}      a 429: send again after s seconds
--   {kind = "refresh"}              401 Invalid JWT: refresh, send again
--   {kind = "fail", error = e}      give up with e, a ghl.error
-- It decides only; M.perform does what it says. (The "done" action is one
-- shared table: treat actions as read-only.)
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
local DONE = { kind = "done" }
local function fail(e) return { kind = "fail", error = e } end

function M.decide(outcome, attempt, x)
  local resp, err = outcome.resp, outcome.err
  if not resp then
    local kind = err.kind
    if not M.RETRY_KINDS[kind] then   -- interrupted, encode (nothing sent), too_large (answered)
      if kind == "too_large" and not x.safe then return fail(unknown_error(x, nil, err)) end
      if kind == "interrupted" and not x.safe then
        err.hint = "the request may have been applied: check whether it took effect before sending it again"
      end
      return fail(err)
    end
    if (kind == "connect" or x.safe) and attempt.n <= M.RETRIES then
      return { kind = "retry", after = backoff(attempt.n) }
    end
    if kind == "connect" or kind == "tls" or x.safe then return fail(err) end
    return fail(unknown_error(x, nil, err))
  end
  local status = resp.status
  if status == 429 then
    local b = x.bucket
    if outcome.after == false then
      return fail(E.new { kind = "rate", status = 429, method = x.req.method, path = x.path, where = where_of(x),
        message = ("the daily request limit (%s) is used up for %s"):format(b.daily_limit or "?", owner_of(x)),
        hint = "nothing will succeed until the daily window resets; no request was retried" })
    end
    if attempt.n429 >= M.RETRIES_429 then return fail(x.answer_error(resp, x)) end
    return { kind = "wait", after = outcome.after * (1 + math.random() * 0.1) + MARGIN }
  end
  if status == 401 and x.refresh and not attempt.refreshed and hints().message_of(resp:json()) == "Invalid JWT" then
    return { kind = "refresh" }
  end
  if status >= 500 then
    if not x.safe then return fail(unknown_error(x, resp, nil)) end
    if attempt.n <= M.RETRIES then return { kind = "retry", after = backoff(attempt.n) } end
    return fail(x.answer_error(resp, x))
  end
  if status >= 400 then return fail(x.answer_error(resp, x)) end
  if status >= 300 then return fail(redirect_error(x, resp)) end
  if status < 200 then return fail(x.answer_error(resp, x)) end
  return DONE
end

-- send(x) -> resp | nil, err, after: one attempt, through the throttle of
-- x.bucket and ghl.loop (so it yields inside ghl.parallel). Rate-limit
-- headers of the answer feed the bucket (after: what a 429 asks for, see
-- M.decide); x.learns = false (the token endpoint, which sends none)
-- leaves a bucket that has not learnt its limits probing.
function M.send(x)
  local b = x.bucket
  local probe, sent_at = acquire(b, x)
  local rok, resp, err = pcall(loop.request, x.req)
  local told, changed, after
  if rok and resp ~= nil then told, changed, after = T:observe(b, resp, resp.status, sent_at) end
  if probe then T:settle(b, rok and resp ~= nil and (told or x.learns ~= false)) end
  if probe or changed then kick(b) end
  if not rok then error(resp, 0) end
  return resp, err, after
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
    if err.code ~= "outcome_unknown" then err.where = where_of(x) end
    err.hint = err.hint or hints().transport(err)
  end
  return err
end

-- perform(x) -> resp | nil, err [, resp]: send the request x.req once
-- (M.send), ask the policy (M.decide) what to do, do it, until it says
-- done or fail. resp is a 2xx answer; on failure err
-- is the ghl.error to raise and resp the answer it came with, if any.
-- x: req (a ghl.http request), key (bucket: M.bucket_key) or bucket,
-- owner ("location ID", for messages), where ("POST /contacts/"), path,
-- safe (may be sent again after it may have reached the server: see the
-- rule at M.decide), answer_error(resp, x) -> ghl.error for a refused
-- request, refresh(x) -> the new bearer token (optional), unknown(why,
-- resp, err) -> the outcome-unknown error (optional), learns (false: the
-- answers carry no rate-limit headers), on_send(resp, err, attempt, x)
-- (optional). (The callbacks get x as their last argument, so that they
-- need not be closures made for each request.)
--
-- Its words, not its rule: a request sent again after a failure is
-- announced on a terminal (ghl.notice: "retrying GET /contacts/ in 0.4 s
-- (try 2 of 4): ..."), and so is a wait for the rate limit; an error after
-- such retries or waits says how many tries were made and over how long
-- ("... after 4 tries over 1.9 s", err.tries); a transport error is named
-- by the request (err.where) and gets a hint (ghl.hints.transport).
function M.perform(x)
  x.bucket = x.bucket or T:bucket(x.key)
  -- the same rule one layer down: libcurl may silently send a request
  -- again on a fresh connection only when the policy would (ghl.http)
  x.req.idempotent = x.safe and true or false
  -- the attempt so far and, once sent, its outcome (M.decide's two
  -- arguments: their fields differ, so one table serves as both)
  local attempt = { n = 0, n429 = 0, refreshed = false, resp = nil, err = nil, after = nil }
  local t0, tries, again = x.t0 or sys.now(), 0, false
  while true do
    attempt.n, tries = attempt.n + 1, tries + 1
    local resp, err, after = M.send(x)
    if x.on_send then x.on_send(resp, err, attempt, x) end
    attempt.resp, attempt.err, attempt.after = resp, err, after
    local action = M.decide(attempt, attempt, x)
    local kind, s = action.kind, action.after
    if kind == "done" then return resp end
    if kind == "fail" then return nil, failed(x, action.error, resp, tries, again and sys.now() - t0), resp end
    if kind == "wait" then
      attempt.n429, attempt.n, again = attempt.n429 + 1, attempt.n - 1, true
      announce_wait(x.bucket, owner_of(x), s, ", after a 429 answer")
      wait(s)
    elseif kind == "refresh" then
      attempt.refreshed, attempt.n = true, attempt.n - 1
      local token = x.refresh(x)
      if not token then return nil, x.answer_error(resp, x), resp end
      x.req.headers.Authorization = "Bearer " .. token
    else   -- retry
      again = true
      local why = resp and ("HTTP " .. resp.status) or tostring(err.reason or err.message)
      notice.say("retry", err and err.origin or x.bucket, ("retrying %s in %s (try %d of %d): %s"):format(
        where_of(x), notice.seconds(s), attempt.n + 1, M.RETRIES + 1, why), s)
      wait(s)
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

-- The Authorization header and c.last's token_hint of the last token
-- used (a process uses one token, or a few, for many requests).
local bearer_token, bearer, hint

local function bearer_of(token)
  if token ~= bearer_token then
    bearer_token, bearer = token, "Bearer " .. token
    hint = #token >= 12 and "\u{2026}" .. token:sub(-4) or "\u{2026}"   -- never the token itself
  end
  return bearer, hint
end

-- M.perform's callbacks for a client's request x (x.client, x.op, x.row:
-- the store row, nil for a static token, x.token, x.t0): functions of x,
-- not closures made for each request; x finds them through its
-- metatable (CALLBACKS, or CALLBACKS_REFRESH when its token can be
-- refreshed), not in fields of its own.
local function answer_error(resp, x)
  return http_error(x.client, x.req, resp, resp:json(), x.op, x.path, x.row)
end

local function refresh(x)
  local row = require("ghl.auth").refresh(x.row, { stale = x.token })
  x.row, x.token = row, row.access_token
  return x.token
end

-- c.last is the record of the client's last request: a new table for
-- each, so a record the caller kept still describes its own request.
local function on_send(resp, err, attempt, x)
  local self, req = x.client, x.req
  local _, h = bearer_of(x.token)
  local l = { method = req.method, url = req.url, query = req.query, version = req.headers.Version,
    token_hint = h, status = resp and resp.status, time = sys.now() - x.t0, attempts = attempt.n,
    error = err, op = x.op, body = req.json }
  if resp then
    local b = self.bucket   -- a constant-time snapshot for :explain
    l.rate = { max = b.max, remaining = b.remaining, interval_ms = floor(b.interval * 1000),
               daily_limit = b.daily_limit, daily_remaining = b.daily_remaining }
  end
  self.last = l
end

local CALLBACKS = { __index = { answer_error = answer_error, on_send = on_send } }
local CALLBACKS_REFRESH = { __index = { answer_error = answer_error, on_send = on_send, refresh = refresh } }

function Client:request(method, path, opts)
  for i = 1, #observers do
    observers[i](self, { method = method, path = path, version = type(opts) == "table" and opts.version or nil })
  end
  opts = opts or NO_OPTS
  local req, op, filled = Client.build(self, method, path, opts)
  if self.guard then self.guard(self, req, op) end   -- a sandboxed recipe's checks (ghl.sandbox)
  if self.dry_run and not M.is_read(req.method, op, opts) then return self:record(req, filled, opts) end
  local token, row = Client.token(self)
  if op and op.pit == false and row and row.kind == "pit" then
    E.raise { kind = "auth", code = "pit_refused", method = req.method, path = filled,
      message = ("%s %s does not accept Private Integration Tokens"):format(req.method, op.path),
      hint = "use an OAuth token for this call ('ghlua auth login')" }
  end
  req.headers.Authorization = bearer_of(token)
  local x = setmetatable({ req = req, bucket = self.bucket, path = filled,
    safe = M.retry_safe(req.method, op, opts),
    client = self, op = op, row = row, token = token, t0 = sys.now() },
    row and row.kind ~= "pit" and CALLBACKS_REFRESH or CALLBACKS)
  local resp, err, answered = M.perform(x)
  row = x.row
  if not resp then
    err.method, err.path = err.method or req.method, err.path or filled
    err.where = err.where or (req.method .. " " .. filled)
    local status = answered and answered.status
    if row and (status == 401 or status == 403) and err.code ~= "invalid_token" then
      require("ghl.auth").note_refusal(row, req.method .. " " .. filled:gsub("%?.*", ""), err.message)
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

-- (opts made here are made whole: a table that grows from empty is
-- rehashed on its first field)
function Client:get(path, query, opts)
  if opts == nil then
    return self:request("GET", path, query ~= nil and { query = query } or nil)
  end
  opts.query = query or opts.query
  return self:request("GET", path, opts)
end

for _, m in ipairs { "post", "put", "patch" } do
  local method = m:upper()
  Client[m] = function(self, path, body, opts)
    if opts == nil then return self:request(method, path, { body = body }) end
    opts.body = body
    return self:request(method, path, opts)
  end
end

function Client:delete(path, body, opts)
  if opts == nil then return self:request("DELETE", path, { body = body }) end
  opts.body = body
  return self:request("DELETE", path, opts)
end

-- rate() -> the throttle's view: max, remaining, interval_ms, daily_limit,
-- daily_remaining, in_window (requests sent in the current interval).
function Client:rate()
  return T:rate(self.bucket)
end

-- ---- Pagination ----

-- paginate(path, params, {max=, style=, items=, method=, version=, on_page=})
-- -> iterator over items (ghl.client.paginate: every style).
function Client:paginate(path, params, o)
  return require("ghl.client.paginate").iterate(self, path, params, o)
end

-- ---- Concurrency ----

-- batch({{method, path, query=, body=, version=}, ...}, {concurrency=N})
-- -> results in order, each a decoded value or a ghl.error. With each =
-- function(i, v), results go to it as they arrive instead of being kept
-- (ghl.loop.run), and batch returns the number of errors.
function Client:batch(requests, o)
  o = o or {}
  local n = 0
  while requests[n + 1] ~= nil do n = n + 1 end   -- as ipairs goes
  local list = table.move(requests, 1, n, 1, {})   -- the requests as they are now
  return loop.map(n, function(i)
    local r = list[i]
    local query, body, version, retry = r.query, r.body, r.version, r.retry
    return self:request(r.method or r[1] or "GET", r.path or r[2],
      (query ~= nil or body ~= nil or version ~= nil or retry ~= nil)
        and { query = query, body = body, version = version, retry = retry } or nil)
  end, { concurrency = o.concurrency, progress = o.progress, each = o.each })
end

return M
