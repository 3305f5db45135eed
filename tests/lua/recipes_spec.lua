-- Recipes and the agency fan-out: the manifest and its parameters, the
-- sandbox (each escape it blocks, one test each), ghl.each_location over
-- 20 locations with one failing, and a checkpointed run killed halfway and
-- run again without doing anything twice.
local recipe = require "ghl.recipe"
local sim = require "support.sim"
local run = require "support.run"
local agency = require "support.agency"
local cjson = require "cjson"
local ghl = require "ghl"
local sys = require "ghl.sys"

local dir
setup(function()
  dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. run.quote(dir)))
end)
teardown(function() os.execute("rm -rf " .. run.quote(dir)) end)

local n = 0
-- Write a recipe whose main function has this body; returns its path.
local function recipe_file(body, manifest, top)
  n = n + 1
  local path = ("%s/r%d.lua"):format(dir, n)
  local f = assert(io.open(path, "w"))
  f:write(top or "", "\n", "recipe ", manifest or "{ name = 'probe', writes = false }", "\n",
          "return function(params, client)\n", body, "\nend\n")
  f:close()
  return path
end

-- Run body in the sandbox (a recipe state of its own): ok, result-or-error
-- (a host ghl.error; its text for matching).
local function sandboxed(body, client, top, manifest)
  local r = recipe.load(recipe_file(body, manifest, top))
  r.box:policy { manifest = r.manifest }
  local ok, v = pcall(r.main, {}, client)
  r.box:close()
  return ok, v
end
local function text(e) return tostring(e) end

describe("the manifest", function()
  it("is checked and gives typed parameters with defaults", function()
    local path = recipe_file("return params", [[{ name = "typed", scopes = { "contacts.readonly" }, params = {
      n = { type = "integer", required = true }, ratio = { type = "number", default = 0.5 },
      on = { type = "boolean", default = false }, tags = { type = "list" }, who = { help = "a name" } } }]])
    local r = recipe.load(path)
    assert.are.same({ "typed", true, { "contacts.readonly" } }, { r.manifest.name, r.manifest.writes, r.manifest.scopes })
    local p = recipe.params(r.manifest, { n = "3", on = "yes", tags = "a, b,,c" })
    assert.are.same({ n = 3, ratio = 0.5, on = true, tags = { "a", "b", "c" } }, p)
    local function usage_of(raw)
      local ok, e = pcall(recipe.params, r.manifest, raw)
      assert.is_false(ok)
      assert.are.equal("usage", e.kind)
      return e
    end
    assert.matches("needs %-%-param n=VALUE", usage_of({}).message)
    assert.matches("needs an integer", usage_of({ n = "3.5" }).message)
    assert.matches("true or false", usage_of({ n = "1", on = "maybe" }).message)
    local e = usage_of({ n = "1", nn = "2" })
    assert.matches("no parameter 'nn'", e.message)
    assert.matches("n, on, ratio, tags, who", e.hint)
    assert.are.same({ "contacts.readonly" }, recipe.missing_scopes(r.manifest, "contacts.write"))
    assert.are.same({}, recipe.missing_scopes(r.manifest, { "contacts.readonly" }))
    assert.matches("\n  n +%(integer, required%)\n", recipe.help(r.manifest))
  end)

  it("is required, once, and the file must return its main function", function()
    local function load_error(text)
      local path = dir .. "/bad.lua"
      local f = assert(io.open(path, "w"))
      f:write(text)
      f:close()
      local ok, e = pcall(recipe.load, path)
      assert.is_false(ok)
      return e
    end
    assert.matches("is not a recipe: it never calls recipe{", load_error("return function() end").message)
    assert.matches("is not a recipe: it does not call recipe{", load_error("if false then recipe{name='a'} end return function() end").message)
    assert.matches("run it as a script: ghlua .*bad%.lua$", load_error("print(1)").hint)
    assert.matches("called twice", load_error("recipe{name='a'} recipe{name='b'} return function() end").message)
    assert.matches("must return its main", load_error("recipe{name='a'}").message)
    assert.matches("unknown type", load_error("recipe{name='a', params={x={type='date'}}} return print").message)
    assert.matches("does not compile", load_error("recipe{").message)
  end)
end)

describe("telling a plain script from a recipe", function()
  it("finds a call of the global recipe outside comments and strings, without running the file", function()
    local yes = {
      "recipe { name = 'a' }", "recipe{name='a'}", "recipe({ name = 'a' })", "recipe 'x'",
      "#!/usr/bin/env ghlua\nrecipe{}", "local m = recipe\n", "x = 1 .. recipe{}", "-- c\nrecipe --[[ c ]] {}",
      "local s = [==[ ]] ]==] recipe{}", "local s = 'it''s' recipe{}", 'local s = "\\"" recipe{}',
      "return { recipe == nil }",
    }
    for _, text in ipairs(yes) do assert.is_true(recipe.mentions_recipe(text), text) end
    local no = {
      "print('hi')", "-- recipe{}\nprint(1)", "--[[ recipe{} ]] print(1)", "--[==[\nrecipe{}\n]==]",
      "print('recipe{}')", 'print("a \\" recipe{}")', "print([[recipe{}]])", "print([=[ ]] recipe{} ]=])",
      "ghl.recipe.plan_lines{}", "ghl.recipe . plan_lines{}", "obj:recipe{}", "local t = { recipe = 1 }",
      "recipe = nil", "recipes{}", "my_recipe{}", "#!/bin/sh recipe{}\nprint(1)", "",
    }
    for _, text in ipairs(no) do assert.is_false(recipe.mentions_recipe(text), text) end
  end)
end)

describe("the sandbox", function()
  it("has no io (so no io.open)", function()
    local ok, v = sandboxed("return io")
    assert.are.same({ true, nil }, { ok, v })
    local ok2, e = sandboxed("return io.open('/etc/hostname')")
    assert.is_false(ok2)
    assert.matches("global 'io'", text(e))
  end)

  it("has no os.execute, os.getenv, os.remove or os.exit", function()
    local ok, v = sandboxed("return { os.execute, os.getenv, os.remove, os.exit, os.tmpname, type(os.time()) }")
    assert.is_true(ok)
    assert.are.same({ [6] = "number" }, v)
    assert.is_false((sandboxed("return os.execute('true')")))
  end)

  it("has no io.popen", function()
    local ok, e = sandboxed("return io.popen('echo escaped')")
    assert.is_false(ok)
    assert.matches("global 'io'", text(e))
  end)

  it("has no package, so no package.loadlib", function()
    local ok, v = sandboxed("return package")
    assert.are.same({ true, nil }, { ok, v })
    local ok2, e = sandboxed("return package.loadlib('libc.so.6', 'system')")
    assert.is_false(ok2)
    assert.matches("global 'package'", text(e))
  end)

  it("has no debug library", function()
    local ok, e = sandboxed("return debug.getregistry()")
    assert.is_false(ok)
    assert.matches("global 'debug'", text(e))
  end)

  it("refuses require of C modules, and of library modules outside the sandbox", function()
    for _, name in ipairs { "ghl.sys", "ghl.store", "ghl.http", "ghl._csv", "ghl._sandbox", "lfs", "ghl.auth",
                            "ghl.client", "ghl.cli.run", "io", "../x", "a/b" } do
      local ok, e = sandboxed(("return require(%q)"):format(name))
      assert.is_false(ok, name)
      assert.are.equal("sandbox", e.kind, name)
      assert.matches("--trust", e.hint)
    end
  end)

  it("gives require the ghl modules and Lua files next to the recipe, in its own state", function()
    local f = assert(io.open(dir .. "/helper.lua", "w"))
    f:write("return { io = io, double = function(x) return 2 * x end }")
    f:close()
    local ok, v = sandboxed("local h = require 'helper' return { h.double(21), h.io == nil, require('ghl.contacts') == ghl.contacts }")
    assert.is_true(ok, tostring(v))
    assert.are.same({ 42, true, true }, v)
  end)

  it("has no dofile, loadfile, string.dump or binary chunks", function()
    local ok, v = sandboxed([[
      local f, err = load("\27Lua\84\0\25\147\13\10\26\10")
      return { dofile, loadfile, string.dump, f, err }
    ]])
    assert.is_true(ok, tostring(v))
    assert.is_nil(v[1] or v[2] or v[3] or v[4])
    assert.matches("binary chunk", v[5])
  end)

  it("changes only its own copy of the library, and cannot reach the host's modules", function()
    local ok, v = sandboxed("return { ghl.auth, ghl.store, ghl.http, ghl.sys }")
    assert.is_false(ok)
    assert.are.equal("sandbox", v.kind)
    local ok2, v2 = sandboxed("ghl.contacts.create = print; getmetatable(ghl.error.new{}).__tostring = nil; return 1")
    assert.are.same({ true, 1 }, { ok2, v2 })
    assert.are.equal("function", type(ghl.contacts.create))
    assert.are_not.equal(print, ghl.contacts.create)
    assert.matches("^x$", tostring(ghl.error.new { kind = "k", message = "x" }))
    local ok3, e3 = sandboxed("return ghl.client{}")
    assert.is_false(ok3)
    assert.matches("second argument", e3.message)
  end)

  it("gives ghl.csv no file the parameters do not name", function()
    local ok, e = sandboxed("for row in ghl.csv.read('/etc/passwd', { header = false }) do end")
    assert.is_false(ok)
    assert.are.equal("sandbox", e.kind)
    ok, e = sandboxed("return ghl.csv.write('escaped.csv', { { 1 } })")
    assert.are.equal("sandbox", e.kind)
    ok, e = sandboxed("local n = 0 for r in ghl.csv.read('a,b\\n1,2\\n') do n = n + tonumber(r.b) end return { n, ghl.csv.encode({ { 1, 2 } }) }")
    assert.are.same({ true, { 2, "1,2\n" } }, { ok, e })
  end)

  it("gives a client that never shows its token and stays on the API host", function()
    local s = sim.start {}
    finally(s.stop)
    local c = ghl.client { token = s.token, base = s.url, location = s.location }
    local M = "{ name = 'probe', writes = false, scopes = { 'locations/customFields.readonly' } }"
    local ok, v = sandboxed("return { client.token, client.static_token, client.last, client.location, client.dry_run }", c, nil, M)
    assert.is_true(ok, tostring(v))
    assert.are.same({ [4] = s.location }, v)
    for _, path in ipairs { "https://evil.example/x", "//evil.example/x", "evil", "/a/../b", "/x@evil" } do
      local ok2, e = sandboxed(("return client:get(%q)"):format(path), c, nil, M)
      assert.is_false(ok2)
      assert.are.equal("sandbox", e.kind, path)
    end
    local ok3, n3 = sandboxed("return #client.custom_fields:list() + #ghl.custom_fields.list(client)", c, nil, M)
    assert.are.same({ true, 8 }, { ok3, n3 })
    local ok4, e4 = sandboxed("return client.locations:company_row()", c, nil, M)
    assert.is_false(ok4)
    assert.are.equal("sandbox", e4.kind)   -- it needs the token store: not in a recipe's state
  end)

  it("is lifted by trust", function()
    local r = recipe.load(recipe_file("return { io ~= nil, os.getenv('HOME') ~= nil, require('ghl.sys') ~= nil }"),
                          { trust = true })
    assert.are.same({ true, true, true }, r.main({}))
  end)
end)

describe("ghl.each_location", function()
  local a
  setup(function()
    a = agency.start(19, "contacts.readonly contacts.write locations.readonly")
  end)
  teardown(function() a.stop() end)

  local FANOUT = [[
    local ghl = require "ghl"
    local report = ghl.each_location(function(c, loc)
      local l = ghl.locations.get(c)
      local ct = ghl.contacts.create(c, { email = %q, firstName = l.name })
      return { contact = ct.id, key = c.key }
    end, { concurrency = %d, checkpoint = %s, progress = false })
    local out = { ok = report.ok, failed = report.failed, skipped = report.skipped, total = report.total, entries = {} }
    for _, e in ipairs(report.locations) do
      out.entries[#out.entries + 1] = { id = e.id, ok = e.ok, skipped = e.skipped or false, result = e.result,
        status = e.error and e.error.status or 0, counts = e.counts }
    end
    print(require("cjson").encode(out))
  ]]

  local function posts()
    local n = 0
    for _, r in ipairs(a.requests { method = "POST", path = "/contacts/" }) do
      if r.status ~= "reset" then n = n + 1 end
    end
    return n
  end

  it("runs every location with its own minted token, reporting the one that fails", function()
    local bad = a.locations[7].id
    a.chaos { { method = "GET", path = "/locations/" .. bad, times = 5, status = 503, message = "down" } }
    local before = a.stats().oauth.location_tokens or 0
    local r = a.lua(FANOUT:format("fan1@example.com", 6, "nil"))
    assert.are.equal(0, r.code, r.err)
    local rep = cjson.decode(r.out)
    assert.are.same({ 20, 19, 1, 0 }, { rep.total, rep.ok, rep.failed, rep.skipped })
    local keys = {}
    for i, e in ipairs(rep.entries) do
      assert.are.equal(a.locations[i].id, e.id)
      if e.id == bad then
        assert.are.same({ false, 503 }, { e.ok, e.status })
      else
        assert.is_true(e.ok)
        assert.are.equal(1, e.counts.writes)
        assert.is_nil(keys[e.result.key])
        assert.truthy(e.result.key:find(e.id, 1, true))
        keys[e.result.key] = true
      end
    end
    assert.are.equal(19, posts())
    assert.are.equal(20, (a.stats().oauth.location_tokens or 0) - before)
    -- the minted tokens are kept: a second run mints none
    local r2 = a.lua(([[
      local report = require("ghl").each_location(function(c) return require("ghl").locations.get(c).id end,
        { progress = false })
      print(report.ok)
    ]]))
    assert.are.same({ 0, "20\n" }, { r2.code, r2.out }, r2.err)
    assert.are.equal(20, (a.stats().oauth.location_tokens or 0) - before)
  end)

  it("resumes from its checkpoint after being killed, doing nothing twice", function()
    assert(require("ghl.http").request { method = "DELETE", url = a.sim.url .. "/__sim/requests" })
    local cp = dir .. "/fanout.checkpoint"
    local eighth = a.locations[8].id
    a.chaos { { method = "GET", path = "/locations/" .. eighth, times = 1, delay_ms = 30000 } }
    -- first run in the background, one location at a time
    local code = FANOUT:format("fan2@example.com", 1, ("%q"):format(cp))
    local pidfile = dir .. "/fanout.pid"
    local env = {}
    for k, v in pairs(a.env) do env[#env + 1] = k .. "=" .. run.quote(v) end
    assert(os.execute(("env %s %s -e %s >/dev/null 2>&1 & echo $! > %s"):format(table.concat(env, " "),
      run.quote(os.getenv("GHLUA")), run.quote(code), run.quote(pidfile))))
    local pid = tonumber(run.slurp(pidfile):match("%d+"))
    -- wait until seven are recorded and the eighth is waiting for its answer
    local deadline = sys.now() + 30
    while true do
      local done = 0   -- the checkpoint journal: one JSON line per finished location
      for line in run.slurp(cp):gmatch("[^\n]+") do
        if (require("cjson.safe").decode(line) or {}).id then done = done + 1 end
      end
      if done >= 7 and #a.requests { method = "GET", path = "/locations/" .. eighth } > 0 then
        assert.are.equal(7, done)
        break
      end
      assert(sys.now() < deadline, "the first run did not get to the eighth location")
      sys.sleep(0.05)
    end
    assert(sys.kill(pid, 9))
    while sys.kill(pid, 0) do sys.sleep(0.02) end
    assert.are.equal(7, posts())
    -- the second run skips the seven and does the rest
    local r = a.lua(FANOUT:format("fan2@example.com", 4, ("%q"):format(cp)))
    assert.are.equal(0, r.code, r.err)
    local rep = cjson.decode(r.out)
    assert.are.same({ 20, 20, 0, 7 }, { rep.total, rep.ok, rep.failed, rep.skipped })
    for i = 1, 7 do assert.is_true(rep.entries[i].skipped) end
    assert.is_false(rep.entries[8].skipped)
    assert.are.equal(20, posts())
    -- every location got exactly one contact
    local per = {}
    for _, e in ipairs(rep.entries) do
      assert.is_string(e.result.contact)
      assert.is_nil(per[e.result.contact])
      per[e.result.contact] = true
    end
    -- a third run has nothing left to do
    local r3 = a.lua(FANOUT:format("fan2@example.com", 4, ("%q"):format(cp)))
    assert.are.equal(20, cjson.decode(r3.out).skipped)
    assert.are.equal(20, posts())
  end)
end)
