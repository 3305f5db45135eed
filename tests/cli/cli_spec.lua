-- The ghlua command line as a user meets it: interpreter options, scripts,
-- exit statuses and error formats. Every case spawns the real binary.
local run = require "support.run"
local ghlua = run.ghlua

local function script(text)
  local base = os.tmpname()
  os.remove(base)
  local path = base .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

describe("ghlua interpreter", function()
  it("prints its version and every library's", function()
    local r = ghlua { "--version" }
    assert.are.equal(0, r.code)
    for _, want in ipairs { "^ghlua %d+%.%d+%.%d+", "Lua 5%.4", "libcurl %d", "lua%-cjson %d",
                            "SQLite %d", "OpenSSL %d", "libmicrohttpd %d" } do
      assert.matches(want, r.out)
    end
  end)

  it("prints help with the commands and environment", function()
    local r = ghlua { "--help" }
    assert.are.equal(0, r.code)
    assert.matches("usage: ghlua", r.out)
    assert.matches("sim%s+", r.out)
    assert.matches("GHLUA_CA_BUNDLE", r.out)
  end)

  it("runs -e chunks in order", function()
    local r = ghlua { "-e", "x = 40", "-e", "print(x + 2)" }
    assert.are.same({ 0, "42\n", "" }, { r.code, r.out, r.err })
  end)

  it("passes arguments to a script as arg and ...", function()
    local s = script("print(arg[0] == (...) and 'same' or 'differs', select('#', ...), arg[1], arg[2], ...)")
    local r = ghlua { s, "one", "two" }
    os.remove(s)
    assert.are.equal(0, r.code)
    assert.are.equal("differs\t2\tone\ttwo\tone\ttwo\n", r.out)
  end)

  it("runs standard input with -", function()
    local r = ghlua({ "-", "a1" }, { stdin = "print('from stdin', ...)" })
    assert.are.same({ 0, "from stdin\ta1\n" }, { r.code, r.out })
  end)

  it("runs standard input when it is not a terminal", function()
    local r = ghlua({}, { stdin = "print(6 * 7)" })
    assert.are.same({ 0, "42\n" }, { r.code, r.out })
  end)

  it("has a basic REPL with -i: expressions print, statements span lines", function()
    local r = ghlua({ "-i" }, { stdin = "t = {1, 2, {a = 'x'}}\nt\nfunction f(n)\n  return n * 2\nend\nf(21)\n" })
    assert.are.equal(0, r.code)
    assert.matches('^%[1, 2, {"a": "x"}%]\n', r.out)
    assert.matches("\n42\n", r.out)
  end)

  it("loads modules installed for Lua 5.4 through package.path and cpath", function()
    local r = ghlua { "-e", "local lfs = require 'lfs'; local pl = require 'pl.stringx'; print(type(lfs.currentdir()), type(pl.split))" }
    assert.are.same({ 0, "string\tfunction\n" }, { r.code, r.out })
  end)

  it("embeds its Lua library and preloads cjson, reading no file of ours", function()
    local r = run.sh("cd / && " .. run.quote(os.getenv("GHLUA")) ..
      [[ -e "local g = require 'ghl'; local c = require 'cjson'; local s = require 'cjson.safe'; ]] ..
      [[print(package.preload['ghl.inspect'] ~= nil, package.preload['cjson'] ~= nil, c.encode({1}), s.decode('{') == nil)"]])
    assert.are.same({ 0, "true\ttrue\t[1]\ttrue\n" }, { r.code, r.out })
  end)

  it("writes what a script left buffered or open when it ends, after loading ghl.http", function()
    local file = run.tmpname()
    local s = script(([[
      local http = require "ghl.http"
      local f = assert(io.open(%q, "w"))
      f:write(http.encode { a = "x y" })             -- never closed: its finalizer flushes it
      KEEP = setmetatable({}, { __gc = function() io.write(" finalized") end })   -- finalized at the end
      io.write(string.rep("z", 100000), "\n", "no newline")
      if ... == "fail" then require("ghl.error").raise { kind = "config", message = "it failed" } end
    ]]):format(file))
    local want = string.rep("z", 100000) .. "\nno newline finalized"
    local r = ghlua { s }
    assert.are.same({ 0, #want, "" }, { r.code, #r.out, r.err })
    assert.is_true(r.out == want)
    local f = assert(io.open(file))
    assert.are.equal("a=x%20y", f:read("a"))
    f:close()
    r = ghlua { s, "fail" }
    assert.are.same({ 1, #want }, { r.code, #r.out })
    assert.is_true(r.out == want)
    assert.matches("it failed", r.err)
    os.remove(file)
  end)

  describe("errors", function()
    it("rejects an unknown option with a usage line and status 2", function()
      local r = ghlua { "--frobnicate" }
      assert.are.equal(2, r.code)
      assert.matches("^ghlua: unrecognized option '%-%-frobnicate'; usage: ghlua", r.err)
      assert.are.equal(1, select(2, r.err:gsub("\n", "")))
    end)

    it("needs an argument after -e (status 2)", function()
      local r = ghlua { "-e" }
      assert.are.equal(2, r.code)
      assert.matches("'%-e' needs an argument", r.err)
    end)

    it("reports a missing script file in one line, status 1", function()
      local r = ghlua { "/nonexistent/script.lua" }
      assert.are.equal(1, r.code)
      assert.matches("^ghlua: cannot open /nonexistent/script.lua", r.err)
      assert.are.equal(1, select(2, r.err:gsub("\n", "")))
    end)

    it("gives a bug file:line and a traceback, status 1", function()
      local s = script("local function f()\n  local t = nil\n  return t.x\nend\nf()\n")
      local r = ghlua { s }
      os.remove(s)
      assert.are.equal(1, r.code)
      assert.matches(":3: attempt to index a nil value", r.err)
      assert.matches("stack traceback:", r.err)
    end)

    it("reports a syntax error in -e, status 1", function()
      local r = ghlua { "-e", "x = = 1" }
      assert.are.equal(1, r.code)
      assert.matches("^ghlua: syntax error in %-e: %(command line%):1:", r.err)
    end)

    it("prints an expected failure (ghl.error) as one line, status 1", function()
      local r = ghlua { "-e", "require('ghl.error').raise('timeout', 'the server took too long')" }
      assert.are.same({ 1, "ghlua: the server took too long\n" }, { r.code, r.err })
    end)

    it("adds a traceback to expected failures with GHLUA_DEBUG=1", function()
      local r = ghlua({ "-e", "require('ghl.error').raise('timeout', 'slow')" }, { env = { GHLUA_DEBUG = "1" } })
      assert.are.equal(1, r.code)
      assert.matches("slow\nstack traceback:", r.err)
    end)

    it("shows control bytes and invalid UTF-8 in any error message escaped", function()
      local r = ghlua { "-e", [[require('ghl.error').raise('http', 'got \27[2J\27]0;owned\7 and \255 here')]] }
      assert.are.same({ 1, "ghlua: got \\x1b[2J\\x1b]0;owned\\x07 and \\xff here\n" }, { r.code, r.err })
      r = ghlua { "-e", [[error("bug with \27[31m red")]] }
      assert.are.equal(1, r.code)
      assert.matches("^ghlua: %(command line%):1: bug with \\x1b%[31m red\nstack traceback:\n", r.err)
      r = ghlua({ "-e", [[require('ghl.error').raise('http', 'x\27[2J')]] }, { env = { GHLUA_DEBUG = "1" } })
      assert.matches("^ghlua: x\\x1b%[2J\nstack traceback:", r.err)
      assert.is_nil(r.err:find("\27", 1, true))
    end)

    it("gives a command's usage errors status 2", function()
      local r = ghlua { "sim", "--no-such-flag" }
      assert.are.equal(2, r.code)
      assert.matches("^ghlua: unknown option '%-%-no%-such%-flag'; usage: ghlua sim", r.err)
    end)

    it("gives a bad option value status 2", function()
      local r = ghlua { "sim", "--port", "eighty" }
      assert.are.equal(2, r.code)
      assert.matches("needs a number, got 'eighty'", r.err)
    end)
  end)

  it("ghl.try turns a raised ghl.error into nil, err and re-raises bugs", function()
    local r = ghlua { "-e", [[
      local ghl = require 'ghl'
      local v, err = ghl.try(function() ghl.error.raise('decode', 'bad json') end)
      print(v, err.kind, tostring(err))
      print(ghl.try(function(a, b) return a + b end, 2, 3))
      print(pcall(ghl.try, function() error('bug') end))
    ]] }
    assert.are.equal(0, r.code)
    assert.matches("^nil\tdecode\tbad json\n5\nfalse\t.-bug\n$", r.out)
  end)

  it("installs a single binary (no Lua files), ghlua(1) and the completions with make install's cmake --install", function()
    local build = os.getenv("GHLUA_BUILD")
    local prefix = os.tmpname()
    os.remove(prefix)
    local r = run.sh("cmake --install " .. run.quote(build) .. " --prefix " .. run.quote(prefix))
    assert.are.equal(0, r.code, r.err)
    local installed = run.sh("(cd " .. run.quote(prefix) .. " && find . -type f | LC_ALL=C sort)")
    assert.are.equal(table.concat({ "./bin/ghlua", "./share/bash-completion/completions/ghlua",
      "./share/fish/vendor_completions.d/ghlua.fish", "./share/man/man1/ghlua.1",
      "./share/zsh/site-functions/_ghlua", "" }, "\n"), installed.out)
    local page = run.sh("MANPATH=" .. run.quote(prefix .. "/share/man") .. " man -w ghlua")
    assert.are.same({ 0, prefix .. "/share/man/man1/ghlua.1\n" }, { page.code, page.out })
    local v = run.sh("cd / && " .. run.quote(prefix .. "/bin/ghlua") .. " -e \"print(require('ghl')._VERSION)\"")
    assert.are.same({ 0, "ghlua 0.1.0\n" }, { v.code, v.out })
    run.sh("rm -rf " .. run.quote(prefix))
  end)
end)
