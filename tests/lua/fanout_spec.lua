-- ghl.each_location and `ghlua run --all-locations` at agency size: 300
-- locations under one agency (Company) login, each minting its location
-- token in the Company's rate-limit bucket. The simulator's limit is made
-- to bind within the test (100 requests per second instead of per 10 s):
-- 300 mints and 3 installedLocations pages take four windows, and the
-- simulator must never have answered a 429 (its counter and its request
-- log). Then: a rerun reuses every stored token (no mint); a run stopped
-- half-way (SIGTERM, once the checkpoint holds 40 locations) goes on from
-- its checkpoint and mints nothing twice; tokens past their expiry are
-- refreshed, not minted again. The output is checked too: one header per
-- location with that location's own output under it, and the summary.
local agency = require "support.agency"
local run = require "support.run"
local sys = require "ghl.sys"
local cjson = require "cjson"

local SRC = os.getenv("GHLUA_SRC") or "."
local EX = SRC .. "/examples/"
local RATE = { "--rate-max", "100", "--rate-interval-ms", "1000" }

local function no_429(a)
  local st = a.stats()
  assert.are.equal(0, st.rateLimited, "the simulator answered 429s")
  assert.is_nil(st.status["429"])
  for _, e in ipairs(a.requests {}) do assert.are_not.equal(429, e.status) end
end

local function mints(a)
  return a.stats().oauth.location_tokens or 0
end

-- The headers and blocks of an --all-locations output: {n, total, name,
-- id, status, lines = {...}} in the order printed, up to the summary.
local function blocks(text)
  local list, cur = {}, nil
  for line in text:gmatch("[^\n]*") do
    local n, total, name, id, status = line:match("^== %[(%d+)/(%d+)%] (.-) %(([%w]+)%): (.*)$")
    if line:match("^%d+ locations? in ") or line:match("^failed %(") then break end
    if n then
      cur = { n = tonumber(n), total = tonumber(total), name = name, id = id, status = status, lines = {} }
      list[#list + 1] = cur
    elseif cur and line ~= "" then
      cur.lines[#cur.lines + 1] = line
    end
  end
  return list
end

local function lines_of(text)
  local t = {}
  for l in text:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

describe("fan-out over 300 locations", function()
  local a
  setup(function()
    a = agency.start(299, "opportunities.readonly locations.readonly", RATE)
    assert.are.equal(300, #a.locations)
  end)
  teardown(function() a.stop() end)

  it("runs a recipe for each through ghlua run --all-locations: no failure, no 429, one block per location", function()
    local r = a.ghlua { "run", EX .. "pipeline_report.lua", "--all-locations" }
    assert.are.equal(0, r.code, r.err)
    -- every location minted once, and the Company bucket held every mint
    -- and every installedLocations page to the limit
    assert.are.equal(300, mints(a))
    assert.are.equal(3, a.stats().oauth.installed_locations)
    no_429(a)
    -- one header per location, numbered in the order they finished, each
    -- with that location's own output under it (not interleaved)
    local bs = blocks(r.out)
    assert.are.equal(300, #bs)
    local ids, names = {}, {}
    for _, l in ipairs(a.locations) do ids[l.id], names[l.id] = true, l.name end
    for i, b in ipairs(bs) do
      assert.are.equal(i, b.n)
      assert.are.equal(300, b.total)
      assert.is_true(ids[b.id], "an unknown or repeated location " .. b.id)
      ids[b.id] = nil
      assert.are.equal(names[b.id], b.name)
      assert.matches("^ok, 2 requests, [%d.]+s$", b.status)
      -- pipeline_report prints its pipelines, then one total line
      assert.matches("^total: 0 opportunities", b.lines[#b.lines])
      local totals = 0
      for _, l in ipairs(b.lines) do if l:match("^total:") then totals = totals + 1 end end
      assert.are.equal(1, totals, "the block of " .. b.id .. " holds another location's output")
    end
    assert.is_nil(next(ids))
    local out = lines_of(r.out)
    assert.matches("^300 locations in [%d.]+s: 300 ok, 0 failed, 0 skipped$", out[#out])
    assert.are.equal("", r.err)
  end)

  it("reuses the stored tokens on a rerun, through the Lua API and the command line", function()
    local before = mints(a)
    local r = a.lua [[
      local ghl = require "ghl"
      local rep = ghl.each_location(function(c, loc)
        return ghl.locations.get(c).id == loc.id
      end, { progress = false })
      local right = 0
      for _, e in ipairs(rep.locations) do if e.result == true then right = right + 1 end end
      print(rep.total, rep.ok, rep.failed, rep.skipped, right)
    ]]
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("300\t300\t0\t0\t300\n", r.out)
    assert.are.equal(before, mints(a))
    r = a.ghlua { "run", EX .. "pipeline_report.lua", "--all-locations", "--json" }
    assert.are.equal(0, r.code, r.err)
    local rep = cjson.decode(r.out)
    assert.are.same({ 300, 300, 0, 0 }, { rep.total, rep.ok, rep.failed, rep.skipped })
    for _, e in ipairs(rep.locations) do
      assert.is_true(e.ok)
      assert.is_number(e.seconds)
      assert.are.equal(2, e.counts.requests)
    end
    -- with --json the recipe's output and the summary go to stderr
    assert.are.equal(300, #blocks(r.err))
    assert.matches("300 locations in [%d.]+s: 300 ok, 0 failed, 0 skipped\n$", r.err)
    assert.are.equal(before, mints(a))
    no_429(a)
  end)
end)

describe("a fan-out stopped half-way", function()
  local b, dir
  setup(function()
    b = agency.start(299, "opportunities.readonly", RATE)
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. run.quote(dir)))
  end)
  teardown(function()
    b.stop()
    os.execute("rm -rf " .. run.quote(dir))
  end)

  local function recorded(cp)
    local n = 0
    for line in run.slurp(cp):gmatch("[^\n]+") do
      local rec = cjson.decode(line)
      if rec.id then n = n + 1 end
    end
    return n
  end

  it("goes on from its checkpoint and mints nothing twice", function()
    local N = 40
    local cp = dir .. "/fanout.checkpoint"
    -- one location at a time; the 41st location's first call gets no answer
    b.chaos { { method = "GET", path = "/opportunities/pipelines", times = N, delay_ms = 0 },
              { method = "GET", path = "/opportunities/pipelines", times = 1, delay_ms = 60000 } }
    local env = {}
    for k, v in pairs(b.env) do env[#env + 1] = k .. "=" .. run.quote(v) end
    local out, err, pidfile, rcfile = dir .. "/out", dir .. "/err", dir .. "/pid", dir .. "/rc"
    local cmd = ("env %s %s run %s --all-locations --checkpoint %s --concurrency 1"):format(table.concat(env, " "),
      run.quote(os.getenv("GHLUA")), run.quote(EX .. "pipeline_report.lua"), run.quote(cp))
    assert(os.execute(("sh -c %s </dev/null >/dev/null 2>&1 &"):format(run.quote(
      ("%s >%s 2>%s & echo $! >%s; wait $!; echo $? >%s"):format(cmd, run.quote(out), run.quote(err),
        run.quote(pidfile), run.quote(rcfile))))))
    local deadline = sys.now() + 60
    local pid
    while true do
      pid = pid or tonumber(run.slurp(pidfile):match("%d+"))
      local held = #b.requests { method = "GET", path = "/opportunities/pipelines" } == N + 1
      if pid and held and recorded(cp) >= N then break end
      assert(sys.now() < deadline, "the first run did not get to location " .. (N + 1))
      sys.sleep(0.05)
    end
    assert.are.equal(N, recorded(cp))
    assert.are.equal(N + 1, mints(b))
    assert(sys.kill(pid, 15))
    while run.slurp(rcfile) == "" do
      assert(sys.now() < deadline, "the first run did not stop on SIGTERM")
      sys.sleep(0.02)
    end
    assert.are.equal("1", run.slurp(rcfile):match("%d+"))
    assert.are.equal(N, #blocks(run.slurp(out)))
    local e1 = run.slurp(err)
    assert.matches("interrupted after " .. N .. " of the 300 locations left to do", e1)
    assert.matches("run the same command again %(with %-%-checkpoint .-%) to go on where it stopped", e1)
    -- the second run skips the 40, reuses the 41st's token, mints the rest
    local r = b.ghlua { "run", EX .. "pipeline_report.lua", "--all-locations", "--checkpoint", cp }
    assert.are.equal(0, r.code, r.err)
    local o = lines_of(r.out)
    assert.are.equal(("== %d of 300 locations were done in an earlier run (checkpoint %s)"):format(N, cp), o[1])
    local bs = blocks(r.out)
    assert.are.equal(300 - N, #bs)
    assert.are.equal(N + 1, bs[1].n)
    assert.matches(("^300 locations in [%%d.]+s: %d ok, 0 failed, %d skipped %%(%d done in an earlier run%%)$")
      :format(300 - N, N, N), o[#o])
    assert.are.equal(300, mints(b))   -- 300 locations, 300 mints: none twice
    -- the 40 were not run again: 41 calls before the stop, 260 after
    assert.are.equal(N + 1 + 300 - N, #b.requests { method = "GET", path = "/opportunities/pipelines" })
    no_429(b)
    -- a third run has nothing left to do
    r = b.ghlua { "run", EX .. "pipeline_report.lua", "--all-locations", "--checkpoint", cp }
    assert.are.equal(0, r.code, r.err)
    assert.matches("^== 300 of 300 locations were done in an earlier run", r.out)
    assert.matches("300 locations in [%d.]+s: 0 ok, 0 failed, 300 skipped %(300 done in an earlier run%)\n$", r.out)
    assert.are.equal(0, #blocks(r.out))
    -- the checkpoint belongs to this recipe with these parameters
    r = b.ghlua { "run", EX .. "pipeline_report.lua", "--all-locations", "--checkpoint", cp, "--param", "status=won" }
    assert.are.equal(1, r.code)
    assert.matches("belongs to another run %(recipe pipeline_report status=all%)", r.err)
    assert.matches("pass another checkpoint file", r.err)
    assert.are.equal(300, mints(b))
  end)
end)

describe("a fan-out after the location tokens expired", function()
  it("refreshes them instead of minting new ones", function()
    local c = agency.start(29, "locations.readonly", { "--token-ttl", "4" })
    finally(c.stop)
    local code = [[
      local ghl = require "ghl"
      local rep = ghl.each_location(function(cl) return ghl.locations.get(cl).id end, { progress = false })
      print(rep.ok, rep.failed)
    ]]
    local r = c.lua(code)
    assert.are.same({ 0, "30\t0\n" }, { r.code, r.out }, r.err)
    assert.are.equal(30, mints(c))
    local refreshed = c.stats().oauth.refresh_ok
    -- a token is refreshed once less than a quarter of its life is left
    sys.sleep(3.2)
    r = c.lua(code)
    assert.are.same({ 0, "30\t0\n" }, { r.code, r.out }, r.err)
    assert.are.equal(30, mints(c))
    assert.is_true(c.stats().oauth.refresh_ok - refreshed >= 30)
    no_429(c)
  end)
end)

describe("a fan-out over an agency where the app is not on every location", function()
  it("skips the locations installedLocations reports as not installed, without asking for their tokens", function()
    local a = agency.start(4, "locations.readonly")
    local http = require "ghl.http"
    local gone = { a.locations[2].id, a.locations[4].id }
    for _, id in ipairs(gone) do
      local resp = assert(http.request { method = "POST", url = a.sim.url .. "/__sim/uninstall",
        json = { locationId = id } })
      assert.are.equal(200, resp.status, resp.body)
    end
    local r = a.lua([[
      local rep = require("ghl").each_location(function(c, loc) return c:get("/locations/" .. loc.id).location.id end)
      print(rep.ok, rep.failed, rep.skipped, rep.not_installed)
      for _, e in ipairs(rep.locations) do print(e.id, e.ok, e.reason) end
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("3\t0\t2\t2", r.out:match("^[^\n]*"))
    for _, id in ipairs(gone) do assert.matches(id .. "\tfalse\tnot installed\n", r.out, 1, true) end
    -- three mints, and no request for a location the app is not on
    assert.are.equal(3, a.stats().oauth.location_tokens)
    assert.are.equal(0, a.stats().oauth.not_installed or 0)
    assert.are.equal(3, #a.requests { path = "/oauth/locationToken" })
    a.stop()
  end)
end)
