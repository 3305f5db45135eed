-- `ghlua api` as a user runs it against the simulator: requests with -q,
-- -f, -d (text, @file, @-), -H headers, the Version override, --timeout,
-- full URLs on the API's host (a pasted nextPageUrl) and on no other,
-- locationId filled into query and body, pagination (merged, NDJSON, --max,
-- the server's key order, stable from run to run, a single answer),
-- --include, --jq, -o FILE, --dry-run and --curl (nothing sent), compact
-- and pretty output (--color, NO_COLOR), HTTP errors (exit 1, message and
-- hint on stderr) and usage errors (exit 2). The token goes in GHL_TOKEN,
-- never on the command line.
local sim = require "support.sim"
local fixture = require "support.fixture"
local run = require "support.run"
local cjson = require "cjson"

local s, env, home

local function api(args, opts)
  opts = opts or {}
  local e = {}
  for k, v in pairs(env) do e[k] = v end
  for k, v in pairs(opts.env or {}) do e[k] = v end
  local argv = { "api" }
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  return run.ghlua(argv, { env = e, stdin = opts.stdin })
end

-- Decode a successful run's stdout.
local function json(r)
  assert.are.equal(0, r.code, r.err)
  return cjson.decode(r.out)
end

-- The number of API requests the simulator has answered.
local function requests()
  return s.stats().requests
end

-- How many requests the simulator saw with this Version for a family.
local function version_count(family, version)
  local v = s.stats().versions[family]
  return type(v) == "table" and (v[version] or 0) or (v == version and 1 or 0)
end

-- Run ghlua api on a pseudo-terminal (util-linux script); returns what
-- the terminal showed (stdout and stderr together).
local function on_tty(args, extra_env)
  local parts = {}
  for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. run.quote(v) end
  for k, v in pairs(extra_env or {}) do parts[#parts + 1] = k .. "=" .. run.quote(v) end
  local cmd = { run.quote(os.getenv("GHLUA")), "api" }
  for _, a in ipairs(args) do cmd[#cmd + 1] = run.quote(a) end
  local line = "env -u NO_COLOR " .. table.concat(parts, " ") .. " " .. table.concat(cmd, " ")
  return run.sh("script -qec " .. run.quote(line) .. " /dev/null")
end

local function has_script()
  return os.execute("command -v script >/dev/null 2>&1") == true
end

describe("ghlua api", function()
  local f
  setup(function()
    f = fixture.start { "--contacts", "250", "--rate-max", "100000", "--faults" }
    s, env, home = f.sim, f.env, f.home
  end)
  teardown(function() f.stop() end)

  it("GETs a contact, filling {contactId} from -q, as one compact line", function()
    local id = api { "GET", "/contacts/", "-q", "locationId=" .. s.location, "-q", "limit=1",
                     "--jq", ".contacts[0].id", "--raw" }
    assert.are.equal(0, id.code, id.err)
    id = id.out:gsub("\n$", "")
    assert.matches("^%w+$", id)
    local r = api { "get", "/contacts/{contactId}", "-q", "contactId=" .. id }
    assert.are.equal(0, r.code, r.err)
    assert.matches("^{[^\n]*}\n$", r.out)
    assert.are.equal(id, cjson.decode(r.out).contact.id)
    assert.are.equal("", r.err)
  end)

  it("fills {locationId} from --location", function()
    local r = json(api { "GET", "/locations/{locationId}", "--location", s.location })
    assert.are.equal(s.location, r.location.id)
  end)

  it("POSTs -f fields, with K:=JSON for raw values and [] kept as []", function()
    local r = api { "post", "/contacts/", "-f", "firstName=Ada", "-f", "locationId=" .. s.location,
                    "-f", "dnd:=true", "-f", "tags:=[]", "-f", "email=ada@example.com" }
    local c = json(r).contact
    assert.are.equal("Ada", c.firstName)
    assert.are.equal(true, c.dnd)
    assert.matches('"tags":%[%]', r.out)        -- printed faithfully, not {}
    assert.matches('"customFields":%[%]', r.out)
  end)

  it("makes a repeated -f key an array", function()
    local r = json(api { "POST", "/contacts/", "-f", "firstName=Bo", "-f", "locationId=" .. s.location,
                         "-f", "tags=one", "-f", "tags=two" })
    assert.are.same({ "one", "two" }, r.contact.tags)
  end)

  it("POSTs a -d body from text, from @file and from @- (stdin)", function()
    local body = '{"firstName":"%s","locationId":"' .. s.location .. '","tags":["x"]}'
    assert.are.equal("Cy", json(api { "POST", "/contacts/", "-d", body:format("Cy") }).contact.firstName)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write(body:format("Di"))
    f:close()
    local r = api { "POST", "/contacts/", "-d", "@" .. path }
    os.remove(path)
    assert.are.equal("Di", json(r).contact.firstName)
    r = api({ "POST", "/contacts/", "-d", "@-" }, { stdin = body:format("Ed") })
    assert.are.equal("Ed", json(r).contact.firstName)
  end)

  it("sends -q query parameters", function()
    local r = json(api { "GET", "/contacts/", "-q", "locationId=" .. s.location, "-q", "limit=3" })
    assert.are.equal(3, #r.contacts)
  end)

  it("sends the --version override", function()
    local before = version_count("contacts", "2023-02-21")
    local r = api { "GET", "/contacts/", "-q", "locationId=" .. s.location, "-q", "limit=1",
                    "--version", "2023-02-21" }
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(before + 1, version_count("contacts", "2023-02-21"))
  end)

  describe("--paginate", function()
    it("prints one merged array of every item", function()
      local r = api { "GET", "/contacts/", "-q", "locationId=" .. s.location, "--paginate" }
      local items = json(r)
      assert.is_true(#items >= 250)
      local seen = {}
      for _, c in ipairs(items) do
        assert.is_nil(seen[c.id], "duplicate " .. tostring(c.id))
        seen[c.id] = true
      end
      assert.matches("^%[{", r.out)
      assert.are.equal("", r.err)   -- no progress line: stderr is not a terminal
    end)

    it("prints one item per line with --ndjson", function()
      local r = api { "GET", "/contacts/", "-q", "locationId=" .. s.location, "--paginate", "--ndjson" }
      assert.are.equal(0, r.code, r.err)
      local n = 0
      for line in r.out:gmatch("[^\n]+") do
        n = n + 1
        assert.is_string(cjson.decode(line).id)
      end
      assert.is_true(n >= 250)
    end)

    it("stops after --max items", function()
      local r = api { "GET", "/contacts/", "-q", "locationId=" .. s.location, "--paginate", "--max", "30" }
      assert.are.equal(30, #json(r))
      r = api { "GET", "/contacts/", "-q", "locationId=" .. s.location, "--paginate", "--max", "120",
                "--ndjson", "--jq", ".id", "--raw" }
      assert.are.equal(0, r.code, r.err)
      local ids = {}
      for id in r.out:gmatch("[^\n]+") do ids[#ids + 1] = id end
      assert.are.equal(120, #ids)
      assert.matches("^%w+$", ids[120])
    end)

    it("pages a POST search and runs --jq on the merged array", function()
      local r = api { "POST", "/contacts/search", "-f", "locationId=" .. s.location, "--paginate",
                      "--max", "150", "--jq", "length" }
      assert.are.same({ 0, "150\n" }, { r.code, r.out })
    end)

    it("indents the merged array with --pretty", function()
      local r = api { "GET", "/contacts/", "-q", "locationId=" .. s.location, "--paginate", "--max", "2", "--pretty" }
      assert.are.equal(0, r.code, r.err)
      assert.matches('^%[\n  {\n    "contactName": ', r.out)
      assert.matches("\n  },\n  {\n", r.out)
      assert.matches("\n  }\n%]\n$", r.out)
      assert.are.equal(2, #cjson.decode(r.out))
    end)

    it("prints the one answer of an endpoint that does not page as it is", function()
      local args = { "GET", "/locations/{locationId}/customFields", "--location", s.location }
      local plain = api(args)
      assert.are.equal(0, plain.code, plain.err)
      assert.is_table(cjson.decode(plain.out).customFields)
      table.insert(args, "--paginate")
      local paged = api(args)
      assert.are.same({ 0, "", plain.out }, { paged.code, paged.err, paged.out })
    end)

    it("is a usage error for an unknown --style", function()
      local r = api { "GET", "/locations/{locationId}/customFields", "--location", s.location, "--paginate",
                      "--style", "sideways" }
      assert.are.equal(2, r.code)
      assert.matches("unknown pagination style 'sideways'", r.err)
    end)

    it("prints the same bytes from run to run, each item in the server's key order", function()
      local args = { "GET", "/contacts/", "-q", "locationId=" .. s.location, "--paginate", "--max", "150" }
      local one, two = api(args), api(args)
      assert.are.equal(0, one.code, one.err)
      assert.are.equal(one.out, two.out)
      -- the keys of each item in the order the server wrote them on its pages
      local filter = '.[] | .id + " " + (keys_unsorted | join(","))'
      local page = api { "GET", "/contacts/", "-q", "locationId=" .. s.location, "-q", "limit=100",
                         "--jq", ".contacts | " .. filter, "--raw" }
      local merged = api { "GET", "/contacts/", "-q", "locationId=" .. s.location, "--paginate", "--max", "100",
                           "--jq", filter, "--raw" }
      assert.are.equal(0, merged.code, merged.err)
      assert.are.equal(100, select(2, page.out:gsub("\n", "")))
      assert.are.equal(page.out, merged.out)
      assert.are.equal(150, #cjson.decode(one.out))
    end)

    it("keeps a server's key order that is not sorted, in items and with --jq", function()
      local canned = require "support.canned"
      local body = '{"things":[{"zeta":1,"alpha":{"yes":true,"beta":[2,1]},"mid":"x"},{"b":2,"a":1}],"total":2}'
      local srv = canned.start { ["/things"] = { headers = { ["Content-Type"] = "application/json" }, body = body } }
      local e = { GHLUA_API_BASE = srv.url }
      local r = api({ "GET", "/things", "--paginate", "--style", "skip" }, { env = e })
      local nd = api({ "GET", "/things", "--paginate", "--style", "skip", "--ndjson" }, { env = e })
      local q = api({ "GET", "/things", "--paginate", "--style", "skip", "--jq", ".[0]" }, { env = e })
      srv.stop()
      assert.are.same({ 0, '[{"zeta":1,"alpha":{"yes":true,"beta":[2,1]},"mid":"x"},{"b":2,"a":1}]\n' }, { r.code, r.out })
      assert.are.same({ 0, '{"zeta":1,"alpha":{"yes":true,"beta":[2,1]},"mid":"x"}\n{"b":2,"a":1}\n' },
                      { nd.code, nd.out })
      assert.are.same({ 0, '{"zeta":1,"alpha":{"yes":true,"beta":[2,1]},"mid":"x"}\n' }, { q.code, q.out })
    end)
  end)

  describe("a full URL", function()
    it("takes a pasted meta.nextPageUrl and answers the next page", function()
      local first = json(api { "GET", "/contacts/", "-q", "locationId=" .. s.location, "-q", "limit=2" })
      local four = json(api { "GET", "/contacts/", "-q", "locationId=" .. s.location, "-q", "limit=4" })
      local url = first.meta.nextPageUrl
      assert.are.equal(s.url .. "/contacts/?", url:sub(1, #s.url + 11))
      local next = json(api { "GET", url })
      assert.are.same({ four.contacts[3].id, four.contacts[4].id }, { next.contacts[1].id, next.contacts[2].id })
    end)

    it("goes on from the pasted page's cursor with --paginate", function()
      local first = json(api { "GET", "/contacts/", "-q", "locationId=" .. s.location, "-q", "limit=5" })
      local all = json(api { "GET", "/contacts/", "-q", "locationId=" .. s.location, "--paginate" })
      local rest = json(api { "GET", first.meta.nextPageUrl, "--paginate" })
      assert.are.equal(#all - 5, #rest)
      assert.are.equal(all[6].id, rest[1].id)
      assert.are.equal(all[#all].id, rest[#rest].id)
    end)

    it("is refused on another host or port, before anything is sent", function()
      local port = tonumber(s.url:match(":(%d+)$"))
      for _, url in ipairs { "https://evil.example.com/contacts/", "http://localhost:" .. port .. "/contacts/",
                             "http://127.0.0.1:" .. (port == 1 and 2 or port - 1) .. "/contacts/",
                             "http://user:pw@" .. s.url:match("//(.*)$") .. "/contacts/",
                             "ftp://127.0.0.1:" .. port .. "/contacts/" } do
        local before = requests()
        local r = api { "GET", url }
        assert.are.equal(2, r.code, url)
        assert.matches("is not on the API's host: give a path, or a URL on " .. s.url:gsub("%p", "%%%0")
          .. " %(GHLUA_API_BASE%)", r.err)
        assert.are.equal("", r.out)
        assert.are.equal(before, requests())
      end
    end)
  end)

  describe("-H", function()
    local function echo(args)
      local argv = { "GET", "/__fault/echo", "--jq", ".headers" }
      for _, a in ipairs(args) do argv[#argv + 1] = a end
      return json(api(argv))
    end

    it("sends extra headers, replaces the client's own, and sets Version", function()
      local h = echo { "-H", "X-Request-Tag: one two", "-H", "accept: text/plain", "-H", "Version: 2099-01-01" }
      assert.are.equal("one two", h["x-request-tag"])
      assert.are.equal("text/plain", h.accept)
      assert.are.equal("2099-01-01", h.version)
      assert.are.equal("Bearer " .. s.token, h.authorization)   -- the token is still the store's/GHL_TOKEN's
      h = echo { "--header", "Accept:" }                          -- an empty value drops it
      assert.is_nil(h.accept)
    end)

    -- {args, pattern on stderr}
    local refused = {
      { { "-H", "Authorization: Bearer x" }, "%-H Authorization is not allowed: the token comes from the store or GHL_TOKEN" },
      { { "-H", "X-A: b\r\nX-Evil: 1" }, "%-H X%-A: the value holds a control character" },
      { { "-H", "X-A: b\nX-Evil: 1" }, "%-H X%-A: the value holds a control character" },
      { { "-H", "Bad Name: x" }, "is not a header name" },
      { { "-H", "novalue" }, "%-H needs 'NAME: VALUE'" },
      { { "-H", "Host: evil.example.com" }, "%-H Host is not allowed" },
      { { "-H", "X-A: 1", "-H", "x-a: 2" }, "%-H x%-a is given twice" },
      { { "-H", "Version: 2099-01-01", "--version", "2021-07-28" }, "give %-%-version or %-H 'Version: %.%.%.', not both" },
    }
    for _, case in ipairs(refused) do
      it("refuses " .. table.concat(case[1], " "):gsub("[\r\n]", "?") .. " (exit 2, nothing sent)", function()
        local before = requests()
        local argv = { "GET", "/__fault/echo" }
        for _, a in ipairs(case[1]) do argv[#argv + 1] = a end
        local r = api(argv)
        assert.are.equal(2, r.code, r.err)
        assert.matches(case[2], r.err)
        assert.are.equal(before, requests())
      end)
    end
  end)

  describe("--timeout", function()
    it("gives up on a slow answer, and a long enough one waits for it", function()
      local r = api { "POST", "/__fault/slow", "-q", "ms=3000", "--timeout", "0.2" }
      assert.are.equal(1, r.code)
      assert.matches("no complete answer from http://127.0.0.1:%d+ within 0.2 s %(the request timeout%)", r.err)
      assert.are.equal("", r.out)
      r = api { "GET", "/__fault/slow", "-q", "ms=50", "--timeout", "30" }
      assert.are.same({ ok = true, delayMs = 50 }, json(r))
    end)

    it("must be a positive number of seconds", function()
      for _, v in ipairs { "0", "-1", "soon" } do
        local r = api { "GET", "/__fault/echo", "--timeout", v }
        assert.are.equal(2, r.code, v)
        assert.matches("%-%-timeout", r.err)
      end
    end)
  end)

  describe("-o FILE", function()
    local dir
    before_each(function()
      dir = os.tmpname()
      os.remove(dir)
      assert(os.execute("mkdir -p " .. run.quote(dir)))
    end)
    after_each(function()
      os.execute("rm -rf " .. run.quote(dir))
    end)
    local function listing()
      local p = io.popen("ls -A " .. run.quote(dir))
      local names = {}
      for name in p:lines() do names[#names + 1] = name end
      p:close()
      return names
    end
    local sys = require "ghl.sys"

    it("writes the body as it came, prints nothing, and makes a new file private", function()
      local args = { "GET", "/locations/{locationId}", "--location", s.location }
      local shown = api(args)
      local file = dir .. "/loc.json"
      table.insert(args, "-o")
      table.insert(args, file)
      local r = api(args)
      assert.are.same({ 0, "", "" }, { r.code, r.out, r.err })
      assert.are.equal(shown.out, run.slurp(file) .. "\n")   -- the sim's body has no final newline
      assert.are.equal(384, sys.stat(file).mode)              -- 0600
      assert.are.same({ "loc.json" }, listing())
    end)

    it("replaces a file keeping its mode, shapes it with --jq, and leaves it as it was on an error", function()
      local file = dir .. "/out.txt"
      local f = assert(io.open(file, "w"))
      f:write("old\n")
      f:close()
      assert(sys.chmod(file, 420))   -- 0644
      local r = api { "GET", "/contacts/", "-q", "locationId=" .. s.location, "-q", "limit=2",
                      "--jq", ".contacts[].id", "--raw", "-o", file }
      assert.are.same({ 0, "" }, { r.code, r.out })
      assert.matches("^%w+\n%w+\n$", run.slurp(file))
      assert.are.equal(420, sys.stat(file).mode)
      local before = run.slurp(file)
      r = api { "GET", "/contacts/{contactId}", "-q", "contactId=nope", "-o", file }
      assert.are.equal(1, r.code)
      assert.matches("Contact not found", r.err)
      assert.are.equal(before, run.slurp(file))
      r = api { "GET", "/contacts/", "-q", "locationId=" .. s.location, "--jq", ".contacts.x", "-o", file }
      assert.are.equal(1, r.code)
      assert.are.equal(before, run.slurp(file))
      assert.are.same({ "out.txt" }, listing())   -- no temporary file left behind
    end)

    it("takes the merged pages, and says why it cannot write", function()
      local file = dir .. "/all.json"
      local r = api { "GET", "/contacts/", "-q", "locationId=" .. s.location, "--paginate", "--max", "120", "-o", file }
      assert.are.same({ 0, "" }, { r.code, r.out })
      assert.are.equal(120, #cjson.decode(run.slurp(file)))
      r = api { "GET", "/__fault/echo", "-o", dir .. "/missing/x.json" }
      assert.are.equal(1, r.code)
      assert.matches("^ghlua: cannot write %-o .*/missing/x%.json: .*No such file or directory", r.err)
      r = api { "GET", "/__fault/echo", "-o", dir }
      assert.are.equal(2, r.code)
      assert.matches("not a regular file", r.err)
    end)
  end)

  describe("a required locationId in the body", function()
    it("is filled from the token's context when left out", function()
      local r = json(api { "POST", "/contacts/", "-f", "firstName=Filled", "--location", s.location })
      assert.are.equal(s.location, r.contact.locationId)
      local got = json(api { "GET", "/contacts/{contactId}", "-q", "contactId=" .. r.contact.id })
      assert.are.equal(s.location, got.contact.locationId)
      -- -d text keeps its own spelling; the field is appended
      local dry = api { "POST", "/contacts/", "-d", '{ "firstName": "Ann", "tags": [] }', "--location", s.location,
                        "--dry-run" }
      assert.matches('\n{ "firstName": "Ann", "tags": %[%],"locationId":"' .. s.location .. '"}\n$', dry.out)
      dry = api { "POST", "/contacts/", "-d", "{}", "--location", s.location, "--dry-run" }
      assert.matches('\n{"locationId":"' .. s.location .. '"}\n$', dry.out)
    end)

    it("is never replaced when given", function()
      local other = "otherLocation000001"
      local dry = api { "POST", "/contacts/", "-f", "firstName=Kept", "-f", "locationId=" .. other,
                        "--location", s.location, "--dry-run" }
      assert.matches('\n{"firstName":"Kept","locationId":"' .. other .. '"}\n$', dry.out)
      local r = api { "POST", "/contacts/", "-f", "firstName=Kept", "-f", "locationId=" .. other, "--location", s.location }
      assert.are.equal(1, r.code)                        -- the simulator saw the other location
      assert.matches("does not have access to this location", r.err)
    end)
  end)

  it("prints the status line and headers with --include", function()
    local r = api { "GET", "/contacts/", "-q", "locationId=" .. s.location, "-q", "limit=1", "--include" }
    assert.are.equal(0, r.code, r.err)
    local head, body = r.out:match("^(.-)\n\n(.*)$")
    assert.matches("^HTTP 200 OK\n", head)
    assert.matches("\ncontent%-type: application/json", head)
    assert.are.equal(1, #cjson.decode(body).contacts)
  end)

  describe("--jq", function()
    it("filters the body and prints each result", function()
      local r = api { "GET", "/contacts/", "-q", "locationId=" .. s.location, "-q", "limit=3",
                      "--jq", ".contacts[] | {id, tags}" }
      assert.are.equal(0, r.code, r.err)
      local n = 0
      for line in r.out:gmatch("[^\n]+") do
        n = n + 1
        assert.is_string(cjson.decode(line).id)
      end
      assert.are.equal(3, n)
      r = api { "GET", "/contacts/", "-q", "locationId=" .. s.location, "-q", "limit=2", "--jq", ".meta.total" }
      assert.matches("^%d+\n$", r.out)
    end)

    it("is a usage error (exit 2) when the filter does not compile, before any request", function()
      local before = requests()
      local r = api { "GET", "/contacts/", "--jq", ".contacts[" }
      assert.are.equal(2, r.code)
      assert.matches("syntax error", r.err)
      assert.are.equal(before, requests())
    end)

    it("exits 1 with jq's message for a runtime error", function()
      local r = api { "GET", "/contacts/", "-q", "locationId=" .. s.location, "-q", "limit=1", "--jq", ".contacts.x" }
      assert.are.equal(1, r.code)
      assert.matches("jq: error: Cannot index array", r.err)
    end)
  end)

  describe("--dry-run", function()
    it("prints the request with the token redacted and sends nothing", function()
      local before = requests()
      local r = api { "POST", "/contacts/{contactId}/tags", "-q", "contactId=abc", "-q", "x=1", "-q", "x=2",
                      "-d", '{"tags":[]}', "--dry-run" }
      assert.are.equal(0, r.code, r.err)
      assert.are.equal(before, requests())
      local first = r.out:match("^[^\n]+")
      assert.are.equal("POST " .. s.url .. "/contacts/abc/tags?x=1&x=2", first)
      assert.matches("\nAuthorization: Bearer …" .. s.token:sub(-4) .. "\n", r.out)
      assert.matches("\nVersion: 2021%-07%-28\n", r.out)
      assert.matches("\nContent%-Type: application/json\n", r.out)
      assert.matches('\n\n{"tags":%[%]}\n$', r.out)
      assert.is_nil(r.out:find(s.token, 1, true))
    end)

    it("prints a shell-quoted curl command with --curl", function()
      local before = requests()
      local r = api { "POST", "/contacts/", "-d", [[{"firstName":"O'Hara"}]], "--dry-run", "--curl" }
      assert.are.equal(0, r.code, r.err)
      assert.are.equal(before, requests())
      assert.matches("^curl %-X POST " .. s.url:gsub("%p", "%%%0") .. "/contacts/ ", r.out)
      assert.matches("%-H 'Authorization: Bearer …" .. s.token:sub(-4) .. "'", r.out)
      assert.matches([[%-%-data%-raw '{"firstName":"O'\''Hara"}']] .. "\n$", r.out)
      assert.is_nil(r.out:find(s.token, 1, true))
      -- it is one valid shell command
      local sh = run.sh("sh -n -c " .. run.quote(r.out))
      assert.are.equal(0, sh.code, sh.err)
    end)
  end)

  describe("output", function()
    it("is compact when not on a terminal and indented with sorted keys with --pretty", function()
      local args = { "GET", "/locations/{locationId}", "--location", s.location }
      local compact = api(args)
      assert.matches("^{[^\n]+}\n$", compact.out)
      table.insert(args, "--pretty")
      local pretty = api(args)
      assert.matches('^{\n  "location": {\n    "', pretty.out)
      local keys = {}
      for k in pretty.out:gmatch('\n    "([^"]+)":') do keys[#keys + 1] = k end
      local sorted = { table.unpack(keys) }
      table.sort(sorted)
      assert.is_true(#keys > 2)
      assert.are.same(sorted, keys)
      assert.is_nil(pretty.out:find("\27", 1, true))   -- no colour off a terminal
      assert.are.same(cjson.decode(compact.out), cjson.decode(pretty.out))
    end)

    it("is pretty and coloured on a terminal, without colour under NO_COLOR, compact with --compact", function()
      if not has_script() then pending("util-linux script is not installed") return end
      local args = { "GET", "/locations/{locationId}", "--location", s.location }
      local tty = on_tty(args)
      assert.are.equal(0, tty.code, tty.out)
      assert.matches("\27%[", tty.out)
      assert.matches('"location"', tty.out)
      local plain = on_tty(args, { NO_COLOR = "1" })
      assert.is_nil(plain.out:find("\27", 1, true))
      assert.matches('^{\r?\n  "location": {', plain.out)
      table.insert(args, "--compact")
      local compact = on_tty(args, { NO_COLOR = "1" })
      assert.matches("^{[^\n]+}\r?\n$", compact.out)
      compact = on_tty(args)   -- coloured on a terminal, compact or not
      assert.matches("^\27%[[^\n]+\r?\n$", compact.out)
    end)

    it("colours with --color always off a terminal, and never with --color never on one", function()
      local args = { "GET", "/locations/{locationId}", "--location", s.location, "--color", "always" }
      local r = api(args, { env = { NO_COLOR = "1" } })   -- the flag beats NO_COLOR
      assert.are.equal(0, r.code, r.err)
      assert.matches("^\27%[", r.out)
      assert.matches('"location"', r.out)
      r = api { "GET", "/contacts/", "-q", "locationId=" .. s.location, "--paginate", "--max", "2", "--ndjson",
                "--color", "always" }
      assert.are.equal(2, select(2, r.out:gsub("\n", "")))
      assert.matches("^\27%[", r.out)
      if not has_script() then pending("util-linux script is not installed") return end
      args[#args] = "never"
      local tty = on_tty(args)
      assert.are.equal(0, tty.code, tty.out)
      assert.is_nil(tty.out:find("\27", 1, true))
      assert.matches('^{\r?\n  "location": {', tty.out)
    end)

    it("shows a progress line on a terminal's stderr and clears it", function()
      if not has_script() then pending("util-linux script is not installed") return end
      local tty = on_tty { "GET", "/contacts/", "-q", "locationId=" .. s.location, "--paginate", "--ndjson",
                           "--jq", "empty" }
      assert.are.equal(0, tty.code, tty.out)
      assert.matches("\rghlua api: 100 of %d+ items", tty.out)
      assert.matches("\r\27%[K$", tty.out)
    end)
  end)

  describe("errors", function()
    it("exits 1 with the message and hint on stderr for a 404", function()
      local r = api { "GET", "/nowhere/at/all" }
      assert.are.equal(1, r.code)
      assert.are.equal("", r.out)
      assert.matches("^ghlua: GET /nowhere/at/all: Cannot GET /nowhere/at/all %(HTTP 404", r.err)
      assert.matches("hint: check the path", r.err)
    end)

    it("exits 1 with HighLevel's message for a 400, and --include shows the response", function()
      local r = api { "GET", "/contacts/{contactId}", "-q", "contactId=nope" }
      assert.are.equal(1, r.code)
      assert.matches("Contact not found %(HTTP 400", r.err)
      assert.are.equal(1, select(2, r.err:gsub("\n", "")))
      r = api { "GET", "/contacts/{contactId}", "-q", "contactId=nope", "--include" }
      assert.are.equal(1, r.code)
      assert.matches("^HTTP 400 Bad Request\n", r.out)
      assert.matches('"message":"Contact not found"', r.out)
    end)

    it("exits 1 with the hint for a bad Version", function()
      local r = api { "GET", "/contacts/", "-q", "locationId=" .. s.location, "--version", "1999-01-01" }
      assert.are.equal(1, r.code)
      assert.matches("version header is invalid", r.err)
      assert.matches("hint: use a published Version", r.err)
    end)

    -- {args, pattern on stderr}
    local usage = {
      { {}, "expected METHOD and PATH" },
      { { "GET" }, "expected METHOD and PATH" },
      { { "GET", "contacts" }, "PATH must start with '/'" },
      { { "G3T", "/contacts/" }, "METHOD must be a word" },
      { { "POST", "/contacts/", "-d", "{}", "-f", "a=b" }, "give %-d or %-f, not both" },
      { { "POST", "/contacts/", "-d", '{"a": [1, 2}' }, "%-d: invalid JSON: .* at line 1, column 12" },
      { { "POST", "/contacts/", "-d", '{"a":\n tru}' }, "%-d: invalid JSON: .* at line 2, column" },
      { { "POST", "/contacts/", "-d", "" }, "%-d: invalid JSON: no value" },
      { { "POST", "/contacts/", "-f", "n:=12x" }, "%-f n:=: invalid JSON" },
      { { "POST", "/contacts/", "-f", "novalue" }, "%-f needs KEY=VALUE" },
      { { "GET", "/contacts/", "-q", "novalue" }, "%-q needs KEY=VALUE" },
      { { "GET", "/contacts/{contactId}" }, "{contactId} in PATH has no value" },
      { { "GET", "/contacts/", "--curl" }, "%-%-curl needs %-%-dry%-run" },
      { { "GET", "/contacts/", "--max", "3" }, "%-%-max needs %-%-paginate" },
      { { "GET", "/contacts/", "--paginate", "--max", "0" }, "%-%-max must be a positive integer" },
      { { "GET", "/contacts/", "--raw" }, "%-%-raw needs %-%-jq" },
      { { "GET", "/contacts/", "--pretty", "--compact" }, "not both" },
      { { "GET", "/contacts/", "--paginate", "--dry-run" }, "not with %-%-paginate" },
      { { "GET", "/contacts/", "--bogus" }, "unknown option '%-%-bogus'" },
      { { "GET", "/contacts/", "-x" }, "unknown option '%-x'" },
      { { "GET", "/contacts/", "--location", "a", "--company", "b" }, "give %-%-location or %-%-company" },
      { { "GET", "/contacts/", "--color", "sometimes" }, "%-%-color must be auto, always or never" },
    }
    for _, case in ipairs(usage) do
      it("exits 2 for: ghlua api " .. table.concat(case[1], " "), function()
        local before = requests()
        local r = api(case[1])
        assert.are.equal(2, r.code, r.err)
        assert.matches(case[2], r.err)
        assert.matches("usage: ghlua api METHOD PATH", r.err)
        assert.are.equal("", r.out)
        assert.are.equal(before, requests())
      end)
    end

    it("documents GHL_TOKEN in --help", function()
      local r = api { "--help" }
      assert.are.equal(0, r.code)
      assert.matches("usage: ghlua api METHOD PATH", r.out)
      assert.matches("GHL_TOKEN", r.out)
      assert.matches("NO_COLOR", r.out)
    end)
  end)
end)
