-- Fuzzing the recipe boundary (ghl.sandbox over ghl._sandbox): random plain
-- values sent into a recipe's state and back, random values made inside it
-- sent out, and random paths asked of the host. Under the AddressSanitizer
-- build (make test-asan) this is where a copying bug would show. Each case
-- asserts what must hold whatever the input: the host never crashes, a
-- value either crosses intact or is refused with a one-line reason, and
-- nothing ever reaches a second host. Seeds are fixed, so a failure can be
-- replayed; FUZZ_SEED and FUZZ_N override them.
local sandbox = require "ghl.sandbox"
local sim = require "support.sim"
local listener = require "support.listener"
local ghl = require "ghl"

local SEED = tonumber(os.getenv("FUZZ_SEED")) or 20261202
local N = tonumber(os.getenv("FUZZ_N")) or 300

-- A box whose recipe is `body` (the main function's body).
local function box_with(body, manifest, o)
  local b = sandbox.new(o or {})
  local info = b:load("recipe " .. (manifest or "{ name = 'fuzz', writes = false }") ..
    "\nreturn function(params, client)\n" .. body .. "\nend\n", "=fuzz")
  assert(info.has_main, "the fuzz recipe did not load")
  b:policy { manifest = { name = "fuzz", writes = false, scopes = { "contacts.readonly" } } }
  return b
end

-- ---- Random values ----

local BYTES = {}
for i = 0, 255 do BYTES[#BYTES + 1] = string.char(i) end

local function rstring(rnd)
  local n = rnd(0, 40)
  local t = {}
  for i = 1, n do t[i] = BYTES[rnd(1, 256)] end
  return table.concat(t)
end

local NUMBERS = { 0, -0.0, 1, -1, math.maxinteger, math.mininteger, 2 ^ 53, 1e308, -1e308, 1 / 0, -1 / 0, 0.1 }

local function rvalue(rnd, depth)
  local k = rnd(1, depth > 0 and 8 or 6)
  if k == 1 then return nil
  elseif k == 2 then return rnd(0, 1) == 1
  elseif k == 3 then return NUMBERS[rnd(1, #NUMBERS)]
  elseif k == 4 then return rnd(-1000000, 1000000) + (rnd(0, 1) == 1 and 0.5 or 0)
  elseif k == 5 or k == 6 then return rstring(rnd)
  else
    local t = {}
    for i = 1, rnd(0, 6) do t[i] = rvalue(rnd, depth - 1) end
    for _ = 1, rnd(0, 4) do
      local key = rnd(0, 1) == 1 and rstring(rnd) or rnd(-5, 50)
      t[key] = rvalue(rnd, depth - 1)
    end
    return t
  end
end

-- Equal as plain data (NaN-free; -0.0 == 0).
local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b or (a ~= a and b ~= b) end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

describe("the recipe boundary, fuzzed", function()
  it("carries random plain values into the recipe and back unchanged", function()
    local b = box_with("return params")
    local rnd = math.random
    math.randomseed(SEED)
    for i = 1, N do
      local v = { x = rvalue(rnd, 5), i = i }
      local back = b:main(v, nil, nil)
      assert.is_true(same(v, back), "case " .. i)
    end
    b:close()
  end)

  it("refuses what is not plain data, with a reason, and keeps going", function()
    local b = box_with("return params")
    local cyc = {}
    cyc.self = cyc
    local deep = {}
    local d = deep
    for _ = 1, 150 do d.next = {}; d = d.next end
    for _, bad in ipairs { { f = print }, { co = coroutine.create(print) }, cyc, deep, { [{}] = 1 },
                           { io.stdout } } do
      local ok, err = pcall(b.main, b, bad, nil, nil)
      assert.is_false(ok)
      assert.matches("cannot cross", tostring(err)
        :gsub("nested too deeply", "cannot cross"):gsub("contains itself", "cannot cross")
        :gsub("table keys", "cannot cross"))
    end
    assert.are.same({ ok = 1 }, b:main({ ok = 1 }, nil, nil))
    b:close()
  end)

  it("sends out what the recipe makes, or refuses it in one line", function()
    local b = box_with([[
      math.randomseed(params.seed)
      local function v(depth)
        local k = math.random(1, depth > 0 and 9 or 6)
        if k == 1 then return math.random() end
        if k == 2 then return string.rep(string.char(math.random(0, 255)), math.random(0, 30)) end
        if k == 3 then return print end
        if k == 4 then return coroutine.create(print) end
        if k == 5 then return 0 / 0 end
        if k == 6 then return math.random(1, 10) > 5 end
        local t = {}
        for i = 1, math.random(0, 5) do t[i] = v(depth - 1) end
        if math.random(1, 10) == 1 then t.self = t end
        if math.random(1, 10) == 1 then t[t] = 1 end
        if math.random(1, 10) == 1 then setmetatable(t, { __index = print, __pairs = error }) end
        return t
      end
      return v(4)
    ]])
    local crossed, refused = 0, 0
    for i = 1, N do
      local ok, v = pcall(b.main, b, { seed = SEED + i }, nil, nil)
      if ok then
        crossed = crossed + 1
        assert.is_true(type(v) ~= "function" and type(v) ~= "thread" and type(v) ~= "userdata", "case " .. i)
        assert.is_nil(type(v) == "table" and getmetatable(v) or nil)
      else
        refused = refused + 1
        assert.matches("cannot cross", tostring(v), 1, true)
        assert.is_nil(tostring(v):find("\n"))
      end
    end
    assert.is_true(crossed > 0 and refused > 0, ("crossed %d, refused %d"):format(crossed, refused))
    b:close()
  end)

  it("never lets a random path reach another host", function()
    local s = sim.start {}
    local l = listener.start()
    finally(function() l.stop(); s.stop() end)   -- busted keeps one finally per test
    local c = ghl.client { token = s.token, base = s.url, location = s.location }
    local b = box_with([[
      local kinds = {}
      for i, p in ipairs(params.paths) do
        local ok, e = ghl.try(client.get, client, p)
        kinds[i] = ok and "ok" or (type(e) == "table" and e.kind or "error")
      end
      return kinds
    ]])
    math.randomseed(SEED)
    local pieces = { "/", "contacts", "/contacts/", "@", "127.0.0.1:" .. l.port, l.url, "//", "..", "%2e%2e", "%40",
      "\\", "#", "?", "\r\n", "\0", ":", "http:", "https://", "users", "{locationId}", "%00", ".", " " }
    local paths = {}
    for i = 1, N do
      local t = {}
      for j = 1, math.random(1, 6) do t[j] = pieces[math.random(1, #pieces)] end
      paths[i] = table.concat(t)
    end
    paths[#paths + 1] = "@127.0.0.1:" .. l.port .. "/steal"
    paths[#paths + 1] = "/@127.0.0.1:" .. l.port .. "/steal"
    local kinds = b:main({ paths = paths }, c, nil)
    assert.are.equal(#paths, #kinds)
    local seen = {}
    for i, k in ipairs(kinds) do
      seen[k] = true
      assert.is_true(k == "ok" or k == "sandbox" or k == "http", ("%q gave %s"):format(paths[i], k))
    end
    assert.is_true(seen.sandbox)
    assert.are.same({}, l.requests())
    b:close()
  end)
end)
