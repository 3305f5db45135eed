-- What a ghlua process loads: the libraries only some work needs (libjq,
-- libcsv, libmicrohttpd, libedit, libpq and SQLite) are opened when first
-- used, so a script that never uses them does not map them. Checked in the
-- maps of a fresh ghlua process (/proc/self/maps, as the script sees them).
local run = require "support.run"
local fixture = require "support.fixture"

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
    local dir = fixture.tmpdir()
    finally(function() fixture.remove(dir) end)
    local seen = mapped_after(([[
      local db = assert(require("ghl.store").open(%q))
      db:close()]]):format(dir .. "/ghlua.db"))
    assert.same({ "libsqlite3" }, seen)
  end)

  -- A library that cannot be loaded (here: a file of that name that is not
  -- a library, found first through LD_LIBRARY_PATH) fails only the work
  -- that needs it, with one line naming the package, and exit 1.
  it("says which package to install when an on-demand library is missing, and nothing else fails", function()
    local dir = fixture.tmpdir()
    finally(function() fixture.remove(dir) end)
    for _, so in ipairs { "libjq.so.1", "libsqlite3.so.0", "libcsv.so.3" } do
      local f = assert(io.open(dir .. "/" .. so, "w"))
      f:write("not a library\n")
      f:close()
    end
    local env = { LD_LIBRARY_PATH = dir, GHLUA_HOME = dir .. "/home" }
    local function one_line(r, package)
      assert.are.equal(1, r.code, r.out .. r.err)
      local lines = select(2, r.err:gsub("\n", ""))
      assert.are.equal(1, lines, r.err)
      assert.truthy(r.err:find(package, 1, true), r.err)
      assert.falsy(r.err:find("traceback", 1, true), r.err)
    end
    one_line(run.ghlua({ "-e", "require 'ghl.jq'" }, { env = env }), "libjq1")
    one_line(run.ghlua({ "-e", "require 'ghl.csv'.read('x.csv')" }, { env = env }), "libcsv3")
    one_line(run.ghlua({ "auth", "status" }, { env = env }), "libsqlite3-0")
    -- what does not need them still works
    local v = run.ghlua({ "--version" }, { env = env })
    assert.are.equal(0, v.code, v.err)
    assert.truthy(v.out:find("SQLite: not loaded", 1, true), v.out)
    local ok = run.ghlua({ "-e", "local ghl = require 'ghl'; print(ghl.json.encode({a = 1}))" }, { env = env })
    assert.are.equal(0, ok.code, ok.err)
    assert.are.equal('{"a":1}\n', ok.out)
  end)

  it("still reports every library in --version", function()
    local r = run.ghlua({ "--version" })
    assert.equal(0, r.code)
    assert.truthy(r.out:find("\n  SQLite %d+%.%d+"))
    assert.truthy(r.out:find("\n  libmicrohttpd %d+%.%d+"))
  end)
end)
