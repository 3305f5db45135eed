-- support.simlog: the simulator's own records, read to assert overlap,
-- order and pacing on the SERVER's timestamps instead of the test's wall
-- clock (time belongs in bench/).
--   simlog.requests(s, q) -> the request log (GET /__sim/requests, q: method,
--       path): entries {seq, method, path, query, status, at (epoch ms, when
--       the simulator handled it), delayMs (answer held back), remaining, ...}
--   simlog.clear(s)          empties the log
--   simlog.now_ms(s)         the simulator's clock now, epoch ms
--   simlog.answered(e)       the earliest the answer of entry e can have
--                            left: e.at + e.delayMs
--   simlog.peak(entries)     the most entries in flight at once: for each
--                            arrival, how many entries had arrived and not
--                            yet been answered (itself included)
-- s is a simulator from support.sim (or anything with .url), or a base URL.
local http = require "ghl.http"

local M = {}

local function base(s)
  return type(s) == "string" and s or s.url
end

local function get(s, path, query)
  local resp = assert(http.request { url = base(s) .. path, query = query, timeout = 10 })
  assert(resp.status == 200, "GET " .. path .. ": " .. resp.status .. " " .. resp.body)
  return assert(resp:json())
end

function M.requests(s, q)
  return get(s, "/__sim/requests", q).requests
end

function M.clear(s)
  assert(http.request { method = "DELETE", url = base(s) .. "/__sim/requests", timeout = 10 })
end

function M.now_ms(s)
  return get(s, "/__sim/clock").now * 1000
end

function M.answered(e)
  return e.at + (e.delayMs or 0)
end

function M.peak(entries)
  local peak = 0
  for _, e in ipairs(entries) do
    local n = 0
    for _, f in ipairs(entries) do
      if f.at <= e.at and e.at < M.answered(f) then n = n + 1 end
    end
    peak = math.max(peak, n)
  end
  return peak
end

return M
