-- ghl.client.throttle on a fake clock: the rate-limit rules without a
-- server or a wait. The clock is a number the test moves; the throttle
-- only says "go" or "wait N seconds", and that is what is checked: the
-- burst limit of a 10 s window, the daily limit, the probe and the order
-- in which its settle releases the others, a 429's Retry-After, and one
-- bucket per (app, resource).
local throttle = require "ghl.client.throttle"

local function fake()
  local clock = { t = 1000 }
  clock.T = throttle.new { now = function() return clock.t end }
  return clock
end

-- HighLevel's headers: max per interval_ms, remaining in the window.
local function limits(max, interval_ms, remaining, extra)
  local h = { ["x-ratelimit-max"] = tostring(max), ["x-ratelimit-interval-milliseconds"] = tostring(interval_ms),
              ["x-ratelimit-remaining"] = tostring(remaining) }
  for k, v in pairs(extra or {}) do h[k] = v end
  return h
end

-- A bucket that has had its first answer: the probe went and was settled
-- with headers saying max requests per interval_ms.
local function learnt(clock, key, max, interval_ms)
  local T = clock.T
  local b = T:bucket(key)
  local ok, probe = T:acquire(b, "location L")
  assert.is_true(ok)
  assert.is_true(probe)
  local told = T:observe(b, limits(max, interval_ms, max - 1), 200)
  assert.is_true(told)
  T:settle(b, true)
  return b
end

describe("ghl.client.throttle", function()
  it("needs a clock", function()
    assert.has_error(function() throttle.new {} end)
  end)

  it("waits, besides the window, for the longest recent round trip: the server counts a request when it arrives", function()
    local c = fake()
    local T = c.T
    local b = learnt(c, "app:L", 3, 1000)   -- the probe, sent and answered at 0 s
    -- two more sent at 0 s whose answers take 0.2 s: each may have reached
    -- the server as late as 0.2 s
    local sent = c.t
    assert.is_true((T:acquire(b, "location L")))
    assert.is_true((T:acquire(b, "location L")))
    c.t = c.t + 0.2
    T:observe(b, limits(3, 1000, 1), 200, sent)
    T:observe(b, limits(3, 1000, 0), 200, sent)
    local ok, w = T:acquire(b, "location L")
    assert.is_false(ok)
    -- the probe leaves our window at 1 s; the server's may end 0.2 s later
    assert.is_near(0.8 + throttle.MARGIN + 0.2, w, 1e-9)
    -- a slower answer counts as far as a quarter of the window
    T:observe(b, limits(3, 1000, 0), 200, sent - 5)
    assert.is_near(0.8 + throttle.MARGIN + 0.25, select(2, T:acquire(b, "location L")), 1e-9)
  end)

  it("waits for the slow round trip of the very send that leaves the window, however many fast ones came since", function()
    local c = fake()
    local T = c.T
    local b = learnt(c, "app:L", 100, 2000)   -- the probe, sent and answered at 0 s
    -- the first send of the burst takes 60 ms to be answered (it may have
    -- reached the server that late); the 98 after it 4 ms each
    c.t = c.t + 0.1
    local first = c.t
    assert.is_true((T:acquire(b, "location L")))
    c.t = c.t + 0.06
    T:observe(b, limits(100, 2000, 98), 200, first)
    for i = 1, 98 do
      local _, _, at = T:acquire(b, "location L")
      c.t = c.t + 0.004
      T:observe(b, limits(100, 2000, 98 - i), 200, at)
    end
    assert.is_true(b.latency < 0.06 * 0.5)     -- the decayed figure forgot the slow one
    local ok, w = T:acquire(b, "location L")
    assert.is_false(ok)
    -- the probe leaves at 2 s, then the slow send is the oldest of the window
    assert.is_near(first - 0.1 + 2 + throttle.MARGIN + b.latency - c.t, w, 1e-9)
    c.t = c.t + w
    assert.is_true((T:acquire(b, "location L")))   -- the probe's slot
    local ok2, w2 = T:acquire(b, "location L")
    assert.is_false(ok2)
    assert.is_near(first + 2 + throttle.MARGIN + 0.06 - c.t, w2, 1e-9)
  end)

  it("keeps at most max requests in any burst window of 10 s", function()
    local c = fake()
    local T = c.T
    local b = learnt(c, "app:L", 5, 10000)
    -- the probe (at 0 s) was one of the five; four more, one a second
    for _ = 1, 4 do
      c.t = c.t + 1
      local ok, probe = T:acquire(b, "location L")
      assert.is_true(ok)
      assert.is_false(probe)
    end
    local ok, w, for_probe = T:acquire(b, "location L")
    assert.is_false(ok)
    assert.is_false(for_probe)
    -- at 4 s: the probe leaves the window 10 s after it went (plus the margin)
    assert.is_near(6 + throttle.MARGIN, w, 1e-9)
    assert.are.equal(5, T:rate(b).in_window)
    c.t = c.t + 5.9
    assert.is_false((T:acquire(b, "location L")))
    c.t = c.t + 0.1 + throttle.MARGIN
    assert.is_true((T:acquire(b, "location L")))
    -- one left the window, one came in: full again until the second one leaves
    ok, w = T:acquire(b, "location L")
    assert.is_false(ok)
    assert.is_near(1, w, 1e-9)
  end)

  it("takes the window and the limit from the headers, clamped", function()
    local c = fake()
    local T = c.T
    local b = learnt(c, "app:L", 2, 1000)
    assert.are.equal(2, b.max)
    assert.are.equal(1, b.interval)
    T:observe(b, limits(1e9, 1e12, 0))
    assert.are.equal(throttle.MAX_REQUESTS[2], b.max)
    assert.are.equal(throttle.INTERVAL_MS[2] / 1000, b.interval)
    T:observe(b, limits(-3, 0, 0))   -- nonsense leaves them as they were
    assert.are.equal(throttle.MAX_REQUESTS[2], b.max)
    local _, changed = T:observe(b, limits(3, 1000, 2))
    assert.is_true(changed)
    _, changed = T:observe(b, limits(3, 1000, 2))
    assert.is_false(changed)
  end)

  it("counts requests the server saw that were not its own", function()
    local c = fake()
    local T = c.T
    local b = learnt(c, "app:L", 10, 10000)
    -- the server's window holds 10 - 1 = 9, our log 1: 8 are someone else's
    T:observe(b, limits(10, 10000, 1))
    assert.is_true((T:acquire(b, "location L")))   -- the 10th fits
    local ok, w = T:acquire(b, "location L")
    assert.is_false(ok)
    assert.is_true(w > 0 and w <= 10 + throttle.MARGIN)
    assert.is_true(T:rate(b).blocked_for > 0)
  end)

  it("stops at the daily limit, naming whose budget it is", function()
    local c = fake()
    local T = c.T
    local b = learnt(c, "app:L", 100, 10000)
    local _, changed = T:observe(b, limits(100, 10000, 98,
      { ["x-ratelimit-daily-remaining"] = "0", ["x-ratelimit-limit-daily"] = "200000" }))
    assert.is_true(changed)
    local ok, err = pcall(T.acquire, T, b, "location L")
    assert.is_false(ok)
    assert.are.equal("rate", err.kind)
    assert.matches("daily request limit of 200000 is used up for location L", err.message, 1, true)
    assert.is_truthy(err.hint)
    -- no amount of waiting in the burst window helps
    c.t = c.t + 3600
    assert.is_false(pcall(T.acquire, T, b, "location L"))
    -- the server says the day turned
    T:observe(b, limits(100, 10000, 99, { ["x-ratelimit-daily-remaining"] = "199999" }))
    assert.is_true((T:acquire(b, "location L")))
  end)

  it("sends the probe alone and releases the others when it settles", function()
    local c = fake()
    local T = c.T
    local b = T:bucket("app:L")
    local ok, probe = T:acquire(b, "location L")
    assert.is_true(ok)
    assert.is_true(probe)
    -- the others wait for the probe's answer, PROBE_WAIT at most
    local ok2, w, for_probe = T:acquire(b, "location L")
    assert.is_false(ok2)
    assert.is_true(for_probe)
    assert.are.equal(throttle.PROBE_WAIT, w)
    -- settled without an answer that told the limits: the next one probes again
    T:settle(b, false)
    ok, probe = T:acquire(b, "location L")
    assert.is_true(ok)
    assert.is_true(probe)
    assert.is_false((T:acquire(b, "location L")))
    -- settled with an answer: everyone goes, none of them a probe
    T:observe(b, limits(100, 10000, 98))
    T:settle(b, true)
    for _ = 1, 3 do
      ok, probe = T:acquire(b, "location L")
      assert.is_true(ok)
      assert.is_false(probe)
    end
    -- a later settle (a probe abandoned, say) never makes the bucket forget
    T:settle(b, false)
    ok, probe = T:acquire(b, "location L")
    assert.is_true(ok)
    assert.is_false(probe)
  end)

  it("gives up waiting for a probe that never settles after PROBE_WAIT", function()
    local c = fake()
    local T = c.T
    local b = T:bucket("app:L")
    assert.is_true((T:acquire(b, "location L")))
    c.t = c.t + throttle.PROBE_WAIT - 0.5
    local ok, w = T:acquire(b, "location L")
    assert.is_false(ok)
    assert.is_near(0.5, w, 1e-9)
    c.t = c.t + 0.5
    local probe
    ok, probe = T:acquire(b, "location L")
    assert.is_true(ok)
    assert.is_true(probe)   -- still no answer: this one probes in turn
  end)

  it("waits out a 429 for its Retry-After, else the window, never past MAX_WAIT", function()
    local c = fake()
    local T = c.T
    local b = learnt(c, "app:L", 100, 10000)
    local _, _, after = T:observe(b, { ["retry-after"] = "3" }, 429)
    assert.are.equal(3, after)
    _, _, after = T:observe(b, limits(100, 4000, 0), 429)
    assert.are.equal(4, after)   -- no Retry-After: the burst window
    _, _, after = T:observe(b, { ["retry-after"] = "1e15" }, 429)
    assert.are.equal(throttle.MAX_WAIT, after)
    _, _, after = T:observe(b, { ["retry-after"] = "-5" }, 429)
    assert.are.equal(4, after)   -- a negative one is no answer
    _, _, after = T:observe(b, { ["retry-after"] = "3" }, 200)
    assert.is_nil(after)         -- only a 429 asks for a wait
    _, _, after = T:observe(b, { ["retry-after"] = "3", ["x-ratelimit-daily-remaining"] = "0" }, 429)
    assert.is_false(after)       -- the day's budget is gone: waiting will not help
  end)

  it("keeps one bucket per (app, resource)", function()
    assert.are.equal("abc123:LOC1", throttle.bucket_key("abc123-xyz789", "LOC1"))
    assert.are.equal("abc123:LOC1", throttle.bucket_key("abc123-other", "LOC1"))
    assert.are.equal("abc123:LOC2", throttle.bucket_key("abc123-xyz789", "LOC2"))
    assert.are.equal("plain:LOC1", throttle.bucket_key("plain", "LOC1"))
    local c = fake()
    local T = c.T
    assert.are.equal(T:bucket("abc123:LOC1"), T:bucket(throttle.bucket_key("abc123-xyz789", "LOC1")))
    local full = learnt(c, "abc123:LOC1", 1, 10000)
    assert.is_false((T:acquire(full, "location LOC1")))
    -- another location of the same app, and the same location under
    -- another app, have budgets of their own
    for _, key in ipairs { "abc123:LOC2", "other:LOC1" } do
      local b = T:bucket(key)
      assert.are_not.equal(full, b)
      assert.is_true((T:acquire(b, "location")))
    end
    -- and another throttle (another clock) shares nothing
    assert.are_not.equal(full, fake().T:bucket("abc123:LOC1"))
  end)
end)
