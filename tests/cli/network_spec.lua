-- Network errors as `ghlua api` prints them: the request named once, the
-- server by its base URL once, what happened in plain words, how many tries
-- were made when the request was sent again, and a hint that says what to
-- check: GHLUA_API_BASE or the simulator for a port where nothing listens,
-- GHLUA_CA_BUNDLE for a certificate that does not verify (never turning
-- verification off), the request timeout and the setting that raises it.
local sim = require "support.sim"
local run = require "support.run"

local function plain(s)
  return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

local function count(text, s)
  local n, at = 0, 1
  while true do
    local i = text:find(s, at, true)
    if not i then return n end
    n, at = n + 1, i + #s
  end
end

-- A port on 127.0.0.1 where nothing listens: one the kernel gave, closed again.
local function closed_port()
  local server = require "ghl.server"
  local s = assert(server.listen { host = "127.0.0.1", port = 0, handler = function() end })
  local port = s.port
  s:close()
  return port
end

local function ghlua(args, env)
  local e = { no_proxy = sim.NO_PROXY, NO_PROXY = sim.NO_PROXY, GHLUA_HOME = os.tmpname() }
  os.remove(e.GHLUA_HOME)
  for k, v in pairs(env or {}) do e[k] = v end
  local r = run.ghlua(args, { env = e })
  os.execute("rm -rf " .. run.quote(e.GHLUA_HOME))
  return r
end

describe("a network error under the command line", function()
  local base
  setup(function() base = "http://127.0.0.1:" .. closed_port() end)

  for _, method in ipairs { "GET", "POST" } do
    it(("names the %s and the base URL once, counts the tries and points at GHLUA_API_BASE and the simulator")
        :format(method), function()
      local args = { "api", method, "/contacts/" }
      if method == "POST" then args[#args + 1] = "-f"; args[#args + 1] = "firstName=Ada" end
      local r = ghlua(args, { GHL_TOKEN = "pit-network-0001", GHL_LOCATION_ID = "loc1", GHLUA_API_BASE = base })
      assert.are.equal(1, r.code, r.err)
      -- nothing was sent, so even the POST was tried again (the retry rule)
      assert.matches(("^ghlua: %s /contacts/: cannot reach %s %%(connection refused%%) after 4 tries over [%%d.]+ s"
        .. " \u{2014} hint: "):format(method, plain(base)), r.err)
      assert.are.equal(1, count(r.err, base), r.err)
      assert.are.equal(1, count(r.err, method .. " /contacts/"), r.err)
      assert.matches("start the simulator %('ghlua sim'%) and point GHLUA_API_BASE at the URL it prints", r.err)
      assert.matches("^[^\n]+\n$", r.err)
    end)
  end

  it("says which timeout ran out and how to give more time", function()
    local s = sim.start { "--faults" }
    finally(s.stop)
    -- the dispatcher's surface, from a script (ghlua api's --timeout is its flag)
    local r = ghlua({ "-l", "ghl", "-e", ([[
      local c = ghl.client { token = "t", base = %q, timeout = 0.3 }
      local _, lua_err = pcall(c.get, c, "/__fault/slow", { ms = 3000 })
      ghl.error.set_surface("cli")
      local _, cli_err = pcall(c.post, c, "/__fault/slow?ms=3000", { a = 1 })
      local _, cli_get = pcall(c.get, c, "/__fault/slow", { ms = 3000 })
      print(lua_err) print(cli_err) print(cli_get)]]):format(s.url) })
    assert.are.equal(0, r.code, r.err)
    local lua_err, cli_post, cli_get = r.out:match("^([^\n]*)\n([^\n]*)\n([^\n]*)\n$")
    local within = "no complete answer from " .. plain(s.url) .. " within 0%.3 s %(the request timeout%)"
    assert.matches("^GET /__fault/slow: " .. within .. " after 4 tries over [%d.]+ s", lua_err)
    assert.matches("allow more with timeout = SECONDS %(ghl%.client{timeout = %.%.%.} or the request's opts%.timeout%)$",
      lua_err)
    assert.matches("^GET /__fault/slow: " .. within .. " after 4 tries .*allow more with %-%-timeout SECONDS %('ghlua api'%)$",
      cli_get)
    -- a write that timed out is not sent again: it may have been applied
    assert.matches("^POST /__fault/slow%?ms=3000: the request may have been applied: " .. within .. " \u{2014} hint: ",
      cli_post)
    assert.is_nil(cli_post:find("tries", 1, true))
  end)
end)

describe("a certificate that does not verify", function()
  local dir, s
  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local r = run.sh(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 " ..
      "-addext subjectAltName=IP:127.0.0.1 -keyout %s/key.pem -out %s/cert.pem"):format(dir, dir))
    assert.are.equal(0, r.code, r.err)
    s = sim.start { "--tls", "--cert", dir .. "/cert.pem", "--key", dir .. "/key.pem", "--contacts", "1" }
  end)
  teardown(function()
    if s then s.stop() end
    os.execute("rm -rf " .. dir)
  end)

  it("is named with the server, and the hint names GHLUA_CA_BUNDLE, never turning verification off", function()
    local env = { GHL_TOKEN = s.token, GHL_LOCATION_ID = s.location, GHLUA_API_BASE = s.url }
    local r = ghlua({ "api", "POST", "/contacts/", "-f", "firstName=Ada", "-f", "locationId=" .. s.location }, env)
    assert.are.equal(1, r.code, r.err)
    assert.matches(("^ghlua: POST /contacts/: the TLS certificate of %s does not verify %%([^)]*self.signed[^)]*%%)"
      .. " \u{2014} hint: "):format(plain(s.url)), r.err)
    assert.matches("add that CA with GHLUA_CA_BUNDLE=FILE%.pem %(for 'ghlua sim %-%-tls', its %-%-cert file%)", r.err)
    assert.are.equal(1, count(r.err, s.url), r.err)
    for _, off in ipairs { "insecure", "-k ", "verify=", "no-verify", "VERIFYPEER", "disable", "turn off" } do
      assert.is_nil(r.err:lower():find(off:lower(), 1, true), off)
    end
    -- a POST is not sent again after a TLS failure; and followed, the hint works
    env.GHLUA_CA_BUNDLE = dir .. "/cert.pem"
    r = ghlua({ "api", "GET", "/contacts/", "-q", "limit=1" }, env)
    assert.are.equal(0, r.code, r.err)
  end)
end)
