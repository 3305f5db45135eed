-- support.oauth: a simulator with one OAuth app whose redirect URI is a
-- loopback address on a free port, and a private GHLUA_HOME, so a spec can
-- drive `ghlua app`/`ghlua auth` like a user:
--   local o = oauth.start { "--token-ttl", "2" }     -- extra sim flags
--   o.ghlua { "auth", "status" }                      -- {code, out, err}
--   o.lua("return require('ghl.auth').token{}")       -- run Lua with o.env
--   o.stats()  -> the simulator's /__sim/stats
local sim = require "support.sim"
local run = require "support.run"
local http = require "ghl.http"
local server = require "ghl.server"

local M = {}

-- A loopback port that was free a moment ago.
function M.free_port()
  local s = assert(server.listen { port = 0, handler = function() end })
  local p = s.port
  s:close()
  return p
end

function M.start(extra, opts)
  opts = opts or {}
  local o = {}
  o.port = M.free_port()
  o.client_id = "6740b2b6d9e4a05c1f3a9e21-m3kq8zpx"
  o.secret = "sim-client-secret-0123456789-SECR"
  o.redirect_uri = ("http://%s:%d/callback"):format(opts.host or "localhost", o.port)
  local argv = { "--app", o.client_id, "--app-secret", o.secret, "--redirect-uri", o.redirect_uri }
  for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
  o.sim = sim.start(argv)
  o.home = os.tmpname()
  os.remove(o.home)
  o.env = {
    GHLUA_HOME = o.home, GHLUA_API_BASE = o.sim.url, GHLUA_MARKETPLACE_BASE = o.sim.url,
    GHL_CLIENT_SECRET = o.secret, no_proxy = sim.NO_PROXY, NO_PROXY = sim.NO_PROXY,
  }
  function o.ghlua(args, ropts)
    ropts = ropts or {}
    local env = {}
    for k, v in pairs(o.env) do env[k] = v end
    for k, v in pairs(ropts.env or {}) do env[k] = v end
    return run.ghlua(args, { env = env, stdin = ropts.stdin })
  end
  function o.lua(code, ropts)
    return o.ghlua({ "-e", code }, ropts)
  end
  function o.stats()
    return assert(assert(http.request { url = o.sim.url .. "/__sim/stats" }):json())
  end
  -- Store the app as "app1" with the given scopes.
  function o.add_app(scopes)
    local r = o.ghlua { "app", "add", "app1", "--client-id", o.client_id, "--redirect-uri", o.redirect_uri,
                        "--scopes", scopes or "contacts custom-fields custom-values" }
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
