-- Notices on a terminal: a wait of more than a second for the rate limit,
-- and a request sent again, print one line on standard error ("ghlua:
-- waiting 2.0 s for the rate limit of location X (1 per 2 s)", "ghlua:
-- retrying GET /contacts/ in 0.4 s (try 2 of 4): ..."), in a real
-- pseudo-terminal (tmux). Not when standard error is not a terminal, not
-- under GHLUA_QUIET=1 or `ghlua --quiet`; and 300 coroutines of
-- ghl.parallel waiting at once print a few lines, not hundreds.
local sim = require "support.sim"
local run = require "support.run"
local tmux = require "support.tmux"

local function count(lines, pattern)
  local n = 0
  for _, l in ipairs(lines) do
    if l:find(pattern) then n = n + 1 end
  end
  return n
end

local function closed_port()
  local server = require "ghl.server"
  local s = assert(server.listen { host = "127.0.0.1", port = 0, handler = function() end })
  local port = s.port
  s:close()
  return port
end

describe("notices", function()
  local s, env, work

  setup(function()
    s = sim.start { "--contacts", "5", "--rate-max", "1", "--rate-interval-ms", "2000" }
    work = os.tmpname()
    os.remove(work)
    assert(os.execute("mkdir -p " .. run.quote(work)))
    env = { GHL_TOKEN = s.token, GHL_LOCATION_ID = s.location, GHLUA_API_BASE = s.url, GHLUA_HOME = work .. "/home",
            no_proxy = sim.NO_PROXY, NO_PROXY = sim.NO_PROXY }
  end)
  teardown(function()
    if s then s.stop() end
    if work then os.execute("rm -rf " .. run.quote(work)) end
  end)

  -- Run a shell command line in a terminal; returns the screen's lines and
  -- the exit status.
  local function on_terminal(line, extra)
    local e = {}
    for k, v in pairs(env) do e[k] = v end
    for k, v in pairs(extra or {}) do e[k] = v end
    local t = tmux.start({ "sh", "-c", line }, { env = e, unset = { "GHLUA_QUIET" }, cwd = work })
    local code = t.exit_code(60)
    local lines = t.lines()
    t.stop()
    return lines, code
  end

  local GHLUA = run.quote(os.getenv("GHLUA"))
  -- three pages at one request per 2 s: two waits of about 2 s
  local PAGES = GHLUA .. " api GET /contacts/ -q limit=2 --paginate --ndjson --jq .id"

  it("show a rate-limit wait on a terminal", function()
    local lines, code = on_terminal(PAGES)
    assert.are.equal(0, code, table.concat(lines, "\n"))
    local want = "^ghlua: waiting [12]%.%d s for the rate limit of location " .. s.location .. " %(1 per 2 s%)$"
    assert.are.equal(2, count(lines, want), table.concat(lines, "\n"))
    assert.are.equal(5, count(lines, '^"%w+"$'), table.concat(lines, "\n"))   -- every id, one per line
  end)

  it("are not printed when standard error is not a terminal", function()
    local lines, code = on_terminal(PAGES .. " 2>stderr.txt")
    assert.are.equal(0, code, table.concat(lines, "\n"))
    assert.are.equal(5, count(lines, '^"%w+"$'), table.concat(lines, "\n"))
    assert.are.equal(0, count(lines, "waiting"), table.concat(lines, "\n"))
    assert.are.equal("", run.slurp(work .. "/stderr.txt"))
  end)

  it("are not printed under GHLUA_QUIET=1 or ghlua --quiet", function()
    for _, case in ipairs { { PAGES, { GHLUA_QUIET = "1" } }, { PAGES:gsub(" api ", " --quiet api ", 1), nil } } do
      local lines, code = on_terminal(case[1], case[2])
      assert.are.equal(0, code, table.concat(lines, "\n"))
      assert.are.equal(5, count(lines, '^"%w+"$'), table.concat(lines, "\n"))
      assert.are.equal(0, count(lines, "^ghlua: "), table.concat(lines, "\n"))
    end
  end)

  it("say each retry of a request, and the error counts the tries", function()
    local base = "http://127.0.0.1:" .. closed_port()
    local lines, code = on_terminal(GHLUA .. " api GET /contacts/", { GHLUA_API_BASE = base })
    assert.are.equal(1, code, table.concat(lines, "\n"))
    local text = table.concat(lines, "\n")
    for try = 2, 4 do
      assert.are.equal(1, count(lines, ("^ghlua: retrying GET /contacts/ in %%d%%.%%d s %%(try %d of 4%%): cannot reach "
        .. "http://127%%.0%%.0%%.1:%%d+ %%(connection refused%%)$"):format(try)), text)
    end
    assert.are.equal(1, count(lines, "^ghlua: GET /contacts/: cannot reach .* after 4 tries over "), text)
  end)

  it("do not flood from coroutines of ghl.parallel retrying together", function()
    local base = "http://127.0.0.1:" .. closed_port()
    local f = assert(io.open(work .. "/many.lua", "w"))
    f:write(([[
      local ghl = require "ghl"
      local c = ghl.client { token = "t", base = %q, location = "loc1" }
      local fns = {}
      for i = 1, 25 do fns[i] = function() return c:get("/contacts/", { i = i }) end end
      local failed = 0
      for _, v in ipairs(ghl.parallel(fns, { concurrency = 25, progress = false })) do
        if ghl.error.is(v) then failed = failed + 1 end
      end
      print("failed " .. failed)
    ]]):format(base))
    f:close()
    local lines, code = on_terminal(GHLUA .. " many.lua")
    local text = table.concat(lines, "\n")
    assert.are.equal(0, code, text)
    assert.are.equal(1, count(lines, "^failed 25$"), text)
    -- 75 retries (100 sends: the bucket's first window) in three rounds: a
    -- line or two a round, not one a retry
    local n = count(lines, "^ghlua: retrying GET /contacts/")
    assert.is_true(n >= 1 and n <= 8, n .. " retry lines:\n" .. text)
  end)

  it("do not flood from 300 coroutines waiting for one bucket", function()
    local s2 = sim.start { "--rate-max", "100", "--rate-interval-ms", "1500" }
    finally(s2.stop)
    local f = assert(io.open(work .. "/bucket.lua", "w"))
    f:write(([[
      local ghl = require "ghl"
      local c = ghl.client { token = %q, base = %q, location = %q }
      local fns = {}
      for i = 1, 300 do fns[i] = function() return c:get("/contacts/", { limit = 1 }) end end
      local ok = 0
      for _, v in ipairs(ghl.parallel(fns, { concurrency = 300, progress = false })) do
        if not ghl.error.is(v) then ok = ok + 1 end
      end
      print("ok " .. ok)
    ]]):format(s2.token, s2.url, s2.location))
    f:close()
    local lines, code = on_terminal(GHLUA .. " bucket.lua")
    local text = table.concat(lines, "\n")
    assert.are.equal(0, code, text)
    assert.are.equal(1, count(lines, "^ok 300$"), text)
    -- 200 requests waited, in two windows: a line a window
    local n = count(lines, "^ghlua: waiting [%d.]+ s for the rate limit of location " .. s2.location)
    assert.is_true(n >= 1 and n <= 3, n .. " wait lines:\n" .. text)
  end)
end)
