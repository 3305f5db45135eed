-- ghl.sim.ratelimit: HighLevel's two limits, kept per (app, resource) where
-- the resource is the location (or, later, the company) a token belongs to:
-- a burst window (default 100 requests per 10,000 ms) and a daily budget
-- (default 200,000). Windows are fixed, start at the first request and are
-- measured on the monotonic clock; the "day" is 86,400 s from the first
-- request. Rejected requests do not count. take() never raises.
local M = {}
local Limiter = {}
Limiter.__index = Limiter

M.DEFAULTS = { max = 100, interval_ms = 10000, daily = 200000 }

-- config: max, interval_ms, daily, now() (monotonic seconds).
function M.new(config)
  config = config or {}
  return setmetatable({
    max = config.max or M.DEFAULTS.max,
    interval_ms = config.interval_ms or M.DEFAULTS.interval_ms,
    daily = config.daily or M.DEFAULTS.daily,
    now = config.now or os.clock,
    buckets = {},
  }, Limiter)
end

function Limiter:bucket(key)
  local b = self.buckets[key]
  local now = self.now()
  if not b then
    b = { window_start = now, count = 0, day_start = now, day_count = 0 }
    self.buckets[key] = b
  end
  if (now - b.window_start) * 1000 >= self.interval_ms then
    b.window_start, b.count = now, 0
  end
  if now - b.day_start >= 86400 then
    b.day_start, b.day_count = now, 0
  end
  return b
end

function Limiter:headers(b)
  return {
    ["X-RateLimit-Limit-Daily"] = tostring(self.daily),
    ["X-RateLimit-Daily-Remaining"] = tostring(math.max(0, self.daily - b.day_count)),
    ["X-RateLimit-Interval-Milliseconds"] = tostring(self.interval_ms),
    ["X-RateLimit-Max"] = tostring(self.max),
    ["X-RateLimit-Remaining"] = tostring(math.max(0, self.max - b.count)),
  }
end

-- Count one request for key ("app:resource"). Returns ok, headers, why
-- (why is "daily" or "burst" when not ok).
function Limiter:take(key)
  local b = self:bucket(key)
  if b.day_count >= self.daily then
    return false, self:headers(b), "daily"
  end
  if b.count >= self.max then
    return false, self:headers(b), "burst"
  end
  b.count = b.count + 1
  b.day_count = b.day_count + 1
  return true, self:headers(b)
end

-- The headers for key without counting (e.g. for a 429 from elsewhere).
function Limiter:peek(key)
  return self:headers(self:bucket(key))
end

return M
