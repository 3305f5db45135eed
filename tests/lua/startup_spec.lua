-- What a ghlua process loads: the libraries only some work needs (libjq,
-- libcsv, libmicrohttpd, libedit, libpq and SQLite) are opened when first
-- used, so a script that never uses them does not map them. Checked in the
-- maps of a fresh ghlua process (/proc/self/maps, as the script sees them).
local run = require "support.run"

local LIBS = { "libjq", "libcsv", "libmicrohttpd", "libedit", "libpq", "libsqlite3" }

-- Run CODE in a fresh ghlua, then print which of LIBS the process maps.
local function mapped_after(code, env)
  local script = code .. [[

    local maps = io.open("/proc/self/maps"):read("a")
    for _, lib in ipairs({ ]] .. '"' .. table.concat(LIBS, '", "') .. '"' .. [[ }) do
      if maps:find("/" .. lib .. "[%.%-]") then io.write(lib, "\n") end
    end]]
  local r = run.ghlua({ "-e", script }, { env = env })
  assert(r.code == 0, "ghlua failed: " .. r.err)
  local seen = {}
  for lib in r.out:gmatch("[^\n]+") do seen[#seen + 1] = lib end
  return seen
end

describe("start-up", function()
  it("maps none of the on-demand libraries for a script that does not use them", function()
    assert.same({}, mapped_after("local ghl = require 'ghl'"))
  end)

  it("a client given a token loads no store, jq, CSV or server library", function()
    assert.same({}, mapped_after([[
      local ghl = require "ghl"
      local c = ghl.client { token = "pit-0000", base = "http://127.0.0.1:9", location = "loc" }
      assert(c)]]))
  end)

  it("opens each library when its module is first used", function()
    assert.same({ "libjq" }, mapped_after([[
      local jq = require "ghl.jq"
      assert(jq.compile(".a"))]]))
    assert.same({ "libcsv" }, mapped_after("assert(require('ghl.csv'))"))
    assert.same({ "libmicrohttpd" }, mapped_after("assert(require('ghl.server'))"))
  end)

  it("opens SQLite with the first file store", function()
    local dir = os.tmpname()
    os.remove(dir)
    local seen = mapped_after(([[
      local db = assert(require("ghl.store").open(%q))
      db:close()]]):format(dir .. "/ghlua.db"))
    os.execute("rm -rf " .. run.quote(dir))
    assert.same({ "libsqlite3" }, seen)
  end)

  it("still reports every library in --version", function()
    local r = run.ghlua({ "--version" })
    assert.equal(0, r.code)
    assert.truthy(r.out:find("\n  SQLite %d+%.%d+"))
    assert.truthy(r.out:find("\n  libmicrohttpd %d+%.%d+"))
  end)
end)
