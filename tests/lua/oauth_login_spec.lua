-- OAuth end to end through the command line: store an app, log in with a
-- browser (curl following redirects, then headless Chromium) while ghlua
-- catches the redirect on loopback, paste-and-exchange by hand, and the
-- failures a user meets on the way.
local oauth = require "support.oauth"
local run = require "support.run"
local http = require "ghl.http"
local cjson = require "cjson"

-- An executable $BROWSER script (sh) with the given body; $1 is the link.
local function browser_script(body)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write("#!/bin/sh\n", body)
  f:close()
  assert(os.execute("chmod +x " .. run.quote(path)))
  return path
end

local function status(o)
  local r = o.ghlua { "auth", "status", "--json" }
  assert.are.equal(0, r.code, r.err)
  return cjson.decode(r.out)
end

-- A code from the simulator's consent endpoint, without a login waiting.
local function fetch_code(o, state)
  local resp = assert(http.request { url = o.sim.url .. "/v2/oauth/chooselocation", query = {
    response_type = "code", client_id = o.client_id, redirect_uri = o.redirect_uri,
    scope = "contacts.readonly", state = state } })
  assert.are.equal(302, resp.status, resp.body)
  return resp.headers.location, resp.headers.location:match("[?&]code=([^&]+)")
end

describe("ghlua app", function()
  local o
  setup(function() o = oauth.start { "--auto-approve" } end)
  teardown(function() o.stop() end)

  it("stores an app with the secret from GHL_CLIENT_SECRET and lists it redacted", function()
    local r = o.add_app()
    assert.matches("stored app app1", r.out)
    assert.is_nil(r.out:find(o.secret, 1, true))
    local l = o.ghlua { "app", "list" }
    assert.are.equal(0, l.code)
    assert.matches("app1%s+" .. o.client_id:gsub("%p", "%%%0"), l.out)
    assert.matches("secret …SECR", l.out)
    assert.is_nil(l.out:find(o.secret, 1, true))
  end)

  it("refuses to store an app without a secret when there is no terminal", function()
    local r = o.ghlua({ "app", "add", "nosecret", "--client-id", "a-b", "--redirect-uri", "http://localhost:1/cb" },
                      { env = { GHL_CLIENT_SECRET = "" } })
    assert.are.equal(2, r.code)
    assert.matches("no client secret: set GHL_CLIENT_SECRET", r.err)
  end)

  it("rejects a relative redirect URI and unknown scopes (status 2)", function()
    local r = o.ghlua { "app", "add", "x", "--client-id", "a-b", "--redirect-uri", "/callback" }
    assert.are.equal(2, r.code)
    assert.matches("absolute", r.err)
    r = o.ghlua { "app", "add", "x", "--client-id", "a-b", "--redirect-uri", "http://localhost:1/", "--scopes", "contacts.read" }
    assert.are.equal(2, r.code)
    assert.matches("contacts%.readonly", r.err)
  end)

  it("removes an app", function()
    o.ghlua { "app", "add", "gone", "--client-id", "a-b", "--redirect-uri", "http://localhost:1/cb" }
    local r = o.ghlua { "app", "remove", "gone" }
    assert.are.equal(0, r.code, r.err)
    r = o.ghlua { "app", "remove", "gone" }
    assert.are.equal(2, r.code)
  end)
end)

describe("ghlua auth login", function()
  local o
  before_each(function()
    o = oauth.start { "--auto-approve" }
    o.add_app()
  end)
  after_each(function() o.stop() end)

  it("catches the redirect on loopback when the browser follows redirects, and stores the token", function()
    local r = o.login()
    assert.are.equal(0, r.code, r.err)
    assert.matches("Logged in: token Location " .. o.sim.location, r.out)
    assert.matches("Open this link to approve the app", r.err)
    assert.matches("/v2/oauth/chooselocation%?response_type=code&client_id=" .. o.client_id:gsub("%p", "%%%0"), r.err)
    local st = status(o)
    assert.are.equal(1, #st)
    assert.are.same({ "Location", o.sim.location, "app1", "ok" }, { st[1].type, st[1].resource, st[1].app, st[1].status })
    assert.matches("^…", st[1].access_token)
    assert.matches("contacts%.readonly", st[1].scopes)
    -- the stored token works on the API
    local t = o.ghlua { "auth", "token" }
    assert.are.equal(0, t.code, t.err)
    local resp = assert(http.request { url = o.sim.url .. "/contacts/", query = { locationId = o.sim.location },
      headers = { Authorization = "Bearer " .. t.out:gsub("%s+$", ""), Version = "2021-07-28" } })
    assert.are.equal(200, resp.status, resp.body)
  end)

  it("works with headless Chromium as the browser", function()
    local profile = os.tmpname()
    os.remove(profile)
    local browser = "chromium --headless --no-sandbox --disable-gpu --no-first-run --disable-background-networking "
      .. "--disable-component-update --disable-sync --user-data-dir=" .. profile .. " --dump-dom"
    local r = o.ghlua({ "auth", "login", "--app", "app1" }, { env = { BROWSER = browser } })
    os.execute("rm -rf " .. run.quote(profile))
    assert.are.equal(0, r.code, r.err)
    assert.matches("Logged in: token Location " .. o.sim.location, r.out)
  end)

  it("ignores a callback with the wrong state and takes the real one", function()
    local script = browser_script [[
loc=$(curl -s -o /dev/null -w '%{redirect_url}' "$1")
curl -s -o /dev/null "${loc%%\?*}?code=forged&state=evil"
exec curl -s -o /dev/null "$loc"
]]
    local r = o.ghlua({ "auth", "login", "--app", "app1" }, { env = { BROWSER = script } })
    os.remove(script)
    assert.are.equal(0, r.code, r.err)
    assert.matches("ignored a callback whose state does not match", r.err)
    assert.matches("Logged in", r.out)
  end)

  it("does not accept a callback without state on its own, and stores nothing", function()
    -- the redirect comes back without state (as an attacker's would);
    -- the browser gets a page that says what to do
    local page = os.tmpname()
    local script = browser_script(([[
loc=$(curl -s -o /dev/null -w '%%{redirect_url}' "$1")
curl -s -o %s "$(printf '%%s' "$loc" | sed 's/&state=[^&]*//')"
]]):format(run.quote(page)))
    local r = o.ghlua({ "auth", "login", "--app", "app1", "--timeout", "2" }, { env = { BROWSER = script } })
    os.remove(script)
    local html = run.slurp(page)
    os.remove(page)
    assert.are.equal(1, r.code, r.err)
    assert.matches("a callback without state arrived on port " .. o.port .. "; it is not accepted on its own", r.err)
    assert.matches("paste the address your browser shows", r.err)
    assert.matches("no approval arrived within 2 seconds; 1 callback without state was not accepted", r.err)
    assert.matches("Confirm in the terminal", html)
    assert.matches("paste it into the terminal", html)
    assert.is_nil(r.out:find("Logged in", 1, true))
    assert.are.equal(0, #status(o))
    assert.are.equal(0, o.stats().oauth.token_received)
  end)

  it("completes the login with the paste of the address the browser shows", function()
    local fifo = os.tmpname()
    os.remove(fifo)
    assert(os.execute("mkfifo -m 600 " .. run.quote(fifo)))
    -- the browser is sent back without state, gets the page, and the user
    -- pastes the address it shows into the waiting terminal
    local script = browser_script(([[
loc=$(curl -s -o /dev/null -w '%%{redirect_url}' "$1")
bare=$(printf '%%s' "$loc" | sed 's/&state=[^&]*//')
curl -s -o /dev/null "$bare"
printf 'not an address
%%s
' "$bare" > %s
]]):format(run.quote(fifo)))
    local cmd = "sh -c " .. run.quote(run.quote(os.getenv("GHLUA")) .. " auth login --app app1 0<>" .. run.quote(fifo))
    local env = { BROWSER = script }
    for k, v in pairs(o.env) do env[k] = v end
    local r = run.sh(cmd, { env = env })
    os.remove(script)
    os.remove(fifo)
    assert.are.equal(0, r.code, r.err)
    assert.matches("a callback without state arrived", r.err)
    assert.matches("that is neither a redirected URL nor a code", r.err)
    assert.matches("the pasted address carries no state either; taken because you pasted it", r.err)
    assert.matches("Logged in: token Location " .. o.sim.location, r.out)
    assert.are.equal(1, #status(o))
  end)

  it("still takes the real redirect after a forged callback without state", function()
    local forged, forged_code = fetch_code(o, "attacker")
    forged = forged:gsub("&state=[^&]*", "")
    local script = browser_script(([[
curl -s -o /dev/null %s
exec curl -sfL -o /dev/null "$1"
]]):format(run.quote(forged)))
    local r = o.ghlua({ "auth", "login", "--app", "app1" }, { env = { BROWSER = script } })
    os.remove(script)
    assert.are.equal(0, r.code, r.err)
    assert.matches("a callback without state arrived", r.err)
    assert.matches("Logged in", r.out)
    -- the forged code was never exchanged: it still works once
    assert.are.equal(1, o.stats().oauth.token_received)
    local x = o.ghlua { "auth", "exchange", forged_code, "--app", "app1" }
    assert.are.equal(0, x.code, x.err)
  end)

  it("reports an error callback (the user denied)", function()
    o.stop()
    o = oauth.start { "--auto-approve", "--deny" }
    o.add_app()
    local r = o.login()
    assert.are.equal(1, r.code)
    assert.matches("authorization refused: access_denied", r.err)
    assert.are.equal(0, #status(o))
  end)

  it("gives up after --timeout with a clear message", function()
    local r = o.ghlua({ "auth", "login", "--app", "app1", "--timeout", "1" }, { env = { BROWSER = "true" } })
    assert.are.equal(1, r.code)
    assert.matches("no approval arrived within 1 seconds", r.err)
  end)

  it("explains a redirect port that is taken", function()
    local busy = o.hold()
    local r = o.login()
    o.release(busy)
    assert.are.equal(1, r.code)
    assert.matches("port " .. o.port .. " must be free", r.err)
  end)

  it("survives its redirect port being taken before the login binds it (support.oauth moves the app)", function()
    local server = require "ghl.server"
    local first = o.port
    local thief = assert(server.listen { host = "localhost", port = first, handler = function() end })
    local r = o.login()
    thief:close()
    assert.are.equal(0, r.code, r.err)
    assert.are_not.equal(first, o.port)
    assert.matches("waiting on http://localhost:" .. o.port .. "/callback", r.err)
  end)

  it("asks for the redirected URL or the code with --no-browser", function()
    local _, code = fetch_code(o, "whatever")
    local r = o.ghlua({ "auth", "login", "--app", "app1", "--no-browser" }, { stdin = code .. "\n" })
    assert.are.equal(0, r.code, r.err)
    assert.matches("paste the address you were sent to", r.err)
    assert.matches("Logged in", r.out)
  end)

  it("refuses a pasted URL from another login (state mismatch)", function()
    local url = fetch_code(o, "not-this-login")
    local r = o.ghlua({ "auth", "login", "--app", "app1", "--no-browser" }, { stdin = url .. "\n" })
    assert.are.equal(1, r.code)
    assert.matches("state mismatch", r.err)
  end)

  it("exchanges a code by hand, and explains a code used twice", function()
    local url = fetch_code(o, "s1")
    local r = o.ghlua { "auth", "exchange", url, "--app", "app1" }
    assert.are.equal(0, r.code, r.err)
    assert.matches("Logged in", r.out)
    r = o.ghlua { "auth", "exchange", url, "--app", "app1" }
    assert.are.equal(1, r.code)
    assert.matches("single%-use", r.err)
  end)

  it("explains a wrong client secret", function()
    local url = fetch_code(o, "s2")
    local r = o.ghlua({ "auth", "exchange", url, "--client-id", o.client_id, "--redirect-uri", o.redirect_uri },
                      { env = { GHL_CLIENT_SECRET = "wrong-secret-value" } })
    assert.are.equal(1, r.code)
    assert.matches("client secret", r.err)
    assert.is_nil(r.err:find("wrong-secret-value", 1, true))
  end)

  it("works with GHL_CLIENT_ID and GHL_CLIENT_SECRET and no stored app", function()
    local r = o.ghlua({ "auth", "login", "--scopes", "contacts" },
                      { env = { GHL_CLIENT_ID = o.client_id, GHL_REDIRECT_URI = o.redirect_uri, BROWSER = "curl -sfL -o /dev/null" } })
    assert.are.equal(0, r.code, r.err)
    assert.matches("Logged in", r.out)
  end)

  it("forgets tokens with logout", function()
    assert.are.equal(0, o.login().code)
    local r = o.ghlua { "auth", "logout", "--location", o.sim.location }
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(0, #status(o))
    assert.are.equal(2, o.ghlua({ "auth", "logout" }).code)
  end)
end)

describe("ghlua auth check --app", function()
  it("checks a link against a stored app", function()
    local o = oauth.start {}
    finally(o.stop)
    o.add_app()
    local good = o.ghlua { "auth", "url", "--client-id", o.client_id, "--redirect-uri", o.redirect_uri, "--scopes", "contacts" }
    assert.are.equal(0, good.code, good.err)
    local r = o.ghlua { "auth", "check", (good.out:gsub("%s+$", "")), "--app", "app1" }
    assert.are.equal(0, r.code, r.out .. r.err)
    local bad = good.out:gsub("localhost%%3A%d+", "localhost%%3A1"):gsub("%s+$", "")
    r = o.ghlua { "auth", "check", bad, "--app", "app1" }
    assert.are.equal(1, r.code)
    assert.matches("redirect_mismatch", r.out .. r.err)
  end)
end)
