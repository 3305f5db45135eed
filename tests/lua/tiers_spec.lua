-- The three tiers, checked over the source of every module the binary
-- embeds:
--   natives   the C modules the binary registers (ghl.http, ghl.store,
--             cjson, ...) and ghl._*
--   library   ghl and ghl.* (and ghl.sim.process, the library's launcher
--             of a simulator process)
--   apps      ghl.cli.* (the command line), ghl.repl.* (the REPL),
--             ghl.sim.* (the simulator)
-- Rules: the library never requires an app module; an app never requires
-- another app; natives (src/*.c) never reach Lua modules through globals
-- (lua_getglobal): they take them from the registry (package.loaded,
-- package.preload, or the require the host captured when it built the
-- state). Each violation is listed as file:line, module, rule.
local src = assert(os.getenv("GHLUA_SRC"), "GHLUA_SRC must name the source tree")

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- The file of an embedded Lua module, relative to the source tree, or nil
-- for a C module.
local function file_of(name)
  local base = "lua/" .. name:gsub("%.", "/")
  if exists(src .. "/" .. base .. ".lua") then return base .. ".lua" end
  if exists(src .. "/" .. base .. "/init.lua") then return base .. "/init.lua" end
  return nil
end

local M = {}

-- tier(name) -> "native", "library", or the app's name ("cli", "repl",
-- "sim"); nil for a name outside ghlua (a script's own module).
function M.tier(name, natives)
  if natives[name] or name:match("^ghl%._") then return "native" end
  if name == "ghl.sim.process" then return "library" end
  local app = name:match("^ghl%.(%a+)$") or name:match("^ghl%.(%a+)%.")
  if app == "cli" or app == "repl" or app == "sim" then return app end
  if name == "ghl" or name:match("^ghl%.") then return "library" end
  return nil
end

-- The modules the binary embeds: {name -> file (Lua) or false (C)}.
function M.modules()
  local out = {}
  for name in pairs(package.preload) do out[name] = file_of(name) or false end
  return out
end

-- Non-literal requires whose names the spec reads another way: file ->
-- function giving the module names it may load.
M.dynamic = {
  -- the facade's lazy submodules
  ["lua/ghl/init.lua"] = function()
    local out = {}
    for _, name in pairs(getmetatable(require "ghl").__complete) do out[#out + 1] = name end
    return out
  end,
  -- the operation table's data module
  ["lua/ghl/api/ops.lua"] = function() return { "ghl.api.operations" } end,
  -- the simulator's route modules
  ["lua/ghl/sim/init.lua"] = function() return require("ghl.sim").MODULES end,
  -- the command table's modules (an entry that names another app is
  -- started by the program's entry point, not required)
  ["lua/ghl/cli/commands.lua"] = function()
    local out = {}
    local function walk(list)
      for _, e in ipairs(list or {}) do
        if type(e) == "string" then
          out[#out + 1] = e
          walk(require(e).subcommands)
        elseif not e.run_by then
          walk(e.subcommands)
        end
      end
    end
    walk(require("ghl.cli.commands").commands)
    return out
  end,
}

-- requires(text) -> {{line, name}} for every literal require (and
-- pcall(require, "x")), and {{line, code}} for the non-literal ones.
function M.requires(text)
  local lits, dyn, n = {}, {}, 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    local code = line:gsub("%-%-.*$", "")   -- comments off (a string holding "--" is rare here)
    for pos, rest in code:gmatch("()require%f[^%w_](.*)") do
      local before = pos > 1 and code:sub(pos - 1, pos - 1) or ""
      if not before:match("[%w_.:\"']") then
        local name = rest:match("^%s*%(?%s*[\"']([^\"']+)[\"']") or rest:match("^%s*,%s*[\"']([^\"']+)[\"']")
        if name then
          lits[#lits + 1] = { n, name }
        elseif rest:match("^%s*%(%s*[^%s\"'\\)]") or rest:match("^%s*,%s*[%a_]") then
          dyn[#dyn + 1] = { n, line:match("^%s*(.-)%s*$") }   -- require(name), pcall(require, name)
        end
      end
    end
  end
  return lits, dyn
end

-- The rule a require from tier `from` to tier `to` breaks, or nil.
function M.rule(from, to)
  if from == "library" and to ~= "library" and to ~= "native" then
    return "the library never requires an app module"
  end
  if from ~= "library" and from ~= "native" and to ~= "library" and to ~= "native" and from ~= to then
    return "an app never requires another app (" .. from .. " -> " .. to .. ")"
  end
  return nil
end

-- Lua violations: {"file:line  module -> required  rule"}.
function M.lua_violations(modules)
  local natives = {}
  for name, file in pairs(modules) do if not file then natives[name] = true end end
  local out = {}
  local names = {}
  for name, file in pairs(modules) do if file then names[#names + 1] = name end end
  table.sort(names)
  for _, name in ipairs(names) do
    local file = modules[name]
    local from = M.tier(name, natives)
    local lits, dyn = M.requires(read(src .. "/" .. file))
    if #dyn > 0 and from ~= "native" then
      local list = M.dynamic[file]
      if list then
        for _, r in ipairs(list()) do lits[#lits + 1] = { "*", r } end
      else
        for _, d in ipairs(dyn) do
          out[#out + 1] = ("%s:%d  %s  a non-literal require (%s): name what it loads"):format(file, d[1], name, d[2])
        end
      end
    end
    for _, r in ipairs(lits) do
      local to = M.tier(r[2], natives)
      local why = to and M.rule(from, to)
      if not why and r[2] == "ghl.cli" then
        -- the dispatcher requires every command module: one requiring it back is a cycle
        why = "only the program entry runs the dispatcher ghl.cli: require ghl.cli.commands or ghl.cli.help"
      end
      if why then
        out[#out + 1] = ("%s:%s  %s -> %s  %s"):format(file, r[1], name, r[2], why)
      end
    end
  end
  return out
end

-- C violations: a Lua global read from src/*.c.
function M.c_violations(files)
  local out = {}
  for _, file in ipairs(files) do
    local n = 0
    for line in (read(src .. "/" .. file) .. "\n"):gmatch("([^\n]*)\n") do
      n = n + 1
      local g = line:match("lua_getglobal%s*%(%s*[%w_]+%s*,%s*\"([^\"]*)\"")
      if g then
        out[#out + 1] = ("%s:%d  %s  natives never call Lua modules through globals (lua_getglobal)"):format(file, n, g)
      end
    end
  end
  return out
end

local function c_files()
  local out = {}
  local p = assert(io.popen("cd '" .. src .. "' && ls src/*.c"))
  for f in p:lines() do out[#out + 1] = f end
  p:close()
  return out
end

describe("the three tiers", function()
  local modules = M.modules()

  it("every lua/**/*.lua file is an embedded module, and the natives are known", function()
    local p = assert(io.popen("cd '" .. src .. "' && find lua -name '*.lua' | sort"))
    local missing = {}
    for f in p:lines() do
      local name = f:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
      if modules[name] ~= f then missing[#missing + 1] = f end
    end
    p:close()
    assert.are.same({}, missing)
    assert.is_false(modules["ghl.http"])
    assert.is_false(modules["cjson"])
    assert.are.equal("lua/ghl/init.lua", modules["ghl"])
  end)

  it("classifies modules into natives, the library and the apps", function()
    local natives = { ["ghl.http"] = true }
    assert.are.equal("native", M.tier("ghl.http", natives))
    assert.are.equal("native", M.tier("ghl._csv", natives))
    assert.are.equal("library", M.tier("ghl", natives))
    assert.are.equal("library", M.tier("ghl.client", natives))
    assert.are.equal("library", M.tier("ghl.sim.process", natives))
    assert.are.equal("cli", M.tier("ghl.cli", natives))
    assert.are.equal("cli", M.tier("ghl.cli.auth.login", natives))
    assert.are.equal("repl", M.tier("ghl.repl", natives))
    assert.are.equal("sim", M.tier("ghl.sim.webhooks", natives))
    assert.is_nil(M.tier("busted", natives))
  end)

  it("finds literal, pcall'd and non-literal requires (and ignores comments)", function()
    local lits, dyn = M.requires(table.concat({
      'local a = require "ghl.a"',
      "local b = require('ghl.b')",
      "local ok, c = pcall(require, 'ghl.c')",
      "-- require 'ghl.comment'",
      "local d = require(name)",
      "function G.require(x) end",
      "local ok, e = pcall(require, name)",
      [[refuse("require: not a module name")]],
      [[desc = "require MODULE into a global"]],
    }, "\n"))
    assert.are.same({ { 1, "ghl.a" }, { 2, "ghl.b" }, { 3, "ghl.c" } }, lits)
    assert.are.same({ 5, 7 }, { dyn[1][1], dyn[2][1] })
    assert.are.equal(2, #dyn)
  end)

  it("names the rule a require breaks", function()
    assert.is_truthy(M.rule("library", "cli"):find("library never requires an app"))
    assert.is_truthy(M.rule("cli", "sim"):find("app never requires another app"))
    assert.is_nil(M.rule("cli", "cli"))
    assert.is_nil(M.rule("repl", "library"))
    assert.is_nil(M.rule("library", "native"))
  end)

  it("holds for every embedded Lua module", function()
    local v = M.lua_violations(modules)
    assert(#v == 0, #v .. " tier violation(s):\n" .. table.concat(v, "\n"))
  end)

  it("starts another app only through the program's entry: each such node names an app module's function", function()
    local commands = require "ghl.cli.commands"
    local natives = {}
    for name, file in pairs(modules) do if not file then natives[name] = true end end
    local started = {}
    commands.walk(function(node, path)
      if node.run_by then
        local where = "ghlua " .. table.concat(path, " ")
        assert.is_nil(node.run, where .. ": a node another app runs has no run of its own")
        local tier = M.tier(node.run_by, natives)
        assert(tier and tier ~= "cli" and tier ~= "library" and tier ~= "native",
          where .. ": " .. node.run_by .. " is not another app's module")
        assert(modules[node.run_by], where .. ": no embedded module " .. node.run_by)
        assert.are.equal("function", type(require(node.run_by)[node.entry or "run"]),
          where .. ": " .. node.run_by .. " has no function " .. tostring(node.entry or "run"))
        started[#started + 1] = table.concat(path, " ")
      end
    end)
    table.sort(started)
    assert.are.same({ "sim", "sim env", "webhook trigger" }, started)
  end)

  it("holds for the natives: no Lua global read from src/*.c", function()
    local v = M.c_violations(c_files())
    assert(#v == 0, #v .. " tier violation(s):\n" .. table.concat(v, "\n"))
  end)
end)
