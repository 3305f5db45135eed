-- `ghlua run RECIPE`: the manifest as --help, parameter validation, the
-- scope check against the stored grant, the dry run (counted in the
-- simulator's request log), the confirmation prompt (refused without a
-- terminal; `script` gives one), --trust, and --all-locations.
local sim = require "support.sim"
local fixture = require "support.fixture"
local run = require "support.run"
local oauth = require "support.oauth"
local agency = require "support.agency"
local http = require "ghl.http"
local cjson = require "cjson"

local SRC = os.getenv("GHLUA_SRC") or "."
local EX = SRC .. "/examples/"

local dir
setup(function()
  dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. run.quote(dir)))
end)
teardown(function() os.execute("rm -rf " .. run.quote(dir)) end)

local function file(name, text)
  local path = dir .. "/" .. name
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

local function log(s, q)
  return assert(assert(http.request { url = s.url .. "/__sim/requests", query = q }):json()).requests
end

local function clear(s)
  assert(http.request { method = "DELETE", url = s.url .. "/__sim/requests" })
end

local function writes(s)
  local n = 0
  for _, r in ipairs(log(s)) do
    if r.method ~= "GET" and not r.path:find("/search$") then n = n + 1 end
  end
  return n
end

describe("ghlua run with a token", function()
  local s, env, f
  setup(function()
    f = fixture.start({ "--contacts", "12" }, { location = true, home = dir .. "/home" })
    s, env = f.sim, f.env
  end)
  teardown(function() f.stop() end)

  local function ghlua(args, o)
    o = o or {}
    local e = {}
    for k, v in pairs(env) do e[k] = v end
    for k, v in pairs(o.env or {}) do e[k] = v end
    return run.ghlua(args, { env = e, stdin = o.stdin })
  end

  it("needs a recipe, and says what a file that is not one lacks", function()
    local r = ghlua { "run" }
    assert.are.equal(2, r.code)
    assert.matches("which recipe", r.err)
    r = ghlua { "run", file("plain.lua", "print('hi')") }
    assert.are.equal(2, r.code)
    assert.matches("is not a recipe", r.err)
    r = ghlua { "run", file("no_call.lua", "local x = recipe\nreturn function() end") }
    assert.are.equal(2, r.code)
    assert.matches("no_call%.lua is not a recipe: it does not call recipe{", r.err)
    r = ghlua { "run", dir .. "/nope.lua" }
    assert.are.equal(2, r.code)
    assert.matches("cannot read the recipe", r.err)
  end)

  it("says in one line that a plain script is not a recipe, without running it, and names the command that runs it", function()
    local marker = dir .. "/ran"
    -- a script that talks to the API with the whole library, and leaves a
    -- mark when its top level runs; recipe only in a comment, a string and
    -- a field
    local path = file("my script.lua", ([[
      -- not a recipe{...}
      local ghl = require "ghl"
      local t = { recipe = "recipe{}" }
      local f = io.open(%q, "w"); f:write("ran"); f:close()
      local c = ghl.client { token = os.getenv("GHL_TOKEN"), location = os.getenv("GHL_LOCATION_ID") }
      print(("%%d custom fields, %%s"):format(#c:get("/locations/{locationId}/customFields").customFields, t.recipe))
    ]]):format(marker))
    for _, extra in ipairs { {}, { "--help" }, { "--trust" }, { "--dry-run", "--param", "x=1" } } do
      local r = ghlua { "run", path, table.unpack(extra) }
      assert.are.equal(2, r.code, table.concat(extra, " "))
      assert.are.equal("", r.out)
      assert.is_nil(io.open(marker), "the script's top level ran")
      local cmd = r.err:match("^ghlua: [^\n]*my script%.lua is not a recipe: it never calls recipe{%.%.%.}[^\n]* run it as a script: (ghlua [^\n]+)\n$")
      assert.truthy(cmd, r.err)
      assert.are.equal("ghlua " .. run.quote(path), cmd)
      -- the command it names runs the script
      local parts = { "env" }
      for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. run.quote(v) end
      parts[#parts + 1] = run.quote(os.getenv("GHLUA")) .. cmd:sub(#"ghlua" + 1)
      local ok = run.sh(table.concat(parts, " "))
      assert.are.same({ 0, "4 custom fields, recipe{}\n" }, { ok.code, ok.out }, ok.err)
      assert.are.equal("ran", run.slurp(marker))
      os.remove(marker)
    end
  end)

  it("says in one line that a recipe run as a script is a recipe, naming ghlua run", function()
    clear(s)
    local r = ghlua { EX .. "bulk_tag.lua", "--param", "tag=x" }
    assert.are.equal(2, r.code)
    assert.are.equal("", r.out)
    assert.are.equal("ghlua: " .. EX .. "bulk_tag.lua is a recipe, not a script — hint: run it with: ghlua run "
      .. EX .. "bulk_tag.lua (--help shows its parameters)\n", r.err)
    assert.are.equal(0, #log(s))
  end)

  it("shows the manifest with --help", function()
    local r = ghlua { "run", EX .. "create_contact_by_key.lua", "--help" }
    assert.are.equal(0, r.code, r.err)
    assert.matches("^create_contact_by_key: create a contact with custom fields set by key", r.out)
    assert.matches("%-%-param email=STRING", r.out)
    assert.matches("\n  email +the contact's email %(string, required%)", r.out)
    assert.matches("\n  update +update the contact when it exists %(boolean, default false%)", r.out)
    assert.matches("Scopes: contacts.readonly contacts.write locations/customFields.readonly", r.out)
    assert.matches("Writes: yes", r.out)
    assert.matches("Writes: no", ghlua({ "run", EX .. "pipeline_report.lua", "--help" }).out)
  end)

  it("validates the parameters before anything runs", function()
    clear(s)
    local r = ghlua { "run", EX .. "create_contact_by_key.lua", "--yes" }
    assert.are.equal(2, r.code)
    assert.matches("needs %-%-param email=VALUE", r.err)
    r = ghlua { "run", EX .. "create_contact_by_key.lua", "--param", "email=a@b.c", "--param", "colour=red", "--yes" }
    assert.are.equal(2, r.code)
    assert.matches("has no parameter 'colour'", r.err)
    assert.matches("its parameters: email, fields", r.err)
    r = ghlua { "run", EX .. "bulk_tag.lua", "--param", "tag=x", "--param", "max=lots", "--yes" }
    assert.are.equal(2, r.code)
    assert.matches("max needs an integer", r.err)
    r = ghlua { "run", EX .. "bulk_tag.lua", "--param", "tag", "--yes" }
    assert.are.equal(2, r.code)
    assert.matches("NAME=VALUE", r.err)
    assert.are.equal(0, #log(s))
  end)

  it("dry run: performs the reads, sends zero writes, prints the plan", function()
    clear(s)
    local r = ghlua { "run", EX .. "create_contact_by_key.lua", "--param", "email=dry@example.com",
                      "--param", "fields=budget=900,lead_source=ads", "--dry-run" }
    assert.are.equal(0, r.code, r.err)
    assert.matches("dry run: 1 write planned, nothing was sent", r.out)
    assert.matches("1%. POST +/contacts/", r.out)
    assert.matches('"email":"dry@example.com"', r.out)
    assert.matches('"field_value":900', r.out)
    assert.are.equal(0, writes(s))
    assert.are.equal(1, #log(s, { method = "GET", path = "/locations/" .. s.location .. "/customFields" }))
    -- a bigger one: the search runs, the 12 tag writes do not
    clear(s)
    r = ghlua { "run", EX .. "bulk_tag.lua", "--param", "tag=dry-tag", "--dry-run" }
    assert.are.equal(0, r.code, r.err)
    assert.matches("12 contacts matched, would tag 12 'dry%-tag'", r.out)
    assert.is_nil(r.out:find("12 tagged", 1, true))
    assert.matches("dry run: 13 writes planned", r.out)
    assert.is_true(#log(s, { method = "POST", path = "/contacts/search" }) >= 1)
    assert.are.equal(0, writes(s))
  end)

  it("dry run: redacts secrets in the plan", function()
    local path = file("secret.lua", [[
      recipe { name = "secret", writes = true, scopes = { "contacts.write" } }
      return function(p, client)
        client:post("/contacts/", { url = "https://example.com", apiToken = "sk_live_0123456789abcdefWXYZ",
                                 nested = { password = "hunter2-is-not-a-good-one-9876" } })
      end
    ]])
    local r = ghlua { "run", path, "--dry-run" }
    assert.are.equal(0, r.code, r.err)
    assert.is_nil(r.out:find("sk_live_0123456789abcdef", 1, true))
    assert.is_nil(r.out:find("hunter2", 1, true))
    assert.matches("…WXYZ", r.out)
    assert.matches("…9876", r.out)
    assert.matches("https://example.com", r.out, 1, true)
  end)

  it("refuses a writing recipe without a terminal, naming --yes, before sending anything", function()
    clear(s)
    local r = ghlua { "run", EX .. "create_contact_by_key.lua", "--param", "email=notty@example.com" }
    assert.are.equal(2, r.code)
    assert.matches("no terminal to confirm", r.err)
    assert.matches("%-%-yes", r.err)
    assert.are.equal(0, #log(s))
    -- a recipe that only reads needs no confirmation
    r = ghlua { "run", EX .. "pipeline_report.lua" }
    assert.are.equal(0, r.code, r.err)
  end)

  it("asks on a terminal, showing the plan, and sends only after yes", function()
    local function on_tty(answer, email)
      local parts = { "env" }
      for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. run.quote(v) end
      for _, a in ipairs { os.getenv("GHLUA"), "run", EX .. "create_contact_by_key.lua", "--param", "email=" .. email } do
        parts[#parts + 1] = run.quote(a)
      end
      return run.sh("script -qec " .. run.quote(table.concat(parts, " ")) .. " /dev/null", { stdin = answer .. "\n" })
    end
    clear(s)
    local r = on_tty("n", "tty-no@example.com")
    assert.are.equal(1, r.code, r.out)
    assert.matches("1%. POST +/contacts/", r.out)
    assert.matches("send this write%? %[y/N%]", r.out)
    assert.matches("nothing was sent", r.out)
    assert.is_nil(r.out:find("created contact", 1, true))
    assert.are.equal(0, writes(s))
    r = on_tty("y", "tty-yes@example.com")
    assert.are.equal(0, r.code, r.out)
    assert.matches("created contact %w+", r.out)
    assert.are.equal(1, writes(s))
  end)

  it("asks on a terminal before a run whose only write is a file, and writes it after yes", function()
    local path = file("file_only.lua", [[
      recipe { name = "file_only", writes = true, scopes = { "contacts.readonly" },
               params = { out = { type = "output_file" } } }
      return function(p, client)
        ghl.csv.write(p.out, { { a = 1 } })
        print(client.dry_run and "would write it" or "wrote it")
      end
    ]])
    local function on_tty(answer)
      local parts = { "cd", run.quote(dir), "&&", "env" }
      for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. run.quote(v) end
      for _, a in ipairs { os.getenv("GHLUA"), "run", path, "--param", "out=file_only.csv" } do
        parts[#parts + 1] = run.quote(a)
      end
      return run.sh("script -qec " .. run.quote(table.concat(parts, " ")) .. " /dev/null", { stdin = answer .. "\n" })
    end
    local r = on_tty("n")
    assert.are.equal(1, r.code, r.out)
    assert.matches("file   file_only.csv: 1 row, not written", r.out)
    assert.matches("write this file%? %[y/N%]", r.out)
    assert.is_nil(io.open(dir .. "/file_only.csv"))
    r = on_tty("y")
    assert.are.equal(0, r.code, r.out)
    assert.matches("wrote it", r.out)
    assert.is_nil(r.out:find("would write it", 1, true))
    assert.are.equal("a\n1\n", run.slurp(dir .. "/file_only.csv"))
  end)

  it("runs a sandboxed recipe without io, and with --trust", function()
    local path = file("io.lua", [[
      recipe { name = "uses_io", writes = false }
      return function() return io.open("/etc/hostname") and "opened" end
    ]])
    local r = ghlua { "run", path }
    assert.are.equal(1, r.code)
    assert.matches("global 'io'", r.err)
    r = ghlua { "run", path, "--trust" }
    assert.are.same({ 0, "opened\n" }, { r.code, r.out }, r.err)
  end)

  it("refuses --all-locations with GHL_TOKEN", function()
    local r = ghlua { "run", EX .. "pipeline_report.lua", "--all-locations" }
    assert.are.equal(2, r.code)
    assert.matches("agency login", r.err)
  end)

  it("checks --concurrency: with --all-locations, a whole number of 1 or more", function()
    local r = ghlua { "run", EX .. "pipeline_report.lua", "--concurrency", "8" }
    assert.are.equal(2, r.code)
    assert.matches("^ghlua: %-%-concurrency goes with %-%-all%-locations", r.err)
    for _, bad in ipairs { "0", "2.5", "-3" } do
      r = ghlua { "run", EX .. "pipeline_report.lua", "--all-locations", "--concurrency", bad }
      assert.are.equal(2, r.code, bad)
      assert.matches("^ghlua: %-%-concurrency takes a whole number of locations at a time, 1 or more", r.err)
    end
  end)
end)

describe("ghlua run with the token store", function()
  it("checks the granted scopes against the manifest and names the missing ones", function()
    local o = oauth.start { "--auto-approve" }
    finally(o.stop)
    o.add_app("contacts.readonly locations/customFields.readonly")
    local l = o.login()
    assert.are.equal(0, l.code, l.err)
    clear(o.sim)
    local r = o.ghlua { "run", EX .. "create_contact_by_key.lua", "--param", "email=a@example.com", "--yes" }
    assert.are.equal(1, r.code)
    assert.matches("create_contact_by_key needs scopes the token was not granted: contacts.write", r.err)
    assert.matches("ghlua auth login %-%-scopes", r.err)
    assert.are.equal(0, #log(o.sim))
    r = o.ghlua { "run", EX .. "export_contacts_csv.lua", "--param", "file=" .. dir .. "/x.csv", "--trust" }
    assert.are.equal(0, r.code, r.err)
    assert.matches("wrote 0 contacts", r.out)
  end)

  it("runs once per location with --all-locations: a header and the output per location, then a summary", function()
    local a = agency.start(3, "opportunities.readonly")
    finally(a.stop)
    local r = a.ghlua { "run", EX .. "pipeline_report.lua", "--all-locations", "--concurrency", "2" }
    assert.are.equal(0, r.code, r.err)
    -- each location's header, then its own output (the recipe's prints)
    local seen = {}
    for n, name, id, rest in r.out:gmatch("== %[(%d)/4%] ([^\n]-) %((%w+)%): (ok, 2 requests, [%d.]+s)\n") do
      seen[#seen + 1] = { n = tonumber(n), name = name, id = id, rest = rest }
    end
    assert.are.equal(4, #seen)
    local names = {}
    for _, l in ipairs(a.locations) do names[l.id] = l.name end
    for i, h in ipairs(seen) do
      assert.are.equal(i, h.n)
      assert.are.equal(names[h.id], h.name)
      names[h.id] = nil
    end
    assert.is_nil(next(names))
    assert.matches("^4 locations in [%d.]+s: 4 ok, 0 failed, 0 skipped\n$", r.out:match("[^\n]*\n$"))
    assert.matches("^Sales Pipeline: 0 opportunities", select(2, r.out:match("(== %[1/4%][^\n]*\n)([^\n]*)")))
    -- one failing location: its header says so, the summary lists it, exit 1
    a.chaos { { method = "GET", path = "/opportunities/pipelines", times = 1, status = 400, message = "broken" } }
    r = a.ghlua { "run", EX .. "pipeline_report.lua", "--all-locations", "--concurrency", "1" }
    assert.are.equal(1, r.code)
    local id = r.out:match("== %[1/4%] [^\n]- %((%w+)%): FAILED after [%d.]+s: GET /opportunities/pipelines[^\n]*broken")
    assert.truthy(id, r.out)
    assert.matches("\nfailed %(1%):\n  " .. id .. " %([^)]+%): GET /opportunities/pipelines[^\n]*broken[^\n]*\n"
      .. "4 locations in [%d.]+s: 3 ok, 1 failed, 0 skipped\n$", r.out)
    a.chaos { { method = "GET", path = "/opportunities/pipelines", times = 1, status = 400, message = "broken" } }
    r = a.ghlua { "run", EX .. "pipeline_report.lua", "--all-locations", "--json" }
    assert.are.equal(1, r.code)
    local rep = cjson.decode(r.out)
    assert.are.same({ 4, 3, 1 }, { rep.total, rep.ok, rep.failed })
    assert.is_number(rep.seconds)
    local bad
    for _, e in ipairs(rep.locations) do if not e.ok then bad = e end end
    assert.matches("broken", bad.error)
    -- with --json the headers and the summary go to stderr
    assert.matches("4 locations in [%d.]+s: 3 ok, 1 failed, 0 skipped\n$", r.err)
    -- the agency token lacks contacts.readonly: named before any location runs
    r = a.ghlua { "run", EX .. "export_contacts_csv.lua", "--all-locations" }
    assert.are.equal(1, r.code)
    assert.matches("not granted: contacts.readonly", r.err)
  end)
end)
