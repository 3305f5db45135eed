-- ghl.sim.admin: the simulator's own routes under /__sim/, for tests and
-- tooling rather than HighLevel clients. No Version header, no token, no
-- rate limit, and they are not counted in the statistics they report.
--   GET /__sim/stats   counters: requests, per-status counts, 429s from the
--                      limiter, Version values seen per route family and the
--                      last one per family, per-location record counts.
--   GET /__sim/health  {"ok":true}
local M = {}

local function stats(ctx)
  return 200, ctx.state:stats_snapshot()
end

local function health()
  return 200, { ok = true }
end

M.routes = {
  { method = "GET", path = "/__sim/stats", handler = stats, public = true, uncounted = true, family = "sim" },
  { method = "GET", path = "/__sim/health", handler = health, public = true, uncounted = true, family = "sim" },
}

return M
