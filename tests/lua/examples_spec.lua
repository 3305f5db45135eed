-- Every example in examples/ runs against the simulator and does what its
-- header says: the recipes through `ghlua run` with a token (each under
-- --dry-run first, whose "would ..." summary must agree with what the real
-- run then does, and which sends no write), the agency recipes with
-- --all-locations and an agency login in a private store, the plain
-- script in examples/scripts/ with `ghlua FILE`; and the CSV export
-- imports back cleanly, into a fresh location and into the same one.
local sim = require "support.sim"
local run = require "support.run"
local agency = require "support.agency"
local csv = require "ghl.csv"
local http = require "ghl.http"
local cjson = require "cjson"

local SRC = os.getenv("GHLUA_SRC") or "."
local EX = SRC .. "/examples/"
local RECIPES = { "create_contact_by_key", "import_contacts_csv", "export_contacts_csv", "bulk_tag",
  "agency_inventory", "export_custom_fields", "sync_custom_fields", "pipeline_report" }
local SCRIPTS = { "scripts/refresh_all" }

local dir
setup(function()
  dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. run.quote(dir)))
end)
teardown(function() os.execute("rm -rf " .. run.quote(dir)) end)

local function write(name, text)
  local f = assert(io.open(dir .. "/" .. name, "wb"))
  f:write(text)
  f:close()
end

-- Run ghlua in the scratch directory (the sandbox's working directory).
local function ghlua_in_dir(args, env)
  local parts = { "cd", run.quote(dir), "&&", "env" }
  for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. run.quote(v) end
  parts[#parts + 1] = run.quote(os.getenv("GHLUA"))
  for _, a in ipairs(args) do parts[#parts + 1] = run.quote(a) end
  return run.sh(table.concat(parts, " "))
end

local function log(url, q)
  return assert(assert(http.request { url = url .. "/__sim/requests", query = q }):json()).requests
end

local function writes(url)
  local n = 0
  for _, r in ipairs(log(url)) do
    if r.method ~= "GET" and not r.path:find("/search$") and not r.path:find("^/oauth/") then n = n + 1 end
  end
  return n
end

it("documents every example at its top, with how to run it", function()
  local listed = {}
  for _, name in ipairs(RECIPES) do listed[name .. ".lua"] = true end
  for _, name in ipairs(SCRIPTS) do listed[name .. ".lua"] = true end
  listed["first.lua"] = true   -- the README's first script
  -- every file is listed here, so none goes untested
  local p = io.popen("cd " .. run.quote(EX) .. " && find . -name '*.lua' | sed 's|^./||' | sort")
  for f in p:lines() do assert.is_true(listed[f], f .. " is not in this spec's lists") end
  p:close()
  for _, name in ipairs(RECIPES) do
    local text = run.slurp(EX .. name .. ".lua")
    assert.matches("^%-%- " .. name .. "%.lua: %S", text, nil, name)
    local header = text:match("^(.-)\n[^%-]")
    assert.matches("\n%-%-%s+ghlua run examples/" .. name .. "%.lua", header, nil, name)
  end
  for _, name in ipairs(SCRIPTS) do
    local text = run.slurp(EX .. name .. ".lua")
    assert.matches("^%-%- " .. name:match("[^/]+$") .. "%.lua: %S", text, nil, name)
    assert.matches("\n%-%-%s+ghlua examples/" .. name .. "%.lua", text:match("^(.-)\n[^%-]"), nil, name)
  end
end)

it("gives each recipe's own help with ghlua run RECIPE --help, and refuses each script in one line", function()
  for _, name in ipairs(RECIPES) do
    local r = run.ghlua { "run", EX .. name .. ".lua", "--help" }
    assert.are.equal(0, r.code, name .. ": " .. r.err)
    assert.matches("^" .. name .. ": %S", r.out)
    assert.matches("\nusage: ghlua run ", r.out)
    assert.matches("\nScopes: %S", r.out)
    assert.matches("\nWrites: %S", r.out)
    assert.are.equal("", r.err)
  end
  for _, name in ipairs { "first", "scripts/refresh_all" } do
    for _, extra in ipairs { {}, { "--help" } } do
      local r = run.ghlua { "run", EX .. name .. ".lua", table.unpack(extra) }
      assert.are.equal(2, r.code, name)
      assert.are.equal("", r.out)
      assert.matches("^ghlua: [^\n]*" .. name:gsub("%p", "%%%0") .. "%.lua is not a recipe[^\n]*"
        .. "run it as a script: ghlua [^\n]*" .. name:gsub("%p", "%%%0") .. "%.lua\n$", r.err)
    end
  end
end)

describe("the recipe examples", function()
  local s, env
  setup(function()
    s = sim.start { "--contacts", "25", "--opportunities", "15" }
    env = { GHL_TOKEN = s.token, GHL_LOCATION_ID = s.location, GHLUA_API_BASE = s.url, GHLUA_HOME = dir .. "/home",
            no_proxy = sim.NO_PROXY, NO_PROXY = sim.NO_PROXY }
  end)
  teardown(function() s.stop() end)

  local function api(method, path, body)
    local resp = assert(http.request { method = method, url = s.url .. path, headers = s.headers(), json = body })
    return assert(resp:json())
  end

  local function field_ids()
    local ids = {}
    for _, f in ipairs(api("GET", "/locations/" .. s.location .. "/customFields").customFields) do
      ids[f.fieldKey] = f.id
    end
    return ids
  end

  local function contact_by_email(email)
    local c = api("GET", "/contacts/search/duplicate?locationId=" .. s.location .. "&email=" .. email).contact
    if c == cjson.null then return nil end
    local values = {}
    for _, f in ipairs(c.customFields) do values[f.id] = f.value end
    c.values = values
    return c
  end

  -- The result ghlua run printed (the line of JSON).
  local function result(out)
    local line = out:match("\n({[^\n]*})\n") or out:match("^({[^\n]*})\n")
    return cjson.decode((assert(line, out)))
  end

  -- A dry run, then the same run for real: what the dry run said it
  -- would do is what the real run did, and the dry run sent no write.
  local function dry_then_real(args)
    assert(http.request { method = "DELETE", url = s.url .. "/__sim/requests" })
    local argv = { "run" }
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    argv[#argv + 1] = "--dry-run"
    local dry = ghlua_in_dir(argv, env)
    assert.are.equal(0, dry.code, dry.err)
    assert.are.equal(0, writes(s.url), "the dry run sent a write")
    -- never counted as done: no "created contact", "2 created", "3 tagged"
    for line in dry.out:gmatch("[^\n]+") do
      for _, done in ipairs { "^created ", "^updated ", "^wrote ", "%d+ created", "%d+ updated", "%d+ tagged" } do
        assert.is_nil(line:find(done), "the dry run said: " .. line)
      end
    end
    argv[#argv] = "--yes"
    local real = ghlua_in_dir(argv, env)
    assert.are.equal(0, real.code, real.err)
    return dry, real
  end

  it("create_contact_by_key.lua creates the contact with its custom fields by id", function()
    local dry, r = dry_then_real { EX .. "create_contact_by_key.lua", "--param", "email=ex1@example.com",
      "--param", "first_name=Ada", "--param", "fields=budget=4200,lead_source=webinar" }
    assert.matches("^would create a contact for ex1@example.com\n  budget +4200\n", dry.out)
    assert.are.same({ dry_run = true, would_create = true }, result(dry.out))
    assert.matches("dry run: 1 write planned, nothing was sent\n  1%. POST +/contacts/", dry.out)
    assert.matches("^created contact %w+\n  budget +4200", r.out)
    local ids, c = field_ids(), contact_by_email("ex1@example.com")
    assert.are.equal(4200, math.tointeger(c.values[ids["contact.budget"]]))
    assert.are.equal("webinar", c.values[ids["contact.lead_source"]])
    -- the contact exists now: the dry run finds it, as the real run does
    dry, r = dry_then_real { EX .. "create_contact_by_key.lua", "--param", "email=ex1@example.com",
      "--param", "fields=budget=5" }
    assert.matches("^contact " .. c.id .. " already has this email", dry.out)
    assert.matches("^contact " .. c.id .. " already has this email", r.out)
    dry, r = dry_then_real { EX .. "create_contact_by_key.lua", "--param", "email=ex1@example.com",
      "--param", "fields=budget=5", "--param", "update=true" }
    assert.matches("^would update contact " .. c.id .. "\n", dry.out)
    assert.matches("^updated contact " .. c.id .. "\n", r.out)
    assert.are.equal(5, math.tointeger(contact_by_email("ex1@example.com").values[ids["contact.budget"]]))
  end)

  it("import_contacts_csv.lua upserts rows, custom field columns by key, idempotently", function()
    write("in.csv", 'email,firstName,companyName,budget,lead_source,tags\r\n' ..
      'imp1@example.com,Ima,"Acme, Inc.",100,"ads",a;b\r\n' ..
      'imp2@example.com,"Two ""Quoted""",,250,,\r\n')
    local dry, r = dry_then_real { EX .. "import_contacts_csv.lua", "--param", "file=in.csv" }
    assert.matches("dry run: 2 rows: would create 2, would update 0\n", dry.out, 1, true)
    assert.matches("dry run: 2 writes planned", dry.out)
    assert.matches("^2 rows: 2 created, 0 updated\n", r.out)
    local ids = field_ids()
    local c1, c2 = contact_by_email("imp1@example.com"), contact_by_email("imp2@example.com")
    assert.are.same({ "Acme, Inc.", 100, "ads", { "a", "b" } }, { c1.companyName,
      math.tointeger(c1.values[ids["contact.budget"]]), c1.values[ids["contact.lead_source"]], c1.tags })
    assert.are.same({ 'two "quoted"', 250 }, { c2.firstName:lower(), math.tointeger(c2.values[ids["contact.budget"]]) })
    dry, r = dry_then_real { EX .. "import_contacts_csv.lua", "--param", "file=in.csv" }
    assert.matches("dry run: 2 rows: would create 0, would update 2\n", dry.out, 1, true)
    assert.matches("^2 rows: 0 created, 2 updated\n", r.out)
    -- a file naming one new contact twice (by email, then by phone): one
    -- create and one update, in the dry run as in the real run
    write("twice.csv", "email,phone,firstName\ntw@example.com,+15550101010,One\ntw@example.com,,Two\n" ..
      ",+15550101010,Three\nimp1@example.com,,Ima\n")
    dry, r = dry_then_real { EX .. "import_contacts_csv.lua", "--param", "file=twice.csv", "--param", "tag=batch" }
    assert.matches("dry run: 4 rows: would create 1, would update 3\n", dry.out, 1, true)
    assert.matches("^4 rows: 1 created, 3 updated\n", r.out)
    assert.are.equal("three", contact_by_email("tw@example.com").firstName:lower())
    -- tag= adds the tag without dropping the contact's others
    assert.are.same({ "a", "b", "batch" }, contact_by_email("imp1@example.com").tags)
    -- an unknown column and a malformed row stop it before any write
    assert(http.request { method = "DELETE", url = s.url .. "/__sim/requests" })
    write("bad_col.csv", "email,shoe_size\nx@example.com,44\n")
    r = ghlua_in_dir({ "run", EX .. "import_contacts_csv.lua", "--param", "file=bad_col.csv", "--yes" }, env)
    assert.are.equal(1, r.code)
    assert.matches("unknown contact custom field key 'shoe_size'", r.err)
    assert.matches("budget, favorite_color, lead_source", r.err)
    write("bad_row.csv", 'email,budget\nok@example.com,1\n"broken@example.com,2\n')
    r = ghlua_in_dir({ "run", EX .. "import_contacts_csv.lua", "--param", "file=bad_row.csv", "--yes" }, env)
    assert.are.equal(1, r.code)
    assert.matches("bad_row%.csv: line 3", r.err)
    write("bad_dnd.csv", 'email,dnd\nok@example.com,true\nno@example.com,maybe\n')
    r = ghlua_in_dir({ "run", EX .. "import_contacts_csv.lua", "--param", "file=bad_dnd.csv", "--yes" }, env)
    assert.are.equal(1, r.code)
    assert.matches("line 3: dnd takes true or false, got 'maybe'", r.err)
    assert.are.equal(0, writes(s.url))
    -- the file the user names is the one it may read: never one in a
    -- dot-directory, nor a symlink
    assert(os.execute("mkdir -p " .. run.quote(dir .. "/.hidden")))
    write(".hidden/in.csv", "email\nhid@example.com\n")
    r = ghlua_in_dir({ "run", EX .. "import_contacts_csv.lua", "--param", "file=.hidden/in.csv", "--yes" }, env)
    assert.are.equal(1, r.code)
    assert.matches("dot%-directory", r.err)
    assert(os.execute("ln -s in.csv " .. run.quote(dir .. "/link.csv")))
    r = ghlua_in_dir({ "run", EX .. "import_contacts_csv.lua", "--param", "file=link.csv", "--yes" }, env)
    assert.are.equal(1, r.code)
    assert.matches("symbolic link", r.err)
    assert.are.equal(0, writes(s.url))
  end)

  it("export_contacts_csv.lua writes every contact with custom fields as key columns", function()
    local dry = ghlua_in_dir({ "run", EX .. "export_contacts_csv.lua", "--param", "file=out.csv", "--dry-run" }, env)
    assert.are.equal(0, dry.code, dry.err)
    local total = math.tointeger(api("POST", "/contacts/search", { locationId = s.location, pageLimit = 1 }).total)
    assert.matches("^dry run: would write " .. total .. " contacts to out.csv %(3 custom field columns%); no file written\n",
      dry.out)
    assert.matches("file   out.csv: " .. total .. " rows, not written", dry.out)
    assert.is_nil(io.open(dir .. "/out.csv"))
    local r = ghlua_in_dir({ "run", EX .. "export_contacts_csv.lua", "--param", "file=out.csv" }, env)
    assert.are.equal(0, r.code, r.err)
    local rows = {}
    for row in csv.read(dir .. "/out.csv") do rows[#rows + 1] = row end
    assert.are.equal(total, #rows)
    assert.matches("^wrote " .. total .. " contacts to out.csv %(3 custom field columns%)\n", r.out)
    local header = run.slurp(dir .. "/out.csv"):match("^[^\n]+")
    assert.matches("^id,firstName,lastName,email,phone,companyName,", header)
    assert.matches(",dateAdded,dateUpdated,tags,budget,favorite_color,lead_source$", header)
    local found
    for _, row in ipairs(rows) do if row.email == "imp1@example.com" then found = row end end
    assert.are.same({ "100", "ads", "a;b;batch" }, { found.budget, found.lead_source, found.tags })
  end)

  it("bulk_tag.lua tags the contacts a search matches, once", function()
    local dry, r = dry_then_real { EX .. "bulk_tag.lua", "--param", "query=imp", "--param", "tag=Imported" }
    assert.matches("^dry run: 2 contacts matched, would tag 2 'imported' %(a new tag%), 0 had it already\n", dry.out)
    assert.are.same({ matched = 2, would_tag = 2, dry_run = true }, result(dry.out))
    assert.matches("dry run: 3 writes planned", dry.out)
    assert.matches("^2 contacts matched, 2 tagged 'imported', 0 had it already", r.out)
    assert.are.same({ "a", "b", "batch", "imported" }, contact_by_email("imp1@example.com").tags)
    dry, r = dry_then_real { EX .. "bulk_tag.lua", "--param", "query=imp", "--param", "tag=imported" }
    assert.matches("^dry run: 2 contacts matched, would tag 0 'imported', 2 had it already", dry.out)
    assert.matches("dry run: 0 writes planned", dry.out)
    assert.matches("^2 contacts matched, 0 tagged", r.out)
    dry, r = dry_then_real { EX .. "bulk_tag.lua", "--param", "tag=vip-again", "--param", "having=vip" }
    assert.matches("^dry run: 2 contacts matched, would tag 2", dry.out)
    assert.matches("^2 contacts matched, 2 tagged", r.out)
  end)

  it("pipeline_report.lua totals the opportunities by stage", function()
    local r = ghlua_in_dir({ "run", EX .. "pipeline_report.lua", "--json" }, env)
    assert.are.equal(0, r.code, r.err)
    local rep = cjson.decode(r.out)
    assert.are.equal(15, rep.count)
    local count, value = 0, 0
    for _, p in ipairs(rep.pipelines) do
      local pc = 0
      for _, st in ipairs(p.stages) do pc = pc + st.count end
      assert.are.equal(p.count, pc)
      count, value = count + p.count, value + p.value
    end
    assert.are.same({ 15, rep.value }, { count, value })
    assert.matches("total: 15 opportunities", r.err)
    r = ghlua_in_dir({ "run", EX .. "pipeline_report.lua", "--param", "status=won", "--json" }, env)
    assert.is_true(cjson.decode(r.out).count < 15)
    -- reads only: its dry run is the same report, with no write planned
    r = ghlua_in_dir({ "run", EX .. "pipeline_report.lua", "--dry-run" }, env)
    assert.are.equal(0, r.code, r.err)
    assert.matches("total: 15 opportunities", r.out)
    assert.matches("dry run: 0 writes planned, nothing was sent\n$", r.out)
  end)
end)

describe("the contacts CSV", function()
  local a, b
  setup(function()
    a = sim.start { "--contacts", "12" }
    b = sim.start {}
  end)
  teardown(function()
    a.stop()
    b.stop()
  end)

  local function env_of(s)
    return { GHL_TOKEN = s.token, GHL_LOCATION_ID = s.location, GHLUA_API_BASE = s.url,
             GHLUA_HOME = dir .. "/home-rt", no_proxy = sim.NO_PROXY, NO_PROXY = sim.NO_PROXY }
  end

  local function export(s, file)
    local r = ghlua_in_dir({ "run", EX .. "export_contacts_csv.lua", "--param", "file=" .. file, "--force" }, env_of(s))
    assert.are.equal(0, r.code, r.err)
    local rows, header = {}, run.slurp(dir .. "/" .. file):match("^[^\n]+")
    for row in csv.read(dir .. "/" .. file) do rows[row.email] = row end
    return rows, header
  end

  local function import(s, file, dry)
    local r = ghlua_in_dir({ "run", EX .. "import_contacts_csv.lua", "--param", "file=" .. file,
      dry and "--dry-run" or "--yes" }, env_of(s))
    assert.are.equal(0, r.code, r.err)
    return r
  end

  -- rows equal but for the columns HighLevel sets
  local function same_rows(x, y)
    local n = 0
    for email, row in pairs(x) do
      n = n + 1
      local other = assert(y[email], "missing after the import: " .. email)
      for col, v in pairs(row) do
        if col ~= "id" and col ~= "dateAdded" and col ~= "dateUpdated" then
          assert.are.equal(v, other[col], email .. " " .. col)
        end
      end
    end
    local m = 0
    for _ in pairs(y) do m = m + 1 end
    assert.are.equal(n, m)
    return n
  end

  it("imports what the export wrote: into a fresh location (creates), then into the same one (updates)", function()
    -- a contact with every exported field and every kind of custom value
    local resp = assert(http.request { method = "POST", url = a.url .. "/contacts/", headers = a.headers(), json = {
      locationId = a.location, email = "rt1@example.com", firstName = "Round", lastName = "Trip",
      phone = "+15557770001", companyName = 'Acme, "Quoted" Inc.', address1 = "1 Main St", city = "Springfield",
      state = "IL", postalCode = "62701", country = "US", website = "https://example.com",
      timezone = "America/Chicago", dnd = true, source = "csv test", tags = { "alpha", "beta gamma" },
      customFields = { { key = "budget", field_value = 4200.5 }, { key = "favorite_color", field_value = "Blue" },
        { key = "lead_source", field_value = "line one\nline two, with a comma" } } } })
    assert.are.equal(201, resp.status, resp.body)
    local original, header = export(a, "a.csv")
    assert.are.equal(13, (function() local n = 0 for _ in pairs(original) do n = n + 1 end return n end)())
    local rt = original["rt1@example.com"]
    assert.are.same({ "4200.5", "Blue", "line one\nline two, with a comma", "true", "alpha;beta gamma" },
      { rt.budget, rt.favorite_color, rt.lead_source, rt.dnd, rt.tags })

    -- into a fresh location: a dry run that says it would create them all
    -- and writes nothing, then the import that does
    local r = import(b, "a.csv", true)
    assert.matches("^not imported: dateAdded, dateUpdated, id %(set by HighLevel; contacts are matched by email, then phone%)\n",
      r.out)
    assert.matches("dry run: 13 rows: would create 13, would update 0\n", r.out, 1, true)
    assert.are.equal(0, #assert(assert(http.request { url = b.url .. "/__sim/requests",
      query = { method = "POST", path = "/contacts/upsert" } }):json()).requests)
    r = import(b, "a.csv")
    assert.matches("\n13 rows: 13 created, 0 updated\n", r.out)
    local copy, header_b = export(b, "b.csv")
    assert.are.equal(header, header_b)
    assert.are.equal(13, same_rows(original, copy))
    for email, row in pairs(copy) do assert.are_not.equal(original[email].id, row.id) end

    -- into the same location: every row an update, and nothing changes
    r = import(a, "a.csv", true)
    assert.matches("dry run: 13 rows: would create 0, would update 13\n", r.out, 1, true)
    r = import(a, "a.csv")
    assert.matches("\n13 rows: 0 created, 13 updated\n", r.out)
    local again = export(a, "a2.csv")
    assert.are.equal(13, same_rows(original, again))
    for email, row in pairs(again) do
      assert.are.same({ original[email].id, original[email].dateAdded }, { row.id, row.dateAdded })
    end
  end)
end)

describe("the agency examples", function()
  local a
  setup(function()
    a = agency.start(3, "contacts.readonly opportunities.readonly locations/customFields.readonly " ..
      "locations/customFields.write locations/customValues.readonly locations/customValues.write",
      { "--contacts", "9", "--opportunities", "5" })
  end)
  teardown(function() a.stop() end)

  local function env()
    local e = {}
    for k, v in pairs(a.env) do e[k] = v end
    return e
  end

  local function results(out)
    local by_id = {}
    for _, e in ipairs(cjson.decode(out).locations) do by_id[e.id] = e end
    return by_id
  end

  it("agency_inventory.lua counts every location's contacts and opportunities", function()
    local r = ghlua_in_dir({ "run", EX .. "agency_inventory.lua", "--all-locations", "--concurrency", "3" }, env())
    assert.are.equal(0, r.code, r.err)
    assert.matches("\n4 locations in [%d.]+s: 4 ok, 0 failed, 0 skipped\n$", r.out)
    local first = a.locations[1]
    assert.matches("== %[%d/4%] " .. first.name:gsub("%p", "%%%0") .. " %(" .. first.id .. "%): ok[^\n]*\n"
      .. "9 contacts, 5 opportunities\n", r.out)
    assert.are.equal(3, select(2, r.out:gsub("\n0 contacts, 0 opportunities\n", "")))
    r = ghlua_in_dir({ "run", EX .. "agency_inventory.lua", "--all-locations", "--json" }, env())
    assert.are.equal(0, r.code, r.err)
    local by_id = results(r.out)
    assert.are.same({ contacts = 9, opportunities = 5 }, by_id[first.id].result)
    for i = 2, 4 do assert.are.same({ contacts = 0, opportunities = 0 }, by_id[a.locations[i].id].result) end
    -- one location
    r = ghlua_in_dir({ "run", EX .. "agency_inventory.lua", "--location", first.id }, env())
    assert.are.equal(0, r.code, r.err)
    assert.matches("^9 contacts, 5 opportunities\n", r.out)
  end)

  it("sync_custom_fields.lua copies a template's fields and values everywhere, and a second run writes nothing", function()
    local template = a.locations[1].id
    local r = ghlua_in_dir({ "run", EX .. "export_custom_fields.lua", "--location", template,
      "--param", "file=template.csv", "--dry-run" }, env())
    assert.are.equal(0, r.code, r.err)
    assert.matches("^dry run: would write 4 custom fields and 1 custom values to template.csv\n", r.out)
    assert.is_nil(io.open(dir .. "/template.csv"))
    r = ghlua_in_dir({ "run", EX .. "export_custom_fields.lua", "--location", template,
      "--param", "file=template.csv" }, env())
    assert.are.equal(0, r.code, r.err)
    assert.matches("^wrote 4 custom fields and 1 custom values to template.csv\n", r.out)
    local rows = {}
    for row in csv.read(dir .. "/template.csv") do rows[#rows + 1] = row end
    assert.are.equal(5, #rows)
    local color
    for _, row in ipairs(rows) do if row.key == "contact.favorite_color" then color = row end end
    assert.are.same({ "field", "SINGLE_OPTIONS", "Red;Green;Blue" }, { color.kind, color.dataType, color.options })

    local before = writes(a.sim.url)
    r = ghlua_in_dir({ "run", EX .. "sync_custom_fields.lua", "--param", "from=template.csv", "--all-locations",
      "--dry-run" }, env())
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(before, writes(a.sim.url))
    assert.are.equal(3, select(2, r.out:gsub("\ndry run: would create 4 custom fields and set 1 custom values %(0 already match%)\n", "")))
    assert.matches("\ndry run: would create 0 custom fields and set 0 custom values %(5 already match%)\n", r.out)
    assert.matches("dry run: 15 writes planned, nothing was sent", r.out)

    r = ghlua_in_dir({ "run", EX .. "sync_custom_fields.lua", "--param", "from=template.csv", "--all-locations",
      "--yes" }, env())
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(3, select(2, r.out:gsub("\ncreated 4 custom fields and set 1 custom values %(0 already matched%)\n", "")))
    assert.matches("\ncreated 0 custom fields and set 0 custom values %(5 already matched%)\n", r.out)
    assert.are.equal(before + 15, writes(a.sim.url))
    r = ghlua_in_dir({ "run", EX .. "sync_custom_fields.lua", "--param", "from=template.csv",
      "--location", a.locations[2].id, "--yes" }, env())
    assert.are.equal(0, r.code, r.err)
    assert.matches("^created 0 custom fields and set 0 custom values %(5 already matched%)\n", r.out)
    assert.are.equal(before + 15, writes(a.sim.url))
    -- the copies have the template's keys
    local check = a.lua(([[
      local ghl = require "ghl"
      local keys = {}
      for _, f in ipairs(ghl.custom_fields.list(ghl.client { location = %q })) do keys[#keys + 1] = f.fieldKey end
      table.sort(keys)
      print(table.concat(keys, " "), ghl.custom_values.get(ghl.client { location = %q }, "Company Phone"))
    ]]):format(a.locations[4].id, a.locations[4].id))
    assert.are.equal("contact.budget contact.favorite_color contact.lead_source opportunity.deal_size\t+1 555 010 0000\n",
      check.out, check.err)
    -- a template row it cannot use is named with its line
    write("bad_template.csv", "kind,name,key\nfield,Shoe size,shoe_size\nwidget,x,y\n")
    r = ghlua_in_dir({ "run", EX .. "sync_custom_fields.lua", "--param", "from=bad_template.csv",
      "--location", template, "--yes" }, env())
    assert.are.equal(1, r.code)
    assert.matches("bad_template%.csv: line 3: kind must be field or value, not 'widget'", r.err)
  end)

  it("scripts/refresh_all.lua refreshes every stored token and reports each", function()
    local before = a.stats().oauth
    local r = ghlua_in_dir({ EX .. "scripts/refresh_all.lua" }, env())
    assert.are.equal(0, r.code, r.err)
    assert.matches("5 tokens: 5 refreshed, 0 failed", r.out)
    assert.matches("Company +" .. a.sim.company .. " +refreshed, expires in", r.out)
    for _, l in ipairs(a.locations) do assert.matches("Location +" .. l.id .. " +refreshed", r.out) end
    local after = a.stats().oauth
    assert.are.equal(before.refresh_ok + 5, after.refresh_ok)
    r = ghlua_in_dir({ EX .. "scripts/refresh_all.lua", "--help" }, env())
    assert.are.same({ 0, "usage: ghlua examples/scripts/refresh_all.lua [--app NAME]\n" }, { r.code, r.out })
    r = ghlua_in_dir({ EX .. "scripts/refresh_all.lua", "--bogus" }, env())
    assert.are.equal(2, r.code)
    assert.are.equal(after.refresh_ok, a.stats().oauth.refresh_ok)
  end)
end)
