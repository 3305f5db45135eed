-- ghl.server: the loopback HTTP server behind the simulator, the login
-- callback and the webhook receiver. The server runs in a child process
-- (support/serve.lua); this process is the client.
local server = require "ghl.server"
local http = require "ghl.http"
local sys = require "ghl.sys"
local cjson = require "cjson"
local run = require "support.run"

local function start(hosts)
  local base = os.tmpname()
  local ready, log = base .. ".ready", base .. ".log"
  local cmd = string.format("%s %s/tests/lua/support/serve.lua %s %s >%s 2>&1 & echo $!",
    run.quote(os.getenv("GHLUA")), os.getenv("GHLUA_SRC") or ".", run.quote(ready),
    table.concat(hosts or {}, " "), run.quote(log))
  local pid = tonumber(io.popen(cmd):read("a"):match("%d+"))
  local deadline = sys.now() + 10
  while not io.open(ready) do
    assert(sys.now() < deadline, "server fixture did not start: " .. run.slurp(log))
    sys.sleep(0.02)
  end
  local info = cjson.decode(run.slurp(ready))
  info.pid, info.log, info.port = pid, log, math.tointeger(info.port)
  info.cleanup = function()
    pcall(sys.kill, pid, 15)
    os.remove(base); os.remove(ready); os.remove(log)
  end
  return info
end

describe("ghl.server", function()
  local s
  setup(function() s = start() end)
  teardown(function() s.cleanup() end)

  it("listens on 127.0.0.1 on the port it reports", function()
    assert.matches("^http://127%.0%.0%.1:%d+$", s.url)
    assert.are.equal(s.url, "http://127.0.0.1:" .. s.port)
  end)

  it("hands the handler method, path, query, lower-case headers and the raw body", function()
    local resp = assert(http.request { method = "POST", url = s.url .. "/a/b%20c",
      query = { x = "1 2", y = "ü" }, headers = { ["X-Custom-Thing"] = "V" },
      body = "bin\0ary", })
    assert.are.equal(200, resp.status)
    local got = resp:json()
    assert.are.same({ "POST", "/a/b c", { x = "1 2", y = "ü" }, "V", "bin\0ary", "127.0.0.1" },
      { got.method, got.path, got.query, got.headers["x-custom-thing"], got.body, got.remote })
  end)

  it("answers 500 with a JSON body when the handler fails, and keeps serving", function()
    local resp = assert(http.request { url = s.url .. "/boom" })
    assert.are.equal(500, resp.status)
    assert.are.same({ statusCode = 500, message = "Internal Server Error" }, resp:json())
    assert.matches("ghlua: server handler: .*handler exploded", run.slurp(s.log))
    assert.are.equal(200, assert(http.request { url = s.url .. "/echo" }).status)
  end)

  it("refuses a body over max_body with 413 without calling the handler", function()
    local resp = assert(http.request { method = "POST", url = s.url .. "/echo", body = string.rep("x", 2 * 1024 * 1024) })
    assert.are.equal(413, resp.status)
  end)

  it("serves many concurrent keep-alive clients", function()
    local ts = {}
    for i = 1, 50 do ts[i] = http.start { url = s.url .. "/echo", query = { i = i } } end
    local n = 0
    while n < 50 do n = n + #assert(http.perform(1)) end
    for i = 1, 50 do
      assert.are.equal(tostring(i), assert(ts[i]:response()):json().query.i)
    end
  end)

  it("stops from inside the handler, and the process exits cleanly", function()
    local resp = assert(http.request { url = s.url .. "/stop" })
    assert.are.equal(200, resp.status)
    local deadline = sys.now() + 5
    while sys.kill(s.pid, 0) and sys.now() < deadline do sys.sleep(0.02) end
    assert.is_nil(sys.kill(s.pid, 0))
  end)
end)

describe("ghl.server.listen", function()
  it("reports a port that is taken as a bind error", function()
    local a = assert(server.listen { port = 0, handler = function() end })
    local b, err = server.listen { port = a.port, handler = function() end }
    assert.is_nil(b)
    assert.are.equal("bind", err.kind)
    assert.matches("127%.0%.0%.1:" .. a.port, err.message)
    a:close()
  end)

  it("raises on programmer mistakes", function()
    assert.has_error(function() server.listen {} end)
    assert.has_error(function() server.listen { handler = print, host = "example.com" } end)
    assert.has_error(function() server.listen { handler = print, port = 70000 } end)
  end)

  it("steps without blocking and closes idempotently", function()
    local served = 0
    local a = assert(server.listen { handler = function() served = served + 1; return { status = 200, body = "ok" } end })
    -- nothing to do: one round, nothing served
    assert.is_true(a:step(0))
    assert.are.equal(0, served)
    -- one thread drives a client and the server by turns: step(0) never
    -- waits for the client it shares the thread with
    local t = assert(http.start { url = a.url .. "/" })
    local rounds = 0
    while not t:done() do
      assert(http.perform(0))
      assert.is_true(a:step(0))
      rounds = rounds + 1
      assert(rounds < 100000, "no answer after " .. rounds .. " rounds")
    end
    local r = assert(t:response())
    assert.are.same({ 200, "ok", 1 }, { r.status, r.body, served })
    a:close()
    a:close()
    assert.has_error(function() a:run() end)
  end)

  it("listens on both 127.0.0.1 and ::1 for localhost", function()
    local s = start { "localhost" }
    finally(s.cleanup)
    assert.matches("^http://localhost:%d+$", s.url)
    assert.are.equal(200, assert(http.request { url = "http://127.0.0.1:" .. s.port .. "/echo" }).status)
    local v6 = http.request { url = "http://[::1]:" .. s.port .. "/echo" }
    if v6 then assert.are.equal("::1", v6:json().remote) end
  end)
end)
