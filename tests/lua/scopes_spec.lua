-- ghl.scopes (catalogue, groups, parse, suggestions) and
-- ghl.oauth.url.authorize_url / check_url through their Lua surface.
local scopes = require "ghl.scopes"
local oauth_url = require "ghl.oauth.url"
local run = require "support.run"

local function set(list)
  local t = {}
  for _, v in ipairs(list) do t[v] = true end
  return t
end

describe("ghl.scopes catalogue", function()
  it("has one requestable row per requestable scope of the research table", function()
    local rows, requestable = scopes.rows(), 0
    for _, r in ipairs(rows) do if r.requestable then requestable = requestable + 1 end end
    local want_rows, want_requestable = 163, 161
    local tsv = io.open((os.getenv("GHLUA_SRC") or ".") .. "/../shared/highlevel/scopes.tsv")
    if tsv then
      want_rows = 0
      for line in tsv:lines() do
        if line ~= "" and not line:match("^#") then want_rows = want_rows + 1 end
      end
      tsv:close()
      want_requestable = want_rows - 2   -- locations.internal-access-only, locations/write
    end
    assert.are.equal(want_rows, #rows)
    assert.are.equal(want_requestable, requestable)
    assert.are.equal(want_requestable, #scopes.group("all").scopes)
  end)

  it("marks token types and agency flags", function()
    assert.are.same({ "Location", false, false, true },
      { scopes.info("contacts.readonly").tokens, scopes.info("contacts.readonly").agency_only,
        scopes.info("contacts.readonly").agency_pro, scopes.info("contacts.readonly").requestable })
    assert.are.equal("both", scopes.info("users.readonly").tokens)
    assert.are.equal("unknown", scopes.info("courses.readonly").tokens)
    assert.is_true(scopes.info("companies.readonly").agency_only)
    assert.is_true(scopes.info("locations.write").agency_pro)
    assert.is_true(scopes.info("saas/location.read").agency_pro)
    assert.is_false(scopes.info("locations/write").requestable)
    assert.is_false(scopes.info("locations.internal-access-only").requestable)
    assert.is_nil(scopes.info("contacts.read"))
  end)

  it("returns copies of its rows", function()
    scopes.info("contacts.readonly").tokens = "Company"
    assert.are.equal("Location", scopes.info("contacts.readonly").tokens)
  end)

  it("finds rows by scope, area or note text, any case", function()
    local found = set((function()
      local l = {}
      for _, r in ipairs(scopes.search("WALLET")) do l[#l + 1] = r.scope end
      return l
    end)())
    assert.is_true(found["charges.readonly"])
    assert.is_true(found["saas/location.complimentaryCredit.read"])
    assert.are.equal(#scopes.group("socialplanner").scopes, #scopes.search("socialplanner"))
    assert.are.same({}, scopes.search("no-such-word"))
  end)

  it("sorts scopes by the token type they need", function()
    local t = scopes.token_types { "contacts.readonly", "companies.readonly", "users.write", "courses.readonly", "bogus" }
    assert.are.same({ Location = { "contacts.readonly" }, Company = { "companies.readonly" },
                      both = { "users.write" }, unknown = { "courses.readonly" } }, t)
  end)

  it("names the scopes a sub-account app cannot be granted, and none for an agency app", function()
    local list = { "contacts.readonly", "locations.write", "locations.readonly", "snapshots.readonly",
                   "twilioaccount.read", "documents_contracts/list.readonly", "users.write", "courses.readonly", "bogus" }
    -- agency-only ones, except those also seen on sub-account apps
    assert.are.same({ "locations.write", "snapshots.readonly" }, scopes.misfits(list, "Location"))
    assert.are.same({}, scopes.misfits(list, "Company"))
    assert.are.same({}, scopes.misfits({ "contacts.readonly", "users.write" }, "Location"))
    -- every agency-only requestable scope but the ones seen on sub-account apps
    local agency = scopes.group("Agency").scopes
    local want = {}
    for _, s in ipairs(agency) do if not scopes.info(s).seen_location then want[#want + 1] = s end end
    assert.are.same(want, scopes.misfits(agency, "Location"))
  end)

  it("describes a target mismatch with the fitting scopes to ask for instead", function()
    local p = scopes.target_problem({ "contacts.readonly", "locations.write", "locations.readonly" }, "Location",
      "--user-type Company")
    assert.are.same({ "locations.write" }, p.scopes)
    assert.are.same({ "contacts.readonly", "locations.readonly" }, p.keep)
    assert.matches("^locations%.write is agency%-only %(Company%) and cannot be granted to an app whose target user"
      .. " is Location", p.message)
    assert.are.equal('leave it out: --scopes "contacts.readonly locations.readonly"; if the app\'s target user in the'
      .. " portal is Agency, say so: --user-type Company", p.fix)
    p = scopes.target_problem({ "companies.readonly", "snapshots.write" }, "Location")
    assert.matches("^companies%.readonly snapshots%.write are agency%-only", p.message)
    assert.matches("^ask for sub%-account scopes only", p.fix)
    assert.is_nil(scopes.target_problem({ "contacts.readonly" }, "Location"))
    assert.is_nil(scopes.target_problem({ "locations.write" }, "Company"))
  end)
end)

describe("ghl.hints scope union", function()
  local hints = require "ghl.hints"

  it("keeps every granted scope and adds the needed ones it lacks", function()
    local all, missing = hints.union("contacts.readonly contacts.write oauth.write", { "opportunities.readonly", "contacts.write" })
    assert.are.same({ "contacts.readonly", "contacts.write", "oauth.write", "opportunities.readonly" }, all)
    assert.are.same({ "opportunities.readonly" }, missing)
    all, missing = hints.union(nil, { "a.readonly" })
    assert.are.same({ { "a.readonly" }, { "a.readonly" } }, { all, missing })
  end)

  it("never proposes a login that asks for fewer scopes than the token has", function()
    local msg = "The token is not authorized for this scope."
    local ctx = { method = "GET", path = "/opportunities/pipelines", scopes = { "opportunities.readonly" },
      token = { app = "app1", kind = "oauth", resource_type = "Location", resource_id = "L1",
                scope = "contacts.readonly locations.readonly" } }
    local code, hint = hints.lookup(msg, ctx)
    assert.are.equal("missing_scope", code)
    assert.matches('ghlua auth login %-%-app app1 %-%-scopes "contacts%.readonly locations%.readonly opportunities%.readonly"$',
      hint)
    -- an agency token's grant comes with --user-type Company
    ctx.token.resource_type, ctx.token.resource_id = "Company", "C1"
    assert.matches('ghlua auth login %-%-app app1 %-%-user%-type Company %-%-scopes "contacts%.readonly '
      .. 'locations%.readonly opportunities%.readonly"$', select(2, hints.lookup(msg, ctx)))
    -- a grant not known: no list that could be smaller
    ctx.token.scope = nil
    local _, h = hints.lookup(msg, ctx)
    assert.matches('ghlua auth login %-%-scopes "<the scopes it has> opportunities%.readonly"$', h)
    -- a PIT is edited in HighLevel, not logged in again
    ctx.token = { app = "pit:ops", name = "ops", kind = "pit", resource_type = "Location", resource_id = "L1", scope = "x" }
    assert.matches("Private Integration Token 'ops'", select(2, hints.lookup(msg, ctx)))
  end)
end)

describe("ghl.scopes groups", function()
  local EXPECT = {
    ["Custom Fields"] = { "locations/customFields.readonly", "locations/customFields.write" },
    ["Custom Values"] = { "locations/customValues.readonly", "locations/customValues.write" },
    Orders = { "payments/orders.collectPayment", "payments/orders.readonly", "payments/orders.write" },
    Transactions = { "payments/transactions.readonly" },
    Subscriptions = { "payments/subscriptions.readonly" },
    ["Payments Integration"] = { "payments/integration.readonly", "payments/integration.write" },
    Tags = { "locations/tags.readonly", "locations/tags.write" },
    Tasks = { "locations/tasks.readonly", "locations/tasks.write" },
    Templates = { "locations/templates.readonly" },
    Locations = { "locations.readonly", "locations.write" },
    Contacts = { "contacts.readonly", "contacts.write" },
    ["Agency Pro"] = { "locations.write", "saas/company.read", "saas/company.write",
                       "saas/location.complimentaryCredit.read", "saas/location.complimentaryCredit.write",
                       "saas/location.read", "saas/location.write" },
  }

  it("lists the portal's groups in order, each non-empty", function()
    local names = {}
    for _, g in ipairs(scopes.groups()) do
      names[#names + 1] = g.name
      assert.is_true(#g.scopes > 0, g.name)
    end
    assert.are.same({ "Businesses", "Calendars", "Conversations", "Campaigns", "Contacts", "Courses", "Funnels",
      "Invoices", "Forms", "Links", "Locations", "Custom Values", "Custom Fields", "Orders", "Tags", "Templates",
      "Tasks", "Transactions", "Medias", "Opportunities", "Payments Integration", "Products", "Subscriptions",
      "Surveys", "Users", "Workflows", "Agency", "Agency Pro", "all" }, names)
  end)

  it("expands each group to its read and write scopes", function()
    local flagged = { Agency = true, ["Agency Pro"] = true }
    for _, g in ipairs(scopes.groups()) do
      if EXPECT[g.name] then
        table.sort(g.scopes)
        assert.are.same(EXPECT[g.name], g.scopes, g.name)
      end
      local has = set(g.scopes)
      for _, s in ipairs(g.scopes) do
        local twin = s:gsub("%.readonly$", ".write")
        if twin == s then twin = s:gsub("%.write$", ".readonly") end
        local row = scopes.info(twin)
        if twin ~= s and row and row.requestable and not flagged[g.name] then assert.is_true(has[twin], g.name .. " lacks " .. twin) end
      end
    end
  end)

  it("puts exactly the Company-only requestable scopes in Agency", function()
    local want = {}
    for _, r in ipairs(scopes.rows()) do
      if r.tokens == "Company" and r.requestable then want[#want + 1] = r.scope end
    end
    assert.are.same(want, scopes.group("agency").scopes)
    assert.is_true(set(want)["companies.readonly"])
  end)

  it("matches names in any case, with spaces, hyphens or underscores", function()
    for _, n in ipairs { "custom-fields", "Custom Fields", "custom_fields", "CUSTOM  FIELDS" } do
      assert.are.same(EXPECT["Custom Fields"], scopes.group(n).scopes, n)
    end
    assert.are.equal("area", scopes.group("socialplanner").kind)
    assert.is_nil(scopes.group("nope"))
  end)
end)

describe("ghl.scopes.parse", function()
  it("splits on commas and any whitespace, drops duplicates, keeps first-seen order", function()
    assert.are.same({ "contacts.readonly", "contacts.write", "calendars.readonly" },
      scopes.parse(" contacts.readonly,contacts.write \n\tcalendars.readonly ,, contacts.readonly "))
  end)

  it("mixes groups (one or more words) and scopes, in a string or an array", function()
    assert.are.same({ "contacts.readonly", "contacts.write", "locations/customFields.readonly",
                      "locations/customFields.write", "calendars.readonly" },
      scopes.parse("contacts.readonly, Contacts Custom Fields custom-fields calendars.readonly"))
    assert.are.same({ "locations/tags.readonly", "locations/tags.write", "payments/transactions.readonly" },
      scopes.parse { "tags", "locations/tags.write transactions" })
  end)

  it("reports an unknown scope with the nearest real one", function()
    local list, err = scopes.parse("contacts.read")
    assert.is_nil(list)
    assert.are.equal("scope", err.kind)
    assert.matches("did you mean contacts%.readonly%?", err.message)
    assert.are.same({ "contacts.readonly" }, err.unknown[1].suggestions)
  end)

  it("names every unknown entry, and suggests groups too", function()
    local _, err = scopes.parse("contacts.readonly calender.readonly Custom Feilds zzzz")
    assert.are.same({ "calender.readonly", "Custom Feilds", "zzzz" },
      { err.unknown[1].name, err.unknown[2].name, err.unknown[3].name })
    assert.matches("calendars%.readonly", err.message)
    assert.matches("custom%-fields", err.message)
    assert.matches("'zzzz'", err.message)
  end)

  -- found by tests/fuzz (target check: a link with a long unknown scope
  -- took seconds per kilobyte, every candidate's full edit distance)
  it("computes edit distances up to a limit, and suggests nothing for a very long name", function()
    assert.are.equal(3, scopes.distance("kitten", "sitting"))
    assert.are.equal(3, scopes.distance("kitten", "sitting", 3))
    assert.are.equal(2, scopes.distance("kitten", "sitting", 1))
    assert.are.equal(3, scopes.distance(("contacts"):rep(1000), "contacts", 2))
    assert.are.same({}, scopes.suggest(("contacts"):rep(1000)))
    assert.are.equal("contacts.readonly", scopes.suggest("contacts.readonli")[1])
  end)

  it("suggests the right case for a case-only mismatch (scope names are case-sensitive)", function()
    local _, err = scopes.parse("Contacts.readonly")
    assert.matches("did you mean contacts%.readonly%? scope names are case%-sensitive", err.message)
  end)

  it("refuses scopes that are not requestable", function()
    local _, err = scopes.parse("locations/write")
    assert.matches("not requestable", err.message)
    assert.matches("locations%.write", err.message)
  end)

  it("refuses an empty list", function()
    local list, err = scopes.parse(" , ")
    assert.is_nil(list)
    assert.are.equal("no scopes given", err.message)
  end)

  it("treats a non-string as a bug", function()
    assert.has_error(function() scopes.parse(42) end)
    assert.has_error(function() scopes.parse { "contacts", 1 } end)
  end)
end)

describe("ghl.oauth.url.authorize_url", function()
  local base = { client_id = "68a2fd84fab6670f45220ebf-megyp358", redirect_uri = "http://127.0.0.1:8080/cb",
                 scopes = "contacts custom-fields" }
  local function with(t)
    local o = {}
    for k, v in pairs(base) do o[k] = v end
    for k, v in pairs(t) do o[k] = v end
    return o
  end

  it("builds the v2 link with parameters in order and %20 between scopes", function()
    local url, state = oauth_url.authorize_url(with { state = "s1" })
    assert.are.equal("https://marketplace.gohighlevel.com/v2/oauth/chooselocation?response_type=code"
      .. "&client_id=68a2fd84fab6670f45220ebf-megyp358&redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fcb"
      .. "&scope=contacts.readonly%20contacts.write%20locations%2FcustomFields.readonly%20locations%2FcustomFields.write"
      .. "&state=s1", url)
    assert.are.equal("s1", state)
  end)

  it("adds the optional parameters and switches host and path", function()
    local url = oauth_url.authorize_url(with { state = "a b", whitelabel = true, login_window = "self",
                                               version_id = "v9", legacy_path = true, scopes = { "tags" } })
    assert.are.equal("https://marketplace.leadconnectorhq.com/oauth/chooselocation?response_type=code"
      .. "&client_id=68a2fd84fab6670f45220ebf-megyp358&redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fcb"
      .. "&scope=locations%2Ftags.readonly%20locations%2Ftags.write&state=a%20b&loginWindowOpenMode=self&version_id=v9", url)
  end)

  it("generates a different random state each time, or none with state=false", function()
    local u1, s1 = oauth_url.authorize_url(base)
    local _, s2 = oauth_url.authorize_url(base)
    assert.matches("^%x+$", s1)
    assert.are.equal(32, #s1)
    assert.are_not.equal(s1, s2)
    assert.matches("&state=" .. s1 .. "$", u1)
    local u3, s3 = oauth_url.authorize_url(with { state = false })
    assert.is_nil(s3)
    assert.is_nil(u3:find("state=", 1, true))
  end)

  it("takes its scheme and host from base= or GHLUA_MARKETPLACE_BASE", function()
    local url = oauth_url.authorize_url(with { base = "http://127.0.0.1:9", state = "x" })
    assert.matches("^http://127%.0%.0%.1:9/v2/oauth/chooselocation%?response_type=code&", url)
    local r = run.ghlua({ "-e", [[
      local url = require("ghl.oauth.url")
      local u = url.authorize_url { client_id = "a-b", redirect_uri = "https://x.test/cb", scopes = "forms", state = "z" }
      print(u)
      print(#url.check_url(u))
    ]] }, { env = { GHLUA_MARKETPLACE_BASE = "http://127.0.0.1:4321/" } })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("http://127.0.0.1:4321/v2/oauth/chooselocation?response_type=code&client_id=a-b"
      .. "&redirect_uri=https%3A%2F%2Fx.test%2Fcb&scope=forms.readonly%20forms.write&state=z\n0\n", r.out)
  end)

  it("raises a ghl.error naming the bad option", function()
    local E = require "ghl.error"
    for _, c in ipairs {
      { { client_id = "" }, "oauth", "client_id" },
      { { redirect_uri = "/cb" }, "oauth", "redirect_uri" },
      { { redirect_uri = "127.0.0.1:8080/cb" }, "oauth", "redirect_uri" },
      { { scopes = "contacts.read" }, "scope", "scopes" },
      { { scopes = " " }, "scope", "scopes" },
      { { login_window = "tab" }, "oauth", "login_window" },
    } do
      local ok, err = pcall(oauth_url.authorize_url, with(c[1]))
      assert.is_false(ok)
      assert.is_true(E.is(err), tostring(err))
      assert.are.same({ c[2], c[3] }, { err.kind, err.field })
    end
    local o = with {}
    o.scopes = nil
    local _, err = pcall(oauth_url.authorize_url, o)
    assert.are.same({ "scope", "no scopes given" }, { err.kind, err.message })
    assert.has_error(function() oauth_url.authorize_url("x") end)
  end)
end)

describe("ghl.oauth.url.check_url", function()
  it("finds nothing wrong with a link authorize_url built", function()
    local url = oauth_url.authorize_url { client_id = "68a2fd84fab6670f45220ebf-megyp358",
      redirect_uri = "https://app.example.com/oauth/cb", scopes = "contacts calendars" }
    local problems, link = oauth_url.check_url(url, { app = { client_id = "68a2fd84fab6670f45220ebf-megyp358",
      redirect_uri = "https://app.example.com/oauth/cb", user_type = "Location", whitelabel = false } })
    assert.are.same({}, problems)
    assert.are.equal(2 + #scopes.group("calendars").scopes, #link.scopes)
  end)

  it("reads + as a space, like the portal's own links", function()
    local problems, link = oauth_url.check_url("https://marketplace.gohighlevel.com/v2/oauth/chooselocation"
      .. "?response_type=code&client_id=a-b&redirect_uri=https%3A%2F%2Fx.test%2Fcb&scope=contacts.readonly+locations%2Ftags.write")
    assert.are.same({}, problems)
    assert.are.same({ "contacts.readonly", "locations/tags.write" }, link.scopes)
  end)

  it("returns problems with code, level, message and fix", function()
    local problems = oauth_url.check_url("https://app.gohighlevel.com/v2/oauth/chooselocation?client_id=a-b")
    local codes = {}
    for _, p in ipairs(problems) do
      codes[#codes + 1] = p.code
      assert.is_string(p.message)
      assert.is_string(p.fix)
      assert.is_truthy(({ error = 1, warning = 1, note = 1 })[p.level])
    end
    assert.are.same({ "wrong_host", "missing_parameter", "missing_parameter", "missing_parameter" }, codes)
  end)

  it("raises kind oauth, code not_a_url, for text that is not a URL", function()
    local ok, err = pcall(oauth_url.check_url, "just some words")
    assert.is_false(ok)
    assert.are.same({ "oauth", "not_a_url" }, { err.kind, err.code })
  end)
end)
