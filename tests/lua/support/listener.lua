-- support.listener: a loopback HTTP listener in a process of its own that
-- records every request it is sent, for tests that check a secret never
-- leaves for another host. As a module (from a spec):
--   local l = listener.start()     -- 127.0.0.1, a free port; waits for it
--   l.port, l.url                  -- where it listens
--   l.requests()                   -- {{method, path, query, headers, body}, ...}
--                                     everything received so far (a fence
--                                     request of the spec's own is sent and
--                                     waited for first, then left out)
--   l.clear()                      -- forget what was received
--   l.stop()                       -- end the process (by its pid)
-- As a script (what start runs):
--   ghlua tests/lua/support/listener.lua --serve READY_FILE LOG_FILE
-- appends one JSON line per request to LOG_FILE before answering 200 with
-- {"contacts": [], "listener": true}, and writes READY_FILE ({url, port,
-- pid}) once it listens.
local cjson = require "cjson"

local FENCE = "/__listener_fence"

if (...) == "--serve" then
  local server = require "ghl.server"
  local sys = require "ghl.sys"
  local ready, logfile = select(2, ...)
  assert(ready and logfile, "usage: listener.lua --serve READY_FILE LOG_FILE")
  local log = assert(io.open(logfile, "a"))
  log:setvbuf("no")
  local srv = assert(server.listen {
    host = "127.0.0.1", port = 0, max_body = 1024 * 1024,
    handler = function(req)
      log:write(cjson.encode { method = req.method, path = req.path, query = req.query,
        headers = req.headers, body = req.body }, "\n")
      log:flush()
      return { status = 200, headers = { ["Content-Type"] = "application/json" },
               body = '{"contacts":[],"listener":true}' }
    end,
  })
  local f = assert(io.open(ready .. ".tmp", "w"))
  f:write(cjson.encode { url = srv.url, port = srv.port, pid = sys.getpid() })
  f:close()
  assert(os.rename(ready .. ".tmp", ready))
  assert(srv:run())
  srv:close()
  return
end

local sys = require "ghl.sys"
local http = require "ghl.http"
local run = require "support.run"

local M = { TIMEOUT = 10 }

local function decode_lines(text)
  local out = {}
  for line in text:gmatch("[^\n]+") do out[#out + 1] = cjson.decode(line) end
  return out
end

function M.start()
  local base = os.tmpname()
  local ready, logfile, out = base .. ".ready", base .. ".log", base .. ".out"
  local script = (os.getenv("GHLUA_SRC") or ".") .. "/tests/lua/support/listener.lua"
  assert(os.execute(("%s %s --serve %s %s </dev/null >%s 2>&1 &"):format(run.quote(os.getenv("GHLUA")),
    run.quote(script), run.quote(ready), run.quote(logfile), run.quote(out))))
  local deadline = sys.now() + M.TIMEOUT
  local info
  while true do
    local text = run.slurp(ready)
    if text ~= "" then info = cjson.decode(text); break end
    if sys.now() > deadline then
      error("support.listener: not ready after " .. M.TIMEOUT .. " s:\n" .. run.slurp(out), 2)
    end
    sys.sleep(0.02)
  end
  local l = { url = info.url, port = math.tointeger(info.port), pid = math.tointeger(info.pid) }
  local fences = 0

  function l.requests()
    -- a request of our own, then wait until it shows in the log: what was
    -- sent before it has been handled by then
    fences = fences + 1
    local tag = tostring(fences)
    assert(http.request { url = l.url .. FENCE, query = { n = tag }, timeout = 10 })
    local limit = sys.now() + M.TIMEOUT
    while true do
      local all = decode_lines(run.slurp(logfile))
      local seen, got = false, {}
      for _, r in ipairs(all) do
        if r.path == FENCE then
          if r.query and r.query.n == tag then seen = true end
        else
          got[#got + 1] = r
        end
      end
      if seen then return got end
      if sys.now() > limit then error("support.listener: the fence request never showed in the log", 2) end
      sys.sleep(0.01)
    end
  end

  function l.clear()
    local f = assert(io.open(logfile, "w"))
    f:close()
  end

  function l.stop()
    if l.pid and sys.kill(l.pid, 0) then sys.kill(l.pid, 15) end
    local limit = sys.now() + 5
    while l.pid and sys.kill(l.pid, 0) and sys.now() < limit do sys.sleep(0.02) end
    if l.pid and sys.kill(l.pid, 0) then sys.kill(l.pid, 9) end
    for _, p in ipairs { base, ready, logfile, out } do os.remove(p) end
  end

  return l
end

return M
