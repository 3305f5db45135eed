-- ghl.sso and `ghlua sso`: the custom-page user context. Blobs made by the
-- openssl command line and by crypto-js (committed vectors, see
-- tools/sso_vectors_*) decrypt to their plaintext; a wrong secret, a
-- truncated blob, bad padding, bad base64 and a blob without "Salted__"
-- each fail with their own code; encrypt round-trips; the CLI reads the
-- secret from the environment only and exits 0, 1 or 2.
local sso = require "ghl.sso"
local ghl = require "ghl"
local run = require "support.run"
local cjson = require "cjson"

local SRC = os.getenv("GHLUA_SRC") or "."

local function vectors(name)
  local f = assert(io.open(SRC .. "/tests/vectors/" .. name))
  local t = cjson.decode(f:read("a"))
  f:close()
  return t.vectors
end

local function decrypt_error(blob, secret)
  local v, err = ghl.try(sso.decrypt, blob, secret)
  assert.is_nil(v)
  assert.is_true(ghl.error.is(err), tostring(err))
  return err
end

local SECRET = "6a1b3c5d-7e9f-4a2b-8c4d-0e1f2a3b4c5d"

describe("ghl.sso", function()
  for _, file in ipairs { "sso_openssl.json", "sso_cryptojs.json" } do
    for _, v in ipairs(vectors(file)) do
      if v.plaintext then
        it("decrypts " .. v.name, function()
          assert.are.equal(v.plaintext, sso.decrypt_text(v.blob, v.secret))
          local ctx = sso.decrypt(v.blob, v.secret)
          assert.are.same(cjson.decode(v.plaintext), ctx)
          assert.is_string(ctx.userId)
        end)
      end
    end
  end

  it("has vectors from both generators", function()
    assert.is_true(#vectors("sso_openssl.json") >= 6)
    assert.is_true(#vectors("sso_cryptojs.json") >= 3)
  end)

  for _, v in ipairs(vectors("sso_openssl.json")) do
    if v.error then
      it("refuses " .. v.name .. " with code " .. v.error, function()
        local err = decrypt_error(v.blob, v.secret)
        assert.are.equal(v.error, err.code)
        assert.are.equal(v.error == "bad_base64" and "decode" or v.error == "not_salted" and "decode" or "crypto", err.kind)
      end)
    end
  end

  it("gives each failure its own message, never garbage", function()
    local good = vectors("sso_openssl.json")[2]
    local seen = {}
    for _, case in ipairs {
      { good.blob, SECRET .. "!", "does not decrypt with this secret" },
      { good.blob:sub(1, -6), SECRET, "truncated: %d+ base64 characters" },
      { good.blob:sub(1, -9), SECRET, "truncated: %d+ bytes of ciphertext" },
      { good.blob:gsub("^(.....)", "%1%%"), SECRET, "not base64: unexpected character '%%'" },
    } do
      local err = decrypt_error(case[1], case[2])
      assert.matches(case[3], err.message)
      assert.is_nil(tostring(err):find("[%z\1-\8\14-\31\127]"), "control bytes in " .. tostring(err))
      assert.is_number(utf8.len(tostring(err)), "not UTF-8: " .. tostring(err))
      seen[err.message] = true
    end
    local n = 0
    for _ in pairs(seen) do n = n + 1 end
    assert.are.equal(4, n)
  end)

  it("tells many wrong secrets apart from bad padding", function()
    local good = vectors("sso_openssl.json")[2]
    for i = 1, 300 do
      assert.are.equal("wrong_secret", decrypt_error(good.blob, "wrong-" .. i).code)
    end
  end)

  it("refuses valid ciphertext that is not a JSON object", function()
    local blob = sso.encrypt("[1,2,3]", "k")
    assert.are.equal("[1,2,3]", sso.decrypt_text(blob, "k"))
    assert.are.equal("not_json", decrypt_error(blob, "k").code)
  end)

  it("round-trips encrypt and decrypt with a random salt, and a fixed salt is deterministic", function()
    local ctx = { userId = "u1", companyId = "c1", role = "admin", type = "location", userName = "Zoë",
      email = "z@example.com", activeLocation = "loc1" }
    local a, b = sso.encrypt(ctx, "s3cret"), sso.encrypt(ctx, "s3cret")
    assert.are_not.equal(a, b)
    assert.are.same(ctx, sso.decrypt(a, "s3cret"))
    assert.are.same(ctx, sso.decrypt(b, "s3cret"))
    assert.matches("^U2FsdGVkX1", a)   -- base64 of "Salted__"
    local s1, s2 = sso.encrypt("{}", "k", "12345678"), sso.encrypt("{}", "k", "12345678")
    assert.are.equal(s1, s2)
    assert.are.equal("wrong_secret", decrypt_error(a, "s3cret ").code)
  end)

  it("makes blobs the openssl command line decrypts", function()
    if not run.sh("command -v openssl").out:match("openssl") then
      pending("no openssl command")
      return
    end
    local blob = sso.encrypt('{"userId":"Zoë"}', "pass word")
    local r = run.sh("openssl enc -d -aes-256-cbc -md md5 -a -A -pass env:SSO_PASS",
      { stdin = blob .. "\n", env = { SSO_PASS = "pass word" } })
    assert.are.same({ 0, '{"userId":"Zoë"}' }, { r.code, r.out }, r.err)
  end)

  it("is ghl.sso, and raises on misuse", function()
    assert.are.equal(sso, ghl.sso)
    assert.has_error(function() sso.decrypt(nil, "k") end)
    assert.are.equal("usage", decrypt_error("U2FsdGVkX1", "").kind)
  end)
end)

describe("ghlua sso", function()
  local v = vectors("sso_openssl.json")[2]

  it("decrypts a blob from stdin with the secret from GHL_SSO_SECRET", function()
    local r = run.ghlua({ "sso", "decrypt" }, { stdin = v.blob .. "\n", env = { GHL_SSO_SECRET = v.secret } })
    assert.are.equal(0, r.code, r.err)
    assert.are.same(cjson.decode(v.plaintext), cjson.decode(r.out))
  end)

  it("reads the secret from --secret-env VAR and prints one --field", function()
    local r = run.ghlua({ "sso", "decrypt", "--secret-env", "MY_APP_SSO", "--field", "activeLocation" },
      { stdin = v.blob, env = { MY_APP_SSO = v.secret } })
    assert.are.same({ 0, "ve9EPM428h8vShlRW1KT\n" }, { r.code, r.out }, r.err)
  end)

  it("exits 1 naming the cause for a wrong secret, bad base64, truncation and bad padding", function()
    local pad = vectors("sso_openssl.json")
    local bad_padding
    for _, x in ipairs(pad) do if x.error == "bad_padding" then bad_padding = x end end
    for _, case in ipairs {
      { v.blob, "nope", "does not decrypt with this secret" },
      { "%%%%", v.secret, "not base64" },
      { v.blob:sub(1, -6), v.secret, "truncated" },
      { bad_padding.blob, bad_padding.secret, "PKCS#7 padding" },
    } do
      local r = run.ghlua({ "sso", "decrypt" }, { stdin = case[1], env = { GHL_SSO_SECRET = case[2] } })
      assert.are.equal(1, r.code, r.err)
      assert.matches(case[3], r.err, 1, true)
      assert.are.equal("", r.out)
    end
  end)

  it("never takes the secret from the command line, and needs one (exit 2)", function()
    local r = run.ghlua({ "sso", "decrypt", "--secret", v.secret }, { stdin = v.blob })
    assert.are.equal(2, r.code)
    assert.matches("unknown option '%-%-secret'", r.err)
    r = run.ghlua({ "sso", "decrypt" }, { stdin = v.blob, env = { GHL_SSO_SECRET = "" } })
    assert.are.equal(2, r.code)
    assert.matches("GHL_SSO_SECRET", r.err)
    r = run.ghlua({ "sso", "decrypt" }, { stdin = "", env = { GHL_SSO_SECRET = v.secret } })
    assert.are.equal(2, r.code)
    r = run.ghlua({ "sso", "frobnicate" })
    assert.are.equal(2, r.code)
  end)

  it("encrypts JSON from stdin into a blob that decrypts again", function()
    local ctx = '{"userId":"u7","companyId":"c7","role":"user","type":"location","activeLocation":"L7"}'
    local e = run.ghlua({ "sso", "encrypt" }, { stdin = ctx, env = { GHL_SSO_SECRET = "k2" } })
    assert.are.equal(0, e.code, e.err)
    assert.are.equal(ctx, sso.decrypt_text(e.out, "k2"))
    local d = run.ghlua({ "sso", "decrypt" }, { stdin = e.out, env = { GHL_SSO_SECRET = "k2" } })
    assert.are.same({ 0, ctx .. "\n" }, { d.code, d.out }, d.err)
  end)
end)
