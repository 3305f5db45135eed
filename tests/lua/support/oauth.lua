-- support.oauth: a simulator with one OAuth app whose redirect URI is a
-- loopback address on a free port, and a private GHLUA_HOME, so a spec can
-- drive `ghlua app`/`ghlua auth` like a user:
--   local o = oauth.start { "--token-ttl", "2" }     -- extra sim flags
--   o.ghlua { "auth", "status" }                      -- {code, out, err}
--   o.lua("return require('ghl.auth').token{}")       -- run Lua with o.env
--   o.stats()  -> the simulator's /__sim/stats
--   o.clock { advance = 3600 }  -> move the simulator's clock (support.fixture)
-- The redirect URI's port is fixed by the app's settings, so `auth login`
-- must bind a port chosen beforehand, which another process could take in
-- between. Two things keep that from failing a run: ports are chosen below
-- the kernel's ephemeral range (bind(0) and outgoing connections never get
-- them), and the app registers M.CANDIDATES redirect URIs: when a login
-- finds its port taken, o.ghlua moves the app to the next one and runs the
-- command again (o.move; o.hold() keeps the port busy on purpose).
local sim = require "support.sim"
local run = require "support.run"
local http = require "ghl.http"
local server = require "ghl.server"
local sys = require "ghl.sys"

local M = {}

M.CANDIDATES = 4

-- The low end of the kernel's ephemeral port range.
local function ephemeral_low()
  local f = io.open("/proc/sys/net/ipv4/ip_local_port_range")
  local lo = f and tonumber((f:read("a") or ""):match("^%s*(%d+)"))
  if f then f:close() end
  return lo or 32768
end

-- A loopback port below the ephemeral range, free on 127.0.0.1 and ::1
-- right now, picked with the system's random bytes (parallel runs seeded
-- alike would pick alike with math.random). `avoid`: ports not to return.
function M.free_port(avoid)
  local hi = ephemeral_low() - 1
  local lo = math.max(10000, hi - 12000)
  for _ = 1, 200 do
    local b = assert(sys.random_bytes(2))
    local p = lo + ((b:byte(1) << 8) | b:byte(2)) % (hi - lo + 1)
    if not (avoid and avoid[p]) then
      local s = server.listen { host = "localhost", port = p, handler = function() end }
      if s then
        s:close()
        return p
      end
    end
  end
  error("support.oauth: no free port between " .. lo .. " and " .. hi)
end

-- Is r a login that failed because its redirect port was taken?
local function port_taken(args, r, port)
  return args[1] == "auth" and args[2] == "login" and r.code == 1
    and r.err:find(("port %d must be free"):format(port), 1, true) ~= nil
end

function M.start(extra, opts)
  opts = opts or {}
  local o = {}
  local function uri(port) return ("http://%s:%d/callback"):format(opts.host or "localhost", port) end
  o.ports, o.slot = {}, 1
  local seen = {}
  for i = 1, M.CANDIDATES do
    o.ports[i] = M.free_port(seen)
    seen[o.ports[i]] = true
  end
  o.port = o.ports[1]
  o.client_id = "6740b2b6d9e4a05c1f3a9e21-m3kq8zpx"
  o.secret = "sim-client-secret-0123456789-SECR"
  o.redirect_uri = uri(o.port)
  local argv = { "--app", o.client_id, "--app-secret", o.secret }
  for _, p in ipairs(o.ports) do
    argv[#argv + 1] = "--redirect-uri"
    argv[#argv + 1] = uri(p)
  end
  for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
  o.sim = sim.start(argv)
  o.home = os.tmpname()
  os.remove(o.home)
  o.env = {
    GHLUA_HOME = o.home, GHLUA_API_BASE = o.sim.url, GHLUA_MARKETPLACE_BASE = o.sim.url,
    GHL_CLIENT_SECRET = o.secret, no_proxy = sim.NO_PROXY, NO_PROXY = sim.NO_PROXY,
  }
  -- Run ghlua with o.env (and ropts.env, ropts.stdin); a login whose port
  -- was taken meanwhile moves to the next candidate port and runs again,
  -- with o.redirect_uri replaced in args and env.
  function o.ghlua(args, ropts)
    ropts = ropts or {}
    while true do
      local env = {}
      for k, v in pairs(o.env) do env[k] = v end
      for k, v in pairs(ropts.env or {}) do env[k] = v end
      local r = run.ghlua(args, { env = env, stdin = ropts.stdin })
      if o.holding or not port_taken(args, r, o.port) or o.slot == #o.ports then return r end
      local old = o.redirect_uri
      o.move()
      local function swap(v) return v == old and o.redirect_uri or v end
      local a2, e2 = {}, {}
      for i, v in ipairs(args) do a2[i] = swap(v) end
      for k, v in pairs(ropts.env or {}) do e2[k] = swap(v) end
      args, ropts = a2, { env = e2, stdin = ropts.stdin }
    end
  end
  -- Move the app to the next registered redirect URI (the port was taken).
  function o.move()
    assert(o.slot < #o.ports, "support.oauth: every candidate port was taken")
    o.slot = o.slot + 1
    o.port = o.ports[o.slot]
    o.redirect_uri = uri(o.port)
    if o.app_scopes then o.add_app(o.app_scopes) end
  end
  -- A listener that keeps the redirect port busy (moving first if it was
  -- taken already); logins meanwhile are not moved. Close it with
  -- o.release(listener).
  function o.hold()
    while true do
      local busy = server.listen { host = "localhost", port = o.port, handler = function() end }
      if busy then
        o.holding = true
        return busy
      end
      o.move()
    end
  end
  function o.release(busy)
    busy:close()
    o.holding = false
  end
  function o.lua(code, ropts)
    return o.ghlua({ "-e", code }, ropts)
  end
  function o.stats()
    return assert(assert(http.request { url = o.sim.url .. "/__sim/stats" }):json())
  end
  function o.clock(body)
    return require("support.fixture").clock(o.sim, body)
  end
  -- Store the app as "app1" with the given scopes.
  function o.add_app(scopes)
    o.app_scopes = scopes or "contacts custom-fields custom-values"
    local r = o.ghlua { "app", "add", "app1", "--client-id", o.client_id, "--redirect-uri", o.redirect_uri,
                        "--scopes", o.app_scopes }
    assert(r.code == 0, r.err)
    return r
  end
  -- A login whose browser is curl following redirects.
  function o.login(args)
    local argv = { "auth", "login", "--app", "app1" }
    for _, a in ipairs(args or {}) do argv[#argv + 1] = a end
    return o.ghlua(argv, { env = { BROWSER = "curl -sfL -o /dev/null" } })
  end
  function o.stop()
    o.sim.stop()
    os.execute("rm -rf " .. run.quote(o.home))
  end
  return o
end

return M
