-- ghl.sim.faults: test routes under /__fault/, mounted only with --faults.
-- They need no Version header and no token, and they are not rate limited.
-- Each one produces a transport or payload failure a client must survive:
-- HTML where JSON was expected, cut-off JSON, a transfer cut mid-body, a
-- connection closed or reset with no response, a slow answer, a big body,
-- an arbitrary status with a HighLevel error body, and an echo of the
-- request so specs can check how a client encoded it. Bad query values get
-- a 400; nothing else raises.
local reply = require "ghl.sim.reply"

local M = {}

local HTML_PAGE = [[<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Maintenance</title></head>
<body><h1>We'll be back soon</h1><p>LeadConnector is down for scheduled maintenance.</p></body>
</html>
]]

local PROXY_PAGE = [[<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>nginx</center>
</body>
</html>
]]

local function html(status, body)
  return { status = status, headers = { ["Content-Type"] = "text/html; charset=utf-8" }, body = body }
end

-- A non-negative integer query parameter, bounded, or raise 400.
local function int_param(ctx, name, default, max)
  local v = ctx.query[name]
  if v == nil or v == "" then return default end
  local n = math.tointeger(tonumber(v))
  if not n or n < 0 or n > max then
    reply.raise(400, string.format("%s must be an integer between 0 and %d", name, max))
  end
  return n
end

local SAMPLE = reply.encode { contacts = reply.array {
  { id = "sImTrUnCaTeD00000001", firstName = "Partial", lastName = "Body",
    email = "partial@example.com", tags = reply.array { "fault" } } }, total = 1 }

local handlers = {}

handlers.html = function() return html(200, HTML_PAGE) end
handlers.html500 = function() return html(502, PROXY_PAGE) end

handlers["truncated-json"] = function()
  return { status = 200, headers = { ["Content-Type"] = "application/json; charset=utf-8" },
    body = SAMPLE:sub(1, #SAMPLE // 2) }
end

handlers.partial = function()
  return { status = 200, headers = { ["Content-Type"] = "application/json; charset=utf-8" },
    body = SAMPLE, truncate = #SAMPLE // 2 }
end

handlers.empty = function() return { close = true } end
handlers.reset = function() return { reset = true } end

handlers.slow = function(ctx)
  local ms = int_param(ctx, "ms", 1000, 600000)
  local r = reply.json(200, { ok = true, delayMs = ms })
  r.delay = ms / 1000
  return r
end

-- {"data":"xxx..."} and a newline: exactly `bytes` bytes (at least the 12
-- of the frame), so data holds bytes - 12 characters.
handlers.big = function(ctx)
  local n = int_param(ctx, "bytes", 1024 * 1024, 1024 * 1024 * 1024)
  local fill = math.max(0, n - #'{"data":""}\n')
  return { status = 200, headers = { ["Content-Type"] = "application/json; charset=utf-8" },
    body = '{"data":"' .. string.rep("x", fill) .. '"}\n' }
end

handlers.echo = function(ctx)
  local req = ctx.req
  return 200, { method = req.method, path = req.path, query = req.query or {},
    queryAll = req.query_all, headers = req.headers or {}, body = req.body or "" }
end

handlers.status = function(ctx)
  local code = int_param(ctx, "code", 500, 599)
  if code < 100 then reply.raise(400, "code must be an HTTP status between 100 and 599") end
  local headers = {}
  if code == 429 then
    headers = { ["X-RateLimit-Limit-Daily"] = "200000", ["X-RateLimit-Daily-Remaining"] = "199000",
      ["X-RateLimit-Interval-Milliseconds"] = "10000", ["X-RateLimit-Max"] = "100",
      ["X-RateLimit-Remaining"] = "0" }
  end
  if code < 400 then return code, { ok = true, status = code }, headers end
  local msg = ctx.query.message
  if msg == nil or msg == "" then msg = reply.reason(code) end
  return code, reply.error_body(code, msg, ctx.trace_id), headers
end

M.routes = {}
for name, h in pairs(handlers) do
  M.routes[#M.routes + 1] = { method = "*", path = "/__fault/" .. name, handler = h,
    public = true, family = "fault" }
end
table.sort(M.routes, function(a, b) return a.path < b.path end)

return M
