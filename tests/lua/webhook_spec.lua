-- Webhooks end to end: `ghlua sim --webhook-url` signs events with its
-- own Ed25519 key and `ghlua webhook serve --public-key <that key>` (both
-- child processes) verifies, de-duplicates, stores and hands them to a
-- handler file. Crafted deliveries (ghl.http, signatures made with
-- ghl.crypto) show what is refused: a tampered body, a wrong key, a
-- missing header, a replayed webhookId, a stale timestamp. Then handler
-- failures (429 and redelivery), legacy RSA, list/show/replay/verify, the
-- INSTALL/UNINSTALL built-ins against the token store, the simulator
-- never waiting for a receiver, and the store's events table. The offline
-- loop with no key flags: the simulator's development key in a private
-- GHLUA_HOME, trusted by a receiver whose API is that simulator and by
-- nothing else (--no-sim-key, a receiver working with HighLevel, a key
-- file others may read), and `webhook trigger` against serve and against
-- a plain listener that checks the payloads.
local sim = require "support.sim"
local oauth = require "support.oauth"
local run = require "support.run"
local listener = require "support.listener"
local http = require "ghl.http"
local crypto = require "ghl.crypto"
local webhooks = require "ghl.webhooks"
local store = require "ghl.store"
local sys = require "ghl.sys"
local cjson = require "cjson"

local q = run.quote
local slurp = run.slurp

local tmpdir = require("support.fixture").tmpdir   -- a new 0700 directory

local function wait_until(f, what, limit, every)
  local deadline = sys.now() + (limit or 10)
  while true do
    local v = f()
    if v then return v end
    assert(sys.now() < deadline, "timed out waiting for " .. what)
    sys.sleep(every or 0.02)
  end
end

local function alive(pid) return pid ~= nil and sys.kill(pid, 0) == true end

-- `ghlua webhook serve ARGV...` in the background with env; waits for its
-- ready file. Returns {url, port, pid, output(), stop()}.
local function serve(argv, env)
  local base = os.tmpname()
  local ready, log, pidfile = base .. ".ready", base .. ".log", base .. ".pid"
  local parts = { "env", "no_proxy=" .. sim.NO_PROXY, "NO_PROXY=" .. sim.NO_PROXY }
  for k, v in pairs(env or {}) do parts[#parts + 1] = k .. "=" .. q(v) end
  for _, a in ipairs { os.getenv("GHLUA"), "webhook", "serve", "--ready-file", ready } do parts[#parts + 1] = q(a) end
  for _, a in ipairs(argv) do parts[#parts + 1] = q(a) end
  local cmd = table.concat(parts, " ") .. " </dev/null >" .. q(log) .. " 2>&1 & echo $! >" .. q(pidfile)
  assert(os.execute(cmd))
  local info = wait_until(function()
    local pid = tonumber((slurp(pidfile) or ""):match("%d+"))
    if pid and not alive(pid) and slurp(ready) == "" then
      error("webhook serve exited: " .. slurp(log))
    end
    local t = slurp(ready)
    return t ~= "" and cjson.decode(t)
  end, "webhook serve to get ready")
  local s = { url = info.url, port = info.port, pid = math.tointeger(info.pid) }
  function s.output() return slurp(log) end
  function s.stop()
    if alive(s.pid) then sys.kill(s.pid, 15) end
    local limit = sys.now() + 5
    while alive(s.pid) and sys.now() < limit do sys.sleep(0.02) end
    if alive(s.pid) then sys.kill(s.pid, 9) end
    for _, p in ipairs { base, ready, log, pidfile } do os.remove(p) end
  end
  return s
end

-- A handler file that appends one JSON line per call to its .out file
-- and fails on purpose for events with fail = true, or once while the
-- .fail file exists. Returns {path, out, fail, records()}.
local function recorder()
  local h = { path = os.tmpname() .. ".lua" }
  h.out, h.fail = h.path .. ".out", h.path .. ".fail"
  local f = assert(io.open(h.path, "w"))
  f:write(string.format([[
local OUT, FAIL = %q, %q
return function(event, ctx)
  local rec = { event = event, id = ctx.id, type = ctx.type, verified = ctx.verified, location = ctx.location,
    attempt = ctx.attempt, replay = ctx.replay, signature = ctx.headers["x-ghl-signature"] }
  if event.want_client then
    rec.client_location = ctx.client.location
    rec.client_token = ctx.client:token()
  end
  local f = assert(io.open(OUT, "a"))
  f:write(require("cjson").encode(rec), "\n")
  f:close()
  if event.fail then error("failing on purpose for " .. ctx.id) end
  local flag = io.open(FAIL)
  if flag then
    flag:close()
    os.remove(FAIL)
    error("failing once on purpose")
  end
end
]], h.out, h.fail))
  f:close()
  function h.records()
    local list = {}
    for line in (slurp(h.out) .. ""):gmatch("[^\n]+") do list[#list + 1] = cjson.decode(line) end
    return list
  end
  -- The records whose event matches pred.
  function h.find(pred)
    local hits = {}
    for _, r in ipairs(h.records()) do if pred(r) then hits[#hits + 1] = r end end
    return hits
  end
  function h.remove() for _, p in ipairs { h.path, h.out, h.fail } do os.remove(p) end end
  return h
end

local function uuid()
  local b = crypto.base64_encode(assert(sys.random_bytes(12))):gsub("[+/=]", "x")
  return "wh-" .. b
end

-- A JSON event body with a fresh webhookId and timestamp unless given.
local function event(fields)
  fields.webhookId = fields.webhookId or uuid()
  if fields.timestamp == nil then fields.timestamp = webhooks.timestamp() end
  if fields.timestamp == false then fields.timestamp = nil end
  return cjson.encode(fields), fields.webhookId
end

local function deliver(url, body, headers)
  local h = { ["Content-Type"] = "application/json" }
  for k, v in pairs(headers or {}) do h[k] = v end
  local resp = assert(http.request { method = "POST", url = url, body = body, headers = h, timeout = 20 })
  return resp, resp.body ~= "" and resp:json() or nil
end

local function signed(body, key)
  return { ["X-GHL-Signature"] = assert(webhooks.sign(body, key)) }
end

describe("webhook serve with the simulator", function()
  local s, srv, h, home, key, spki, url, loc

  local function ghlua(args, opts)
    opts = opts or {}
    opts.env = opts.env or {}
    opts.env.GHLUA_HOME = opts.env.GHLUA_HOME or home
    return run.ghlua(args, opts)
  end

  local function api(method, path, body)
    local resp = assert(http.request { method = method, url = s.url .. path, headers = s.headers(),
      json = body, timeout = 10 })
    assert(resp.status < 300, method .. " " .. path .. ": " .. resp.status .. " " .. resp.body)
    return resp:json()
  end

  setup(function()
    home = tmpdir()
    -- the receiver binds port 0 first, then the simulator is told where it
    -- is and signs with our key: no port is chosen ahead of its bind
    key = assert(crypto.generate_key("ed25519"))
    spki = assert(crypto.public_key(key)).spki
    local keyfile = sim.tmpfile { key }
    h = recorder()
    srv = serve({ "--port", "0", "--path", "/hooks", "--handler", h.path, "--public-key", spki },
      { GHLUA_HOME = home })
    url = ("http://127.0.0.1:%d/hooks"):format(srv.port)
    s = sim.start { "--webhook-url", url, "--webhook-retry-delay", "1", "--webhook-key", keyfile }
    os.remove(keyfile)
    loc = s.location
    assert.are.equal(spki, s.ready.webhookPublicKeySpki)
  end)

  teardown(function()
    srv.stop()
    s.stop()
    h.remove()
    os.execute("rm -rf " .. q(home))
  end)

  it("prints the simulator's public key and writes the key pair to the ready file", function()
    assert.matches("webhook public key " .. spki:gsub("%p", "%%%0"), s.output())
    assert.matches("^MCowBQYDK2VwAyEA", spki)
    assert.are.equal(spki, assert(crypto.public_key(s.ready.webhookPrivateKey)).spki)
    local info = assert(http.request { url = s.url .. "/__sim/webhooks" }):json()
    assert.are.same({ spki, url }, { info.publicKeySpki, info.url })
  end)

  it("delivers signed contact events from the simulator to the handler", function()
    local c = api("POST", "/contacts/", { locationId = loc, firstName = "Ada", email = "ada@example.com" }).contact
    local rec = wait_until(function()
      return h.find(function(r) return r.type == "ContactCreate" and r.event.id == c.id end)[1]
    end, "ContactCreate at the handler")
    assert.are.same({ "ed25519", loc, "ada@example.com", rec.id, 1 },
      { rec.verified, rec.location, rec.event.email, rec.event.webhookId, rec.attempt })
    assert.is_number(webhooks.parse_time(rec.event.timestamp))
    assert.is_string(rec.signature)

    api("PUT", "/contacts/" .. c.id, { lastName = "Lovelace" })
    api("POST", "/contacts/" .. c.id .. "/tags", { tags = { "vip" } })
    api("DELETE", "/contacts/" .. c.id)
    for _, kind in ipairs { "ContactUpdate", "ContactTagUpdate", "ContactDelete" } do
      wait_until(function()
        return h.find(function(r) return r.type == kind and r.event.id == c.id end)[1]
      end, kind .. " at the handler")
    end
    local tagged = h.find(function(r) return r.type == "ContactTagUpdate" and r.event.id == c.id end)[1]
    assert.are.same({ "vip" }, tagged.event.tags)

    local l = ghlua { "webhook", "list", "--type", "ContactDelete", "--json" }
    assert.are.equal(0, l.code, l.err)
    local rows = cjson.decode(l.out)
    assert.are.same({ 1, "ContactDelete", "handled", true }, { #rows, rows[1].type, rows[1].status, rows[1].verified })
    assert.matches("200 ContactCreate " .. rec.id:gsub("%p", "%%%0"), srv.output())
  end)

  it("accepts an event signed with the simulator's private key, storing no credentials", function()
    local body, id = event { type = "ContactCreate", locationId = loc, id = "crafted-1" }
    local hdr = signed(body, key)
    hdr.Authorization, hdr["X-Extra"] = "Bearer sekrit-token", "kept"
    local resp, reply = deliver(url, body, hdr)
    assert.are.same({ 200, true, id }, { resp.status, reply.ok, reply.id })
    assert.are.equal(1, #h.find(function(r) return r.id == id end))
    local row = cjson.decode(ghlua({ "webhook", "show", id, "--json" }).out)
    assert.are.same({ "kept", nil }, { row.headers["x-extra"], row.headers.authorization })
  end)

  it("rejects a tampered body with 401, before the handler", function()
    local body, id = event { type = "ContactCreate", locationId = loc, id = "c-tamper", email = "a@example.com" }
    local resp, reply = deliver(url, body:gsub("a@example", "b@example"), signed(body, key))
    assert.are.same({ 401, "invalid" }, { resp.status, reply.error })
    assert.are.equal(0, #h.find(function(r) return r.id == id end))
    assert.are.equal(1, ghlua({ "webhook", "show", id }).code)
    assert.matches("401 POST /hooks from 127%.0%.0%.1: X%-GHL%-Signature does not verify", srv.output())
  end)

  it("rejects a signature made with another key", function()
    local other = assert(crypto.generate_key("ed25519"))
    local body, id = event { type = "ContactCreate", locationId = loc, id = "c-wrongkey" }
    local resp, reply = deliver(url, body, signed(body, other))
    assert.are.same({ 401, "invalid" }, { resp.status, reply.error })
    -- and HighLevel's real key is not ours either: the simulator's events
    -- do not verify against the built-in key
    assert.are_not.equal(spki, assert(crypto.public_key(webhooks.PUBLIC_KEY)).spki)
    assert.are.equal(0, #h.find(function(r) return r.id == id end))
  end)

  it("rejects a missing, empty, N/A or malformed X-GHL-Signature", function()
    local body, id = event { type = "ContactCreate", locationId = loc, id = "c-nosig" }
    for _, case in ipairs {
      { nil, "missing" }, { { ["X-GHL-Signature"] = "N/A" }, "missing" },
      { { ["X-GHL-Signature"] = "not base64!" }, "malformed" },
      { { ["X-WH-Signature"] = "c2ln" }, "legacy_only" },
    } do
      local resp, reply = deliver(url, body, case[1])
      assert.are.same({ 401, case[2] }, { resp.status, reply.error })
    end
    assert.are.equal(0, #h.find(function(r) return r.id == id end))
    assert.matches("no X%-GHL%-Signature header", srv.output())
  end)

  it("rejects a replayed webhookId with 409 and calls the handler once", function()
    local body, id = event { type = "ContactCreate", locationId = loc, id = "c-replay" }
    local hdr = signed(body, key)
    assert.are.equal(200, deliver(url, body, hdr).status)
    local resp, reply = deliver(url, body, hdr)
    assert.are.same({ 409, "duplicate" }, { resp.status, reply.error })
    assert.are.equal(1, #h.find(function(r) return r.id == id end))
    assert.matches("409 .*" .. id:gsub("%p", "%%%0") .. " was already received", srv.output())
  end)

  it("rejects stale, future and missing timestamps", function()
    for _, case in ipairs {
      { webhooks.timestamp(sys.time() - 600), "stale" },
      { webhooks.timestamp(sys.time() + 600), "future" },
      { false, "no_timestamp" },
      { "yesterday", "bad_timestamp" },
    } do
      local body, id = event { type = "ContactCreate", locationId = loc, timestamp = case[1] }
      local resp, reply = deliver(url, body, signed(body, key))
      assert.are.same({ 401, case[2] }, { resp.status, reply.error })
      assert.are.equal(0, #h.find(function(r) return r.id == id end))
    end
    -- within the window (60 s old) is fine
    local body = event { type = "ContactCreate", locationId = loc, timestamp = webhooks.timestamp(sys.time() - 60) }
    assert.are.equal(200, deliver(url, body, signed(body, key)).status)
  end)

  -- The lines serve logged while f ran, checked to be one per refusal and
  -- free of raw control bytes.
  local function logged_during(f)
    local before = #srv.output()
    f()
    local new = srv.output():sub(before + 1)
    assert.is_nil(new:find("[%z\1-\8\11-\31\127]"), "raw control bytes in the log: " .. new)
    assert.is_nil(new:find("traceback", 1, true), new)
    assert.is_nil(new:find("server handler", 1, true), new)
    local lines = {}
    for l in new:gmatch("[^\n]+") do lines[#lines + 1] = l end
    return lines
  end

  it("refuses every hostile timestamp in a correctly signed body with a 4xx and one log line", function()
    local cases = {
      { "1e30", 401, "bad_timestamp" }, { "-1e30", 401, "bad_timestamp" }, { "1e400", 401, "bad_timestamp" },
      { "-1e400", 401, "bad_timestamp" }, { "-1", 401, "bad_timestamp" }, { "0.5", 401, "stale" },
      { "9.3e15", 401, "bad_timestamp" }, { "NaN", 400, "not_json" }, { "nan", 400, "not_json" },
      { "Infinity", 400, "not_json" }, { "-Infinity", 400, "not_json" }, { "0x7fffffff", 400, "not_json" },
      { '"1e30"', 401, "bad_timestamp" }, { '""', 401, "bad_timestamp" }, { '"NaN"', 401, "bad_timestamp" },
      { '"9999-99-99T99:99:99Z"', 401, "bad_timestamp" }, { '"0000-01-01T00:00:00Z"', 401, "bad_timestamp" },
      { '"2025-01-01T00:00:00+99:99"', 401, "bad_timestamp" }, { '"2025-01-01T00:00:00 junk"', 401, "bad_timestamp" },
      { '"\\u001b[2J\\u001b]0;owned\\u0007 2025-01-01T00:00:00Z"', 401, "bad_timestamp" },
      { '"' .. ("9"):rep(100000) .. '"', 401, "bad_timestamp" },
      { '"2025-01-01T00:00:00' .. (" "):rep(100000) .. 'x"', 401, "bad_timestamp" },
      { "{}", 401, "bad_timestamp" }, { "[]", 401, "bad_timestamp" }, { '{"a":[{"b":1e30}]}', 401, "bad_timestamp" },
      { "[1e30, NaN]", 400, "not_json" }, { "true", 401, "bad_timestamp" }, { "null", 401, "no_timestamp" },
      { nil, 401, "no_timestamp" },
    }
    local lines = logged_during(function()
      for _, case in ipairs(cases) do
        local body = '{"type":"ContactCreate","locationId":"' .. loc .. '","webhookId":"' .. uuid() .. '"'
          .. (case[1] and (',"timestamp":' .. case[1]) or "") .. "}"
        local resp, reply = deliver(url, body, signed(body, key))
        assert.are.same({ case[2], case[3] }, { resp.status, reply.error }, "timestamp " .. tostring(case[1]):sub(1, 40))
      end
    end)
    assert.are.equal(#cases, #lines, table.concat(lines, "\n"))
    for _, l in ipairs(lines) do assert.matches("^ghlua webhook: 40[01] POST /hooks from 127%.0%.0%.1: ", l) end
    -- the escape sequence in the timestamp is shown escaped
    assert.matches("timestamp is '\\x1b%[2J\\x1b%]0;owned\\x07 2025", srv.output())
    -- and the receiver still works
    local body = event { type = "ContactCreate", locationId = loc }
    assert.are.equal(200, deliver(url, body, signed(body, key)).status)
  end)

  it("refuses signed bodies that are not an event object, nested too deep, or with ids that are not strings", function()
    local deep = function(n) return '{"type":"X","a":' .. ("["):rep(n) .. ("]"):rep(n) .. "}" end
    local cases = {
      { "[]", "no_type" }, { "[1,2]", "not_json" }, { '"ContactCreate"', "not_json" }, { "42", "not_json" },
      { "null", "not_json" }, { "", "not_json" }, { "{", "not_json" }, { "\255\254{}", "not_json" },
      { '{"type":{"a":1}}', "no_type" }, { '{"type":""}', "no_type" }, { deep(65), "too_deep" },
      { deep(5000), "too_deep" }, { ("["):rep(100000), "too_deep" },
      { '{"type":"ContactCreate","locationId":{"id":"x"}}', "bad_field" },
      { '{"type":"ContactCreate","webhookId":[1]}', "bad_field" }, { '{"type":"INSTALL","companyId":1e30}', "bad_field" },
      { '{"type":"UNINSTALL","appId":true}', "bad_field" },
    }
    local lines = logged_during(function()
      for _, case in ipairs(cases) do
        local resp, reply = deliver(url, case[1], signed(case[1], key))
        assert.are.same({ 400, case[2] }, { resp.status, reply.error }, case[1]:sub(1, 40))
      end
    end)
    assert.are.equal(#cases, #lines, table.concat(lines, "\n"))
    for _, l in ipairs(lines) do assert.matches("^ghlua webhook: 400 POST /hooks from 127%.0%.0%.1: ", l) end
    -- nested 64 deep is still an event
    local body = '{"type":"ContactCreate","locationId":"' .. loc .. '","webhookId":"' .. uuid() .. '","timestamp":"'
      .. webhooks.timestamp() .. '","a":' .. ("["):rep(63) .. ("]"):rep(63) .. "}"
    assert.are.equal(200, deliver(url, body, signed(body, key)).status)
  end)

  it("logs a request with a binary method and path escaped", function()
    local raw = os.tmpname()
    local f = assert(io.open(raw, "wb"))
    f:write("G\27[31mT\7 /hooks\27]0;owned\7\1\255%1b[2J HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    f:close()
    local lines = logged_during(function()
      local r = run.sh("bash -c " .. q("exec 3<>/dev/tcp/127.0.0.1/" .. math.tointeger(srv.port) .. " && cat " .. q(raw)
        .. " >&3 && cat <&3"))
      assert.matches("^HTTP/1%.1 40[45]", r.out, nil, nil, r.err)
    end)
    os.remove(raw)
    assert.are.equal(1, #lines)
    assert.matches("\\x1b%[31mT\\x07 /hooks\\x1b%]0;owned\\x07\\x01\\xff", lines[1])
  end)

  it("answers 429 when the handler fails, logs it and keeps the event as failed", function()
    local body, id = event { type = "ContactCreate", locationId = loc, fail = true }
    local resp, reply = deliver(url, body, signed(body, key))
    assert.are.same({ 429, "handler" }, { resp.status, reply.error })
    assert.matches("429 ContactCreate " .. id:gsub("%p", "%%%0") .. ": the handler failed: .*failing on purpose",
      srv.output())
    local show = ghlua { "webhook", "show", id, "--json" }
    local row = cjson.decode(show.out)
    assert.are.same({ "failed", 1 }, { row.status, row.attempts })
    assert.matches("failing on purpose", row.note)
  end)

  it("gets the simulator's redelivery after a 429 and runs the handler again", function()
    local f = assert(io.open(h.fail, "w"))
    f:close()
    local c = api("POST", "/contacts/", { locationId = loc, firstName = "Retry" }).contact
    local rec = wait_until(function()
      return h.find(function(r) return r.event.id == c.id and r.attempt == 2 end)[1]
    end, "the redelivery", 15)
    assert.are.equal(2, #h.find(function(r) return r.event.id == c.id end))
    local row = cjson.decode(ghlua({ "webhook", "show", rec.id, "--json" }).out)
    assert.are.same({ "handled", 2 }, { row.status, row.attempts })
    local info = assert(http.request { url = s.url .. "/__sim/webhooks" }):json()
    local d
    for _, x in ipairs(info.deliveries) do if x.webhookId == rec.id then d = x end end
    assert.are.same({ "delivered", 2, 200 }, { d.status, d.attempts, d.httpStatus })
  end)

  it("refuses other paths and methods", function()
    local body = event { type = "ContactCreate", locationId = loc }
    assert.are.equal(404, deliver(srv.url .. "other", body, signed(body, key)).status)
    assert.are.equal(405, assert(http.request { url = url }).status)
  end)

  describe("stored events", function()
    local body, id

    setup(function()
      body, id = event { type = "OpportunityCreate", locationId = loc, id = "opp-1", name = "Deal é" }
      assert.are.equal(200, deliver(url, body, signed(body, key)).status)
    end)

    it("lists them with filters", function()
      local all = cjson.decode(ghlua({ "webhook", "list", "--json" }).out)
      assert.is_true(#all >= 3)
      local opp = cjson.decode(ghlua({ "webhook", "list", "--type", "OpportunityCreate", "--json" }).out)
      assert.are.same({ 1, id, loc }, { #opp, opp[1].id, opp[1].location_id })
      local last = cjson.decode(ghlua({ "webhook", "list", "--limit", "1", "--json" }).out)
      assert.are.same({ 1, all[#all].id }, { #last, last[1].id })
      assert.are.same({}, cjson.decode(ghlua({ "webhook", "list", "--since", "2099-01-01", "--json" }).out))
      assert.are.equal(#all, #cjson.decode(ghlua({ "webhook", "list", "--since", "1h", "--json" }).out))
      local text = ghlua { "webhook", "list", "--type", "OpportunityCreate" }
      assert.matches(id:gsub("%p", "%%%0") .. "%s+OpportunityCreate%s+" .. loc .. "%s+handled", text.out)
      assert.are.equal(2, ghlua({ "webhook", "list", "--since", "soon" }).code)
    end)

    it("shows one, with the raw body byte for byte", function()
      local raw = ghlua { "webhook", "show", id, "--body" }
      assert.are.same({ 0, body }, { raw.code, raw.out })
      local rec = cjson.decode(ghlua({ "webhook", "show", id, "--json" }).out)
      assert.are.same({ id, "OpportunityCreate", loc, true, "handled", body },
        { rec.id, rec.type, rec.location_id, rec.verified, rec.status, rec.body })
      assert.are.equal(signed(body, key)["X-GHL-Signature"], rec.headers["x-ghl-signature"])
      local text = ghlua { "webhook", "show", id }
      assert.matches("x%-ghl%-signature: ", text.out)
      assert.matches("Deal é", text.out, 1, true)
      local missing = ghlua { "webhook", "show", "no-such-id" }
      assert.are.equal(1, missing.code)
      assert.matches("no stored event no%-such%-id", missing.err)
    end)

    it("replays them to a handler", function()
      local h2 = recorder()
      local r = ghlua { "webhook", "replay", id, "--handler", h2.path }
      assert.are.equal(0, r.code, r.err)
      local recs = h2.records()
      assert.are.same({ 1, id, true, "opp-1" }, { #recs, recs[1].id, recs[1].replay, recs[1].event.id })
      local failing = ghlua { "webhook", "replay", id, "--handler", h2.path }
      assert.are.equal(0, failing.code)
      local f = assert(io.open(h2.fail, "w"))
      f:close()
      failing = ghlua { "webhook", "replay", id, "--handler", h2.path }
      assert.are.equal(1, failing.code)
      assert.matches("failing once on purpose", failing.err)
      h2.remove()
    end)

    it("replays them to a URL with the original body and signature, which still verify there", function()
      local home2, h3 = tmpdir(), recorder()
      local other = serve({ "--port", "0", "--handler", h3.path, "--public-key", spki }, { GHLUA_HOME = home2 })
      local r = ghlua { "webhook", "replay", id, "--to", other.url }
      local again = ghlua { "webhook", "replay", id, "--to", other.url }
      other.stop()
      local recs = h3.records()
      h3.remove()
      os.execute("rm -rf " .. q(home2))
      assert.are.equal(0, r.code, r.err)
      assert.matches("HTTP 200", r.out)
      assert.are.same({ 1, id, "ed25519", "Deal é" }, { #recs, recs[1].id, recs[1].verified, recs[1].event.name })
      assert.are.equal(1, again.code)
      assert.matches("HTTP 409", again.err)
      assert.are.equal(2, ghlua({ "webhook", "replay", id }).code)
    end)

    it("verifies a body and signature: exit 0 or 1", function()
      local sig = cjson.decode(ghlua({ "webhook", "show", id, "--json" }).out).headers["x-ghl-signature"]
      local ok = ghlua({ "webhook", "verify", "--signature", sig, "--public-key", spki }, { stdin = body })
      assert.are.equal(0, ok.code, ok.err)
      assert.matches("Ed25519 signature verifies", ok.out)
      local pem = os.tmpname()
      local f = assert(io.open(pem, "w"))
      f:write(assert(crypto.public_key(spki)).pem)
      f:close()
      assert.are.equal(0, ghlua({ "webhook", "verify", "--signature", sig, "--public-key", pem }, { stdin = body }).code)
      os.remove(pem)
      local bad = ghlua({ "webhook", "verify", "--signature", sig, "--public-key", spki }, { stdin = body .. " " })
      assert.are.equal(1, bad.code)
      assert.matches("does not verify", bad.err)
      -- HighLevel's built-in key did not make this signature
      assert.are.equal(1, ghlua({ "webhook", "verify", "--signature", sig }, { stdin = body }).code)
      assert.are.equal(2, ghlua({ "webhook", "verify" }, { stdin = body }).code)
      assert.are.equal(2, ghlua({ "webhook", "verify", "--signature", sig, "--public-key", "nonsense!" },
        { stdin = body }).code)
    end)
  end)
end)

describe("the offline loop with no key flags (the simulator's development key)", function()
  -- `ghlua sim --webhook-url` and `ghlua webhook serve` share a private
  -- GHLUA_HOME and nothing else: the simulator signs with the development
  -- key it keeps there, the receiver (whose API is that simulator) trusts
  -- it, and says so.
  local home, s, srv, h, url, port, keyfile

  local function env(extra)
    local e = { GHLUA_HOME = home, GHLUA_API_BASE = s.url }
    for k, v in pairs(extra or {}) do e[k] = v ~= false and v or nil end
    return e
  end

  local function ghlua(args, opts)
    opts = opts or {}
    opts.env = opts.env or env()
    return run.ghlua(args, opts)
  end

  local function api(method, path, body)
    local resp = assert(http.request { method = method, url = s.url .. path, headers = s.headers(),
      json = body, timeout = 10 })
    assert(resp.status < 300, method .. " " .. path .. ": " .. resp.status .. " " .. resp.body)
    return resp:json()
  end

  -- The development key's private half, read as a test of the same user may.
  local function dev_private()
    return assert(slurp(keyfile))
  end

  local function stored(id)
    local r = ghlua { "webhook", "show", id, "--json" }
    assert.are.equal(0, r.code, r.err)
    return cjson.decode(r.out)
  end

  setup(function()
    home = tmpdir()
    keyfile = home .. "/sim-webhook-key.pem"
    h = recorder()
    -- the simulator must know the receiver's port and the receiver the
    -- simulator's URL: the port is chosen first (below the ephemeral
    -- range), and both start again on another if it was taken meanwhile
    for attempt = 1, 5 do
      port = oauth.free_port()
      url = ("http://127.0.0.1:%d/hooks"):format(port)
      s = sim.start({ "--webhook-url", url, "--webhook-retry-delay", "1" }, { env = { GHLUA_HOME = home } })
      local ok, err = pcall(serve, { "--port", tostring(port), "--path", "/hooks", "--handler", h.path },
        { GHLUA_HOME = home, GHLUA_API_BASE = s.url })
      if ok then
        srv = err
        break
      end
      s.stop()
      if attempt == 5 or not tostring(err):find("Address already in use", 1, true) then error(err, 0) end
    end
  end)

  teardown(function()
    srv.stop()
    s.stop()
    h.remove()
    os.execute("rm -rf " .. q(home))
  end)

  it("keeps one development key pair, 0600 in the 0700 GHLUA_HOME, and both sides announce it", function()
    local info = assert(crypto.public_key(dev_private()))
    assert.are.same({ "ed25519", tonumber("600", 8), tonumber("700", 8) },
      { info.type, sys.stat(keyfile).mode, sys.stat(home).mode })
    -- the simulator signs with it: its public key, no private key in the ready file
    assert.are.same({ info.spki, keyfile }, { s.ready.webhookPublicKeySpki, s.ready.webhookKeyFile })
    assert.is_nil(s.ready.webhookPrivateKey)
    assert.matches("webhook public key " .. info.spki:gsub("%p", "%%%0") .. " %(Ed25519; the development key "
      .. keyfile:gsub("%p", "%%%0") .. ", made now%)", s.output())
    -- the receiver checks HighLevel's key first and trusts this one too, saying how to stop it
    assert.matches("Ed25519 key " .. webhooks.PUBLIC_KEY:match("MCow%S+"):gsub("%p", "%%%0"), srv.output())
    assert.matches("also trusting the local simulator's development key " .. info.spki:gsub("%p", "%%%0")
      .. " %(" .. keyfile:gsub("%p", "%%%0") .. "%).*verified: simulator.*%-%-no%-sim%-key", srv.output())
  end)

  it("accepts, stores and handles the simulator's deliveries, shown as verified by the simulator", function()
    local c = api("POST", "/contacts/", { locationId = s.location, firstName = "Ada", email = "ada@example.com" }).contact
    local rec = wait_until(function()
      return h.find(function(r) return r.type == "ContactCreate" and r.event.id == c.id end)[1]
    end, "ContactCreate at the handler")
    assert.are.same({ "simulator", s.location, "ada@example.com", 1 },
      { rec.verified, rec.location, rec.event.email, rec.attempt })
    api("POST", "/contacts/" .. c.id .. "/tags", { tags = { "vip" } })
    wait_until(function()
      return h.find(function(r) return r.type == "ContactTagUpdate" and r.event.id == c.id end)[1]
    end, "ContactTagUpdate at the handler")
    -- every delivery so far was answered 200
    local info = wait_until(function()
      local w = assert(http.request { url = s.url .. "/__sim/webhooks" }):json()
      return w.stats.delivered + w.stats.rejected + w.stats.failed == w.stats.emitted and w
    end, "the deliveries to finish")
    assert.are.same({ 0, 0 }, { info.stats.rejected, info.stats.failed })
    for _, d in ipairs(info.deliveries) do assert.are.same({ "delivered", 200 }, { d.status, d.httpStatus }) end

    local row = stored(rec.id)
    assert.are.same({ "ContactCreate", "handled", "simulator", 1 }, { row.type, row.status, row.verified, row.attempts })
    local list = cjson.decode(ghlua({ "webhook", "list", "--type", "ContactCreate", "--json" }).out)
    assert.are.same({ rec.id, "simulator" }, { list[1].id, list[1].verified })
    assert.matches(rec.id:gsub("%p", "%%%0") .. "%s+ContactCreate%s+" .. s.location .. "%s+handled%s+verified: simulator",
      ghlua({ "webhook", "list" }).out)
    assert.matches("verified  simulator %(the local simulator's development key, not HighLevel's%)",
      ghlua({ "webhook", "show", rec.id }).out)
    assert.matches("200 ContactCreate " .. rec.id:gsub("%p", "%%%0") .. " location " .. s.location
      .. " %(verified: simulator%)", srv.output())
  end)

  it("verifies a stored delivery with `webhook verify`, as serve would", function()
    local c = api("POST", "/contacts/", { locationId = s.location, firstName = "Vera" }).contact
    local rec = wait_until(function()
      return h.find(function(r) return r.type == "ContactCreate" and r.event.id == c.id end)[1]
    end, "the delivery")
    local row = stored(rec.id)
    local sig = row.headers["x-ghl-signature"]
    local ok = ghlua({ "webhook", "verify", "--signature", sig }, { stdin = row.body })
    assert.are.equal(0, ok.code, ok.err)
    assert.matches("Ed25519 signature verifies over %d+ bytes with the local simulator's development key", ok.out)
    -- not with the trust turned off, nor for a receiver working with HighLevel
    local off = ghlua({ "webhook", "verify", "--signature", sig, "--no-sim-key" }, { stdin = row.body })
    assert.are.equal(1, off.code)
    assert.matches("local simulator's development key, which this receiver does not trust: %-%-no%-sim%-key", off.err)
    local prod = ghlua({ "webhook", "verify", "--signature", sig },
      { stdin = row.body, env = env { GHLUA_API_BASE = false } })
    assert.are.equal(1, prod.code)
    assert.matches("GHLUA_API_BASE is not set", prod.err)
    local real = ghlua({ "webhook", "verify", "--signature", sig },
      { stdin = row.body, env = env { GHLUA_API_BASE = "https://services.leadconnectorhq.com" } })
    assert.are.equal(1, real.code)
    assert.matches("is not a simulator on this machine", real.err)
    -- unless asked for
    local forced = ghlua({ "webhook", "verify", "--signature", sig, "--sim-key" },
      { stdin = row.body, env = env { GHLUA_API_BASE = false } })
    assert.are.equal(0, forced.code, forced.err)
    -- another body under the same signature verifies with no key
    local tampered = ghlua({ "webhook", "verify", "--signature", sig }, { stdin = row.body .. " " })
    assert.are.equal(1, tampered.code)
    assert.matches("does not verify with the configured Ed25519 key", tampered.err)
    assert.are.equal(2, ghlua({ "webhook", "verify", "--signature", sig, "--sim-key", "--no-sim-key" },
      { stdin = row.body }).code)
  end)

  it("replays them to a handler and to a URL, where replay protection still applies", function()
    local c = api("POST", "/contacts/", { locationId = s.location, firstName = "Rex" }).contact
    local rec = wait_until(function()
      return h.find(function(r) return r.type == "ContactCreate" and r.event.id == c.id end)[1]
    end, "the delivery")
    local h2 = recorder()
    local r = ghlua { "webhook", "replay", rec.id, "--handler", h2.path }
    assert.are.equal(0, r.code, r.err)
    assert.are.same({ 1, rec.id, true, "simulator" },
      { #h2.records(), h2.records()[1].id, h2.records()[1].replay, h2.records()[1].verified })
    h2.remove()
    -- to the same receiver: a duplicate webhookId
    local again = ghlua { "webhook", "replay", rec.id, "--to", url }
    assert.are.equal(1, again.code)
    assert.matches("HTTP 409", again.err)
    -- to a receiver of the same user with another store: verified by the simulator's key there too
    local h3, db2 = recorder(), tmpdir() .. "/other.db"
    local other = serve({ "--port", "0", "--handler", h3.path }, env { GHLUA_STORE = db2 })
    local fwd = ghlua { "webhook", "replay", rec.id, "--to", other.url }
    local twice = ghlua { "webhook", "replay", rec.id, "--to", other.url }
    other.stop()
    local recs = h3.records()
    h3.remove()
    os.execute("rm -rf " .. q(db2:match("^(.*)/")))
    assert.are.equal(0, fwd.code, fwd.err)
    assert.are.same({ 1, rec.id, "simulator", c.id }, { #recs, recs[1].id, recs[1].verified, recs[1].event.id })
    assert.are.equal(1, twice.code)
    assert.matches("HTTP 409", twice.err)
  end)

  it("refuses deliveries that no trusted key signed, and simulator ones too old", function()
    local other = assert(crypto.generate_key("ed25519"))
    local body, id = event { type = "ContactCreate", locationId = s.location }
    local resp, reply = deliver(url, body, signed(body, other))
    assert.are.same({ 401, "invalid" }, { resp.status, reply.error })
    resp, reply = deliver(url, body)
    assert.are.same({ 401, "missing" }, { resp.status, reply.error })
    -- the development key over another body
    resp, reply = deliver(url, body, signed(body .. " ", dev_private()))
    assert.are.same({ 401, "invalid" }, { resp.status, reply.error })
    -- HighLevel's key (the receiver's configured key) did not sign any of them either
    assert.is_false(crypto.ed25519_verify(webhooks.PUBLIC_KEY, body, assert(crypto.base64_decode(
      signed(body, dev_private())["X-GHL-Signature"]))))
    assert.are.equal(0, #h.find(function(r) return r.id == id end))
    -- signed with the development key but stale, or replayed: refused as HighLevel's would be
    local old = event { type = "ContactCreate", locationId = s.location, timestamp = webhooks.timestamp(sys.time() - 600) }
    resp, reply = deliver(url, old, signed(old, dev_private()))
    assert.are.same({ 401, "stale" }, { resp.status, reply.error })
    assert.are.equal(200, deliver(url, body, signed(body, dev_private())).status)
    resp, reply = deliver(url, body, signed(body, dev_private()))
    assert.are.same({ 409, "duplicate" }, { resp.status, reply.error })
    assert.are.equal(1, #h.find(function(r) return r.id == id end))
  end)

  it("trusts the key only while it is private: a key file others may read is not used", function()
    local body, id = event { type = "ContactCreate", locationId = s.location }
    assert(sys.chmod(keyfile, tonumber("644", 8)))
    local resp, reply = deliver(url, body, signed(body, dev_private()))
    assert(sys.chmod(keyfile, tonumber("600", 8)))
    assert.are.same({ 401, "invalid" }, { resp.status, reply.error })
    assert(sys.chmod(home, tonumber("755", 8)))
    resp, reply = deliver(url, body, signed(body, dev_private()))
    assert(sys.chmod(home, tonumber("700", 8)))
    assert.are.same({ 401, "invalid" }, { resp.status, reply.error })
    assert.are.equal(200, deliver(url, body, signed(body, dev_private())).status)
    assert.are.equal(1, #h.find(function(r) return r.id == id end))
  end)

  it("refuses simulator-signed deliveries with --no-sim-key, or when the receiver works with HighLevel", function()
    for _, case in ipairs {
      { { "--no-sim-key" }, env(), "%-%-no%-sim%-key was given" },
      { {}, env { GHLUA_API_BASE = false }, "GHLUA_API_BASE is not set, so this receiver works with HighLevel" },
    } do
      local h4 = recorder()
      local argv = { "--port", "0", "--handler", h4.path }
      for _, a in ipairs(case[1]) do argv[#argv + 1] = a end
      local r = serve(argv, case[2])
      local t = ghlua({ "webhook", "trigger", "ContactCreate", "--url", r.url }, { env = case[2] })
      local body, id = event { type = "ContactCreate", locationId = s.location }
      local resp, reply = deliver(r.url, body, signed(body, dev_private()))
      local output = r.output()
      r.stop()
      local recs = h4.records()
      h4.remove()
      assert.are.equal(1, t.code)
      assert.matches("HTTP 401", t.err)
      assert.are.same({ 401, "untrusted_sim" }, { resp.status, reply.error })
      assert.matches("which this receiver does not trust: " .. case[3], reply.message)
      assert.matches("not trusting the local simulator's development key: " .. case[3], output)
      assert.matches("401 POST / from 127%.0%.0%.1: X%-GHL%-Signature was made with the local simulator's", output)
      assert.are.same({}, recs)
      assert.are.equal(1, ghlua({ "webhook", "show", id }).code)
    end
    -- --sim-key trusts it whatever the API
    local r = serve({ "--port", "0", "--sim-key" }, env { GHLUA_API_BASE = false })
    local t = ghlua({ "webhook", "trigger", "NoteCreate", "--url", r.url }, { env = env { GHLUA_API_BASE = false } })
    r.stop()
    assert.are.equal(0, t.code, t.err)
    assert.matches("HTTP 200", t.out)
    assert.are.equal(2, ghlua({ "webhook", "serve", "--sim-key", "--no-sim-key" }).code)
    assert.are.equal(2, ghlua({ "webhook", "serve", "--sim-key", "--no-verify" }).code)
  end)

  it("works whichever starts first: a receiver started first makes the key the simulator then uses", function()
    local home2 = tmpdir()
    local r = serve({ "--port", "0", "--no-builtins" }, { GHLUA_HOME = home2, GHLUA_API_BASE = "http://127.0.0.1:9" })
    local key2 = home2 .. "/sim-webhook-key.pem"
    local spki2 = assert(crypto.public_key(assert(slurp(key2)))).spki
    assert.matches("also trusting the local simulator's development key " .. spki2:gsub("%p", "%%%0"), r.output())
    local s2 = sim.start({ "--webhook-url", r.url }, { env = { GHLUA_HOME = home2 } })
    local resp = assert(http.request { method = "POST", url = s2.url .. "/contacts/", headers = s2.headers(),
      json = { locationId = s2.location, firstName = "Late" } })
    local info = wait_until(function()
      local w = assert(http.request { url = s2.url .. "/__sim/webhooks" }):json()
      return w.stats.emitted > 0 and w.stats.emitted == w.stats.delivered + w.stats.rejected + w.stats.failed and w
    end, "the delivery")
    local out = r.output()
    s2.stop()
    r.stop()
    os.execute("rm -rf " .. q(home2))
    assert.are.equal(201, resp.status)
    assert.are.same({ spki2, 1, 1 }, { s2.ready.webhookPublicKeySpki, info.stats.emitted, info.stats.delivered })
    assert.matches("200 ContactCreate %S+ location %S+ %(verified: simulator%)", out)
  end)

  it("`webhook trigger` sends events of several types that serve verifies, stores and handles", function()
    local sent = {}
    for _, case in ipairs {
      { "ContactCreate" }, { "ContactDndUpdate" }, { "OpportunityCreate" }, { "OpportunityStageUpdate" },
      { "NoteCreate" }, { "InboundMessage" }, { "LocationUpdate" }, { "PLAN_CHANGE" },
      { "INSTALL", "--agency" }, { "UNINSTALL" },
    } do
      local argv = { "webhook", "trigger", case[1], "--url", url }
      for i = 2, #case do argv[#argv + 1] = case[i] end
      local r = ghlua(argv)
      assert.are.equal(0, r.code, case[1] .. ": " .. r.err)
      local id = r.out:match("^sent " .. case[1] .. " (%S+) to " .. url:gsub("%p", "%%%0")
        .. " %(signed with the development key%): HTTP 200\n$")
      assert.is_string(id, r.out)
      sent[#sent + 1] = { case[1], id }
    end
    for _, e in ipairs(sent) do
      local rec = wait_until(function() return h.find(function(r) return r.id == e[2] end)[1] end, e[1])
      assert.are.same({ e[1], "simulator" }, { rec.type, rec.verified })
      local row = stored(e[2])
      assert.are.same({ e[1], "handled", "simulator" }, { row.type, row.status, row.verified })
    end
    assert.matches("INSTALL on company " .. s.company .. ": the agency install", srv.output())
    assert.matches("UNINSTALL: marked 0 stored tokens of location " .. s.location, srv.output())
    -- the same webhookId twice: the receiver's de-duplication answers
    local first = ghlua { "webhook", "trigger", "ContactUpdate", "--url", url, "--field", "webhookId=trigger-dup-1" }
    local second = ghlua { "webhook", "trigger", "ContactUpdate", "--url", url, "--field", "webhookId=trigger-dup-1" }
    assert.are.same({ 0, 1 }, { first.code, second.code }, second.err)
    assert.matches("sent ContactUpdate trigger%-dup%-1 .*: HTTP 409 .*already received", second.err)
    -- and a stale timestamp its age limit
    local stale = ghlua { "webhook", "trigger", "ContactCreate", "--url", url, "--field",
      "timestamp=" .. webhooks.timestamp(sys.time() - 3600) }
    assert.are.equal(1, stale.code)
    assert.matches("HTTP 401 .*stale", stale.err)
  end)
end)

describe("webhook trigger", function()
  local home, l, spki

  setup(function()
    home = tmpdir()
    l = listener.start()
  end)

  teardown(function()
    l.stop()
    os.execute("rm -rf " .. q(home))
  end)

  local function trigger(argv)
    local args = { "webhook", "trigger" }
    for _, a in ipairs(argv) do args[#args + 1] = a end
    return run.ghlua(args, { env = { GHLUA_HOME = home } })
  end

  -- The one request the listener got since the last call: its headers and
  -- decoded body, after checking the signature over the raw body.
  local function received()
    local reqs = l.requests()
    l.clear()
    assert.are.equal(1, #reqs)
    local r = reqs[1]
    assert.are.same({ "POST", "/hooks", "application/json" }, { r.method, r.path, r.headers["content-type"] })
    spki = spki or assert(crypto.public_key(slurp(home .. "/sim-webhook-key.pem"))).spki
    assert.is_true(crypto.ed25519_verify(spki, r.body, assert(crypto.base64_decode(r.headers["x-ghl-signature"]))))
    local ev = cjson.decode(r.body)
    assert.matches("^%x+%-%x+%-4%x+%-%x+%-%x+$", ev.webhookId)
    assert.is_true(math.abs(webhooks.parse_time(ev.timestamp) - sys.time()) < 60)
    return ev
  end

  it("sends HighLevel's payload shapes, signed with the development key it makes on first use", function()
    local target = l.url .. "/hooks"
    local r = trigger { "ContactCreate", "--url", target, "--location", "LOCtrigger01" }
    assert.are.equal(0, r.code, r.err)
    assert.matches("^sent ContactCreate %S+ to " .. target:gsub("%p", "%%%0") .. " %(signed with the development key%): HTTP 200",
      r.out)
    local ev = received()
    assert.are.same({ "ContactCreate", "LOCtrigger01" }, { ev.type, ev.locationId })
    for _, k in ipairs { "id", "firstName", "lastName", "email", "phone", "dateAdded" } do
      assert.is_string(ev[k], k)
    end
    assert.are.equal("table", type(ev.tags))
    assert.are.equal(tonumber("600", 8), sys.stat(home .. "/sim-webhook-key.pem").mode)

    assert.are.equal(0, trigger({ "OpportunityStatusUpdate", "--url", target, "--field", "status=won",
      "--field", "monetaryValue=1500" }).code)
    ev = received()
    assert.are.same({ "OpportunityStatusUpdate", "won", 1500 }, { ev.type, ev.status, ev.monetaryValue })
    for _, k in ipairs { "id", "locationId", "contactId", "name", "pipelineId", "pipelineStageId", "source", "dateAdded" } do
      assert.is_string(ev[k], k)
    end

    assert.are.equal(0, trigger({ "INSTALL", "--url", target, "--app", "6740b2b6d9e4a05c1f3a9e21-abcdefgh",
      "--company", "COMPtrigger1" }).code)
    ev = received()
    assert.are.same({ "INSTALL", "6740b2b6d9e4a05c1f3a9e21", "COMPtrigger1", "Location", "ve9EPM428h8vShlRW1KT" },
      { ev.type, ev.appId, ev.companyId, ev.installType, ev.locationId })
    assert.is_string(ev.userId)

    -- without --app: the one app stored in GHLUA_HOME, whose appId the receiver's built-ins match
    local add = run.ghlua({ "app", "add", "mine", "--client-id", "5f0c1a2b3c4d5e6f7a8b9c0d-storedap",
      "--redirect-uri", "http://localhost:3000/cb" }, { env = { GHLUA_HOME = home, GHL_CLIENT_SECRET = "s3cret" } })
    assert.are.equal(0, add.code, add.err)
    assert.are.equal(0, trigger({ "PLAN_CHANGE", "--url", target }).code)
    ev = received()
    assert.are.same({ "PLAN_CHANGE", "5f0c1a2b3c4d5e6f7a8b9c0d" }, { ev.type, ev.appId })
    assert.matches("^%x+$", ev.currentPlanId)
    assert.matches("^%x+$", ev.newPlanId)

    assert.are.equal(0, trigger({ "UNINSTALL", "--url", target, "--agency", "--company", "COMPtrigger1" }).code)
    ev = received()
    assert.are.same({ "UNINSTALL", "COMPtrigger1" }, { ev.type, ev.companyId })
    assert.is_nil(ev.locationId)

    assert.are.equal(0, trigger({ "InboundMessage", "--url", target, "--field", "body=Are you open?",
      "--field", "meta.source=test", "--field", "attachments=[\"a.png\"]", "--field", "zip=02108",
      "--field", "n=-1.5e3", "--field", "urgent=true", "--field", "note=[draft] call" }).code)
    ev = received()
    assert.are.same({ "InboundMessage", "inbound", "SMS", "Are you open?", { source = "test" }, { "a.png" }, "02108",
      -1500, true, "[draft] call" },
      { ev.type, ev.direction, ev.messageType, ev.body, ev.meta, ev.attachments, ev.zip, ev.n, ev.urgent, ev.note })
    assert.is_string(ev.conversationId)

    -- --print shows the body sent; --key signs with another key
    local other = assert(crypto.generate_key("ed25519"))
    local keyfile = sim.tmpfile { other }
    r = trigger { "NoteCreate", "--url", target, "--print", "--key", keyfile }
    os.remove(keyfile)
    assert.are.equal(0, r.code, r.err)
    local reqs = l.requests()
    l.clear()
    assert.are.equal(reqs[1].body .. "\n", r.out:match("^(.-\n)sent "))
    assert.matches("%(signed with %-%-key%)", r.out)
    assert.is_true(crypto.ed25519_verify(assert(crypto.public_key(other)).pem, reqs[1].body,
      assert(crypto.base64_decode(reqs[1].headers["x-ghl-signature"]))))
  end)

  it("refuses what it cannot send, in one line", function()
    for _, case in ipairs {
      { { "NoSuchEvent" }, 2, "unknown event type 'NoSuchEvent'; one of: ContactCreate, ContactUpdate" },
      { { "OpportunityStatusChange" }, 2, "unknown event type 'OpportunityStatusChange'; did you mean OpportunityStatusUpdate%?" },
      { {}, 2, "webhook trigger needs an event TYPE" },
      { { "ContactCreate", "--agency" }, 2, "%-%-agency goes with INSTALL" },
      { { "ContactCreate", "--field", "novalue" }, 2, "%-%-field takes NAME=VALUE" },
      { { "ContactCreate", "--field", "type=Other" }, 2, "%-%-field cannot change the type" },
      { { "ContactCreate", "--url", "ftp://x" }, 2, "%-%-url must be an http" },
      { { "ContactCreate", "--key", "/no/such/key" }, 2, "%-%-key: cannot read" },
      { { "ContactCreate", "--url", ("http://127.0.0.1:%d/"):format(oauth.free_port()) }, 1,
        "cannot send ContactCreate .*is 'ghlua webhook serve' listening there%? %(%-%-url URL%)" },
    } do
      local r = trigger(case[1])
      assert.are.equal(case[2], r.code, r.err)
      assert.matches("^ghlua: " .. case[3], r.err)
      assert.are.equal(1, select(2, r.err:gsub("\n", "")), r.err)
    end
    -- names are matched without regard to case, and the docs' names for the app events work
    local ok = trigger { "contactcreate", "--url", l.url }
    assert.are.equal(0, ok.code, ok.err)
    assert.are.equal(0, trigger({ "AppInstall", "--url", l.url }).code)
    l.clear()
  end)

  it("makes the key once when several processes need it at the same moment", function()
    local home3 = tmpdir()
    local cmd = {}
    for i = 1, 4 do
      cmd[#cmd + 1] = ("env GHLUA_HOME=%s %s webhook trigger ContactCreate --url %s --field n=%d >/dev/null 2>&1 &")
        :format(q(home3 .. "/new"), q(os.getenv("GHLUA")), q(l.url .. "/race"), i)
    end
    cmd[#cmd + 1] = "wait"
    assert.are.equal(0, run.sh(table.concat(cmd, " ")).code)
    local pub = assert(crypto.public_key(assert(slurp(home3 .. "/new/sim-webhook-key.pem")))).pem
    local files = run.sh("ls -A " .. q(home3 .. "/new")).out
    os.execute("rm -rf " .. q(home3))
    local reqs = l.requests()
    l.clear()
    assert.are.equal(4, #reqs)
    for _, r in ipairs(reqs) do
      assert.is_true(crypto.ed25519_verify(pub, r.body, assert(crypto.base64_decode(r.headers["x-ghl-signature"]))))
    end
    -- no temporary file left behind
    assert.are.equal("sim-webhook-key.pem\n", files)
  end)

  it("refuses to use a development key that is not private", function()
    assert(sys.chmod(home, tonumber("755", 8)))
    local r = trigger { "ContactCreate", "--url", l.url }
    assert(sys.chmod(home, tonumber("700", 8)))
    assert.are.equal(1, r.code)
    assert.matches("cannot use the webhook development key: .* is readable by others %(mode 0755%); run: chmod 700",
      r.err)
    assert.are.same({}, l.requests())
  end)
end)

describe("legacy RSA signatures", function()
  it("are accepted only with --legacy-rsa, and the simulator's verify with its RSA key", function()
    local home, h = tmpdir(), recorder()
    local rpriv, rpub = assert(crypto.generate_key("rsa", 2048))
    local strict = serve({ "--port", "0", "--handler", h.path }, { GHLUA_HOME = home })
    local legacy = serve({ "--port", "0", "--handler", h.path, "--legacy-rsa", "--rsa-public-key", rpub },
      { GHLUA_HOME = home })
    local body, id = event { type = "ContactCreate", locationId = "L1" }
    local hdr = { ["X-WH-Signature"] = assert(webhooks.sign(body, rpriv, "rsa")) }
    local r1, j1 = deliver(strict.url, body, hdr)
    local r2 = deliver(legacy.url, body, hdr)
    local bad = event { type = "ContactCreate", locationId = "L1" }
    local r3, j3 = deliver(legacy.url, bad, hdr)
    strict.stop()
    legacy.stop()
    assert.are.same({ 401, "legacy_only" }, { r1.status, j1.error })
    assert.are.equal(200, r2.status)
    assert.are.same({ 401, "invalid" }, { r3.status, j3.error })
    local recs = h.records()
    assert.are.same({ 1, id, "rsa" }, { #recs, recs[1].id, recs[1].verified })
    local v = run.ghlua({ "webhook", "verify", "--legacy-rsa", "--signature", hdr["X-WH-Signature"], "--public-key", rpub },
      { stdin = body, env = { GHLUA_HOME = home } })
    assert.are.equal(0, v.code, v.err)
    h.remove()

    -- the simulator: --webhook-key loads our key, --webhook-legacy-rsa adds X-WH-Signature
    local priv = assert(crypto.generate_key("ed25519"))
    local keyfile = os.tmpname()
    local f = assert(io.open(keyfile, "w"))
    f:write(priv)
    f:close()
    local h2 = recorder()
    local srv = serve({ "--port", "0", "--handler", h2.path, "--public-key", assert(crypto.public_key(priv)).spki },
      { GHLUA_HOME = home })
    local s = sim.start { "--webhook-url", ("http://127.0.0.1:%d/"):format(srv.port), "--webhook-key", keyfile,
      "--webhook-legacy-rsa" }
    os.remove(keyfile)
    assert.are.equal(assert(crypto.public_key(priv)).spki, s.ready.webhookPublicKeySpki)
    local resp = assert(http.request { method = "POST", url = s.url .. "/contacts/", headers = s.headers(),
      json = { locationId = s.location, firstName = "Rsa" } })
    assert.are.equal(201, resp.status)
    local rec = wait_until(function() return h2.records()[1] end, "the event")
    local row = cjson.decode(run.ghlua({ "webhook", "show", rec.id, "--json" }, { env = { GHLUA_HOME = home } }).out)
    local rv = run.ghlua({ "webhook", "verify", "--legacy-rsa", "--signature", row.headers["x-wh-signature"],
      "--public-key", s.ready.webhookRsaPublicKey }, { stdin = row.body, env = { GHLUA_HOME = home } })
    srv.stop()
    s.stop()
    h2.remove()
    os.execute("rm -rf " .. q(home))
    assert.are.equal(0, rv.code, rv.err)
  end)
end)

describe("the simulator with a slow or dead receiver", function()
  it("keeps answering API requests at once", function()
    local server = require "ghl.server"
    -- listening but never served: connections are accepted, never answered
    local hole = assert(server.listen { port = 0, handler = function() return { status = 200 } end })
    local dead = oauth.free_port()
    for _, target in ipairs { hole.url .. "/", ("http://127.0.0.1:%d/"):format(dead) } do
      local s = sim.start { "--webhook-url", target }
      for i = 1, 5 do
        local resp = assert(http.request { method = "POST", url = s.url .. "/contacts/", headers = s.headers(),
          json = { locationId = s.location, firstName = "N" .. i }, timeout = 5 })
        assert.are.equal(201, resp.status)
      end
      local info = assert(http.request { url = s.url .. "/__sim/webhooks", timeout = 5 }):json()
      s.stop()
      assert.are.equal(5, info.stats.emitted)
      if target == hole.url .. "/" then
        -- every create was answered while its delivery was still unanswered
        -- (delivering inline would have waited out each one's timeout)
        assert.are.same({ 5, 0, 0, 0 }, { info.queued + info.inFlight, info.stats.delivered,
          info.stats.retried, info.stats.failed }, target)
      end   -- a refused connection fails at once: the five 201s are the behaviour
    end
    hole:close()
  end)
end)

describe("INSTALL and UNINSTALL", function()
  local o, srv, h

  -- The simulator must know the receiver's port and the receiver the
  -- simulator's URL, so the port is chosen first (support.oauth.free_port:
  -- below the ephemeral range); if it was taken before serve bound it,
  -- start both again on another.
  local function start(sim_args, user_type)
    for attempt = 1, 5 do
      local port = oauth.free_port()
      local argv = { "--webhook-url", ("http://127.0.0.1:%d/"):format(port) }
      for _, a in ipairs(sim_args) do argv[#argv + 1] = a end
      o = oauth.start(argv)
      h = recorder()
      local ok, err = pcall(serve, { "--port", tostring(port), "--handler", h.path, "--public-key",
        o.sim.ready.webhookPublicKeySpki }, { GHLUA_HOME = o.home, GHLUA_API_BASE = o.sim.url, GHL_CLIENT_SECRET = o.secret })
      if ok then
        srv = err
        break
      end
      o.stop()
      h.remove()
      if attempt == 5 or not tostring(err):find("Address already in use", 1, true) then error(err, 0) end
    end
    o.add_app(user_type == "Company" and "contacts oauth" or nil)
  end

  local function tokens()
    local r = o.ghlua { "auth", "status", "--json" }
    assert.are.equal(0, r.code, r.err)
    return cjson.decode(r.out)
  end

  after_each(function()
    srv.stop()
    o.stop()
    h.remove()
  end)

  it("sends INSTALL on consent, gives ctx.client the location's token, and UNINSTALL marks it uninstalled", function()
    start { "--auto-approve" }
    assert.are.equal(0, o.login().code)
    local app_id = o.client_id:match("^[^-]+")
    local ins = wait_until(function()
      return h.find(function(r) return r.type == "INSTALL" end)[1]
    end, "INSTALL")
    assert.are.same({ app_id, o.sim.location, o.sim.company }, { ins.event.appId, ins.event.locationId, ins.event.companyId })
    -- a sub-account install: the login stored the location's token itself
    -- (before or after the INSTALL arrived), so nothing is minted
    wait_until(function()
      return srv.output():find("INSTALL on location " .. o.sim.location .. ": a token of app app1 is stored already", 1, true)
    end, "the INSTALL to find the login's token")
    assert.are.equal(0, o.stats().oauth.location_tokens)

    -- a handler's ctx.client talks for the event's location with the stored token
    local resp = assert(http.request { method = "POST", url = o.sim.url .. "/__sim/webhooks",
      json = { type = "ContactCreate", locationId = o.sim.location, want_client = true } })
    assert.are.equal(202, resp.status)
    local rec = wait_until(function()
      return h.find(function(r) return r.event.want_client end)[1]
    end, "the client event")
    local tok = o.ghlua { "auth", "token", "--location", o.sim.location }
    assert.are.same({ o.sim.location, tok.out }, { rec.client_location, rec.client_token .. "\n" })

    resp = assert(http.request { method = "POST", url = o.sim.url .. "/__sim/uninstall",
      json = { locationId = o.sim.location } })
    assert.are.equal(200, resp.status, resp.body)
    wait_until(function()
      return h.find(function(r) return r.type == "UNINSTALL" end)[1]
    end, "UNINSTALL")
    local st = tokens()
    assert.are.same({ 1, "uninstalled" }, { #st, st[1].status })
    assert.matches("UNINSTALL webhook", st[1].note)
    local after = o.ghlua { "auth", "token", "--location", o.sim.location }
    assert.are.equal(1, after.code)
    assert.matches("uninstalled", after.err)
    assert.matches("UNINSTALL: marked 1 stored token of location", srv.output())
  end)

  -- The stored tokens by type: {Company = {rows}, Location = {rows}}.
  local function by_type()
    local t = { Company = {}, Location = {} }
    for _, row in ipairs(tokens()) do
      t[row.type] = t[row.type] or {}
      table.insert(t[row.type], row)
    end
    return t
  end

  local function sim_webhooks()
    return assert(http.request { url = o.sim.url .. "/__sim/webhooks", timeout = 10 }):json()
  end

  local function agency_login()
    local r = o.ghlua({ "auth", "login", "--app", "app1", "--user-type", "Company" },
      { env = { BROWSER = "curl -sfL -o /dev/null" } })
    assert.are.equal(0, r.code, r.err)
  end

  it("mints a location token per approved location of a bulk install, once", function()
    start({ "--app-type", "Company", "--locations", "2" }, "Company")
    -- the consent approves the second location only (its id is known once the simulator runs)
    local target, other = o.sim.ready.locations[2].id, o.sim.ready.locations[3].id
    o.sim.oauth { auto_approve = "company:" .. target }
    agency_login()
    local row = wait_until(function()
      return by_type().Location[1]
    end, "the minted location token")
    assert.are.same({ target, "ok" }, { row.resource, row.status })
    wait_until(function() return sim_webhooks().stats.delivered == 2 end, "both INSTALLs delivered")
    assert.are.same({ 1, 1 }, { #by_type().Company, #by_type().Location })
    assert.matches("INSTALL: stored a location token for " .. target, srv.output())
    assert.matches("INSTALL on company " .. o.sim.company .. ": the agency install", srv.output())

    -- another INSTALL of the same location (a new webhookId): nothing minted
    local app_id = o.client_id:match("^[^-]+")
    local resp = assert(http.request { method = "POST", url = o.sim.url .. "/__sim/webhooks",
      json = { type = "INSTALL", appId = app_id, companyId = o.sim.company, locationId = target } })
    assert.are.equal(202, resp.status)
    wait_until(function()
      return srv.output():find("INSTALL on location " .. target .. ": a token of app app1 is stored already", 1, true)
    end, "the repeated INSTALL")
    assert.are.equal(1, o.stats().oauth.location_tokens)

    -- an INSTALL for a location HighLevel has not installed the app on:
    -- the mint is refused, the event fails and asks for a redelivery
    resp = assert(http.request { method = "POST", url = o.sim.url .. "/__sim/webhooks",
      json = { type = "INSTALL", appId = app_id, companyId = o.sim.company, locationId = other } })
    local id = resp:json().webhookId
    wait_until(function() return srv.output():find("429 INSTALL " .. id, 1, true) end, "the refused mint")
    assert.matches("The app is not installed on this location", srv.output())
    local ev = cjson.decode(o.ghlua({ "webhook", "show", id, "--json" }).out)
    assert.are.equal("failed", ev.status)
    assert.are.same({ 1, 1 }, { #by_type().Company, #by_type().Location })
  end)

  it("bulk-installs 300 locations: one token each, throttled, none minted twice", function()
    -- a 2 s burst window: 300 mints need three of them, in the Company's bucket
    start({ "--app-type", "Company", "--auto-approve", "--locations", "299", "--rate-interval-ms", "2000",
            "--webhook-retry-delay", "1" }, "Company")
    agency_login()
    local t = wait_until(function()
      local t = by_type()
      return #t.Location == 300 and t
    end, "300 location tokens", 120, 0.5)
    assert.are.equal(1, #t.Company)
    local want, got = {}, {}
    for _, loc in ipairs(o.sim.ready.locations) do want[#want + 1] = loc.id end
    for _, row in ipairs(t.Location) do
      assert.are.equal("ok", row.status)
      got[#got + 1] = row.resource
    end
    table.sort(want)
    table.sort(got)
    assert.are.same(want, got)

    -- one Company INSTALL and 300 location INSTALLs, each delivered once
    local wh = wait_until(function()
      local w = sim_webhooks()
      return w.stats.delivered == 301 and w
    end, "301 deliveries", 30, 0.2)
    assert.are.same({ 301, 0, 0, 0 }, { wh.stats.emitted, wh.stats.retried, wh.stats.failed, wh.stats.rejected })
    local events = cjson.decode(o.ghlua({ "webhook", "list", "--type", "INSTALL", "--json" }).out)
    assert.are.equal(301, #events)
    local agency, located = 0, {}
    for _, e in ipairs(events) do
      assert.are.equal("handled", e.status)
      if e.location_id then located[e.location_id] = (located[e.location_id] or 0) + 1 else agency = agency + 1 end
    end
    assert.are.equal(1, agency)
    for _, id in ipairs(want) do assert.are.equal(1, located[id], id) end

    -- throttled: 300 mints, not one 429 in the simulator's log
    local st = o.stats()
    assert.are.same({ 300, 0 }, { st.oauth.location_tokens, st.rateLimited })
    assert.is_nil(st.status["429"])
    local log = assert(http.request { url = o.sim.url .. "/__sim/requests",
      query = { path = "/oauth/locationToken" } }):json().requests
    assert.are.equal(300, #log)
    for _, e in ipairs(log) do assert.are.equal(200, e.status) end

    -- deliveries that come again: the same webhookIds are refused as
    -- duplicates, new ones find the stored tokens; nothing is minted
    local app_id = o.client_id:match("^[^-]+")
    for i = 1, 5 do
      local e = events[i * 50]
      for _, fields in ipairs { { webhookId = e.id }, {} } do
        fields.type, fields.appId, fields.companyId, fields.locationId = "INSTALL", app_id, o.sim.company, e.location_id
        local resp = assert(http.request { method = "POST", url = o.sim.url .. "/__sim/webhooks", json = fields })
        assert.are.equal(202, resp.status)
      end
    end
    wh = wait_until(function()
      local w = sim_webhooks()
      return w.stats.delivered + w.stats.rejected == 311 and w
    end, "the repeated deliveries", 30, 0.2)
    assert.are.same({ 306, 5 }, { wh.stats.delivered, wh.stats.rejected })
    assert.are.equal(300, o.stats().oauth.location_tokens)
    local after = by_type()
    assert.are.same({ 1, 300 }, { #after.Company, #after.Location })
    local _, stored = srv.output():gsub("a token of app app1 is stored already", "")
    assert.are.equal(5, stored)
  end)

  it("keeps an INSTALL that came before the agency login pending, across a restart", function()
    start({ "--app-type", "Company", "--locations", "1", "--webhook-retry-delay", "1" }, "Company")
    local target = o.sim.ready.locations[2].id
    local app_id = o.client_id:match("^[^-]+")
    local resp = assert(http.request { method = "POST", url = o.sim.url .. "/__sim/webhooks",
      json = { type = "INSTALL", appId = app_id, companyId = o.sim.company, locationId = target } })
    local id = resp:json().webhookId
    wait_until(function() return srv.output():find("(token queued)", 1, true) end, "the queued INSTALL")
    assert.matches("no agency %(Company%) token stored for this app yet", srv.output())
    local function status() return cjson.decode(o.ghlua({ "webhook", "show", id, "--json" }).out).status end
    assert.are.equal("pending", status())
    -- the receiver stops; the agency consents (approving that location) while it is down
    srv.stop()
    o.sim.oauth { auto_approve = "company:" .. target }
    agency_login()
    assert.are.equal(0, #by_type().Location)
    srv = serve({ "--port", tostring(srv.port), "--public-key", o.sim.ready.webhookPublicKeySpki },
      { GHLUA_HOME = o.home, GHLUA_API_BASE = o.sim.url, GHL_CLIENT_SECRET = o.secret })
    local row = wait_until(function() return by_type().Location[1] end, "the resumed mint")
    assert.are.equal(target, row.resource)
    assert.matches("1 INSTALL event left pending", srv.output())
    assert.are.equal("handled", status())
    assert.are.equal(1, o.stats().oauth.location_tokens)
  end)
end)

describe("the store's events table", function()
  local dir

  before_each(function() dir = tmpdir() end)
  after_each(function() os.execute("rm -rf " .. q(dir)) end)

  it("de-duplicates on the id and lets only a failed event be retried", function()
    local db = assert(store.open(dir .. "/ghlua.db"))
    local ev = { id = "w1", type = "ContactCreate", location_id = "L1", body = '{"a":1}\0tail', headers = "{}",
      verified = true }
    assert.is_true(db:put_event(ev))
    assert.is_false(db:put_event(ev))
    assert.are.equal('{"a":1}\0tail', db:get_event("w1").body)
    assert.is_false(db:retry_event("w1"))
    assert.is_true(db:set_event_status("w1", "failed", "boom"))
    assert.is_true(db:retry_event("w1"))
    assert.is_false(db:retry_event("w1"))
    local row = db:get_event("w1")
    assert.are.same({ "received", 2 }, { row.status, row.attempts })
    assert.is_true(db:put_event { id = "w2", type = "INSTALL", body = "{}", received_at = 1000 })
    assert.are.same({ "w2" }, { db:list_events { type = "INSTALL" }[1].id })
    assert.are.same({ "w1" }, { db:list_events { since = 2000 }[1].id })
    assert.are.equal(1, #db:list_events { limit = 1 })
    assert.has_error(function() db:put_event { id = "x" } end)
    db:close()
  end)

  it("migrates a schema 1 store, keeping its tokens", function()
    if not run.sh("command -v sqlite3").out:match("sqlite3") then
      pending("no sqlite3 command")
      return
    end
    local path = dir .. "/ghlua.db"
    -- schema 1 as ghlua 0.1 made it (src/store.c schema_v1)
    local sql = [[
CREATE TABLE apps(name TEXT PRIMARY KEY NOT NULL, client_id TEXT NOT NULL, client_secret TEXT, redirect_uri TEXT,
  scopes TEXT, whitelabel BOOLEAN NOT NULL DEFAULT 0, user_type TEXT, created_at NUMERIC NOT NULL, updated_at NUMERIC NOT NULL);
CREATE TABLE tokens(app TEXT NOT NULL, resource_id TEXT NOT NULL, resource_type TEXT NOT NULL, kind TEXT NOT NULL,
  access_token TEXT, refresh_token TEXT, expires_at NUMERIC, scope TEXT, requested_scope TEXT, company_id TEXT,
  location_id TEXT, user_id TEXT, user_type TEXT, name TEXT, status TEXT NOT NULL, note TEXT, created_at NUMERIC NOT NULL,
  refreshed_at NUMERIC, refreshed_by INTEGER, previous_refresh_token TEXT, previous_refreshed_at NUMERIC,
  PRIMARY KEY(app, resource_id));
CREATE INDEX tokens_resource ON tokens(resource_id);
CREATE TABLE claims(app TEXT NOT NULL, resource_id TEXT NOT NULL, pid INTEGER NOT NULL, host TEXT NOT NULL,
  nonce INTEGER NOT NULL, phase TEXT NOT NULL, started_at NUMERIC NOT NULL, lease_until NUMERIC NOT NULL,
  PRIMARY KEY(app, resource_id));
CREATE TABLE kv(ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, updated_at NUMERIC NOT NULL, PRIMARY KEY(ns, key));
INSERT INTO tokens(app, resource_id, resource_type, kind, access_token, status, created_at)
  VALUES('acme', 'LOC1', 'Location', 'oauth', 'at-1', 'ok', 1);
PRAGMA application_id = 1734896737;
PRAGMA user_version = 1;
]]
    local r = run.sh("umask 077 && sqlite3 " .. q(path), { stdin = sql })
    assert.are.equal(0, r.code, r.err)
    local db = assert(store.open(path))
    assert.are.equal("at-1", db:get_token("acme", "LOC1").access_token)
    assert.is_true(db:put_event { id = "w1", body = "{}" })
    db:close()
    assert.are.equal("2\n", run.sh("sqlite3 " .. q(path) .. " 'PRAGMA user_version'").out)
  end)
end)

describe("webhooks.signature_headers", function()
  it("signs a delivery as HighLevel does: X-GHL-Signature, and X-WH-Signature with an RSA key", function()
    local epriv, epub = assert(crypto.generate_key("ed25519"))
    local rpriv, rpub = assert(crypto.generate_key("rsa", 2048))
    local body = '{"type":"ContactCreate","locationId":"L1"}'
    local h = assert(webhooks.signature_headers(body, epriv))
    assert.are.same({ "X-GHL-Signature" }, (function() local k = {} for n in pairs(h) do k[#k + 1] = n end return k end)())
    assert.are.equal("ed25519", webhooks.verify(body, { ["x-ghl-signature"] = h["X-GHL-Signature"] }, { public_key = epub }))
    h = assert(webhooks.signature_headers(body, epriv, rpriv))
    assert.are.equal("rsa", webhooks.verify(body, { ["x-wh-signature"] = h["X-WH-Signature"] },
      { legacy_rsa = true, rsa_public_key = rpub }))
    local ok, err = webhooks.verify(body .. " ", { ["x-ghl-signature"] = h["X-GHL-Signature"] }, { public_key = epub })
    assert.is_nil(ok)
    assert.are.equal("invalid", err.code)
    ok, err = webhooks.signature_headers(body, "not a key")
    assert.is_nil(ok)
    assert.is_truthy(err)
  end)
end)

describe("the webhook signing key check", function()
  it("takes an Ed25519 private key only, and says what else it was given, for the receiver and the simulator", function()
    local priv = assert(crypto.generate_key("ed25519"))
    local info = assert(webhooks.ed25519_private(priv))
    assert.are.equal("ed25519", info.type)
    local rsa = assert(crypto.generate_key("rsa", 2048))
    assert.are.same({ nil, "rsa", "type" }, { webhooks.ed25519_private(rsa) })
    local _, _, what = webhooks.ed25519_private(info.pem)
    assert.are.equal("public", what)
    _, _, what = webhooks.ed25519_private("not a key")
    assert.are.equal("key", what)
    -- the same check behind `ghlua sim --webhook-key`: one line, exit 2
    local dir = tmpdir()
    local f = assert(io.open(dir .. "/rsa.pem", "w")); f:write(rsa); f:close()
    local r = run.sh(("%s sim --port 0 --webhook-key %s"):format(q(os.getenv("GHLUA")), q(dir .. "/rsa.pem")))
    assert.are.same({ 2, "ghlua: --webhook-key must be an Ed25519 key, got rsa\n" }, { r.code, r.err })
    os.execute("rm -rf " .. q(dir))
  end)
end)
