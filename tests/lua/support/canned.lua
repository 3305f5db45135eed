-- A ghl.server fixture in its own process that answers each path with a
-- reply given in a JSON file (the spec is the client):
--   ghlua tests/lua/support/canned.lua ROUTES.json READY_FILE
-- ROUTES.json: {"/path": {"status": 400, "headers": {...}, "body": "..."}};
-- body_hex instead of body gives the bytes in hex (for binary replies). Any
-- other path gets 404. Writes {url, port} to READY_FILE once listening;
-- SIGTERM stops it. Used through canned.start(routes) below when required.
local M = {}

function M.start(routes)
  local cjson = require "cjson"
  local sys = require "ghl.sys"
  local run = require "support.run"
  local base = os.tmpname()
  local file, ready, log = base .. ".routes.json", base .. ".ready", base .. ".log"
  local f = assert(io.open(file, "w"))
  f:write(cjson.encode(routes))
  f:close()
  local cmd = string.format("%s %s %s %s </dev/null >%s 2>&1 & echo $!", run.quote(os.getenv("GHLUA")),
    run.quote((os.getenv("GHLUA_SRC") or ".") .. "/tests/lua/support/canned.lua"), run.quote(file),
    run.quote(ready), run.quote(log))
  local p = assert(io.popen(cmd))
  local pid = math.tointeger(tonumber(p:read("l")))
  p:close()
  local deadline = sys.now() + 10
  local info
  while true do
    local t = run.slurp(ready)
    if t ~= "" then info = cjson.decode(t) break end
    assert(sys.now() < deadline and sys.kill(pid, 0), "canned server not ready: " .. run.slurp(log))
    sys.sleep(0.02)
  end
  local s = { url = info.url, port = info.port, pid = pid }
  function s.stop()
    sys.kill(pid, 15)
    local limit = sys.now() + 5
    while sys.kill(pid, 0) and sys.now() < limit do sys.sleep(0.02) end
    for _, path in ipairs { base, file, ready, log } do os.remove(path) end
  end
  return s
end

if arg and arg[0] and arg[0]:match("canned%.lua$") and arg[2] then
  local server = require "ghl.server"
  local cjson = require "cjson"
  local f = assert(io.open(arg[1]))
  local routes = cjson.decode(f:read("a"))
  f:close()
  local srv = assert(server.listen {
    port = 0,
    handler = function(req)
      local r = routes[req.path]
      if not r then return { status = 404, headers = { ["Content-Type"] = "text/plain" }, body = "no route\n" } end
      local body = r.body or (r.body_hex or ""):gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end)
      return { status = r.status or 200, headers = r.headers or {}, body = body }
    end,
  })
  local out = assert(io.open(arg[2] .. ".tmp", "w"))
  out:write(cjson.encode { url = srv.url, port = srv.port })
  out:close()
  assert(os.rename(arg[2] .. ".tmp", arg[2]))
  srv:run()
  srv:close()
end

return M
