-- Every example in examples/ runs against the simulator and does what its
-- header says: the recipes through `ghlua run` with a token, the agency
-- scripts with an agency login in a private store.
local sim = require "support.sim"
local run = require "support.run"
local agency = require "support.agency"
local csv = require "ghl.csv"
local http = require "ghl.http"
local cjson = require "cjson"

local SRC = os.getenv("GHLUA_SRC") or "."
local EX = SRC .. "/examples/"
local EXAMPLES = { "create_contact_by_key", "import_contacts_csv", "export_contacts_csv", "bulk_tag",
  "agency_inventory", "sync_custom_fields", "pipeline_report", "refresh_all" }

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
  for _, name in ipairs(EXAMPLES) do
    local text = run.slurp(EX .. name .. ".lua")
    assert.matches("^%-%- " .. name .. "%.lua: %S", text, nil, name)
    local header = text:match("^(.-)\n[^%-]")
    assert.matches("\n%-%-%s+ghlua ", header, nil, name)
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

  it("create_contact_by_key.lua creates the contact with its custom fields by id", function()
    local r = ghlua_in_dir({ "run", EX .. "create_contact_by_key.lua", "--param", "email=ex1@example.com",
      "--param", "first_name=Ada", "--param", "fields=budget=4200,lead_source=webinar", "--yes" }, env)
    assert.are.equal(0, r.code, r.err)
    assert.matches("created contact %w+\n  budget +4200", r.out)
    local ids, c = field_ids(), contact_by_email("ex1@example.com")
    assert.are.equal(4200, math.tointeger(c.values[ids["contact.budget"]]))
    assert.are.equal("webinar", c.values[ids["contact.lead_source"]])
    r = ghlua_in_dir({ "run", EX .. "create_contact_by_key.lua", "--param", "email=ex1@example.com",
      "--param", "fields=budget=5", "--yes" }, env)
    assert.matches("contact " .. c.id .. " already has this email", r.out)
    r = ghlua_in_dir({ "run", EX .. "create_contact_by_key.lua", "--param", "email=ex1@example.com",
      "--param", "fields=budget=5", "--param", "update=true", "--yes" }, env)
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(5, math.tointeger(contact_by_email("ex1@example.com").values[ids["contact.budget"]]))
  end)

  it("import_contacts_csv.lua upserts rows, custom field columns by key, idempotently", function()
    write("in.csv", 'email,firstName,companyName,budget,lead_source,tags\r\n' ..
      'imp1@example.com,Ima,"Acme, Inc.",100,"ads",a;b\r\n' ..
      'imp2@example.com,"Two ""Quoted""",,250,,\r\n')
    local r = ghlua_in_dir({ "run", EX .. "import_contacts_csv.lua", "--param", "file=in.csv", "--yes" }, env)
    assert.are.equal(0, r.code, r.err)
    assert.matches("2 rows: 2 created, 0 updated", r.out)
    local ids = field_ids()
    local c1, c2 = contact_by_email("imp1@example.com"), contact_by_email("imp2@example.com")
    assert.are.same({ "Acme, Inc.", 100, "ads", { "a", "b" } }, { c1.companyName,
      math.tointeger(c1.values[ids["contact.budget"]]), c1.values[ids["contact.lead_source"]], c1.tags })
    assert.are.same({ 'two "quoted"', 250 }, { c2.firstName:lower(), math.tointeger(c2.values[ids["contact.budget"]]) })
    r = ghlua_in_dir({ "run", EX .. "import_contacts_csv.lua", "--param", "file=in.csv", "--yes" }, env)
    assert.matches("2 rows: 0 created, 2 updated", r.out)
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
    local r = ghlua_in_dir({ "run", EX .. "export_contacts_csv.lua", "--param", "file=out.csv" }, env)
    assert.are.equal(0, r.code, r.err)
    local total = math.tointeger(api("POST", "/contacts/search", { locationId = s.location, pageLimit = 1 }).total)
    local rows = {}
    for row in csv.read(dir .. "/out.csv") do rows[#rows + 1] = row end
    assert.are.equal(total, #rows)
    assert.matches("wrote " .. total .. " contacts", r.out)
    local header = run.slurp(dir .. "/out.csv"):match("^[^\n]+")
    assert.matches(",tags,budget,favorite_color,lead_source$", header)
    local found
    for _, row in ipairs(rows) do if row.email == "imp1@example.com" then found = row end end
    assert.are.same({ "100", "ads", "a;b" }, { found.budget, found.lead_source, found.tags })
  end)

  it("bulk_tag.lua tags the contacts a search matches, once", function()
    local r = ghlua_in_dir({ "run", EX .. "bulk_tag.lua", "--param", "query=imp", "--param", "tag=Imported", "--yes" }, env)
    assert.are.equal(0, r.code, r.err)
    assert.matches("2 contacts matched, 2 tagged 'imported', 0 had it already", r.out)
    assert.are.same({ "a", "b", "imported" }, contact_by_email("imp1@example.com").tags)
    r = ghlua_in_dir({ "run", EX .. "bulk_tag.lua", "--param", "query=imp", "--param", "tag=imported", "--yes" }, env)
    assert.matches("2 contacts matched, 0 tagged", r.out)
    r = ghlua_in_dir({ "run", EX .. "bulk_tag.lua", "--param", "tag=vip-again", "--param", "having=vip", "--yes" }, env)
    assert.matches("2 contacts matched, 2 tagged", r.out)
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

  it("agency_inventory.lua counts every location's contacts and opportunities into a CSV", function()
    local r = ghlua_in_dir({ EX .. "agency_inventory.lua", "inv.csv", "--concurrency", "3" }, env())
    assert.are.equal(0, r.code, r.err)
    assert.matches("4 locations %(0 failed%): 9 contacts, 5 opportunities; written to inv.csv", r.out)
    local rows = {}
    for row in csv.read(dir .. "/inv.csv") do rows[#rows + 1] = row end
    assert.are.equal(4, #rows)
    assert.are.same({ a.locations[1].id, "9", "5", "ok" }, { rows[1].location_id, rows[1].contacts, rows[1].opportunities,
      rows[1].status })
    for i = 2, 4 do assert.are.same({ a.locations[i].id, "0", "0" }, { rows[i].location_id, rows[i].contacts, rows[i].opportunities }) end
  end)

  it("sync_custom_fields.lua copies fields and values from the template, and a second run writes nothing", function()
    local template = a.locations[1].id
    local r = ghlua_in_dir({ EX .. "sync_custom_fields.lua", template, "--dry-run" }, env())
    assert.are.equal(0, r.code, r.err)
    assert.matches("would create/set 12 custom fields and 3 custom values", r.out)
    assert.are.equal(0, writes(a.sim.url))
    r = ghlua_in_dir({ EX .. "sync_custom_fields.lua", template }, env())
    assert.are.equal(0, r.code, r.err)
    assert.matches("template " .. template .. ": 4 custom fields, 1 custom values", r.out)
    assert.matches("created/set 12 custom fields and 3 custom values", r.out)
    local n = writes(a.sim.url)
    assert.are.equal(15, n)
    r = ghlua_in_dir({ EX .. "sync_custom_fields.lua", template, "--to", a.locations[2].id .. "," .. a.locations[3].id }, env())
    assert.are.equal(0, r.code, r.err)
    assert.matches("created/set 0 custom fields and 0 custom values", r.out)
    assert.are.equal(n, writes(a.sim.url))
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
  end)

  it("refresh_all.lua refreshes every stored token and reports each", function()
    local before = a.stats().oauth
    local r = ghlua_in_dir({ EX .. "refresh_all.lua" }, env())
    assert.are.equal(0, r.code, r.err)
    assert.matches("5 tokens: 5 refreshed, 0 failed", r.out)
    assert.matches("Company +" .. a.sim.company .. " +refreshed, expires in", r.out)
    for _, l in ipairs(a.locations) do assert.matches("Location +" .. l.id .. " +refreshed", r.out) end
    local after = a.stats().oauth
    assert.are.equal(before.refresh_ok + 5, after.refresh_ok)
  end)
end)
