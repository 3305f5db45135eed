-- The REPL (lua/ghl/repl/ over src/repl.c). First its pure parts in
-- process: secret detection, the history file's encoding, completion
-- candidates (and that completion never runs user code), the recipe text
-- of :save, and the printer. Then the real thing on a pseudo-terminal
-- (tmux, support.tmux) against a simulator with an OAuth login in a private
-- GHLUA_HOME: the banner and the ready client, expression printing,
-- multi-line input, colour and NO_COLOR, summarised arrays and :more,
-- errors with hints and _err, Tab completion (ghl.con, a method through
-- __index, an API path inside c:get("/…, scope names), the history file
-- checked byte for byte with no secrets in it, Ctrl-C during a slow request
-- and at the prompt, Ctrl-D, every : command, :save giving recipes that
-- `ghlua run` accepts, and :sim. Every wait polls the screen with a
-- timeout; nothing sleeps a fixed time.
local repl = require "ghl.repl"
local inspect = require "ghl.inspect"
local ops = require "ghl.api.ops"
local sys = require "ghl.sys"
local http = require "ghl.http"
local cjson = require "cjson.safe"

-- ---- In process ----

describe("repl.secret", function()
  local known = { "sim-client-secret-0123456789-SECR", "short" }
  local cases = {
    { 'x = 41 + 1', false },
    { 'c:get("/contacts/", {limit = 5})', false },
    { 's = "sim-client-secret-0123456789-SECR"', true },   -- a known secret
    { 'x = "short"', false },                                -- too short to count
    { 'p = "pit-0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"', true },
    { 'spit-take = 1', false },
    { 'j = "eyJhbGciOiJIUzI1NiJ9.e30.sig"', true },
    { 'h = {Authorization = "x"}', true },
    { 'h = "bearer abc"', true },
    { 'os.getenv("GHL_CLIENT_SECRET")', true },
    { 'row.refresh_token', true },
    { 'accessToken = t', true },
    { 'os.getenv("GHL_PIT")', true },
  }
  for _, case in ipairs(cases) do
    it((case[2] and "keeps out " or "lets through ") .. case[1], function()
      assert.are.equal(case[2], repl.secret(case[1], known) ~= nil)
    end)
  end
end)

describe("repl history encoding", function()
  it("keeps one statement a line and round-trips newlines and backslashes", function()
    local entry = 'for i = 1, 2 do\nprint("a\\nb")\nend'
    local line = repl.history_encode(entry)
    assert.are.equal('for i = 1, 2 do\\nprint("a\\\\nb")\\nend', line)
    assert.is_nil(line:find("\n", 1, true))
    assert.are.equal(entry, repl.history_decode(line))
  end)
end)

describe("repl.candidates", function()
  local ran
  local Class = {}
  Class.__index = function(self, k) ran = true; return Class[k] end
  function Class.fetch() end
  function Class.find() end
  local Base = { speak = function() end, sleep = function() end }
  Base.__index = Base
  local env = {
    ghl = setmetatable({ client = function() end }, { __complete = { contacts = "ghl.contacts", conversations = "x" },
      __index = function() ran = true end }),
    obj = setmetatable({ field = 1 }, Class),
    dog = setmetatable({ name = "rex" }, Base),
    trap = setmetatable({}, { __index = function() ran = true end, __pairs = function() ran = true end }),
    string = string,
    s = "text",
    print = print, pairs = pairs,
  }

  local function cands(before)
    local start, list = repl.candidates(before, env)
    table.sort(list)
    return list, start
  end

  before_each(function() ran = false end)

  it("completes globals, keywords and dotted fields", function()
    assert.are.same({ "pairs(", "print(" }, cands("p"))
    assert.are.same({ "function" }, cands("func"))
    assert.are.same({ "ghl.client(", "ghl.contacts", "ghl.conversations" }, cands("ghl.c"))
    assert.are.same({ "ghl.contacts", "ghl.conversations" }, cands("x = ghl.con"))
  end)

  it("completes methods through a plain __index chain and a class metatable", function()
    assert.are.same({ "dog:sleep(", "dog:speak(" }, cands("dog:s"))
    assert.are.same({ "dog.name", "dog.sleep(", "dog.speak(" }, cands("dog."))
    assert.are.same({ "obj:fetch(", "obj:find(" }, cands("obj:f"))
    assert.are.same({ "s:upper(" }, cands("s:upp"))
    assert.is_false(ran)
  end)

  it("never calls __index or __pairs functions", function()
    assert.are.same({}, cands("trap.x"))
    assert.are.same({}, cands("trap:"))
    assert.are.same({}, cands("ghl.contacts.cr"))
    assert.is_false(ran)
  end)

  it("completes API paths inside a string passed to a request method, by method", function()
    local list, start = cands('c:get("/contacts/{contactId}/no')
    assert.are.same({ "/contacts/{contactId}/notes", "/contacts/{contactId}/notes/{id}" }, list)
    assert.are.equal(8, start)
    assert.are.same(ops.complete("/con", "GET"), cands('c:get("/con'))
    assert.are.same(ops.complete("/contacts/", "POST"), cands('client:post( "/contacts/'))
    assert.are.same(ops.complete("/contacts/", "DELETE"), cands("c:request('DELETE', '/contacts/"))
    assert.are.same(ops.complete("/con"), cands('x = "/con'))
    -- GET and POST lists differ, so the method is really used
    assert.are_not.same(ops.complete("/contacts/", "GET"), ops.complete("/contacts/", "POST"))
  end)

  it("completes scope names in strings and after :scopes, and command names", function()
    assert.are.same({ "contacts.readonly", "contacts.write" }, cands('scopes = {"contacts.'))
    assert.are.same({ "contacts.write" }, cands(":scopes contacts.w"))
    assert.are.same({ ":save", ":scopes", ":sim" }, cands(":s"))
    assert.are.same({}, cands("-- a comment ghl.c"))
  end)

  it("adjusts the replacement to the word libedit chose", function()
    -- libedit's word is shorter than ours (as if it broke at '.')
    assert.are.same({ "con", "contacts", "conversations" }, repl.complete_line("x = ghl.con", 8, 11, env))
    -- libedit's word is longer than ours (as if it did not break at '(')
    local pre = 'c:get("/contacts/{contactId}/notes'
    assert.are.same({ pre, pre, pre .. "/{id}" }, repl.complete_line('c:get("/contacts/{contactId}/not', 0, 31, env))
    -- one candidate: just it; the text after the cursor is not part of the word
    assert.are.same({ "ghl.client(" }, repl.complete_line("ghl.cli", 0, 7, env))
    assert.are.same({ "ghl.client(" }, repl.complete_line("ghl.cli)", 0, 7, env))
  end)
end)

describe("repl.recipe", function()
  it("writes a recipe whose manifest and main function load", function()
    local text = repl.recipe("demo", {
      { code = 'r = c:get("/contacts/", {limit = 2})' },
      { code = "#r.contacts", expression = true },
      { code = "for i = 1, 2 do\n  x = i\nend" },
    }, { scopes = { "contacts.readonly" }, writes = false })
    local manifest
    local env = { recipe = function(m) manifest = m end }
    local main = assert(load(text, "=demo", "t", env))()
    assert.are.same({ name = "demo", description = "TODO: what this recipe does", scopes = { "contacts.readonly" },
                      writes = false, params = {} }, manifest)
    local calls = {}
    local fake = { get = function(_, path) calls[#calls + 1] = path; return { contacts = { 1, 2 } } end }
    assert.are.equal(2, main({}, fake))
    assert.are.same({ "/contacts/" }, calls)
    assert.matches("  _ = #r.contacts\n", text, 1, true)
  end)
end)

describe("ghl.inspect", function()
  it("prints JSON-like text, one line when it fits", function()
    assert.are.equal('{"list": [1, 2, 3], "n": 2, "name": "x\\n", "null": null}',
      inspect.inspect { list = { 1, 2, 3 }, name = "x\n", n = 2.0, null = cjson.null })
    assert.are.equal("[]", inspect.inspect(setmetatable({}, {})))
    assert.are.equal("{}", inspect.inspect {})
    local t = {}
    t.self = t
    assert.are.equal('{"self": <cycle>}', inspect.inspect(t))
  end)

  it("summarises long arrays, and prints them whole when asked", function()
    local t = {}
    for i = 1, 100 do t[i] = i end
    local text, summarised = inspect.render(t)
    assert.are.equal("[1, 2, 3, 4, 5, … 95 more]", text)
    assert.is_true(summarised)
    local all = inspect.render(t, { limit = false })
    for i = 1, 100 do assert.truthy(all:find("%f[%d]" .. i .. "%f[%D]")) end
    assert.is_nil(all:find("more", 1, true))
  end)

  it("colours only when asked", function()
    assert.are.equal('\27[32m"x"\27[0m', inspect.render("x", { color = true }))
    assert.are.equal('"x"', inspect.render("x"))
  end)
end)

-- ---- On a terminal ----

local tmux = require "support.tmux"
local oauth = require "support.oauth"
local run = require "support.run"
local simlog = require "support.simlog"

describe("the REPL on a terminal", function()
  local o, loc, work, token, expiry

  lazy_setup(function()
    o = oauth.start { "--auto-approve", "--contacts", "30", "--faults", "--locations", "1" }
    o.add_app("contacts.readonly contacts.write locations.readonly")
    local r = o.login()
    assert(r.code == 0, r.err)
    loc = o.sim.location
    local info = o.lua([[local row = require("ghl.auth").find{}
      io.write(row.access_token, " ", os.date("!%Y-%m-%d %H:%M UTC", math.floor(row.expires_at)))]])
    token, expiry = info.out:match("^(%S+) (.+)$")
    assert(token and expiry, info.err)
    work = os.tmpname()
    os.remove(work)
    assert(sys.mkdir(work, tonumber("700", 8)))
  end)

  lazy_teardown(function()
    if o then o.stop() end
    if work then os.execute("rm -rf " .. run.quote(work)) end
  end)

  -- A REPL in tmux with the session's environment; waits for the prompt.
  local function start(opts)
    opts = opts or {}
    local env = {}
    for k, v in pairs(o.env) do env[k] = v end
    for k, v in pairs(opts.env or {}) do env[k] = v end
    local t = tmux.start({ os.getenv("GHLUA") }, { env = env, unset = opts.unset, cwd = work })
    t.wait("^ghlua>", 1)
    return t
  end

  -- Type a line and wait for the next prompt; returns the output between.
  local function line(t, s)
    local m = t.mark()
    t.line(s)
    t.wait("^ghlua>", m + 1)
    return t.screen(m):match("^[^\n]*\n(.*)\nghlua>[^\n]*$") or ""
  end

  local function plain(s)
    return (s:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"))
  end

  it("starts with `ghl` and a client for the only stored location; the banner says app, location, expiry",
    function()
    local t = start()
    finally(t.stop)
    local banner = t.screen()
    assert.matches("^ghlua 0%.1%.0 %(Lua 5%.4, HighLevel API%)", banner)
    assert.matches("\napp app1 · location " .. loc .. " · OAuth Location token, expires in 23 h %d+ min %("
      .. plain(expiry) .. "%)\n", banner)
    assert.are.equal('"' .. loc .. '"', line(t, "c.location"))
    assert.are.equal('"function"', line(t, "type(ghl.client)"))
    assert.are.equal("true", line(t, "client == c"))
  end)

  it("prints expressions without return and reads statements over several lines", function()
    local t = start()
    finally(t.stop)
    assert.are.equal("2", line(t, "1 + 1"))
    assert.are.equal('"ab"', line(t, '"a" .. "b"'))
    assert.are.equal('{"list": [1, 2, 3], "name": "x"}', line(t, "{list = {1, 2, 3}, name = 'x'}"))
    assert.are.equal("42", line(t, "= 6 * 7"))
    assert.are.equal("", line(t, "x = 5"))
    assert.are.equal("1\n2", line(t, "1, 2"))

    local m = t.mark()
    t.line("for i = 1, 3 do")
    t.wait("^>>", m + 1)
    t.line("print(i * 10)")
    t.wait("^>>", m + 2)
    t.line("end")
    t.wait("^ghlua>", m + 3)
    assert.are.equal("ghlua> for i = 1, 3 do\n>> print(i * 10)\n>> end\n10\n20\n30\nghlua>", t.screen(m))

    m = t.mark()
    t.line("{")
    t.wait("^>>", m + 1)
    t.line("  a = 1,")
    t.line("}")
    t.wait("^ghlua>", m + 3)
    assert.are.equal('ghlua> {\n>>   a = 1,\n>> }\n{"a": 1}\nghlua>', t.screen(m))

    m = t.mark()
    t.line("function sq(n)")
    t.line("  return n * n")
    t.line("end")
    t.wait("^ghlua>", m + 3)
    assert.are.equal("144", line(t, "sq(12)"))
    assert.are.equal("error: stdin:1: unexpected symbol near '='", line(t, "x = = 1"))
    assert.are.equal("5", line(t, "x"))
  end)

  it("keeps the last result in _ and the last error in _err; a ghl.error prints with its hint", function()
    local t = start()
    finally(t.stop)
    line(t, "41 + 1")
    assert.are.equal("43", line(t, "_ + 1"))
    local text = line(t, 'c:get("/opportunities/pipelines", {locationId = c.location})')
    assert.matches("^error: GET /opportunities/pipelines: The token is not authorized for this scope%. %(HTTP 401, traceId [%w%-]+%)\n"
      .. "hint: GET /opportunities/pipelines needs the scope opportunities%.readonly", text)
    assert.is_nil(text:find("— hint", 1, true))
    assert.are.equal("43", line(t, "_"))
    assert.are.equal("401", line(t, "_err.status"))
    text = line(t, "nil + 1")
    assert.matches("^error: stdin:1: attempt to perform arithmetic on a nil value\nstack traceback:\n", text)
    assert.is_nil(text:find("lua/ghl/repl", 1, true))
  end)

  it("summarises long arrays; :more and ghl.inspect.all print them in full", function()
    local t = start()
    finally(t.stop)
    line(t, "t = {} for i = 1, 100 do t[i] = i * 2 end")
    assert.are.equal("[2, 4, 6, 8, 10, … 95 more]\n(long arrays summarised: :more prints the last result in full)",
      line(t, "t"))
    for _, cmd in ipairs { ":more", "ghl.inspect.all(t)" } do
      local text = line(t, cmd)
      local seen = {}
      for n in text:gmatch("%d+") do seen[#seen + 1] = tonumber(n) end
      local want = {}
      for i = 1, 100 do want[i] = i * 2 end
      assert.are.same(want, seen)
      assert.is_nil(text:find("more", 1, true))
    end
    assert.are.equal('{"items": [2, 4, 6, 8, 10, … 95 more]}\n(long arrays summarised: :more prints the last result in full)',
      line(t, "{items = t}"))
  end)

  it("colours results on a terminal, and not with NO_COLOR", function()
    local t = start { unset = { "NO_COLOR" } }
    finally(t.stop)
    local m = t.mark()
    t.line('{name = "x", n = 1}')
    t.wait("^ghlua>", m + 1)
    local text = t.screen(m, { escapes = true })
    assert.truthy(text:find('\27[32m"x"', 1, true), text)
    assert.truthy(text:find('\27[33m1', 1, true), text)
    t.stop()

    t = start { env = { NO_COLOR = "1" } }
    m = t.mark()
    t.line('{name = "x", n = 1}')
    t.wait("^ghlua>", m + 1)
    text = t.screen(m, { escapes = true })
    assert.truthy(text:find('{"n": 1, "name": "x"}', 1, true), text)
    assert.is_nil(text:find("\27[3", 1, true))
  end)

  it("completes ghl.con, a method through __index, an API path in c:get(\"/… and scope names", function()
    local t = start()
    finally(t.stop)
    -- several candidates: the second Tab lists them
    local m = t.mark()
    t.type("ghl.con")
    t.keys("Tab", "Tab")
    local text = t.wait("ghl.conversations", m, { plain = true })
    assert.truthy(text:find("ghl.contacts", 1, true))
    t.keys("C-u")
    -- one candidate: inserted, with "(" for a function
    m = t.mark()
    t.type("ghl.cli")
    t.keys("Tab")
    t.wait("^ghlua> ghl%.client%($", m)
    t.keys("C-u")
    -- a method of the client class, found through the client's metatable
    m = t.mark()
    t.type("client:ge")
    t.keys("Tab")
    t.wait("^ghlua> client:get%($", m)
    t.keys("C-u")
    -- a plain-table __index chain; the completed call runs
    line(t, "Animal = {} Animal.__index = Animal function Animal.speak() return 'woof' end dog = setmetatable({}, Animal)")
    m = t.mark()
    t.type("dog:sp")
    t.keys("Tab")
    t.wait("^ghlua> dog:speak%($", m)
    t.keys("End")
    t.line(")")
    t.wait('^"woof"$', m)
    t.wait("^ghlua>", m + 2)
    -- an __index function is never called while completing
    line(t, "ran = false trap = setmetatable({}, {__index = function() ran = true end})")
    m = t.mark()
    t.type("trap.x")
    t.keys("Tab", "Tab")
    t.keys("C-u")
    assert.are.equal("false", line(t, "ran"))
    -- an API path: unique part inserted, then the GET templates listed
    m = t.mark()
    t.type('c:get("/contacts/{contactId}/no')
    t.keys("Tab")
    t.wait('^ghlua> c:get%("/contacts/{contactId}/notes$', m)
    t.keys("C-u")
    m = t.mark()
    t.type('c:get("/con')
    t.keys("Tab", "Tab")
    local get = ops.complete("/con", "GET")
    text = t.wait(plain(get[#get]), m + 1)
    local listed = {}
    for w in text:gmatch("%S+") do listed[w] = true end
    for _, p in ipairs(get) do assert.truthy(listed[p], p) end
    for _, p in ipairs(ops.complete("/con")) do
      local is_get = false
      for _, g in ipairs(get) do if g == p then is_get = true end end
      if not is_get then assert.is_nil(listed[p], p .. " is not a GET route") end
    end
    t.keys("C-u")
    -- scope names: after :scopes and inside a string
    m = t.mark()
    t.type(":scopes contacts.w")
    t.keys("Tab")
    t.wait("^ghlua> :scopes contacts%.write$", m)
    t.keys("C-u")
    m = t.mark()
    t.type('s = "locations/customValues.re')
    t.keys("Tab")
    t.wait('^ghlua> s = "locations/customValues%.readonly$', m)
    t.keys("C-u")
    m = t.mark()
    t.type(":wh")
    t.keys("Tab")
    t.wait("^ghlua> :whoami$", m)
  end)

  it("keeps statements in $GHLUA_HOME/history (0600), never one holding a secret", function()
    local path = o.home .. "/history"
    os.remove(path)
    local t = start()
    local first = t
    finally(function() first.stop(); t.stop() end)
    for _, s in ipairs {
      "x = 41 + 1",
      's = "' .. o.secret .. '"',                               -- the app's client secret
      'tok = "' .. token .. '"',                                -- the stored access token
      'pit = "pit-0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"',       -- PIT-shaped
      'jwt = "eyJhbGciOiJIUzI1NiJ9.e30.c2ln"',                  -- JWT-shaped
      'h = {Authorization = "Bearer abc"}',
      'name = "GHL_CLIENT_SECRET"',
      'r = "refresh_token"',
      [[y = "back\\slash"]],
    } do line(t, s) end
    local m = t.mark()
    t.line("for i = 1, 2 do")
    t.line("print(i)")
    t.line("end")
    t.wait("^2$", m)
    line(t, ":whoami")
    t.keys("C-d")
    assert.are.equal(0, t.exit_code())
    local f = assert(io.open(path, "rb"))
    local text = f:read("a")
    f:close()
    assert.are.equal('x = 41 + 1\n' .. [[y = "back\\\\slash"]] .. '\nfor i = 1, 2 do\\nprint(i)\\nend\n:whoami\n', text)
    assert.are.equal(tonumber("600", 8), sys.stat(path).mode)
    t.stop()

    -- the next session has them on the arrow keys
    t = start()
    m = t.mark()
    t.keys("Up")
    t.wait("^ghlua> :whoami$", m)
    t.keys("Up")
    t.wait("^ghlua> for i = 1, 2 do", m)
    t.keys("C-u")
    t.keys("C-d")
    assert.are.equal(0, t.exit_code())
  end)

  it("stops a slow request on Ctrl-C and keeps the session; Ctrl-C at the prompt drops the line; Ctrl-D exits",
    function()
    local resp = assert(http.request { method = "PUT", url = o.sim.url .. "/__sim/chaos",
      json = { rules = { { method = "GET", path = "/contacts/", delay_ms = 30000 } } } })
    assert.are.equal(200, resp.status)
    assert(http.request { method = "DELETE", url = o.sim.url .. "/__sim/requests" })
    local t = start()
    finally(t.stop)
    line(t, "kept = 7")
    local m = t.mark()
    t.line('slow = c:get("/contacts/", {locationId = c.location, limit = 2})')
    -- wait until the simulator holds the request back
    local deadline = sys.now() + 10
    local held
    while true do
      local log = assert(assert(http.request { url = o.sim.url .. "/__sim/requests" }):json())
      for _, e in ipairs(log.requests) do
        if e.path == "/contacts/" and e.chaos and e.delayMs then held = e end
      end
      if held then break end
      assert(sys.now() < deadline, "the request never reached the simulator")
      sys.sleep(0.02)
    end
    t.keys("C-c")
    t.wait("error: GET /contacts/: request interrupted", m, { plain = true })
    t.wait("^ghlua>", m + 1)
    -- the prompt came back before the simulator answered the held request
    assert.is_true(simlog.now_ms(o.sim.url) < simlog.answered(held), "the prompt waited for the answer")
    assert.are.equal("2", line(t, '#c:get("/contacts/", {locationId = c.location, limit = 2}).contacts'))
    assert.are.equal('"interrupted"', line(t, "_err.kind"))
    assert.are.equal("7", line(t, "kept"))
    -- at the prompt
    m = t.mark()
    t.type("this is not lua")
    t.keys("C-c")
    t.wait("^ghlua>", m + 1)
    assert.are.equal("42", line(t, "6 * 7"))
    -- in a continuation line: the whole statement goes
    m = t.mark()
    t.line("for i = 1, 2 do")
    t.wait("^>>", m + 1)
    t.keys("C-c")
    t.wait("^ghlua>", m + 2)
    assert.are.equal("3", line(t, "1 + 2"))
    assert.is_nil(t.screen():find("error: stdin", 1, true))
    t.keys("C-d")
    assert.are.equal(0, t.exit_code())
  end)

  it("closes an interrupted batch's transfers on Ctrl-C: none runs on, none completes with the next request",
    function()
    assert(http.request { method = "DELETE", url = o.sim.url .. "/__sim/requests" })
    local slow = o.sim.url .. "/__fault/slow"
    local function slow_log()
      local log = assert(assert(http.request { url = o.sim.url .. "/__sim/requests", query = { path = "/__fault/slow" } }):json())
      return log.requests
    end
    local t = start()
    finally(t.stop)
    line(t, 'http, loop = require "ghl.http", require "ghl.loop"')
    line(t, ("fns = {} for i = 1, 8 do fns[i] = function() return loop.request{url = %q, query = {ms = 1500, i = i}}.status end end")
      :format(slow))
    local m = t.mark()
    t.line("res = ghl.parallel(fns, {concurrency = 4})")
    -- wait until the first four are held by the simulator, then interrupt
    local deadline = sys.now() + 10
    while #slow_log() < 4 do
      assert(sys.now() < deadline, "the batch never reached the simulator")
      sys.sleep(0.02)
    end
    t.keys("C-c")
    t.wait("error: requests interrupted", m, { plain = true })
    t.wait("^ghlua>", m + 1)
    assert.are.equal("0", line(t, "http.pending()"))
    -- a request that outlasts what the batch had left: it drives nothing of it
    assert.are.equal("200", line(t, ("loop.request{url = %q, query = {ms = 2000}}.status"):format(slow)))
    assert.are.equal("0", line(t, "http.pending()"))
    assert.are.equal("0", line(t, "#http.perform(0)"))
    assert.are.equal("nil", line(t, "res"))
    -- the simulator saw the four that had started and the new one, no more
    local queries = {}
    for _, e in ipairs(slow_log()) do queries[#queries + 1] = e.query end
    table.sort(queries)
    assert.are.same({ "i=1&ms=1500", "i=2&ms=1500", "i=3&ms=1500", "i=4&ms=1500", "ms=2000" }, queries)
    t.keys("C-d")
    assert.are.equal(0, t.exit_code())
  end)

  it("answers :help, :whoami, :scopes, :explain, :curl, :use and :quit", function()
    assert(http.request { method = "DELETE", url = o.sim.url .. "/__sim/chaos" })
    local t = start()
    finally(t.stop)
    local help = line(t, ":help")
    for _, c in ipairs(repl.COMMANDS) do
      assert.truthy(help:find("\n  :" .. c[1], 1, true) or help:find("^  :" .. c[1]), c[1])
    end
    assert.matches("History: " .. plain(o.home) .. "/history", help)

    local who = line(t, ":whoami")
    assert.matches("^token     OAuth Location token · app app1 …" .. plain(token:sub(-4)) .. "\n", who)
    assert.matches("\nlocation  " .. loc .. "\n", who)
    assert.matches("\nscopes    contacts%.readonly contacts%.write locations%.readonly %(3%)\n", who)
    assert.matches("\nexpires   " .. plain(expiry) .. " %(in 23 h %d+ min%)\n", who)

    assert.are.equal("granted (3):\n  contacts.readonly\n  contacts.write\n  locations.readonly\n"
      .. "used: none yet (each request's scopes come from the operations table)", line(t, ":scopes"))

    assert.are.equal("error: no request has been made in this session yet", line(t, ":explain"))
    line(t, 'r = c:get("/contacts/", {locationId = c.location, limit = 3})')
    local ex = line(t, ":explain")
    local url = o.sim.url .. "/contacts/?limit=3&locationId=" .. loc
    assert.matches("^GET " .. plain(url) .. "\n"
      .. "  Version   2021%-07%-28\n"
      .. "  token     OAuth Location token of app app1 for location " .. loc .. " …" .. plain(token:sub(-4)) .. "\n"
      .. "  status    200 in %d+ ms\n"
      .. "  rate      %d+ of 100 left in the 10 s window; %d+ of 200000 left today\n"
      .. "  operation GET /contacts/ %(Get Contacts%)\n"
      .. "  scopes    contacts%.readonly$", ex)

    local curl = line(t, ":curl")
    assert.are.equal("curl -sS \\\n  '" .. url .. "' \\\n  -H 'Authorization: Bearer …" .. token:sub(-4) .. "' \\\n"
      .. "  -H 'Version: 2021-07-28' \\\n  -H 'Accept: application/json'", curl)

    line(t, 'made = c:post("/contacts/", {locationId = c.location, firstName = "Curl", email = "curl@example.com"})')
    curl = line(t, ":curl")
    assert.matches("^curl %-sS %-X POST \\\n  '" .. plain(o.sim.url) .. "/contacts/' \\\n", curl)
    assert.matches("\n  %-H 'Content%-Type: application/json' \\\n  %-%-data '{.*\"firstName\":\"Curl\".*}'$", curl)

    line(t, 'c:get("/opportunities/pipelines", {locationId = c.location})')
    local sc = line(t, ":scopes")
    assert.matches("\nused by this session's requests:\n", sc)
    assert.matches("\n  ✓ contacts%.readonly +GET /contacts/\n", sc)
    assert.matches("\n  ✓ contacts%.write +POST /contacts/\n", sc)
    assert.matches("\n  ✗ opportunities%.readonly +GET /opportunities/pipelines$", sc)
    assert.matches("^  contacts%.write", line(t, ":scopes contacts.write"))
    assert.are.equal("no scope matches 'nosuchscope'", line(t, ":scopes nosuchscope"))

    -- the screen never showed the whole token
    assert.is_nil(t.screen():find(token, 1, true))

    assert.are.equal("* " .. loc, line(t, ":use"))
    local other = "zzzzOtherLocation0001"
    assert.are.equal("error: no stored token for location " .. other .. "\nhint: log in with 'ghlua auth login', "
      .. "store a PIT with 'ghlua auth pit add', or pass token=", line(t, ":use " .. other))
    assert.matches("^app app1 · location " .. loc .. " · OAuth Location token", line(t, ":use " .. loc))
    assert.are.equal("error: unknown command :frobnicate\nhint: :help lists the commands", line(t, ":frobnicate"))
    t.line(":quit")
    assert.are.equal(0, t.exit_code())
  end)

  it(":save writes the session's successful statements as recipes that `ghlua run` accepts", function()
    local t = start()
    finally(t.stop)
    for _, f in ipairs { "read.lua", "write.lua" } do os.remove(work .. "/" .. f) end
    line(t, 'n = #c:get("/contacts/", {locationId = c.location, limit = 5}).contacts')
    assert.matches("^error: GET /no/such/route", line(t, 'c:get("/no/such/route")'))
    line(t, 's = "' .. o.secret .. '"')
    assert.are.equal("10", line(t, "n * 2"))
    line(t, "n")
    assert.are.equal("saved 2 statements to read.lua (scopes: contacts.readonly; writes: false); "
      .. "1 holding secrets left out\nrun it with: ghlua run read.lua", line(t, ":save read.lua"))
    line(t, 'made = c:post("/contacts/", {locationId = c.location, firstName = "Saved", email = "saved@example.com"})')
    assert.matches("^saved 3 statements to write%.lua %(scopes: contacts%.readonly contacts%.write; writes: true%)",
      line(t, ":save write.lua"))
    assert.are.equal("error: read.lua exists\nhint: use :save! read.lua to overwrite it", line(t, ":save read.lua"))

    local f = assert(io.open(work .. "/read.lua", "rb"))
    local text = f:read("a")
    f:close()
    assert.matches('\nrecipe{\n  name = "read",\n  description = "TODO: what this recipe does",\n'
      .. '  scopes = { "contacts%.readonly" },\n  writes = false,\n  params = {},\n}\n', text)
    assert.matches('\n  n = #c:get%("/contacts/", {locationId = c%.location, limit = 5}%)%.contacts\n  _ = n %* 2\n  return _\nend\n$', text)
    assert.is_nil(text:find(o.secret, 1, true))
    assert.is_nil(text:find("no/such/route", 1, true))

    local env = {}
    for k, v in pairs(o.env) do env[k] = v end
    local r = run.ghlua({ "run", work .. "/read.lua" }, { env = env })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal("10\n", r.out)

    r = run.ghlua({ "run", work .. "/write.lua", "--help" }, { env = env })
    assert.are.equal(0, r.code, r.err)
    assert.matches("contacts%.readonly", r.out)
    assert.matches("contacts%.write", r.out)
    r = run.ghlua({ "run", work .. "/write.lua", "--dry-run" }, { env = env })
    assert.are.equal(0, r.code, r.err)
    assert.matches("dry run: 1 write planned, nothing was sent", r.out, 1, true)
    assert.matches("POST +/contacts/", r.out)
  end)

  it(":sim starts a simulator in the background and points the session at it", function()
    local t = start()
    finally(t.stop)
    local m = t.mark()
    t.line(":sim")
    local text = t.wait("^`client` %(also `c`%) now talks to it", m, { timeout = 30 })
    local url, pid = text:match("\nsimulator running at (http://127%.0%.0%.1:%d+) %(pid (%d+),")
    assert.truthy(url, text)
    pid = tonumber(pid)
    assert.are_not.equal(o.sim.url, url)
    assert.truthy(sys.alive(pid))
    assert.matches("^token     static token …%w+ %(the simulator's%)\nlocation  %w+\nbase      " .. plain(url),
      line(t, ":whoami"))
    assert.are.equal("25", line(t, '#c:get("/contacts/", {locationId = c.location, limit = 100}).contacts'))
    assert.matches("^GET " .. plain(url) .. "/contacts/", line(t, ":explain"))
    -- Ctrl-C at this terminal does not reach the simulator
    m = t.mark()
    t.keys("C-c")
    t.wait("^ghlua>", m + 1)
    assert.are.equal("25", line(t, '#c:get("/contacts/", {locationId = c.location, limit = 100}).contacts'))
    assert.matches("^simulator stopped\napp app1 · location " .. loc, line(t, ":sim stop"))
    assert.is_false(sys.alive(pid))
    assert.are.equal('"' .. o.sim.url .. '"', line(t, "c.base"))
    -- leaving the REPL stops a simulator still running
    m = t.mark()
    t.line(":sim")
    text = t.wait("^`client` %(also `c`%) now talks to it", m, { timeout = 30 })
    pid = tonumber(text:match("%(pid (%d+),"))
    t.keys("C-d")
    assert.are.equal(0, t.exit_code())
    assert.is_false(sys.alive(pid))
  end)

  it(":sim runs the simulator in a session of its own; one that cannot start says why and leaves nothing", function()
    local t = start()
    finally(t.stop)
    local m = t.mark()
    t.line(":sim --contacts 3")
    local text = t.wait("^`client` %(also `c`%) now talks to it", m, { timeout = 30 })
    local pid, log = text:match("%(pid (%d+), log (%S+)%)")
    pid = tonumber(pid)
    local stat = assert(io.open("/proc/" .. pid .. "/stat")):read("a")
    assert.are.equal(pid, tonumber(stat:match("^%d+ %b() %a %d+ %d+ (%d+)")))   -- its session
    assert.truthy(sys.stat(log))
    assert.are.equal("3", line(t, '#c:get("/contacts/", {locationId = c.location, limit = 100}).contacts'))
    assert.matches("^a simulator is already running at http://127%.0%.0%.1:%d+ %(:sim stop ends it%)$", line(t, ":sim"))
    assert.are.equal("simulator stopped", line(t, ":sim stop"):match("^[^\n]*"))
    assert.is_false(sys.alive(pid))
    assert.is_nil(sys.stat(log))
    assert.are.equal("no simulator is running", line(t, ":sim stop"))
    text = line(t, ":sim --no-such-flag")
    assert.matches("^error: the simulator did not start: ghlua: unknown option '%-%-no%-such%-flag'", text)
    assert.matches("\nhint: try it in a shell: %S+ghlua sim %-%-port 0 %-%-ready%-file %S+ %-%-quiet %-%-no%-such%-flag$",
      text)
    assert.are.equal("no simulator is running", line(t, ":sim stop"))
  end)

  it("with several locations stored asks for :use, which the next session remembers; GHL_LOCATION_ID wins",
    function()
    local second = "zzSecondLocation00001"
    local pit = "pit-7f3e2a10-0b1c-4d2e-9f00-112233445566"
    local r = o.ghlua({ "auth", "pit", "add", "second", "--location", second, "--offline" },
      { env = { GHL_PIT = pit } })
    assert.are.equal(0, r.code, r.err)
    local started = {}
    finally(function()
      for _, x in ipairs(started) do x.stop() end
      o.ghlua { "auth", "pit", "remove", "second" }
    end)
    r = o.lua('assert(require("ghl.auth").store():kv_delete("repl", "location"))')
    assert.are.equal(0, r.code, r.err)
    local t = start()
    started[#started + 1] = t
    assert.matches("\n2 locations are stored %(" .. loc .. ", " .. second .. "%): choose one with :use LOCATION\n",
      t.screen())
    assert.are.equal("nil", line(t, "client"))
    local m = t.mark()
    t.type(":use zz")
    t.keys("Tab")
    t.wait("^ghlua> :use " .. second .. "$", m)
    t.keys("C-u")
    assert.are.equal("location " .. second .. " · Private Integration Token 'second'", line(t, ":use " .. second))
    assert.matches("^token     Private Integration Token 'second' …5566\nlocation  " .. second .. "\n", line(t, ":whoami"))
    assert.is_nil(t.screen():find(pit, 1, true))
    t.keys("C-d")
    assert.are.equal(0, t.exit_code())

    t = start()
    started[#started + 1] = t
    assert.matches("\nlocation " .. second .. " · Private Integration Token 'second'\n", t.screen())
    assert.are.equal('"' .. second .. '"', line(t, "c.location"))

    t = start { env = { GHL_LOCATION_ID = loc } }
    started[#started + 1] = t
    assert.matches("\napp app1 · location " .. loc .. " · OAuth Location token", t.screen())
  end)
end)

describe("the REPL's :use with an agency token", function()
  local agency = require "support.agency"
  local a, work

  lazy_setup(function()
    a = agency.start(4, "contacts.readonly")
    work = os.tmpname()
    os.remove(work)
    assert(sys.mkdir(work, tonumber("700", 8)))
  end)

  lazy_teardown(function()
    if a then a.stop() end
    if work then os.execute("rm -rf " .. run.quote(work)) end
  end)

  local function line(t, s)
    local m = t.mark()
    t.line(s)
    t.wait("^ghlua>", m + 1)
    return t.screen(m):match("^[^\n]*\n(.*)\nghlua>[^\n]*$") or ""
  end

  it("lists the stored and the installed locations with their names, the current one starred", function()
    local minted = a.locations[3]
    local r = a.ghlua { "auth", "token", "--location", minted.id }
    assert.are.equal(0, r.code, r.err)
    -- what HighLevel says is installed, and what the store holds
    local want = { [minted.id] = true }
    local j = a.ghlua { "auth", "locations", "--json" }
    assert.are.equal(0, j.code, j.err)
    for _, l in ipairs(cjson.decode(j.out)) do if l.isInstalled then want[l._id] = true end end
    local name_of = {}
    for _, l in ipairs(a.locations) do name_of[l.id] = l.name end
    -- forget the names `auth locations` remembered: :use reads them itself
    r = a.lua(("assert(require('ghl.auth').store():kv_delete('names', %q))"):format(a.sim.company))
    assert.are.equal(0, r.code, r.err)

    local t = tmux.start({ os.getenv("GHLUA") }, { env = a.env, cwd = work })
    finally(t.stop)
    t.wait("^ghlua>", 1)
    line(t, ":use " .. minted.id)
    local text = line(t, ":use")
    local seen, n, names = {}, 0, {}
    for l in (text .. "\n"):gmatch("([^\n]*)\n") do
      local mark, id, name = l:match("^([* ]) (%w+)  +(.+)$")
      assert.is_truthy(id, l)
      assert.are.equal(name_of[id], name)
      assert.are.equal(id == minted.id and "*" or " ", mark)
      seen[id] = true
      n = n + 1
      names[n] = name:lower()
    end
    assert.are.same(want, seen)
    for i = 2, n do assert.is_true(names[i - 1] <= names[i], "sorted by name") end
    t.keys("C-d")
    assert.are.equal(0, t.exit_code())
  end)
end)
