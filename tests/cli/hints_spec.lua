-- Hints speak the language of the surface they are read on. Under the
-- command line they name commands, flags and environment variables
-- (--location ID, GHL_TOKEN, GHLUA_API_BASE), never the Lua API; under the
-- Lua API (a script, the REPL) the same failure keeps its Lua wording
-- (ghl.client{location=ID}, token=, opts.version). Each row of the table
-- provokes one hint through `ghlua COMMAND` against the simulator, and the
-- same failure again through a script.
local agency = require "support.agency"
local sim = require "support.sim"
local run = require "support.run"
local http = require "ghl.http"

local LOCATION, COMPANY = "LocHints000000000001", "CoHints0000000000001"
local PIT_LOCATION, PIT_COMPANY = "pit-hints-location-0001", "pit-hints-company-0001"
local EXAMPLES = assert(os.getenv("GHLUA_SRC"), "set GHLUA_SRC to the source tree") .. "/examples"

-- Lua API syntax a hint under the command line must not show.
local LUA_SYNTAX = {
  "ghl%.%a",                 -- ghl.client, ghl.contacts.upsert
  "opts%.", "err%.%a",       -- opts.version, err.meta
  "{%s*[%a_]+%s*=",          -- constructor syntax {location=ID}
  "%f[%w_][%l_]+ = ",        -- ragged = true, checkpoint = FILE
  "%f[%w_][%l_]+=$", "%f[%w_][%l_]+=[%s,;)]",   -- "pass token=", "base=)"
}

local function lua_syntax(text)
  for _, p in ipairs(LUA_SYNTAX) do
    local at = text:find(p)
    if at then return text:sub(math.max(1, at - 20), at + 30) end
  end
  return nil
end

-- The hint of a one-line error on stderr: "ghlua: ... — hint: HINT".
local function hint_of(err)
  return err:match("\u{2014} hint: ([^\n]*)\n?$")
end

local function plain(s)
  return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

-- A port on 127.0.0.1 where nothing listens: one the kernel gave, closed again.
local function closed_port()
  local server = require "ghl.server"
  local s = assert(server.listen { host = "127.0.0.1", port = 0, handler = function() end })
  local port = s.port
  s:close()
  return port
end

describe("hints", function()
  local a, work, empty_home, other, existing, port

  setup(function()
    a = agency.start(2, "contacts.readonly contacts.write locations/customFields.readonly", {
      "--location", LOCATION, "--company", COMPANY, "--contacts", "3",
      "--pit", PIT_LOCATION, "--pit", PIT_COMPANY .. ":" .. COMPANY })
    for _, l in ipairs(a.locations) do
      if l.id ~= LOCATION then other = l.id end
    end
    work = os.tmpname()
    os.remove(work)
    assert(os.execute("mkdir -p " .. run.quote(work)))
    local f = assert(io.open(work .. "/ragged.csv", "w"))
    f:write("firstName,email\nAda,ada@example.com,extra\n")
    f:close()
    f = assert(io.open(work .. "/noop.lua", "w"))
    f:write('recipe { name = "noop", description = "does nothing", scopes = { "contacts.readonly" }, writes = false }\n'
      .. "return function() end\n")
    f:close()
    empty_home = work .. "/empty-home"
    local resp = assert(http.request { url = a.sim.url .. "/contacts/", query = { locationId = LOCATION, limit = 1 },
      headers = a.sim.headers(PIT_LOCATION) })
    existing = assert(resp:json()).contacts[1]
    port = closed_port()
    -- location tokens minted from the agency login: several tokens stored
    for _, id in ipairs { LOCATION, other } do
      local r = a.ghlua { "api", "GET", "/contacts/", "-q", "limit=1", "--location", id }
      assert(r.code == 0, r.err)
    end
  end)
  teardown(function()
    if a then a.stop() end
    if work then os.execute("rm -rf " .. run.quote(work)) end
  end)

  -- Run ghlua in `work` with the agency's environment and `env` on top
  -- (false unsets a variable).
  local function ghlua(args, env)
    local parts = { "cd", run.quote(work), "&&", "env" }
    local e = {}
    for k, v in pairs(a.env) do e[k] = v end
    for k, v in pairs(env or {}) do e[k] = v end
    for k, v in pairs(e) do
      if v == false then table.insert(parts, 5, "-u " .. k) else parts[#parts + 1] = k .. "=" .. run.quote(v) end
    end
    parts[#parts + 1] = run.quote(os.getenv("GHLUA"))
    for _, x in ipairs(args) do parts[#parts + 1] = run.quote(x) end
    return run.sh(table.concat(parts, " "))
  end

  -- Each failure: the command that provokes it under the command line, the
  -- CLI wording its hint must show, a script provoking it through the Lua
  -- API and the Lua wording that hint must keep.
  local CASES = {
    { "an agency token on a sub-account route",
      cli = { { "api", "GET", "/contacts/", "--company", COMPANY } }, want_cli = "%-%-location ID",
      lua = ("local c = ghl.client{company = %q}; c:get('/contacts/')"):format(COMPANY),
      want_lua = "ghl.client{location=ID}" },
    { "a location the token does not belong to",
      cli = { { "api", "GET", "/contacts/", "-q", "locationId=OTHER" }, { GHL_TOKEN = PIT_LOCATION } },
      want_cli = "use a token of that location %(%-%-location ID%)",
      lua = ("local c = ghl.client{token = %q, location = %q}; c:get('/contacts/', {locationId = 'OTHER'})")
        :format(PIT_LOCATION, LOCATION),
      want_lua = "ghl.client{location=ID}" },
    { "no Version header",
      cli = { { "api", "GET", "/contacts/", "--version", "" }, { GHL_TOKEN = PIT_LOCATION, GHL_LOCATION_ID = LOCATION } },
      want_cli = "pass %-%-version V",
      lua = ("local c = ghl.client{token = %q, location = %q}; c:get('/contacts/', nil, {version = ''})")
        :format(PIT_LOCATION, LOCATION),
      want_lua = "opts%.version" },
    { "a duplicate contact",
      cli = function() return { "api", "POST", "/contacts/", "--location", LOCATION, "-f", "email=" .. existing.email,
        "-f", "locationId=" .. LOCATION } end,
      want_cli = function() return "%(id " .. existing.id .. "%): update it %(PUT /contacts/" .. existing.id .. "%)" end,
      lua = function()
        return ("local c = ghl.client{location = %q}; c:post('/contacts/', {email = %q, locationId = %q})")
          :format(LOCATION, existing.email, LOCATION)
      end,
      want_lua = "err%.meta%.contactId" },
    { "a token HighLevel does not accept",
      cli = { { "api", "GET", "/contacts/" }, { GHL_TOKEN = "not-a-token-0000", GHL_LOCATION_ID = LOCATION } },
      want_cli = "the token in GHL_TOKEN is expired, revoked or unknown",
      lua = ("local c = ghl.client{token = 'not-a-token-0000', location = %q}; c:get('/contacts/')"):format(LOCATION),
      want_lua = "the token given with token= is expired" },
    { "no token at all",
      cli = function() return { "api", "GET", "/contacts/" }, { GHLUA_HOME = empty_home } end,
      want_cli = "or set GHL_TOKEN$",
      lua = "ghl.client{}", lua_env = function() return { GHLUA_HOME = empty_home } end,
      want_lua = "or pass token=$" },
    { "several stored tokens and none named",
      cli = { { "api", "GET", "/contacts/" } }, code = 2,
      want_cli = "choose one with %-%-location ID",
      lua = "ghl.client{}", want_lua = "choose one with location = ID .*ghl%.client{location = \"" },
    { "a custom field key unknown in a location that has none",
      cli = function() return { "run", EXAMPLES .. "/create_contact_by_key.lua", "--location", other, "--param",
        "email=new@example.com", "--param", "fields=no_such_key=1", "--yes" } end,
      want_cli = "create one with 'ghlua api POST /locations/{locationId}/customFields'",
      lua = function()
        return ("local c = ghl.client{location = %q}; ghl.contacts.create(c, {email = 'new@example.com', "
          .. "customFields = {no_such_key = 1}})"):format(other)
      end,
      want_lua = "create one with ghl%.custom_fields%.create" },
    { "a CSV row with more fields than the header",
      cli = { { "run", EXAMPLES .. "/import_contacts_csv.lua", "--location", LOCATION, "--param", "file=ragged.csv",
                "--yes" } },
      want_cli = "quote the fields that contain the delimiter$",
      lua = "for _ in ghl.csv.read('ragged.csv') do end", want_lua = "pass ragged = true" },
    { "a checkpoint that cannot be written",
      cli = { { "run", "noop.lua", "--all-locations", "--checkpoint", "no/such/dir/cp.json", "--yes" } },
      want_cli = "pass a %-%-checkpoint file",
      lua = "ghl.each_location(function() end, {locations = 'all', checkpoint = 'no/such/dir/cp.json'})",
      want_lua = "pass checkpoint = a file" },
    { "a refused connection",
      cli = function()
        return { "api", "GET", "/contacts/" }, { GHL_TOKEN = PIT_LOCATION, GHL_LOCATION_ID = LOCATION,
          GHLUA_API_BASE = "http://127.0.0.1:" .. port }
      end,
      want_cli = "start the simulator %('ghlua sim'%) and point GHLUA_API_BASE at the URL it prints",
      lua = function()
        return ("local c = ghl.client{token = %q, location = %q, base = 'http://127.0.0.1:%d'}; c:get('/contacts/')")
          :format(PIT_LOCATION, LOCATION, port)
      end,
      want_lua = "GHLUA_API_BASE %(or the client.s base=%)" },
  }

  local function value(v) if type(v) == "function" then return v() end return v end

  for _, case in ipairs(CASES) do
    it(case[1] .. ": the command line names flags and variables", function()
      local args, env
      if type(case.cli) == "function" then args, env = case.cli() else args, env = case.cli[1], case.cli[2] end
      local r = ghlua(args, env)
      if os.getenv("HINTS_SHOW") then io.stderr:write(r.err) end
      assert.are.equal(case.code or 1, r.code, r.out .. r.err)
      assert.matches("^ghlua: [^\n]+\n$", r.err)          -- one line, no traceback
      local hint = hint_of(r.err)
      assert.is_string(hint, r.err)
      assert.matches(value(case.want_cli), hint)
      assert.is_nil(lua_syntax(hint), "Lua API syntax in a hint under the command line: " .. r.err)
    end)

    it(case[1] .. ": the Lua API keeps the Lua wording", function()
      local code = "local ok, e = pcall(function() " .. value(case.lua) .. " end)\n"
        .. "assert(not ok, 'no error')\n"
        .. "assert(ghl.error.is(e), tostring(e))\n"
        .. "io.write(e.hint or '')"
      local r = ghlua({ "-l", "ghl", "-e", code }, value(case.lua_env))
      if os.getenv("HINTS_SHOW") then io.stderr:write("  lua: ", r.out, "\n") end
      assert.are.equal(0, r.code, r.err)
      assert.matches(value(case.want_lua), r.out)
    end)
  end

  it("keep wordings a script gives as {lua =, cli =} with the surface's text", function()
    local r = ghlua { "-l", "ghl", "-e", [[
      local e = ghl.error.new { kind = "usage", message = "m", hint = { lua = "call f{x = 1}", cli = "pass --x 1" } }
      print(e.hint, ghl.error.wording { lua = "L", cli = "C" }, ghl.error.surface())
      e.hint = { lua = "later L", cli = "later C" }
      print(tostring(e))
      print(ghl.error.wording "same everywhere")
    ]] }
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("call f{x = 1}\tL\tlua\nm \u{2014} hint: later L\nsame everywhere\n", r.out)
  end)

  it("cannot be switched from inside a recipe's sandbox", function()
    local f = assert(io.open(work .. "/switch.lua", "w"))
    f:write('recipe { name = "switch", description = "tries to switch the surface", scopes = { "contacts.readonly" },'
      .. ' writes = false }\nreturn function() print(type(ghl.error.set_surface), ghl.error.surface()) end\n')
    f:close()
    local r = ghlua { "run", "switch.lua", "--location", LOCATION, "--yes" }
    assert.are.equal(0, r.code, r.err)
    assert.matches("^nil\tcli\n", r.out)
  end)
end)
