-- Starting processes without a shell (ghl.sys.spawn, waitpid, killpg) and
-- the library's launcher of a simulator (ghl.sim.process): the argv reaches
-- the program unchanged, the environment is ours plus what was asked, a
-- setsid child leads its own session, outputs go to files; a simulator
-- started is ready, serves, and stops cleanly leaving nothing behind; one
-- that cannot start says why with its output; and none outlives the
-- program (or the spec, through support.sim) that started it.
local sys = require "ghl.sys"
local http = require "ghl.http"
local process = require "ghl.sim.process"
local run = require "support.run"

local exe = os.getenv("GHLUA")

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- pgrp and session of a running process, from /proc.
local function ids(pid)
  local stat = slurp("/proc/" .. pid .. "/stat") or ""
  local pgrp, sid = stat:match("^%d+ %b() %a %d+ (%d+) (%d+)")
  return tonumber(pgrp), tonumber(sid)
end

local function tmp()
  local p = os.tmpname()
  finally(function() os.remove(p) end)
  return p
end

describe("sys.spawn", function()
  it("passes every argument as it is, with no shell in between", function()
    local out = tmp()
    local pid = assert(sys.spawn({ "printf", "[%s]\n", "a b", "$(id)", "'q'", "*", "" }, { stdout = out }))
    assert.are.same({ "exit", 0 }, { sys.waitpid(pid) })
    assert.are.equal("[a b]\n[$(id)]\n['q']\n[*]\n[]\n", slurp(out))
  end)

  it("gives the child our environment plus env, false removing a variable", function()
    local out = tmp()
    local pid = assert(sys.spawn({ "env" }, { stdout = out, env = { GHLUA_T_ADDED = "x y=z", HOME = false } }))
    assert.are.same({ "exit", 0 }, { sys.waitpid(pid) })
    local text = "\n" .. slurp(out)
    assert.truthy(text:find("\nGHLUA_T_ADDED=x y=z\n", 1, true))
    assert.is_nil(text:find("\nHOME=", 1, true))
    assert.truthy(text:find("\nPATH=" .. os.getenv("PATH") .. "\n", 1, true))
  end)

  it("writes stdout and stderr to one file when both name it, and reads stdin from a file", function()
    local out, input = tmp(), tmp()
    local f = assert(io.open(input, "w")); f:write("from stdin\n"); f:close()
    local pid = assert(sys.spawn({ "sh", "-c", "cat; echo to-out; echo to-err >&2; exit 3" },
      { stdin = input, stdout = out, stderr = out }))
    assert.are.same({ "exit", 3 }, { sys.waitpid(pid) })
    assert.are.equal("from stdin\nto-out\nto-err\n", slurp(out))
    assert.are.equal(tonumber("600", 8), sys.stat(out).mode)
  end)

  it("with setsid starts a session and process group of the child's own, which killpg reaches", function()
    local pid = assert(sys.spawn({ "sleep", "30" }, { setsid = true }))
    local pgrp, sid = ids(pid)
    assert.are.equal(pid, pgrp)
    assert.are.equal(pid, sid)
    assert.are_not.equal(select(2, ids(sys.getpid())), sid)
    assert.is_false(sys.waitpid(pid, true))
    assert.is_true(sys.killpg(pid, 9))
    assert.are.same({ "signal", 9 }, { sys.waitpid(pid) })
    assert.is_false(sys.alive(pid))
  end)

  it("without setsid keeps the child in our process group", function()
    local pid = assert(sys.spawn({ "sleep", "30" }))
    assert.are.equal((ids(sys.getpid())), (ids(pid)))
    assert(sys.kill(pid, 9))
    assert.are.same({ "signal", 9 }, { sys.waitpid(pid) })
  end)

  it("reports a program that cannot run, and a pid that is no child, as nil, err", function()
    local pid, err, code = sys.spawn { "/nonexistent/ghlua-test" }
    assert.is_nil(pid)
    assert.are.equal("os", err.kind)
    assert.matches("/nonexistent/ghlua%-test: No such file", err.message)
    assert.are.same({ "ENOENT", "ENOENT" }, { code, err.code })
    local ok, werr, wcode = sys.waitpid(1)
    assert.is_nil(ok)
    assert.matches("waitpid 1", werr.message)
    assert.are.same({ "ECHILD", "ECHILD" }, { wcode, werr.code })
    local kok, kerr, kcode = sys.killpg(2 ^ 31 - 1)
    assert.is_nil(kok)
    assert.are.same({ "ESRCH", "ESRCH" }, { kcode, kerr.code })
  end)

  it("refuses a pid beyond the pid range instead of wrapping it to another process", function()
    for _, f in ipairs { sys.waitpid, sys.kill, sys.killpg } do
      for _, pid in ipairs { 2 ^ 32 + 1, 2 ^ 32 + 2, math.maxinteger, 0, -1 } do
        local ok, msg = pcall(f, math.tointeger(pid), 0)
        assert.is_false(ok)
        assert.matches("bad argument #1 .*must be", msg)
      end
    end
    assert.is_false(sys.alive(2 ^ 32 + 1))
    local ok, msg = pcall(sys.killpg, 1)
    assert.is_false(ok)
    assert.matches("bad argument #1 to '[%w.]*killpg' %(process group must be above 1%)", msg)
  end)

  it("raises on a malformed call", function()
    assert.has_error(function() sys.spawn {} end)
    assert.has_error(function() sys.spawn { "echo", 1 } end)
    assert.has_error(function() sys.spawn({ "echo" }, { env = { ["A=B"] = "x" } }) end)
    assert.has_error(function() sys.spawn({ "echo" }, { env = { A = true } }) end)
    for _, name in ipairs { "stdin", "stdout", "stderr" } do
      local ok, msg = pcall(sys.spawn, { "echo" }, { [name] = {} })
      assert.is_false(ok)
      assert.matches("bad argument #2 to '[%w.]*spawn' %(" .. name .. " must be a path%)", msg)
    end
  end)
end)

describe("ghl.sim.process", function()
  it("starts a simulator in its own session, serving, and stops it cleanly leaving nothing", function()
    local h = assert(process.start { exe = exe, args = { "--contacts", "3" }, home = true,
      env = { no_proxy = "127.0.0.1", NO_PROXY = "127.0.0.1" } })
    finally(h.stop)
    assert.matches("^http://127%.0%.0%.1:%d+$", h.url)
    assert.are.equal(h.pid, math.tointeger(h.info.pid))
    assert.are.equal(h.pid, select(2, ids(h.pid)))
    assert.are.equal(h.dir .. "/home", h.home)
    assert.are.equal("dir", sys.stat(h.home).type)
    local resp = assert(http.request { url = h.url .. "/contacts/", query = { locationId = h.info.locationId },
      headers = { Authorization = "Bearer " .. h.info.token, Version = "2021-07-28" }, timeout = 10 })
    assert.are.equal(200, resp.status)
    assert.are.equal(3, #resp:json().contacts)
    assert.is_true(h.alive())
    assert.is_true(h.stop())
    assert.is_true(h.stop())              -- again: the same answer
    assert.is_false(h.alive())
    assert.is_false(sys.alive(h.pid))     -- reaped, not a zombie
    assert.is_nil(sys.stat(h.dir))
  end)

  it("says why a simulator did not start, with what it printed, and leaves nothing", function()
    local h, err = process.start { exe = exe, args = { "--no-such-flag" }, home = true }
    assert.is_nil(h)
    assert.are.equal("sim", err.kind)
    assert.are.equal("ghlua sim exited before it was ready", err.message)
    assert.matches("unknown option '%-%-no%-such%-flag'", err.output)
    assert.are.equal("--no-such-flag", err.argv[#err.argv])
    assert.is_nil(sys.stat(err.argv[6]:match("^(.*)/")))   -- its directory is gone
    assert.matches(" sim %-%-port 0 %-%-ready%-file ", process.command_line(err.argv))
  end)

  it("stops a simulator still running when the program that started it ends", function()
    local r = run.ghlua({ "-e", [[
      local h = assert(require("ghl.sim.process").start { home = true })
      print(h.pid, h.dir)
    ]] })
    assert.are.equal(0, r.code, r.err)
    local pid, dir = r.out:match("^(%d+)\t(%S+)\n$")
    assert.truthy(pid, r.out)
    assert.is_false(sys.alive(tonumber(pid)))
    assert.is_nil(sys.stat(dir))
  end)
end)

describe("support.sim", function()
  it("stops the simulators a spec leaves running when the spec file ends", function()
    local spec = os.tmpname() .. "_spec.lua"
    local out = tmp()
    finally(function() os.remove(spec) end)
    local f = assert(io.open(spec, "w"))
    f:write(([[
      local sim = require "support.sim"
      it("leaves one", function()
        local s = sim.start {}
        local f = assert(io.open(%q, "w")); f:write(s.pid, "\n", s.home, "\n"); f:close()
      end)
    ]]):format(out))
    f:close()
    local src = os.getenv("GHLUA_SRC") or "."
    local r = run.sh(run.quote(exe) .. " /usr/bin/busted --helper=" .. run.quote(src .. "/tests/lua/support/helper.lua")
      .. " " .. run.quote(spec))
    assert.are.equal(0, r.code, r.out .. r.err)
    local pid, home = (slurp(out) or ""):match("^(%d+)\n(%S+)\n$")
    assert.truthy(pid, r.out)
    assert.is_false(sys.alive(tonumber(pid)))
    assert.is_nil(sys.stat(home))
  end)
end)
