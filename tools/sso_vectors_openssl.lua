-- Generates tests/vectors/sso_openssl.json, SSO blobs made by the openssl
-- command line (FACTS §10: the same format as CryptoJS with a passphrase),
-- for tests/lua/sso_spec.lua. Run from the repository root:
--   build/ghlua tools/sso_vectors_openssl.lua > tests/vectors/sso_openssl.json
-- Each vector: {name, secret, plaintext, blob} decrypts to plaintext, or
-- {name, secret, blob, error} must fail with that ghl.error code. openssl
-- picks random salts, so every run gives new blobs; the committed file is
-- one run's output. Needs `openssl` on PATH; stops with an error if a
-- command fails.
local cjson = require "cjson"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- openssl enc on plaintext with the passphrase; flags: extra options.
local function enc(plaintext, secret, flags)
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "wb"))
  f:write(plaintext)
  f:close()
  local p = assert(io.popen("openssl enc -aes-256-cbc -md md5 -salt " .. (flags or "-a -A")
    .. " -pass " .. q("pass:" .. secret) .. " -in " .. q(tmp) .. " 2>/dev/null"))
  local out = p:read("a")
  local ok = p:close()
  os.remove(tmp)
  assert(ok and out ~= "", "openssl enc failed")
  return (out:gsub("\n$", ""))
end

local ctx = {
  userId = "MKQJ7wOVVmNOMvrnKKKK", companyId = "GNb7aIv4rQFVb9iwNl5K", role = "admin", type = "agency",
  userName = "Ada Lovelace", email = "ada@example.com",
}
local loc = {
  userId = "MKQJ7wOVVmNOMvrnKKKK", companyId = "GNb7aIv4rQFVb9iwNl5K", role = "user", type = "location",
  userName = "Grace Hopper", email = "grace@example.com", activeLocation = "ve9EPM428h8vShlRW1KT",
}
local function json(t)   -- stable key order, as a browser would send it
  local keys = { "userId", "companyId", "role", "type", "userName", "email", "activeLocation" }
  local parts = {}
  for _, k in ipairs(keys) do
    if t[k] ~= nil then parts[#parts + 1] = cjson.encode(k) .. ":" .. cjson.encode(t[k]) end
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

local vectors = {}
local function add(v) vectors[#vectors + 1] = v end

local secret = "6a1b3c5d-7e9f-4a2b-8c4d-0e1f2a3b4c5d"
for _, case in ipairs {
  { "agency context", ctx, secret },
  { "location context", loc, secret },
  { "unicode name and a short secret", { userId = "u1", companyId = "c1", role = "admin", type = "agency",
    userName = "Zoë Ñúñez 東京", email = "zoe@example.com" }, "k" },
  { "secret with spaces and symbols", loc, "p@ss w0rd/+=;'\"" },
} do
  local text = json(case[2])
  add { name = case[1] .. " (openssl -a -A)", secret = case[3], plaintext = text, blob = enc(text, case[3]) }
end
-- openssl -a without -A wraps the base64 at 64 columns
add { name = "wrapped base64 lines (openssl -a)", secret = secret, plaintext = json(loc),
  blob = enc(json(loc), secret, "-a") }
-- exactly one block of padding: a 32-byte plaintext
local exact = '{"userId":"abcdefghijklmnopq12"}'
assert(#exact == 32)
add { name = "plaintext a multiple of 16 bytes", secret = secret, plaintext = exact, blob = enc(exact, secret) }

-- Failures
local good = vectors[2]
add { name = "wrong secret", secret = secret .. "x", blob = good.blob, error = "wrong_secret" }
add { name = "truncated (base64 cut mid-group)", secret = secret, blob = good.blob:sub(1, -6), error = "truncated" }
add { name = "truncated (a partial AES block)", secret = secret, blob = good.blob:sub(1, -9), error = "truncated" }
add { name = "bad base64 (a character outside the alphabet)", secret = secret,
  blob = good.blob:sub(1, 10) .. "*" .. good.blob:sub(12), error = "bad_base64" }
add { name = "not a CryptoJS blob (no Salted__ header)", secret = secret,
  blob = "eyJ1c2VySWQiOiJ1MSJ9AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", error = "not_salted" }
-- JSON padded with spaces to 48 bytes, encrypted without PKCS#7 padding:
-- the right secret decrypts it, but the last block ends in 0x20.
local unpadded = '{"userId":"u1","role":"admin"}'
unpadded = unpadded .. string.rep(" ", 48 - #unpadded)
add { name = "bad padding (encrypted with -nopad)", secret = secret, blob = enc(unpadded, secret, "-nopad -a -A"),
  error = "bad_padding" }

io.stdout:write('{"generator":"tools/sso_vectors_openssl.lua","openssl":', cjson.encode(
  (io.popen("openssl version"):read("l") or "?")), ',"vectors":[\n')
for i, v in ipairs(vectors) do
  io.stdout:write("  ", cjson.encode(v), i < #vectors and ",\n" or "\n")
end
io.stdout:write("]}\n")
