-- Secrets at rest: a store sealed with GHLUA_STORE_KEY (or a key file)
-- through a real OAuth login, refresh and API call against the simulator;
-- its file holds no secret in clear; a missing, wrong or malformed key is
-- refused before anything is written; an altered or moved sealed value
-- does not open; ghl.crypto.seal/open themselves.
local oauth = require "support.oauth"
local run = require "support.run"
local crypto = require "ghl.crypto"
local sys = require "ghl.sys"
local cjson = require "cjson"

local KEY = ("0123456789abcdef"):rep(4)
local OTHER = ("fedcba9876543210"):rep(4)

-- Every byte of the store: the file and its WAL.
local function store_bytes(o)
  return run.slurp(o.home .. "/ghlua.db") .. "\0" .. run.slurp(o.home .. "/ghlua.db-wal")
end

local function one_line(s)
  return select(2, s:gsub("\n", "")) == 1
end

-- The stored row (secrets opened) of the only token, read with the key.
local function stored(o)
  local r = o.lua([[
    local s = require('ghl.auth').store()
    local t = s:find_tokens{}[1]
    print(require('cjson').encode{ access = t.access_token, refresh = t.refresh_token,
      previous = t.previous_refresh_token or '', secret = s:get_app('app1').client_secret })
  ]])
  assert.are.equal(0, r.code, r.err)
  return cjson.decode(r.out)
end

describe("ghl.crypto.seal and open", function()
  local key = ("k"):rep(32)

  it("round-trips with a version byte and a fresh nonce each time", function()
    local a, b = crypto.seal(key, "refresh-token-value", "row"), crypto.seal(key, "refresh-token-value", "row")
    assert.are.equal(1, a:byte(1))
    assert.are.equal(#"refresh-token-value" + 29, #a)
    assert.are_not.equal(a:sub(2, 13), b:sub(2, 13))
    assert.are.equal("refresh-token-value", crypto.open(key, a, "row"))
    assert.are.equal("", crypto.open(key, crypto.seal(key, "", ""), ""))
  end)

  it("refuses another key, another aad, a flipped bit, a short blob and another version", function()
    local blob = crypto.seal(key, "secret", "row")
    local cases = {
      { ("x"):rep(32), blob, "row", "auth_failed" },
      { key, blob, "other row", "auth_failed" },
      { key, blob:sub(1, 20) .. string.char(blob:byte(21) ~ 1) .. blob:sub(22), "row", "auth_failed" },
      { key, blob:sub(1, -2) .. string.char(blob:byte(-1) ~ 0x80), "row", "auth_failed" },
      { key, blob:sub(1, 10), "row", "bad_length" },
      { key, "\2" .. blob:sub(2), "row", "bad_version" },
    }
    for i, c in ipairs(cases) do
      local plain, err = crypto.open(c[1], c[2], c[3])
      assert.is_nil(plain, "case " .. i)
      assert.are.same({ "crypto", c[4] }, { err.kind, err.code }, "case " .. i)
    end
  end)

  it("raises for a key that is not 32 bytes (a programmer's mistake)", function()
    assert.has_error(function() crypto.seal("short", "x") end)
    assert.has_error(function() crypto.open("short", "x") end)
  end)
end)

describe("a sealed token store", function()
  local o
  before_each(function()
    o = oauth.start { "--auto-approve", "--token-ttl", "2", "--rate-max", "100000" }
    o.env.GHLUA_STORE_KEY = KEY
    o.add_app()
    assert.are.equal(0, o.login().code)
  end)
  after_each(function() o.stop() end)

  it("logs in, refreshes and calls the API, and its file holds no secret in clear", function()
    local first = stored(o)
    sys.sleep(1.6)   -- near expiry: the next use refreshes
    local r = o.lua(([[
      local c = require('ghl').client { location = %q }
      c:get('/contacts/', { locationId = %q, limit = 1 })
      print('ok')
    ]]):format(o.sim.location, o.sim.location))
    assert.are.same({ 0, "ok\n" }, { r.code, r.out }, r.err)
    local now = stored(o)
    assert.are_not.equal(first.refresh, now.refresh)
    assert.are.equal(first.refresh, now.previous)          -- the rotation state, opened
    assert.are.equal(o.secret, now.secret)
    assert.is_true(o.stats().oauth.refresh_ok >= 1)
    local bytes = store_bytes(o)
    for what, v in pairs { access = now.access, refresh = now.refresh, previous = now.previous,
                           old_access = first.access, secret = o.secret } do
      assert.is_nil(bytes:find(v, 1, true), what .. " found in clear in the store file")
    end
    assert.truthy(bytes:find("sealed1:", 1, true))
    local info = o.ghlua { "store", "info" }
    assert.are.equal(0, info.code, info.err)
    assert.truthy(info.out:find("sealed    yes, AES-256-GCM (key id ", 1, true))
  end)

  it("refuses a missing, wrong or malformed key in one line, and writes nothing", function()
    local before = store_bytes(o)
    local cases = {
      { { GHLUA_STORE_KEY = "" }, "is sealed %(key id %x+%), and no key is set" },
      { { GHLUA_STORE_KEY = OTHER }, "GHLUA_STORE_KEY is not the key of token store" },
      { { GHLUA_STORE_KEY = "not-a-key" }, "GHLUA_STORE_KEY is not a store key" },
    }
    for _, c in ipairs(cases) do
      for _, argv in ipairs { { "auth", "status" }, { "auth", "token" }, { "app", "list" } } do
        local r = o.ghlua(argv, { env = c[1] })
        assert.are.equal(1, r.code, r.err)
        assert.truthy(r.err:find(c[2]), r.err)
        assert.truthy(r.err:find("GHLUA_STORE_KEY", 1, true), r.err)
        assert.is_true(one_line(r.err), r.err)
        assert.is_nil(r.err:find("traceback", 1, true))
      end
    end
    assert.is_true(before == store_bytes(o), "a refused open changed the store file")
    local r = o.ghlua { "auth", "token" }
    assert.are.equal(0, r.code, r.err)
  end)

  it("reads its key from a private GHLUA_STORE_KEY_FILE and refuses one others can read", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -m 700 " .. run.quote(dir)))
    local file = dir .. "/store.key"
    local f = assert(io.open(file, "w"))
    f:write(KEY, "\n")
    f:close()
    assert(os.execute("chmod 644 " .. run.quote(file)))
    local env = { GHLUA_STORE_KEY = "", GHLUA_STORE_KEY_FILE = file }
    local r = o.ghlua({ "auth", "token" }, { env = env })
    assert.are.equal(1, r.code)
    assert.truthy(r.err:find("GHLUA_STORE_KEY_FILE: " .. file .. " is readable by others", 1, true), r.err)
    assert.truthy(r.err:find("chmod 600", 1, true), r.err)
    assert(os.execute("chmod 600 " .. run.quote(file)))
    r = o.ghlua({ "auth", "token" }, { env = env })
    assert.are.equal(0, r.code, r.err)
    r = o.ghlua({ "auth", "token" }, { env = { GHLUA_STORE_KEY_FILE = file } })
    assert.are.equal(1, r.code)
    assert.truthy(r.err:find("both GHLUA_STORE_KEY and GHLUA_STORE_KEY_FILE are set", 1, true), r.err)
    os.execute("rm -rf " .. run.quote(dir))
  end)

  it("refuses an altered sealed value, and one moved to another row", function()
    -- Write through the engine itself, below the sealing layer.
    local r = o.lua([[
      local db = assert(require('ghl.store').open(os.getenv('GHLUA_HOME') .. '/ghlua.db'))
      local t = db:find_tokens{}[1]
      local a = db:get_app('app1')
      -- the app's sealed secret copied to another app
      assert(db:put_app{ name = 'copy', client_id = a.client_id, client_secret = a.client_secret })
      -- one byte of the sealed access token changed
      local v = t.access_token
      local i = #v - 5
      t.access_token = v:sub(1, i - 1) .. (v:sub(i, i) == 'A' and 'B' or 'A') .. v:sub(i + 1)
      assert(db:put_token(t))
    ]])
    assert.are.equal(0, r.code, r.err)
    r = o.ghlua { "auth", "token" }
    assert.are.equal(1, r.code)
    assert.truthy(r.err:find("the access token of token app1 " .. o.sim.location .. " does not open", 1, true), r.err)
    assert.is_true(one_line(r.err), r.err)
    r = o.lua("print(require('ghl.auth').store():get_app('copy').client_secret)")
    assert.are.equal(1, r.code)
    assert.truthy(r.err:find("the client secret of app copy does not open", 1, true), r.err)
    r = o.ghlua { "store", "check" }
    assert.are.equal(1, r.code)
    assert.truthy(r.out:find("app copy: the client secret of app copy does not open", 1, true), r.out)
    assert.truthy(r.out:find("token app1 Location " .. o.sim.location .. ": the access token", 1, true), r.out)
  end)
end)

describe("sealing an existing SQLite store", function()
  local o
  before_each(function()
    o = oauth.start { "--auto-approve" }
    o.add_app()
    assert.are.equal(0, o.login().code)
  end)
  after_each(function() o.stop() end)

  it("refuses a key on a store with secrets in clear until 'ghlua store seal', which seals them all", function()
    local clear = stored(o)
    assert.truthy(store_bytes(o):find(clear.refresh, 1, true))
    local keyed = { env = { GHLUA_STORE_KEY = KEY } }
    local before = store_bytes(o)
    local r = o.ghlua({ "auth", "token" }, keyed)
    assert.are.equal(1, r.code)
    assert.truthy(r.err:find("holds its secrets in clear, and GHLUA_STORE_KEY is set", 1, true), r.err)
    assert.truthy(r.err:find("ghlua store seal", 1, true), r.err)
    assert.is_true(before == store_bytes(o))
    r = o.ghlua { "store", "seal" }
    assert.are.equal(2, r.code)
    assert.truthy(r.err:find("GHLUA_STORE_KEY is not set", 1, true), r.err)
    r = o.ghlua({ "store", "seal" }, keyed)
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("1 app secret, 1 token", 1, true), r.out)
    r = o.ghlua({ "store", "seal" }, keyed)
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("sealed already", 1, true), r.out)
    local bytes = store_bytes(o)
    for what, v in pairs { access = clear.access, refresh = clear.refresh, secret = o.secret } do
      assert.is_nil(bytes:find(v, 1, true), what .. " still in clear")
    end
    o.env.GHLUA_STORE_KEY = KEY
    assert.are.same(clear, stored(o))
    r = o.ghlua { "auth", "token" }
    assert.are.equal(0, r.code, r.err)
    o.env.GHLUA_STORE_KEY = nil
    r = o.ghlua { "auth", "token" }
    assert.are.equal(1, r.code)
    assert.truthy(r.err:find("is sealed", 1, true), r.err)
  end)

  it("refuses to open a PostgreSQL-engine store without a key", function()
    -- The real sealing layer over the SQLite engine, told it is PostgreSQL.
    local r = o.lua([[
      local auth = require('ghl.auth')
      local db = assert(require('ghl.store').open(os.getenv('GHLUA_HOME') .. '/pg.db'))
      local pg = setmetatable({ engine = function() return 'postgresql' end }, { __index = function(_, k)
        local v = db[k]
        if type(v) == 'function' then return function(_, ...) return v(db, ...) end end
        return v
      end })
      local ok, err = pcall(auth.checked, pg)
      print(ok, err.kind, err.message, err.hint)
    ]])
    assert.are.equal(0, r.code, r.err)
    assert.truthy(r.out:find("false\tstore\ta postgresql token store needs a key to seal its secrets, and GHLUA_STORE_KEY is not set", 1, true), r.out)
    assert.truthy(r.out:find("ghlua store key new", 1, true), r.out)
  end)
end)
