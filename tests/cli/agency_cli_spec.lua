-- The command line at agency size, against `ghlua sim`: `auth status` with
-- 300 tokens (one line each, aligned, no secret; --long and --json keep
-- their content), `auth locations` with names and an installed column,
-- "several tokens match" naming a few and the flag that picks one, the
-- scope hint asking for the union of the granted and the needed scopes
-- (followed, it works), `app update`, and the scopes an app's target user
-- cannot be granted: a warning from `app add` and `app update`, a refusal
-- from `auth login` before any browser opens (--force goes on).
local oauth = require "support.oauth"
local agency = require "support.agency"
local http = require "ghl.http"
local cjson = require "cjson"

local function lines(text)
  local out = {}
  for l in text:gmatch("([^\n]*)\n") do out[#out + 1] = l end
  return out
end

local function set(list)
  local t = {}
  for _, v in ipairs(list) do t[v] = true end
  return t
end

local function words(text)
  local out = {}
  for w in text:gmatch("%S+") do out[#out + 1] = w end
  return out
end

local function plain(s)
  return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
end

local function requests(s, q)
  return assert(assert(http.request { url = s.url .. "/__sim/requests", query = q }):json()).requests
end

-- Every access, refresh and previous refresh token in o's store, and the
-- client secret: none may appear in what the commands print.
local function secrets(o)
  local r = o.lua([[
    for _, row in ipairs(require('ghl.auth').store():find_tokens {}) do
      for _, k in ipairs { 'access_token', 'refresh_token', 'previous_refresh_token' } do
        if row[k] then print(row[k]) end
      end
    end]])
  assert(r.code == 0, r.err)
  local list = lines(r.out)
  list[#list + 1] = o.secret
  return list
end

local function assert_no_secret(text, list)
  for _, s in ipairs(list) do assert.is_nil(text:find(s, 1, true), "a secret was printed") end
end

describe("an agency with 300 tokens", function()
  local a, locs

  lazy_setup(function()
    a = agency.start(299, "contacts.readonly contacts.write")
    locs = a.locations
    assert(#locs == 300, "expected 300 locations")
    -- 299 location tokens minted through the real flow (locationToken),
    -- next to the agency's own: 300 tokens
    local ids = {}
    for i = 2, #locs do ids[#ids + 1] = locs[i].id end
    local r = a.lua(([[
      local auth = require 'ghl.auth'
      for id in (%q):gmatch('%%S+') do auth.token { location = id } end]]):format(table.concat(ids, " ")))
    assert(r.code == 0, r.err)
  end)

  lazy_teardown(function() if a then a.stop() end end)

  it("auth locations lists every location with its name and whether the app is installed", function()
    local r = a.ghlua { "auth", "locations" }
    assert.are.equal(0, r.code, r.err)
    local out = lines(r.out)
    assert.are.equal(301, #out)
    assert.matches("^LOCATION +NAME +INSTALLED$", out[1])
    local j = a.ghlua { "auth", "locations", "--json" }
    assert.are.equal(0, j.code, j.err)
    local items = cjson.decode(j.out)
    assert.are.equal(300, #items)
    local name_of = {}
    for _, l in ipairs(locs) do name_of[l.id] = l.name end
    local installed = 0
    for i, item in ipairs(items) do
      local line = out[i + 1]
      local id, name, yes = line:match("^(%S+) +(.-) +(%S+)$")
      assert.are.equal(item._id, id)
      assert.are.equal(name_of[id], name)
      assert.are.equal(item.isInstalled and "yes" or "no", yes)
      -- aligned: every column starts where its title does
      assert.are.equal(out[1]:find("NAME", 1, true), line:find(name, #id + 1, true))
      assert.are.equal(out[1]:find("INSTALLED", 1, true), line:find(yes, #line - #yes + 1, true))
      if item.isInstalled then installed = installed + 1 end
    end
    -- a minted location has the app installed, whatever else the company holds
    assert.is_true(installed >= 299)
    assert.matches("^300 locations, the app installed on " .. installed .. " ", r.err)
    local only = a.ghlua { "auth", "locations", "--installed" }
    assert.are.equal(0, only.code, only.err)
    assert.are.equal(installed + 1, #lines(only.out))
    assert.is_nil(only.out:find(" no\n", 1, true))
  end)

  it("auth status prints one aligned line per token, names included, and no secret", function()
    assert.are.equal(0, a.ghlua({ "auth", "locations" }).code)   -- HighLevel's names, remembered
    local r = a.ghlua { "auth", "status" }
    assert.are.equal(0, r.code, r.err)
    local out = lines(r.out)
    assert.are.equal(301, #out)
    local head = out[1]
    assert.matches("^TYPE +RESOURCE +NAME +APP +STATE +EXPIRES +SCOPES$", head)
    local at = {}
    for _, t in ipairs { "RESOURCE", "NAME", "APP", "STATE", "EXPIRES" } do at[t] = head:find(t, 1, true) end
    local name_of = {}
    for _, l in ipairs(locs) do name_of[l.id] = l.name end
    local seen, companies = {}, 0
    for i = 2, #out do
      local line = out[i]
      local id = line:match("^%S+ +(%S+)")
      assert.is_truthy(id, line)
      assert.is_nil(seen[id], "a token listed twice")
      seen[id] = true
      assert.are.equal(at.RESOURCE, line:find(id, 1, true))
      local typ = line:match("^(%S+)")
      if typ == "Company" then
        companies = companies + 1
        assert.are.equal(2, i, "the agency's token comes first")
        assert.are.equal("-", line:sub(at.NAME, at.NAME))
      else
        assert.are.equal("Location", typ)
        local name = name_of[id]
        assert.are.equal(name, line:sub(at.NAME, at.NAME + #name - 1))
      end
      assert.are.equal("app1 ", line:sub(at.APP, at.APP + 4))
      assert.are.equal("ok ", line:sub(at.STATE, at.STATE + 2))
      assert.matches("^in 2[34]h %d+m", line:sub(at.EXPIRES))
      assert.matches(" %d+$", line)
      assert.are.equal(#head, #line, "the SCOPES column is right-aligned under its title")
    end
    assert.are.equal(1, companies)
    for _, l in ipairs(locs) do assert.is_true(seen[l.id] or l.id == locs[1].id) end
    -- sorted by name under the agency
    for i = 4, #out do
      assert.is_true(out[i - 1]:sub(at.NAME, at.APP - 1):lower() <= out[i]:sub(at.NAME, at.APP - 1):lower())
    end
    assert_no_secret(r.out .. r.err, secrets(a))
  end)

  it("auth status --long and --json keep every token's detail", function()
    local j = a.ghlua { "auth", "status", "--json" }
    assert.are.equal(0, j.code, j.err)
    local rows = cjson.decode(j.out)
    assert.are.equal(300, #rows)
    local keys = { "app", "kind", "type", "resource", "status", "scopes", "expires_at", "access_token", "refresh_token" }
    for _, row in ipairs(rows) do
      for _, k in ipairs(keys) do assert.is_not_nil(row[k], k) end
      assert.matches("^…", row.access_token)
    end
    local l = a.ghlua { "auth", "status", "--long" }
    assert.are.equal(0, l.code, l.err)
    local n = { token = 0, refresh = 0, scopes = 0, company = 0 }
    for _, line in ipairs(lines(l.out)) do
      if line:match("^token (%a+) (%S+) %(app app1%): ok, expires in .*, token …") then n.token = n.token + 1 end
      if line:match("^  refresh token …%S+, ") then n.refresh = n.refresh + 1 end
      if line:match("^  scopes granted: oauth%.readonly oauth%.write contacts%.readonly contacts%.write$") then
        n.scopes = n.scopes + 1
      end
      if line == "  company " .. a.sim.company then n.company = n.company + 1 end
    end
    assert.are.same({ token = 300, refresh = 300, scopes = 300, company = 299 }, n)
    assert_no_secret(l.out .. j.out, secrets(a))
    local both = a.ghlua { "auth", "status", "--long", "--json" }
    assert.are.equal(2, both.code)
  end)

  it("names a few of the tokens that match and the flag that picks one", function()
    local r = a.ghlua { "auth", "token" }
    assert.are.equal(2, r.code)
    assert.are.equal("", r.out)
    assert.matches("^ghlua: no location or company was named, and 300 tokens are stored: app1 Company %w+, "
      .. "app1 Location %w+ '[^']+', app1 Location", r.err)
    assert.matches(", and 295 more — hint: choose one with %-%-location ID %(or GHL_LOCATION_ID%), e%.g%. "
      .. "%-%-location %w+\n$", r.err)
    local _, shown = r.err:gsub("app1 %a+ %w+", "")
    assert.are.equal(5, shown)
    -- the flag it names picks one
    local id = r.err:match("e%.g%. %-%-location (%w+)")
    local t = a.ghlua { "auth", "token", "--location", id }
    assert.are.equal(0, t.code, t.err)
    local e = a.ghlua({ "auth", "token" }, { env = { GHL_LOCATION_ID = id } })
    assert.are.equal(0, e.code, e.err)
    assert.are.equal(t.out, e.out)
  end)

  it("asks the agency to log in again with every scope it has plus the missing one", function()
    local loc = locs[2].id
    local r = a.ghlua { "api", "GET", "/opportunities/pipelines", "--location", loc }
    assert.are.equal(1, r.code)
    assert.matches("The token is not authorized for this scope", r.err)
    local cmd = r.err:match("hint: .-(ghlua auth login [^\n]*)")
    assert.is_truthy(cmd, r.err)
    assert.matches("^ghlua auth login %-%-app app1 %-%-user%-type Company %-%-scopes \"", cmd)
    local asked = words(cmd:match('%-%-scopes "([^"]*)"'))
    -- the agency's grant, oauth.write included (a smaller set would stop
    -- it minting location tokens), plus the scope the call needs
    assert.are.same({ "oauth.readonly", "oauth.write", "contacts.readonly", "contacts.write", "opportunities.readonly" },
      asked)
    assert.matches("then 'ghlua auth logout %-%-app app1 %-%-location " .. loc .. "'", cmd)
  end)
end)

describe("auth status with names HighLevel could send", function()
  it("keeps one aligned line per token: escapes, wide characters and long names cut", function()
    local a = agency.start(3, "contacts.readonly")
    finally(a.stop)
    local l2, l3 = a.locations[2].id, a.locations[3].id
    local r = a.lua(([[
      local auth = require 'ghl.auth'
      auth.token { location = %q }
      auth.token { location = %q }
      require('ghl.locations').remember(%q, {
        { _id = %q, name = "Caf\u{e9} \27[31mred\nnext\tline" },
        { _id = %q, name = "\u{6771}\u{4eac} \u{1F363} Sushi Bar with a name far longer than any column" } })]])
      :format(l2, l3, a.sim.company, l2, l3))
    assert.are.equal(0, r.code, r.err)
    local s = a.ghlua { "auth", "status" }
    assert.are.equal(0, s.code, s.err)
    local out = lines(s.out)
    assert.are.equal(4, #out)
    assert.is_nil(s.out:find("\27", 1, true))
    local columns = require "ghl.columns"
    -- the APP column starts at the same display column on every line
    local function app_at(line)
      local i = line:find(" app1 ", 1, true)
      return columns.width(line:sub(1, i))
    end
    for i = 2, #out do assert.are.equal(columns.width(out[1]:sub(1, out[1]:find("APP", 1, true) - 1)), app_at(out[i])) end
    assert.matches("Café \\x1b%[31mred next l…  app1", s.out)
    local cut = s.out:match("(東京 🍣 [^\n]-…)")
    assert.is_truthy(cut, s.out)
    assert.are.equal(24, columns.width(cut))
  end)
end)

describe("the scope hint of a location login", function()
  local o
  before_each(function()
    o = oauth.start { "--auto-approve" }
    o.add_app("contacts.readonly contacts.write locations.readonly")
    local r = o.login()
    assert(r.code == 0, r.err)
  end)
  after_each(function() o.stop() end)

  it("gives the union of the granted scopes and the missing one, and following it works", function()
    local granted = cjson.decode(o.ghlua({ "auth", "status", "--json" }).out)[1].scopes
    local r = o.ghlua { "api", "GET", "/opportunities/pipelines" }
    assert.are.equal(1, r.code)
    assert.matches("^ghlua: GET /opportunities/pipelines: The token is not authorized for this scope", r.err)
    assert.matches("hint: GET /opportunities/pipelines needs the scope opportunities%.readonly: add "
      .. "opportunities%.readonly to the app's scopes", r.err)
    local cmd = r.err:match("(ghlua auth login [^\n]*)")
    assert.matches("^ghlua auth login %-%-app app1 %-%-scopes \"", cmd)
    local asked = words(cmd:match('%-%-scopes "([^"]*)"'))
    local want = words(granted)
    want[#want + 1] = "opportunities.readonly"
    assert.are.same(want, asked)
    -- follow it: the call now succeeds, and the token kept every scope
    local l = o.login { "--scopes", table.concat(asked, " ") }
    assert.are.equal(0, l.code, l.err)
    local again = o.ghlua { "api", "GET", "/opportunities/pipelines" }
    assert.are.equal(0, again.code, again.err)
    local now = set(words(cjson.decode(o.ghlua({ "auth", "status", "--json" }).out)[1].scopes))
    for _, s in ipairs(want) do assert.is_true(now[s], s) end
  end)
end)

describe("several tokens for one location", function()
  it("asks for --app when one location has tokens of several apps, and --app picks one", function()
    local o = oauth.start {}
    finally(o.stop)
    local loc = "zzLocationWithTwoPits"
    for _, name in ipairs { "a", "b" } do
      local r = o.ghlua({ "auth", "pit", "add", name, "--location", loc, "--offline" },
        { stdin = "pit-0000-" .. name .. "-0123456789abcdef\n" })
      assert.are.equal(0, r.code, r.err)
    end
    local r = o.ghlua { "auth", "token", "--location", loc }
    assert.are.equal(2, r.code)
    assert.are.equal("ghlua: 2 tokens match location " .. loc .. ": pit:a Location " .. loc .. ", pit:b Location "
      .. loc .. " — hint: choose one with --app NAME (pit:a, pit:b)\n", r.err)
    local t = o.ghlua { "auth", "token", "--location", loc, "--app", "pit:b" }
    assert.are.same({ 0, "pit-0000-b-0123456789abcdef\n" }, { t.code, t.out })
  end)
end)

describe("app update", function()
  local o
  before_each(function()
    o = oauth.start { "--auto-approve" }
    o.add_app("contacts.readonly")
  end)
  after_each(function() o.stop() end)

  local function app1()
    for _, a in ipairs(cjson.decode(o.ghlua({ "app", "list", "--json" }).out)) do
      if a.name == "app1" then return a end
    end
  end

  it("changes the scopes a login asks for by default, and keeps the rest", function()
    local before = app1()
    local r = o.ghlua { "app", "update", "app1", "--scopes", "contacts opportunities.readonly" }
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("updated app app1: scopes contacts.readonly contacts.write opportunities.readonly\n", r.out)
    assert.are.equal("", r.err)
    local after = app1()
    assert.are.equal("contacts.readonly contacts.write opportunities.readonly", after.scopes)
    after.scopes, before.scopes = nil, nil
    assert.are.same(before, after)
    local l = o.login()
    assert.are.equal(0, l.code, l.err)
    local row = cjson.decode(o.ghlua({ "auth", "status", "--json" }).out)[1]
    assert.are.same(set { "contacts.readonly", "contacts.write", "opportunities.readonly" }, set(words(row.scopes)))
  end)

  it("replaces the secret from standard input or GHL_CLIENT_SECRET only with --secret, never showing it", function()
    local new = "a-new-client-secret-0123456789-WXYZ"
    local r = o.ghlua({ "app", "update", "app1", "--redirect-uri", o.redirect_uri }, { env = { GHL_CLIENT_SECRET = new } })
    assert.are.equal(0, r.code, r.err)
    assert.matches("…SECR", app1().client_secret)
    r = o.ghlua({ "app", "update", "app1", "--secret" }, { env = { GHL_CLIENT_SECRET = "" }, stdin = new .. "\n" })
    assert.are.same({ 0, "updated app app1: secret …WXYZ\n" }, { r.code, r.out }, r.err)
    assert.matches("…WXYZ", app1().client_secret)
    assert.is_nil((r.out .. r.err):find(new, 1, true))
    r = o.ghlua({ "app", "update", "app1", "--secret" }, { env = { GHL_CLIENT_SECRET = "" } })
    assert.are.equal(2, r.code)
    assert.matches("no client secret: set GHL_CLIENT_SECRET, pipe it on standard input", r.err)
  end)

  it("refuses what it cannot do with status 2", function()
    local r = o.ghlua { "app", "update", "nosuch", "--scopes", "contacts" }
    assert.are.equal(2, r.code)
    assert.matches("no app named 'nosuch'", r.err)
    r = o.ghlua { "app", "update", "app1" }
    assert.are.equal(2, r.code)
    assert.matches("nothing to update", r.err)
    r = o.ghlua { "app", "update", "app1", "--scopes", "contacts.read" }
    assert.are.equal(2, r.code)
    assert.matches("did you mean contacts%.readonly", r.err)
    r = o.ghlua { "app", "update", "app1", "--user-type", "Agency" }
    assert.are.equal(2, r.code)
    -- another app's client id would orphan the stored tokens
    assert.are.equal(0, o.login().code)
    r = o.ghlua { "app", "update", "app1", "--client-id", "0123456789abcdef01234567-other" }
    assert.are.equal(2, r.code)
    assert.matches("belongs to another app", r.err)
    assert.are.equal(o.client_id, app1().client_id)
  end)
end)

describe("scopes the app's target user cannot be granted", function()
  local o, mark
  before_each(function()
    o = oauth.start { "--auto-approve" }
    mark = os.tmpname()
    os.remove(mark)
  end)
  after_each(function()
    o.stop()
    os.remove(mark)
  end)

  -- A browser that only records that it was opened.
  local function recorder()
    return ("sh -c 'touch %s' browser"):format(mark)
  end

  it("app add and app update warn, naming the scope, and store the app", function()
    local r = o.add_app("contacts locations")
    assert.matches("^ghlua: warning: locations%.write is agency%-only %(Company%) and cannot be granted to an app whose"
      .. " target user is Location %(sub%-account%)", r.err)
    assert.matches("leave it out: %-%-scopes \"contacts%.readonly contacts%.write locations%.readonly\"", r.err)
    assert.matches("say so: %-%-user%-type Company\n$", r.err)
    r = o.ghlua { "app", "update", "app1", "--scopes", "contacts.readonly companies.readonly snapshots.readonly" }
    assert.are.equal(0, r.code, r.err)
    assert.matches("^ghlua: warning: companies%.readonly snapshots%.readonly are agency%-only", r.err)
    -- an agency app may ask for them
    r = o.ghlua { "app", "update", "app1", "--user-type", "Company" }
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("", r.err)
    r = o.ghlua { "app", "add", "agency", "--client-id", o.client_id, "--redirect-uri", o.redirect_uri,
                  "--user-type", "Company", "--scopes", "contacts locations" }
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("", r.err)
  end)

  it("auth login refuses at once, before any browser opens, with the scopes to ask for instead", function()
    o.add_app("contacts.readonly")
    assert(http.request { method = "DELETE", url = o.sim.url .. "/__sim/requests" })
    local r = o.ghlua({ "auth", "login", "--app", "app1", "--scopes", "contacts locations", "--timeout", "300" },
      { env = { BROWSER = recorder() } })
    assert.are.equal(2, r.code)
    assert.are.equal("", r.out)
    assert.matches("^ghlua: locations%.write is agency%-only %(Company%)", r.err)
    assert.matches("hint: leave it out: %-%-scopes \"contacts%.readonly contacts%.write locations%.readonly\"; "
      .. "if the app's target user in the portal is Agency, say so: 'ghlua app update app1 %-%-user%-type Company'; "
      .. "or %-%-force to open the consent page anyway\n$", r.err)
    assert.is_nil(io.open(mark), "the browser was opened")
    assert.are.same({}, requests(o.sim))
    -- the scopes it proposes log in
    local ok = o.login { "--scopes", r.err:match('%-%-scopes "([^"]*)"') }
    assert.are.equal(0, ok.code, ok.err)
    -- the app's stored scopes, used without --scopes: the fix updates them
    assert.are.equal(0, o.ghlua({ "app", "update", "app1", "--scopes", "contacts.readonly snapshots.readonly" }).code)
    r = o.ghlua({ "auth", "login", "--app", "app1" }, { env = { BROWSER = recorder() } })
    assert.are.equal(2, r.code)
    assert.matches("^ghlua: snapshots%.readonly is agency%-only", r.err)
    assert.matches("hint: leave it out: 'ghlua app update app1 %-%-scopes \"contacts%.readonly\"';", r.err)
    assert.is_nil(io.open(mark), "the browser was opened")
  end)

  it("auth login --force opens the consent page anyway, which refuses it", function()
    o.add_app("contacts.readonly")
    assert(http.request { method = "DELETE", url = o.sim.url .. "/__sim/requests" })
    local r = o.ghlua({ "auth", "login", "--app", "app1", "--scopes", "contacts.readonly locations.write", "--force",
      "--timeout", "1" }, { env = { BROWSER = "curl -s -o /dev/null" } })
    assert.are.equal(1, r.code)
    assert.matches("^ghlua: warning: locations%.write is agency%-only", r.err)
    assert.matches("no approval arrived within 1 seconds", r.err)
    local seen = requests(o.sim, { path = "/v2/oauth/chooselocation" })
    assert.are.equal(1, #seen)
    assert.are.equal(400, seen[1].status)
  end)

  it("auth login with an agency app or --user-type Company on an unstored app does not refuse", function()
    local r = o.ghlua({ "auth", "login", "--client-id", o.client_id, "--redirect-uri", o.redirect_uri, "--scopes",
      "contacts.readonly locations.write", "--user-type", "Company", "--timeout", "1" },
      { env = { BROWSER = recorder() } })
    assert.are.equal(1, r.code)
    assert.matches("no approval arrived", r.err)
    assert.is_truthy(io.open(mark), "the browser was not opened")
    assert.is_nil(r.err:find("agency-only", 1, true))
  end)
end)
