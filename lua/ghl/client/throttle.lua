-- ghl.client.throttle: the client's rate-limit buckets, a pure state
-- machine over an injected clock: no I/O, no waiting, no coroutines. It
-- says whether a request may go now and for how long it must wait
-- otherwise; the waiting (a sleep, a queue of coroutines inside
-- ghl.parallel) is ghl.client's scheduler.
--   local T = throttle.new{ now = function() return seconds end }
--   T:bucket(key) -> the bucket of key (throttle.bucket_key), made on first use
--   T:acquire(b, who [, arg]) -> true, probe, now | false, wait, for_probe
--       take a request slot in bucket b now, or say how many seconds until
--       one opens (for_probe: the wait is for the probe's answer, which
--       settle may end early). Raises a ghl.error of kind "rate" when b's
--       daily budget (`who`'s: "location ID", or who(arg) when who is a
--       function, called only then) is used up. probe: the
--       request is the bucket's first, whose caller must settle it; now:
--       the time the slot was taken at (the clock's).
--   T:settle(b, answered)      the probe's answer came (answered: it told
--       the limits; false: the next request probes again)
--   T:observe(b, resp [, status [, sent_at]]) -> told, changed, after
--       (sent_at: the `now` T:acquire returned for this request, which
--       its log holds: the send's round trip is kept under it while the
--       log keeps that send; see LATENCY)
--       feed b from an answer's X-RateLimit-* headers (resp: a ghl.http
--       response, read through resp:ratelimit() and resp:header() without
--       building resp.headers, or a plain table of lower-case header
--       names, as tests and the sandbox give). told: they were
--       there; changed: the window, the limit or the daily budget moved
--       (waiters should look again); after, for a 429: the seconds to wait
--       before sending again (Retry-After, else the window, clamped to
--       MAX_WAIT), or false when the daily budget is used up.
--   T:delay(b) -> seconds until a request fits, for_probe (0: now)
--   T:rate(b) -> the bucket's view (ghl.client's c:rate())
--   throttle.bucket_key(client_id, resource) -> the key of an app's budget
--
-- One bucket per (app, resource), shared by every client, coroutine and
-- OAuth call of the process (ghl.oauth sends through ghl.client.perform
-- too). A sliding log of send times keeps at most `max` requests in any
-- `interval`; the server's headers correct it. Until a bucket has had an
-- answer it does not know the server's limit, so its first request goes
-- alone (the probe) and the others wait for it, for PROBE_WAIT at most (a
-- probe abandoned by Ctrl-C never settles).
local E = require "ghl.error"

local M = {}

-- What the server's rate-limit headers may make the client do, at most:
-- a burst window of 100 ms to 60 s, 1 to 10000 requests per window, and
-- no single wait (Retry-After, a window, a backoff) longer than MAX_WAIT.
-- HighLevel sends 10000 ms and 100 requests; anything outside these
-- bounds is a broken or hostile answer, not a reason to sleep for days.
-- (ghl.client.MAX_WAIT, INTERVAL_MS and MAX_REQUESTS read and set these.)
M.INTERVAL_MS = { 100, 60000 }
M.MAX_REQUESTS = { 1, 10000 }
M.MAX_WAIT = 60

M.MARGIN = 0.02    -- seconds added to each wait: our clock starts before the server's

-- LATENCY: the server counts a request when it arrives, we when we send
-- it. A send that waits for the oldest send of the window to leave it
-- must also wait for the time that request may have taken to arrive,
-- which is at most its round trip. So each such wait also covers
-- b.latency: the largest recent round trip (each answer first lowers the
-- old figure by LATENCY_DECAY), or that send's own round trip when it was
-- longer (b.rtt, by send time, while the log keeps the send: the one
-- leaving the window may be a slow one a hundred answers ago, which the
-- decayed figure forgot), at most a quarter of the window. On a loaded machine or a slow network
-- this keeps the server's window from holding one request more than its
-- limit.
M.LATENCY_DECAY = 0.9
M.PROBE_WAIT = 2   -- seconds others wait for a bucket's first answer at most

-- The log keeps sends for SLACK seconds past the interval: an answer
-- arriving now may come from a server window that still counts them.
M.SLACK = 2

function M.clamp(v, lo, hi)
  if v ~= v then return lo end   -- NaN
  return math.max(lo, math.min(hi, v))
end
local clamp = M.clamp

-- The bucket of an app's budget for a resource: HighLevel counts "per
-- Marketplace app per location or company" (FACTS §6), so the app is named
-- by its app id (the client id up to "-": installedLocations' appId).
function M.bucket_key(client_id, resource)
  client_id = tostring(client_id)
  return (client_id:match("^([^-]+)%-") or client_id) .. ":" .. tostring(resource)
end

local T = {}
T.__index = T

-- new{now = fn} -> a throttle with no buckets yet; fn() -> seconds.
function M.new(o)
  assert(type(o) == "table" and type(o.now) == "function", "throttle.new: now must be a function")
  return setmetatable({ now = o.now, buckets = {} }, T)
end

-- bucket(key) -> the bucket for key, made on first use: it knows nothing
-- yet (100 per 10 s until told).
function T:bucket(key)
  local b = self.buckets[key]
  if not b then
    b = { max = 100, interval = 10, sent = {}, head = 1, daily_remaining = nil, daily_limit = nil,
          remaining = nil, others = 0, others_until = 0, probing = false, answered = false,
          latency = 0, rtt = {} }
    self.buckets[key] = b
  end
  return b
end

-- Sends in bucket b's log after time t (the log is in time order).
local function since(b, t)
  local lo, hi = b.head, #b.sent + 1
  while lo < hi do
    local mid = (lo + hi) // 2
    if b.sent[mid] > t then hi = mid else lo = mid + 1 end
  end
  return #b.sent - lo + 1
end

-- Drop the sends of bucket b's log older than interval + SLACK at `now`;
-- returns how many the log keeps (all of them later than that).
local function trim(b, now)
  local sent, head, interval = b.sent, b.head, b.interval
  local n = #sent
  local old = now - interval - (M.SLACK < interval and M.SLACK or interval)
  local rtt = b.rtt
  while head <= n and sent[head] <= old do
    local t = sent[head]
    head = head + 1
    if sent[head] ~= t then rtt[t] = nil end   -- its round trip goes with the last send of its time
  end
  if head > 256 then
    b.sent = table.move(sent, head, n, 1, {})
    head = 1
  end
  b.head = head
  return #b.sent - head + 1
end

-- Seconds until one more request fits in bucket b at `now` (0: now), and
-- whether the wait is for the probe's answer. Requests the server counted
-- that were not ours (b.others, see observe) fill the window until
-- b.others_until, when its window has surely ended.
local function delay(b, now)
  if b.probing and b.probing > now then return b.probing - now, true end
  local kept = trim(b, now)
  -- the usual case, without a search: even every send the log keeps and
  -- every request of others' fit
  if kept + b.others < b.max then return 0 end
  local count = since(b, now - b.interval)
  if b.others_until > now and count + b.others >= b.max then return b.others_until - now end
  if count >= b.max then
    -- the max-th most recent send leaves the window (with the limit
    -- lowered by a header, the ones beyond it leave first)
    local k = #b.sent - b.max + 1
    local lat = b.rtt[b.sent[k]]
    if not lat or lat < b.latency then lat = b.latency end
    return b.sent[k] + b.interval - now + M.MARGIN + lat
  end
  return 0
end

function T:delay(b)
  return delay(b, self.now())
end

-- acquire(b, who [, arg]) -> true, probe, now | false, wait, for_probe (see the top).
function T:acquire(b, who, arg)
  if b.daily_remaining == 0 then
    if type(who) == "function" then who = who(arg) end
    E.raise { kind = "rate", message = "the daily request limit of " .. (b.daily_limit or "?") ..
      " is used up for " .. who, hint = "nothing will succeed until the daily window resets; retry tomorrow" }
  end
  local now = self.now()
  local w, for_probe = delay(b, now)
  if w > 0 then return false, w, for_probe or false end
  b.sent[#b.sent + 1] = now
  if not b.answered then b.probing = now + M.PROBE_WAIT; return true, true, now end
  return true, false, now
end

-- settle(b, answered): the probe of bucket b ended, with an answer that
-- told the limits or not (then the next request probes again).
function T:settle(b, answered)
  b.probing = false
  b.answered = b.answered or answered and true
end

-- The wait a 429 asks for: Retry-After when the server gives one, else
-- the burst window, clamped to MAX_WAIT; false when the daily budget is
-- used up (nothing will succeed by waiting).
local function after_429(b, h)
  if b.daily_remaining == 0 then return false end
  local header = h.header
  local retry_after = tonumber(type(header) == "function" and header(h, "retry-after") or h["retry-after"])
  local w = (retry_after and retry_after >= 0) and retry_after or b.interval
  return clamp(w, 0, M.MAX_WAIT)
end

-- The X-RateLimit-* numbers of h (see observe): max, remaining,
-- interval_ms, daily_remaining, daily_limit, each nil when absent or not
-- a number.
local function limits(h)
  local ratelimit = h.ratelimit
  if type(ratelimit) == "function" then return ratelimit(h) end
  return tonumber(h["x-ratelimit-max"]), tonumber(h["x-ratelimit-remaining"]),
    tonumber(h["x-ratelimit-interval-milliseconds"]), tonumber(h["x-ratelimit-daily-remaining"]),
    tonumber(h["x-ratelimit-limit-daily"])
end

-- observe(b, resp [, status [, sent_at]]) -> told, changed, after (see the
-- top): the X-RateLimit-* headers, clamped (see INTERVAL_MS, MAX_REQUESTS).
function T:observe(b, h, status, sent_at)
  local max, remaining, interval, daily, daily_limit = limits(h)
  local now = self.now()
  local before_max, before_interval = b.max, b.interval
  if sent_at then
    local rtt, latency = now - sent_at, b.latency * M.LATENCY_DECAY
    if rtt > before_interval / 4 then rtt = before_interval / 4 end
    if rtt > latency then latency = rtt end
    if latency > before_interval / 4 then latency = before_interval / 4 end
    b.latency = latency > 0 and latency or 0
    -- the send's own round trip, kept by its send time (the time acquire
    -- logged) while the log keeps that send
    local oldest = b.sent[b.head]
    if rtt > 0 and oldest and sent_at >= oldest and (b.rtt[sent_at] or 0) < rtt then b.rtt[sent_at] = rtt end
  end
  -- (max > 0 and interval > 0 are false for NaN)
  if max and max > 0 then
    local lo, hi = M.MAX_REQUESTS[1], M.MAX_REQUESTS[2]
    b.max = math.floor(max < lo and lo or max > hi and hi or max)
  end
  if interval and interval > 0 then
    local lo, hi = M.INTERVAL_MS[1], M.INTERVAL_MS[2]
    b.interval = (interval < lo and lo or interval > hi and hi or interval) / 1000
  end
  if daily then b.daily_remaining = daily > 0 and daily or 0 end
  b.daily_limit = daily_limit or b.daily_limit
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
    if b.others_until <= now then b.others = 0 end
    local counted = b.max - remaining
    -- (trim keeps the sends of the interval and the slack; no need to
    -- count them when the server's count alone is no more than b.others)
    local others = counted > b.others and counted - trim(b, now) or 0
    if others > b.others then
      b.others, b.others_until = others, now + math.min(b.interval, M.MAX_WAIT) + M.MARGIN
    end
  end
  local changed = b.max ~= before_max or b.interval ~= before_interval or b.daily_remaining == 0
  local after
  if status == 429 then after = after_429(b, h) end
  return max ~= nil or interval ~= nil or remaining ~= nil, changed, after
end

-- rate(b) -> the bucket's view: max, remaining, interval_ms, daily_limit,
-- daily_remaining, in_window (requests sent in the current interval),
-- blocked_for (seconds others' use fills the window).
function T:rate(b)
  local now, n = self.now(), 0
  for i = b.head, #b.sent do if b.sent[i] > now - b.interval then n = n + 1 end end
  return { max = b.max, remaining = b.remaining, interval_ms = math.floor(b.interval * 1000),
           daily_limit = b.daily_limit, daily_remaining = b.daily_remaining, in_window = n,
           blocked_for = b.others_until > now and b.others > 0 and (b.others_until - now) or 0 }
end

return M
