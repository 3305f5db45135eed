-- Help everywhere, read from the command table (ghl.cli): `ghlua help
-- PATH`, `ghlua PATH --help` and `-h` for every command and subcommand the
-- table holds (so a new one is covered without a new test), "did you mean"
-- for mistyped commands, subcommands and flags, the rule that tells a
-- mistyped command from a script, the global -v after a command, and
-- ghlua(1), generated at build time from the same table.
local run = require "support.run"
local sim = require "support.sim"
local fixture = require "support.fixture"
local cli = require "ghl.cli"
local args = require "ghl.cli.args"
local ghlua = run.ghlua

-- Every visible node of the table: {path = {...}, node = ...}.
local function nodes()
  local out = {}
  cli.walk(function(node, path)
    for _, p in ipairs(path) do if p:sub(1, 2) == "__" then return end end
    if not node.hidden then out[#out + 1] = { path = path, node = node } end
  end)
  return out
end

local function cat(path, ...)
  local t = table.move(path, 1, #path, 1, {})
  for _, a in ipairs { ... } do t[#t + 1] = a end
  return t
end

local tmpdir = require("support.fixture").tmpdir   -- a new 0700 directory

describe("ghlua help", function()
  it("walks a table that holds every command and subcommand", function()
    local names = {}
    for _, n in ipairs(nodes()) do names[#names + 1] = table.concat(n.path, " ") end
    for _, want in ipairs { "auth", "auth login", "auth pit add", "auth pit remove", "app add", "app update",
                            "app list", "app remove", "api", "run", "scopes", "sim", "webhook serve",
                            "webhook verify", "sso decrypt", "sso encrypt", "completion", "help" } do
      assert.is_truthy(require("pl.tablex").find(names, want), want .. " is not in the table")
    end
  end)

  it("prints the same usage and help for PATH --help, -h, 'help PATH' and '--help PATH', exit 0", function()
    for _, n in ipairs(nodes()) do
      local label = "ghlua " .. table.concat(n.path, " ")
      local r = ghlua(cat(n.path, "--help"))
      assert.are.same({ 0, "" }, { r.code, r.err }, label .. " --help")
      assert.matches("^usage: ghlua " .. table.concat(n.path, " "):gsub("%p", "%%%0"), r.out, 1, label)
      assert.are.equal(r.out, ghlua(cat(n.path, "-h")).out, label .. " -h")
      assert.are.equal(r.out, ghlua(cat({ "help" }, table.unpack(n.path))).out, "ghlua help " .. label)
      assert.are.equal(r.out, ghlua(cat({ "--help" }, table.unpack(n.path))).out, "ghlua --help " .. label)
    end
  end)

  it("takes --help anywhere among a command's flags, after a bad one too", function()
    for _, n in ipairs(nodes()) do
      -- (a command that declares --help itself, like run, gives it its own meaning)
      if not n.node.subcommands and not (n.node.flags or {}).help then
        local label = "ghlua " .. table.concat(n.path, " ")
        local r = ghlua(cat(n.path, "--no-such-flag", "--help"))
        assert.are.same({ 0, "" }, { r.code, r.err }, label)
        assert.matches("^usage: ", r.out, 1, label)
      end
    end
    local r = ghlua { "app", "add", "myapp", "--client-id", "x-y", "-h" }
    assert.are.same({ 0, "" }, { r.code, r.err })
    assert.matches("^usage: ghlua app add NAME", r.out)
    -- a flag whose value may be left out does not take --help as its value
    r = ghlua { "sim", "--auto-approve", "--help" }
    assert.are.same({ 0, "" }, { r.code, r.err })
    assert.matches("^usage: ghlua sim ", r.out)
    -- but a flag that needs one does: that is a value, not a request for help
    r = ghlua { "scopes", "--search", "--help" }
    assert.are.same({ 1, "", "ghlua: no scope matches '--help'\n" }, { r.code, r.out, r.err })
  end)

  it("names every flag a command declares in its help, and every command has a summary", function()
    for _, n in ipairs(nodes()) do
      local label = "ghlua " .. table.concat(n.path, " ")
      assert.is_truthy(n.node.summary, label .. " has no summary")
      local out = ghlua(cat(n.path, "--help")).out
      for _, d in ipairs(args.list(n.node.flags)) do
        if d.name ~= "help" then
          assert.is_truthy(out:find(args.display(d), 1, true), label .. " --help does not name " .. args.display(d))
        end
      end
    end
  end)

  it("lists the commands with their summaries, not the hidden ones", function()
    local r = ghlua { "help" }
    assert.are.same({ 0, "" }, { r.code, r.err })
    assert.are.equal(ghlua({ "--help" }).out, r.out)
    for _, c in ipairs(cli.children(cli.root)) do
      if c.hidden then
        assert.is_nil(r.out:find("\n  " .. c.name, 1, true), c.name)
      else
        assert.matches("\n  " .. c.name:gsub("%p", "%%%0") .. " +" .. c.summary:sub(1, 20):gsub("%p", "%%%0"), r.out)
      end
    end
    assert.matches("mistyped command", r.out)
    assert.matches("Exit status: 0 success, 1 failure, 2 usage error", r.out)
  end)
end)

describe("did you mean", function()
  it("suggests the nearest commands for a mistyped one, runs nothing, exit 2", function()
    local d = tmpdir()
    for _, case in ipairs {
      { { "ap" }, "unknown command 'ap' %(did you mean 'api' or 'app'%?%)" },
      { { "auht", "status" }, "unknown command 'auht' %(did you mean 'auth'%?%)" },
      { { "webhok" }, "unknown command 'webhok' %(did you mean 'webhook'%?%)" },
      { { "zzzz" }, "unknown command 'zzzz', and no file 'zzzz' to run" },
      { { "app", "ad" }, "unknown app subcommand 'ad' %(did you mean 'add'%?%)" },
      { { "auth", "pit", "ad", "x" }, "unknown auth pit subcommand 'ad' %(did you mean 'add'%?%)" },
      { { "help", "ap" }, "unknown command 'ap' %(did you mean 'api' or 'app'%?%)" },
      { { "help", "webhook", "sevre" }, "unknown webhook subcommand 'sevre' %(did you mean 'serve'%?%)" },
      { { "api", "GET", "/contacts/", "--paginat" }, "unknown option '%-%-paginat' %(did you mean %-%-paginate%?%)" },
      { { "auth", "status", "--jsn" }, "unknown option '%-%-jsn' %(did you mean %-%-json%?%)" },
    } do
      local r = run.sh("cd " .. run.quote(d) .. " && " .. run.quote(os.getenv("GHLUA")) .. " "
        .. table.concat(case[1], " "))
      assert.are.equal(2, r.code, table.concat(case[1], " "))
      assert.are.equal("", r.out)
      assert.matches("^ghlua: " .. case[2], r.err)
      assert.are.equal(1, select(2, r.err:gsub("\n", "")), r.err)
    end
    run.sh("rm -rf " .. run.quote(d))
  end)

  it("runs an existing file as a script, and a path as one; a command's name stays the command", function()
    local d = tmpdir()
    for name, text in pairs { ap = "print('the file ap', ...)", api = "print('the file api')" } do
      local f = assert(io.open(d .. "/" .. name, "w"))
      f:write(text)
      f:close()
    end
    local function at(argv)
      return run.sh("cd " .. run.quote(d) .. " && " .. run.quote(os.getenv("GHLUA")) .. " " .. argv)
    end
    assert.are.same({ 0, "the file ap\tx\n" }, { at("ap x").code, at("ap x").out })
    assert.are.same({ 0, "the file api\n" }, { at("./api").code, at("./api").out })
    local r = at("api --help")
    assert.are.equal(0, r.code)
    assert.matches("^usage: ghlua api METHOD PATH", r.out)
    r = at("nothere.lua")
    assert.are.equal(1, r.code)
    assert.matches("^ghlua: cannot open nothere.lua", r.err)
    run.sh("rm -rf " .. run.quote(d))
  end)
end)

describe("-v after a command", function()
  local s, home, f
  setup(function()
    f = fixture.start {}
    s, home = f.sim, f.home
  end)
  teardown(function() if f then f.stop() end end)

  local function env()
    return { GHL_TOKEN = s.token, GHL_LOCATION_ID = s.location, GHLUA_API_BASE = s.url, GHLUA_TRACE = "0",
             GHLUA_HOME = home }
  end

  it("traces the request wherever it stands among the flags, as before the command", function()
    for _, argv in ipairs {
      { "-v", "api", "GET", "/contacts/", "-q", "limit=1" },
      { "api", "-v", "GET", "/contacts/", "-q", "limit=1" },
      { "api", "GET", "/contacts/", "-q", "limit=1", "-v" },
    } do
      local r = ghlua(argv, { env = env() })
      assert.are.equal(0, r.code, r.err)
      assert.matches("^> GET " .. s.url:gsub("%p", "%%%0") .. "/contacts/%?", r.err)
      assert.matches("\n< 200 ", r.err)
      assert.is_nil(r.err:find(s.token, 1, true))
      assert.matches('"contacts"', r.out)
    end
    local quiet = ghlua({ "api", "GET", "/contacts/", "-q", "limit=1" }, { env = env() })
    assert.are.same({ 0, "" }, { quiet.code, quiet.err })
  end)

  it("is a value where a flag takes one, and nothing after --", function()
    local r = ghlua({ "api", "GET", "/contacts/", "-q", "-v" }, { env = env() })
    assert.are.equal(2, r.code)
    assert.matches("%-q needs KEY=VALUE, got '%-v'", r.err)
    r = ghlua({ "scopes", "--", "-v" }, { env = env() })
    assert.are.equal(2, r.code)
    assert.matches("unknown scope or group: '%-v'", r.err)
  end)
end)

describe("ghlua(1)", function()
  local build = os.getenv("GHLUA_BUILD")
  local page = build .. "/ghlua.1"

  it("is what the binary renders from its table (built with it)", function()
    local version = ghlua({ "-e", "print((require('ghl')._VERSION:gsub('^ghlua ', '')))" }).out:gsub("\n$", "")
    local r = ghlua { "-e", "io.write(require('ghl.cli.man').render(" .. string.format("%q", version) .. "))" }
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(run.slurp(page), r.out)
    assert.matches('^%.TH GHLUA 1 "" "ghlua ' .. version:gsub("%p", "%%%0"), r.out)
  end)

  it("formats without a warning and opens with man -l", function()
    local r = run.sh("groff -man -Tutf8 -ww -z " .. run.quote(page))
    assert.are.same({ 0, "" }, { r.code, r.err })
    r = run.sh("MANWIDTH=100 man -l " .. run.quote(page), { env = { MANPAGER = "cat", PAGER = "cat" } })
    assert.are.same({ 0, "" }, { r.code, r.err })
    local text = r.out:gsub("\226\128\144\n%s*", ""):gsub(".\b", "")
    for _, section in ipairs { "NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS", "ENVIRONMENT", "FILES",
                               "EXIT STATUS", "EXAMPLES" } do
      assert.matches("\n" .. section .. "\n", text, 1, section)
    end
    -- every command and subcommand, with its usage; every option and variable
    for _, n in ipairs(nodes()) do
      local name = "ghlua " .. table.concat(n.path, " ")
      assert.matches("\n   " .. name:gsub("%p", "%%%0") .. "\n", text, 1, name)
    end
    for _, d in ipairs(args.list(cli.root.flags)) do
      assert.is_truthy(text:find("\n       " .. args.display(d), 1, true)
        or text:find(", " .. args.display(d), 1, true), args.display(d))
    end
    for _, e in ipairs(cli.root.environment) do
      assert.is_truthy(text:find(e[1], 1, true), e[1])
    end
    assert.matches("ghlua%.db", text)
    assert.matches("0 success, 1 failure, 2 usage error", text)
  end)
end)
