-- A ghl.server fixture run in its own process (the spec is the client):
--   ghlua tests/lua/support/serve.lua READY_FILE [host ...]
-- Routes: /echo returns the request as JSON; /boom raises in the handler;
-- /stop answers and stops the server, which makes the process exit 0.
local server = require "ghl.server"
local cjson = require "cjson"

local ready = assert(arg[1], "usage: serve.lua READY_FILE [host ...]")
local hosts = { table.unpack(arg, 2) }
local srv
srv = assert(server.listen {
  hosts = #hosts > 0 and hosts or nil,
  max_body = 1024 * 1024,
  handler = function(req)
    if req.path == "/boom" then error("handler exploded") end
    if req.path == "/stop" then srv:stop() end
    return { status = 200, headers = { ["Content-Type"] = "application/json" },
             body = cjson.encode { method = req.method, path = req.path, query = req.query,
                                   headers = req.headers, body = req.body, remote = req.remote } }
  end,
})
local f = assert(io.open(ready .. ".tmp", "w"))
f:write(cjson.encode { url = srv.url, port = srv.port })
f:close()
assert(os.rename(ready .. ".tmp", ready))
assert(srv:run())
srv:close()
