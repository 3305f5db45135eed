-- Hostile and odd replies as a user meets them: HighLevel error bodies of
-- any JSON shape (ghl.hints.message_of is total), and replies whose bytes
-- would drive a terminal (escape sequences, other control bytes, invalid
-- UTF-8), which every message shows escaped: the top-level error printer,
-- the REPL's, `ghlua api --include`. The server is support.canned, a
-- ghl.server in its own process answering each path as the spec says.
local canned = require "support.canned"
local run = require "support.run"
local hints = require "ghl.hints"
local E = require "ghl.error"
local cjson = require "cjson"

-- No byte a terminal acts on: C0 controls but tab and newline, DEL, and no
-- invalid UTF-8 (utf8.len fails on it).
local function printable(s)
  return s:find("[%z\1-\8\11-\31\127]") == nil and utf8.len(s) ~= nil
end

describe("ghl.hints.message_of", function()
  it("gives a string or nil for any JSON body, never raising", function()
    local cases = {
      { '{"message":"Invalid JWT"}', "Invalid JWT" },
      { '{"message":["a is required","b must be a string"]}', "a is required, b must be a string" },
      { '{"message":[{"message":"inner"},"plain",{"property":"email"},3,null,true,[1,"x"]]}',
        'inner, plain, {"property":"email"}, 3, true, 1, x' },
      { '{"message":{"message":{"message":"nested"}}}', "nested" },
      { '{"message":42}', "42" },
      { '{"message":1e400}', nil, "inf" },
      { '{"message":null,"error":"Bad Request"}', "Bad Request" },
      { '{"message":"","error":{"message":"from error"}}', "from error" },
      { '{"message":[],"error":[{"code":1}]}', '{"code":1}' },
      { '{"statusCode":400}', nil },
      { '{}', nil }, { '[]', nil }, { 'null', nil }, { '42', nil }, { 'true', nil },
      { '"a bare string"', "a bare string" },
      { '{"message":' .. ("["):rep(500) .. '"deep"' .. ("]"):rep(500) .. "}", nil, "^%[+…$" },
      { '{"message":[' .. ('{"k":"' .. ("x"):rep(300) .. '"}') .. "]}", nil, "^{\"k\":\"x+…$" },
    }
    for _, case in ipairs(cases) do
      local body = cjson.decode(case[1])
      local ok, m = pcall(hints.message_of, body)
      assert.is_true(ok, case[1]:sub(1, 60) .. ": " .. tostring(m))
      assert.is_true(m == nil or type(m) == "string", case[1]:sub(1, 60))
      if case[3] then
        assert.matches(case[3], m, nil, nil, case[1]:sub(1, 60))
      else
        assert.are.equal(case[2], m, case[1]:sub(1, 60))
      end
    end
    local loop = {}
    loop.message, loop[1] = loop, loop
    assert.is_nil(hints.message_of(loop))
    assert.is_nil(hints.message_of { message = { loop } })
  end)
end)

describe("ghl.error.sanitize", function()
  it("shows control bytes, invalid UTF-8, C1 controls and bidi overrides escaped, and keeps text", function()
    assert.are.equal("a\\x1b[2Jb\\x07\\x00\\x7f\\x0d", E.sanitize("a\27[2Jb\7\0\127\r"))
    assert.are.equal("tab\tkept \\x0a", E.sanitize("tab\tkept \n"))
    assert.are.equal("two\nlines", E.sanitize("two\nlines", true))
    assert.are.equal("\\xff\\xc3 \\xed\\xa0\\x80 \\xc0\\xaf", E.sanitize("\255\195 \237\160\128 \192\175"))
    assert.are.equal("\\u{9b}2J \\u{202e}txt", E.sanitize("\194\1552J \u{202E}txt"))
    assert.are.equal("héllo — 日本 🙂", E.sanitize("héllo — 日本 🙂"))
    local err = E.new { message = "m\27" }
    assert.are.equal("m\\x1b", E.sanitize(err))
  end)
end)

describe("replies that would drive a terminal", function()
  local srv, R
  local ESC = "\27[2J\27]0;owned\7\194\155\155\255"   -- ..., U+009B (CSI), a lone 0x9b, 0xff

  setup(function()
    R = {
      ["/table-in-array"] = { status = 400, headers = { ["Content-Type"] = "application/json" },
        body = '{"statusCode":400,"message":["email must be an email",{"property":"phone","message":"too short"},'
          .. '{"constraints":{"x":1}}]}' },
      ["/json-escape"] = { status = 400, headers = { ["Content-Type"] = "application/json" },
        body = cjson.encode { statusCode = 400, message = "bad " .. ESC .. " value" } },
      ["/html-escape"] = { status = 502, headers = { ["Content-Type"] = "text/html" },
        body = "<html><body>" .. ESC .. "</body></html>" },
      ["/binary"] = { status = 400, headers = { ["Content-Type"] = "application/octet-stream" },
        body_hex = "1b5b324a9bff00079b" },
      ["/ok-header"] = { status = 403, headers = { ["Content-Type"] = "application/json", ["X-Note"] = "a\27[31mred" },
        body = cjson.encode { message = { "x\27[31m", { message = "y\155" } } } },
    }
    srv = canned.start(R)
  end)
  teardown(function() srv.stop() end)

  local function api(path, extra)
    local argv = { "api", "GET", path }
    for _, a in ipairs(extra or {}) do argv[#argv + 1] = a end
    return run.ghlua(argv, { env = { GHL_TOKEN = "pit-test-token-1234", GHLUA_API_BASE = srv.url,
                                     no_proxy = "127.0.0.1", NO_PROXY = "127.0.0.1" } })
  end

  it("prints a 400 whose message array holds tables as one line, exit 1", function()
    local r = api("/table-in-array")
    assert.are.equal(1, r.code, r.err)
    assert.are.equal('ghlua: GET /table-in-array: email must be an email, too short, {"constraints":{"x":1}} (HTTP 400)\n',
      r.err)
  end)

  it("shows escape sequences, control bytes and invalid UTF-8 from a reply escaped, on one line", function()
    for _, path in ipairs { "/json-escape", "/html-escape", "/binary", "/ok-header" } do
      local r = api(path)
      assert.are.equal(1, r.code, path .. ": " .. r.err)
      assert.is_true(printable(r.err), path .. ": " .. r.err)
      assert.matches("^ghlua: GET " .. path:gsub("%p", "%%%0") .. ": [^\n]*\n$", r.err)
      assert.is_nil(r.err:find("traceback", 1, true))
    end
    assert.matches("bad \\x1b%[2J\\x1b%]0;owned\\x07\\u{9b}\\x9b\\xff value", api("/json-escape").err)
    assert.matches("x\\x1b%[31m, y\\x9b", api("/ok-header").err)
  end)

  it("shows the headers and body of a failed reply escaped with --include", function()
    local r = api("/ok-header", { "--include" })
    assert.are.equal(1, r.code)
    assert.is_true(printable(r.out .. r.err), r.out)
    assert.matches("x%-note: a\\x1b%[31mred", r.out)
  end)

  it("shows them escaped in the REPL too", function()
    local code = ("c = ghl.client{token = 'pit-test-token-1234', base = %q}\nc:get('/json-escape')\nc:get('/binary')\n")
      :format(srv.url)
    local r = run.ghlua({ "-i" }, { stdin = code, env = { no_proxy = "127.0.0.1", NO_PROXY = "127.0.0.1" } })
    assert.is_true(printable(r.out .. r.err), r.err)
    assert.matches("error: GET /json%-escape: bad \\x1b%[2J", r.err)
    assert.matches("error: GET /binary: HTTP 400", r.err)
  end)
end)
