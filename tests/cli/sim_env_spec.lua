-- `ghlua sim env`: a simulator records itself under $GHLUA_HOME/sim while
-- it runs and ends its start-up lines with the command that points another
-- shell at it; `ghlua sim env` prints that shell's lines (sh or fish), for
-- one simulator, one of several (--port), one started with --ready-file,
-- and none (a dead one's record is dropped). Secrets: the simulator's
-- generated ones in full for eval, as …abcd on a terminal, and the ones
-- the user gave it never.
local run = require "support.run"
local sys = require "ghl.sys"
local cjson = require "cjson"

local q = run.quote

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(sys.mkdir(d, 448))
  return d
end

local NO_PROXY = "127.0.0.1,localhost,::1"

-- Whether process pid has ended: gone, or a zombie its new parent (init,
-- here) has not reaped yet.
local function ended(pid)
  if not sys.alive(pid) then return true end
  local stat = slurp("/proc/" .. pid .. "/stat")
  return stat ~= nil and stat:match("^%d+ %b() (%a)") == "Z"
end

-- Start `ghlua sim --port 0 --quiet ARGS` with GHLUA_HOME=home (and env,
-- in directory cwd); wait for its last start-up line (the hint, or the
-- warning without one). Returns {pid, url, port, log, output(), stop() ->
-- true once it ended on SIGTERM, kill()}. after_each stops every one.
local started = {}

local function start(home, argv, env, cwd)
  local base = os.tmpname()
  local log, pidfile = base .. ".log", base .. ".pid"
  local parts = { cwd and ("cd " .. q(cwd) .. " && exec") or "", "env", "GHLUA_HOME=" .. q(home),
    "no_proxy=" .. NO_PROXY, "NO_PROXY=" .. NO_PROXY }
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. q(v) end
  parts[#parts + 1] = q(os.getenv("GHLUA")) .. " sim --port 0 --quiet"
  for _, a in ipairs(argv or {}) do parts[#parts + 1] = q(a) end
  assert(os.execute(table.concat(parts, " ") .. " </dev/null >" .. q(log) .. " 2>&1 & echo $! >" .. q(pidfile)))
  local s = { log = log }
  started[#started + 1] = s
  function s.output() return slurp(log) or "" end
  -- SIGTERM, wait for the exit; true when it has ended (once; later calls
  -- return the same)
  function s.stop()
    if s.stopped == nil then
      local gone = true
      if s.pid then
        sys.kill(s.pid, 15)
        local limit = sys.now() + 10
        while not ended(s.pid) and sys.now() < limit do sys.sleep(0.02) end
        gone = ended(s.pid)
        if not gone then sys.kill(s.pid, 9) end
      end
      for _, f in ipairs { base, log, pidfile } do os.remove(f) end
      s.stopped = gone
    end
    return s.stopped
  end
  -- SIGKILL, and wait until the process is reaped (a zombie still counts
  -- as running for ghl.sys.alive, as for kill(2))
  function s.kill()
    sys.kill(s.pid, 9)
    local limit = sys.now() + 10
    while sys.alive(s.pid) and sys.now() < limit do sys.sleep(0.02) end
  end
  local deadline = sys.now() + 20
  while true do
    s.pid = s.pid or math.tointeger(tonumber((slurp(pidfile) or ""):match("%d+")))
    local out = s.output()
    if out:find("in another shell", 1, true) or out:find("warning:", 1, true) then break end
    if (s.pid and ended(s.pid)) or sys.now() > deadline then
      error("ghlua sim did not start:\n" .. out)
    end
    sys.sleep(0.02)
  end
  s.url = s.output():match("listening on (%S+)")
  s.port = tonumber(s.url:match(":(%d+)$"))
  return s
end

-- `ghlua sim env ARGS` with GHLUA_HOME=home.
local function env_cmd(home, argv, extra)
  local args = { "sim", "env" }
  for _, a in ipairs(argv or {}) do args[#args + 1] = a end
  local env = { GHLUA_HOME = home }
  for k, v in pairs(extra or {}) do env[k] = v end
  return run.ghlua(args, { env = env })
end

-- What sh sees after eval "$(ghlua sim env ARGS)", starting from vars.
local function after_eval(home, argv, vars)
  local names = { "GHLUA_API_BASE", "GHLUA_MARKETPLACE_BASE", "GHL_CLIENT_ID", "GHL_CLIENT_SECRET",
    "GHL_REDIRECT_URI", "GHL_TOKEN", "GHL_LOCATION_ID", "GHLUA_CA_BUNDLE" }
  local script = { "set -e", 'eval "$(' .. q(os.getenv("GHLUA")) .. " sim env" }
  for _, a in ipairs(argv or {}) do script[2] = script[2] .. " " .. q(a) end
  script[2] = script[2] .. ')"'
  for _, n in ipairs(names) do script[#script + 1] = ("printf '%%s=%%s\\n' %s \"${%s-<unset>}\""):format(n, n) end
  local env = { GHLUA_HOME = home }
  for k, v in pairs(vars or {}) do env[k] = v end
  local r = run.sh("sh -c " .. q(table.concat(script, "\n")), { env = env })
  local seen = {}
  for k, v in r.out:gmatch("([%w_]+)=([^\n]*)") do seen[k] = v end
  return seen, r
end

local function record_files(home)
  local out = {}
  for _, n in ipairs(sys.listdir(home .. "/sim") or {}) do out[#out + 1] = n end
  table.sort(out)
  return out
end

describe("ghlua sim env", function()
  local home
  before_each(function() home = tmpdir() end)
  after_each(function()
    for _, s in ipairs(started) do s.stop() end
    started = {}
    os.execute("rm -rf " .. q(home))
  end)

  it("points another shell at the one simulator running, from its record", function()
    local s = start(home, { "--redirect-uri", "http://localhost:3999/cb" })
    assert.matches('ghlua sim: in another shell: eval "$(ghlua sim env)"\n', s.output(), 1, true)
    -- the record: the ready file's contents, 0600 in a 0700 directory
    assert.are.same({ s.pid .. ".json" }, record_files(home))
    assert.are.equal(448, sys.stat(home .. "/sim").mode)
    local file = home .. "/sim/" .. s.pid .. ".json"
    assert.are.equal(384, sys.stat(file).mode)
    local rec = cjson.decode(slurp(file))
    assert.are.equal(s.url, rec.url)
    local app = rec.apps[1]
    assert.is_true(app.secret_generated)

    local seen, r = after_eval(home, {}, { GHL_TOKEN = "pit-of-another-account", GHL_LOCATION_ID = "elsewhere" })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(s.url, seen.GHLUA_API_BASE)
    assert.are.equal(s.url, seen.GHLUA_MARKETPLACE_BASE)
    assert.are.equal(app.client_id, seen.GHL_CLIENT_ID)
    assert.are.equal(app.client_secret, seen.GHL_CLIENT_SECRET)
    assert.are.equal("http://localhost:3999/cb", seen.GHL_REDIRECT_URI)
    -- no token of another account goes to the simulator
    assert.are.equal("<unset>", seen.GHL_TOKEN)
    assert.are.equal("<unset>", seen.GHL_LOCATION_ID)
    assert.are.equal("<unset>", seen.GHLUA_CA_BUNDLE)

    -- the record goes when the simulator stops
    assert.is_true(s.stop())
    assert.are.same({}, record_files(home))
    local r2 = env_cmd(home)
    assert.are.equal(1, r2.code)
    assert.matches("^ghlua: no simulator is running %(none recorded in " .. home:gsub("%p", "%%%0") .. "/sim%)",
      r2.err)
    assert.matches("hint: start one with 'ghlua sim'", r2.err, 1, true)
  end)

  it("--token exports the generated static token, which then works with ghlua api", function()
    local s = start(home, { "--contacts", "3" })
    assert.matches("generated token …%x%x%x%x %('ghlua sim env %-%-token' exports it%)", s.output())
    local seen = after_eval(home, { "--token" })
    assert.matches("^sim_%x+$", seen.GHL_TOKEN)
    assert.are.equal("ve9EPM428h8vShlRW1KT", seen.GHL_LOCATION_ID)
    local script = 'eval "$(' .. q(os.getenv("GHLUA")) .. ' sim env --token)" && ' .. q(os.getenv("GHLUA"))
      .. " api GET /contacts/"
    local r = run.sh("sh -c " .. q(script), { env = { GHLUA_HOME = home, no_proxy = NO_PROXY } })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(3, #cjson.decode(r.out).contacts)
  end)

  it("over HTTPS, exports the certificate as GHLUA_CA_BUNDLE (an absolute path)", function()
    local r = run.sh(("cd %s && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
      .. " -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout key.pem -out cert.pem"):format(q(home)))
    assert.are.equal(0, r.code, r.err)
    local s = start(home, { "--tls", "--cert", "cert.pem", "--key", "key.pem" }, nil, home)
    assert.matches("^https://", s.url)
    local seen = after_eval(home, { "--token" })
    assert.are.equal(sys.realpath(home .. "/cert.pem"), seen.GHLUA_CA_BUNDLE)
    -- from another directory: the path holds
    local script = 'cd / && eval "$(' .. q(os.getenv("GHLUA")) .. ' sim env --token)" && ' .. q(os.getenv("GHLUA"))
      .. " api GET /contacts/"
    r = run.sh("sh -c " .. q(script), { env = { GHLUA_HOME = home, no_proxy = NO_PROXY } })
    assert.are.equal(0, r.code, r.err)
    assert.are.same({}, cjson.decode(r.out).contacts)
  end)

  it("with several simulators, the hint and the error name --port N", function()
    local a = start(home)
    local b = start(home)
    assert.matches('eval "$(ghlua sim env)"', a.output(), 1, true)
    assert.matches(('eval "$(ghlua sim env --port %d)"'):format(b.port), b.output(), 1, true)
    local r = env_cmd(home)
    assert.are.equal(2, r.code)
    assert.matches(("2 simulators are running (%s, %s); choose one with --port N"):format(a.url, b.url), r.err, 1,
      true)
    assert.are.equal(a.url, after_eval(home, { "--port", tostring(a.port) }).GHLUA_API_BASE)
    assert.are.equal(b.url, after_eval(home, { "--port", tostring(b.port) }).GHLUA_API_BASE)
    r = env_cmd(home, { "--port", "1" })
    assert.are.equal(1, r.code)
    assert.matches("no simulator is running on port 1 (running: " .. a.url .. ", " .. b.url .. ")", r.err, 1, true)
  end)

  it("drops the record of a simulator that died without removing it", function()
    local s = start(home)
    s.kill()
    assert.are.same({ s.pid .. ".json" }, record_files(home))
    local r = env_cmd(home)
    assert.are.equal(1, r.code)
    assert.matches("no simulator is running", r.err, 1, true)
    assert.are.same({}, record_files(home))
    -- and a simulator started next is the only one
    local t = start(home)
    assert.matches('eval "$(ghlua sim env)"\n', t.output(), 1, true)
  end)

  it("with --ready-file, reads that file instead of a record", function()
    local ready = home .. "/my ready.json"
    local s = start(home, { "--ready-file", ready })
    assert.matches([[eval "$(ghlua sim env --ready-file ']] .. ready .. [[')"]], s.output(), 1, true)
    assert.are.same({}, record_files(home))
    assert.are.equal(s.url, after_eval(home, { "--ready-file", ready }).GHLUA_API_BASE)
    assert.is_true(s.stop())
    local r = env_cmd(home, { "--ready-file", ready })
    assert.are.equal(1, r.code)
    assert.matches("no simulator: .*No such file", r.err)
  end)

  it("never prints a secret or token the user gave the simulator", function()
    local s = start(home, { "--app-secret", "users-own-secret-1234", "--token", "users-own-token-5678" })
    local r = env_cmd(home)
    assert.are.equal(0, r.code, r.err)
    assert.falsy(r.out:find("users-own", 1, true))
    assert.matches("# GHL_CLIENT_SECRET: the secret you gave the simulator", r.out, 1, true)
    local seen = after_eval(home, {}, { GHL_CLIENT_SECRET = "kept" })
    assert.are.equal("kept", seen.GHL_CLIENT_SECRET)
    r = env_cmd(home, { "--token" })
    assert.are.equal(1, r.code)
    assert.matches("this simulator has no generated token", r.err, 1, true)
    assert.falsy((r.out .. r.err):find("users-own", 1, true))
  end)

  it("shows secrets as …abcd on a terminal", function()
    if os.execute("command -v script >/dev/null 2>&1") ~= true then
      error("util-linux 'script' is needed for this test")
    end
    local s = start(home)
    local secret = cjson.decode(slurp(home .. "/sim/" .. s.pid .. ".json")).apps[1].client_secret
    local line = "env GHLUA_HOME=" .. q(home) .. " " .. q(os.getenv("GHLUA")) .. " sim env --token"
    local r = run.sh("script -qec " .. q(line) .. " /dev/null")
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.matches("export GHL_CLIENT_SECRET='…" .. secret:sub(-4) .. "'", r.out, 1, true)
    assert.matches("export GHL_TOKEN='…%x%x%x%x'", r.out)
    assert.falsy(r.out:find(secret, 1, true))
    assert.matches("secrets are shown as …abcd on a terminal", r.out, 1, true)
  end)

  it("speaks fish, and --unset undoes it all", function()
    local s = start(home)
    local r = env_cmd(home, { "--shell", "fish" })
    assert.are.equal(0, r.code, r.err)
    assert.matches("\nset %-gx GHLUA_API_BASE '" .. s.url:gsub("%p", "%%%0") .. "'\n", r.out)
    assert.matches("\nset %-e GHL_TOKEN\nset %-e GHL_LOCATION_ID\n$", r.out)
    r = env_cmd(home, { "--unset" })
    assert.are.equal("unset GHLUA_API_BASE GHLUA_MARKETPLACE_BASE GHL_CLIENT_ID GHL_CLIENT_SECRET"
      .. " GHL_REDIRECT_URI GHLUA_CA_BUNDLE GHL_TOKEN GHL_LOCATION_ID\n", r.out)
    local script = 'export GHL_CLIENT_ID=x GHLUA_API_BASE=y; eval "$(' .. q(os.getenv("GHLUA"))
      .. ' sim env --unset)"; echo "[${GHL_CLIENT_ID-none}${GHLUA_API_BASE-none}]"'
    assert.are.equal("[nonenone]\n", run.sh("sh -c " .. q(script)).out)
  end)

  it("refuses bad flags with exit 2", function()
    for _, case in ipairs {
      { { "--shell", "csh" }, "--shell must be sh or fish" },
      { { "--port", "1", "--ready-file", "f" }, "give --port or --ready-file, not both" },
      { { "--unset", "--port", "1" }, "--unset takes only --shell" },
      { { "--port", "70000" }, "--port must be a port number" },
      { { "extra" }, "unexpected argument 'extra'" },
      { { "--nope" }, "unknown option '--nope'; usage: ghlua sim env" },
    } do
      local r = env_cmd(home, case[1])
      assert.are.equal(2, r.code, table.concat(case[1], " "))
      assert.matches(case[2], r.err, 1, true)
    end
    local r = env_cmd(home, { "--help" })
    assert.are.equal(0, r.code)
    assert.matches('eval "$(ghlua sim env)"', r.out, 1, true)
    r = run.ghlua({ "sim", "--help" })
    assert.matches('eval "$(ghlua sim env)"', r.out, 1, true)
  end)

  it("runs without a record when it cannot write one, and says so", function()
    local file = home .. "/a-file"
    assert(io.open(file, "w")):close()
    local s = start(file)
    local out = s.output()
    assert.matches("ghlua sim: warning: 'ghlua sim env' will not find this simulator: ", out, 1, true)
    assert.matches("start it with --ready-file F", out, 1, true)
    assert.falsy(out:find("in another shell", 1, true))
    local http = require "ghl.http"
    assert.are.equal(200, assert(http.request { url = s.url .. "/__sim/stats" }).status)
    assert.is_true(s.stop())
  end)
end)
