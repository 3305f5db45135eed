-- ghl.api.ops, the operations table generated from HighLevel's OpenAPI
-- specs by tools/gen_operations.lua: coverage of the specs, Version per
-- family (FACTS §5), template matching, scopes and token types, pagination
-- styles (FACTS §7), required query parameters, completion, and speed (of
-- lookups, and of loading: the table is parsed lazily).
local ops = require "ghl.api.ops"
local run = require "support.run"
local cjson = require "cjson"

local SRC = os.getenv("GHLUA_SRC") or "."
-- The specs beside the repository (/work/main) or beside its worktree's
-- parent (/work/wt/NAME).
local SPECS = SRC .. "/../shared/highlevel/openapi"
local probe = io.open(SPECS .. "/apps/contacts.json")
if probe then probe:close() else SPECS = SRC .. "/../../shared/highlevel/openapi" end

local function spec_files()
  local p = io.popen("find '" .. SPECS .. "/apps' -name '*.json' 2>/dev/null")
  local files = {}
  for f in p:lines() do
    if not f:find("/common/", 1, true) then files[#files + 1] = f end
  end
  p:close()
  table.sort(files)
  return files
end

local function only(method, path, v3)
  local op = ops.match(method, path, v3)
  assert.is_not_nil(op, method .. " " .. path .. " matches nothing")
  return op
end

describe("ghl.api.ops table", function()
  it("has every operation of every spec file", function()
    local per_family = {}
    for _, op in ipairs(ops.all()) do
      per_family[op.family] = (per_family[op.family] or 0) + 1
    end
    local files = spec_files()
    if #files == 0 then
      -- No specs next to the checkout: the counts FACTS §12 gives.
      local n, fams = #ops.all(), 0
      for _ in pairs(per_family) do fams = fams + 1 end
      assert.are.equal(576 + 627, n)
      assert.are.equal(83, fams)
      return
    end
    local total = 0
    for _, file in ipairs(files) do
      local f = assert(io.open(file, "rb"))
      local doc = cjson.decode(f:read("a"))
      f:close()
      local n = 0
      for _, item in pairs(doc.paths or {}) do
        for m in pairs(item) do
          if ({ get = 1, post = 1, put = 1, patch = 1, delete = 1 })[m] then n = n + 1 end
        end
      end
      local family = file:match("([^/]+)%.json$")
      assert.are.equal(n, per_family[family] or 0, family)
      total = total + n
    end
    assert.is_true(#files >= 83)
    assert.is_true(total > 400)
    assert.are.equal(total, #ops.all())
  end)

  it("is what the generator makes from the specs", function()
    if #spec_files() == 0 then return pending("no OpenAPI specs at " .. SPECS) end
    local r = run.ghlua({ SRC .. "/tools/gen_operations.lua", SPECS })
    assert.are.equal("", r.err)
    assert.are.equal(0, r.code)
    assert.are.equal(run.slurp(SRC .. "/lua/ghl/api/operations.lua"), r.out)
  end)

  it("marks v3 rows and keeps v2 and v3 twins apart", function()
    local v2, v3 = only("POST", "/contacts/search"), only("POST", "/contacts/search", true)
    assert.are.same({ false, "contacts", "2021-07-28" }, { v2.v3, v2.family, v2.version })
    assert.are.same({ true, "contacts-v3", "v3" }, { v3.v3, v3.family, v3.version })
    for _, op in ipairs(ops.all()) do
      assert.are.equal(op.v3, op.family:find("%-v3$") ~= nil, op.family)
    end
  end)
end)

describe("ghl.api.ops versions", function()
  it("follows the family table of FACTS §5", function()
    for _, op in ipairs(ops.all()) do
      if op.family == "contacts" or op.family == "opportunities" or op.family == "locations" then
        assert.are.equal("2021-07-28", op.version, op.method .. " " .. op.path)
      elseif op.family == "calendars" then
        assert.are.equal("2021-04-15", op.version, op.method .. " " .. op.path)
      end
    end
    assert.are.equal("2021-07-28", ops.version("GET", "/contacts/abc"))
    assert.are.equal("2021-07-28", ops.version("POST", "/opportunities/search"))
    assert.are.equal("2021-07-28", ops.version("GET", "/locations/loc1/customFields"))
    assert.are.equal("2021-04-15", ops.version("GET", "/calendars/"))
    assert.are.equal("2021-04-15", ops.version("GET", "/calendars/events"))
    assert.are.equal("2021-04-15", ops.version("GET", "/conversations/search"))
    assert.are.equal("2021-04-15", ops.version("POST", "/conversations/messages"))
  end)

  it("gives GET /links/search 2021-04-15 and the other links 2021-07-28", function()
    assert.are.equal("2021-04-15", ops.version("GET", "/links/search?locationId=x"))
    assert.are.equal("2021-07-28", ops.version("GET", "/links/"))
    assert.are.equal("2021-07-28", ops.version("PUT", "/links/abc"))
    assert.are.equal("2021-07-28", ops.version("GET", "/links/id/abc"))
  end)

  it("has no Version and no bearer token for POST /oauth/token", function()
    local op = only("POST", "/oauth/token")
    assert.is_nil(op.version)
    assert.is_false(op.auth)
    assert.are.same({}, op.tokens)
    assert.is_true(only("POST", "/oauth/locationToken").auth)
  end)

  it("falls back to the family default, then the path's family", function()
    -- store.json declares no Version at all
    assert.is_nil(only("GET", "/store/shipping-zone").version)
    assert.are.equal("2021-07-28", ops.version("GET", "/store/shipping-zone"))
    assert.are.equal("v3", ops.version("GET", "/store/shipping-zone", true))
    assert.are.equal("2021-04-15", ops.version("GET", "/calendars/no/such/route/here"))
    assert.are.equal("2021-07-28", ops.version("GET", "/no-such-family"))
    assert.are.equal("v3", ops.version("GET", "/no-such-family", true))
    assert.are.equal("v3", ops.version("GET", "/contacts/abc", true))
  end)
end)

describe("ghl.api.ops.match", function()
  it("fills placeholders and returns the captured values", function()
    local op, params = ops.match("GET", "/contacts/abc123")
    assert.are.equal("/contacts/{contactId}", op.path)
    assert.are.same({ contactId = "abc123" }, params)
    op, params = ops.match("PUT", "/locations/L1/customFields/F9")
    assert.are.equal("/locations/{locationId}/customFields/{id}", op.path)
    assert.are.same({ locationId = "L1", id = "F9" }, params)
    op, params = ops.match("get", "/contacts/c1/tasks/t2")
    assert.are.equal("GET", op.method)
    assert.are.same({ contactId = "c1", taskId = "t2" }, params)
  end)

  it("prefers literal segments over placeholders, earlier ones first", function()
    assert.are.equal("/locations/search", only("GET", "/locations/search").path)
    assert.are.equal("/locations/{locationId}", only("GET", "/locations/searchx").path)
    assert.are.equal("/contacts/search", only("POST", "/contacts/search").path)
    assert.are.equal("/contacts/{contactId}/campaigns/removeAll",
      only("DELETE", "/contacts/c1/campaigns/removeAll").path)
    assert.are.equal("/contacts/{contactId}/campaigns/{campaignId}",
      only("DELETE", "/contacts/c1/campaigns/k9").path)
    -- /contacts/business/{businessId} vs /contacts/{contactId}/tasks
    local op, params = ops.match("GET", "/contacts/business/tasks")
    assert.are.equal("/contacts/business/{businessId}", op.path)
    assert.are.same({ businessId = "tasks" }, params)
    assert.are.equal("/contacts/{contactId}/tasks", only("GET", "/contacts/c1/tasks").path)
  end)

  it("treats a trailing slash as insignificant", function()
    assert.are.equal("/contacts/", only("GET", "/contacts").path)
    assert.are.equal("/contacts/", only("GET", "/contacts/").path)
    local op, params = ops.match("GET", "/contacts/abc/")
    assert.are.equal("/contacts/{contactId}", op.path)
    assert.are.same({ contactId = "abc" }, params)
    assert.are.equal("/locations/search", only("GET", "/locations/search/").path)
  end)

  it("ignores the query string, fragment and a scheme://host prefix", function()
    local op, params = ops.match("GET", "/contacts/abc?locationId=x&limit=5")
    assert.are.equal("/contacts/{contactId}", op.path)
    assert.are.same({ contactId = "abc" }, params)
    assert.are.equal("/contacts/", only("GET", "/contacts/?locationId=x").path)
    assert.are.equal("/contacts/",
      only("GET", "https://services.leadconnectorhq.com/contacts/?startAfterId=a&startAfter=1").path)
    assert.are.equal("/contacts/{contactId}", only("GET", "/contacts/abc#frag").path)
  end)

  it("returns nil for unknown paths and methods", function()
    assert.is_nil(ops.match("GET", "/no-such-thing"))
    assert.is_nil(ops.match("GET", "/contacts/a/b/c/d/e/f"))
    assert.is_nil(ops.match("GET", "/"))
    assert.is_nil(ops.match("GET", ""))
    assert.is_nil(ops.match("HEAD", "/contacts/"))
    assert.is_nil(ops.match("GET", "/contacts//tasks"))
    assert.has_error(function() ops.match(nil, "/contacts/") end)
    assert.has_error(function() ops.match("GET", 42) end)
  end)

  it("picks v3 rows when asked, and falls back to the other flavour", function()
    local op, params = ops.match("DELETE", "/contacts/c1/campaigns/remove-all", true)
    assert.are.same({ true, "/contacts/{contactId}/campaigns/remove-all" }, { op.v3, op.path })
    assert.are.same({ contactId = "c1" }, params)
    -- v2 has no such literal: the v2 placeholder route wins without v3
    op = only("DELETE", "/contacts/c1/campaigns/remove-all")
    assert.are.same({ false, "/contacts/{contactId}/campaigns/{campaignId}" }, { op.v3, op.path })
    -- only in v3 / only in v2
    assert.is_true(only("GET", "/oauth/installed-locations").v3)
    assert.is_false(only("POST", "/oauth/locationToken", true).v3)
    assert.is_true(only("GET", "/contacts/abc", true).v3)
    assert.is_false(only("GET", "/contacts/abc", false).v3)
  end)
end)

describe("ghl.api.ops scopes and tokens", function()
  it("knows the scopes of known operations", function()
    assert.are.same({ "contacts.readonly" }, ops.scopes_for("GET", "/contacts/abc"))
    assert.are.same({ "contacts.write" }, ops.scopes_for("POST", "/contacts/"))
    assert.are.same({ "oauth.write" }, ops.scopes_for("POST", "/oauth/locationToken"))
    assert.are.same({ "oauth.readonly" }, ops.scopes_for("GET", "/oauth/installedLocations"))
    assert.are.same({ "locations/customFields.readonly" }, ops.scopes_for("GET", "/locations/l/customFields"))
    assert.are.same({}, ops.scopes_for("GET", "/no-such-thing"))
    local s = ops.scopes_for("GET", "/contacts/abc")
    s[1] = "changed"
    assert.are.same({ "contacts.readonly" }, ops.scopes_for("GET", "/contacts/abc"))
  end)

  it("takes token types and PIT use from the security schemes", function()
    local lt = only("POST", "/oauth/locationToken")
    assert.are.same({ { "Company" }, false }, { lt.tokens, lt.pit })
    assert.is_true(ops.accepts(lt, "Company", false))
    assert.is_false(ops.accepts(lt, "Company", true))
    assert.is_false(ops.accepts(lt, "Location", false))
    local c = only("GET", "/contacts/abc")
    assert.are.same({ { "Location" }, true }, { c.tokens, c.pit })
    assert.is_true(ops.accepts(c, "Location", true))
    assert.is_false(ops.accepts(c, "Company", false))
    local inv = only("GET", "/invoices/")
    assert.are.same({ "Location", "Company" }, inv.tokens)
    -- Location OAuth only, or Company OAuth or PIT
    local un = only("DELETE", "/marketplace/app/a1/installations")
    assert.are.same({ { "Location", "Company" }, { "Company" }, true }, { un.tokens, un.pit_tokens, un.pit })
    assert.is_false(ops.accepts(un, "Location", true))
    assert.is_true(ops.accepts(un, "Company", true))
    assert.is_true(ops.accepts(only("POST", "/oauth/token"), "Location", true))
  end)

  it("fills scopes a v2 operation leaves out from its v3 twin", function()
    -- apps/links.json declares {"bearer": []} for GET /links/search
    assert.are.same({ "links.readonly" }, only("GET", "/links/search").scopes)
  end)
end)

describe("ghl.api.ops pagination", function()
  local cases = {
    { "GET", "/contacts/", false, "meta", "contacts", "limit" },
    { "POST", "/contacts/search", false, "page", "contacts", "pageLimit", true },
    { "GET", "/opportunities/search", false, "meta", "opportunities", "limit" },
    { "POST", "/opportunities/search", false, "page", "opportunities", "limit", true },
    { "GET", "/oauth/installedLocations", false, "skip", "locations", "limit" },
    { "GET", "/oauth/installed-locations", true, "token", "items", "pageSize" },
    { "GET", "/funnels/funnel/list", false, "offset", nil, "limit" },
    { "GET", "/forms/submissions", false, "page_query", "submissions", "limit" },
    { "GET", "/conversations/messages/export", false, "cursor", "messages", "limit" },
  }
  for _, c in ipairs(cases) do
    it(c[1] .. " " .. c[2] .. " is " .. c[4], function()
      local p = only(c[1], c[2], c[3]).page
      assert.is_not_nil(p)
      assert.are.same({ c[4], c[5], c[6], c[7] or false }, { p.style, p.items, p.size, p.body })
    end)
  end

  it("names the cursor parameters", function()
    local t = only("GET", "/oauth/installed-locations").page
    assert.are.same({ "pageToken", "pagination.nextPageToken" }, { t.cursor, t.next })
    local x = only("GET", "/conversations/messages/export").page
    assert.are.same({ "cursor", "nextCursor" }, { x.cursor, x.next })
  end)

  it("knows the items of unpaginated lists", function()
    local p = only("GET", "/locations/l1/customFields").page
    assert.are.same({ nil, "customFields" }, { p.style, p.items })
    assert.is_nil(only("GET", "/contacts/abc").page)
  end)
end)

describe("ghl.api.ops required body fields", function()
  it("lists the required top-level fields of JSON request bodies", function()
    assert.are.same({ "locationId" }, only("POST", "/contacts/").body)
    assert.are.same({ "locationId" }, only("POST", "/contacts/upsert").body)
    assert.are.same({}, only("PUT", "/contacts/abc").body)
    assert.are.same({}, only("GET", "/contacts/").body)
    local company = only("POST", "/locations/")
    assert.is_truthy(table.concat(company.body, " "):find("companyId", 1, true))
    for _, op in ipairs(ops.all()) do
      assert.are.equal("table", type(op.body), op.method .. " " .. op.path)
    end
  end)
end)

describe("ghl.api.ops required query parameters", function()
  it("lists the spec's required query parameters", function()
    assert.are.same({ "locationId" }, only("GET", "/contacts/").query)
    assert.are.same({ "locationId" }, only("GET", "/contacts/", true).query)
    assert.are.same({ "locationId" }, only("GET", "/calendars/").query)
    assert.are.same({ "locationId", "startTime", "endTime" }, only("GET", "/calendars/events").query)
    assert.are.same({ "location_id" }, only("GET", "/opportunities/search").query)
    assert.are.same({}, only("GET", "/contacts/abc").query)
    assert.are.same({}, only("POST", "/contacts/").query)
    for _, op in ipairs(ops.all()) do
      assert.are.equal("table", type(op.query), op.method .. " " .. op.path)
    end
  end)

  it("follows $refs and path-level parameters, and cleans summaries", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. run.quote(dir .. "/apps/v3")))
    local function write(name, doc)
      local f = assert(io.open(dir .. "/apps/" .. name, "wb"))
      f:write(cjson.encode(doc))
      f:close()
    end
    local path_params = {
      { name = "locationId", ["in"] = "query", required = true },
      { name = "id", ["in"] = "path", required = true },
      { name = "altId", ["in"] = "query", required = true },
    }
    local get = {
      summary = "Get\tdemo\n item",
      security = { { bearer = { "demo.readonly" } } },
      parameters = {
        { ["$ref"] = "#/components/parameters/Kind" },
        { name = "altId", ["in"] = "query", required = false }, -- overrides the path's
        { name = "page", ["in"] = "query", required = false },
      },
    }
    local components = {
      parameters = { Kind = { name = "kind", ["in"] = "query", required = true } },
      schemas = {
        Base = { type = "object", required = { "locationId" }, properties = { locationId = { type = "string" } } },
        Demo = { allOf = { { ["$ref"] = "#/components/schemas/Base" },
                           { type = "object", required = { "name", "locationId" },
                             properties = { name = { type = "string" } } } } },
      },
    }
    local post = {   -- a JSON body: its required fields, $ref and allOf followed, once each
      security = { { bearer = { "demo.write" } } },
      requestBody = { content = { ["application/json"] = { schema = { ["$ref"] = "#/components/schemas/Demo" } } } },
    }
    local put = {    -- a form body: not JSON, so no fields are recorded
      security = { { bearer = { "demo.write" } } },
      requestBody = { content = { ["application/x-www-form-urlencoded"] = {
        schema = { type = "object", required = { "locationId" } } } } },
    }
    write("demo.json", { paths = { ["/demo/{id}"] = { parameters = path_params, get = get, post = post, put = put } },
                         components = components })
    write("v3/demo-v3.json", { paths = { ["/demo/{id}"] = { parameters = path_params, get = get } }, components = components })
    -- The operations FIXUPS expects.
    for _, f in ipairs { "contacts", "oauth" } do
      local paths = f == "contacts" and { ["/contacts/search"] = { post = {} } } or { ["/oauth/token"] = { post = {} } }
      write(f .. ".json", { paths = paths })
      write("v3/" .. f .. "-v3.json", { paths = paths })
    end
    local r = run.ghlua({ SRC .. "/tools/gen_operations.lua", dir })
    os.execute("rm -rf " .. run.quote(dir))
    assert.are.equal("", r.err)
    local data = assert(load(r.out))()
    assert.are.equal("2021-07-28", data.first.demo)
    -- The v2 row in full, then its v3 twin written short.
    assert.are.equal("GET\t/demo/{id}\t\t\tdemo\tdemo.readonly\tL\t\tkind locationId\t\tGet demo item\n"
      .. 'GET\t"\t1\t\tdemo-v3\n'
      .. "POST\t/demo/{id}\t\t\tdemo\tdemo.write\tL\t\tlocationId altId\tlocationId name\n"
      .. "PUT\t/demo/{id}\t\t\tdemo\tdemo.write\tL\t\tlocationId altId\n", data.groups.demo)
  end)
end)

describe("ghl.api.ops.complete", function()
  it("lists sorted unique templates under a prefix", function()
    local list = ops.complete("/contacts/s")
    assert.are.same({ "/contacts/search", "/contacts/search/duplicate" }, list)
    local all = ops.complete("/contacts/")
    for i = 2, #all do assert.is_true(all[i - 1] < all[i]) end
    assert.is_true(#all > 10)
    assert.are.same({ "/contacts/search" }, ops.complete("/contacts/s", "post"))
    assert.are.same({}, ops.complete("/zzz"))
    assert.are.equal(#ops.complete("/"), (function()
      local seen, n = {}, 0
      for _, op in ipairs(ops.all()) do
        if not seen[op.path] then seen[op.path], n = true, n + 1 end
      end
      return n
    end)())
  end)
end)

-- How fast lookups are is measured by the client benchmark (bench/), not
-- here: a timed test on a shared machine proves nothing. What is checked is
-- what makes them cheap: the work a lookup does and the heap it keeps.
describe("ghl.api.ops cost", function()
  it("matches a long mixed stream of requests, the same op each time", function()
    local reqs = {
      { "GET", "/contacts/abc123" }, { "POST", "/contacts/search" },
      { "GET", "/calendars/events?locationId=x&startTime=1" }, { "PUT", "/locations/L1/customFields/F1" },
      { "GET", "/no-such/path" }, { "GET", "/conversations/c1/messages" },
      { "GET", "https://services.leadconnectorhq.com/contacts/?startAfterId=a" },
    }
    local hits, first = 0, {}
    for i = 1, 100000 do
      local k = i % #reqs + 1
      local op = ops.match(reqs[k][1], reqs[k][2])
      if op then
        hits = hits + 1
        first[k] = first[k] or op
        assert(op == first[k], "a lookup built a new op")
      end
    end
    assert.are.equal(100000 - 14286, hits)   -- all but /no-such/path (i % 7 == 4)
  end)

  -- In a fresh process: loading the module, then one lookup in each of two
  -- groups. Building every op at load kept ~1.8 MB of heap (and took
  -- ~15 ms); parsing lazily keeps ~70 KB (and takes ~1.5 ms).
  it("loads lazily, keeping only what lookups touch", function()
    local r = run.ghlua({ "-e", [[
      local kb = collectgarbage("count")
      local ops = require "ghl.api.ops"
      assert(ops.match("GET", "/contacts/abc").path == "/contacts/{contactId}")
      assert(ops.version("GET", "/calendars/x") == "2021-04-15")
      collectgarbage()
      print(collectgarbage("count") - kb)
    ]] })
    assert.are.equal("", r.err)
    local kb = tonumber(r.out:match("^(%S+)"))
    assert.is_true(kb < 300, ("load and two lookups keep %.0f KB"):format(kb))
  end)

  it("reads the table again for groups first needed after a collection", function()
    local r = run.ghlua({ "-e", [[
      local ops = require "ghl.api.ops"
      local op = ops.match("GET", "/contacts/abc")
      collectgarbage(); collectgarbage()
      assert(ops.match("GET", "/calendars/x").path == "/calendars/{calendarId}")
      assert(ops.match("POST", "/contacts/search").path == "/contacts/search")
      assert(ops.match("get", "/contacts/xyz") == op)
      assert(ops.version("DELETE", "/store/no/such/thing") == "2021-07-28")
      print(#ops.all())
    ]] })
    assert.are.equal("", r.err)
    assert.are.equal(tostring(#ops.all()), r.out:match("%d+"))
  end)
end)
