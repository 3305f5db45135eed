-- ghl.http against the simulator over real loopback HTTP: responses, JSON,
-- encoding, connection reuse, and every kind of bad reply a server can give.
local http = require "ghl.http"
local cjson = require "cjson"
local sim = require "support.sim"
local run = require "support.run"
local simlog = require "support.simlog"

describe("ghl.http", function()
  local s
  setup(function() s = sim.start { "--faults" } end)
  teardown(function() s.stop() end)

  local function echo(req)
    req.url = s.url .. "/__fault/echo"
    local resp = assert(http.request(req))
    assert.are.equal(200, resp.status)
    return assert(resp:json())
  end

  it("returns status, lower-case headers, body and json()", function()
    local resp = assert(http.request { url = s.url .. "/contacts/nope",
      headers = { Authorization = "Bearer " .. s.token, Version = "2021-07-28" } })
    assert.is_true(resp.status == 400 or resp.status == 404)
    assert.matches("application/json", resp.headers["content-type"])
    assert.is_string(resp.headers["x-ratelimit-remaining"])
    local body = assert(resp:json())
    assert.are.equal(resp.status, body.statusCode)
    assert.is_number(resp.time)
  end)

  it("reads one header, any case, and the rate-limit headers as numbers", function()
    local resp = assert(http.request { url = s.url .. "/contacts/nope",
      headers = { Authorization = "Bearer " .. s.token, Version = "2021-07-28" } })
    assert.matches("application/json", resp:header("Content-Type"))
    assert.is_nil(resp:header("x-no-such-header"))
    local max, remaining, interval, daily_remaining, daily_limit = resp:ratelimit()
    assert.is_number(max)
    assert.is_number(remaining)
    assert.is_true(remaining < max)
    assert.is_number(interval)
    assert.is_number(daily_remaining)
    assert.is_number(daily_limit)
    -- the same values as the header table, built on first read and kept
    assert.are.equal(tonumber(resp.headers["x-ratelimit-max"]), max)
    assert.are.equal(tonumber(resp.headers["x-ratelimit-remaining"]), remaining)
    assert.are.equal(tonumber(resp.headers["x-ratelimit-interval-milliseconds"]), interval)
    assert.are.equal(rawget(resp, "headers"), resp.headers)
    -- a changed header table is what header() and ratelimit() read then
    resp.headers["x-ratelimit-max"] = "7"
    assert.are.equal(7, (resp:ratelimit()))
    assert.are.equal("7", resp:header("X-RateLimit-Max"))
    -- a response without rate-limit headers gives nils
    local plain = echo { method = "GET" }
    assert.is_table(plain)
    local r = assert(http.request { url = s.url .. "/__fault/echo" })
    assert.is_nil((r:ratelimit()))
    assert.are.equal(r:header("content-type"), r.headers["content-type"])
  end)

  it("reads odd, repeated and near-miss X-RateLimit-* headers as tonumber reads resp:header()", function()
    local NAMES = { "X-RateLimit-Max", "X-RateLimit-Remaining", "X-RateLimit-Interval-Milliseconds",
                    "X-RateLimit-Daily-Remaining", "X-RateLimit-Limit-Daily" }
    -- the answer's headers, and the five values as tostring shows them
    -- (so 1000.0 and 1000 differ), "nil" for none
    local cases = {
      { { ["X-RateLimit-Max"] = "1e3", ["x-ratelimit-remaining"] = "0x10",
          ["X-RATELIMIT-INTERVAL-MILLISECONDS"] = "12.5", ["X-RateLimit-Daily-Remaining"] = "-3",
          ["X-RateLimit-Limit-Daily"] = "99999999999999999999" },
        { "1000.0", "16", "12.5", "-3", "1e+20" } },
      { { ["X-RateLimit-Max"] = "1e", ["X-RateLimit-Remaining"] = "abc", ["X-RateLimit-Maxx"] = "9",
          ["X-RateLimit-Interval-Milliseconds"] = "007", ["X-RateLimit-Daily-Remaining"] = "42.",
          ["X-RateLimit-Limit-Daily"] = "1 2" },
        { "nil", "nil", "7", "42.0", "nil" } },
      -- one name twice (two spellings): joined with ", ", so not a number
      { { ["X-RateLimit-Max"] = "5", ["x-ratelimit-max"] = "5", ["X-RateLimit-Remaining"] = "4",
          ["X-RateLimit-Limit-Daily"] = "123456789012345678" },
        { "nil", "4", "nil", "nil", "123456789012345678" } },
      -- names that only look like them
      { { ["X-RateLimit-Maxx"] = "9", ["X-RateLimit-Remainin"] = "1", ["X-RateLimit-Daily"] = "3" },
        { "nil", "nil", "nil", "nil", "nil" } },
    }
    local function strings(...)
      local out = {}
      for i = 1, 5 do out[i] = tostring((select(i, ...))) end
      return out
    end
    for ci, case in ipairs(cases) do
      assert(http.request { method = "PUT", url = s.url .. "/__sim/chaos", json = { rules = {
        { method = "GET", path = "/__fault/echo", status = 200, body = "{}", headers = case[1] } } } })
      local r = assert(http.request { url = s.url .. "/__fault/echo" })
      assert.are.equal(200, r.status, ci .. ": " .. r.body)
      local via_header = {}
      for i, name in ipairs(NAMES) do
        local v = r:header(name)
        via_header[i] = tostring(v and tonumber(v))
      end
      assert.are.same(case[2], strings(r:ratelimit()))
      assert.are.same(via_header, strings(r:ratelimit()))
      assert.is_nil(rawget(r, "headers"))
      -- the same once the header table is built (then read from it)
      assert.is_table(r.headers)
      assert.are.same(case[2], strings(r:ratelimit()))
    end
  end)

  it("asks for every content encoding libcurl decodes, as libcurl's own list does", function()
    local ours = echo { method = "GET" }.headers["accept-encoding"]
    -- the curl tool's --compressed asks libcurl for its own list
    local r = run.sh(string.format("curl -sS --max-time 10 --compressed %s/__fault/echo", s.url),
      { env = { no_proxy = "127.0.0.1" } })
    assert.are.equal(0, r.code, r.err)
    assert.are.equal(cjson.decode(r.out).headers["accept-encoding"], ours)
    assert.matches("gzip", ours)
  end)

  it("gives the same value from header() before and after the table is built", function()
    local r = assert(http.request { url = s.url .. "/contacts/nope",
      headers = { Authorization = "Bearer " .. s.token, Version = "2021-07-28" } })
    local before = {}
    for _, k in ipairs { "content-type", "x-ratelimit-remaining", "x-ratelimit-max", "date" } do
      before[k] = r:header(k:upper())
    end
    assert.is_nil(rawget(r, "headers"))
    local n = 0
    for k, v in pairs(r.headers) do
      n = n + 1
      assert.are.equal(v, r:header(k:upper()))
      if before[k] then assert.are.equal(before[k], v) end
    end
    assert.is_true(n >= 5)
  end)

  it("does not queue a request behind a slow one on the same host", function()
    simlog.clear(s)
    local slow = assert(http.start { url = s.url .. "/__fault/slow", query = { ms = 2000 } })
    assert.are.equal(200, assert(http.request { url = s.url .. "/__fault/echo" }).status)
    -- on the simulator's clock: the echo arrived before the slow one was answered
    local log = simlog.requests(s)
    assert.are.same({ "/__fault/slow", "/__fault/echo" }, { log[1].path, log[2].path })
    assert.is_true(log[2].at < simlog.answered(log[1]), "the echo waited for the slow request")
    while not slow:done() do http.perform(1) end
    assert.are.equal(200, assert(slow:response()).status)
  end)

  it("counts transfers in flight; close stops one, which then has no response", function()
    assert.are.equal(0, http.pending())
    local a = assert(http.start { url = s.url .. "/__fault/slow", query = { ms = 5000 } })
    local b = assert(http.start { url = s.url .. "/__fault/echo" })
    assert.are.equal(2, http.pending())
    a:close()
    assert.are.equal(1, http.pending())
    assert.is_true(a:done())
    assert.has_error(function() a:response() end, "response already taken, or the transfer was closed")
    while not b:done() do http.perform(1) end
    assert.are.equal(0, http.pending())
    assert.are.equal(200, assert(b:response()).status)
    assert.are.same({}, http.perform(0))   -- a closed transfer is never handed out
  end)

  it("treats 4xx and 5xx as normal responses", function()
    local resp = assert(http.request { url = s.url .. "/__fault/status", query = { code = 503 } })
    assert.are.equal(503, resp.status)
    assert.are.equal(503, resp:json().statusCode)
  end)

  it("encodes query values of any UTF-8 text, arrays as repeated keys", function()
    local got = echo { query = { q = "Zoë & Ünal +1 (555) 0100 / ü?=#", n = 7, flag = true, tag = { "a b", "c" } } }
    assert.are.equal("Zoë & Ünal +1 (555) 0100 / ü?=#", got.query.q)
    assert.are.equal("7", got.query.n)
    assert.are.equal("true", got.query.flag)
  end)

  it("sends JSON, form and raw bodies with their content types", function()
    local got = echo { method = "POST", json = { name = "Zoë", list = { 1, 2 } } }
    assert.are.equal("POST", got.method)
    assert.matches("^application/json", got.headers["content-type"])
    assert.are.same({ name = "Zoë", list = { 1, 2 } }, cjson.decode(got.body))

    got = echo { method = "PUT", form = { code = "a&b=c", user_type = "Location" } }
    assert.are.equal("PUT", got.method)
    assert.are.equal("application/x-www-form-urlencoded", got.headers["content-type"])
    assert.are.equal("code=a%26b%3Dc&user_type=Location", got.body)

    got = echo { method = "PATCH", body = "raw\0bytes", headers = { ["Content-Type"] = "text/plain" } }
    assert.are.equal("raw\0bytes", got.body)
    assert.are.equal("text/plain", got.headers["content-type"])

    got = echo { method = "DELETE" }
    assert.are.equal("DELETE", got.method)
    assert.are.equal("", got.body)
  end)

  it("refuses a query or form value that is not UTF-8, with the fix", function()
    local resp, err = http.request { url = s.url .. "/__fault/echo", query = { name = "Jos\xe9" } }
    assert.is_nil(resp)
    assert.are.equal("encode", err.kind)
    assert.matches("query parameter 'name' is not valid UTF%-8 %(byte 0xE9 at offset 3%); convert", tostring(err))
    resp, err = http.request { url = s.url .. "/__fault/echo", form = { ok = "x", bad = "\xff" } }
    assert.is_nil(resp)
    assert.matches("form parameter 'bad'", err.message)
  end)

  it("raises on programmer mistakes", function()
    assert.has_error(function() http.request {} end)
    assert.has_error(function() http.request { url = "ftp://x" } end)
    assert.has_error(function() http.request { url = s.url, headers = { ["X-A"] = "a\r\nInjected: 1" } } end)
  end)

  it("reports an HTML page where JSON was expected as a decode error", function()
    local resp = assert(http.request { url = s.url .. "/__fault/html500" })
    assert.are.equal(502, resp.status)
    local v, err = resp:json()
    assert.is_nil(v)
    assert.are.equal("decode", err.kind)
    assert.matches("got an HTML page, not JSON %(HTTP 502%)", err.message)
  end)

  it("reports truncated JSON as a decode error", function()
    local resp = assert(http.request { url = s.url .. "/__fault/truncated-json" })
    local v, err = resp:json()
    assert.is_nil(v)
    assert.are.equal("decode", err.kind)
    assert.matches("reply is not valid JSON %(HTTP 200, %d+ bytes%): Expected .- at character %d+$", err.message)
  end)

  it("reports a transfer cut short, an empty reply and a reset as network errors", function()
    for _, path in ipairs { "/__fault/partial", "/__fault/empty", "/__fault/reset" } do
      local resp, err = http.request { url = s.url .. path }
      assert.is_nil(resp, path)
      assert.are.equal("network", err.kind, path)
      -- named once: the request by its path, the server by its origin
      assert.are.equal("GET " .. path, err.where, path)
      assert.are.equal(s.url, err.origin, path)
      assert.matches("^GET " .. path:gsub("%p", "%%%0") .. ": [^/]*" .. s.url:gsub("%p", "%%%0") .. "[^/]*$", tostring(err))
    end
  end)

  it("times out a slow server without hanging", function()
    simlog.clear(s)
    local resp, err = http.request { url = s.url .. "/__fault/slow", query = { ms = 3000 }, timeout = 0.3 }
    -- it gave up before the simulator answered: its clock has not reached the answer yet
    local slow = simlog.requests(s, { path = "/__fault/slow" })[1]
    assert.is_true(simlog.now_ms(s) < simlog.answered(slow), "the request waited for the slow answer")
    assert.is_nil(resp)
    assert.are.equal("timeout", err.kind)
  end)

  it("reports a refused connection", function()
    local resp, err = http.request { url = "http://127.0.0.1:9/", timeout = 2 }
    assert.is_nil(resp)
    assert.are.equal("connect", err.kind)
  end)

  it("reads a 10 MB body intact", function()
    local resp = assert(http.request { url = s.url .. "/__fault/big", query = { bytes = 10 * 1024 * 1024 } })
    assert.are.equal(200, resp.status)
    assert.are.equal(10 * 1024 * 1024, #resp.body)
    assert.are.equal(10 * 1024 * 1024 - 12, #assert(resp:json()).data)
  end)

  it("sends each request its own headers, in flight together or one after another", function()
    local A = { Authorization = "Bearer token-A", Version = "2021-07-28" }
    local B = { Authorization = "Bearer token-B", Version = "2021-07-28", ["X-Extra"] = "b" }
    local sets = { A, B, A, {}, B, A }
    -- concurrently: requests sharing a header set and requests with another
    local ts = {}
    for i, h in ipairs(sets) do
      ts[i] = assert(http.start { url = s.url .. "/__fault/echo", query = { i = i }, headers = h })
    end
    local done = 0
    while done < #sets do done = done + #assert(http.perform(1)) end
    -- then one after another, with a header changed in place between two
    local seq = { A, A, B }
    local C = { Authorization = "Bearer token-A", Version = "2021-07-28" }
    local got = {}
    for i, t in ipairs(ts) do got[i] = assert(assert(t:response()):json()) end
    for i, h in ipairs(seq) do got[#sets + i] = echo { headers = h } end
    got[#got + 1] = echo { headers = C }
    C.Version = "2021-04-15"
    got[#got + 1] = echo { headers = C }
    got[#got + 1] = echo {}
    local want = { A, B, A, {}, B, A, A, A, B,
      { Authorization = "Bearer token-A", Version = "2021-07-28" }, C, {} }
    assert.are.equal(#want, #got)
    for i, h in ipairs(want) do
      assert.are.equal(h.Authorization, got[i].headers.authorization, "request " .. i)
      assert.are.equal(h.Version, got[i].headers.version, "request " .. i)
      assert.are.equal(h["X-Extra"], got[i].headers["x-extra"], "request " .. i)
      assert.is_nil(got[i].headers.expect, "request " .. i)
      assert.matches("^ghlua/%d+%.%d+", got[i].headers["user-agent"], "request " .. i)
    end
  end)

  it("names itself in User-Agent unless the request does, and never waits for 100-continue", function()
    local got = echo {}
    assert.matches("^ghlua/%d+%.%d+%.%d+$", got.headers["user-agent"])
    for _, name in ipairs { "User-Agent", "user-agent" } do
      got = echo { headers = { [name] = "custom-agent/1" } }
      assert.are.equal("custom-agent/1", got.headers["user-agent"])
    end
    -- a body libcurl would announce with "Expect: 100-continue" (over 1 MB)
    local big = ("x"):rep(1024 * 1024 + 1)
    for _, method in ipairs { "POST", "PUT" } do
      got = echo { method = method, body = big, headers = { ["Content-Type"] = "text/plain" } }
      assert.is_nil(got.headers.expect, method)
      assert.are.equal(#big, #got.body, method)
      assert.matches("^ghlua/", got.headers["user-agent"], method)
    end
  end)

  it("runs transfers concurrently through start and perform", function()
    simlog.clear(s)
    local ts = {}
    for i = 1, 8 do ts[i] = http.start { url = s.url .. "/__fault/slow", query = { ms = 1000, i = i } } end
    local done = 0
    while done < 8 do
      local finished = assert(http.perform(1))
      done = done + #finished
    end
    for i = 1, 8 do
      local resp = assert(ts[i]:response())
      assert.are.equal(200, resp.status)
    end
    -- on the simulator's clock: all 8 arrived before the first was answered
    local log = simlog.requests(s, { path = "/__fault/slow" })
    assert.are.equal(8, #log)
    assert.are.equal(8, simlog.peak(log), "8 × 1000 ms ran one after another")
  end)

  it("reuses one connection for sequential requests", function()
    local r = run.ghlua { "-e", ([[
      local http = require 'ghl.http'
      for i = 1, 5 do io.write(assert(http.request { url = %q }).connects, " ") end
    ]]):format(s.url .. "/__fault/echo") }
    assert.are.same({ 0, "1 0 0 0 0 " }, { r.code, r.out })
  end)

  it("traces requests with -v and redacts secrets", function()
    local secret = "eyJhbGciOiJSUzI1NiJ9.payload.sig-WXYZ"
    local r = run.ghlua({ "-v", "-e", ([[
      local http = require 'ghl.http'
      assert(http.request { url = %q, headers = { Authorization = 'Bearer %s' } })
      assert(http.request { url = %q, method = 'POST',
        form = { client_id = 'app-123', client_secret = 'shh-very-secret-SECR', refresh_token = 'rt-0123456789-RTRT', code = 'code-0123456789-CODE', grant_type = 'refresh_token' } })
    ]]):format(s.url .. "/__fault/echo", secret, s.url .. "/__fault/echo") })
    assert.are.equal(0, r.code, r.err)
    assert.matches("> GET " .. s.url:gsub("%p", "%%%0") .. "/__fault/echo", r.err)
    assert.matches("> Authorization: Bearer …WXYZ", r.err)
    assert.matches("< 200 %(%d+ ms, %d+ bytes%)", r.err)
    assert.matches("< [Cc]ontent%-[Tt]ype: application/json", r.err)
    assert.matches("client_id=app%-123&client_secret=…SECR&code=…CODE&grant_type=refresh_token&refresh_token=…RTRT", r.err)
    for _, leak in ipairs { "payload", "very-secret", "0123456789" } do
      assert.is_nil(r.err:find(leak, 1, true), leak .. " leaked into the trace")
    end
    -- GHLUA_TRACE=1 does the same
    local r2 = run.ghlua({ "-e", ("assert(require'ghl.http'.request{url=%q})"):format(s.url .. "/__fault/echo") },
                         { env = { GHLUA_TRACE = "1" } })
    assert.matches("> GET ", r2.err)
  end)

  it("reads GHLUA_CA_BUNDLE only for requests that may use TLS", function()
    local missing = "/nonexistent/ghlua-ca/missing.pem"
    local code = ("assert(require('ghl.http').request{url=%q})"):format(s.url .. "/__fault/echo")
    -- cleartext, no proxy: the bundle is never needed, so never read
    local r = run.ghlua({ "-e", code }, { env = { GHLUA_CA_BUNDLE = missing, http_proxy = "", HTTP_PROXY = "",
      all_proxy = "", ALL_PROXY = "" } })
    assert.are.equal(0, r.code, r.err)
    -- through a proxy (which may be an https:// one) it is read, and explained
    r = run.ghlua({ "-e", code }, { env = { GHLUA_CA_BUNDLE = missing, http_proxy = s.url, no_proxy = "", NO_PROXY = "" } })
    assert.are.equal(1, r.code)
    assert.matches("GHLUA_CA_BUNDLE=.-missing%.pem cannot be read; point it at a PEM file or unset it", r.err)
  end)

  it("honours the proxy environment variables", function()
    local r = run.ghlua({ "-e", [[
      local resp = assert(require('ghl.http').request { url = 'http://ghlua-proxy-check.invalid/__fault/echo' })
      print(resp.status, resp.body)
    ]] }, { env = { http_proxy = s.url, no_proxy = "", NO_PROXY = "" } })
    assert.are.equal(0, r.code, r.err)
    -- the simulator answered for a host that does not exist: it was the proxy
    assert.matches("ghlua%-proxy%-check%.invalid", r.out)
  end)
end)

describe("ghl.http over TLS", function()
  local dir, s
  setup(function()
    dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir))
    local r = run.sh(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 " ..
      "-addext subjectAltName=IP:127.0.0.1 -keyout %s/key.pem -out %s/cert.pem"):format(dir, dir))
    assert.are.equal(0, r.code, r.err)
    s = sim.start { "--faults", "--tls", "--cert", dir .. "/cert.pem", "--key", dir .. "/key.pem" }
  end)
  teardown(function()
    if s then s.stop() end
    os.execute("rm -rf " .. dir)
  end)

  it("serves HTTPS", function()
    assert.matches("^https://127%.0%.0%.1:%d+$", s.url)
  end)

  it("refuses a certificate that does not verify", function()
    local r = run.ghlua { "-e", ("local r, e = require('ghl.http').request{url=%q}; print(r, e.kind); os.exit(e.kind == 'tls' and 0 or 1)"):format(s.url .. "/__fault/echo") }
    assert.are.equal(0, r.code, r.out .. r.err)
    assert.matches("nil\ttls", r.out)
  end)

  it("trusts it once GHLUA_CA_BUNDLE adds it to the system roots", function()
    local r = run.ghlua({ "-e", ("local r = assert(require('ghl.http').request{url=%q}); print(r.status)"):format(s.url .. "/__fault/echo") },
                        { env = { GHLUA_CA_BUNDLE = dir .. "/cert.pem" } })
    assert.are.same({ 0, "200\n" }, { r.code, r.out })
  end)

  it("explains an unreadable GHLUA_CA_BUNDLE", function()
    local r = run.ghlua({ "-e", ("assert(require('ghl.http').request{url=%q})"):format(s.url) },
                        { env = { GHLUA_CA_BUNDLE = dir .. "/missing.pem" } })
    assert.are.equal(1, r.code)
    assert.matches("GHLUA_CA_BUNDLE=.-missing%.pem cannot be read; point it at a PEM file or unset it", r.err)
  end)

  it("explains a GHLUA_CA_BUNDLE with no certificate in it", function()
    local r = run.ghlua({ "-e", ("assert(require('ghl.http').request{url=%q})"):format(s.url) },
                        { env = { GHLUA_CA_BUNDLE = dir .. "/key.pem" } })
    assert.are.equal(1, r.code)
    assert.matches("GHLUA_CA_BUNDLE=.-key%.pem holds no PEM certificate; point it at a PEM file or unset it", r.err)
  end)

  it("keeps trusting it over many new connections (a fresh TLS context each)", function()
    local code = ([[
      local http = require('ghl.http')
      for i = 1, 5 do
        local ts = {}
        for j = 1, 4 do ts[j] = assert(http.start{url=%q, query={i=i, j=j}}) end
        local left = 4
        while left > 0 do
          for _, t in ipairs(assert(http.perform(1))) do
            assert(assert(t:response()).status == 200); left = left - 1
          end
        end
      end
      print('ok')]]):format(s.url .. "/__fault/echo")
    local r = run.ghlua({ "-e", code }, { env = { GHLUA_CA_BUNDLE = dir .. "/cert.pem" } })
    assert.are.same({ 0, "ok\n" }, { r.code, r.out }, r.err)
  end)
end)
