-- Webhook receivers stay stateless: two `ghlua webhook serve` processes
-- with separate GHLUA_HOMEs share one PostgreSQL token store (the same
-- GHLUA_STORE and key) and nothing else. Signed deliveries (our own
-- Ed25519 key, trusted with --public-key) are sent to both, each event
-- four times (twice to each receiver), by four senders at once in
-- different orders: every event is stored once and handled once across
-- the receivers (put_event de-duplicates on webhookId in the database:
-- a primary key and ON CONFLICT DO NOTHING, not a read then an insert),
-- every other delivery is answered 409, and an INSTALL that reaches both
-- mints exactly one location token (the simulator counts mints).
local oauth = require "support.oauth"
local pg = require "support.pg"
local run = require "support.run"
local sim = require "support.sim"
local crypto = require "ghl.crypto"
local webhooks = require "ghl.webhooks"
local sys = require "ghl.sys"
local cjson = require "cjson"

local q, slurp = run.quote, run.slurp
local KEY = ("0123456789abcdef"):rep(4)
local EVENTS = 40

local function wait_until(f, what, limit)
  local deadline = sys.now() + (limit or 20)
  while true do
    local v = f()
    if v then return v end
    assert(sys.now() < deadline, "timed out waiting for " .. what)
    sys.sleep(0.05)
  end
end

local function alive(pid) return pid ~= nil and sys.kill(pid, 0) == true end

-- `ghlua webhook serve --port 0 ARGV...` in the background with env; waits
-- for its ready file. Returns {url, pid, output(), stop()}.
local function serve(argv, env)
  local base = os.tmpname()
  local ready, log, pidfile = base .. ".ready", base .. ".log", base .. ".pid"
  local parts = { "env", "no_proxy=" .. sim.NO_PROXY, "NO_PROXY=" .. sim.NO_PROXY }
  for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. q(v) end
  for _, a in ipairs { os.getenv("GHLUA"), "webhook", "serve", "--port", "0", "--path", "/hooks", "--ready-file", ready } do
    parts[#parts + 1] = q(a)
  end
  for _, a in ipairs(argv) do parts[#parts + 1] = q(a) end
  assert(os.execute(table.concat(parts, " ") .. " </dev/null >" .. q(log) .. " 2>&1 & echo $! >" .. q(pidfile)))
  local info = wait_until(function()
    local pid = tonumber((slurp(pidfile) or ""):match("%d+"))
    if pid and not alive(pid) and slurp(ready) == "" then error("webhook serve exited: " .. slurp(log)) end
    local t = slurp(ready)
    return t ~= "" and cjson.decode(t)
  end, "webhook serve to get ready")
  local s = { url = ("http://127.0.0.1:%d/hooks"):format(info.port), pid = math.tointeger(info.pid) }
  function s.output() return slurp(log) or "" end
  function s.stop()
    if alive(s.pid) then sys.kill(s.pid, 15) end
    local limit = sys.now() + 5
    while alive(s.pid) and sys.now() < limit do sys.sleep(0.02) end
    if alive(s.pid) then sys.kill(s.pid, 9) end
    local out = s.output()
    for _, p in ipairs { base, ready, log, pidfile } do os.remove(p) end
    return out
  end
  return s
end

-- A sender: POSTs every delivery of its file (lines "body<TAB>signature")
-- to url in an order shuffled by seed; prints "status webhookId" per line.
local SENDER = [[
local file, url, seed = ...
local http = require "ghl.http"
local list = {}
for line in io.lines(file) do list[#list + 1] = line end
math.randomseed(tonumber(seed))
for i = #list, 2, -1 do
  local j = math.random(i)
  list[i], list[j] = list[j], list[i]
end
for _, line in ipairs(list) do
  local body, sig = line:match("^(.-)\t(.*)$")
  local resp = assert(http.request { method = "POST", url = url, body = body, timeout = 60,
    headers = { ["Content-Type"] = "application/json", ["X-GHL-Signature"] = sig } })
  io.write(resp.status, " ", require("cjson").decode(body).webhookId, "\n")
end
]]

describe("two webhook receivers on one PostgreSQL store", function()
  local server, o, recv, handler_out = nil, nil, {}, nil
  local tmp, clean = require("support.fixture").scratch()


  setup(function()
    server = pg.start()
    local url = server:createdb()
    o = oauth.start { "--app-type", "Company", "--locations", "2", "--auto-approve" }
    o.env.GHLUA_STORE, o.env.GHLUA_STORE_KEY = url, KEY
    o.add_app("contacts oauth")
    local r = o.ghlua({ "auth", "login", "--app", "app1", "--user-type", "Company" },
      { env = { BROWSER = "curl -sfL -o /dev/null" } })
    assert(r.code == 0, r.err)
  end)

  teardown(function()
    for _, s in ipairs(recv) do s.stop() end
    if o then o.stop() end
    if server then server:destroy() end
    clean()
  end)

  it("store and handle each event once across receivers; an INSTALL sent to both mints one token", function()
    local key = assert(crypto.generate_key("ed25519"))
    local spki = assert(crypto.public_key(key)).spki
    handler_out = tmp()
    local handler = tmp(([[
local OUT, WHO = %q, os.getenv("RECEIVER")
return function(event, ctx)
  local f = assert(io.open(OUT, "a"))
  f:write(ctx.id, " ", WHO, "\n")
  f:close()
end
]]):format(handler_out))
    -- two machines: their own GHLUA_HOME each (nothing shared but the store)
    for i = 1, 2 do
      local home = tmp()
      os.remove(home)
      assert(sys.mkdir(home, tonumber("700", 8)))
      recv[i] = serve({ "--handler", handler, "--public-key", spki, "--no-sim-key" }, {
        GHLUA_HOME = home, GHLUA_STORE = o.env.GHLUA_STORE, GHLUA_STORE_KEY = KEY, GHLUA_API_BASE = o.sim.url,
        GHL_CLIENT_SECRET = o.secret, RECEIVER = "r" .. i })
    end
    -- the deliveries: contact events and one INSTALL of the second
    -- location (the agency token is stored; its location token is not)
    local target = o.sim.ready.locations[2].id
    local lines, ids = {}, {}
    local function add(fields)
      fields.webhookId = ("fleet-%03d"):format(#ids + 1)
      fields.timestamp = webhooks.timestamp()
      local body = cjson.encode(fields)
      ids[#ids + 1] = fields.webhookId
      lines[#lines + 1] = body .. "\t" .. assert(webhooks.sign(body, key))
    end
    for i = 1, EVENTS do add { type = "ContactCreate", locationId = o.sim.location, id = "c" .. i } end
    add { type = "INSTALL", appId = o.client_id:match("^[^-]+"), companyId = o.sim.company, locationId = target,
          installType = "Location" }
    local deliveries = tmp(table.concat(lines, "\n") .. "\n")
    local script = tmp(SENDER)
    -- four senders at once: two to each receiver, each in its own order
    local outs, parts = {}, {}
    for k = 1, 4 do
      outs[k] = tmp()
      parts[#parts + 1] = ("env no_proxy=%s %s %s %s %s %d >%s 2>&1 &"):format(sim.NO_PROXY, q(os.getenv("GHLUA")),
        q(script), q(deliveries), q(recv[(k - 1) % 2 + 1].url), k, q(outs[k]))
    end
    assert(os.execute(table.concat(parts, " ") .. " wait"))
    -- each event: one 200 and three 409s over its four deliveries
    local status = {}
    for k = 1, 4 do
      local n = 0
      for st, id in slurp(outs[k]):gmatch("(%d+) (%S+)\n") do
        status[id] = status[id] or {}
        status[id][st] = (status[id][st] or 0) + 1
        n = n + 1
      end
      assert.are.equal(#ids, n, slurp(outs[k]))
    end
    local per_receiver = { r1 = 0, r2 = 0 }
    for _, id in ipairs(ids) do
      assert.are.same({ ["200"] = 1, ["409"] = 3 }, status[id], id)
    end
    -- handled once each across the receivers, by both of them overall
    local handled = {}
    for id, who in slurp(handler_out):gmatch("(%S+) (%S+)\n") do
      handled[id] = (handled[id] or 0) + 1
      per_receiver[who] = per_receiver[who] + 1
    end
    for _, id in ipairs(ids) do assert.are.equal(1, handled[id], id) end
    assert.are.equal(#ids, per_receiver.r1 + per_receiver.r2)
    assert.is_true(per_receiver.r1 > 0 and per_receiver.r2 > 0, cjson.encode(per_receiver))
    -- stored once each, handled
    local r = o.ghlua { "webhook", "list", "--json" }
    assert.are.equal(0, r.code, r.err)
    local list = cjson.decode(r.out)
    assert.are.equal(#ids, #list)
    -- the INSTALL: one location token, minted once
    local minted = wait_until(function()
      local t = cjson.decode(o.ghlua({ "auth", "status", "--json" }).out)
      for _, row in ipairs(t) do if row.type == "Location" and row.resource == target then return row end end
    end, "the location token")
    assert.are.equal("ok", minted.status)
    assert.are.equal(1, o.stats().oauth.location_tokens)
    for _, row in ipairs(list) do assert.are.equal("handled", row.status, row.id) end
    -- and the receivers' own counts agree: each event handled once, the
    -- other three deliveries of each duplicates
    local handled_n, dups, minted_n = 0, 0, 0
    for _, s in ipairs(recv) do
      local out = s.stop()
      local h, d, m = out:match("stopped %((%d+) handled, %d+ rejected, (%d+) duplicates?, %d+ failed; (%d+) location token")
      assert.truthy(h, out)
      handled_n, dups, minted_n = handled_n + tonumber(h), dups + tonumber(d), minted_n + tonumber(m)
    end
    recv = {}
    assert.are.same({ #ids, 3 * #ids, 1 }, { handled_n, dups, minted_n })
  end)
end)
