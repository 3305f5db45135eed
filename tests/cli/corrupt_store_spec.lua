-- A damaged token store as a user meets it: every command that reads or
-- writes the store prints the store's one-line message and exits 1 (no Lua
-- traceback, nothing on stdout), `auth doctor` explains it and says what to
-- do, `webhook serve` refuses to start (and a receiver whose store fails
-- answers 429, so HighLevel redelivers, with one log line), and the file is
-- left byte for byte as it was. Three kinds of damage:
-- pages overwritten in the middle, a truncated file, and garbage.
local run = require "support.run"
local store = require "ghl.store"
local sys = require "ghl.sys"
local crypto = require "ghl.crypto"
local webhooks = require "ghl.webhooks"
local cjson = require "cjson"

local q = run.quote
local PAGE = 4096

-- A store with an app, a token, a PIT and enough events to span many pages.
local function make_store(path)
  local db = assert(store.open(path))
  assert(db:put_app { name = "app1", client_id = "6740b2b6d9e4a05c1f3a9e21-m3kq8zpx",
    client_secret = "sim-client-secret-0123456789-SECR", redirect_uri = "http://localhost:1/callback" })
  assert(db:put_token { app = "app1", resource_id = "LOC1", resource_type = "Location", access_token = "at-0123456789",
    refresh_token = "rt-0123456789", expires_at = os.time() + 86000, status = "ok" })
  for i = 1, 150 do assert(db:put_event { id = "e" .. i, type = "ContactCreate", body = ("x"):rep(400) }) end
  db:close()
end

local function slurp(path) return run.slurp(path) end

local function write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

-- The three kinds of damage: {name, SQLite's message, function(bytes) ->
-- damaged bytes}.
local DAMAGE = {
  { "pages overwritten in the middle", "database disk image is malformed", function(b)
      local pages = #b // PAGE
      local junk = ("\222\173\190\239"):rep(PAGE // 4)
      local out = { b:sub(1, PAGE) }
      for p = 2, pages do out[p] = p <= pages // 2 + 1 and junk or b:sub((p - 1) * PAGE + 1, p * PAGE) end
      return table.concat(out)
    end },
  { "a truncated file", "database disk image is malformed", function(b) return b:sub(1, PAGE + 100) end },
  { "garbage", "file is not a database", function(b)
      local out = {}
      for i = 1, #b // PAGE do out[i] = assert(sys.random_bytes(PAGE)) end
      return table.concat(out)
    end },
}

local SECRET_ENV = { GHL_CLIENT_SECRET = "sim-client-secret-0123456789-SECR", GHL_PIT = "pit-0123456789abcdef" }

-- Commands that use the store; each must fail the same way.
local COMMANDS = {
  { "auth", "status" }, { "auth", "status", "--json" }, { "app", "list" }, { "app", "list", "--json" },
  { "auth", "token" }, { "auth", "token", "--location", "LOC1" }, { "api", "GET", "/contacts/", "--location", "LOC1" },
  { "app", "add", "app2", "--client-id", "a-b", "--redirect-uri", "http://localhost:1/cb" },
  { "app", "remove", "app1" }, { "auth", "refresh" }, { "auth", "logout", "--location", "LOC1" },
  { "auth", "pit", "add", "p1", "--location", "LOC2" }, { "auth", "locations" },
  { "webhook", "list" }, { "webhook", "show", "e1" },
}

describe("a damaged token store", function()
  local dir, path, good

  setup(function()
    dir = require("support.fixture").tmpdir()
    path = dir .. "/ghlua.db"
    make_store(path)
    good = slurp(path)
    assert(#good >= 16 * PAGE, "the store should span many pages, has " .. #good .. " bytes")
  end)
  teardown(function() os.execute("rm -rf " .. q(dir)) end)

  local function ghlua(args, env)
    local e = { GHLUA_HOME = dir, GHLUA_API_BASE = "http://127.0.0.1:9", no_proxy = "127.0.0.1" }
    for k, v in pairs(SECRET_ENV) do e[k] = v end
    for k, v in pairs(env or {}) do e[k] = v end
    return run.ghlua(args, { env = e })
  end

  -- The damaged bytes are in place, with no sidecar files.
  local function damage(fn)
    for _, side in ipairs { "-wal", "-shm", "-journal" } do os.remove(path .. side) end
    local bad = fn(good)
    write(path, bad)
    assert(sys.chmod(path, tonumber("600", 8)))
    return bad
  end

  for _, d in ipairs(DAMAGE) do
    describe("(" .. d[1] .. ")", function()
      local bad
      before_each(function() bad = damage(d[3]) end)

      it("makes every command print the store's one line and exit 1, leaving the file as it was", function()
        for _, args in ipairs(COMMANDS) do
          local r = ghlua(args)
          local what = table.concat(args, " ")
          assert.are.equal(1, r.code, what .. ": " .. r.out .. r.err)
          assert.matches("^ghlua: token store " .. path:gsub("%p", "%%%0")
            .. ": [^\n]+; the file was left unchanged: move it aside to start a new store\n$", r.err, nil, nil, what)
          assert.is_truthy(r.err:find(d[2], 1, true), what .. ": " .. r.err)
          assert.are.equal("", r.out, what)
          assert.is_true(slurp(path) == bad, what .. " changed the file")
        end
      end)

      it("is explained by auth doctor, with what to do", function()
        local r = ghlua { "auth", "doctor" }
        assert.are.equal(1, r.code, r.out .. r.err)
        assert.are.equal("", r.err)
        assert.matches("^token store " .. path:gsub("%p", "%%%0") .. ": [^\n]+\n  fix: its tokens cannot be read: move it aside with 'mv "
          .. path:gsub("%p", "%%%0") .. " " .. path:gsub("%p", "%%%0") .. "%.damaged', then store the app again", r.out)
        assert.is_true(slurp(path) == bad)
      end)
    end)
  end

  it("makes webhook serve refuse to start, and a receiver answer 429 with one log line", function()
    local bad = damage(DAMAGE[1][3])
    local r = ghlua { "webhook", "serve", "--port", "0" }
    assert.are.equal(1, r.code, r.out .. r.err)
    assert.matches("^ghlua: token store [^\n]+malformed[^\n]+\n$", r.err)
    assert.is_true(slurp(path) == bad)
    -- a store that fails after the receiver started: HighLevel is told to
    -- send the event again, and the log has one line
    local db = assert(store.open(path))
    local lines = {}
    local priv = assert(crypto.generate_key("ed25519"))
    local rec = webhooks.receiver { store = db, public_key = assert(crypto.public_key(priv)).pem,
      log = function(level, line) lines[#lines + 1] = level .. " " .. line end }
    local body = cjson.encode { type = "ContactCreate", locationId = "LOC1", webhookId = "w-damaged",
      timestamp = webhooks.timestamp() }
    local resp = rec:handle { method = "POST", path = "/", remote = "127.0.0.1", body = body,
      headers = { ["content-type"] = "application/json", ["x-ghl-signature"] = assert(webhooks.sign(body, priv)) } }
    db:close()
    assert.are.equal(429, resp.status, resp.body)
    assert.are.equal("store", cjson.decode(resp.body).error)
    assert.are.equal(1, #lines, table.concat(lines, "\n"))
    assert.matches("^error 429 POST / from 127%.0%.0%.1: cannot store event w%-damaged: token store .*malformed", lines[1])
    assert.is_true(slurp(path) == bad)
  end)
end)
