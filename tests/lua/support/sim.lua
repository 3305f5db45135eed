-- support.sim: run `ghlua sim` in the background for a spec.
--   local s = sim.start { "--contacts", "250", ... }
-- launches "$GHLUA sim --port 0 --ready-file TMP --quiet ..." with no_proxy
-- set for loopback, waits (polling, 10 s at most) for the ready file, and
-- returns {url, token, location, pid, ready (the decoded file), ready_file
-- (its path), log (path of the process's stdout+stderr), apps (ready.apps),
-- app (the first app: client_id, client_secret, redirect_uris, ...),
-- company (the company id), headers(token?, version?) -> request headers,
-- stats() -> decoded /__sim/stats, oauth(settings) -> PUT /__sim/oauth
-- (token_delay_ms, token_delay_phase, token_ttl, code_ttl, auto_approve,
-- deny) and the decoded answer, output() -> what the process printed so
-- far, stop() -> true once the process has exited cleanly}. Raises with
-- the process's output when it dies or never gets ready; raises at once
-- when GHLUA is unset. sim.start(argv, {env = {NAME = value}}) adds to the
-- process's environment; without a GHLUA_HOME there, the simulator gets a
-- private one of its own (s.home, removed by stop()), so the webhook
-- development key it makes never lands in the real home.
local cjson = require "cjson.safe"
local sys = require "ghl.sys"

local M = {}

M.TIMEOUT = 10
M.NO_PROXY = "127.0.0.1,localhost,::1"

local function q(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function alive(pid)
  return pid ~= nil and sys.kill(pid, 0) == true
end

-- Write lines to a new temporary file (e.g. a --tokens file); returns its path.
function M.tmpfile(lines)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  return path
end

function M.start(argv, opts)
  local bin = os.getenv("GHLUA")
  if not bin or bin == "" then
    error("support.sim: set GHLUA to the ghlua binary under test", 2)
  end
  local env = {}
  for k, v in pairs(opts and opts.env or {}) do env[k] = v end
  local base = os.tmpname()
  local ready, log, pidfile = base .. ".ready.json", base .. ".log", base .. ".pid"
  local home
  if env.GHLUA_HOME == nil then
    home = base .. ".home"
    assert(sys.mkdir(home, tonumber("700", 8)))
    env.GHLUA_HOME = home
  end
  local parts = { "env", "no_proxy=" .. M.NO_PROXY, "NO_PROXY=" .. M.NO_PROXY }
  for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. q(v) end
  for _, a in ipairs { q(bin), "sim", "--port", "0", "--ready-file", q(ready), "--quiet" } do
    parts[#parts + 1] = a
  end
  for _, a in ipairs(argv or {}) do parts[#parts + 1] = q(a) end
  local cmd = table.concat(parts, " ") .. " </dev/null >" .. q(log) .. " 2>&1 & echo $! >" .. q(pidfile)
  assert(os.execute(cmd), "support.sim: cannot run " .. cmd)

  local function cleanup()
    for _, p in ipairs { base, ready, ready .. ".tmp", log, pidfile } do os.remove(p) end
    if home then os.execute("rm -rf " .. q(home)) end
  end
  local function fail(why, pid)
    if alive(pid) then sys.kill(pid, 9) end
    local out = slurp(log) or ""
    cleanup()
    error(string.format("support.sim: %s\ncommand: %s\noutput:\n%s", why, cmd, out), 3)
  end

  local deadline = sys.now() + M.TIMEOUT
  local info, pid
  while true do
    local text = slurp(ready)
    info = text and cjson.decode(text)
    if type(info) == "table" and info.url then break end
    pid = pid or tonumber((slurp(pidfile) or ""):match("%d+"))
    if pid and not alive(pid) then fail("ghlua sim exited before it was ready", pid) end
    if sys.now() > deadline then fail("ghlua sim not ready after " .. M.TIMEOUT .. " s", pid) end
    sys.sleep(0.02)
  end

  local s = { url = info.url, token = info.token, location = info.locationId, home = env.GHLUA_HOME,
    pid = math.tointeger(info.pid), ready = info, ready_file = ready, log = log,
    apps = info.apps, app = info.apps and info.apps[1], company = info.companyId }

  function s.stats()
    local http = require "ghl.http"
    return assert(assert(http.request { url = s.url .. "/__sim/stats", timeout = 10 }):json())
  end

  function s.oauth(settings)
    local http = require "ghl.http"
    local resp = assert(http.request { method = "PUT", url = s.url .. "/__sim/oauth", json = settings,
      timeout = 10 })
    assert(resp.status == 200, "PUT /__sim/oauth: " .. resp.status .. " " .. resp.body)
    return resp:json()
  end

  function s.output()
    return slurp(log) or ""
  end

  -- Authorization and Version headers for the API (token defaults to s.token).
  function s.headers(token, version)
    return { Authorization = "Bearer " .. (token or s.token), Version = version or "2021-07-28" }
  end

  -- SIGTERM, then wait for the clean exit (the simulator removes its ready
  -- file on the way out). Returns true when it exited cleanly.
  local stopped
  function s.stop()
    if stopped ~= nil then return stopped end
    if alive(s.pid) then sys.kill(s.pid, 15) end
    local limit = sys.now() + 5
    while slurp(ready) and alive(s.pid) and sys.now() < limit do sys.sleep(0.02) end
    stopped = slurp(ready) == nil
    if alive(s.pid) and not stopped then sys.kill(s.pid, 9) end
    cleanup()
    return stopped
  end

  return s
end

return M
