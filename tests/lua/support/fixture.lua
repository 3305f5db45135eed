-- support.fixture: the set-up specs share, in one place.
--   local dir = fixture.tmpdir()          -- a new 0700 directory
--   fixture.remove(dir)                   -- rm -rf it (nil is fine)
--   local f = fixture.start({ "--contacts", "5" }, { location = true })
-- starts `ghlua sim` (support.sim) with a private GHLUA_HOME and returns
--   f.sim    the support.sim handle (url, token, location, stats, ...)
--   f.home   the private GHLUA_HOME (0700; opts.home: use that path)
--   f.env    environment for the ghlua under test: GHLUA_HOME,
--            GHLUA_API_BASE, no_proxy/NO_PROXY, GHL_TOKEN (unless
--            opts.token == false), GHL_LOCATION_ID (opts.location), and
--            opts.env on top (a false value drops a variable)
--   f.ghlua(args, {env=, stdin=}) / f.lua(code, ropts)  run.ghlua with f.env
--   f.clock{advance = s} / f.clock{now = epoch}          PUT /__sim/clock
--   f.stop() stops the simulator and removes the home (unless opts.home)
-- Inside a describe block, fixture.around(argv, opts) does the same in
-- setup() and undoes it in teardown(); its fields are there from setup on:
--   local f = fixture.around { "--contacts", "5" }
--   it("...", function() f.ghlua { "api", "GET", "/contacts/" } end)
local sim = require "support.sim"
local run = require "support.run"
local sys = require "ghl.sys"

local M = {}

function M.tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(sys.mkdir(d, tonumber("700", 8)))
  return d
end

-- scratch() -> tmp, clean: tmp([text]) names a new temporary file
-- (holding text, when given) and remembers it; clean() removes every one
-- named (a file, or a directory made in its place).
function M.scratch()
  local files = {}
  local function tmp(text)
    local p = os.tmpname()
    files[#files + 1] = p
    if text then
      local f = assert(io.open(p, "w"))
      f:write(text)
      f:close()
    end
    return p
  end
  local function clean()
    for _, p in ipairs(files) do M.remove(p) end
  end
  return tmp, clean
end

function M.remove(path)
  if path then os.execute("rm -rf " .. run.quote(path)) end
end

-- PUT /__sim/clock on the simulator at url (a support.sim handle or its
-- url): {advance = seconds} or {now = epoch seconds}; returns the answer
-- {now, offset}.
function M.clock(s, body)
  local http = require "ghl.http"
  local url = type(s) == "table" and s.url or s
  local resp = assert(http.request { method = "PUT", url = url .. "/__sim/clock", json = body, timeout = 10 })
  assert(resp.status == 200, "PUT /__sim/clock: " .. resp.status .. " " .. resp.body)
  return resp:json()
end

local function fill(f, argv, opts)
  opts = opts or {}
  f.sim = sim.start(argv, opts.sim)
  f.home = opts.home or M.tmpdir()
  local env = { GHLUA_HOME = f.home, GHLUA_API_BASE = f.sim.url, no_proxy = sim.NO_PROXY, NO_PROXY = sim.NO_PROXY }
  if opts.token ~= false then env.GHL_TOKEN = f.sim.token end
  if opts.location then env.GHL_LOCATION_ID = f.sim.location end
  for k, v in pairs(opts.env or {}) do env[k] = v or nil end
  f.env = env
  function f.ghlua(args, ropts)
    ropts = ropts or {}
    local e = {}
    for k, v in pairs(f.env) do e[k] = v end
    for k, v in pairs(ropts.env or {}) do e[k] = v or nil end
    return run.ghlua(args, { env = e, stdin = ropts.stdin })
  end
  function f.lua(code, ropts)
    return f.ghlua({ "-e", code }, ropts)
  end
  function f.clock(body)
    return M.clock(f.sim, body)
  end
  function f.stop()
    local ok = f.sim.stop()
    if not opts.home then M.remove(f.home) end
    return ok
  end
  return f
end

function M.start(argv, opts)
  return fill({}, argv, opts)
end

-- For a describe block: start in setup(), stop in teardown().
function M.around(argv, opts)
  local busted = require "busted"
  local f = {}
  busted.setup(function() fill(f, argv, opts) end)
  busted.teardown(function() if f.stop then f.stop() end end)
  return f
end

return M
