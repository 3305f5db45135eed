-- support.sim: run `ghlua sim` in the background for a spec.
--   local s = sim.start { "--contacts", "250", ... }
-- launches "$GHLUA sim --port 0 --ready-file TMP --quiet ..." through
-- ghl.sim.process (no shell; a session of its own) with no_proxy set for
-- loopback, waits (polling, 10 s at most) for the ready file, and
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
-- A simulator the spec did not stop is stopped when the spec file ends
-- (busted's file end; ghl.sim.process stops any left when the process
-- ends), so none outlives its spec.
local http = require "ghl.http"
local process = require "ghl.sim.process"

local M = {}

M.TIMEOUT = 10
M.NO_PROXY = "127.0.0.1,localhost,::1"

-- The simulators started and not yet stopped.
local running = {}

local function stop_all()
  for s in pairs(running) do s.stop() end
  return nil, true
end

do
  local ok, busted = pcall(require, "busted")
  if ok and type(busted) == "table" then
    pcall(function() busted.subscribe({ "file", "end" }, stop_all) end)
  end
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
  local env = { no_proxy = M.NO_PROXY, NO_PROXY = M.NO_PROXY }
  for k, v in pairs(opts and opts.env or {}) do env[k] = v end
  local p, err = process.start { exe = bin, args = argv, env = env, home = env.GHLUA_HOME == nil or nil,
    ready_timeout = M.TIMEOUT, stop_timeout = 5 }
  if not p then
    error(string.format("support.sim: %s\ncommand: %s\noutput:\n%s", err.message,
      process.command_line(err.argv or {}), err.output or ""), 2)
  end
  local info = p.info

  local s = { url = info.url, token = info.token, location = info.locationId, home = p.home or env.GHLUA_HOME,
    pid = p.pid, ready = info, ready_file = p.ready_file, log = p.log,
    apps = info.apps, app = info.apps and info.apps[1], company = info.companyId }

  function s.stats()
    return assert(assert(http.request { url = s.url .. "/__sim/stats", timeout = 10 }):json())
  end

  function s.oauth(settings)
    local resp = assert(http.request { method = "PUT", url = s.url .. "/__sim/oauth", json = settings,
      timeout = 10 })
    assert(resp.status == 200, "PUT /__sim/oauth: " .. resp.status .. " " .. resp.body)
    return resp:json()
  end

  s.output = p.output

  -- Authorization and Version headers for the API (token defaults to s.token).
  function s.headers(token, version)
    return { Authorization = "Bearer " .. (token or s.token), Version = version or "2021-07-28" }
  end

  -- SIGTERM, then wait for the clean exit (the simulator removes its ready
  -- file on the way out). Returns true when it exited cleanly.
  function s.stop()
    running[s] = nil
    return p.stop()
  end

  running[s] = true
  return s
end

return M
