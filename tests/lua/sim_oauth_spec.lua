-- `ghlua sim`'s OAuth side over real loopback HTTP, through ghl.http (which
-- does not follow redirects, so every 302 is read from its Location
-- header): the consent screen on both paths (auto-approve, picker and
-- approve form, deny, error pages), the token endpoint (code exchange,
-- refresh rotation and reuse, validation and client errors, token TTL, the
-- delay hooks for crash tests), /oauth/locationToken,
-- /oauth/installedLocations, /oauth/reconnect, scope and token-kind
-- enforcement on the API, PITs, inactive locations, and the ready file.
package.path = "tests/lua/?.lua;" .. package.path
local http = require "ghl.http"
local cjson = require "cjson"
local sys = require "ghl.sys"
local sim = require "support.sim"
local run = require "support.run"
local simlog = require "support.simlog"

local LOC = "ve9EPM428h8vShlRW1KT"
local COMPANY = "5DP4iH6HLkQsiKESj6rh"
local INACTIVE = "InactiveLocation0001"
local APP, SECRET = "6740b2b6d9e4a05c1f3a9e21-m3kq8zpx", "b5f0c2d4-8a7e-4c1b-9f3d-2e6a1c0b7d95"
local AGENCY, AGENCY_SECRET = "65f1a2b3c4d5e6f7a8b9c0d1-agcy0001", "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5"
local REDIRECT, REDIRECT2 = "http://localhost:3000/oauth/callback", "https://app.example.com/oauth/cb"
local PIT = "pit-462058eb-1111-4222-8333-444455556666"
local AGENCY_PIT = "pit-agency-0000-4000-8000-000000000001"
local V2 = "/v2/oauth/chooselocation"

local SECRETS = { [APP] = SECRET, [AGENCY] = AGENCY_SECRET }

-- ---- Helpers ----

local function unescape(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- "http://x/cb?a=1&b=2" -> "http://x/cb", {a="1", b="2"}
local function split_url(url)
  local base, q = url:match("^([^?]*)%??(.*)$")
  local t = {}
  for pair in q:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    t[unescape(k)] = unescape(v)
  end
  return base, t
end

-- GET the consent screen. p: client_id, redirect_uri, scope, state,
-- response_type (false leaves a parameter out).
local function authorize(s, p, path)
  p = p or {}
  local function pick(k, default)
    if p[k] == false then return nil end
    if p[k] == nil then return default end
    return p[k]
  end
  local q = { response_type = pick("response_type", "code"), client_id = pick("client_id", APP),
    redirect_uri = pick("redirect_uri", REDIRECT), scope = pick("scope", "contacts.readonly contacts.write"),
    state = pick("state", nil) }
  return assert(http.request { url = s.url .. (path or V2), query = q, timeout = 10 })
end

-- A code from an auto-approved consent.
local function get_code(s, p)
  local resp = authorize(s, p)
  assert.are.equal(302, resp.status, resp.body)
  local _, q = split_url(resp.headers.location)
  assert.is_string(q.code)
  return q.code
end

local function token(s, form, opts)
  opts = opts or {}
  local resp = assert(http.request { method = "POST", url = s.url .. "/oauth/token", form = form,
    json = opts.json, headers = opts.headers, timeout = opts.timeout or 10 })
  return resp, resp:json()
end

local function exchange(s, code, client, secret)
  client = client or APP
  return token(s, { client_id = client, client_secret = secret or SECRETS[client],
    grant_type = "authorization_code", code = code })
end

local function refresh(s, rt, client, opts)
  client = client or APP
  local resp, body = token(s, { client_id = client, client_secret = SECRETS[client],
    grant_type = "refresh_token", refresh_token = rt }, opts)
  return resp, body
end

-- Consent + exchange: the token body.
local function login(s, p, client)
  p = p or {}
  p.client_id = p.client_id or client
  local resp, body = exchange(s, get_code(s, p), client)
  assert.are.equal(200, resp.status, resp.body)
  return body
end

local function api(s, method, path, tok, opts)
  opts = opts or {}
  local resp = assert(http.request { method = method, url = s.url .. path, query = opts.query,
    json = opts.json, form = opts.form, headers = { Authorization = "Bearer " .. tok,
      Version = opts.version or "2021-07-28" }, timeout = 10 })
  return resp, resp:json()
end

local function b64url_decode(s)
  local alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
  local bits = {}
  for c in s:gmatch(".") do
    local i = alpha:find(c, 1, true) - 1
    for b = 5, 0, -1 do bits[#bits + 1] = (i >> b) & 1 end
  end
  local out = {}
  for i = 1, #bits - 7, 8 do
    local n = 0
    for j = 0, 7 do n = n * 2 + bits[i + j] end
    out[#out + 1] = string.char(n)
  end
  return table.concat(out)
end

local function jwt_payload(t)
  local h, p, sig = t:match("^([%w_-]+)%.([%w_-]+)%.([%w_-]+)$")
  assert.is_truthy(h and sig, "not a JWT: " .. t)
  assert.are.same({ alg = "RS256", typ = "JWT" }, cjson.decode(b64url_decode(h)))
  return cjson.decode(b64url_decode(p))
end

local function write_file(text)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

local APPS_JSON = cjson.encode {
  { client_id = APP, client_secret = SECRET, redirect_uris = { REDIRECT, REDIRECT2 },
    scopes = { "contacts.readonly", "contacts.write", "locations.readonly", "locations/customFields.readonly" },
    user_type = "Location" },
  { client_id = AGENCY, client_secret = AGENCY_SECRET, redirect_uris = { REDIRECT },
    scopes = { "oauth.readonly", "oauth.write", "contacts.readonly", "contacts.write", "locations.readonly",
      "companies.readonly" },
    user_type = "Company" },
}

describe("ghlua sim OAuth", function()
  local s, apps_file
  setup(function()
    apps_file = write_file(APPS_JSON)
    s = sim.start { "--apps", apps_file, "--locations", "5", "--inactive-location", INACTIVE,
      "--pit", PIT, "--pit", AGENCY_PIT .. ":" .. COMPANY, "--auto-approve", "--rate-max", "100000" }
  end)
  teardown(function()
    if s then s.stop() end
    os.remove(apps_file)
  end)
  before_each(function()
    s.oauth { auto_approve = "default", deny = false, token_delay_ms = 0 }
  end)

  describe("announcement", function()
    it("writes the apps, company and locations to a 0600 ready file", function()
      assert.are.equal(384, assert(sys.stat(s.ready_file)).mode)
      assert.are.equal(COMPANY, s.company)
      assert.are.same({ APP, SECRET, { REDIRECT, REDIRECT2 }, "Location" },
        { s.apps[1].client_id, s.apps[1].client_secret, s.apps[1].redirect_uris, s.apps[1].user_type })
      assert.are.same({ AGENCY, AGENCY_SECRET, "Company" },
        { s.apps[2].client_id, s.apps[2].client_secret, s.apps[2].user_type })
      assert.are.equal(7, #s.ready.locations)
      assert.are.equal(LOC, s.ready.locations[1].id)
      assert.are.equal(s.url .. V2, s.ready.authorizeUrl)
      assert.are.equal(s.url .. "/oauth/token", s.ready.tokenUrl)
    end)

    it("never prints a client secret in full", function()
      local out = s.output()
      assert.truthy(out:find("app " .. APP .. " (Location, secret …" .. SECRET:sub(-4), 1, true), out)
      assert.is_nil(out:find(SECRET, 1, true))
      assert.is_nil(out:find(AGENCY_SECRET, 1, true))
    end)

    it("generates a realistic default app when given none", function()
      local s2 = sim.start {}
      local out = s2.output()
      s2.stop()
      local a = s2.app
      assert.matches("^%x+%-[%l%d]+$", a.client_id)
      assert.are.equal(24, #a.client_id:match("^(%x+)%-"))
      assert.are.equal(8, #a.client_id:match("%-([%l%d]+)$"))
      assert.are.same({ "http://localhost:3000/oauth/callback" }, a.redirect_uris)
      assert.is_true(#a.client_secret >= 32)
      assert.truthy(out:find("…" .. a.client_secret:sub(-4), 1, true))
      assert.is_nil(out:find(a.client_secret, 1, true))
    end)

    it("rejects bad OAuth flags with status 2", function()
      local cases = {
        { { "sim", "--app-scopes", "contacts.readonly nope.write" }, "unknown scope 'nope.write'" },
        { { "sim", "--app-scopes", "companies.readonly" }, "not available to Location apps" },
        { { "sim", "--app", "x-y", "--redirect-uri", "ftp://x" }, "must be an http" },
        { { "sim", "--app-type", "Robot" }, "must be Location or Company" },
        { { "sim", "--token-delay-ms", "10", "--token-delay-phase", "during" }, "before or after" },
        { { "sim", "--auto-approve", "NoSuchLocation00001" }, "no location NoSuchLocation00001" },
        { { "sim", "--auto-approve", "company:" }, "at least one location id" },
        { { "sim", "--auto-approve", "company:" .. LOC .. ",NoSuchLocation00002" }, "no location NoSuchLocation00002" },
        { { "sim", "--auto-approve", "company:a/b" }, "is not a location id" },
      }
      for _, c in ipairs(cases) do
        local r = run.ghlua(c[1])
        assert.are.equal(2, r.code, table.concat(c[1], " ") .. "\n" .. r.err)
        assert.truthy(r.err:find(c[2], 1, true), r.err)
      end
    end)
  end)

  describe("consent", function()
    it("auto-approves on both paths with a 302 carrying code and state", function()
      for _, path in ipairs { V2, "/oauth/chooselocation" } do
        local resp = authorize(s, { state = "st-" .. path }, path)
        assert.are.equal(302, resp.status)
        local base, q = split_url(resp.headers.location)
        assert.are.equal(REDIRECT, base)
        assert.matches("^%x+$", q.code)
        assert.are.equal("st-" .. path, q.state)
      end
      local resp = authorize(s, { redirect_uri = REDIRECT2 })
      local base, q = split_url(resp.headers.location)
      assert.are.equal(REDIRECT2, base)
      assert.is_nil(q.state)
      assert.is_string(q.code)
    end)

    it("shows a location picker whose form approves with a redirect", function()
      s.oauth { auto_approve = false }
      local resp = authorize(s, { state = "pick1" })
      assert.are.equal(200, resp.status)
      assert.matches("^text/html", resp.headers["content-type"])
      local html = resp.body
      assert.truthy(html:find('action="' .. V2 .. '/approve"', 1, true))
      for _, loc in ipairs(s.ready.locations) do
        assert.truthy(html:find('value="' .. loc.id .. '"', 1, true), loc.id)
      end
      assert.truthy(html:find("(inactive)", 1, true))
      assert.is_nil(html:find('value="company"', 1, true))
      local target = s.ready.locations[3].id
      local post = assert(http.request { method = "POST", url = s.url .. V2 .. "/approve", timeout = 10,
        form = { response_type = "code", client_id = APP, redirect_uri = REDIRECT,
          scope = "contacts.readonly", state = "pick1", location = target, action = "approve" } })
      assert.are.equal(302, post.status)
      local _, q = split_url(post.headers.location)
      assert.are.equal("pick1", q.state)
      local tresp, body = exchange(s, q.code)
      assert.are.equal(200, tresp.status)
      assert.are.equal(target, body.locationId)
      assert.are.equal("contacts.readonly", body.scope)
    end)

    it("offers the agency in the picker of a Company-type app", function()
      s.oauth { auto_approve = false }
      local resp = authorize(s, { client_id = AGENCY, scope = "oauth.readonly" }, "/oauth/chooselocation")
      assert.are.equal(200, resp.status)
      assert.truthy(resp.body:find('value="company"', 1, true))
      assert.truthy(resp.body:find('action="/oauth/chooselocation/approve"', 1, true))
    end)

    it("redirects with error=access_denied when denied", function()
      s.oauth { deny = true }
      local resp = authorize(s, { state = "d1" })
      assert.are.equal(302, resp.status)
      local base, q = split_url(resp.headers.location)
      assert.are.equal(REDIRECT, base)
      assert.are.same({ "access_denied", "d1" }, { q.error, q.state })
      assert.is_string(q.error_description)
      assert.is_nil(q.code)
      -- the picker's Cancel button
      s.oauth { deny = false, auto_approve = false }
      local post = assert(http.request { method = "POST", url = s.url .. V2 .. "/approve", timeout = 10,
        form = { response_type = "code", client_id = APP, redirect_uri = REDIRECT, scope = "contacts.readonly",
          location = LOC, action = "deny" } })
      assert.are.equal(302, post.status)
      local _, q2 = split_url(post.headers.location)
      assert.are.equal("access_denied", q2.error)
      assert.is_nil(q2.state)
    end)

    it("answers each bad request with an error page, never a redirect", function()
      local cases = {
        { { client_id = "0123456789abcdef01234567-unknown1" }, 404,
          "No integration found with the ID: 0123456789abcdef01234567" },
        { { client_id = false }, 404, "No integration found with the ID: " },
        { { redirect_uri = "http://localhost:3000/other" }, 400,
          "The redirect URI is not registered for this integration." },
        { { redirect_uri = false }, 400, "The redirect URI is not registered for this integration." },
        { { response_type = "token" }, 400, "only response_type=code" },
        { { scope = "contacts.readonly opportunities.readonly" }, 400,
          "This integration cannot be added, please contact the developer!" },
        { { scope = "contacts.readonly,contacts.write" }, 400,
          "This integration cannot be added, please contact the developer!" },
        { { scope = "" }, 400, "This integration cannot be added, please contact the developer!" },
      }
      for _, c in ipairs(cases) do
        local resp = authorize(s, c[1])
        assert.are.equal(c[2], resp.status, c[3])
        assert.is_nil(resp.headers.location)
        assert.matches("^text/html", resp.headers["content-type"])
        assert.truthy(resp.body:find(c[3], 1, true), resp.body)
        assert.truthy(resp.body:find("Simulator: ", 1, true))
      end
      -- the same checks on the approve form
      local post = assert(http.request { method = "POST", url = s.url .. V2 .. "/approve", timeout = 10,
        form = { response_type = "code", client_id = APP, redirect_uri = REDIRECT, scope = "contacts.readonly",
          location = "NotALocation", action = "approve" } })
      assert.are.equal(400, post.status)
    end)
  end)

  describe("token endpoint", function()
    it("exchanges a code for HighLevel's token body", function()
      local code = get_code(s, { scope = "contacts.readonly contacts.write" })
      local resp, body = exchange(s, code)
      assert.are.equal(200, resp.status)
      assert.are.same({ "Bearer", 86399, "contacts.readonly contacts.write", "Location", LOC, COMPANY, false },
        { body.token_type, body.expires_in, body.scope, body.userType, body.locationId, body.companyId,
          body.isBulkInstallation })
      assert.is_string(body.refresh_token)
      assert.is_string(body.refreshTokenId)
      assert.is_string(body.userId)
      assert.is_string(body.traceId)
      -- the agency install's fields are a Company token's only
      assert.is_nil(body.approvedLocations)
      assert.is_nil(body.approveAllLocations)
      assert.is_nil(body.installToFutureLocations)
      local p = jwt_payload(body.access_token)
      assert.are.same({ "Location", LOC, APP }, { p.authClass, p.authClassId, p.sourceId })
      assert.are.same({ "contacts.readonly", "contacts.write" }, p.oauthMeta.scopes)
      assert.is_true(p.exp > p.iat)
      jwt_payload(body.refresh_token)
      local r2 = api(s, "GET", "/contacts/", body.access_token, { query = { locationId = LOC, limit = 1 } })
      assert.are.equal(200, r2.status)
    end)

    it("issues unique tokens", function()
      local seen = {}
      for _ = 1, 5 do
        local b = login(s)
        assert.is_nil(seen[b.access_token])
        assert.is_nil(seen[b.refresh_token])
        seen[b.access_token], seen[b.refresh_token] = true, true
      end
    end)

    it("refuses a used, unknown or other client's code with 400 Invalid grant", function()
      local msg = "Invalid grant: authorization code is invalid"
      local code = get_code(s)
      assert.are.equal(200, exchange(s, code).status)
      local resp, body = exchange(s, code)
      assert.are.same({ 400, 400, msg }, { resp.status, body.statusCode, body.message })
      resp, body = exchange(s, "0000000000000000000000000000000000000000")
      assert.are.same({ 400, msg }, { resp.status, body.message })
      resp, body = exchange(s, get_code(s, { client_id = AGENCY, scope = "oauth.readonly" }), APP)
      assert.are.same({ 400, msg }, { resp.status, body.message })
    end)

    it("refuses a redirect_uri other than the authorization request's", function()
      local resp, body = token(s, { client_id = APP, client_secret = SECRET, grant_type = "authorization_code",
        code = get_code(s), redirect_uri = REDIRECT2 })
      assert.are.equal(400, resp.status)
      assert.matches("^Invalid grant: redirect URI", body.message)
    end)

    it("answers 401 to bad client credentials and spends no code", function()
      local code = get_code(s)
      for _, c in ipairs { { APP, "wrong" }, { "nobody-12345678", SECRET }, { APP, nil } } do
        local resp, body = token(s, { client_id = c[1], client_secret = c[2], grant_type = "authorization_code",
          code = code })
        assert.are.same({ 401, 401, "Unauthorized", "Invalid client: client credentials are invalid" },
          { resp.status, body.statusCode, body.error, body.message })
      end
      assert.are.equal(200, exchange(s, code).status)
    end)

    it("answers 422 with a message array to a JSON body and bad grant types", function()
      local resp, body = token(s, nil, { json = { client_id = APP, client_secret = SECRET,
        grant_type = "authorization_code", code = get_code(s) } })
      assert.are.equal(422, resp.status)
      assert.are.same({ "grant_type must be a valid enum value", "grant_type should not be empty" }, body.message)
      assert.are.same({ 422, "Unprocessable Entity" }, { body.statusCode, body.error })
      assert.is_string(body.traceId)
      resp, body = token(s, { client_id = APP, client_secret = SECRET, grant_type = "password" })
      assert.are.same({ 422, { "grant_type must be a valid enum value" } }, { resp.status, body.message })
      resp, body = token(s, { client_id = APP, client_secret = SECRET, grant_type = "refresh_token",
        refresh_token = "x", user_type = "Agency" })
      assert.are.same({ 422, { "user_type must be a valid enum value" } }, { resp.status, body.message })
      resp, body = token(s, { client_id = APP, client_secret = SECRET, grant_type = "authorization_code" })
      assert.are.same({ 422, { "code should not be empty" } }, { resp.status, body.message })
    end)

    it("rotates refresh tokens and refuses a reused one, counting it", function()
      local before = s.stats().oauth
      local first = login(s)
      local resp, second = refresh(s, first.refresh_token)
      assert.are.equal(200, resp.status)
      assert.are_not.equal(first.refresh_token, second.refresh_token)
      assert.are_not.equal(first.access_token, second.access_token)
      assert.are.same({ "Location", LOC, first.scope }, { second.userType, second.locationId, second.scope })
      assert.are.equal(200, api(s, "GET", "/contacts/", second.access_token, { query = { locationId = LOC } }).status)
      local r2, third = refresh(s, second.refresh_token)
      assert.are.equal(200, r2.status)
      resp, second = refresh(s, first.refresh_token)
      assert.are.same({ 400, 400, "Invalid grant: refresh token is invalid" },
        { resp.status, second.statusCode, second.message })
      resp = refresh(s, "not-a-refresh-token")
      assert.are.equal(400, resp.status)
      assert.are.equal(200, refresh(s, third.refresh_token).status)
      local after = s.stats().oauth
      assert.are.equal(before.refresh_reuse + 1, after.refresh_reuse)
      assert.are.equal(before.refresh_ok + 3, after.refresh_ok)
      assert.are.equal(before.refresh_invalid + 1, after.refresh_invalid)
      assert.is_true(after.token_requests.refresh_token >= 5)
      assert.is_true(after.token_requests.authorization_code >= 1)
    end)

    it("refuses a refresh for an inactive location without spending the token", function()
      s.oauth { auto_approve = INACTIVE }
      local body = login(s)
      assert.are.equal(INACTIVE, body.locationId)
      local resp, err = refresh(s, body.refresh_token)
      assert.are.same({ 400, "Location is not active" }, { resp.status, err.message })
      local put = assert(http.request { method = "PUT", url = s.url .. "/__sim/locations/" .. INACTIVE,
        json = { active = true }, timeout = 10 })
      assert.are.equal(200, put.status)
      resp = refresh(s, body.refresh_token)
      assert.are.equal(200, resp.status)
      assert(http.request { method = "PUT", url = s.url .. "/__sim/locations/" .. INACTIVE,
        json = { active = false }, timeout = 10 })
      assert.is_true(s.stats().oauth.refresh_inactive >= 1)
    end)
  end)

  describe("API enforcement", function()
    it("answers 401 to a token lacking the route's scope", function()
      local body = login(s, { scope = "contacts.readonly" })
      local msg = "The token is not authorized for this scope."
      local resp, err = api(s, "POST", "/contacts/", body.access_token,
        { json = { locationId = LOC, email = "scope@example.com" } })
      assert.are.same({ 401, msg }, { resp.status, err.message })
      resp, err = api(s, "GET", "/locations/" .. LOC .. "/customValues", body.access_token)
      assert.are.same({ 401, msg }, { resp.status, err.message })
      assert.are.equal(200, api(s, "GET", "/contacts/", body.access_token, { query = { locationId = LOC } }).status)
    end)

    it("answers 401 to a Company token on a sub-account route, 200 on its locations", function()
      local body = login(s, { scope = "contacts.readonly locations.readonly" }, AGENCY)
      assert.are.same({ "Company", COMPANY }, { body.userType, body.companyId })
      assert.is_nil(body.locationId)
      local p = jwt_payload(body.access_token)
      assert.are.same({ "Company", COMPANY }, { p.authClass, p.authClassId })
      local resp, err = api(s, "GET", "/contacts/", body.access_token, { query = { locationId = LOC } })
      assert.are.same({ 401, "This authClass type is not allowed to access this scope." },
        { resp.status, err.message })
      resp = api(s, "GET", "/locations/" .. s.ready.locations[2].id, body.access_token)
      assert.are.equal(200, resp.status)
      resp = api(s, "GET", "/locations/SomeoneElsesLocation1", body.access_token)
      assert.are.equal(403, resp.status)
    end)

    it("answers 403 to another location's token", function()
      s.oauth { auto_approve = s.ready.locations[2].id }
      local body = login(s)
      local resp, err = api(s, "GET", "/contacts/", body.access_token, { query = { locationId = LOC } })
      assert.are.same({ 403, "The token does not have access to this location." }, { resp.status, err.message })
    end)

    it("accepts PITs with every scope and counts requests per token kind", function()
      local before = s.stats().tokenKinds.pit or 0
      assert.are.equal(200, api(s, "GET", "/contacts/", PIT, { query = { locationId = LOC } }).status)
      assert.are.equal(201, api(s, "POST", "/locations/" .. LOC .. "/customValues", PIT,
        { json = { name = "PIT value", value = "1" } }).status)
      local resp, err = api(s, "GET", "/contacts/", AGENCY_PIT, { query = { locationId = LOC } })
      assert.are.same({ 401, "This authClass type is not allowed to access this scope." },
        { resp.status, err.message })
      local kinds = s.stats().tokenKinds
      assert.are.equal(before + 3, kinds.pit)
      assert.is_true(kinds.location >= 1 and kinds.company >= 1)
    end)
  end)

  describe("agency endpoints", function()
    local company
    setup(function()
      s.oauth { auto_approve = "company" }
      company = login(s, { scope = "oauth.readonly oauth.write contacts.readonly contacts.write" }, AGENCY)
    end)

    it("mints a Location token with a refresh token from a Company token", function()
      local target = s.ready.locations[4].id
      local resp, body = api(s, "POST", "/oauth/locationToken", company.access_token,
        { form = { companyId = COMPANY, locationId = target } })
      assert.are.equal(200, resp.status, resp.body)
      assert.are.same({ "Bearer", 86399, target, "oauth.readonly oauth.write contacts.readonly contacts.write" },
        { body.token_type, body.expires_in, body.locationId, body.scope })
      assert.is_string(body.refresh_token)
      assert.is_string(body.userId)
      assert.are.equal(AGENCY:match("^[^-]+"), body.appId)
      assert.are.equal(200, api(s, "GET", "/contacts/", body.access_token, { query = { locationId = target } }).status)
      local r2, again = refresh(s, body.refresh_token, AGENCY)
      assert.are.equal(200, r2.status)
      assert.are.same({ "Location", target }, { again.userType, again.locationId })
    end)

    it("refuses other companies, foreign locations, Location tokens, PITs and missing scopes", function()
      local function lt(tok, form)
        local resp, body = api(s, "POST", "/oauth/locationToken", tok, { form = form })
        return resp.status, body.message
      end
      local ok_form = { companyId = COMPANY, locationId = LOC }
      assert.are.equal(403, (lt(company.access_token, { companyId = "OtherCompany00000001", locationId = LOC })))
      local st, msg = lt(company.access_token, { companyId = COMPANY, locationId = "NotInTheCompany00001" })
      assert.are.same({ 400, "Location not found in this company" }, { st, msg })
      st, msg = lt(company.access_token, { companyId = COMPANY })
      assert.are.same({ 422, { "locationId should not be empty" } }, { st, msg })
      local loc_token = login(s, { scope = "contacts.readonly" }, APP)
      assert.are.same({ 401, "This authClass type is not allowed to access this scope." },
        { lt(loc_token.access_token, ok_form) })
      for _, pit in ipairs { PIT, AGENCY_PIT } do
        st, msg = lt(pit, ok_form)
        assert.are.equal(401, st)
        assert.matches("Private Integration Tokens cannot be used on this route", msg)
      end
      local narrow = login(s, { scope = "contacts.readonly" }, AGENCY)
      assert.are.same({ 401, "The token is not authorized for this scope." }, { lt(narrow.access_token, ok_form) })
      local resp = assert(http.request { method = "POST", url = s.url .. "/oauth/locationToken", timeout = 10,
        form = ok_form, headers = { Authorization = "Bearer " .. company.access_token } })
      assert.are.equal(401, resp.status)   -- no Version header
    end)

    it("lists installed locations with skip/limit paging; count is every location of the company", function()
      local function page(q)
        q.companyId, q.appId = COMPANY, q.appId or AGENCY:match("^[^-]+")
        local resp, body = api(s, "GET", "/oauth/installedLocations", company.access_token, { query = q })
        assert.are.equal(200, resp.status, resp.body)
        return body
      end
      local seen = {}
      for skip = 0, 6, 3 do
        local body = page { skip = tostring(skip), limit = "3" }
        assert.are.equal(7, body.count)
        assert.are.equal(true, body.installToFutureLocations)
        assert.are.equal(skip < 6 and 3 or 1, #body.locations)
        for _, l in ipairs(body.locations) do
          assert.is_nil(seen[l._id], "repeated " .. l._id)
          seen[l._id] = l
          assert.is_string(l.name)
          assert.is_string(l.address)
          -- "company" approved every location
          assert.is_true(l.isInstalled)
          assert.is_string(l.installedAt)
          assert.are.equal(AGENCY:match("^[^-]+"), l.versionId)
        end
      end
      for _, loc in ipairs(s.ready.locations) do assert.is_truthy(seen[loc.id], loc.id) end
      assert.are.same({ 7, 7 }, { #page({ isInstalled = "true", appId = AGENCY, limit = "20" }).locations,
        page({ isInstalled = "true" }).count })
      local none = page { isInstalled = "false" }
      assert.are.same({ 0, 7 }, { #none.locations, none.count })
      assert.are.equal(0, #page({ skip = "7" }).locations)
      assert.are.same({ LOC }, { page({ locationId = LOC }).locations[1]._id })
      assert.are.equal(422, (api(s, "GET", "/oauth/installedLocations", company.access_token,
        { query = { companyId = COMPANY, appId = AGENCY, isInstalled = "yes" } })).status)
    end)

    it("refuses PITs and other companies on installedLocations", function()
      local q = { companyId = COMPANY, appId = AGENCY }
      local resp, body = api(s, "GET", "/oauth/installedLocations", AGENCY_PIT, { query = q })
      assert.are.equal(401, resp.status)
      assert.matches("Private Integration Tokens", body.message)
      resp = api(s, "GET", "/oauth/installedLocations", company.access_token,
        { query = { companyId = "OtherCompany00000001", appId = AGENCY } })
      assert.are.equal(403, resp.status)
      resp, body = api(s, "GET", "/oauth/installedLocations", company.access_token, { query = { appId = AGENCY } })
      assert.are.same({ 422, { "companyId should not be empty" } }, { resp.status, body.message })
    end)

    it("reconnects an installed location or company to a code that exchanges", function()
      local function reconnect(t)
        local resp = assert(http.request { method = "POST", url = s.url .. "/oauth/reconnect", json = t,
          timeout = 10 })
        return resp, resp:json()
      end
      local resp, body = reconnect { clientKey = APP, clientSecret = SECRET, locationId = LOC }
      assert.are.equal(200, resp.status, resp.body)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$", body.expiresAt)
      assert.is_string(body.traceId)
      local tresp, tok = exchange(s, body.authorizationCode)
      assert.are.equal(200, tresp.status)
      assert.are.same({ "Location", LOC }, { tok.userType, tok.locationId })
      assert.are.equal(400, exchange(s, body.authorizationCode).status)
      resp, body = reconnect { clientKey = AGENCY, clientSecret = AGENCY_SECRET, companyId = COMPANY }
      assert.are.equal(200, resp.status)
      tresp, tok = exchange(s, body.authorizationCode, AGENCY)
      assert.are.same({ 200, "Company" }, { tresp.status, tok.userType })
      resp = reconnect { clientKey = APP, clientSecret = "wrong", locationId = LOC }
      assert.are.equal(401, resp.status)
      resp, body = reconnect { clientKey = APP, clientSecret = SECRET, locationId = "NeverInstalled000001" }
      assert.are.same({ 400, "The app is not installed on this location." }, { resp.status, body.message })
      resp = reconnect { clientKey = APP, clientSecret = SECRET }
      assert.are.equal(422, resp.status)
      assert.is_true(s.stats().oauth.reconnects >= 2)
    end)
  end)
end)

describe("ghlua sim agency installs (FACTS §3)", function()
  local s, apps_file, L
  local APP_ID = AGENCY:match("^[^-]+")
  local SCOPE = "oauth.readonly oauth.write contacts.readonly"

  setup(function()
    apps_file = write_file(APPS_JSON)
    s = sim.start { "--apps", apps_file, "--locations", "4", "--rate-max", "100000" }
    L = {}
    for i, loc in ipairs(s.ready.locations) do L[i] = loc.id end
  end)
  teardown(function()
    if s then s.stop() end
    os.remove(apps_file)
  end)

  -- The simulator's deliveries since mark (GET /__sim/webhooks), and the new mark.
  local function webhooks_since(mark)
    local info = assert(http.request { url = s.url .. "/__sim/webhooks", timeout = 10 }):json()
    local out = {}
    for i = (mark or 0) + 1, #info.deliveries do out[#out + 1] = info.deliveries[i] end
    return out, #info.deliveries
  end

  local function installed(tok, q, version)
    q.companyId, q.appId = COMPANY, APP_ID
    local path = version == "v3" and "/oauth/installed-locations" or "/oauth/installedLocations"
    local resp, body = api(s, "GET", path, tok, { query = q, version = version })
    assert.are.equal(200, resp.status, resp.body)
    local ids = {}
    for _, l in ipairs(body.locations or body.items) do ids[#ids + 1] = l._id end
    return ids, body
  end

  local function location_token(tok, id, version)
    local path = version == "v3" and "/oauth/location-token" or "/oauth/locationToken"
    return api(s, "POST", path, tok, { form = { companyId = COMPANY, locationId = id }, version = version })
  end

  local function reconnect(t)
    t.clientKey, t.clientSecret = AGENCY, AGENCY_SECRET
    local resp = assert(http.request { method = "POST", url = s.url .. "/oauth/reconnect", json = t, timeout = 10 })
    return resp, resp:json()
  end

  local function add_location(fields)
    local resp = assert(http.request { method = "POST", url = s.url .. "/__sim/locations", json = fields,
      timeout = 10 })
    return resp, resp:json()
  end

  local function uninstall_agency()
    local resp = assert(http.request { method = "POST", url = s.url .. "/__sim/uninstall", timeout = 10,
      json = { companyId = COMPANY, clientId = AGENCY } })
    assert.are.equal(200, resp.status, resp.body)
    return resp:json().uninstalled
  end

  it("a Company consent approving a chosen list installs the agency and those locations only", function()
    s.oauth { auto_approve = "company:" .. L[4] .. "," .. L[2] }
    local _, mark = webhooks_since()
    local body = login(s, { scope = SCOPE }, AGENCY)
    -- the token answer (FACTS §2): the approved locations, in the company's order
    assert.are.same({ "Company", COMPANY, { L[2], L[4] }, true, false, false },
      { body.userType, body.companyId, body.approvedLocations, body.isBulkInstallation,
        body.approveAllLocations, body.installToFutureLocations })
    assert.is_nil(body.locationId)
    -- one INSTALL for the agency, then one per approved location, each with companyId
    local sent = webhooks_since(mark)
    assert.are.same({ "INSTALL", "Company", COMPANY }, { sent[1].type, sent[1].installType, sent[1].companyId })
    assert.is_nil(sent[1].locationId)
    assert.are.equal(3, #sent)
    for i, id in ipairs { L[2], L[4] } do
      assert.are.same({ "INSTALL", "Location", COMPANY, id }, { sent[i + 1].type, sent[i + 1].installType,
        sent[i + 1].companyId, sent[i + 1].locationId })
      assert.is_string(sent[i + 1].userId)
    end

    -- installedLocations (v2): the filter works, count is the company's total
    local tok = body.access_token
    local ids, all = installed(tok, {})
    assert.are.same({ L, 5, false }, { ids, all.count, all.installToFutureLocations })
    local yes, yes_body = installed(tok, { isInstalled = "true" })
    assert.are.same({ { L[2], L[4] }, 5 }, { yes, yes_body.count })
    for _, l in ipairs(yes_body.locations) do
      assert.is_true(l.isInstalled)
      assert.is_string(l.installedAt)
    end
    local no, no_body = installed(tok, { isInstalled = "false" })
    assert.are.same({ { L[1], L[3], L[5] }, 5 }, { no, no_body.count })
    for _, l in ipairs(no_body.locations) do
      assert.is_false(l.isInstalled)
      assert.is_nil(l.installedAt)
    end
    -- v3: totalRecords counts the matching locations, across pages
    local v3yes, v3body = installed(tok, { isInstalled = "true", pageSize = 1 }, "v3")
    assert.are.same({ { L[2] }, 2, true, false }, { v3yes, v3body.pagination.totalRecords,
      v3body.pagination.hasNextPage, v3body.installToFutureLocations })
    assert.is_nil(v3body.pagination.estimatedTotalRecords)
    assert.are.equal(3, select(2, installed(tok, { isInstalled = "false" }, "v3")).pagination.totalRecords)
    assert.are.equal(5, select(2, installed(tok, {}, "v3")).pagination.totalRecords)

    -- location tokens only where the app is installed, v2 and v3
    local resp, lt = location_token(tok, L[2])
    assert.are.same({ 200, L[2] }, { resp.status, lt.locationId })
    for _, version in ipairs { "2021-07-28", "v3" } do
      local r, err = location_token(tok, L[3], version)
      assert.are.same({ 400, 400, "The app is not installed on this location.", "Bad Request" },
        { r.status, err.statusCode, err.message, err.error }, version)
    end
    resp, lt = location_token(tok, L[4], "v3")
    assert.are.equal(200, resp.status, resp.body)
    assert.are.same({ "Bearer", L[4], APP_ID }, { lt.tokenType, lt.locationId, lt.appId })
    assert.is_string(lt.accessToken)
    assert.is_string(lt.refreshToken)
    assert.is_nil(lt.access_token)
    assert.are.equal(200, api(s, "GET", "/contacts/", lt.accessToken, { query = { locationId = L[4] } }).status)
    -- minting installed nothing more
    assert.are.same({ L[2], L[4] }, (installed(tok, { isInstalled = "true" })))
    assert.is_true(s.stats().oauth.not_installed >= 2)

    -- Reconnect agrees with installedLocations
    local rc, rbody = reconnect { locationId = L[2] }
    assert.are.equal(200, rc.status, rc.body)
    local ex, again = exchange(s, rbody.authorizationCode, AGENCY)
    assert.are.same({ 200, "Location", L[2] }, { ex.status, again.userType, again.locationId })
    rc, rbody = reconnect { locationId = L[3] }
    assert.are.same({ 400, "The app is not installed on this location." }, { rc.status, rbody.message })
    assert.are.equal(200, (reconnect { companyId = COMPANY }).status)

    -- a location added later: not installed without future locations
    local _, mark2 = webhooks_since()
    local added, info = add_location { name = "Sim Later Branch" }
    assert.are.equal(201, added.status, added.body)
    assert.are.same({ "Sim Later Branch", COMPANY, {} }, { info.name, info.companyId, info.installed })
    assert.are.equal(0, #webhooks_since(mark2))
    local _, later = installed(tok, { locationId = info.id })
    assert.are.same({ false, 6 }, { later.locations[1].isInstalled, later.count })
    assert.are.equal(400, (location_token(tok, info.id)).status)
    rc = reconnect { locationId = info.id }
    assert.are.equal(400, rc.status)
  end)

  it("approving every location and future ones installs each, and a location added later", function()
    local gone = uninstall_agency()
    assert.are.equal(3, #gone)   -- the agency and its two locations
    local r = reconnect { companyId = COMPANY }
    assert.are.equal(400, r.status)
    s.oauth { auto_approve = "company" }
    local _, mark = webhooks_since()
    local body = login(s, { scope = SCOPE }, AGENCY)
    local every = {}
    for _, loc in ipairs(installed(body.access_token, {})) do every[#every + 1] = loc end
    assert.are.equal(6, #every)
    assert.are.same({ every, true, true, true }, { body.approvedLocations, body.isBulkInstallation,
      body.approveAllLocations, body.installToFutureLocations })
    local sent = webhooks_since(mark)
    assert.are.equal(7, #sent)
    assert.is_nil(sent[1].locationId)
    for i = 2, 7 do assert.are.same({ "INSTALL", every[i - 1] }, { sent[i].type, sent[i].locationId }) end

    local _, mark2 = webhooks_since()
    local added, info = add_location { id = "FutureLocation000001", name = "Sim Future Branch" }
    assert.are.equal(201, added.status, added.body)
    assert.are.same({ "FutureLocation000001", { AGENCY } }, { info.id, info.installed })
    local fut = webhooks_since(mark2)
    assert.are.equal(1, #fut)
    assert.are.same({ "INSTALL", "FutureLocation000001", COMPANY }, { fut[1].type, fut[1].locationId, fut[1].companyId })
    assert.is_nil(fut[1].userId)   -- AppInstall.md: future installs may lack userId
    local ids, list = installed(body.access_token, { isInstalled = "true" })
    assert.are.same({ 7, 7, true }, { #ids, list.count, list.installToFutureLocations })
    assert.are.equal("FutureLocation000001", ids[7])
    assert.are.equal(200, (location_token(body.access_token, "FutureLocation000001")).status)
    assert.are.equal(200, (reconnect { locationId = "FutureLocation000001" }).status)
    -- the Company token's next answer lists it too
    local rr, fresh = refresh(s, body.refresh_token, AGENCY)
    assert.are.equal(200, rr.status, rr.body)
    assert.are.equal(7, #fresh.approvedLocations)
    assert.are.equal("FutureLocation000001", fresh.approvedLocations[7])
    -- ids are unique; bad bodies are refused
    assert.are.equal(409, (add_location { id = "FutureLocation000001" }).status)
    assert.are.equal(400, (add_location { id = "bad id" }).status)
    assert.are.equal(400, (add_location { name = 5 }).status)
    assert.is_true(s.stats().oauth.locations_added >= 2)
  end)

  it("the picker lets the agency approve some locations and future ones", function()
    uninstall_agency()
    s.oauth { auto_approve = false }
    local resp = authorize(s, { client_id = AGENCY, scope = SCOPE })
    assert.are.equal(200, resp.status)
    for _, k in ipairs { 'name="approveAllLocations"', 'name="installToFutureLocations"' } do
      assert.truthy(resp.body:find(k, 1, true), k)
    end
    for _, id in ipairs(L) do
      assert.truthy(resp.body:find('name="approvedLocations" value="' .. id .. '"', 1, true), id)
    end
    -- the form as a browser sends it: one approvedLocations per box ticked
    local function post(extra)
      local form = assert(http.encode { response_type = "code", client_id = AGENCY, redirect_uri = REDIRECT,
        scope = SCOPE, location = "company", action = "approve" })
      return assert(http.request { method = "POST", url = s.url .. V2 .. "/approve", timeout = 10,
        body = form .. extra, headers = { ["Content-Type"] = "application/x-www-form-urlencoded" } })
    end
    local p = post("&approvedLocations=" .. L[5] .. "&approvedLocations=" .. L[3] .. "&installToFutureLocations=true")
    assert.are.equal(302, p.status, p.body)
    local _, q = split_url(p.headers.location)
    local tr, body = exchange(s, q.code, AGENCY)
    assert.are.equal(200, tr.status)
    assert.are.same({ { L[3], L[5] }, true, false, true }, { body.approvedLocations, body.isBulkInstallation,
      body.approveAllLocations, body.installToFutureLocations })
    -- the agency alone: no location approved, not a bulk installation
    uninstall_agency()
    p = post("")
    _, q = split_url(p.headers.location)
    tr, body = exchange(s, q.code, AGENCY)
    assert.are.same({ {}, false, false, false }, { body.approvedLocations, body.isBulkInstallation,
      body.approveAllLocations, body.installToFutureLocations })
    assert.are.same({}, (installed(body.access_token, { isInstalled = "true" })))
    -- an id that is not the company's is an error page, never a redirect
    p = post("&approvedLocations=NotOurLocation000001")
    assert.are.equal(400, p.status)
    assert.is_nil(p.headers.location)
    assert.truthy(p.body:find("NotOurLocation000001", 1, true))
  end)
end)

describe("ghlua sim OAuth flags", function()
  local CID, CSECRET = "5f0e1d2c3b4a596877665544-flags001", "flag-secret-0123456789-abcdefgh"

  it("sets up an app from --app flags and expires tokens and codes after their TTL", function()
    local s = sim.start { "--app", CID, "--app-secret", CSECRET, "--redirect-uri", REDIRECT,
      "--app-scopes", "contacts.readonly, contacts.write", "--token-ttl", "1", "--code-ttl", "1",
      "--auto-approve" }
    local ok, err = pcall(function()
      assert.are.same({ CID, CSECRET, { REDIRECT }, { "contacts.readonly", "contacts.write" } },
        { s.app.client_id, s.app.client_secret, s.app.redirect_uris, s.app.scopes })
      SECRETS[CID] = CSECRET
      local body = login(s, { client_id = CID }, CID)
      assert.are.equal(1, body.expires_in)
      assert.are.equal(200, api(s, "GET", "/contacts/", body.access_token, { query = { locationId = LOC } }).status)
      local late_code = get_code(s, { client_id = CID })
      require("support.fixture").clock(s, { advance = 1.2 })   -- past both TTLs
      assert.are.equal(400, exchange(s, late_code, CID).status)
      local resp, e = api(s, "GET", "/contacts/", body.access_token, { query = { locationId = LOC } })
      assert.are.same({ 401, "Invalid JWT" }, { resp.status, e.message })
      local r2, fresh = refresh(s, body.refresh_token, CID)
      assert.are.equal(200, r2.status)
      assert.are.equal(200, api(s, "GET", "/contacts/", fresh.access_token, { query = { locationId = LOC } }).status)
      local resp3 = authorize(s, { client_id = CID, scope = "contacts.readonly locations.readonly" })
      assert.are.equal(400, resp3.status)
    end)
    s.stop()
    assert(ok, err)
  end)

  it("moves its clock with PUT /__sim/clock: tokens expire, JWT iat/exp follow, never backwards", function()
    local fixture = require "support.fixture"
    local s = sim.start { "--app", CID, "--app-secret", CSECRET, "--redirect-uri", REDIRECT,
      "--app-scopes", "contacts.readonly, contacts.write", "--token-ttl", "3600", "--auto-approve" }
    local ok, err = pcall(function()
      SECRETS[CID] = CSECRET
      local http_get = assert(http.request { url = s.url .. "/__sim/clock" }):json()
      assert.are.equal(0, http_get.offset)
      local body = login(s, { client_id = CID }, CID)
      local function get(tok) return api(s, "GET", "/contacts/", tok, { query = { locationId = LOC } }) end
      local c = fixture.clock(s, { advance = 3599 })
      assert.are.equal(3599, c.offset)
      assert.is_true(math.abs(c.now - (sys.time() + 3599)) < 60)
      assert.are.equal(200, get(body.access_token).status)
      fixture.clock(s, { advance = 2 })
      local resp, e = get(body.access_token)
      assert.are.same({ 401, "Invalid JWT" }, { resp.status, e.message })
      -- a pair issued now is stamped with the simulator's time
      local r2, fresh = refresh(s, body.refresh_token, CID)
      assert.are.equal(200, r2.status)
      local p = jwt_payload(fresh.access_token)
      assert.is_true(math.abs(p.iat - (sys.time() + 3601)) < 60, cjson.encode(p))
      assert.are.equal(3600, p.exp - p.iat)
      assert.are.equal(200, get(fresh.access_token).status)
      -- {now = ...} sets it; the past and nonsense are refused
      local later = fixture.clock(s, { now = c.now + 86400 }).now
      assert.is_true(math.abs(later - (c.now + 86400)) < 1)
      for _, bad in ipairs { { now = c.now }, { advance = -1 }, { advance = "1" }, {}, { advance = 1, now = later } } do
        local r = assert(http.request { method = "PUT", url = s.url .. "/__sim/clock", json = bad })
        assert.are.equal(400, r.status, cjson.encode(bad))
      end
      assert.are.equal(401, get(fresh.access_token).status)
      local help = run.ghlua { "sim", "--help" }
      assert.matches("/__sim/clock", help.out, 1, true)
    end)
    s.stop()
    assert(ok, err)
  end)

  it("delays /oauth/token answers after the request took effect (phase after)", function()
    local s = sim.start { "--token-delay-ms", "700", "--token-delay-phase", "after", "--auto-approve" }
    local ok, err = pcall(function()
      local cid, secret = s.app.client_id, s.app.client_secret
      SECRETS[cid] = secret
      local body = login(s, { client_id = cid }, cid)
      -- held back: once the answer is in, the simulator's clock is past its due time
      local exchange = simlog.requests(s, { path = "/oauth/token" })[1]
      assert.are.equal(700, exchange.delayMs)
      assert.is_true(simlog.now_ms(s) >= simlog.answered(exchange), "the token answer was not held back")
      -- a client that gives up (or is killed) while the answer is delayed
      local resp, terr = http.request { method = "POST", url = s.url .. "/oauth/token", timeout = 0.25,
        form = { client_id = cid, client_secret = secret, grant_type = "refresh_token",
          refresh_token = body.refresh_token } }
      assert.is_nil(resp)
      assert.are.equal("timeout", terr.kind)
      local st = s.stats().oauth
      assert.are.same({ 1, 0, 2 }, { st.in_flight, st.held, st.token_received })
      assert.are.equal(1, st.refresh_ok)   -- already rotated
      local r2, e2 = refresh(s, body.refresh_token, cid)
      assert.are.same({ 400, "Invalid grant: refresh token is invalid" }, { r2.status, e2.message })
      assert.are.equal(1, s.stats().oauth.refresh_reuse)
    end)
    s.stop()
    assert(ok, err)
  end)

  it("holds the effect until the answer is due (phase before)", function()
    local s = sim.start { "--token-delay-ms", "700", "--token-delay-phase", "before", "--auto-approve" }
    local ok, err = pcall(function()
      local cid, secret = s.app.client_id, s.app.client_secret
      SECRETS[cid] = secret
      local body = login(s, { client_id = cid }, cid)
      -- the pair from a held exchange works as soon as the answer arrived
      assert.are.equal(200, api(s, "GET", "/contacts/", body.access_token, { query = { locationId = LOC } }).status)
      local resp = http.request { method = "POST", url = s.url .. "/oauth/token", timeout = 0.25,
        form = { client_id = cid, client_secret = secret, grant_type = "refresh_token",
          refresh_token = body.refresh_token } }
      assert.is_nil(resp)
      local st = s.stats().oauth
      assert.are.same({ 1, 1, 0 }, { st.in_flight, st.held, st.refresh_ok })
      sys.sleep(0.6)   -- past the answer's deadline: still nothing consumed
      st = s.stats().oauth
      assert.are.same({ 0, 1, 0 }, { st.in_flight, st.held, st.refresh_ok })
      -- the retry finds the refresh token unspent; the abandoned request is dropped
      local r2, fresh = refresh(s, body.refresh_token, cid)
      assert.are.equal(200, r2.status)
      assert.are.equal(200, api(s, "GET", "/contacts/", fresh.access_token, { query = { locationId = LOC } }).status)
      st = s.stats().oauth
      assert.are.same({ 1, 1, 0, 0 }, { st.refresh_ok, st.superseded, st.held, st.refresh_reuse })
      local r3 = refresh(s, body.refresh_token, cid)
      assert.are.equal(400, r3.status)
      -- delays can be switched at run time
      s.oauth { token_delay_ms = 0 }
      simlog.clear(s)
      assert.are.equal(200, refresh(s, fresh.refresh_token, cid).status)
      -- answered at once: the simulator held nothing back
      local log = simlog.requests(s, { path = "/oauth/token" })
      assert.are.same({ 1, 200 }, { #log, log[1].status })
      assert.is_nil(log[1].delayMs)
      assert.are.equal(0, s.stats().oauth.in_flight)
    end)
    s.stop()
    assert(ok, err)
  end)
end)
