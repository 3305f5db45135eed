-- `ghlua scopes`, `ghlua auth url` and `ghlua auth check` as a user runs
-- them: output, one lint case per test, and exit statuses.
local run = require "support.run"
local cjson = require "cjson"
local ghlua = run.ghlua

local CLIENT = "68a2fd84fab6670f45220ebf-megyp358"
local BASE = "https://marketplace.gohighlevel.com/v2/oauth/chooselocation"
local REDIRECT = "redirect_uri=http%3A%2F%2F127.0.0.1%3A8080%2Fcb"

-- A clean link with parts replaced: link{host=, path=, query=} or link{scope=, client=, extra=}.
local function link(t)
  t = t or {}
  local query = t.query or table.concat({
    "response_type=code", "client_id=" .. (t.client or CLIENT), t.redirect or REDIRECT,
    "scope=" .. (t.scope or "contacts.readonly%20contacts.write"),
  }, "&") .. (t.extra or "")
  return (t.base or BASE) .. "?" .. query
end

local function check(url, ...)
  return ghlua { "auth", "check", url, ... }
end

-- Assert that `ghlua auth check` reported a problem with this code (and
-- optionally a message pattern) and exited 1.
local function reports(r, code, pattern, level)
  assert.are.equal(1, r.code, r.out .. r.err)
  local line = r.out:match("[^\n]*%[" .. code:gsub("%p", "%%%0") .. "[,%]][^\n]*")
  assert.is_not_nil(line, "no " .. code .. " in:\n" .. r.out)
  assert.matches("^problem: .+ \u{2014} fix: .+", line)
  if pattern then assert.matches(pattern, line) end
  if level then assert.matches(", " .. level .. "%]$", line) end
end

describe("ghlua scopes", function()
  it("lists the groups and their scopes", function()
    local r = ghlua { "scopes" }
    assert.are.equal(0, r.code, r.err)
    assert.matches("\nCustom Fields\n  locations/customFields%.readonly locations/customFields%.write\n", r.out)
    assert.matches("\nAgency Pro\n", r.out)
    assert.matches("\nall %(%d+ scopes%)", r.out)
  end)

  it("shows a group's scopes in aligned columns with token type and flags", function()
    local r = ghlua { "scopes", "agency-pro" }
    assert.are.equal(0, r.code, r.err)
    assert.matches("^SCOPE%s+AREA%s+TOKEN%s+FLAGS%s+NOTE\n", r.out)
    assert.matches("\nlocations%.write%s+locations%s+Company%s+agency%-only,agency%-pro ", r.out)
    local col
    for line in r.out:gmatch("[^\n]+") do
      local c = line:find(" AREA ") or line:find(" saas ") or line:find(" locations ")
      col = col or c
      assert.are.equal(col, c, line)
    end
  end)

  it("shows a single scope, even one that is not requestable", function()
    local r = ghlua { "scopes", "locations/write" }
    assert.are.equal(0, r.code, r.err)
    assert.matches("locations/write%s+locations%s+Company%s+agency%-only,not%-requestable", r.out)
  end)

  it("searches scope, area and note text", function()
    local r = ghlua { "scopes", "--search", "Wallet" }
    assert.are.equal(0, r.code, r.err)
    assert.matches("charges%.readonly", r.out)
    assert.matches("saas/location%.complimentaryCredit%.read", r.out)
    r = ghlua { "scopes", "--search", "no-such-thing" }
    assert.are.same({ 1, "" }, { r.code, r.out })
    assert.matches("no scope matches", r.err)
  end)

  it("prints JSON that decodes", function()
    local r = ghlua { "scopes", "--json" }
    assert.are.equal(0, r.code, r.err)
    local groups = cjson.decode(r.out)
    assert.are.equal("Businesses", groups[1].name)
    assert.are.equal("all", groups[#groups].name)
    r = ghlua { "scopes", "custom_fields", "--json" }
    local rows = cjson.decode(r.out)
    assert.are.same({ "locations/customFields.readonly", "Location", false, true },
      { rows[1].scope, rows[1].tokens, rows[1].agency_only, rows[1].requestable })
    r = ghlua { "scopes", "--search", "zzz", "--json" }
    assert.are.same({ 1, "[]\n" }, { r.code, r.out })
  end)

  it("refuses an unknown group with suggestions, status 2", function()
    local r = ghlua { "scopes", "custom-feilds" }
    assert.are.equal(2, r.code)
    assert.matches("^ghlua: unknown scope or group: 'custom%-feilds' %(did you mean custom%-fields%?%); usage: ghlua scopes", r.err)
  end)
end)

describe("ghlua auth url", function()
  local FLAGS = { "--client-id", CLIENT, "--redirect-uri", "http://127.0.0.1:8080/cb" }
  local function url(...)
    local argv = { "auth", "url" }
    for _, a in ipairs(FLAGS) do argv[#argv + 1] = a end
    for _, a in ipairs { ... } do argv[#argv + 1] = a end
    return ghlua(argv)
  end

  it("prints only the URL on stdout and the generated state on stderr", function()
    local r = url("--scopes", "contacts, custom-fields")
    assert.are.equal(0, r.code, r.err)
    local state = r.err:match("^state: (%x+)\n$")
    assert.are.equal(32, #state)
    assert.are.equal(BASE .. "?response_type=code&client_id=" .. CLIENT .. "&" .. REDIRECT
      .. "&scope=contacts.readonly%20contacts.write%20locations%2FcustomFields.readonly%20locations%2FcustomFields.write"
      .. "&state=" .. state .. "\n", r.out)
  end)

  it("takes every option, and repeated --scopes", function()
    local r = url("--scopes", "tags", "--scopes", "forms.readonly", "--state", "xyz", "--whitelabel",
                  "--login-window", "self", "--version-id", "v1", "--legacy-path")
    assert.are.same({ 0, "" }, { r.code, r.err })
    assert.are.equal("https://marketplace.leadconnectorhq.com/oauth/chooselocation?response_type=code&client_id="
      .. CLIENT .. "&" .. REDIRECT .. "&scope=locations%2Ftags.readonly%20locations%2Ftags.write%20forms.readonly"
      .. "&state=xyz&loginWindowOpenMode=self&version_id=v1\n", r.out)
  end)

  it("uses GHLUA_MARKETPLACE_BASE for scheme and host", function()
    local r = ghlua({ "auth", "url", "--client-id", "a-b", "--redirect-uri", "http://127.0.0.1:1/cb",
                      "--scopes", "forms", "--state", "s" }, { env = { GHLUA_MARKETPLACE_BASE = "http://127.0.0.1:8765" } })
    assert.are.equal(0, r.code, r.err)
    assert.matches("^http://127%.0%.0%.1:8765/v2/oauth/chooselocation%?response_type=code&client_id=a%-b&", r.out)
  end)

  it("warns on stderr about a client id without its -suffix, still exit 0", function()
    local r = ghlua { "auth", "url", "--client-id", "68a2fd84fab6670f45220ebf", "--redirect-uri", "http://x.test/cb",
                      "--scopes", "contacts", "--state", "s" }
    assert.are.equal(0, r.code)
    assert.matches("^https://", r.out)
    assert.matches("warning: the client id '68a2fd84fab6670f45220ebf' has no %-suffix", r.err)
  end)

  for _, c in ipairs {
    { "--client-id", { "--redirect-uri", "http://x.test/cb", "--scopes", "contacts" }, "missing %-%-client%-id" },
    { "--redirect-uri", { "--client-id", "a-b", "--scopes", "contacts" }, "missing %-%-redirect%-uri" },
    { "--scopes", { "--client-id", "a-b", "--redirect-uri", "http://x.test/cb" }, "missing %-%-scopes" },
    { "a relative --redirect-uri", { "--client-id", "a-b", "--redirect-uri", "/cb", "--scopes", "contacts" },
      "%-%-redirect%-uri: the redirect URI '/cb' is not an absolute" },
    { "unknown scopes", { "--client-id", "a-b", "--redirect-uri", "http://x.test/cb", "--scopes", "contacts.read,nope" },
      "%-%-scopes: unknown scopes or groups: 'contacts%.read' %(did you mean contacts%.readonly%?%), 'nope'" },
    { "a bad --login-window", { "--client-id", "a-b", "--redirect-uri", "http://x.test/cb", "--scopes", "forms",
      "--login-window", "tab" }, "%-%-login%-window: " },
    { "a URL-encoded --client-id", { "--client-id", "abc%2Ddef", "--redirect-uri", "http://x.test/cb", "--scopes",
      "forms" }, "%-%-client%-id: the client id \"abc%%2Ddef\" holds a control character or a '%%'" },
    { "a --redirect-uri with a control character", { "--client-id", "a-b", "--redirect-uri", "http://x.test/c\1b",
      "--scopes", "forms" }, "%-%-redirect%-uri: the redirect URI '.*' is not an absolute" },
  } do
    it("refuses " .. c[1] .. " with status 2", function()
      local argv = { "auth", "url" }
      for _, a in ipairs(c[2]) do argv[#argv + 1] = a end
      local r = ghlua(argv)
      assert.are.same({ 2, "" }, { r.code, r.out })
      assert.matches("^ghlua: " .. c[3], r.err)
      assert.matches("; usage: ghlua auth url", r.err)
    end)
  end

  -- found by tests/fuzz (target check: authorize_url's links pass check_url)
  it("builds a link for a redirect URI with escapes of its own that auth check passes", function()
    local ru = "https://app.example.com/cb?next=%2Fhome"
    local r = url("--redirect-uri", ru, "--scopes", "contacts", "--state", "s")
    assert.matches("redirect_uri=https%%3A%%2F%%2Fapp%.example%.com%%2Fcb%%3Fnext%%3D%%252Fhome&", r.out)
    local c = check(r.out:gsub("\n$", ""), "--app-client-id", CLIENT, "--app-redirect-uri", ru)
    assert.are.equal(0, c.code, c.out)
  end)

  it("builds links that auth check passes", function()
    local r = url("--scopes", "contacts calendars", "--state", "s")
    local c = check(r.out:gsub("\n$", ""), "--app-client-id", CLIENT, "--app-redirect-uri", "http://127.0.0.1:8080/cb",
                    "--app-user-type", "Location")
    assert.are.equal(0, c.code, c.out)
    assert.matches("^ok: marketplace%.gohighlevel%.com/v2/oauth/chooselocation, client " .. CLIENT:gsub("%-", "%%-") .. ", 10 scopes", c.out)
  end)
end)

describe("ghlua auth check", function()
  it("passes a clean link: ok summary, status 0", function()
    local r = check(link())
    assert.are.same({ 0, "" }, { r.code, r.err })
    assert.matches("^ok: marketplace%.gohighlevel%.com/v2/oauth/chooselocation, client " .. CLIENT:gsub("%-", "%%-")
      .. ", 2 scopes for a sub%-account %(Location%) or agency app\n$", r.out)
  end)

  it("accepts + as the space encoding, like the portal's links, and reads - from stdin", function()
    local r = ghlua({ "auth", "check", "-" }, { stdin = link { scope = "contacts.readonly+locations%2Ftags.write" } .. "\n" })
    assert.are.equal(0, r.code, r.out)
    assert.matches("2 scopes", r.out)
  end)

  it("flags the API host", function()
    reports(check(link { base = "https://services.leadconnectorhq.com/v2/oauth/chooselocation" }), "wrong_host",
            "is the API host.*fix: use https://marketplace%.gohighlevel%.com/v2/oauth/chooselocation")
  end)

  it("flags the HighLevel web app host", function()
    reports(check(link { base = "https://app.gohighlevel.com/v2/oauth/chooselocation" }), "wrong_host", "app%.gohighlevel%.com")
  end)

  it("flags plain http on the marketplace host", function()
    reports(check(link { base = "http://marketplace.gohighlevel.com/v2/oauth/chooselocation" }), "not_https", "use https://")
  end)

  it("flags a link without a scheme", function()
    reports(check(link { base = "marketplace.gohighlevel.com/v2/oauth/chooselocation" }), "no_scheme", "https://", "warning")
  end)

  it("flags a wrong path", function()
    reports(check(link { base = "https://marketplace.gohighlevel.com/v2/oauth/authorize" }), "wrong_path",
            "'/v2/oauth/authorize'.*fix: use /v2/oauth/chooselocation")
  end)

  it("warns about the legacy path and suggests /v2", function()
    reports(check(link { base = "https://marketplace.gohighlevel.com/oauth/chooselocation" }), "legacy_path",
            "fix: use /v2/oauth/chooselocation", "warning")
  end)

  for _, p in ipairs { "response_type", "client_id", "redirect_uri", "scope" } do
    it("flags a missing " .. p, function()
      local parts = {}
      for kv in link():match("%?(.*)$"):gmatch("[^&]+") do
        if not kv:match("^" .. p .. "=") then parts[#parts + 1] = kv end
      end
      reports(check(link { query = table.concat(parts, "&") }), "missing_parameter", "'" .. p .. "' is missing")
    end)
  end

  it("suggests renaming a misspelt parameter", function()
    reports(check(link { query = "response_type=code&client_id=" .. CLIENT .. "&" .. REDIRECT .. "&scopes=contacts.readonly" }),
            "missing_parameter", "fix: rename 'scopes' to 'scope'")
  end)

  it("flags a response_type other than code", function()
    reports(check(link { query = "response_type=token&client_id=" .. CLIENT .. "&" .. REDIRECT .. "&scope=forms.readonly" }),
            "bad_response_type", "'token'.*response_type=code")
  end)

  it("flags a repeated parameter", function()
    reports(check(link { extra = "&client_id=" .. CLIENT }), "duplicate_parameter", "'client_id' appears 2 times")
  end)

  it("flags a client id without its -suffix", function()
    reports(check(link { client = "68a2fd84fab6670f45220ebf" }), "client_id_suffix", "has no %-suffix")
  end)

  it("gives the app's full client id when the link lacks the suffix", function()
    reports(check(link { client = "68a2fd84fab6670f45220ebf" }, "--app-client-id", CLIENT), "client_id_suffix",
            "fix: use client_id=" .. CLIENT:gsub("%-", "%%-"))
  end)

  it("flags a client id that is not the app's", function()
    reports(check(link(), "--app-client-id", "0000-ffff"), "client_id_mismatch", "not the app's %(0000%-ffff%)")
  end)

  it("flags an unknown scope with a suggestion", function()
    reports(check(link { scope = "contacts.read" }), "unknown_scope", "'contacts%.read' %(did you mean contacts%.readonly%?%)")
  end)

  it("flags a scope in the wrong case", function()
    reports(check(link { scope = "Contacts.readonly" }), "unknown_scope", "case%-sensitive")
  end)

  it("flags a group name used as a scope and lists its scopes", function()
    reports(check(link { scope = "custom-fields" }), "unknown_scope",
            "ghlua group name.*locations/customFields%.readonly locations/customFields%.write")
  end)

  it("flags the locations/write typo", function()
    reports(check(link { scope = "locations/write" }), "unknown_scope", "not requestable.*use locations%.write")
  end)

  it("flags leading, trailing and double spaces in the scope list", function()
    for _, s in ipairs { "%20contacts.readonly", "contacts.readonly+", "contacts.readonly%20%20contacts.write" } do
      reports(check(link { scope = s }), "stray_space", "scope list")
    end
  end)

  it("flags commas between scopes", function()
    local r = check(link { scope = "contacts.readonly,contacts.write" })
    reports(r, "comma_separator", "commas")
    assert.is_nil(r.out:find("unknown_scope", 1, true))
  end)

  it("flags spaces around other values", function()
    reports(check(link { client = CLIENT .. "%20" }), "stray_space", "'client_id' has spaces")
  end)

  it("flags doubly-encoded spaces and slashes", function()
    reports(check(link { scope = "contacts.readonly%2520locations%252FcustomFields.readonly" }), "double_encoded",
            "'scope' is encoded twice %(%%2520%)")
    local r = check(link { scope = "locations%252FcustomFields.readonly" })
    reports(r, "double_encoded", "%%252F")
    assert.is_nil(r.out:find("unknown_scope", 1, true))
  end)

  it("flags a doubly-encoded redirect URI, not one with escapes of its own", function()
    reports(check(link { redirect = "redirect_uri=http%253A%252F%252F127.0.0.1%253A8080%252Fcb" }), "double_encoded",
            "'redirect_uri' is encoded twice")
    local r = check(link { redirect = "redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb%3Fnext%3D%252Fhome" })
    assert.are.equal(0, r.code, r.out)
  end)

  it("flags a repeated scope", function()
    reports(check(link { scope = "forms.readonly%20forms.readonly" }), "duplicate_scope", "forms%.readonly", "warning")
  end)

  it("flags a relative redirect URI", function()
    reports(check(link { redirect = "redirect_uri=%2Foauth%2Fcallback" }), "redirect_not_absolute", "'/oauth/callback'")
  end)

  it("flags a redirect URI that is not the app's", function()
    reports(check(link(), "--app-redirect-uri", "https://app.example.com/cb"), "redirect_mismatch",
            "fix: use redirect_uri=https://app%.example%.com/cb")
  end)

  it("flags agency-only scopes on a Location app", function()
    reports(check(link { scope = "contacts.readonly%20companies.readonly" }, "--app-user-type", "Location"),
            "agency_scope", "companies%.readonly")
  end)

  it("allows agency-only scopes on a Company app", function()
    local r = check(link { scope = "contacts.readonly%20companies.readonly" }, "--app-user-type", "Company")
    assert.are.equal(0, r.code, r.out)
    assert.matches("for an agency %(Company%) app", r.out)
  end)

  it("notes agency-only scopes mixed with sub-account ones when the app is unknown (status 0)", function()
    local r = check(link { scope = "contacts.readonly%20snapshots.readonly" })
    assert.are.equal(0, r.code, r.out)
    assert.matches("^note: agency%-only scopes %(snapshots%.readonly%) mixed with sub%-account%-only scopes %(contacts%.readonly%).*%[mixed_token_types%]\nok: ", r.out)
  end)

  it("flags the standard host for a white-label app", function()
    reports(check(link(), "--app-whitelabel"), "whitelabel_host", "No integration found with the ID.*marketplace%.leadconnectorhq%.com")
  end)

  it("notes the white-label host for an app that is not white-label (status 0)", function()
    local r = check(link { base = "https://marketplace.leadconnectorhq.com/v2/oauth/chooselocation" }, "--app-client-id", CLIENT)
    assert.are.equal(0, r.code, r.out)
    assert.matches("^note: .*%[whitelabel_host_unneeded%]\nok: ", r.out)
  end)

  it("notes an unknown parameter", function()
    local r = check(link { extra = "&foo=1" })
    assert.are.equal(0, r.code, r.out)
    assert.matches("note: the parameter 'foo'.*%[unknown_parameter%]", r.out)
  end)

  it("warns about a login window mode other than self", function()
    reports(check(link { extra = "&loginWindowOpenMode=tab" }), "bad_login_window", "'tab'", "warning")
  end)

  it("reports several problems, one line each", function()
    local r = check(link { base = "https://services.leadconnectorhq.com/oauth/chooselocation", client = "abc",
                           scope = "contacts.read,contacts.write" })
    assert.are.equal(1, r.code)
    local n = select(2, r.out:gsub("\nproblem: ", "")) + 1
    assert.are.equal(5, n, r.out)   -- host, legacy path, suffix, commas, unknown scope
  end)

  it("gives usage errors status 2", function()
    for _, argv in ipairs {
      { "auth", "check" },
      { "auth", "check", "not a url at all" },
      { "auth", "check", link(), "extra" },
      { "auth", "check", link(), "--app-user-type", "reseller" },
      { "auth", "check", link(), "--no-such-flag" },
    } do
      local r = ghlua(argv)
      assert.are.equal(2, r.code, table.concat(argv, " "))
      assert.matches("; usage: ghlua auth check", r.err)
    end
  end)
end)
